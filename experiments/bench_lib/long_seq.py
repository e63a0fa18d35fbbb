"""Long sequences: one LSTM training step at T=10000 with and without ``checkpoint=True``, and its memory.

Runs the `rnn_jax` LSTM (or a variant, e.g. ``rnn_jax:hoist_inputs=false``, whose ``checkpoint`` the study
sets); the other peers have no checkpointing lever to compare.

Each case runs in a fresh subprocess (``python -m experiments.bench_lib.long_seq '<json>'``) so that its
peak memory is its own. The worker builds an `rnn_jax.LSTM` (batch-first), compiles a training step
(forward, mean-square loss, gradients, SGD update), then measures:

* ``temp_mb``: XLA's ``compiled.memory_analysis().temp_size_in_bytes``, the scratch memory the compiled
  step needs besides its arguments and outputs (the saved activations live here);
* ``step_peak_rss_mb``: the kernel's peak-RSS mark (``VmHWM``), reset (``/proc/self/clear_refs``) after
  compilation and read after the timed steps: the peak during the steps (None where Linux's /proc is
  missing); ``rss_before_mb`` is the resident size just before, ``step_rise_mb`` the difference: the
  host memory the steps really take;
* ``compile_peak_rss_mb`` and ``process_peak_rss_mb``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
  after compilation and at the end, the whole process's peak (imports and compilation included; not
  reset, as exited threads keep their mark in it);
* ``device_peak_mb``: the accelerator's ``peak_bytes_in_use`` where JAX reports it (GPU), else None;
* ``step_s``: the median wall-clock time of the timed steps (the first step is a warm-up).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from experiments.bench_lib.workload import Size

LONG_SIZE = Size(8, 10000, 128, 128)
QUICK_LONG_SIZE = Size(2, 300, 16, 32)
LEARNING_RATE = 1e-3
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_MB = 2**20


def _ru_maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # kilobytes on Linux, bytes on macOS


def _current_rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def _peak_rss_bytes() -> int | None:
    """Returns the kernel's peak-RSS mark of this process (VmHWM), which `_reset_peak_rss` resets."""
    try:
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration):
        return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak resident set size (Linux >= 4.0)
        return True
    except OSError:
        return False


def run_case(size: Size, checkpoint: bool, repeats: int = 2, dtype: str = "float32", peer: str = "rnn_jax") -> dict:
    """Returns one long case's timings and memory, measured in this process (see the module docstring).

    `peer` is ``rnn_jax`` or a variant (``rnn_jax:hoist_inputs=false``); `checkpoint` overrides its own.
    """
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top

    from experiments.bench_lib import peers  # pylint: disable=g-import-not-at-top

    B, T, I, H = size
    base, overrides = peers.parse_peer(peer)
    if base != "rnn_jax":
        raise ValueError(f"the long study runs rnn_jax and its variants, got {peer!r}")
    kwargs = {"dtype": jnp.bfloat16 if dtype == "bfloat16" else None, **overrides, "checkpoint": checkpoint}
    spec = peers.SPEC_CLASSES["lstm"](I, H, batch_first=True, **kwargs)
    params = spec.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32))  # [B, T, I]

    def step(p, x):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(jnp.square(spec.apply(p, x)[0].astype(jnp.float32))))(p)
        return jax.tree.map(lambda a, g: a - LEARNING_RATE * g, p, grads), loss

    start = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=0).lower(params, x).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    compile_peak = _ru_maxrss_bytes()
    rss_before = _current_rss_bytes()
    peak_reset = _reset_peak_rss()
    times = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        params, loss = jax.block_until_ready(compiled(params, x))
        times.append(time.perf_counter() - start)
    step_peak = _peak_rss_bytes() if peak_reset else None
    stats = jax.local_devices()[0].memory_stats() or {}
    return {
        "peer": peer, "size": str(size), "checkpoint": checkpoint, "dtype": dtype, "status": "ok",
        "compile_s": compile_s, "step_s": statistics.median(times[1:]), "times_s": times[1:],
        "first_step_s": times[0], "tokens_per_s": B * T / statistics.median(times[1:]),
        "loss": float(loss),
        "temp_mb": memory.temp_size_in_bytes / _MB if memory is not None else None,
        "argument_mb": memory.argument_size_in_bytes / _MB if memory is not None else None,
        "compile_peak_rss_mb": compile_peak / _MB, "process_peak_rss_mb": _ru_maxrss_bytes() / _MB,
        "rss_before_mb": rss_before / _MB if rss_before is not None else None,
        "step_peak_rss_mb": step_peak / _MB if step_peak is not None else None,
        "step_rise_mb": (step_peak - rss_before) / _MB if None not in (step_peak, rss_before) else None,
        "device_peak_mb": stats["peak_bytes_in_use"] / _MB if "peak_bytes_in_use" in stats else None,
    }


def run_in_subprocess(size: Size, checkpoint: bool, repeats: int = 2, dtype: str = "float32",
                      peer: str = "rnn_jax", timeout_s: float = 1800) -> dict:
    """Returns `run_case` measured in a fresh Python process; a failed case is a row with its status."""
    request = json.dumps({"size": list(size), "checkpoint": checkpoint, "repeats": repeats, "dtype": dtype,
                          "peer": peer})
    failed = {"peer": peer, "size": str(size), "checkpoint": checkpoint, "dtype": dtype}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_REPO_ROOT, os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run([sys.executable, "-m", "experiments.bench_lib.long_seq", request], cwd=_REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {**failed, "status": f"failed: timed out after {timeout_s:.0f} s"}
    results = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        why = "killed (out of memory?)" if done.returncode in (-9, 137) else f"exit code {done.returncode}"
        tail = (done.stderr.strip().splitlines() or [""])[-1][:200]
        return {**failed, "status": f"failed: {why}: {tail}"}
    return json.loads(results[-1][len("RESULT "):])


def main(argv: list[str]) -> None:
    request = json.loads(argv[1])
    result = run_case(Size(*request["size"]), request["checkpoint"], request["repeats"], request["dtype"],
                      request["peer"])
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
