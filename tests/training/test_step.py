"""Tests of rnn_jax.training.step: the train step against a hand-written update, no retracing, all-padding
batches, the eval step, the loss_fn contract, host-side reduction and NaN checks."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnn_jax import training as tr
from tests.training.tagger import B, batch_at, fresh_state, jitted_init_params, jitted_train_step, loss_fn


def test_train_step_against_hand_update():
    tx = tr.make_optimizer("sgd", 0.5)
    state = tr.create_train_state(jitted_init_params(jax.random.key(0)), tx, jax.random.key(7))
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
    new, metrics = jitted_train_step()(state, batch)
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
    _, metrics = jitted_train_step()(state, batch_at(0))
    with pytest.raises(FloatingPointError, match="at step 1"):
        tr.check_finite(metrics, 1)
