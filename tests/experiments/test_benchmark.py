"""Tests of experiments/benchmark.py: the whole command on tiny sizes, size parsing and the ratios."""

import json
import math

from absl import flags
from absl.testing import flagsaver
import pytest

from experiments import benchmark

FLAGS = flags.FLAGS


@pytest.fixture(autouse=True)
def _parsed_flags():
    # pytest never runs absl's parser; mark the defaults as parsed so flagsaver can override them.
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()


def test_main_quick_all_cells_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    peers = ["rnn_jax", "flax_linen", "flax_nnx"] + (["torch"] if benchmark._torch() else [])
    with flagsaver.flagsaver(quick=True, cells=list(benchmark.CELLS), warmup=1, json_out=str(out)):
        benchmark.main(["benchmark"])
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    assert [(r["cell"], r["peer"]) for r in rows] == [(c, p) for c in benchmark.CELLS for p in peers]
    for r in rows:
        assert r["size"] == benchmark.QUICK_SIZES[0]
        assert len(r["times_s"]) == 2  # --quick means 2 repeats
        assert math.isfinite(r["tokens_per_s"]) and r["tokens_per_s"] > 0, r
        assert r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["compile_s"] > 0
    assert payload["machine"]["cpu_count"] >= 1 and payload["machine"]["jax"]
    printed = capsys.readouterr().out
    assert "tokens/s" in printed and "rnn_jax" in printed


def test_forward_mode_rows():
    config = benchmark.Config(cells=("gru",), sizes=(benchmark.Size(2, 3, 4, 5),), mode="forward", repeats=1,
                              warmup=0, peers=("rnn_jax", "flax_nnx"))
    rows = benchmark.run(config)
    assert [r["peer"] for r in rows] == ["rnn_jax", "flax_nnx"]
    assert all(r["mode"] == "forward" and r["tokens_per_s"] > 0 for r in rows)
    assert all(r["vs_torch"] is None for r in rows)  # no torch row to compare with


def test_parse_size():
    assert benchmark.parse_size("32x100x128x256") == benchmark.Size(32, 100, 128, 256)
    assert str(benchmark.Size(1, 2, 3, 4)) == "1x2x3x4"
    for bad in ("32x100x128", "32x0x1x1", "axbxcxd"):
        with pytest.raises(ValueError, match="BxTxIxH"):
            benchmark.parse_size(bad)


def test_unknown_peer_and_cell_are_named():
    with pytest.raises(ValueError, match="'mxnet'"):
        benchmark.run(benchmark.Config(peers=("mxnet",)))
    with pytest.raises(ValueError, match="'lstmp'"):
        benchmark.run(benchmark.Config(cells=("lstmp",)))


def test_ratios_by_hand():
    rows = [{"cell": "lstm", "size": "1x1x1x1", "peer": p, "tokens_per_s": t}
            for p, t in (("rnn_jax", 300.0), ("flax_linen", 100.0), ("flax_nnx", 150.0), ("torch", 200.0))]
    rows.append({"cell": "gru", "size": "1x1x1x1", "peer": "rnn_jax", "tokens_per_s": 50.0})
    benchmark.add_ratios(rows)
    got = {(r["cell"], r["peer"]): (r["vs_torch"], r["vs_best_flax"]) for r in rows}
    assert got[("lstm", "rnn_jax")] == (1.5, 2.0)
    assert got[("lstm", "flax_linen")] == (0.5, 100.0 / 150.0)
    assert got[("lstm", "torch")] == (1.0, 200.0 / 150.0)
    assert got[("gru", "rnn_jax")] == (None, None)  # other cells' rows never serve as reference
