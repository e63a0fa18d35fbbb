"""Tests of rnn_jax.training.metrics: the log, metrics.jsonl and TensorBoard writer, reading a resumed
run's metrics back and plotting them, the progress line, and results.json."""

from __future__ import annotations

import dataclasses
import json
import logging
import struct
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import training as tr


def _read_events(directory: Path) -> list[tuple[str, int, float, float]]:
    """Parses TensorBoard event files (TFRecord framing) into (tag, step, value, wall_time)."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            out += [(v.tag, event.step, v.simple_value, event.wall_time) for v in event.summary.value]
    return out


def test_metric_writer_writes_log_jsonl_and_tensorboard(tmp_path, caplog):
    before = time.time()
    with caplog.at_level(logging.INFO), tr.MetricWriter(tmp_path) as writer:
        writer.write(10, {"train_loss": jnp.asarray(1.5), "grad_norm": np.float32(0.25)})
        writer.write(20, {"train_loss": 1.25, "valid_loss": float("nan")})
        with pytest.raises(ValueError, match="must be a scalar"):
            writer.write(30, {"train_loss": np.ones(2)})
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20]
    assert records[0]["train_loss"] == 1.5 and records[0]["grad_norm"] == 0.25
    assert records[1]["valid_loss"] is None  # non-finite: null, valid JSON
    assert all(before <= r["wall_time"] <= time.time() for r in records)
    events = _read_events(tmp_path / "tensorboard")
    assert [(tag, step, value) for tag, step, value, _ in events if tag == "train_loss"] == [("train_loss", 10, 1.5),
                                                                                            ("train_loss", 20, 1.25)]
    assert events[0][3] == pytest.approx(records[0]["wall_time"])
    assert any("step 10: train_loss=1.5, grad_norm=0.25" in r.getMessage() for r in caplog.records)


def test_read_metrics_resolves_a_resumed_runs_overlap_and_plots(tmp_path):
    with tr.MetricWriter(tmp_path, tensorboard=False, log=False) as w:
        for s in range(1, 6):  # a run logs steps 1..5, then dies; it had saved a checkpoint at step 2
            w.write(s, {"train_loss": 10.0 - s})
        w.write(4, {"valid_loss": 7.0})
    with tr.MetricWriter(tmp_path, tensorboard=False, log=False) as w:
        for s in range(3, 8):  # the resumed run logs 3..7 again (other values, to tell them apart)
            w.write(s, {"train_loss": 100.0 + s})
        w.write(4, {"valid_loss": 6.5})
        w.write(6, {"valid_loss": 6.0})
    series = tr.read_metrics(tmp_path)
    assert series["train_loss"] == ([1, 2, 3, 4, 5, 6, 7], [9.0, 8.0, 103.0, 104.0, 105.0, 106.0, 107.0])
    assert series["valid_loss"] == ([4, 6], [6.5, 6.0])

    import matplotlib.image

    path = tr.plot_curves(tmp_path, title="tiny")
    assert path == tmp_path / "loss_curves.png"
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (450, 700)
    assert (image[..., :3] < 0.5).any(axis=-1).mean() > 0.005  # lines, text and axes drawn, not a blank canvas
    with pytest.raises(ValueError, match="none of"):
        tr.plot_curves(tmp_path, keys=("bleu",))


def test_progress_line_rate_and_eta():
    now = [0.0]
    lines = []
    progress = tr.ProgressLine(100, every_seconds=10.0, start_step=10, print_fn=lines.append, clock=lambda: now[0])
    now[0] = 5.0
    assert progress.update(15) is None  # under 10 s since the start
    now[0] = 10.0
    line = progress.update(30, loss=jnp.asarray(1.23456))
    assert line == "step 30/100 (30.0%) 2.00 steps/s ETA 0:00:35 loss=1.235"
    now[0] = 12.0
    assert progress.update(40) is None
    now[0] = 14.0
    assert progress.update(100).startswith("step 100/100 (100.0%) 17.50 steps/s ETA 0:00:00")  # last step prints
    assert len(lines) == 2 and lines[0] == line
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1"):
        tr.ProgressLine(0)


@dataclasses.dataclass(frozen=True)
class _Config:
    hidden: int = 8
    lr: float = 1e-3
    dtype: object = jnp.float32


def test_write_results_converts_and_replaces(tmp_path):
    results = {"config": _Config(), "test_loss": np.float32(1.25), "curve": jnp.arange(3), "bad": float("inf"),
               "workdir": tmp_path, "wall_time_s": 12.5}
    path = tr.write_results(tmp_path, results)
    tr.write_results(tmp_path, dict(results, wall_time_s=13.0))  # replaces, leaves no temporary file
    loaded = json.loads(path.read_text())
    assert loaded == {"config": {"hidden": 8, "lr": 1e-3, "dtype": str(jnp.float32)}, "test_loss": 1.25,
                      "curve": [0, 1, 2], "bad": None, "workdir": str(tmp_path), "wall_time_s": 13.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
