"""Metric output in the workdir: `MetricWriter`, `ProgressLine`, `write_results`, `read_metrics`, `plot_curves`.

`MetricWriter.write(step, scalars)` sends the same scalars to three places: an absl ``logging.info``
line, one JSON object per call appended to ``<workdir>/metrics.jsonl`` (``{"step", "wall_time", ...}``,
non-finite values as ``null``) and TensorBoard event files in ``<workdir>/tensorboard`` (tensorboardX,
no TensorFlow). A resumed run appends to the same files; `read_metrics` resolves the overlap (the
steps a killed run logged after its last checkpoint are logged again by the resumed run, and the later
record wins), so curves and plots show one clean history.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from absl import logging

from rnn_jax.checks import check_size

METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
CURVES_FILE = "loss_curves.png"


def _scalar(name: str, value) -> float:
    value = np.asarray(jax.device_get(value))
    if value.shape != ():
        raise ValueError(f"metric {name!r} must be a scalar, got shape {value.shape}")
    return float(value)


class MetricWriter:
    """Writes scalar metrics to the log, ``metrics.jsonl`` and TensorBoard event files in `workdir`.

    Args:
      workdir: the run's directory (created if missing).
      tensorboard: also write TensorBoard event files under ``<workdir>/tensorboard``.
      log: also emit an absl ``logging.info`` line per write.
    """

    def __init__(self, workdir: str | os.PathLike, *, tensorboard: bool = True, log: bool = True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / METRICS_FILE
        self._file = open(self.path, "a", encoding="utf-8")
        self._log = log
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter  # imported here: it costs about a second

            self._tb = SummaryWriter(str(self.workdir / "tensorboard"))

    def write(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Records `scalars` (name -> scalar, device or host) at `step`, flushed to disk at once."""
        step = int(step)
        values = {k: _scalar(k, v) for k, v in scalars.items()}
        if "step" in values or "wall_time" in values:
            raise ValueError("metric names 'step' and 'wall_time' are reserved")
        wall_time = time.time()
        record = {"step": step, "wall_time": wall_time}
        record.update({k: (v if math.isfinite(v) else None) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step, walltime=wall_time)
            self._tb.flush()
        if self._log:
            logging.info("step %d: %s", step, ", ".join(f"{k}={v:.6g}" for k, v in values.items()))

    def close(self) -> None:
        """Flushes and closes the files."""
        if not self._file.closed:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> "MetricWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


class ProgressLine:
    """A steady progress line (step, %, steps/s, ETA, a few scalars), printed at most every N seconds.

    Args:
      total_steps: the step the run ends at (>= 1).
      every_seconds: minimum time between two lines; the last step always prints.
      start_step: the step the run starts (or resumes) at; rates count from here.
      print_fn: called with each line (default: print to stdout, flushed).
      clock: seconds as a float (default ``time.monotonic``; tests pass a fake).
    """

    def __init__(self, total_steps: int, *, every_seconds: float = 30.0, start_step: int = 0,
                 print_fn: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        check_size("total_steps", total_steps)
        if not every_seconds >= 0:
            raise ValueError(f"every_seconds must be >= 0, got {every_seconds}")
        self.total_steps, self.every_seconds = total_steps, every_seconds
        self._print = print_fn or (lambda line: print(line, file=sys.stdout, flush=True))
        self._clock = clock
        self._last_time, self._last_step = clock(), int(start_step)

    def update(self, step: int, **scalars: float) -> str | None:
        """Returns the line printed for `step`, or None if the last one is under `every_seconds` old.

        Steps/s is measured since the previous line; the ETA assumes that rate for the remaining steps.
        """
        step, now = int(step), self._clock()
        elapsed = now - self._last_time
        if elapsed < self.every_seconds and step < self.total_steps:
            return None
        rate = (step - self._last_step) / elapsed if elapsed > 0 else float("nan")
        eta = (self.total_steps - step) / rate if rate > 0 else float("inf")
        line = (f"step {step}/{self.total_steps} ({100.0 * step / self.total_steps:.1f}%) "
                f"{rate:.2f} steps/s ETA {_duration(eta) if step < self.total_steps else '0:00:00'}")
        if scalars:
            line += " " + " ".join(f"{k}={_scalar(k, v):.4g}" for k, v in scalars.items())
        self._print(line)
        self._last_time, self._last_step = now, step
        return line


def _jsonable(x):
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (os.PathLike,)):
        return os.fspath(x)
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return _jsonable(np.asarray(jax.device_get(x)).tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)  # e.g. a dtype in a config


def write_results(workdir: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Returns the path of ``<workdir>/results.json``, written atomically from `results`.

    Arrays and NumPy scalars become lists and numbers, dataclasses (a frozen config) dicts, paths
    strings, non-finite floats ``null``, other objects their ``str``.
    """
    path = Path(workdir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(results), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_metrics(workdir: str | os.PathLike) -> dict[str, tuple[list[int], list[float]]]:
    """Returns ``{name: (steps, values)}`` from ``<workdir>/metrics.jsonl``, steps ascending.

    Records are read in file order; a record at step s for a metric drops that metric's earlier
    records at steps >= s (a run resumed from a checkpoint logs those steps again). ``null`` values
    (non-finite when written) are skipped.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    with open(Path(workdir) / METRICS_FILE, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            step = int(record["step"])
            for name, value in record.items():
                if name in ("step", "wall_time"):
                    continue
                points = series.setdefault(name, [])
                while points and points[-1][0] >= step:
                    points.pop()
                if value is not None:
                    points.append((step, float(value)))
    return {k: ([s for s, _ in v], [x for _, x in v]) for k, v in series.items() if v}


def plot_curves(workdir: str | os.PathLike, keys: Sequence[str] = ("train_loss", "valid_loss"), *,
                filename: str = CURVES_FILE, ylabel: str = "loss", title: str | None = None) -> Path:
    """Returns the path of a PNG of the `keys` curves against step, read from ``metrics.jsonl``.

    Drawn with matplotlib's Agg canvas directly (no pyplot, no global backend change), so it works
    headless and from any thread.

    Raises:
      ValueError: if none of `keys` has any value in ``metrics.jsonl``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = read_metrics(workdir)
    present = [k for k in keys if k in series]
    if not present:
        raise ValueError(f"none of {list(keys)} in {Path(workdir) / METRICS_FILE} (it has {sorted(series)})")
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for k in present:
        steps, values = series[k]
        ax.plot(steps, values, label=k, marker="o" if len(steps) < 30 else None, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(workdir) / filename
    fig.savefig(path)
    return path
