"""The training loop against hand-computed trajectories: cadence, selection, resume, NaN stop, devices."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnn_jax import training
from tests.training.conftest import REPO
from tests.training.toy_task import ToyTask

QUIET = {"print_fn": lambda line: None}


def _w(t: int, lr: float = 0.1, y: float = 1.0) -> float:
    """The toy task's parameter after t SGD steps from 0 on targets y (x = 1)."""
    return y * (1.0 - (1.0 - 2.0 * lr) ** t)


def _jsonl(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_selects_the_best_dev_checkpoint_and_evaluates_every_set_with_it(tmp_path):
    task = ToyTask(total_steps=8, eval_targets=(("dev", 0.5), ("test", 0.0)))
    settings = training.LoopSettings(log_every=1, eval_every=1, keep=1, best_metric="dev_loss")
    results = training.train_and_evaluate(task, settings, tmp_path, **QUIET)
    xs = [1.0] * 3 + [1.5] * 3  # the eval sets: two batches of 3 rows, x = 1 then 1.5
    dev = {t: float(np.mean([(_w(t) * x - 0.5) ** 2 for x in xs])) for t in range(1, 9)}
    best = min(dev, key=dev.get)
    assert best == 2  # w_2 = 0.36: neither the first evaluation nor the last
    assert results["step"] == 8 and results["selected_step"] == best
    assert results["dev"]["loss"] == pytest.approx(dev[best], rel=1e-6)
    assert results["test"]["loss"] == pytest.approx(np.mean([(_w(best) * x) ** 2 for x in xs]), rel=1e-6)
    assert results["dev"]["rows"] == 6  # the task's host metrics saw every real row once
    logged = {r["step"]: r["dev_loss"] for r in _jsonl(tmp_path) if "dev_loss" in r}
    assert logged == pytest.approx(dev, rel=1e-6)


def test_the_last_step_is_evaluated_and_saved_once(tmp_path):
    task = ToyTask(total_steps=7)
    settings = training.LoopSettings(log_every=2, eval_every=3, save_every=3, keep=10)
    results = training.train_and_evaluate(task, settings, tmp_path, **QUIET)
    records = _jsonl(tmp_path)
    assert [r["step"] for r in records] == [2, 3, 4, 6, 7]  # log points: every 2, every eval/save, the last
    assert [r["step"] for r in records if "dev_loss" in r] == [3, 6, 7]
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [3, 6, 7]
    assert results["selected_step"] == 7  # no best metric: the last
    train_loss = {r["step"]: r["train_loss"] for r in records}
    assert train_loss[2] == pytest.approx(np.mean([(_w(0) - 1) ** 2, (_w(1) - 1) ** 2]), rel=1e-6)


def test_a_crashed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """Data position and carried state come back from the checkpoint: the resumed curve is the same one."""
    kwargs = dict(total_steps=9, vary=True, carry_weight=0.01, lr=0.05)
    settings = training.LoopSettings(log_every=1, save_every=2)
    full = training.train_and_evaluate(ToyTask(**kwargs), settings, tmp_path / "full", **QUIET)
    with pytest.raises(KeyboardInterrupt, match="batch 5"):
        training.train_and_evaluate(ToyTask(crash_at=5, **kwargs), settings, tmp_path / "crash", **QUIET)
    lines = []
    resumed = training.train_and_evaluate(ToyTask(**kwargs), settings, tmp_path / "crash", print_fn=lines.append)
    assert "resumed from step 4 (data position 4)" in lines[0]
    assert resumed["dev"]["loss"] == full["dev"]["loss"]  # bit-exact on CPU
    a = {r["step"]: r["train_loss"] for r in _jsonl(tmp_path / "full")}
    b = {r["step"]: r["train_loss"] for r in _jsonl(tmp_path / "crash")}
    assert b == a


def test_a_workdir_of_another_configuration_is_refused_naming_the_fields(tmp_path):
    settings = training.LoopSettings(log_every=1)
    config = {"model": {"hidden": 8, "cell": "lstm"}, "steps": 3, "log_every": 1}
    training.train_and_evaluate(ToyTask(total_steps=3), settings, tmp_path, config=config, **QUIET)
    other = {"model": {"hidden": 16, "cell": "gru"}, "steps": 3, "log_every": 1}
    with pytest.raises(ValueError, match=r"model\.cell: 'lstm' -> 'gru'; model\.hidden: 8 -> 16"):
        training.train_and_evaluate(ToyTask(total_steps=3), settings, tmp_path, config=other, **QUIET)
    longer = {**config, "steps": 5, "log_every": 2}  # resumable fields may change
    results = training.train_and_evaluate(ToyTask(total_steps=5), settings, tmp_path, config=longer, **QUIET)
    assert results["step"] == 5 and results["config"]["steps"] == 5


def test_a_non_finite_loss_stops_the_run_naming_the_step(tmp_path):
    task = ToyTask(total_steps=8, nan_at=4)  # batch 4 feeds step 5
    with pytest.raises(FloatingPointError, match="at step 5"):
        training.train_and_evaluate(task, training.LoopSettings(log_every=3, save_every=3), tmp_path, **QUIET)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [3]  # nothing after the NaN


def test_settings_and_task_errors(tmp_path):
    with pytest.raises(ValueError, match="eval_every must be an integer >= 1, got 0"):
        training.LoopSettings(eval_every=0)
    with pytest.raises(ValueError, match="best_mode"):
        training.LoopSettings(best_mode="up")
    task = ToyTask()
    task.dev_set = "valid"
    with pytest.raises(ValueError, match="task.dev_set 'valid' is not one of its eval_sets"):
        training.train_and_evaluate(task, training.LoopSettings(), tmp_path, **QUIET)


_FOUR_DEVICES = """
import json, sys
import jax
from rnn_jax import training
from tests.training.toy_task import ToyTask
assert jax.device_count() == 4
out = {}
for name, kwargs in (("batches", dict(eval_batches=((3, 2),))), ("stream", dict(eval_batches=((1, 3),),
                     stream_eval=True, carry_weight=0.01))):
    task = ToyTask(total_steps=4, **kwargs)
    results = training.train_and_evaluate(task, training.LoopSettings(log_every=2), sys.argv[1] + name,
                                          print_fn=lambda line: None)
    out[name] = [results["dev"]["loss"], results["dev"]["rows"]]
try:
    training.train_and_evaluate(ToyTask(batch_size=6), training.LoopSettings(), sys.argv[1] + "odd",
                                print_fn=lambda line: None)
except ValueError as e:
    out["error"] = str(e)
# one train step of the tagger: the batch split over the 4 devices against the same batch on one device;
# then 4 micro-batches of a sharded batch of 16 against that batch whole on one device (no dropout)
import numpy as np
from tests.training.tagger import batch_at, fresh_state, loss_fn
mesh = training.make_mesh()
def step_pair(loss, batch, **kwargs):
    sharded = training.shard_batch(batch, mesh)
    out["x_shards"] = sorted(s.data.shape[0] for s in sharded["x"].addressable_shards)
    new, m = jax.jit(training.make_train_step(loss, **kwargs))(training.replicate(fresh_state(8), mesh), sharded)
    ref, m_ref = jax.jit(training.make_train_step(loss))(fresh_state(8), batch)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(ref.params)))
    return [diff, float(m["loss_sum"]), float(m_ref["loss_sum"])]
out["step"] = step_pair(loss_fn, batch_at(0))
out["step_shards"] = out["x_shards"]
out["accumulated"] = step_pair(lambda p, b, k: loss_fn(p, b, None), batch_at(1, batch_size=16), micro_batches=4)
print(json.dumps(out))
"""


def test_four_devices_give_one_devices_results_and_pad_evaluation(tmp_path):
    """Batch sharded over 4 simulated devices; evaluation batches of 3 and one stream of 1 are padded; a
    train step (plain, and accumulated over 4 micro-batches) gives one device's parameters to 1e-5."""
    one = {}
    for name, kwargs in (("batches", dict(eval_batches=((3, 2),))),
                         ("stream", dict(eval_batches=((1, 3),), stream_eval=True, carry_weight=0.01))):
        results = training.train_and_evaluate(ToyTask(total_steps=4, **kwargs), training.LoopSettings(log_every=2),
                                              tmp_path / name, **QUIET)
        one[name] = [results["dev"]["loss"], results["dev"]["rows"]]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _FOUR_DEVICES, str(tmp_path / "four_")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    four = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("batches", "stream"):
        assert four[name][1] == one[name][1]  # padding rows never reach the host metrics
        assert four[name][0] == pytest.approx(one[name][0], rel=1e-6)
    assert "not divisible by the 4 devices" in four["error"]
    assert four["step_shards"] == [1, 1, 1, 1] and four["x_shards"] == [4, 4, 4, 4]  # really split
    for name in ("step", "accumulated"):
        diff, loss, ref_loss = four[name]
        assert diff < 1e-5 and loss == pytest.approx(ref_loss, rel=1e-5), (name, four[name])
