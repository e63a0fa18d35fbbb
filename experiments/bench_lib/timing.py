"""Interleaved timing of several prepared steps, their summary, and a description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable, Mapping

import flax
import jax
import numpy as np

from experiments.bench_lib.peers import import_torch, torch_omp_wait


def time_interleaved(calls: Mapping[str, Callable[[], None]], warmup: int, repeats: int,
                     settle_s: float = 0.05) -> dict[str, list[float]]:
    """Returns each call's wall-clock seconds over `repeats` rounds, after `warmup` untimed rounds.

    Rounds are round-robin across the calls (A, B, C, A, B, C, ...), so drift in the machine's speed
    (other processes, clocks, thermals) lands on every call alike instead of on whichever ran last.
    Within a round each call runs twice back to back and only the second run is timed, then the loop
    sleeps `settle_s`: PyTorch's OpenMP threads spin for a while after a call and sleep after that, so
    timed back to back with a JAX peer they took the core its second thread needed, and timed cold they
    paid for waking up; the untimed run and the pause give every peer warm threads and idle cores
    (BUILD_NOTES.md, issue 3).
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            call()
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
            time.sleep(settle_s)
    return times


def summarize(times_s: list[float]) -> dict:
    """Returns the median, min and max of `times_s` and the spread (max - min) / median."""
    median = statistics.median(times_s)
    return {"median_s": median, "min_s": min(times_s), "max_s": max(times_s),
            "spread": (max(times_s) - min(times_s)) / median, "times_s": list(times_s)}


def num_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine_info() -> dict:
    """Returns the CPU, core count, devices, library versions and PyTorch's threads and accelerator."""
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    torch = import_torch()
    info = {"cpu": cpu, "cpu_count": num_cpus(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "numpy": np.__version__, "jax_backend": jax.default_backend(),
            "jax_devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
            "torch": torch.__version__ if torch else None,
            "torch_threads": torch.get_num_threads() if torch else None,
            "torch_omp_wait_policy": torch_omp_wait() if torch else None,
            "torch_device": "cpu", "onednn_kernel": _onednn_kernel()}
    if torch is not None and torch.cuda.is_available():
        info["torch_device"] = f"cuda ({torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()})"
    return info


def _onednn_kernel() -> str:
    """Returns rnn_jax's oneDNN kernel as 'oneDNN <version>', or 'unavailable: <reason>'."""
    from rnn_jax.kernels import onednn_library  # pylint: disable=g-import-not-at-top
    reason = onednn_library.unavailable_reason()
    return f"unavailable: {reason}" if reason else f"oneDNN {onednn_library.load().version}"


def machine_line(info: dict) -> str:
    """Returns the one-line summary of `machine_info()` printed above every table."""
    return (f"machine: {info['cpu']}, {info['cpu_count']} cores | JAX {info['jax']} on {info['jax_backend']} "
            f"({info['jax_devices']}) | flax {info['flax']} | torch {info['torch']} on {info['torch_device']}, "
            f"{info['torch_threads']} threads, OMP_WAIT_POLICY {info.get('torch_omp_wait_policy')} | rnn_jax kernel "
            f"{info.get('onednn_kernel')} | python {info['python']}, {info['platform']}")
