"""`rnn_jax.linen.Recurrent` inside a small Flax linen model, checked against the spec's own `apply`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn

from rnn_jax import GRU, LSTM
from rnn_jax.linen import Recurrent, from_spec_params, to_spec_params
from tests.conftest import assert_close

VOCAB, EMBED, HIDDEN, CLASSES = 11, 5, 6, 3
TOKENS = jnp.array([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]])  # [B=3, T=4], 0 is padding
LENGTHS = jnp.array([4, 2, 1])
LABELS = jnp.array([0, 2, 1])


def _spec(**kwargs):
    return LSTM(EMBED, HIDDEN, 2, batch_first=True, bidirectional=True, **kwargs)


class Classifier(nn.Module):
    """Embedding -> Recurrent -> mean over valid steps -> Dense; returns ``(logits, (outputs, state))``."""

    spec: LSTM

    @nn.compact
    def __call__(self, tokens, lengths, *, deterministic=True):
        x = nn.Embed(VOCAB, EMBED, name="embed")(tokens)  # [B, T, E]
        ys, state = Recurrent(self.spec, name="rnn")(x, lengths, deterministic=deterministic)  # [B, T, 2H]
        pooled = ys.sum(axis=1) / lengths[:, None].astype(ys.dtype)  # padded steps are zero: [B, 2H]
        return nn.Dense(CLASSES, name="head")(pooled), (ys, state)


@functools.lru_cache(maxsize=None)
def _setup():
    """Returns ``(model, params, run)``; ``run(params) -> ((loss, (logits, outputs, state)), grads)``.

    Compiles dominate the runtime (eager scans recompile on every call), so everything is jitted once
    and shared between tests.
    """
    model = Classifier(_spec())
    params = jax.jit(model.init)(jax.random.key(0), TOKENS, LENGTHS)["params"]

    def loss_fn(params):
        logits, aux = model.apply({"params": params}, TOKENS, LENGTHS)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, LABELS).mean()
        return loss, (logits,) + aux

    return model, params, jax.jit(jax.value_and_grad(loss_fn, has_aux=True))


def test_params_are_named_per_layer_and_direction():
    model, params, _ = _setup()
    rnn = params["rnn"]
    assert sorted(rnn) == ["layer_0", "layer_1"]
    assert sorted(rnn["layer_1"]) == ["backward", "forward"]
    assert rnn["layer_1"]["backward"]["w_ih"].shape == (2 * HIDDEN, 4 * HIDDEN)
    # the same structure and shapes as the spec's own init
    shapes = lambda t: jax.tree.map(jnp.shape, t)
    assert shapes(to_spec_params(rnn)) == shapes(model.spec.init(jax.random.key(1)))


def test_outputs_equal_spec_apply_with_the_same_params():
    model, params, run = _setup()
    spec_params = model.spec.init(jax.random.key(1))
    params = {**params, "rnn": from_spec_params(spec_params)}  # e.g. weights from interop.torch
    (_, (logits, ys, state)), _ = run(params)

    x = params["embed"]["embedding"][TOKENS]  # [B, T, E]
    want_ys, want_state = jax.jit(model.spec.apply)(spec_params, x, LENGTHS)
    assert_close(ys, want_ys, "exact")
    assert_close(state, want_state, "exact")
    assert ys.shape == (3, 4, 2 * HIDDEN) and state.h.shape == (4, 3, HIDDEN)
    pooled = want_ys.sum(1) / LENGTHS[:, None]  # [B, 2H]
    assert_close(logits, pooled @ params["head"]["kernel"] + params["head"]["bias"][None], "exact")


def test_gradients_reach_every_recurrent_param():
    _, params, run = _setup()
    _, grads = run(params)
    flat = jax.tree_util.tree_flatten_with_path(grads["rnn"])[0]
    assert len(flat) == 2 * 2 * 4  # layers * directions * (w_ih, w_hh, b_ih, b_hh)
    for path, g in flat:
        assert float(jnp.abs(g).max()) > 0, jax.tree_util.keystr(path)


def test_one_adam_step_reduces_the_loss():
    _, params, run = _setup()
    tx = optax.adam(1e-2)

    @jax.jit
    def update(params, grads):
        updates, _ = tx.update(grads, tx.init(params), params)
        return optax.apply_updates(params, updates)

    (loss0, _), grads = run(params)
    (loss1, _), _ = run(update(params, grads))
    assert float(loss1) < float(loss0)


def test_dropout_uses_the_dropout_rng_only_when_not_deterministic():
    _, params, run = _setup()  # same parameter shapes: dropout rates add no parameters
    model = Classifier(_spec(dropout=0.5, recurrent_dropout=0.25))
    apply = jax.jit(functools.partial(model.apply, {"params": params}, TOKENS, LENGTHS),
                    static_argnames="deterministic")
    eval_a, eval_b = apply()[0], apply(deterministic=True)[0]  # no rng needed
    np.testing.assert_array_equal(eval_a, eval_b)
    assert_close(eval_a, run(params)[0][1][0], "exact")  # deterministic: as if the rates were 0

    train = lambda seed: apply(deterministic=False, rngs={"dropout": jax.random.key(seed)})[0]
    train_a, train_b, train_c = train(1), train(1), train(2)
    np.testing.assert_array_equal(train_a, train_b)
    assert not np.allclose(train_a, eval_a)
    assert not np.allclose(train_a, train_c)
    with pytest.raises(Exception, match="dropout"):  # flax: no "dropout" rng stream
        apply(deterministic=False)


def test_gru_without_dropout_rates_needs_no_rng():
    spec = GRU(EMBED, HIDDEN)
    x = jnp.ones((4, 2, EMBED))  # [T, B, E]: the spec's default time-major layout

    @jax.jit
    def both(key):
        variables = Recurrent(spec).init(key, x)
        got = Recurrent(spec).apply(variables, x, deterministic=False)
        return got, spec.apply(to_spec_params(variables["params"]), x)

    got, want = both(jax.random.key(0))
    assert_close(got, want, "exact")
