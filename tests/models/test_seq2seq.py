"""Seq2Seq against references: a Python loop of decode_step, a NumPy Cho et al. (2014) encoder-decoder, padded
copies of the same batch, hand-computed losses, check_grads, and hypotheses rescored by teacher forcing.

Four tiny models cover the fields: Cho 2014 (no attention, Cho GRU, 2 encoder layers, maxout), Bahdanau 2015
(bidirectional, additive, backward bridge), 'dot' (LSTM, 2 decoder layers, mean bridge, linear readout,
dropout) and 'general' (bidirectional, final bridge, tied embeddings). Compiling the scans is what these tests cost, so
params come from NumPy and each model's checks share one jitted function (`probe`).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rnn_jax.models.seq2seq import Seq2Seq, bahdanau2015, cho2014, tile_memory
from tests.conftest import assert_close

VS, VT, E, H, B, S, T = 8, 9, 4, 5, 3, 5, 4
PAD, BOS, EOS = 0, 1, 2
MAX_LEN = 6
MODELS = {
    None: cho2014(VS, VT, E, H, readout_size=3, encoder_layers=2),
    "additive": bahdanau2015(VS, VT, E, H, readout_size=3, attn_size=3),
    "dot": Seq2Seq(VS, VT, E, H, attention="dot", cell="lstm", decoder_layers=2, bridge="mean", readout="linear",
                   dropout=0.3),
    "general": Seq2Seq(VS, VT, E, H, attention="general", bidirectional=True, tie_embeddings=True),
}
KINDS = list(MODELS)
RNG = np.random.default_rng(0)


def random_params(model, scale=0.5, dtype=np.float32):
    """Returns params of `model.init`'s structure and shapes, uniform in +-scale from NumPy (nothing compiles)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return jax.tree.map(lambda s: jnp.asarray(RNG.uniform(-scale, scale, s.shape), dtype), shapes)


PARAMS = {kind: random_params(m) for kind, m in MODELS.items()}
LENGTHS = np.array([5, 2, 1], np.int32)  # full, padded, a single token
SRC = np.where(np.arange(S)[None] < LENGTHS[:, None], RNG.integers(3, VS, (B, S)), PAD).astype(np.int32)
TGT_IN = np.concatenate([np.full((B, 1), BOS), RNG.integers(3, VT, (B, T - 1))], axis=1).astype(np.int32)


@functools.cache
def probe(kind):
    """Returns one jitted function per model computing, for ``(params, src, lengths, tgt_in)``: ``apply``'s
    logits; ``loop``, a Python loop of decode_step fed the gold tokens; its first attention ``weights``;
    ``tiled``, the first step on memory and carry repeated twice per row (a beam search's layout); for 'dot'
    also ``translation`` by greedy_translate and ``free``, decode_step fed its own argmax (eos ignored)."""
    m = MODELS[kind]

    @jax.jit
    def run(params, src, lengths, tgt_in):
        memory = m.encode(params, src, lengths)
        carry, gold, weights = memory.carry, [], []
        for t in range(tgt_in.shape[1]):
            carry, logits, w = m.decode_step(params, memory, carry, tgt_in[:, t])
            gold.append(logits)
            weights.append(w)
        twice = tile_memory(memory.carry, 2)  # the carry laid out as the tiled memory
        _, tiled, _ = m.decode_step(params, tile_memory(memory, 2), twice, jnp.repeat(tgt_in[:, 0], 2))
        out = {"apply": m.apply(params, src, lengths, tgt_in), "loop": jnp.stack(gold, 1), "weights": weights[0],
               "tiled": tiled}
        if kind == "dot":
            carry, tok, free = memory.carry, jnp.full(src.shape[:1], BOS, jnp.int32), []
            for _ in range(MAX_LEN):
                carry, logits, _ = m.decode_step(params, memory, carry, tok)
                tok = jnp.argmax(logits, -1).astype(jnp.int32)
                free.append(tok)
            out.update(translation=m.greedy_translate(params, src, lengths, MAX_LEN), free=jnp.stack(free, 1))
        return out

    return run


def _garbage_padded(extra: int = 0):
    """Returns SRC with `extra` more positions and every position past a length set to random real ids."""
    wide = RNG.integers(3, VS, (B, S + extra)).astype(np.int32)
    real = np.arange(S + extra)[None] < LENGTHS[:, None]
    return np.where(real, np.pad(SRC, ((0, 0), (0, extra))), wide)


@pytest.mark.parametrize("kind", KINDS)
def test_teacher_forcing_equals_a_loop_of_decode_step_and_tiles_by_row(kind):
    out = probe(kind)(PARAMS[kind], SRC, LENGTHS, TGT_IN)
    assert out["apply"].shape == (B, T, VT)
    assert_close(out["apply"], out["loop"])
    assert_close(out["tiled"], jnp.repeat(out["loop"][:, 0], 2, axis=0))  # row b*K + k is beam k of b


@pytest.mark.parametrize("kind, extra", [(None, 0), ("additive", 0), ("dot", 0), ("general", 2)])
def test_source_padding_changes_no_logit_weight_or_translation(kind, extra):
    base = probe(kind)(PARAMS[kind], SRC, LENGTHS, TGT_IN)
    padded = probe(kind)(PARAMS[kind], _garbage_padded(extra), LENGTHS, TGT_IN)
    assert_close(padded["apply"], base["apply"])
    if "translation" in base:
        np.testing.assert_array_equal(padded["translation"], base["translation"])
    if kind is None:
        assert padded["weights"] is None
        return
    weights = np.asarray(padded["weights"])  # [B, S + extra]
    real = np.arange(S + extra)[None] < LENGTHS[:, None]
    assert weights.shape == (B, S + extra) and np.all(weights[~real] == 0.0) and np.all(weights[real] > 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert_close(weights[:, :S], base["weights"])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_cho_gru(p, h, x):
    """Cho et al. (2014)'s GRU step by its equations: the reset gate scales h before U_n."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items() if k != "upper"}
    gi, u = x @ p["w_ih"] + p["b_ih"], p["w_hh"]
    r = _sigmoid(gi[:H] + h @ u[:, :H] + p["b_hh"][:H])
    z = _sigmoid(gi[H:2 * H] + h @ u[:, H:2 * H] + p["b_hh"][H:2 * H])
    n = np.tanh(gi[2 * H:] + (r * h) @ u[:, 2 * H:] + p["b_hh"][2 * H:])
    return (1 - z) * n + z * h


def test_cho_model_equals_numpy_encoder_decoder_with_the_summary_at_every_step():
    model = MODELS[None]
    logits = np.asarray(probe(None)(PARAMS[None], SRC, LENGTHS, TGT_IN)["apply"])
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), PARAMS[None])
    for b in range(B):  # each example alone, over its own length
        xs = params["src_embed"][SRC[b, :LENGTHS[b]]]  # [len, E]
        for layer in params["encoder"]:  # layer by layer, each over the outputs of the one below
            h, outputs = np.zeros(H), []
            for x in xs:
                h = _np_cho_gru(layer["forward"], h, x)
                outputs.append(h)
            xs = outputs
        c = h  # the summary vector: the top layer's final state
        bridge = params["bridge"][0][0]
        state = np.tanh(c @ bridge["w"] + bridge["b"])
        for t in range(T):
            e = params["tgt_embed"][TGT_IN[b, t]]
            state = _np_cho_gru(params["decoder"], state, np.concatenate([e, c]))  # input [y_{t-1}; c]
            pieces = np.concatenate([state, c, e]) @ params["readout"]["w"] + params["readout"]["b"]  # [2R]
            r = pieces.reshape(model.pre_output_size, 2).max(-1)  # maxout over pairs
            assert_close(logits[b, t], r @ params["out"]["w"] + params["out"]["b"], err_msg=f"b={b} t={t}")


def _batch(garbage: bool = False):
    """Returns a loss batch; with `garbage`, random ids in the target positions the mask leaves out."""
    tgt_out = np.concatenate([TGT_IN[:, 1:], np.full((B, 1), EOS)], axis=1).astype(np.int32)
    mask = (np.arange(T)[None] < np.array([4, 3, 1])[:, None]).astype(np.float32)
    tgt_in = TGT_IN
    if garbage:
        tgt_in = np.where(mask > 0, TGT_IN, RNG.integers(0, VT, (B, T))).astype(np.int32)
        tgt_out = np.where(mask > 0, tgt_out, RNG.integers(0, VT, (B, T))).astype(np.int32)
    return {"src": SRC, "src_lengths": LENGTHS, "tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_mask": mask}


def test_loss_is_the_masked_sum_over_real_tokens_and_ignores_target_padding():
    model, params = MODELS["additive"], PARAMS["additive"]
    losses = jax.jit(lambda p, b: (model.loss(p, b), model.loss(p, b, label_smoothing=0.1)))
    batch = _batch()
    logp = np.asarray(jax.nn.log_softmax(probe("additive")(params, SRC, LENGTHS, TGT_IN)["apply"]), np.float64)
    gold = -np.take_along_axis(logp, batch["tgt_out"][..., None], -1)[..., 0]  # [B, T]
    mask = batch["tgt_mask"]
    (total, count, aux), (smooth, _, aux_s) = losses(params, batch)
    assert float(count) == 8.0
    assert_close(total, np.sum(gold * mask))
    assert_close(aux["nll"], total)
    assert float(aux["correct"]) == np.sum((logp.argmax(-1) == batch["tgt_out"]) * mask)
    assert_close(smooth, np.sum((0.9 * gold - 0.1 * logp.mean(-1)) * mask))  # (1 - a) nll + a * mean of -log p
    assert_close(aux_s["nll"], total)
    (padded_total, padded_count, _), _ = losses(params, _batch(garbage=True))
    assert_close((padded_total, padded_count), (total, count))


def test_additive_loss_gradients_match_finite_differences():
    with jax.enable_x64(True):
        # Bahdanau's cells with one encoder direction: compiling the scans is what this test costs
        model = Seq2Seq(VS, VT, 3, 2, attention="additive", attn_size=2, readout_size=2,
                        cell_options={"variant": "cho"}, dtype=jnp.float64)
        params = random_params(model, dtype=np.float64)
        batch = {k: v[:2, :3] if v.ndim == 2 else v[:2] for k, v in _batch().items()}
        batch["src_lengths"] = np.array([3, 2], np.int32)
        check_grads(jax.jit(lambda p: model.loss(p, batch)[0]), (params,), order=1, modes=["rev"])


def test_length_zero_source_is_an_error_naming_src_lengths():
    model, params = MODELS["additive"], PARAMS["additive"]
    with pytest.raises(ValueError, match=r"src_lengths must be >= 1.*rows \[1\]"):
        model.encode(params, SRC, np.array([5, 0, 1], np.int32))
    with pytest.raises(ValueError, match="src_lengths"):
        model.encode(params, SRC, np.array([5, 6, 1], np.int32))


def test_greedy_translate_stops_at_eos_and_pads_after_it():
    # the dot model's readout is linear: big embeddings routed through it fix each next token by the previous
    # one (bos -> 3 -> 4 -> eos -> 5), whatever the source
    model, params = MODELS["dot"], dict(PARAMS["dot"])
    chain = {BOS: 3, 3: 4, 4: EOS, EOS: 5}
    embed, w_r, w_o = (np.array(a) for a in (params["tgt_embed"], params["readout"]["w"], params["out"]["w"]))
    for unit, (prev, nxt) in enumerate(chain.items()):
        embed[prev] = 0.0
        embed[prev, unit] = 10.0  # previous token -> embedding unit
        w_r[-E:, unit] = 0.0
        w_r[w_r.shape[0] - E + unit, unit] = 1.0  # embedding unit -> readout unit
        w_o[unit] = 0.0
        w_o[unit, nxt] = 10.0  # readout unit -> next token
    params.update(tgt_embed=jnp.asarray(embed), readout={**params["readout"], "w": jnp.asarray(w_r)},
                  out={**params["out"], "w": jnp.asarray(w_o)})
    out = probe("dot")(params, SRC, LENGTHS, TGT_IN)
    np.testing.assert_array_equal(out["free"][:, :4], np.tile([3, 4, EOS, 5], (B, 1)))  # eos ignored
    np.testing.assert_array_equal(out["translation"], np.tile([3, 4, EOS, PAD, PAD, PAD], (B, 1)))
    assert model.eos_id == EOS and model.pad_id == PAD


def test_beam_search_over_tiled_memory_scores_what_teacher_forcing_scores():
    beam_lib = pytest.importorskip("rnn_jax.beam_search")
    model, params, k = MODELS["additive"], PARAMS["additive"], 2

    @jax.jit
    def search(src, lengths):
        memory = model.encode(params, src, lengths)
        bos = jnp.full((src.shape[0],), BOS, jnp.int32)
        return beam_lib.beam_search(model.step_fn(params, tile_memory(memory, k), return_aux=True), memory.carry,
                                    bos, T, beam_size=k, eos_id=EOS, pad_id=PAD, return_aux=True)

    result = search(SRC, LENGTHS)
    assert result.aux.shape == (B, k, T, S)
    pad = np.broadcast_to((np.arange(S)[None] >= LENGTHS[:, None])[:, None, None], result.aux.shape)
    assert np.all(np.asarray(result.aux)[pad] == 0.0)  # no weight on padding
    for j in range(k):  # each hypothesis re-scored by teacher forcing its own tokens, each row on its own source
        tokens = np.asarray(result.tokens[:, j])  # [B, T]
        tgt_in = np.concatenate([np.full((B, 1), BOS), tokens[:, :-1]], axis=1).astype(np.int32)
        logp = jax.nn.log_softmax(probe("additive")(params, SRC, LENGTHS, tgt_in)["apply"])
        real = np.arange(T)[None] < np.asarray(result.lengths[:, j])[:, None]
        want = np.sum(np.where(real, np.take_along_axis(np.asarray(logp), tokens[..., None], -1)[..., 0], 0.0), -1)
        assert_close(result.log_probs[:, j], want)


def test_dropout_in_training_only_and_reproducible_by_key():
    model, params = MODELS["dot"], PARAMS["dot"]
    train = jax.jit(functools.partial(model.apply, deterministic=False))
    k1, k2 = (jax.random.key(i, impl="rbg") for i in (1, 2))  # compiles far faster than threefry
    a, b, c = (train(params, SRC, LENGTHS, TGT_IN, dropout_key=k) for k in (k1, k1, k2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, probe("dot")(params, SRC, LENGTHS, TGT_IN)["apply"])
    with pytest.raises(ValueError, match="dropout_key"):
        model.apply(params, SRC, LENGTHS, TGT_IN, deterministic=False)


@pytest.mark.parametrize("fields, match", [
    (dict(attention="dot", bidirectional=True), "attention='dot' needs"),
    (dict(bridge="backward"), "bridge='backward'"),
    (dict(tie_embeddings=True, readout_size=3), "tie_embeddings needs readout_size == embed_dim"),
    (dict(attention="dot", attn_size=3), "attn_size"),
    (dict(cell="elman"), "cell must be one of"),
    (dict(eos_id=VT), "eos_id must lie in"),
])
def test_bad_fields_are_errors_naming_them(fields, match):
    with pytest.raises(ValueError, match=match):
        Seq2Seq(VS, VT, E, H, **fields)
