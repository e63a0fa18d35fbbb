"""Bad input at the task models' call boundaries, drawn by hypothesis: each call gives the reference's answer
or a ValueError/TypeError naming the offending argument (`tests.test_bad_input` for the library's own).

Draws break at most two arguments at a time: ids as floats, out of the vocabulary or misshapen; lengths
negative, past T, floats or misshapen; states, masks and features of the wrong shape or dtype; B = 0, T = 0
and length-0 rows inside a batch. References: the Classifier, LanguageModel and Tagger are built on Elman
cells, so a NumPy loop over each sequence alone, over its own length, is theirs (a length-0 row gets the
output bias: zero features, never NaN); Seq2Seq against its own call with the padding past each source's
length filled with other ids (the answer must not change), its loss against NumPy over its logits; the
Captioner against each image run alone, float16/bfloat16 features against their float32 values.
"""

import jax
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rnn_jax.models.captioner import Captioner
from rnn_jax.models.classifier import POOLINGS, Classifier
from rnn_jax.models.language_model import LanguageModel
from rnn_jax.models.seq2seq import Seq2Seq
from rnn_jax.models.tagger import Tagger
from tests.test_bad_input import (BAD_LENGTHS, FLOATS, SETTINGS, check_outcome, choose_broken, make_array,
                                  make_lengths, np_elman, np_params, pick, shaped_params)

V, E, H, C = 6, 2, 3, 2
DTYPES = (["float32", "float32", "float16", "bfloat16"], ["int32", "bool", "complex64"])


def _ids(rng, kind: str, shape: tuple, vocab: int):
    """Returns ids of `shape` in ``[0, vocab)`` (``'ok'``), or broken: floats, a wrong rank, too big or negative."""
    ok = rng.integers(0, vocab, shape).astype(np.int32)
    return {"ok": ok, "float": ok.astype(np.float32), "rank": ok.reshape(-1), "too_big": ok + vocab,
            "negative": ok - vocab, "batch": np.zeros((shape[0] + 1,) + shape[1:], np.int32)}[kind]


def _ids_wrong(kind: str, shape: tuple) -> bool:
    """Whether ids of `kind` are wrong: dtype and shape always, values only if there are any."""
    size = int(np.prod(shape))
    return kind in ("float", "batch") or (kind == "rank" and len(shape) != 1) or \
        (kind in ("too_big", "negative") and size > 0)


ID_KINDS = (["ok"], ["float", "rank", "too_big", "negative"])


def _np_softmax_nll(logits, labels):
    """Returns the cross-entropy ``[...]`` of ``logits [..., K]`` against integer ``labels [...]`` (NumPy)."""
    top = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
    return lse - np.take_along_axis(logits, labels[..., None], -1)[..., 0]


def np_bi_elman(p, x, n: int):
    """Returns ``(h_fwd, h_bwd, ys [n, 2H])`` of one bidirectional Elman layer over ``x[:n]`` (NumPy)."""
    size = p["forward"]["w_hh"].shape[0]
    hf, yf = np_elman(p["forward"], x[:n], np.zeros(size), False)
    hb, yb = np_elman(p["backward"], x[:n], np.zeros(size), True)
    return hf, hb, np.concatenate([yf, yb], axis=-1)


# --------------------------------------------------------------------------- classifier

CLASSIFIERS = {pool: Classifier(V, E, H, C, cell="elman", pooling=pool) for pool in POOLINGS}
CLS_PARAMS = shaped_params(CLASSIFIERS["max"].init)
NP_CLS = np_params(CLS_PARAMS)
CLS_RUN = {pool: jax.jit(lambda p, t, n, y, w, m=m: (m.apply(p, t, n), *m.loss(p, t, n, y, w)[:2]))
           for pool, m in CLASSIFIERS.items()}


def np_classifier(pool: str, tokens, lengths, labels, weights):
    """Returns ``(logits [B, C], loss_sum, count)``: each sentence alone through embed -> bi-Elman -> pool."""
    logits = np.zeros((len(tokens), C))
    for b, n in enumerate(lengths):
        hf, hb, ys = np_bi_elman(NP_CLS["rnn"][0], NP_CLS["embed"][tokens[b]], int(n))
        feats = {"final": np.concatenate([hf, hb]), "mean": ys.sum(0) / max(int(n), 1),
                 "max": ys.max(0) if n else np.zeros(2 * H)}[pool]
        logits[b] = feats @ NP_CLS["out"]["w"] + NP_CLS["out"]["b"]
    nll = _np_softmax_nll(logits, labels)
    return logits, np.sum(weights * nll), np.sum(weights)


@st.composite
def classifier_draws(draw):
    broken = choose_broken(draw, ("tokens", "lengths", "labels", "weights"))
    return dict(pool=draw(st.sampled_from(POOLINGS)), batch=draw(st.sampled_from([2, 0, 3])),
                time=draw(st.sampled_from([3, 0])), tokens=pick(draw, broken, "tokens", *ID_KINDS),
                lengths=pick(draw, broken, "lengths", ["valid"], list(BAD_LENGTHS)),
                labels=pick(draw, broken, "labels", ["ok"], ["float", "too_big"]),
                weights=pick(draw, broken, "weights", ["ok"], ["short", "complex"]), seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(classifier_draws())
def test_classifier_gives_each_sentence_alone_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    B, T = d["batch"], d["time"]
    tokens = _ids(rng, d["tokens"], (B, T), V)
    lengths, bad_lengths = make_lengths(rng, d["lengths"], B, T, False)
    labels = _ids(rng, "ok" if d["labels"] == "ok" else d["labels"], (B,), C)
    weights = {"ok": rng.random(B).astype(np.float32), "short": np.ones(B + 1, np.float32),
               "complex": np.ones(B, np.complex64)}[d["weights"]]
    problems = ["tokens"] * _ids_wrong(d["tokens"], (B, T)) + ["lengths"] * bad_lengths
    problems += ["labels"] * _ids_wrong(d["labels"], (B,)) + ["weights"] * (d["weights"] != "ok")
    model = CLASSIFIERS[d["pool"]]

    def call():
        if problems:  # loss checks its own arguments and apply's, before computing anything
            return model.loss(CLS_PARAMS, tokens, lengths, labels, weights)
        return CLS_RUN[d["pool"]](CLS_PARAMS, tokens, lengths, labels, weights)

    check_outcome(call, problems, lambda: np_classifier(d["pool"], tokens, lengths, labels, weights))


# --------------------------------------------------------------------------- language model

LM = LanguageModel(V, E, H, num_layers=1, cell="elman")
LM_PARAMS = shaped_params(LM.init, seed=1)
NP_LM = np_params(LM_PARAMS)
LM_RUN = jax.jit(lambda p, t, s, y, m: (*LM.apply(p, t, s), *LM.loss(p, t, y, m, s)[:2]))


def np_language_model(tokens, state, targets, mask):
    """Returns ``(logits [B, T, V], state [1, B, H], loss_sum, count)`` by a NumPy loop per row."""
    B, T = tokens.shape
    logits, final = np.zeros((B, T, V)), np.zeros((1, B, H))
    for b in range(B):
        final[0, b], ys = np_elman(NP_LM["rnn"][0]["forward"], NP_LM["embed"][tokens[b]], state[0, b], False)
        logits[b] = ys @ NP_LM["out"]["w"] + NP_LM["out"]["b"]
    nll = _np_softmax_nll(logits, targets)
    return logits, final, np.sum(np.where(mask != 0, nll, 0.0)), np.sum(mask != 0)


@st.composite
def language_model_draws(draw):
    broken = choose_broken(draw, ("tokens", "state", "targets", "mask"))
    return dict(batch=draw(st.sampled_from([2, 0])), time=draw(st.sampled_from([3, 0])),
                tokens=pick(draw, broken, "tokens", *ID_KINDS),
                state=pick(draw, broken, "state", ["none", "valid"], ["shape", "complex"]),
                targets=pick(draw, broken, "targets", ["ok"], ["float", "too_big", "batch"]),
                mask=pick(draw, broken, "mask", ["bool", "float"], ["shape", "complex"]),
                seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(language_model_draws())
def test_language_model_gives_the_loop_reference_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    B, T = d["batch"], d["time"]
    tokens, targets = _ids(rng, d["tokens"], (B, T), V), _ids(rng, d["targets"], (B, T), V)
    state = {"none": None, "valid": rng.normal(size=(1, B, H)).astype(np.float32),
             "shape": np.zeros((1, B + 1, H), np.float32), "complex": np.zeros((1, B, H), np.complex64)}[d["state"]]
    real = rng.random((B, T)) < 0.7
    mask = {"bool": real, "float": real.astype(np.float32), "shape": real[:, :1] if T else np.ones((B, 1), bool),
            "complex": real.astype(np.complex64)}[d["mask"]]
    problems = ["tokens"] * _ids_wrong(d["tokens"], (B, T)) + ["initial_state"] * (d["state"] in ("shape", "complex"))
    problems += ["targets"] * _ids_wrong(d["targets"], (B, T)) + ["mask"] * (d["mask"] in ("shape", "complex"))

    def call():
        if problems:
            return LM.loss(LM_PARAMS, tokens, targets, mask, state)
        return LM_RUN(LM_PARAMS, tokens, state, targets, mask)

    zeros = np.zeros((1, B, H))
    check_outcome(call, problems, lambda: np_language_model(tokens, zeros if state is None else state, targets, mask))


# --------------------------------------------------------------------------- tagger

TAGGER = Tagger(V, 5, 3, word_dim=2, char_dim=2, char_hidden=2, hidden_size=H, num_layers=1, cell="elman")
TAG_PARAMS = shaped_params(TAGGER.init, seed=2)
NP_TAG = np_params(TAG_PARAMS)
TAG_APPLY = jax.jit(TAGGER.apply)


def np_tagger(words, lengths, chars, char_lengths):
    """Returns logits ``[B, T, K]``: each word's characters alone, then each sentence alone (NumPy loops)."""
    B, T = words.shape
    logits = np.zeros((B, T, 3))
    for b in range(B):
        feats = [np.concatenate(np_bi_elman(NP_TAG["char_rnn"][0], NP_TAG["char_embed"][chars[b, t]],
                                            int(char_lengths[b, t]))[:2]) for t in range(T)]
        x = np.concatenate([NP_TAG["word_embed"][words[b]], np.reshape(feats, (T, 4))], axis=-1)  # [T, 2 + 4]
        ys = np.zeros((T, 2 * H))
        ys[:lengths[b]] = np_bi_elman(NP_TAG["rnn"][0], x, int(lengths[b]))[2]
        logits[b] = ys @ NP_TAG["out"]["w"] + NP_TAG["out"]["b"]
    return logits


@st.composite
def tagger_draws(draw):
    broken = choose_broken(draw, ("words", "lengths", "chars", "char_lengths"))
    return dict(batch=draw(st.sampled_from([2, 0])), time=draw(st.sampled_from([3, 0])),
                chars_per_word=draw(st.sampled_from([2, 0])), words=pick(draw, broken, "words", *ID_KINDS),
                lengths=pick(draw, broken, "lengths", ["valid"], ["negative", "past_end", "float", "short"]),
                chars=pick(draw, broken, "chars", ["ok"], ["float", "too_big", "rank"]),
                char_lengths=pick(draw, broken, "char_lengths", ["valid"], ["past_end", "float", "short"]),
                seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(tagger_draws())
def test_tagger_gives_each_sentence_alone_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    B, T, Cw = d["batch"], d["time"], d["chars_per_word"]
    words, chars = _ids(rng, d["words"], (B, T), V), _ids(rng, d["chars"], (B, T, Cw), 5)
    lengths, bad_lengths = make_lengths(rng, d["lengths"], B, T, False)
    char_lengths = rng.integers(0, Cw + 1, (B, T)).astype(np.int32)
    char_lengths = {"valid": char_lengths, "past_end": char_lengths + Cw + 1, "float": char_lengths.astype(np.float32),
                    "short": char_lengths[:, :1] if T else np.zeros((B, 1), np.int32)}[d["char_lengths"]]
    problems = ["words"] * _ids_wrong(d["words"], (B, T)) + ["lengths"] * bad_lengths
    problems += ["chars"] * _ids_wrong(d["chars"], (B, T, Cw))
    problems += ["char_lengths"] * (d["char_lengths"] in ("float", "short") or
                                    (d["char_lengths"] == "past_end" and B * T > 0))

    def call():
        return (TAGGER.apply if problems else TAG_APPLY)(TAG_PARAMS, words, lengths, chars, char_lengths)

    check_outcome(call, problems, lambda: np_tagger(words, lengths, chars, char_lengths))


# --------------------------------------------------------------------------- seq2seq

S2S = Seq2Seq(V, 7, E, 2, attention="additive", bidirectional=True)
S2S_PARAMS = shaped_params(S2S.init, seed=3)
S2S_RUN = jax.jit(lambda p, batch: (S2S.apply(p, batch["src"], batch["src_lengths"], batch["tgt_in"]),
                                    S2S.loss(p, batch)[:2]))


@st.composite
def seq2seq_draws(draw):
    broken = choose_broken(draw, ("src", "src_lengths", "tgt_in", "tgt_out", "tgt_mask"))
    return dict(batch=draw(st.sampled_from([2, 0])), time=draw(st.sampled_from([3, 0])),
                src=pick(draw, broken, "src", ["ok"], ["float", "too_big", "rank"]),
                src_lengths=pick(draw, broken, "src_lengths", ["valid"], ["zero", "past_end", "float"]),
                tgt_in=pick(draw, broken, "tgt_in", ["ok"], ["float", "too_big", "batch"]),
                tgt_out=pick(draw, broken, "tgt_out", ["ok"], ["too_big", "float"]),
                tgt_mask=pick(draw, broken, "tgt_mask", ["ok"], ["shape", "complex"]),
                seed=draw(st.integers(0, 2 ** 16)))


def _seq2seq_batch(rng, d):
    """Returns a seq2seq batch of the draw (source length S = 3) and the names of its wrong entries."""
    B, T = d["batch"], d["time"]
    n = rng.integers(1, 4, B).astype(np.int32)
    mask = (rng.random((B, T)) < 0.7).astype(np.float32)
    batch = {"src": _ids(rng, d["src"], (B, 3), V), "tgt_in": _ids(rng, d["tgt_in"], (B, T), 7),
             "tgt_out": _ids(rng, d["tgt_out"], (B, T), 7),
             "src_lengths": {"valid": n, "zero": n * 0, "past_end": n + 3,
                             "float": n.astype(np.float32)}[d["src_lengths"]],
             "tgt_mask": {"ok": mask, "shape": mask[:, :1] if T else np.ones((B, 1), np.float32),
                          "complex": mask.astype(np.complex64)}[d["tgt_mask"]]}
    problems = [k for k in ("src", "tgt_in", "tgt_out") if _ids_wrong(d[k], (B, T if k != "src" else 3))]
    problems += ["src_lengths"] * (d["src_lengths"] == "float" or (d["src_lengths"] != "valid" and B > 0))
    return batch, problems + ["tgt_mask"] * (d["tgt_mask"] != "ok")


@SETTINGS
@given(seq2seq_draws())
def test_seq2seq_ignores_source_padding_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    batch, problems = _seq2seq_batch(rng, d)

    def call():
        if problems:
            return S2S.loss(S2S_PARAMS, batch)
        logits, (loss, count) = S2S_RUN(S2S_PARAMS, batch)
        assert logits.shape == batch["tgt_in"].shape + (7,)
        return logits, loss, count

    def reference():
        """The same batch with every source position past its length holding another id; the loss by NumPy."""
        pad = np.arange(3)[None, :] >= batch["src_lengths"][:, None]
        other = dict(batch, src=np.where(pad, (batch["src"] + 1 + rng.integers(0, V - 1, pad.shape)) % V, batch["src"]))
        logits = np.asarray(S2S_RUN(S2S_PARAMS, other)[0], np.float64)
        nll = _np_softmax_nll(logits, batch["tgt_out"])
        return logits, np.sum(nll * batch["tgt_mask"]), np.sum(batch["tgt_mask"])

    check_outcome(call, problems, reference)


# --------------------------------------------------------------------------- captioner

CAPTIONERS = {dec: Captioner(7, E, 2, 3, decoder=dec) for dec in ("show_tell", "show_attend_tell")}
CAP_PARAMS = {dec: shaped_params(m.init, seed=4) for dec, m in CAPTIONERS.items()}
CAP_APPLY = {dec: jax.jit(m.apply) for dec, m in CAPTIONERS.items()}


@st.composite
def captioner_draws(draw):
    broken = choose_broken(draw, ("dtype", "grid", "tokens_in"))
    return dict(decoder=draw(st.sampled_from(list(CAPTIONERS))), batch=draw(st.sampled_from([2, 0])),
                time=draw(st.sampled_from([3, 0])), dtype=pick(draw, broken, "dtype", *DTYPES),
                grid=pick(draw, broken, "grid", ["grid", "grid", "vector"], ["no_slot", "size", "rank"]),
                tokens_in=pick(draw, broken, "tokens_in", ["ok"], ["float", "too_big", "batch"]),
                seed=draw(st.integers(0, 2 ** 16)))


@SETTINGS
@given(captioner_draws())
def test_captioner_gives_each_image_alone_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    B, T, dec = d["batch"], d["time"], d["decoder"]
    shape = {"grid": (B, 2, 3), "vector": (B, 3), "no_slot": (B, 0, 3), "size": (B, 2, 4), "rank": (B,)}[d["grid"]]
    features = make_array(rng, shape, d["dtype"])
    tokens = _ids(rng, d["tokens_in"], (B, T), 7)
    bad_grid = d["grid"] in ("no_slot", "size", "rank") or (d["grid"] == "vector" and dec == "show_attend_tell")
    problems = ["features"] * (d["dtype"] not in FLOATS or bad_grid)
    problems += ["tokens_in"] * _ids_wrong(d["tokens_in"], (B, T))
    model, params = CAPTIONERS[dec], CAP_PARAMS[dec]

    def call():
        return (model.apply if problems else CAP_APPLY[dec])(params, features, tokens)

    def reference():
        """Each image alone, its features as float32 (float16 and bfloat16 values are float32 values)."""
        rows = [CAP_APPLY[dec](params, features[b:b + 1].astype(np.float32), tokens[b:b + 1]) for b in range(B)]
        if not rows:  # B = 0: empty logits and weights
            return np.zeros((0, T, 7)), (np.zeros((0, T, 2)) if model.attends else None)
        return jax.tree.map(lambda *r: np.concatenate(r), *rows)

    check_outcome(call, problems, reference)
