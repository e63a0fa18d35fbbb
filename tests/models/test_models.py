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


def test_language_model_step_by_step_decoding_equals_pytorch():
    """Feeding one token at a time (`step`, as `rnn_jax.decoding` does) against torch fed the same way."""
    emb, rnn, out = _torch_lm(LM, LM_PARAMS)
    state, torch_state = LM.initial_state(B), None
    for t in range(T):
        state, logits = LM.step(LM_PARAMS, state, jnp.asarray(TOKENS[:, t]))
        with torch.no_grad():
            ys, torch_state = rnn(emb(torch.tensor(TOKENS[:, t:t + 1], dtype=torch.long)), torch_state)
            expected = out(ys[:, 0]).numpy()
        assert_close(logits, expected, err_msg=f"step {t}")
    assert_close((state.h, state.c), tuple(s.numpy() for s in torch_state))


def test_language_model_loss_is_the_masked_sum():
    targets = np.roll(TOKENS, -1, axis=1)
    mask = np.arange(T)[None, :] < np.array([7, 4, 1])[:, None]
    loss_sum, count, _ = LM.loss(LM_PARAMS, TOKENS, targets, mask)
    logits = np.asarray(LM_APPLY(LM_PARAMS, TOKENS)[0], np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    assert int(count) == 12
    np.testing.assert_allclose(float(loss_sum), nll[mask].sum(), rtol=1e-5)


def _inverted_mask(key, rate, shape):
    """The inverted-dropout mask drawn by hand: keep with probability 1 - rate, scaled by 1 / (1 - rate)."""
    return np.asarray(jax.random.bernoulli(key, 1.0 - rate, shape), np.float32) / (1.0 - rate)


def _lm_by_hand(model, params, key, embed_rate, out_rate):
    """The model's logits in training with every dropout mask applied by hand, keys as documented.

    The key splits three ways (embedding, stack, output); the stack's own dropout (between layers) is
    checked against layers run by hand in tests/test_rnn.py, so here it runs as the stack.
    """
    k_embed, k_rnn, k_out = jax.random.split(key, 3)
    x = np.asarray(params["embed"])[TOKENS]  # [B, T, E]
    if embed_rate:
        x = x * _inverted_mask(k_embed, embed_rate, x.shape)
    ys, _ = model.rnn.apply(params["rnn"], x, dropout_key=k_rnn, deterministic=False)
    ys = np.asarray(ys)
    if out_rate:
        ys = ys * _inverted_mask(k_out, out_rate, ys.shape)
    return ys @ np.asarray(params["out"]["w"]) + np.asarray(params["out"]["b"])


def test_language_model_dropout_equals_hand_applied_masks():
    key = jax.random.key(3)
    train, _ = LM.apply(LM_PARAMS, TOKENS, dropout_key=key, deterministic=False)
    assert_close(train, _lm_by_hand(LM, LM_PARAMS, key, 0.3, 0.3))
    # at evaluation no site drops anything: the logits of the plain forward pass
    assert_close(LM.apply(LM_PARAMS, TOKENS, dropout_key=key, deterministic=True)[0], LM_APPLY(LM_PARAMS, TOKENS)[0],
                 "exact")


def test_dropout_sites_are_set_apart():
    """Each site's rate acts at its own site only; a one-layer model has none between layers."""
    key = jax.random.key(6)
    for embed_rate, out_rate in ((0.0, 0.0), (0.0, 0.5), (0.4, 0.0)):
        model = LanguageModel(V, E, H, num_layers=1, dropout=0.5, embed_dropout=embed_rate, output_dropout=out_rate)
        params = model.init(jax.random.key(5))
        train, _ = model.apply(params, TOKENS, dropout_key=key, deterministic=False)
        assert_close(train, _lm_by_hand(model, params, key, embed_rate, out_rate),
                     err_msg=f"embed {embed_rate} output {out_rate}")
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
    with pytest.raises(ValueError, match="embed_rate must lie in"):
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
    assert model.rnn.runs_parallel
    params = model.init(jax.random.key(7))
    state0 = jax.random.normal(jax.random.key(8), (2, B, H))
    logits, state = model.apply(params, TOKENS, state0)
    x = params["embed"][TOKENS]
    finals = []
    cell = model.rnn.cell()
    for layer, p in enumerate(params["rnn"]):
        h, x = rnn_jax.unroll(cell, p["forward"], x, carry=state0[layer])
        finals.append(h)
    assert_close(logits, x @ params["out"]["w"] + params["out"]["b"][None, None, :])
    assert_close(state, jnp.stack(finals))
    first, mid = model.apply(params, TOKENS[:, :4], state0)
    second, _ = model.apply(params, TOKENS[:, 4:], mid)
    assert_close(jnp.concatenate([first, second], axis=1), logits)


def test_peephole_language_model_equals_its_cells_unrolled_by_hand():
    """A cell option (Graves's peepholes) reaches every layer: the stack against `unroll` layer by layer."""
    import rnn_jax
    model = LanguageModel(V, E, H, num_layers=2, cell="lstm", cell_options={"peephole": True})
    assert model.cell_options == (("peephole", True),)
    params = model.init(jax.random.key(11))
    assert {"w_ci", "w_cf", "w_co"} <= set(params["rnn"][1]["forward"])
    logits, state = model.apply(params, TOKENS)
    x = params["embed"][TOKENS]
    for layer in range(2):
        _, x = rnn_jax.unroll(rnn_jax.lstm(H, peephole=True), params["rnn"][layer]["forward"], x)
    assert_close(logits, x @ params["out"]["w"] + params["out"]["b"][None, None, :])
    assert state.h.shape == (2, B, H)


def test_models_with_equal_configs_are_equal_and_hash_alike():
    """Models are jit static arguments: options given as a dict, pairs or in another order are one model."""
    a = LanguageModel(V, E, H, cell="lstm", cell_options={"peephole": True, "proj_size": 0})
    b = LanguageModel(V, E, H, cell="lstm", cell_options=(("proj_size", 0), ("peephole", True)))
    assert a == b and hash(a) == hash(b)
    assert a != LanguageModel(V, E, H, cell="lstm")
    c = Classifier(V, E, H, C, cell="gru", cell_options={"variant": "cho"})
    assert hash(c) == hash(Classifier(V, E, H, C, cell="gru", cell_options=(("variant", "cho"),)))
    with pytest.raises(ValueError, match="cell must be one of"):
        LanguageModel(V, E, H, cell="peephole")
    with pytest.raises(ValueError, match="set by the stack"):
        LanguageModel(V, E, H, cell_options={"bias": False}).rnn.cell()


@pytest.mark.parametrize("cell,options", [("gru", ()), ("lstm", (("proj_size", 3),)), ("min_gru", ())])
def test_classifier_takes_any_cell(cell, options):
    """The classifier's stack is the generic one: its logits equal the stack applied by hand."""
    model = Classifier(V, E, H, C, num_layers=1, cell=cell, cell_options=options, pooling="mean")
    params = model.init(jax.random.key(12))
    ys, _ = model.rnn.apply(params["rnn"], params["embed"][TOKENS], LENGTHS)
    out_size = dict(options).get("proj_size", H)
    assert ys.shape == (B, T, 2 * out_size)
    feats = np.asarray(ys).sum(1) / LENGTHS[:, None]
    expected = feats @ np.asarray(params["out"]["w"]) + np.asarray(params["out"]["b"])
    assert_close(model.apply(params, TOKENS, LENGTHS), expected)


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
