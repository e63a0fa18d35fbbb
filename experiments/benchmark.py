"""Benchmarks rnn_jax against Flax linen, Flax nnx and PyTorch recurrent layers in one process run.

Command (defaults: LSTM, train mode, sizes 32x100x128x256 and 16x200x64x128, 5 timed repeats)::

    python -m experiments.benchmark [--cells=lstm,gru,rnn] [--sizes=BxTxIxH,...] [--layers=1]
        [--bidirectional] [--mode=train|forward] [--repeats=5] [--warmup=2]
        [--peers=rnn_jax,flax_linen,flax_nnx,torch] [--json_out=PATH] [--quick]

Every peer runs the same float32 inputs ``x [B, T, I]`` (batch-first) through a stack of ``--layers``
layers of hidden size H. ``--mode=train`` times one training step (forward, loss = mean of the outputs
squared, gradients wrt all parameters, an SGD update); ``--mode=forward`` times the forward pass only
(PyTorch under ``torch.inference_mode()``). JAX steps are ``jax.jit``-compiled once (the ``compile``
column: trace, lower and compile; for PyTorch, the first call), run ``--warmup`` times, then timed
``--repeats`` times, each call ending in ``jax.block_until_ready``. ``--quick`` swaps in tiny sizes
and 2 repeats (for tests and a demo run in seconds).

It prints the machine, then one row per (cell, size, peer)::

    cell  size (BxTxIxH)  peer        compile s  median ms  min-max ms     tokens/s  x torch  x best flax

where tokens/s = B*T / median and the two ratios are that peer's tokens/s over torch's and over the
faster of the two Flax peers (>1: faster). ``--json_out`` also writes ``{"machine": ..., "config": ...,
"rows": [...]}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from typing import Callable, NamedTuple, Sequence

from absl import app, flags, logging
import flax
from flax import linen, nnx
import jax
import jax.numpy as jnp
import numpy as np

import rnn_jax

CELLS = ("lstm", "gru", "rnn")
MODES = ("train", "forward")
FLAX_PEERS = ("flax_linen", "flax_nnx")
LEARNING_RATE = 1e-3

_CELLS = flags.DEFINE_list("cells", ["lstm"], f"Cells to benchmark, from {CELLS}.")
_SIZES = flags.DEFINE_list("sizes", ["32x100x128x256", "16x200x64x128"], "Sizes as BxTxIxH (batch, time, "
                           "input size, hidden size).")
_LAYERS = flags.DEFINE_integer("layers", 1, "Number of stacked layers.")
_BIDIRECTIONAL = flags.DEFINE_bool("bidirectional", False, "Bidirectional layers.")
_MODE = flags.DEFINE_enum("mode", "train", MODES, "train: one SGD step; forward: the forward pass only.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per row.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls after compilation.")
_PEERS = flags.DEFINE_list("peers", ["rnn_jax", "flax_linen", "flax_nnx", "torch"], "Implementations to time.")
_JSON_OUT = flags.DEFINE_string("json_out", None, "Optional path of a JSON file with the machine and rows.")
_QUICK = flags.DEFINE_bool("quick", False, "Tiny sizes and 2 repeats (tests, demos).")

QUICK_SIZES = ("4x8x8x16",)


class Size(NamedTuple):
    batch: int
    time: int
    input: int
    hidden: int

    def __str__(self):
        return "x".join(map(str, self))


@dataclasses.dataclass(frozen=True)
class Config:
    cells: tuple[str, ...] = ("lstm",)
    sizes: tuple[Size, ...] = (Size(32, 100, 128, 256), Size(16, 200, 64, 128))
    layers: int = 1
    bidirectional: bool = False
    mode: str = "train"
    repeats: int = 5
    warmup: int = 2
    peers: tuple[str, ...] = ("rnn_jax", "flax_linen", "flax_nnx", "torch")


def parse_size(text: str) -> Size:
    """Returns the `Size` written as ``BxTxIxH``, e.g. ``32x100x128x256``."""
    parts = text.strip().lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a size must be BxTxIxH with four positive integers, e.g. 32x100x128x256, got {text!r}")
    return Size(*map(int, parts))


class Timing(NamedTuple):
    compile_s: float
    times_s: list[float]


# --------------------------------------------------------------------------- JAX peers


def _time_jax(apply: Callable, params, x, config: Config) -> Timing:
    """Times ``apply(params, x) -> outputs [B, T, D*H]`` (forward) or a jitted SGD step on it (train)."""
    if config.mode == "train":
        def step(p, x):
            loss, grads = jax.value_and_grad(lambda p: jnp.mean(jnp.square(apply(p, x))))(p)
            return jax.tree.map(lambda w, g: w - LEARNING_RATE * g, p, grads), loss
        fn = jax.jit(step, donate_argnums=0)  # params are threaded through, as in a training loop
    else:
        fn = jax.jit(lambda p, x: (p, apply(p, x)))
    start = time.perf_counter()
    compiled = fn.lower(params, x).compile()
    compile_s = time.perf_counter() - start
    for _ in range(config.warmup):
        params, out = jax.block_until_ready(compiled(params, x))
    times = []
    for _ in range(config.repeats):
        start = time.perf_counter()
        params, out = jax.block_until_ready(compiled(params, x))
        times.append(time.perf_counter() - start)
    return Timing(compile_s, times)


def bench_rnn_jax(cell: str, size: Size, x: np.ndarray, config: Config) -> Timing:
    spec_cls = {"lstm": rnn_jax.LSTM, "gru": rnn_jax.GRU, "rnn": rnn_jax.RNN}[cell]
    spec = spec_cls(size.input, size.hidden, config.layers, batch_first=True, bidirectional=config.bidirectional)
    params = spec.init(jax.random.key(0))
    return _time_jax(lambda p, x: spec.apply(p, x)[0], params, jnp.asarray(x), config)


def bench_flax_linen(cell: str, size: Size, x: np.ndarray, config: Config) -> Timing:
    cell_cls = {"lstm": linen.OptimizedLSTMCell, "gru": linen.GRUCell, "rnn": linen.SimpleCell}[cell]

    def layer():
        if config.bidirectional:
            return linen.Bidirectional(linen.RNN(cell_cls(size.hidden)), linen.RNN(cell_cls(size.hidden)))
        return linen.RNN(cell_cls(size.hidden))

    model = linen.Sequential([layer() for _ in range(config.layers)])
    x = jnp.asarray(x)
    params = model.init(jax.random.key(0), x)
    return _time_jax(model.apply, params, x, config)


def bench_flax_nnx(cell: str, size: Size, x: np.ndarray, config: Config) -> Timing:
    cell_cls = {"lstm": nnx.OptimizedLSTMCell, "gru": nnx.GRUCell, "rnn": nnx.SimpleCell}[cell]
    rngs = nnx.Rngs(0)
    width = size.hidden * (2 if config.bidirectional else 1)

    def layer(in_features):
        rnn = lambda: nnx.RNN(cell_cls(in_features, size.hidden, rngs=rngs), rngs=rngs)
        return nnx.Bidirectional(rnn(), rnn(), rngs=rngs) if config.bidirectional else rnn()

    model = nnx.Sequential(*[layer(size.input if i == 0 else width) for i in range(config.layers)])
    # The functional split/merge inside jax.jit: the fastest way to run an nnx module under a jitted step.
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return _time_jax(lambda p, x: nnx.merge(graphdef, p, rest, copy=True)(x), params, jnp.asarray(x), config)


# --------------------------------------------------------------------------- PyTorch


def _torch():
    """Returns the torch module, or None where it is not installed."""
    try:
        import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
        return None
    torch.set_num_threads(_num_cpus())
    return torch


def bench_torch(cell: str, size: Size, x: np.ndarray, config: Config) -> Timing:
    torch = _torch()
    torch.manual_seed(0)
    module_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    model = module_cls(size.input, size.hidden, config.layers, batch_first=True,
                       bidirectional=config.bidirectional)
    x = torch.from_numpy(x)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    def call():
        if config.mode == "forward":
            with torch.inference_mode():
                return model(x)[0]
        optimizer.zero_grad(set_to_none=True)
        loss = model(x)[0].square().mean()
        loss.backward()
        optimizer.step()
        return loss

    start = time.perf_counter()
    call()
    compile_s = time.perf_counter() - start  # PyTorch is eager: the first call, for comparison
    for _ in range(config.warmup):
        call()
    times = []
    for _ in range(config.repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return Timing(compile_s, times)


PEERS = {"rnn_jax": bench_rnn_jax, "flax_linen": bench_flax_linen, "flax_nnx": bench_flax_nnx,
         "torch": bench_torch}


# --------------------------------------------------------------------------- running and reporting


def _num_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine_info() -> dict:
    """Returns the platform, CPU count, library versions and JAX device kind."""
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    torch = _torch()
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": _num_cpus(),
            "python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "numpy": np.__version__, "jax_backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind,
            "torch": torch.__version__ if torch else None,
            "torch_threads": torch.get_num_threads() if torch else None}


def add_ratios(rows: list[dict]) -> list[dict]:
    """Returns `rows` with ``vs_torch`` and ``vs_best_flax``: tokens/s over that of the reference peer."""
    for row in rows:
        group = [r for r in rows if (r["cell"], r["size"]) == (row["cell"], row["size"])]
        torch_tps = [r["tokens_per_s"] for r in group if r["peer"] == "torch"]
        flax_tps = [r["tokens_per_s"] for r in group if r["peer"] in FLAX_PEERS]
        row["vs_torch"] = row["tokens_per_s"] / torch_tps[0] if torch_tps else None
        row["vs_best_flax"] = row["tokens_per_s"] / max(flax_tps) if flax_tps else None
    return rows


def run(config: Config) -> list[dict]:
    """Returns one row per (cell, size, peer): timings in seconds, tokens/s and the ratios."""
    for peer in config.peers:
        if peer not in PEERS:
            raise ValueError(f"peers must be among {tuple(PEERS)}, got {peer!r}")
    for cell in config.cells:
        if cell not in CELLS:
            raise ValueError(f"cells must be among {CELLS}, got {cell!r}")
    peers = [p for p in config.peers if p != "torch" or _torch() is not None]
    if len(peers) < len(config.peers):
        logging.warning("torch is not importable: skipping the torch peer")
    rows = []
    for cell in config.cells:
        for size in config.sizes:
            x = np.random.default_rng(0).standard_normal(
                (size.batch, size.time, size.input)).astype(np.float32)  # [B, T, I]
            for peer in peers:
                timing = PEERS[peer](cell, size, x, config)
                median = statistics.median(timing.times_s)
                rows.append({"cell": cell, "size": str(size), "peer": peer, "mode": config.mode,
                             "layers": config.layers, "bidirectional": config.bidirectional,
                             "compile_s": timing.compile_s, "median_s": median, "min_s": min(timing.times_s),
                             "max_s": max(timing.times_s), "times_s": timing.times_s,
                             "tokens_per_s": size.batch * size.time / median})
                logging.info("%s %s %s: median %.2f ms", cell, size, peer, 1e3 * median)
    return add_ratios(rows)


def format_table(rows: Sequence[dict]) -> str:
    """Returns the rows as a fixed-width text table."""
    ratio = lambda v: "-" if v is None else f"{v:.2f}"
    lines = [f"{'cell':5} {'size (BxTxIxH)':15} {'peer':10} {'compile s':>9} {'median ms':>10} "
             f"{'min-max ms':>15} {'tokens/s':>11} {'x torch':>8} {'x best flax':>11}"]
    for r in rows:
        span = f"{1e3 * r['min_s']:.2f}-{1e3 * r['max_s']:.2f}"
        lines.append(f"{r['cell']:5} {r['size']:15} {r['peer']:10} {r['compile_s']:9.2f} "
                     f"{1e3 * r['median_s']:10.2f} {span:>15} {r['tokens_per_s']:11.0f} "
                     f"{ratio(r['vs_torch']):>8} {ratio(r['vs_best_flax']):>11}")
    return "\n".join(lines)


def config_from_flags() -> Config:
    """Returns the `Config` the command-line flags describe."""
    return Config(cells=tuple(c.lower() for c in _CELLS.value),
                  sizes=tuple(parse_size(s) for s in (QUICK_SIZES if _QUICK.value else _SIZES.value)),
                  layers=_LAYERS.value, bidirectional=_BIDIRECTIONAL.value, mode=_MODE.value,
                  repeats=2 if _QUICK.value else _REPEATS.value, warmup=_WARMUP.value,
                  peers=tuple(_PEERS.value))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    machine = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    print(f"mode={config.mode} layers={config.layers} bidirectional={config.bidirectional} "
          f"repeats={config.repeats} warmup={config.warmup} float32")
    rows = run(config)
    print(format_table(rows))
    if _JSON_OUT.value:
        payload = {"machine": machine, "config": dataclasses.asdict(config), "rows": rows}
        with open(_JSON_OUT.value, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"wrote {_JSON_OUT.value}")


if __name__ == "__main__":
    app.run(main)
