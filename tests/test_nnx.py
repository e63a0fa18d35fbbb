"""`rnn_jax.nnx.Recurrent` inside a small Flax NNX model, checked against the spec's own `apply`."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from rnn_jax import LSTM
from rnn_jax.nnx import Recurrent
from tests.conftest import assert_close

VOCAB, EMBED, HIDDEN, CLASSES = 11, 5, 6, 3
TOKENS = jnp.array([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]])  # [B=3, T=4], 0 is padding
LENGTHS = jnp.array([4, 2, 1])
LABELS = jnp.array([0, 2, 1])


def _spec(**kwargs):
    return LSTM(EMBED, HIDDEN, 2, batch_first=True, bidirectional=True, **kwargs)


class Classifier(nnx.Module):
    """Embedding -> Recurrent -> mean over valid steps -> Linear; returns ``(logits, (outputs, state))``."""

    def __init__(self, spec, *, rngs: nnx.Rngs, rnn_params=None):
        self.embed = nnx.Embed(VOCAB, EMBED, rngs=rngs)
        self.rnn = Recurrent(spec, rngs=rngs, params=rnn_params)
        self.head = nnx.Linear(2 * HIDDEN, CLASSES, rngs=rngs)

    def __call__(self, tokens, lengths):
        ys, state = self.rnn(self.embed(tokens), lengths)  # [B, T, 2H]
        pooled = ys.sum(axis=1) / lengths[:, None].astype(ys.dtype)  # padded steps are zero: [B, 2H]
        return self.head(pooled), (ys, state)


def _model(spec=None, **kwargs):
    # separate streams, so forking the dropout stream does not change the other parameters' init
    return Classifier(spec or _spec(), rngs=nnx.Rngs(params=0, dropout=1), **kwargs)


def _loss(model):
    logits, aux = model(TOKENS, LENGTHS)
    return optax.softmax_cross_entropy_with_integer_labels(logits, LABELS).mean(), (logits,) + aux


@nnx.jit
def _train_step(model, optimizer):
    """Returns ``(loss, (logits, outputs, state), grads)`` before one Adam step, which it applies."""
    (loss, aux), grads = nnx.value_and_grad(_loss, has_aux=True)(model)
    optimizer.update(model, grads)
    return loss, aux, grads


_forward = nnx.jit(lambda model: model(TOKENS, LENGTHS)[0])


def test_params_are_nnx_params_with_readable_paths():
    model = _model()
    paths = [path for path, _ in nnx.to_flat_state(nnx.state(model.rnn, nnx.Param))]
    assert len(paths) == 2 * 2 * 4  # layers * directions * (w_ih, w_hh, b_ih, b_hh)
    assert ("layers", 1, "backward", "w_ih") in paths
    assert model.rnn.layers[1]["backward"]["w_ih"].shape == (2 * HIDDEN, 4 * HIDDEN)
    assert not nnx.state(model.rnn, nnx.RngState)  # no dropout rate: no rng state kept
    graphdef, state = nnx.split(model)
    assert_close(nnx.merge(graphdef, state).rnn.spec_params(), model.rnn.spec_params(), "exact")


def test_train_step_matches_spec_apply_reaches_every_param_and_reduces_the_loss():
    spec = _spec()
    spec_params = spec.init(jax.random.key(1))  # e.g. weights from interop.torch
    model = _model(spec, rnn_params=spec_params)
    assert_close(model.rnn.spec_params(), spec_params, "exact")
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    x = model.embed(TOKENS)  # [B, T, E], before the step changes the embedding
    loss0, (logits, ys, state), grads = _train_step(model, optimizer)

    want_ys, want_state = jax.jit(spec.apply)(spec_params, x, LENGTHS)
    assert_close(ys, want_ys, "exact")
    assert_close(state, want_state, "exact")
    assert ys.shape == (3, 4, 2 * HIDDEN) and state.h.shape == (4, 3, HIDDEN)

    flat = nnx.to_flat_state(grads["rnn"])
    assert len(flat) == 2 * 2 * 4
    for path, g in flat:
        assert float(jnp.abs(g[...]).max()) > 0, path

    loss1 = _train_step(model, optimizer)[0]  # the loss after one step
    assert float(loss1) < float(loss0)
    assert not np.allclose(model.rnn.spec_params()[0]["forward"]["w_hh"], spec_params[0]["forward"]["w_hh"])


def test_dropout_follows_eval_and_train_and_uses_the_dropout_stream():
    base = _forward(_model())
    model = _model(_spec(dropout=0.5, recurrent_dropout=0.25))
    model.eval()
    eval_a, eval_b = _forward(model), _forward(model)
    np.testing.assert_array_equal(eval_a, eval_b)
    assert_close(eval_a, base, "exact")  # deterministic: as if the rates were 0
    assert_close(_forward(nnx.view(model, deterministic=True)), base, "exact")

    model.train()
    count = int(model.rnn.rngs.count[...])
    train_a, train_b = _forward(model), _forward(model)
    assert int(model.rnn.rngs.count[...]) == count + 2  # one key per call, drawn inside jit
    assert not np.allclose(train_a, eval_a)
    assert not np.allclose(train_a, train_b)  # a fresh key per call
    fresh = _model(_spec(dropout=0.5, recurrent_dropout=0.25))
    fresh.train()
    np.testing.assert_array_equal(_forward(fresh), train_a)  # same seeds: same masks


def test_deterministic_call_argument_and_missing_rngs():
    spec = LSTM(EMBED, HIDDEN, input_dropout=0.5)  # the model's layer-0 shapes: eager inits are cached
    x = jnp.ones((4, 2, EMBED))  # [T, B, E]: the spec's default time-major layout
    rnn = Recurrent(spec, rngs=nnx.Rngs(0), deterministic=None)
    with pytest.raises(ValueError, match="deterministic"):
        rnn(x)

    @jax.jit  # eager scans recompile on every call: one compile for both runs
    def both(params, key):
        rnn = Recurrent(spec, rngs=nnx.Rngs(0), params=params, deterministic=None)
        got = rnn(x, deterministic=False, rngs=key)
        return got, spec.apply(params, x, dropout_key=key, deterministic=False)

    got, want = both(rnn.spec_params(), jax.random.key(3))
    assert_close(got, want, "exact")
