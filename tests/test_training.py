"""Tests of rnn_jax.training: optimiser and schedules by hand, the train step against a hand-written
update, no retracing, host-side reduction and NaN checks, data parallelism on 2 forced host devices,
orbax checkpoints (keep-K, best, exact resume in process and across SIGKILL), metric files and plots.

A tiny GRU tagger (B=4, T=5, I=3, H=8, 2 classes, input dropout) on deterministic synthetic batches
serves as the model; ``batch_at(position)`` makes the data position explicit, as a real loader's is.
Run as ``python -m tests.test_training WORKDIR TOTAL SAVE_EVERY SLEEP`` this file is also the training
script that the SIGKILL test starts, stops and restarts.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnn_jax
from rnn_jax import training as tr

REPO = Path(__file__).resolve().parents[1]
B, T, I, H, C = 4, 5, 3, 8, 2
CELL = rnn_jax.gru(H)
DROPOUT = 0.25
DATA_START = 1000  # the data position of step 0: never equal to the step, so resume must restore it


def init_params(key):
    k_cell, k_out = jax.random.split(key)
    return {"cell": CELL.init(k_cell, I), "out": {"w": 0.3 * jax.random.normal(k_out, (H, C)), "b": jnp.zeros(C)}}


def loss_fn(params, batch, key):
    """Masked cross-entropy sum over valid steps, their count, and the correct-prediction sum."""
    xs = batch["x"]  # [B, T, I]
    if key is not None:  # training: input dropout, so the step's key matters
        keep = jax.random.bernoulli(key, 1.0 - DROPOUT, xs.shape)
        xs = jnp.where(keep, xs / (1.0 - DROPOUT), 0.0)
    _, hs = rnn_jax.unroll(CELL, params["cell"], xs, batch["lengths"])  # [B, T, H]
    logits = hs @ params["out"]["w"] + params["out"]["b"][None, None, :]  # [B, T, C]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])  # [B, T]
    mask = rnn_jax.lengths_to_mask(batch["lengths"], T).astype(jnp.float32)  # [B, T]
    correct = (jnp.argmax(logits, -1) == batch["y"]).astype(jnp.float32)
    return jnp.sum(ce * mask), jnp.sum(mask), {"correct_sum": jnp.sum(correct * mask)}


def batch_at(position: int, batch_size: int = B) -> dict:
    """The batch at a data position: x [B, T, I], lengths [B] in [0, T], y [B, T] (sign of a running sum)."""
    rng = np.random.default_rng(position)
    x = rng.normal(size=(batch_size, T, I)).astype(np.float32)
    lengths = rng.integers(0, T + 1, size=batch_size).astype(np.int32)
    y = (np.cumsum(x[..., 0], axis=1) > 0).astype(np.int32)
    return {"x": x, "lengths": lengths, "y": y}


@functools.lru_cache(maxsize=None)
def _tx(total_steps: int):
    # one transformation object per configuration: it is static in the state, so reusing it reuses traces
    return tr.make_optimizer("adam", 3e-2, schedule="linear_warmup_cosine", warmup_steps=2,
                             total_steps=total_steps, clip_norm=1.0)


@functools.lru_cache(maxsize=None)
def _jitted_train_step():
    return jax.jit(tr.make_train_step(loss_fn), donate_argnums=0)


_init_params = jax.jit(init_params)  # eager init would compile op by op


def fresh_state(total_steps: int, seed: int = 0) -> tr.TrainState:
    return tr.create_train_state(_init_params(jax.random.key(seed)), _tx(total_steps), jax.random.key(seed + 1))


def run_training(workdir, total_steps: int, save_every: int, *, stop_after: int | None = None,
                 sleep: float = 0.0, print_fn=print):
    """The training loop of an experiment in miniature: resume, train, checkpoint with the data position.

    Returns (state, {step: loss_sum}) for the steps this call ran. With `stop_after` it returns after that
    step without closing anything (the objects are then dropped, as a crash would); pending writes finish.
    """
    ckpt = tr.Checkpointer(workdir, save_every=save_every, keep=2)
    restored = ckpt.restore_latest(fresh_state(total_steps))
    state, extra = restored[:2] if restored else (fresh_state(total_steps), {"data_position": DATA_START})
    step, position = int(state.step), extra["data_position"]
    print_fn(f"start {step} {position}")
    train_step = _jitted_train_step()
    losses = {}
    while step < total_steps:
        state, metrics = train_step(state, batch_at(position))
        step, position = step + 1, position + 1
        losses[step] = float(metrics["loss_sum"])
        if ckpt.save(step, state, extra={"data_position": position}, force=step == total_steps):
            print_fn(f"saved {step}")
        if step == stop_after:
            ckpt.wait()
            return state, losses
        time.sleep(sleep)
    ckpt.close()
    return state, losses


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _assert_trees_equal(a, b):
    la, lb = _leaves(a), _leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------------------------- optimiser
def test_schedules_by_hand():
    lr = 0.1
    cos = tr.make_schedule(lr, "cosine", total_steps=10, min_lr_ratio=0.1)
    np.testing.assert_allclose([cos(0), cos(5), cos(10), cos(20)], [lr, lr * (0.1 + 0.9 * 0.5), lr * 0.1, lr * 0.1],
                               rtol=1e-6)
    warm = tr.make_schedule(lr, "linear_warmup_cosine", warmup_steps=4, total_steps=12)
    np.testing.assert_allclose([warm(0), warm(2), warm(4), warm(8), warm(12)],
                               [0.0, lr / 2, lr, lr * 0.5, 0.0], rtol=1e-6, atol=1e-9)
    step = tr.make_schedule(1.0, "step", decay_start=6, decay_every=2, decay_factor=0.5)
    np.testing.assert_allclose([step(s) for s in (0, 5, 6, 7, 8, 11)], [1, 1, 0.5, 0.5, 0.25, 0.125])
    step_warm = tr.make_schedule(1.0, "step", warmup_steps=2, decay_start=4, decay_every=4)
    np.testing.assert_allclose([step_warm(s) for s in (0, 1, 2, 3, 4, 8)], [0, 0.5, 1, 1, 0.5, 0.25])
    assert float(tr.make_schedule(lr)(1000)) == pytest.approx(lr)


def test_optimizers_against_hand_updates():
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.5])}
    grads = {"w": jnp.array([3.0, 0.0]), "b": jnp.array([4.0])}  # global norm 5

    def update(tx):
        u, _ = tx.update(grads, tx.init(params), params)
        return u

    # clipping first: norm 5 -> 1, then plain SGD
    u = update(tr.make_optimizer("sgd", 0.1, clip_norm=1.0))
    np.testing.assert_allclose(u["w"], [-0.1 * 3 / 5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(u["b"], [-0.1 * 4 / 5], rtol=1e-6)
    # SGD weight decay is coupled L2, as in torch.optim.SGD
    u = update(tr.make_optimizer("sgd", 0.1, weight_decay=0.01))
    np.testing.assert_allclose(u["w"], -0.1 * (np.array([3.0, 0.0]) + 0.01 * np.array([1.0, -2.0])), rtol=1e-6)
    # Adam's first step is -lr * sign(g) (bias-corrected moments), AdamW adds -lr * wd * p
    u = update(tr.make_optimizer("adam", 0.01))
    np.testing.assert_allclose(u["w"], [-0.01, 0.0], atol=1e-7)
    u = update(tr.make_optimizer("adamw", 0.01, weight_decay=0.1))
    np.testing.assert_allclose(u["w"], [-0.01 - 0.01 * 0.1 * 1.0, 0.01 * 0.1 * 2.0], atol=1e-7)
    # momentum: the second step's update is -lr * (g + m * g)
    tx = tr.make_optimizer("sgd", 0.1, momentum=0.9)
    s = tx.init(params)
    _, s = tx.update(grads, s, params)
    u, _ = tx.update(grads, s, params)
    np.testing.assert_allclose(u["b"], [-0.1 * (4.0 + 0.9 * 4.0)], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="rmsprop"), "optimizer name must be one of"),
    (dict(learning_rate=0.0), "learning_rate must be a number > 0"),
    (dict(schedule="exp"), "schedule must be one of"),
    (dict(schedule="cosine"), "needs total_steps"),
    (dict(schedule="cosine", total_steps=5, warmup_steps=5), r"total_steps \(5\) must exceed warmup_steps \(5\)"),
    (dict(schedule="linear_warmup_cosine", total_steps=5), "needs warmup_steps >= 1"),
    (dict(schedule="step", decay_start=3), "needs decay_start and decay_every"),
    (dict(schedule="step", decay_start=3, decay_every=2, decay_factor=1.5), "decay_factor must lie in"),
    (dict(weight_decay=0.1), "weight_decay > 0 needs name='adamw'"),
    (dict(name="adamw", weight_decay=-1.0), "weight_decay must be >= 0"),
    (dict(momentum=0.9), "momentum/nesterov apply to name='sgd' only"),
    (dict(name="sgd", nesterov=True), "nesterov=True needs momentum > 0"),
    (dict(clip_norm=0.0), "clip_norm must be None or > 0"),
    (dict(warmup_steps=-1), "warmup_steps must be an integer >= 0"),
    (dict(learning_rate=optax.constant_schedule(0.1), schedule="cosine"), "already a schedule"),
])
def test_optimizer_errors(kwargs, match):
    kwargs = {"name": "adam", "learning_rate": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        tr.make_optimizer(kwargs.pop("name"), kwargs.pop("learning_rate"), **kwargs)


def test_create_train_state_checks_key_and_tx():
    params = init_params(jax.random.key(0))
    with pytest.raises(TypeError, match="tx must be an optax.GradientTransformation"):
        tr.create_train_state(params, lambda g: g, jax.random.key(0))
    with pytest.raises(ValueError, match="key must be a jax.random.key or a raw uint32 key"):
        tr.create_train_state(params, _tx(8), jnp.zeros(2, jnp.float32))
    raw = tr.create_train_state(params, _tx(8), jax.random.PRNGKey(3))  # raw keys are accepted too
    assert raw.key.dtype == jnp.uint32 and int(raw.step) == 0


# ------------------------------------------------------------------------------------------------- steps
def test_train_step_against_hand_update():
    tx = tr.make_optimizer("sgd", 0.5)
    state = tr.create_train_state(_init_params(jax.random.key(0)), tx, jax.random.key(7))
    state = state.replace(step=jnp.asarray(3, jnp.int32))
    batch, grad_scale = batch_at(0), 2.0
    step_fn = tr.make_train_step(loss_fn, grad_scale=grad_scale, learning_rate_fn=lambda s: 0.5 / (1 + s))
    new, metrics = jax.jit(step_fn)(state, batch)

    @jax.jit
    def reference(params, key):  # the update written out: SGD on grad_scale * (loss_sum / count)
        (loss_sum, count, aux), vjp = jax.vjp(lambda p: loss_fn(p, batch, key), params)
        (grads,) = vjp((grad_scale / count, jnp.zeros(()), jax.tree.map(jnp.zeros_like, aux)))
        return jax.tree.map(lambda p, g: p - 0.5 * g, params, grads), loss_sum, count, aux, grads

    key = jax.random.fold_in(jax.random.key(7), 3)
    expected, loss_sum, count, aux, grads = reference(state.params, key)
    chex.assert_trees_all_close(new.params, expected, rtol=1e-5, atol=1e-6)
    assert int(new.step) == 4
    np.testing.assert_allclose(metrics["loss_sum"], loss_sum, rtol=1e-5)
    np.testing.assert_allclose(metrics["count"], count)
    np.testing.assert_allclose(metrics["correct_sum"], aux["correct_sum"])
    np.testing.assert_allclose(metrics["grad_norm"], optax.tree.norm(grads), rtol=1e-5)  # of the scaled gradient
    np.testing.assert_allclose(metrics["learning_rate"], 0.5 / 4, rtol=1e-6)
    # the key is the step's: another step's key drops other inputs and gives another loss
    assert float(reference(state.params, jax.random.fold_in(key, 1))[1]) != pytest.approx(float(loss_sum))


def test_jitted_train_step_does_not_retrace():
    step_fn = jax.jit(chex.assert_max_traces(tr.make_train_step(loss_fn), n=1), donate_argnums=0)
    state = fresh_state(8)
    for position in range(3):  # new data each call, same shapes: one trace
        state, _ = step_fn(state, batch_at(position))
    assert int(state.step) == 3


def test_all_padding_batch_gives_zero_loss_and_no_nan():
    batch = dict(batch_at(0), lengths=np.zeros(B, np.int32))
    state = fresh_state(8)
    new, metrics = _jitted_train_step()(state, batch)
    assert float(metrics["count"]) == 0 and float(metrics["loss_sum"]) == 0 and float(metrics["grad_norm"]) == 0
    tr.check_finite(metrics, 1)


def test_eval_step_is_deterministic_and_matches_loss_fn():
    state = fresh_state(8)
    eval_step = jax.jit(tr.make_eval_step(loss_fn))
    m1, m2 = eval_step(state, batch_at(5)), eval_step(state, batch_at(5))
    loss_sum, count, aux = loss_fn(state.params, batch_at(5), None)
    np.testing.assert_allclose(m1["loss_sum"], loss_sum, rtol=1e-6)
    assert float(m1["loss_sum"]) == float(m2["loss_sum"])
    assert set(m1) == {"loss_sum", "count", "correct_sum"} and float(m1["count"]) == float(count)


def test_loss_fn_contract_errors():
    state, batch = fresh_state(8), batch_at(0)
    with pytest.raises(ValueError, match="reserved names"):
        tr.make_train_step(lambda p, b, k: (jnp.zeros(()), jnp.ones(()), {"grad_norm": 0.0}))(state, batch)
    with pytest.raises(ValueError, match=r"loss_sum must be a scalar, got shape \(4,\)"):
        tr.make_eval_step(lambda p, b, k: (jnp.zeros(4), jnp.ones(()), {}))(state, batch)


def test_reduce_metrics_by_hand():
    steps = [{"loss_sum": 3.0, "count": 2.0, "grad_norm": 1.0, "tok_sum": 4.0, "tok_count": 8.0},
             {"loss_sum": np.float32(5.0), "count": jnp.asarray(6.0), "grad_norm": 3.0, "tok_sum": 0.0,
              "tok_count": 0.0}]
    out = tr.reduce_metrics(steps)
    assert out == {"loss": 1.0, "count": 8.0, "grad_norm": 2.0, "tok": 0.5, "tok_count": 8.0}
    assert math.isnan(tr.reduce_metrics([{"loss_sum": 0.0, "count": 0.0}])["loss"])
    with pytest.raises(ValueError, match="empty list"):
        tr.reduce_metrics([])
    with pytest.raises(ValueError, match=r"metrics\[1\] has keys"):
        tr.reduce_metrics([{"loss_sum": 1.0, "count": 1.0}, {"loss_sum": 1.0}])


def test_check_finite_names_the_first_bad_step():
    ok = {"loss_sum": 1.0, "grad_norm": 2.0}
    tr.check_finite(ok, 3)
    with pytest.raises(FloatingPointError, match=r"non-finite loss_sum=nan at step 7"):
        tr.check_finite({"loss_sum": float("nan"), "grad_norm": 1.0}, 7)
    window = [ok, ok, {"loss_sum": 1.0, "grad_norm": float("inf")}, {"loss_sum": float("nan"), "grad_norm": 1.0}]
    with pytest.raises(FloatingPointError, match=r"grad_norm=inf at step 9"):
        tr.check_finite(window, 10)  # steps 7..10: the first bad one is 9
    with pytest.raises(ValueError, match="none of"):
        tr.check_finite({"accuracy": 1.0}, 1)
    # a real divergence: a NaN parameter poisons loss and gradients
    state = fresh_state(8)
    state = state.replace(params=jax.tree.map(lambda p: p * jnp.nan, state.params))
    _, metrics = _jitted_train_step()(state, batch_at(0))
    with pytest.raises(FloatingPointError, match="at step 1"):
        tr.check_finite(metrics, 1)


# ---------------------------------------------------------------------------------------------- sharding
def test_shard_batch_single_device_gives_the_same_step():
    mesh = tr.make_mesh()
    batch = tr.shard_batch(batch_at(0), mesh)
    assert batch["x"].sharding == tr.batch_sharding(mesh)
    ref_state, ref = _jitted_train_step()(fresh_state(8), batch_at(0))
    new, m = _jitted_train_step()(tr.replicate(fresh_state(8), mesh), batch)
    _assert_trees_equal(new.params, ref_state.params)
    assert float(m["loss_sum"]) == float(ref["loss_sum"])


_TWO_DEVICE_SCRIPT = r"""
import json, jax, numpy as np, chex
from rnn_jax import training as tr
from tests.test_training import batch_at, fresh_state, loss_fn
assert jax.device_count() == 2, jax.devices()
mesh = tr.make_mesh()
step_fn = jax.jit(chex.assert_max_traces(tr.make_train_step(loss_fn), n=1), donate_argnums=0)
state = tr.replicate(fresh_state(8), mesh)
ref = fresh_state(8)
ref_step = jax.jit(tr.make_train_step(loss_fn))  # inputs on the default device only
out = {}
for pos in range(2):
    batch = tr.shard_batch(batch_at(pos), mesh)
    out["x_shards"] = sorted(s.data.shape[0] for s in batch["x"].addressable_shards)
    state, m = step_fn(state, batch)
    ref, m_ref = ref_step(ref, batch_at(pos))   # unsharded, one device
diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
         zip(jax.tree.leaves(state.params), jax.tree.leaves(ref.params))]
out["max_param_diff"] = max(diffs)
out["loss"] = [float(m["loss_sum"]), float(m_ref["loss_sum"])]
out["params_replicated"] = all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state.params))
try:
    tr.shard_batch(batch_at(0, batch_size=3), mesh)
except ValueError as e:
    out["error"] = str(e)
print("RESULT " + json.dumps(out))
"""


def test_data_parallel_on_two_host_devices():
    flags = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", _TWO_DEVICE_SCRIPT], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["x_shards"] == [2, 2]  # batch 4 split over 2 devices
    assert out["params_replicated"]
    assert out["max_param_diff"] < 1e-6  # sharded sums differ from unsharded ones by rounding only
    assert out["loss"][0] == pytest.approx(out["loss"][1], rel=1e-6)
    assert "leading (batch) axis 3 is not divisible by the 2 devices" in out["error"]
    assert "batch leaf ['lengths'] has shape (3,)" in out["error"]  # leaves in key order


# ----------------------------------------------------------------------------------------------- checkpoints
def test_save_and_restore_are_exact(tmp_path):
    state = fresh_state(8)
    step_fn = _jitted_train_step()
    for pos in range(3):
        state, _ = step_fn(state, batch_at(pos))
    with tr.Checkpointer(tmp_path, save_every=10) as ckpt:
        assert ckpt.restore_latest(fresh_state(8)) is None
        assert ckpt.save(3, state, extra={"data_position": 1003, "vocab_path": "vocab.json"}, force=True)
        with pytest.raises(ValueError, match=r"save\(step=10\) got a state at step 3"):
            ckpt.save(10, state)
    template = fresh_state(8, seed=5)  # other params and key: restore must replace them all
    restored, extra, items = tr.Checkpointer(tmp_path, save_every=10).restore_latest(template)
    assert items is None  # none saved, none asked for
    assert extra == {"data_position": 1003, "vocab_path": "vocab.json"}
    _assert_trees_equal(restored.params, state.params)
    _assert_trees_equal(restored.opt_state, state.opt_state)  # Adam moments and counts, bit for bit
    assert restored.step.dtype == jnp.int32 and int(restored.step) == 3
    assert jnp.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(restored.key), jax.random.key_data(state.key))
    assert restored.tx is template.tx


def _state_at(step: int, value: float) -> tr.TrainState:
    params = {"w": jnp.full((2,), value)}
    tx = optax.sgd(0.1)
    return tr.create_train_state(params, tx, jax.random.key(0)).replace(step=jnp.asarray(step, jnp.int32))


@pytest.mark.parametrize("best_mode, kept, best", [("min", [2, 5, 6], 2), ("max", [5, 6], 6)])
def test_keep_last_k_plus_best(tmp_path, best_mode, kept, best):
    valid = {1: 5.0, 2: 2.0, 3: 4.0, 4: None, 5: 3.0, 6: 7.0}  # step 4 saved without a validation loss
    with tr.Checkpointer(tmp_path, save_every=1, keep=2, best_metric="valid_loss", best_mode=best_mode,
                         async_save=False) as ckpt:
        for step, v in valid.items():
            metrics = None if v is None else {"valid_loss": v, "train_loss": 9.0}
            assert ckpt.save(step, _state_at(step, float(step)), metrics=metrics)
        assert not ckpt.save(6, _state_at(6, 6.0), force=True)  # that step exists: no second save
        assert ckpt.all_steps() == kept and ckpt.best_step == best
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == kept
    reopened = tr.Checkpointer(tmp_path, save_every=1, keep=2, best_metric="valid_loss", best_mode=best_mode)
    assert reopened.all_steps() == kept and reopened.best_step == best and reopened.latest_step == 6
    state, _, _ = reopened.restore(_state_at(0, 0.0), best)
    np.testing.assert_array_equal(state.params["w"], [best, best])
    reopened.close()


def test_keep_last_k_without_best_and_save_every(tmp_path):
    with tr.Checkpointer(tmp_path, save_every=2, keep=2, async_save=False) as ckpt:
        saved = [s for s in range(1, 10) if ckpt.save(s, _state_at(s, 0.0), metrics={"valid_loss": 1.0 / s})]
        assert saved == [2, 4, 6, 8]
        assert ckpt.save(9, _state_at(9, 0.0), force=True)  # the final step, off the grid
        assert ckpt.all_steps() == [8, 9] and ckpt.best_step is None


@pytest.mark.parametrize("kwargs, match", [(dict(save_every=0), "save_every must be an integer >= 1"),
                                           (dict(save_every=1, keep=0), "keep must be an integer >= 1"),
                                           (dict(save_every=1, best_mode="lowest"), "best_mode must be")])
def test_checkpointer_argument_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tr.Checkpointer(tmp_path, **kwargs)


def test_resume_continues_the_same_curve(tmp_path):
    total = 8
    ref_state, ref_losses = run_training(tmp_path / "ref", total, save_every=4, print_fn=lambda s: None)
    # a run that dies at step 6, two steps after its checkpoint at 4; its objects are simply dropped
    run_training(tmp_path / "run", total, save_every=4, stop_after=6, print_fn=lambda s: None)
    lines = []
    state, losses = run_training(tmp_path / "run", total, save_every=4, print_fn=lines.append)
    assert lines[0] == f"start 4 {DATA_START + 4}"  # step and data position restored
    assert sorted(losses) == [5, 6, 7, 8]
    assert losses == {s: ref_losses[s] for s in losses}  # the same curve, exactly
    _assert_trees_equal(state.params, ref_state.params)
    _assert_trees_equal(state.opt_state, ref_state.opt_state)


def test_resume_after_sigkill(tmp_path):
    """Runs the training script, SIGKILLs it after its second save, restarts it; final params are exact."""
    total, save_every = 24, 4
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "tests.test_training", str(workdir), str(total), str(save_every), "0.04"]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line.strip())
            if line.strip() == f"saved {2 * save_every}":  # the save at 4 is on disk once the one at 8 starts
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, seen
    on_disk = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert on_disk and on_disk[-1] >= save_every
    resume_from = on_disk[-1]
    assert resume_from < total  # it really died mid-run

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.splitlines()
    assert out[0] == f"start {resume_from} {DATA_START + resume_from}"
    # a write the kill interrupted (usually step 8's: "8.orbax-checkpoint-tmp") is gone; keep=2 held
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == [str(total - save_every), str(total)]
    final = np.load(workdir / "final.npz")
    losses = json.loads((workdir / "losses.json").read_text())

    with jax.default_device(jax.devices("cpu")[0]):  # the script ran on CPU: compare like with like
        ref_state, ref_losses = run_training(tmp_path / "ref", total, save_every, print_fn=lambda s: None)
    for i, leaf in enumerate(_leaves(ref_state.params)):
        np.testing.assert_array_equal(final[f"leaf_{i}"], leaf)
    assert {int(k): v for k, v in losses.items()} == {s: ref_losses[s] for s in range(resume_from + 1, total + 1)}


def _script_main(argv):
    workdir, total, save_every, sleep = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    state, losses = run_training(workdir, total, save_every, sleep=sleep, print_fn=lambda s: print(s, flush=True))
    np.savez(Path(workdir) / "final.npz", **{f"leaf_{i}": x for i, x in enumerate(_leaves(state.params))})
    (Path(workdir) / "losses.json").write_text(json.dumps(losses))


# ----------------------------------------------------------------------------------------------- metrics
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


_MALLOC_PROBE = """
import ctypes, sys, threading
import numpy as np
from rnn_jax.training import keep_host_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                              "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mapped_while_holding(nbytes):
    block = np.ones(nbytes, np.uint8)  # numpy takes large blocks from malloc
    mapped = libc.mallinfo2().hblkhd
    del block
    return mapped

def mapped_while_a_thread_holds(nbytes):
    out = []
    thread = threading.Thread(target=lambda: out.append(mapped_while_holding(nbytes)))
    thread.start()
    thread.join()
    return out[0]

n = 64 << 20
before = mapped_while_holding(n)
ok = keep_host_memory()
# a thread's own arena (heaps of at most 64 MiB) would mmap a 128 MiB block whatever M_MMAP_MAX says
print(before >= n, ok, mapped_while_holding(n) < n, mapped_while_a_thread_holds(2 * n) < n)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc malloc only")
def test_keep_host_memory_stops_malloc_from_mapping_large_blocks():
    """Before: glibc serves a 64 MiB block with mmap; after keep_host_memory, from the heap it keeps, also
    for a block larger than a thread arena's heap, allocated on another thread."""
    out = subprocess.run([sys.executable, "-c", _MALLOC_PROBE], capture_output=True, text=True, cwd=REPO,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.split()
    assert out == ["True", "True", "True", "True"]


if __name__ == "__main__":
    _script_main(sys.argv[1:])
