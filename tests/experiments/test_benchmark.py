"""Tests of experiments/benchmark.py and experiments/bench_lib: the command end to end on tiny sizes (grid and
long study), variable lengths, variants, FLOP counts by hand, interleaving, unavailable peers, bad names."""

import json
import math
import time

from absl import flags
from absl.testing import flagsaver
import jax
import numpy as np
import pytest

from experiments import benchmark
from experiments.bench_lib import flops, long_seq, peers, timing, workload
from experiments.bench_lib.workload import Case, Size

FLAGS = flags.FLAGS
ON_GPU = jax.default_backend() == "gpu"
HAS_TORCH = peers.import_torch() is not None
TINY = Size(3, 6, 4, 5)


@pytest.fixture(autouse=True)
def _parsed_flags():
    # pytest never runs absl's parser; mark the defaults as parsed so flagsaver can override them.
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()


def _check_timed_row(r, repeats):
    assert r["status"] == "ok", r
    assert len(r["times_s"]) == repeats
    assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
    assert r["compile_s"] > 0
    assert math.isfinite(r["tokens_per_s"]) and r["tokens_per_s"] == pytest.approx(r["tokens"] / r["median_s"])
    assert r["gflops_per_s"] == pytest.approx(r["gflop"] / r["median_s"])
    assert r["gflop"] > 0 and r["roofline_fraction"] > 0


def test_main_quick_writes_all_outputs(tmp_path, capsys):
    peer_list = ["rnn_jax", "flax_linen", "flax_nnx"] + (["torch"] if HAS_TORCH else []) + ["jax_experimental_rnn"]
    with flagsaver.flagsaver(quick=True, grid="custom", cells=["lstm"], out_dir=str(tmp_path),
                             peers=",".join(peer_list)):
        benchmark.main(["benchmark"])
    payload = json.loads((tmp_path / "results.json").read_text())
    rows = payload["rows"]
    assert [(r["config"], r["peer"]) for r in rows] == [("lstm 4x8x8x16", p) for p in peer_list]
    roofline = payload["roofline"]
    assert roofline["n"] == 256 and roofline["gflops_per_s"] > 0
    for r in rows:
        if r["peer"] == "jax_experimental_rnn" and not ON_GPU:
            assert r["status"].startswith("unavailable: ") and r["tokens_per_s"] is None, r
            continue
        _check_timed_row(r, repeats=2)  # --quick: 2 repeats
        assert r["tokens"] == 4 * 8 and r["roofline_fraction"] == pytest.approx(r["gflops_per_s"] /
                                                                                roofline["gflops_per_s"])
        by_peer = {x["peer"]: x for x in rows if x["config"] == r["config"]}
        best_flax = max(by_peer["flax_linen"]["tokens_per_s"], by_peer["flax_nnx"]["tokens_per_s"])
        assert r["vs_best_flax"] == pytest.approx(r["tokens_per_s"] / best_flax)
        if HAS_TORCH:
            assert r["vs_torch"] == pytest.approx(r["tokens_per_s"] / by_peer["torch"]["tokens_per_s"])
    assert payload["machine"]["cpu_count"] >= 1 and payload["config"]["cases"][0]["size"] == "4x8x8x16"

    markdown = (tmp_path / "results.md").read_text()
    assert markdown.startswith("machine: ") and "| config | peer |" in markdown
    assert markdown.count("\n| lstm 4x8x8x16 |") == len(peer_list)
    assert ("| jax_experimental_rnn | unavailable: " in markdown) != ON_GPU
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("machine: ") and "cores" in printed[0] and "torch" in printed[0]
    assert "roofline" in printed[1] and "tokens/s" in printed[2] and "x best flax" in printed[2]
    assert any("jax_experimental_rnn" in l and "unavailable: " in l for l in printed) != ON_GPU


def test_variable_lengths_and_a_variant():
    config = benchmark.Config(cases=(Case("lstm", TINY, bidirectional=True),), lengths="variable",
                              repeats=1, warmup=0, roofline_n=64,
                              peers=("rnn_jax", "rnn_jax:hoist_inputs=false,unroll=2", "flax_nnx")
                              + (("torch",) if HAS_TORCH else ()))
    roofline, rows = benchmark.run(config)
    lengths = workload.draw_lengths(TINY.batch, TINY.time)
    assert [r["peer"] for r in rows] == list(config.peers)
    for r in rows:
        _check_timed_row(r, repeats=1)
        assert r["lengths"] == "variable" and r["config"] == "lstm 3x6x4x5 bi"
        assert r["tokens"] == lengths.sum() < TINY.batch * TINY.time  # real tokens only
        assert r["gflop"] == pytest.approx(flops.recurrent_flops("lstm", 4, 5, int(lengths.sum()),
                                                                 bidirectional=True, mode="train") / 1e9)


def test_draw_lengths():
    for B, T in ((1, 1), (5, 4), (64, 100)):
        lengths = workload.draw_lengths(B, T)
        assert lengths.shape == (B,) and lengths.dtype == np.int32
        assert lengths.min() >= max(1, T // 4) and lengths.max() == T
        np.testing.assert_array_equal(lengths, workload.draw_lengths(B, T))  # drawn once, same every run


def test_forward_mode_bfloat16_rows():
    config = benchmark.Config(cases=(Case("gru", TINY),), mode="forward", dtype="bfloat16", repeats=1, warmup=0,
                              roofline_n=64, peers=("rnn_jax",) + (("torch",) if HAS_TORCH else ()))
    roofline, rows = benchmark.run(config)
    assert roofline["dtype"] == "bfloat16"
    for r in rows:
        _check_timed_row(r, repeats=1)
        assert r["mode"] == "forward" and r["dtype"] == "bfloat16"
        assert r["gflop"] == pytest.approx(2 * 18 * (4 + 5) * 3 * 5 / 1e9)  # forward: no 3x
    if HAS_TORCH:
        assert "autocast(bfloat16)" in rows[-1]["note"]  # and on CPU: "(autocast does not cover GRU ...)"


def test_flops_by_hand():
    # LSTM, 1 layer, N = 2*3 tokens, I=5, H=7: 2 * N * (I + H) * 4H
    assert flops.recurrent_flops("lstm", 5, 7, 6) == 2 * 6 * 12 * 28 == 4032
    assert flops.recurrent_flops("lstm", 5, 7, 6, mode="train") == 3 * 4032
    # GRU, 2 bidirectional layers: layer 0 sees I=5, layer 1 sees 2H=14; each layer has 2 directions
    assert flops.recurrent_flops("gru", 5, 7, 6, layers=2, bidirectional=True) == (
        2 * (2 * 6 * (5 + 7) * 21) + 2 * (2 * 6 * (14 + 7) * 21)) == 16632
    assert flops.recurrent_flops("rnn", 5, 7, 6) == 2 * 6 * 12 * 7
    # projected LSTM (P=3): the recurrent input is P wide, plus the [H, P] projection
    assert flops.recurrent_flops("lstm", 5, 7, 6, proj_size=3) == 2 * 6 * (5 + 3) * 28 + 2 * 6 * 7 * 3
    with pytest.raises(ValueError, match="'lstmp'"):
        flops.recurrent_flops("lstmp", 1, 1, 1)


def test_peer_variants_parse_and_reach_the_spec():
    assert peers.parse_peer("rnn_jax") == ("rnn_jax", {})
    assert peers.parse_peer("rnn_jax:hoist_inputs=false,unroll=2") == ("rnn_jax", {"hoist_inputs": False,
                                                                                   "unroll": 2})
    assert peers.parse_peer("rnn_jax:checkpoint=True,dtype=bfloat16,dropout=0.5") == (
        "rnn_jax", {"checkpoint": True, "dtype": "bfloat16", "dropout": 0.5})
    assert peers.split_peer_list("rnn_jax, rnn_jax:hoist_inputs=false,unroll=2,torch,rnn_jax:unroll=4") == [
        "rnn_jax", "rnn_jax:hoist_inputs=false,unroll=2", "torch", "rnn_jax:unroll=4"]
    w = workload.make_workload(Case("lstm", TINY), "forward", "float32", "fixed")
    with pytest.raises(ValueError, match="dropout must lie in"):  # the spec's own check: overrides reach it
        peers.prepare("rnn_jax:dropout=1.5", w)


@pytest.mark.parametrize("name, message", [
    ("rnn_jax:hoist=false", "unknown rnn_jax spec field 'hoist'"),
    ("rnn_jax:unroll=two", "'unroll' takes a value of type int, got 'two'"),
    ("rnn_jax:checkpoint=maybe", "'checkpoint' takes a value of type bool"),
    ("rnn_jax:hidden_size=3", "'hidden_size' is set by the benchmark row"),
    ("rnn_jax:unroll", "field=value"),
    ("torch:unroll=2", "only rnn_jax takes spec overrides"),
    ("mxnet", "'mxnet'"),
])
def test_bad_peer_names_are_explained(name, message):
    with pytest.raises(ValueError, match=message):
        peers.parse_peer(name)


def test_bad_config_fails_before_any_work():
    with pytest.raises(ValueError, match="GRU .* does not have"):  # proj_size is an LSTM field
        benchmark.check_config(benchmark.Config(cases=(Case("gru", TINY),), peers=("rnn_jax:proj_size=2",)))
    with pytest.raises(ValueError, match="'lstmp'"):
        benchmark.check_config(benchmark.Config(cases=(Case("lstmp", TINY),)))
    with flagsaver.flagsaver(quick=True, peers="rnn_jax,rnn_jax:hoist=false"):
        with pytest.raises(ValueError, match="unknown rnn_jax spec field 'hoist'"):
            benchmark.main(["benchmark"])


def test_jax_experimental_rnn_is_unavailable_off_gpu():
    gru = workload.make_workload(Case("gru", TINY), "train", "float32", "fixed")
    with pytest.raises(peers.Unavailable, match="LSTM only"):
        peers.prepare("jax_experimental_rnn", gru)
    if not ON_GPU:
        lstm = workload.make_workload(Case("lstm", TINY), "train", "float32", "variable")
        with pytest.raises(peers.Unavailable, match="needs cuDNN; JAX backend is"):
            peers.prepare("jax_experimental_rnn", lstm)


def test_a_kernel_by_name_that_cannot_run_the_case_is_unavailable():
    gru = workload.make_workload(Case("gru", TINY), "train", "float32", "fixed")
    with pytest.raises(peers.Unavailable, match="kernel='cudnn' cannot run this layer: .*not 'gru'" if ON_GPU
                       else "kernel='cudnn' cannot run this layer: cuDNN runs on a GPU backend"):
        peers.prepare("rnn_jax:kernel=cudnn", gru)
    assert peers.prepare("rnn_jax:kernel=scan", gru).call is not None


def test_time_interleaved_is_round_robin_with_an_untimed_run_before_each_timed_one():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in "abc"}
    times = timing.time_interleaved(calls, warmup=1, repeats=2, settle_s=0.0)
    assert order == list("abc") + list("aabbcc") * 2  # warm-up round, then twice per call per round
    assert {k: len(v) for k, v in times.items()} == {"a": 2, "b": 2, "c": 2}


def test_time_interleaved_settles_untimed():
    calls = {"a": lambda: None, "b": lambda: None}
    start = time.perf_counter()
    times = timing.time_interleaved(calls, warmup=0, repeats=2, settle_s=0.02)
    assert time.perf_counter() - start >= 4 * 0.02  # a pause after every timed call ...
    assert max(max(v) for v in times.values()) < 0.02  # ... outside the timings


def test_config_from_flags_grids():
    with flagsaver.flagsaver(quick=True):
        config = benchmark.config_from_flags()
    assert config.cases == tuple(dict.fromkeys(c._replace(size=workload.QUICK_SIZE) for c in workload.DEFAULT_GRID))
    assert len(config.cases) == 4 and config.repeats == 2 and config.peers == peers.DEFAULT_PEERS
    with flagsaver.flagsaver(grid="custom", cells=["gru", "rnn"], sizes=["2x3x4x5", "6x7x8x9"], layers=2):
        config = benchmark.config_from_flags()
    assert [(c.cell, str(c.size), c.layers) for c in config.cases] == [
        ("gru", "2x3x4x5", 2), ("gru", "6x7x8x9", 2), ("rnn", "2x3x4x5", 2), ("rnn", "6x7x8x9", 2)]
    assert workload.DEFAULT_GRID[-1] == Case("lstm", Size(32, 100, 128, 256), 2, True)
    assert not config.keep_host_memory and "keep_host_memory" not in benchmark.config_line(config, None)
    with flagsaver.flagsaver(keep_host_memory=True):  # main() would apply it: not here, it is process-wide
        config = benchmark.config_from_flags()
    assert config.keep_host_memory and "keep_host_memory" in benchmark.config_line(config, None)


def test_main_long_quick(tmp_path, capsys):
    with flagsaver.flagsaver(quick=True, long=True, out_dir=str(tmp_path), peers="rnn_jax,torch"):
        benchmark.main(["benchmark"])
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["peer"], r["checkpoint"]) for r in rows] == [("rnn_jax", False), ("rnn_jax", True)]
    for r in rows:
        assert r["status"] == "ok" and r["size"] == str(long_seq.QUICK_LONG_SIZE), r
        assert r["step_s"] > 0 and math.isfinite(r["loss"]) and r["temp_mb"] >= 0
        assert r["process_peak_rss_mb"] > 50  # a Python process with JAX loaded
        if r["step_peak_rss_mb"] is not None:
            assert r["step_peak_rss_mb"] >= r["rss_before_mb"] * 0.9
    assert (tmp_path / "results.png").stat().st_size > 0 and "checkpoint" in (tmp_path / "results.md").read_text()
    assert "XLA temp MB" in capsys.readouterr().out


def test_parse_size():
    assert workload.parse_size("32x100x128x256") == Size(32, 100, 128, 256)
    assert str(Size(1, 2, 3, 4)) == "1x2x3x4"
    for bad in ("32x100x128", "32x0x1x1", "axbxcxd"):
        with pytest.raises(ValueError, match="BxTxIxH"):
            workload.parse_size(bad)


def test_ratios_by_hand():
    rows = [{"config": "lstm 1x1x1x1", "peer": p, "tokens_per_s": t}
            for p, t in (("rnn_jax", 300.0), ("flax_linen", 100.0), ("flax_nnx", 150.0), ("torch", 200.0),
                         ("jax_experimental_rnn", None))]
    rows.append({"config": "gru 1x1x1x1", "peer": "rnn_jax", "tokens_per_s": 50.0})
    benchmark.add_ratios(rows)
    got = {(r["config"].split()[0], r["peer"]): (r["vs_torch"], r["vs_best_flax"]) for r in rows}
    assert got[("lstm", "rnn_jax")] == (1.5, 2.0)
    assert got[("lstm", "flax_linen")] == (0.5, 100.0 / 150.0)
    assert got[("lstm", "torch")] == (1.0, 200.0 / 150.0)
    assert got[("lstm", "jax_experimental_rnn")] == (None, None)  # unavailable: no ratio
    assert got[("gru", "rnn_jax")] == (None, None)  # other configurations' rows never serve as reference
