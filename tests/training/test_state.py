"""Tests of rnn_jax.training.state: schedules and optimisers against hand-written updates, their argument
errors, and create_train_state's checks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnn_jax import training as tr
from tests.training.tagger import init_params, optimizer


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
        tr.create_train_state(params, optimizer(8), jnp.zeros(2, jnp.float32))
    raw = tr.create_train_state(params, optimizer(8), jax.random.PRNGKey(3))  # raw keys are accepted too
    assert raw.key.dtype == jnp.uint32 and int(raw.step) == 0
