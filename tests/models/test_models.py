"""The task models against PyTorch built from the same weights, and their properties.

LanguageModel = nn.Embedding -> nn.LSTM (batch_first) -> nn.Linear; Classifier = nn.Embedding -> packed
bidirectional nn.LSTM -> final state / masked mean / masked max -> nn.Linear. Shapes are small and every
jitted function is built once per module.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax.interop.torch import to_torch
from rnn_jax.models.classifier import Classifier
from rnn_jax.models.common import embed_tokens
from rnn_jax.models.language_model import LanguageModel
from tests.conftest import assert_close

torch = pytest.importorskip("torch")

V, E, H, B, T = 11, 6, 5, 3, 7
LM = LanguageModel(V, E, H, num_layers=2, dropout=0.3)
LM_PARAMS = LM.init(jax.random.key(0))
TOKENS = np.random.default_rng(0).integers(0, V, (B, T)).astype(np.int32)
LM_APPLY = jax.jit(LM.apply)


def _torch_lm(model, params):
    emb = torch.nn.Embedding(model.vocab_size, model.embed_dim)
    emb.weight.data = torch.tensor(np.asarray(params["embed"]))
    rnn = to_torch(model.rnn, params["rnn"]).eval()  # eval: no dropout between layers
    out = torch.nn.Linear(model.hidden_size, model.vocab_size)
    out.weight.data = torch.tensor(np.asarray(params["out"]["w"]).T.copy())
    out.bias.data = torch.tensor(np.asarray(params["out"]["b"]))
    return emb, rnn, out


def test_language_model_equals_pytorch():
    emb, rnn, out = _torch_lm(LM, LM_PARAMS)
    with torch.no_grad():
        ys, (h, c) = rnn(emb(torch.tensor(TOKENS, dtype=torch.long)))
        expected = out(ys).numpy()
    logits, state = LM_APPLY(LM_PARAMS, TOKENS)
    assert logits.shape == (B, T, V)
    assert_close(logits, expected)
    assert_close((state.h, state.c), (h.numpy(), c.numpy()))


def test_language_model_carried_state_equals_one_pass():
    """Truncated BPTT's premise: two chunks with the state carried give the logits of one pass."""
    full, state_full = LM_APPLY(LM_PARAMS, TOKENS)
    first, state = LM.apply(LM_PARAMS, TOKENS[:, :3])
    second, state = LM.apply(LM_PARAMS, TOKENS[:, 3:], state)
    assert_close(jnp.concatenate([first, second], axis=1), full)
    assert_close(state, state_full)


def test_language_model_step_equals_apply():
    state = LM.initial_state(B)
    for t in range(T):
        state, logits = LM.step(LM_PARAMS, state, jnp.asarray(TOKENS[:, t]))
    assert_close(logits, LM_APPLY(LM_PARAMS, TOKENS)[0][:, -1])


def test_language_model_loss_is_the_masked_sum():
    targets = np.roll(TOKENS, -1, axis=1)
    mask = np.arange(T)[None, :] < np.array([7, 4, 1])[:, None]
    loss_sum, count, _ = LM.loss(LM_PARAMS, TOKENS, targets, mask)
    logits = np.asarray(LM_APPLY(LM_PARAMS, TOKENS)[0], np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    assert int(count) == 12
    np.testing.assert_allclose(float(loss_sum), nll[mask].sum(), rtol=1e-5)


def test_language_model_dropout_is_active_only_in_training():
    key = jax.random.key(3)
    a, _ = LM.apply(LM_PARAMS, TOKENS, dropout_key=key, deterministic=False)
    b, _ = LM.apply(LM_PARAMS, TOKENS, dropout_key=key, deterministic=False)
    assert_close(a, b, "exact")  # same key, same masks
    assert not np.allclose(a, LM_APPLY(LM_PARAMS, TOKENS)[0])
    assert_close(LM.apply(LM_PARAMS, TOKENS, dropout_key=key, deterministic=True)[0], LM_APPLY(LM_PARAMS, TOKENS)[0])


def test_dropout_sites_are_set_apart():
    """With embedding and output dropout off, a one-layer model has no dropout left (none between layers)."""
    one = LanguageModel(V, E, H, num_layers=1, dropout=0.5, embed_dropout=0.0, output_dropout=0.0)
    params = one.init(jax.random.key(5))
    train, _ = one.apply(params, TOKENS, dropout_key=jax.random.key(6), deterministic=False)
    assert_close(train, one.apply(params, TOKENS)[0], "exact")
    only_out = LanguageModel(V, E, H, num_layers=1, dropout=0.0, embed_dropout=0.0, output_dropout=0.5)
    train, _ = only_out.apply(params, TOKENS, dropout_key=jax.random.key(6), deterministic=False)
    assert not np.allclose(train, one.apply(params, TOKENS)[0])
    with pytest.raises(ValueError, match="output_dropout must lie in"):
        LanguageModel(V, E, H, output_dropout=1.0)


def test_init_scale_bounds_every_parameter_and_tying_drops_the_output_matrix():
    params = LanguageModel(V, E, H, init_scale=0.1).init(jax.random.key(1))
    leaves = jax.tree.leaves(params)
    assert all(float(jnp.max(jnp.abs(x))) <= 0.1 for x in leaves)
    assert all(float(jnp.std(x)) > 0.02 for x in leaves)  # uniform(-0.1, 0.1): std 0.058, biases too
    tied = LanguageModel(V, H, H, tie_embeddings=True)
    assert "w" not in tied.init(jax.random.key(1))["out"]
    with pytest.raises(ValueError, match="tie_embeddings needs embed_dim == hidden_size"):
        LanguageModel(V, E, H, tie_embeddings=True)
    with pytest.raises(ValueError, match="init_scale"):
        LanguageModel(V, E, H, init_scale=0.0)


def test_embed_tokens_rates():
    table = jnp.arange(1.0, V * E + 1).reshape(V, E)
    key = jax.random.key(0)
    x, rnn_key, out_key = embed_tokens(table, TOKENS, rate=0.5, dropout_key=key, deterministic=False, embed_rate=0.0)
    assert_close(x, table[TOKENS], "exact")  # embedding untouched, the other keys still handed out
    assert rnn_key is not None and out_key is not None
    x, _, _ = embed_tokens(table, TOKENS, rate=0.0, dropout_key=key, deterministic=False, embed_rate=0.5)
    kept = np.asarray(x) != 0
    assert 0.2 < kept.mean() < 0.8
    assert_close(np.asarray(x)[kept], 2 * np.asarray(table[TOKENS])[kept], "exact")  # inverted dropout
    assert embed_tokens(table, TOKENS, rate=0.5, dropout_key=key, deterministic=True)[1] is None
    with pytest.raises(ValueError, match="embed_rate must be in"):
        embed_tokens(table, TOKENS, rate=0.5, dropout_key=key, deterministic=False, embed_rate=1.0)
    with pytest.raises(ValueError, match=r"tokens must have shape \[batch, time\]"):
        embed_tokens(table, TOKENS[0], rate=0.0, dropout_key=None, deterministic=True)


# ----------------------------------------------------------------------------- classifier

LENGTHS = np.array([7, 2, 5], np.int32)
C = 4


@pytest.mark.parametrize("pooling", ["final", "mean", "max"])
def test_classifier_equals_pytorch_packed(pooling):
    model = Classifier(V, E, H, C, num_layers=2, bidirectional=True, pooling=pooling)
    params = model.init(jax.random.key(2))
    emb = torch.tensor(np.asarray(params["embed"]))[torch.tensor(TOKENS, dtype=torch.long)]
    rnn = to_torch(model.rnn, params["rnn"]).eval()
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(emb, torch.tensor(LENGTHS), batch_first=True,
                                                         enforce_sorted=False)
        out, (h_n, _) = rnn(packed)
        ys, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    ys, h_n = ys.numpy(), h_n.numpy()
    mask = np.arange(T)[None, :, None] < LENGTHS[:, None, None]
    if pooling == "final":
        feats = np.concatenate([h_n[-2], h_n[-1]], axis=-1)
    elif pooling == "mean":
        feats = ys.sum(1) / LENGTHS[:, None]
    else:
        feats = np.where(mask, ys, -np.inf).max(1)
    expected = feats @ np.asarray(params["out"]["w"]) + np.asarray(params["out"]["b"])
    logits = model.apply(params, TOKENS, LENGTHS)
    assert logits.shape == (B, C)
    assert_close(logits, expected)


def test_classifier_ignores_padding_and_weights_the_loss():
    model = Classifier(V, E, H, C, pooling="max")
    params = model.init(jax.random.key(4))
    padded = np.where(np.arange(T)[None, :] < LENGTHS[:, None], TOKENS, (TOKENS + 1) % V)
    assert_close(model.apply(params, padded, LENGTHS), model.apply(params, TOKENS, LENGTHS))
    labels = np.array([0, 3, 1])
    weights = np.array([1.0, 0.0, 2.0], np.float32)
    loss_sum, count, aux = model.loss(params, TOKENS, LENGTHS, labels, weights)
    logits = np.asarray(model.apply(params, TOKENS, LENGTHS), np.float64)
    nll = np.log(np.exp(logits).sum(-1)) - logits[np.arange(B), labels]
    np.testing.assert_allclose(float(loss_sum), (nll * weights).sum(), rtol=1e-5)
    assert float(count) == 3.0
    assert float(aux["correct"]) == float(((logits.argmax(-1) == labels) * weights).sum())


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm"])
def test_minimal_cell_language_model_equals_a_sequential_stack(kind):
    """min_gru/min_lstm layers (parallel scan) against the same layers unrolled step by step."""
    import rnn_jax
    model = LanguageModel(V, E, H, num_layers=2, cell=kind)
    params = model.init(jax.random.key(7))
    state0 = jax.random.normal(jax.random.key(8), (2, B, H))
    logits, state = model.apply(params, TOKENS, state0)
    x = params["embed"][TOKENS]
    finals = []
    for layer, p in enumerate(params["rnn"]):
        h, x = rnn_jax.unroll(model.min_cell(), p, x, carry=state0[layer])
        finals.append(h)
    assert_close(logits, x @ params["out"]["w"] + params["out"]["b"][None, None, :])
    assert_close(state, jnp.stack(finals))
    first, mid = model.apply(params, TOKENS[:, :4], state0)
    second, _ = model.apply(params, TOKENS[:, 4:], mid)
    assert_close(jnp.concatenate([first, second], axis=1), logits)


def test_classifier_word_dropout_replaces_words_by_unk():
    model = Classifier(V, E, H, C, pooling="mean", word_dropout=0.5, unk_id=1)
    params = model.init(jax.random.key(9))
    key = jax.random.key(10)
    dropped = np.asarray(jax.random.bernoulli(jax.random.split(key)[0], 0.5, TOKENS.shape))
    assert 0 < dropped.mean() < 1
    expected = model.apply(params, np.where(dropped, 1, TOKENS), LENGTHS)  # deterministic: no word dropout
    assert_close(model.apply(params, TOKENS, LENGTHS, dropout_key=key, deterministic=False), expected)
    assert not np.allclose(expected, model.apply(params, TOKENS, LENGTHS))
    with pytest.raises(ValueError, match="needs unk_id"):
        Classifier(V, E, H, C, word_dropout=0.1)
