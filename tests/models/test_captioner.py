"""Captioner against references: NumPy Show and Tell / Show, Attend and Tell decoders written from the papers'
equations, a Python loop of decode_step, a hand-computed loss and regulariser, the same batch with other
contents in its padding, greedy decoding against a beam of one (and its alphas against teacher forcing its
tokens), and overfitting four captions.

Two tiny models: Show and Tell (vector or mean-pooled grid, dropout set) and Show, Attend and Tell (gate on).
Compiling the scans is what these tests cost, so params come from NumPy and each model's checks share one
jitted function (`probe`, `decode`).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from rnn_jax.decoding import lengths_of
from rnn_jax.models.caption_decoding import beam_caption
from rnn_jax.models.captioner import Captioner
from rnn_jax.models.seq2seq_layers import tile_memory
from tests.conftest import assert_close

V, E, H, D, S, B, T = 9, 4, 6, 5, 4, 4, 3
PAD, BOS, EOS = 0, 1, 2
MAX_LEN = T  # so that teacher forcing a decoded caption reuses `probe`'s compiled shapes
MODELS = {
    "show_tell": Captioner(V, E, H, D, decoder="show_tell", dropout=0.3),
    "show_attend_tell": Captioner(V, E, H, D, decoder="show_attend_tell", attn_size=3),
}
DECODERS = list(MODELS)
RNG = np.random.default_rng(0)


def random_params(model, scale=0.5):
    """Returns params of `model.init`'s structure and shapes, uniform in +-scale from NumPy (nothing compiles)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return jax.tree.map(lambda s: jnp.asarray(RNG.uniform(-scale, scale, s.shape), np.float32), shapes)


PARAMS = {name: random_params(m) for name, m in MODELS.items()}
GRID = RNG.normal(size=(B, S, D)).astype(np.float32)
VECTORS = RNG.normal(size=(B, D)).astype(np.float32)  # precomputed image vectors
TGT_IN = np.concatenate([np.full((B, 1), BOS), RNG.integers(3, V, (B, T - 1))], axis=1).astype(np.int32)
TGT_OUT = np.concatenate([TGT_IN[:, 1:], np.full((B, 1), EOS)], axis=1).astype(np.int32)
LENGTHS = np.array([3, 2, 0, 1])  # full, partly padded, a padding row, one token
MASK = (np.arange(T)[None] < LENGTHS[:, None]).astype(np.float32)


KEYS = [jax.random.key(i, impl="rbg") for i in (1, 2)]  # rbg keys compile far faster than threefry


@functools.cache
def probe(decoder):
    """Returns one jitted ``(params, features, tgt_in, tgt_out, mask, key) -> dict``: ``apply``'s logits and
    alphas; ``loop``'s (a Python loop of decode_step fed the gold tokens); the memory's ``carry``; ``tiled``,
    the first step on memory and carry repeated twice per row (a beam search's layout); ``loss`` (attention_reg
    0.7 with attention); and ``train``, the logits of apply in training with dropout by `key` (Show and Tell)."""
    m = MODELS[decoder]

    @jax.jit
    def run(params, features, tgt_in, tgt_out, mask, key):
        memory = m.encode(params, features)
        carry, logits, alphas = memory.carry, [], []
        for t in range(tgt_in.shape[1]):
            carry, lg, alpha = m.decode_step(params, memory, carry, tgt_in[:, t])
            logits.append(lg)
            alphas.append(alpha)
        twice = tile_memory(memory.carry, 2)  # the carry laid out as the tiled memory
        _, tiled, _ = m.decode_step(params, tile_memory(memory, 2), twice, jnp.repeat(tgt_in[:, 0], 2))
        apply_logits, apply_alphas = m.apply(params, features, tgt_in)
        batch = {"features": features, "tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_mask": mask}
        return {"apply": apply_logits, "apply_alphas": apply_alphas, "loop": jnp.stack(logits, 1),
                "loop_alphas": None if m.decoder == "show_tell" else jnp.stack(alphas, 1), "carry": memory.carry,
                "tiled": tiled, "loss": m.loss(params, batch, attention_reg=0.7 if m.attends else 0.0),
                "train": m.apply(params, features, tgt_in, dropout_key=key, deterministic=False)[0] if m.dropout
                else None}

    return run


def run_probe(decoder, params=None, features=GRID, tgt_in=TGT_IN, tgt_out=TGT_OUT, key=KEYS[0]):
    """Returns `probe`'s results on the shared batch (MASK), with any argument replaced."""
    params = PARAMS[decoder] if params is None else params
    return probe(decoder)(params, features, tgt_in, tgt_out, MASK, key)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_lstm(p, h, c, x):
    """One LSTM step by PyTorch's equations (gate order i, f, g, o), float64."""
    z = x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"]
    i, f, g, o = np.split(z, 4)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _np_show_tell_step(p, h, c, token):
    """Returns ``(h, c, logits [V])`` of one Show and Tell step fed `token` (logits = h_t W_o + b)."""
    h, c = _np_lstm(p["decoder"], h, c, p["embed"][token])
    return h, c, h @ p["out"]["w"] + p["out"]["b"]


def _np_show_tell(p, v, tokens):
    """Returns ``(h_0, c_0, logits [T, V])`` of Vinyals et al. for one image vector ``v [D]`` fed `tokens`."""
    h, c = _np_lstm(p["decoder"], np.zeros(H), np.zeros(H), v @ p["image"]["w"] + p["image"]["b"])  # x_{-1}
    h0, c0, logits = h, c, []
    for tok in tokens:
        h, c, lg = _np_show_tell_step(p, h, c, tok)
        logits.append(lg)
    return h0, c0, np.stack(logits) if logits else None


def _np_greedy_show_tell(p, v):
    """Returns ``tokens [MAX_LEN]``: greedy Show and Tell from ``v [D]``, PAD after EOS."""
    h, c, _ = _np_show_tell(p, v, [])
    tok, out = BOS, []
    for _ in range(MAX_LEN):
        h, c, lg = _np_show_tell_step(p, h, c, tok)
        tok = PAD if EOS in out else int(np.argmax(lg))
        out.append(tok)
    return out


def _np_show_attend_tell(p, grid, tokens):
    """Returns ``(logits [T, V], alphas [T, S])`` of Xu et al. (eq. 4-7, gate on) for one ``grid [S, D]``."""
    f_h, f_c = p["init_state"][0]
    mean = grid.mean(0)
    h, c = np.tanh(mean @ f_h["w"] + f_h["b"]), np.tanh(mean @ f_c["w"] + f_c["b"])
    att, gate, deep = p["decoder"]["feed"]["attention"], p["decoder"]["feed"]["gate"], p["deep"]
    logits, alphas = [], []
    for tok in tokens:
        scores = np.tanh(h @ att["w_q"] + grid @ att["w_m"]) @ att["v"]  # [S]
        alpha = np.exp(scores - scores.max())
        alpha /= alpha.sum()
        z = _sigmoid(h @ gate["w"] + gate["b"])[0] * (alpha @ grid)  # beta_t * sum_i alpha_i a_i
        e = p["embed"][tok]
        h, c = _np_lstm(p["decoder"], h, c, np.concatenate([e, z]))
        out = e + h @ deep["h"]["w"] + deep["h"]["b"] + z @ deep["z"]["w"] + deep["z"]["b"]
        logits.append(out @ p["out"]["w"] + p["out"]["b"])
        alphas.append(alpha)
    return np.stack(logits), np.stack(alphas)


def _f64(params):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), params)


@pytest.mark.parametrize("decoder", DECODERS)
def test_teacher_forcing_equals_a_loop_of_decode_step_and_tiles_by_row(decoder):
    out = run_probe(decoder)
    assert out["apply"].shape == (B, T, V)
    assert_close(out["apply"], out["loop"])
    assert_close(out["apply_alphas"], out["loop_alphas"])
    assert_close(out["tiled"], jnp.repeat(out["loop"][:, 0], 2, axis=0))  # row b*K + k is beam k of b


def test_show_tell_equals_numpy_with_the_image_as_the_first_input_and_pools_a_grid():
    p = _f64(PARAMS["show_tell"])
    vectors = GRID.mean(1)  # what Show and Tell sees of a grid
    out = run_probe("show_tell")
    assert out["apply_alphas"] is None
    for b in range(B):
        h0, c0, logits = _np_show_tell(p, vectors[b].astype(np.float64), TGT_IN[b])
        assert_close((out["carry"].h[b], out["carry"].c[b]), (h0, c0), err_msg=f"b={b}")
        assert_close(out["apply"][b], logits, err_msg=f"b={b}")


def test_show_attend_tell_equals_numpy_and_attention_over_the_grid_sums_to_one():
    p = _f64(PARAMS["show_attend_tell"])
    out = run_probe("show_attend_tell")
    alphas = np.asarray(out["apply_alphas"])
    assert alphas.shape == (B, T, S) and np.all(alphas > 0)
    np.testing.assert_allclose(alphas.sum(-1), 1.0, rtol=1e-6)
    for b in range(B):
        logits, want = _np_show_attend_tell(p, GRID[b].astype(np.float64), TGT_IN[b])
        assert_close(out["apply"][b], logits, err_msg=f"b={b}")
        assert_close(alphas[b], want, err_msg=f"b={b}")


@pytest.mark.parametrize("decoder", DECODERS)
def test_loss_and_regulariser_match_a_hand_computation_and_padding_rows_add_nothing(decoder):
    out = run_probe(decoder)
    logp = np.asarray(jax.nn.log_softmax(out["apply"]), np.float64)
    nll = -np.sum(np.take_along_axis(logp, TGT_OUT[..., None], -1)[..., 0] * MASK)
    penalty = 0.0
    if decoder == "show_attend_tell":  # Xu eq. 14 per caption, over real steps; the padding row 2 adds nothing
        alphas = np.asarray(out["apply_alphas"], np.float64)
        for b in np.flatnonzero(LENGTHS):
            penalty += np.sum((1.0 - alphas[b, :LENGTHS[b]].sum(0)) ** 2)
    total, count, aux = out["loss"]
    assert float(count) == LENGTHS.sum()
    assert_close(aux["nll"], nll)
    assert_close(aux["attention_penalty"], penalty)
    assert_close(total, nll + (0.7 * penalty if decoder == "show_attend_tell" else 0.0))
    # the padding row (all-zero mask) and the padded steps of row 1 filled with other features and tokens
    tgt_in, tgt_out = (np.where(MASK > 0, x, RNG.integers(0, V, (B, T))).astype(np.int32) for x in (TGT_IN, TGT_OUT))
    features = np.where((LENGTHS > 0)[:, None, None], GRID, RNG.normal(size=GRID.shape)).astype(np.float32)
    padded = run_probe(decoder, features=features, tgt_in=tgt_in, tgt_out=tgt_out)
    assert_close(padded["loss"][:2], (total, count))
    assert_close(padded["loss"][2]["attention_penalty"], aux["attention_penalty"])


@functools.cache
def decode(decoder):
    """Returns a jitted ``(params, features) -> (greedy tokens, (beam-of-1 tokens, alphas or None))``; the
    beam ranks by raw log-probability (length_penalty 0)."""
    m = MODELS[decoder]

    @jax.jit
    def run(params, features):
        beam = beam_caption(m, params, features, MAX_LEN, beam_size=1, length_penalty=0.0)
        return m.greedy_caption(params, features, MAX_LEN), beam

    return run


@pytest.mark.parametrize("decoder", DECODERS)
def test_greedy_equals_a_beam_of_one_whose_alphas_are_teacher_forcings_on_emitted_steps(decoder):
    params = dict(PARAMS[decoder])
    params["out"] = {**params["out"], "b": params["out"]["b"].at[EOS].add(1.5)}  # some captions end early
    features = VECTORS if decoder == "show_tell" else GRID  # Show and Tell on precomputed vectors [B, D]
    greedy, (tokens, alphas) = decode(decoder)(params, features)
    np.testing.assert_array_equal(tokens, greedy)
    lengths = np.asarray(lengths_of(greedy, EOS))
    assert greedy.shape == (B, MAX_LEN) and lengths.min() < MAX_LEN
    after = np.arange(MAX_LEN)[None] >= lengths[:, None]  # [B, max_len]
    if decoder == "show_tell":
        assert alphas is None
        want = [_np_greedy_show_tell(_f64(params), v.astype(np.float64)) for v in VECTORS]
        np.testing.assert_array_equal(greedy, want)
        return
    assert np.all(np.asarray(greedy)[after] == PAD)
    fed = np.concatenate([np.full((B, 1), BOS), np.asarray(greedy)[:, :-1]], axis=1).astype(np.int32)
    forced = np.asarray(run_probe(decoder, params, tgt_in=fed)["apply_alphas"])  # [B, max_len, S]
    alphas = np.asarray(alphas)
    assert alphas.shape == (B, MAX_LEN, S)
    np.testing.assert_allclose(alphas.sum(-1)[~after], 1.0, rtol=1e-6)
    assert_close(alphas[~after], forced[~after])
    assert np.all(alphas[after] == 0.0)


def test_loss_gradient_is_finite_and_four_captions_are_overfit():
    m = MODELS["show_tell"]  # on precomputed vectors; the joint ConvEncoder test trains Show, Attend and Tell
    batch = {"features": VECTORS, "tgt_in": TGT_IN, "tgt_out": TGT_OUT, "tgt_mask": np.ones((B, T), np.float32)}
    flat, unravel = ravel_pytree(PARAMS["show_tell"])  # Adam on one vector compiles far faster
    optimiser = optax.adam(0.05)

    @jax.jit
    def step(flat, opt_state, batch):
        (total, count), grads = jax.value_and_grad(lambda f: m.loss(unravel(f), batch)[:2], has_aux=True)(flat)
        updates, opt_state = optimiser.update(grads, opt_state)
        return optax.apply_updates(flat, updates), opt_state, total / count, grads

    opt_state = optimiser.init(flat)
    history = []
    for i in range(20):
        flat, opt_state, mean, grads = step(flat, opt_state, batch)
        if i == 0:
            assert np.all(np.isfinite(grads)) and np.any(grads != 0)
        history.append(float(mean))
    assert history[-1] < 0.5 * history[0], history


def test_show_attend_tell_needs_a_grid_and_show_tell_step_fn_has_no_aux():
    with pytest.raises(ValueError, match=r"attends over a grid.*\[batch, slots, 5\]"):
        MODELS["show_attend_tell"].encode(PARAMS["show_attend_tell"], VECTORS)
    with pytest.raises(ValueError, match="features must be floats of shape"):
        MODELS["show_tell"].encode(PARAMS["show_tell"], GRID[..., :3])
    with pytest.raises(ValueError, match="return_aux"):
        MODELS["show_tell"].step_fn(PARAMS["show_tell"], None, return_aux=True)
    with pytest.raises(ValueError, match="attention_reg"):
        MODELS["show_tell"].loss(PARAMS["show_tell"], {"features": GRID, "tgt_in": TGT_IN}, attention_reg=1.0)


def test_dropout_in_training_only_and_reproducible_by_key():
    m, params = MODELS["show_tell"], PARAMS["show_tell"]
    a, b, c = (run_probe("show_tell", key=k)["train"] for k in (KEYS[0], KEYS[0], KEYS[1]))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, run_probe("show_tell")["apply"])
    with pytest.raises(ValueError, match="dropout_key"):
        m.apply(params, GRID, TGT_IN, deterministic=False)


@pytest.mark.parametrize("fields, match", [
    (dict(attn_size=0), "attn_size must be an integer >= 1"),
    (dict(decoder="show_tell", tie_embeddings=True), "hidden_size == embed_dim"),
    (dict(decoder="lstm"), "decoder must be one of"),
    (dict(eos_id=V), "eos_id must lie in"),
    (dict(dropout=1.0), "dropout must lie in"),
])
def test_bad_fields_are_errors_naming_them(fields, match):
    with pytest.raises(ValueError, match=match):
        Captioner(V, E, H, D, **fields)


def test_tied_embeddings_read_the_deep_output_through_the_embedding_transpose():
    m = Captioner(V, E, H, D, decoder="show_attend_tell", attn_size=3, tie_embeddings=True)
    params = dict(PARAMS["show_attend_tell"])
    params["out"] = {"b": params["out"]["b"]}  # no output matrix of its own
    assert jax.tree.structure(jax.eval_shape(m.init, jax.random.key(0))) == jax.tree.structure(params)

    @jax.jit
    def first_step(params):
        memory = m.encode(params, GRID)
        return m.decode_step(params, memory, memory.carry, TGT_IN[:, 0])[1]  # [B, V]

    logits = first_step(params)
    p = _f64(params)
    p["out"]["w"] = p["embed"].T  # [E, V]
    for b in range(B):
        assert_close(logits[b], _np_show_attend_tell(p, GRID[b].astype(np.float64), TGT_IN[b, :1])[0][0])
