"""Bad input at the public API boundary, drawn by hypothesis: every call gives the reference's answer or a
ValueError/TypeError naming the offending argument; never another error, a NaN or a silent wrong result.

Strategies draw ranks, shapes (B = 0 and T = 0 included), dtypes (int32, bool, float16, bfloat16, complex64
beside float32), lengths (negative, past T, floats, misshapen), masks and carries for `unroll`, the specs,
`pad_sequences`, attention, greedy decoding and beam search; `unroll` and spec draws also pick the kernel
(every `KERNELS` value that runs here: 'auto', 'scan', 'onednn'). Each test's oracle lists the arguments a draw
gets wrong; with none, the result must be finite and equal a NumPy reference (plain loops over each
sequence alone, over its own length); with some, the call must raise ValueError or TypeError whose message
names one of them. Invalid draws are called eagerly, as a user calls them, so value checks apply; valid
draws run through jit-compiled functions shared across examples (shapes come from a few values, so there
are few compiles). `test_unroll_under_jit_checks_shapes_and_clips_lengths` checks what jit leaves: shape and
dtype errors at trace time, out-of-range lengths acting as clipped.

Dtype policy under test (`rnn_jax.checks`): data floating point of any precision (float16/bfloat16 give
the float32 result of their values), integers/bools/complex refused; lengths and ids integer; masks bool.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rnn_jax import RNN, elman, pad_sequences, unroll
from rnn_jax.attention import Attention
from rnn_jax.beam_search import beam_search
from rnn_jax.decoding import greedy
from rnn_jax.kernels import onednn_library
from tests.conftest import assert_close

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16, "int32": jnp.int32,
          "bool": jnp.bool_, "complex64": jnp.complex64}
FLOATS = ("float32", "float16", "bfloat16")
I, H = 2, 3


def make_array(rng, shape, dtype: str):
    """Returns standard-normal values of `shape` in `dtype` (rounded for ints, signs for bools)."""
    x = rng.normal(size=shape)
    if dtype == "complex64":
        return (x + 1j * rng.normal(size=shape)).astype(np.complex64)
    if dtype == "int32":
        return np.round(3 * x).astype(np.int32)
    if dtype == "bool":
        return x > 0
    return x.astype(DTYPES[dtype])


def check_outcome(call, problems, reference):
    """Asserts `call()` raises ValueError/TypeError naming one of `problems` if any, else equals `reference()`."""
    event("invalid: " + ", ".join(sorted(set(problems))) if problems else "valid")
    if problems:
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        message = str(info.value)
        assert any(re.search(rf"\b{re.escape(p)}\b", message) for p in problems), (problems, message)
        return
    got = call()
    for leaf in jax.tree.leaves(got):
        assert np.all(np.isfinite(np.asarray(leaf, np.float64))), "a valid call gave a non-finite result"
    assert_close(got, reference())


def make_lengths(rng, kind: str, batch: int, time: int, unbatched: bool):
    """Returns lengths of `kind` for a batch (a scalar when `unbatched`) and whether they are wrong."""
    valid = rng.integers(0, time + 1, size=() if unbatched else (batch,))
    rows = unbatched or batch > 0
    if kind == "none":
        return None, False
    if kind == "valid":
        return valid.astype(np.int32), False
    if kind in ("negative", "past_end"):
        bad = -1 if kind == "negative" else time + 1
        return (np.int32(bad) if unbatched else np.where(np.arange(batch) == 0, bad, valid).astype(np.int32)), rows
    if kind == "float":
        return valid.astype(np.float32), True
    shape = (1,) if unbatched else (batch + 1,)
    return np.zeros(shape if kind == "short" else shape + (1,), np.int32), True  # "short", "2d"


BAD_LENGTHS = ("negative", "past_end", "float", "short", "2d")


def choose_broken(draw, kinds: tuple) -> set:
    """Draws which of `kinds` a draw gets wrong: none in about a third of the draws, mostly one, at times two."""
    count = draw(st.sampled_from([0, 1, 0, 1, 2, 1]))
    return set(draw(st.permutations(kinds))[:count])


def pick(draw, broken: set, kind: str, good: list, bad: list):
    """Draws from `bad` if `kind` is broken, else from `good`."""
    return draw(st.sampled_from(bad if kind in broken else good))


def _data_fields(draw, broken: set, ranks=(3, 3, 3, 2)) -> dict:
    """Draws the rank, features, dtype and lengths kind of an ``xs``-like input and its lengths."""
    return dict(rank=pick(draw, broken, "rank", list(ranks), [1, 4]),
                feat=pick(draw, broken, "feat", [I], [I + 1]),
                dtype=pick(draw, broken, "dtype", ["float32", "float32", "float16", "bfloat16"],
                            ["int32", "bool", "complex64"]),
                lengths=pick(draw, broken, "lengths", ["none", "valid", "valid"], list(BAD_LENGTHS)))


# --------------------------------------------------------------------------- NumPy references


def shaped_params(init, *args, scale: float = 0.5, seed: int = 0):
    """Returns params of ``init(key, *args)``'s structure and shapes, uniform in +-scale from NumPy (nothing
    compiles, so module setup stays cheap)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda k: init(k, *args), jax.random.key(0))
    return jax.tree.map(lambda a: jnp.asarray(rng.uniform(-scale, scale, a.shape), a.dtype), shapes)


def np_params(params):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), params)


def np_elman(p, xs, h0, reverse: bool):
    """Returns ``(final [H], ys [n, H])`` of an Elman cell over one sequence ``xs [n, I]``: a NumPy loop."""
    h, ys = h0, np.zeros((len(xs), h0.shape[-1]))
    for t in (range(len(xs))[::-1] if reverse else range(len(xs))):
        h = np.tanh(xs[t] @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"])
        ys[t] = h
    return h, ys


def np_unroll(p, xs, lengths, reverse: bool):
    """Returns ``(final [B, H], ys [B, T, H])``: each sequence of ``xs [B, T, I]`` alone over its own length."""
    B, T = xs.shape[:2]
    lengths = np.full(B, T) if lengths is None else lengths
    finals, ys = np.zeros((B, H)), np.zeros((B, T, H))
    for b in range(B):
        n = int(lengths[b])
        finals[b], ys[b, :n] = np_elman(p, xs[b, :n], np.zeros(H), reverse)
    return finals, ys


# --------------------------------------------------------------------------- unroll

CELL = elman(H)
CELL_PARAMS = shaped_params(CELL.init, I)
NP_CELL = np_params(CELL_PARAMS)


# every kernel that runs on this machine ('cudnn' needs a GPU): each draw picks one
KERNELS = ("auto", "scan") + (("onednn",) if onednn_library.unavailable_reason() is None else ())


@functools.lru_cache(maxsize=None)
def _jit_unroll(reverse: bool, time_major: bool, kernel: str = "auto"):
    return jax.jit(lambda params, xs, lengths: unroll(CELL, params, xs, lengths, reverse=reverse,
                                                      time_major=time_major, kernel=kernel))


def _layout(rank: int, batch: int, time: int, feat: int, time_major: bool) -> tuple:
    """Returns the shape of `xs` for a draw: ``[B, T, F]`` (time-major ``[T, B, F]``), ``[T, F]``, or a wrong rank."""
    return {3: (time, batch, feat) if time_major else (batch, time, feat), 2: (time, feat), 1: (feat,),
            4: (1, batch, time, feat)}[rank]


@st.composite
def unroll_draws(draw):
    broken = choose_broken(draw, ("rank", "feat", "dtype", "lengths"))
    return dict(_data_fields(draw, broken), batch=draw(st.sampled_from([2, 0, 1])), time=draw(st.sampled_from([3, 0])),
                reverse=draw(st.booleans()), time_major=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 16)),
                kernel=draw(st.sampled_from(KERNELS)))


@SETTINGS
@given(unroll_draws())
def test_unroll_gives_the_loop_reference_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    xs = make_array(rng, _layout(d["rank"], d["batch"], d["time"], d["feat"], d["time_major"]), d["dtype"])
    lengths, bad_lengths = make_lengths(rng, d["lengths"], d["batch"], d["time"], d["rank"] == 2)
    problems = ["xs"] * (d["dtype"] not in FLOATS or d["rank"] not in (2, 3) or d["feat"] != I)
    problems += ["lengths"] * bad_lengths

    def call():
        if problems:
            return unroll(CELL, CELL_PARAMS, xs, lengths, reverse=d["reverse"], time_major=d["time_major"],
                          kernel=d["kernel"])
        return _jit_unroll(d["reverse"], d["time_major"] and d["rank"] == 3, d["kernel"])(CELL_PARAMS, xs, lengths)

    def reference():
        x = np.asarray(xs.astype(np.float32), np.float64)
        if d["rank"] == 2:  # one sequence: a batch of one, no batch axis in the results
            final, ys = np_unroll(NP_CELL, x[None], None if lengths is None else lengths[None], d["reverse"])
            return final[0], ys[0]
        x = np.swapaxes(x, 0, 1) if d["time_major"] else x
        final, ys = np_unroll(NP_CELL, x, lengths, d["reverse"])
        return final, (np.swapaxes(ys, 0, 1) if d["time_major"] else ys)

    check_outcome(call, problems, reference)


@SETTINGS
@given(st.lists(st.integers(-2, 6), min_size=3, max_size=3), st.sampled_from(["ok", "ok", "float", "shape", "xs"]),
       st.booleans())
def test_unroll_under_jit_checks_shapes_and_clips_lengths(values, kind, reverse):
    """Inside jit lengths are data: dtype and shape errors still come at trace time, but a length outside
    ``[0, T]`` is not caught and acts as if clipped to it (the documented behaviour)."""
    xs = np.random.default_rng(0).normal(size=(3, 4, I)).astype(np.float32)
    lengths = np.asarray(values, np.int32)
    args = {"ok": (xs, lengths), "float": (xs, lengths.astype(np.float32)), "shape": (xs, lengths[:2]),
            "xs": (xs.astype(np.int32), lengths)}[kind]
    problems = {"ok": [], "float": ["lengths"], "shape": ["lengths"], "xs": ["xs"]}[kind]
    check_outcome(lambda: _jit_unroll(reverse, False)(CELL_PARAMS, *args), problems,
             lambda: np_unroll(NP_CELL, xs.astype(np.float64), np.clip(lengths, 0, 4), reverse))


# --------------------------------------------------------------------------- specs

SPECS = {(bf, k): RNN(I, H, 2, bidirectional=True, batch_first=bf, kernel=k) for bf in (False, True) for k in KERNELS}
SPEC_PARAMS = shaped_params(SPECS[False, "auto"].init, seed=1)
NP_SPEC = np_params(SPEC_PARAMS)
SPEC_APPLY = {key: jax.jit(spec.apply) for key, spec in SPECS.items()}


def np_stack(x, h0):
    """Returns ``(h_n [4, H], ys [n, 2H])`` of the 2-layer bidirectional Elman stack over one sequence ``[n, I]``."""
    finals = []
    for layer, p in enumerate(NP_SPEC):
        outs = []
        for d, direction in enumerate(("forward", "backward")):
            final, ys = np_elman(p[direction], x, h0[2 * layer + d], reverse=d == 1)
            finals.append(final)
            outs.append(ys)
        x = np.concatenate(outs, axis=-1)  # [n, 2H]
    return np.stack(finals), x


@st.composite
def spec_draws(draw):
    broken = choose_broken(draw, ("rank", "feat", "dtype", "lengths", "state"))
    return dict(_data_fields(draw, broken), batch=draw(st.sampled_from([2, 0])), time=draw(st.sampled_from([3, 0])),
                batch_first=draw(st.booleans()),
                state=pick(draw, broken, "state", ["none", "valid"], ["complex", "shape"]),
                seed=draw(st.integers(0, 2 ** 16)), kernel=draw(st.sampled_from(KERNELS)))


def _initial_state(rng, kind: str, batch: int, unbatched: bool):
    """Returns an initial_state ``h_0 [4, B, H]`` (``[4, H]`` unbatched) of `kind` and whether it is wrong."""
    shape = (4, H) if unbatched else (4, batch, H)
    if kind == "none":
        return None, False
    if kind == "shape":
        return np.zeros(shape[:-1] + (H + 1,), np.float32), True
    return make_array(rng, shape, "complex64" if kind == "complex" else "float32"), kind == "complex"


@SETTINGS
@given(spec_draws())
def test_spec_gives_each_sequence_alone_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    unbatched = d["rank"] == 2
    xs = make_array(rng, _layout(d["rank"], d["batch"], d["time"], d["feat"], not d["batch_first"]), d["dtype"])
    lengths, bad_lengths = make_lengths(rng, d["lengths"], d["batch"], d["time"], unbatched)
    h0, bad_state = _initial_state(rng, d["state"], d["batch"], unbatched)
    problems = ["inputs"] * (d["dtype"] not in FLOATS or d["rank"] not in (2, 3) or d["feat"] != I)
    problems += ["lengths"] * bad_lengths + ["initial_state"] * bad_state
    spec = SPECS[d["batch_first"], d["kernel"]]

    def call():
        return (spec.apply if problems else SPEC_APPLY[d["batch_first"], d["kernel"]])(SPEC_PARAMS, xs, lengths, h0)

    def reference():
        x = np.asarray(xs.astype(np.float32), np.float64)
        x = x[None] if unbatched else (x if d["batch_first"] else np.swapaxes(x, 0, 1))  # [B, T, I]
        state = np.zeros((4, x.shape[0], H)) if h0 is None else np.asarray(h0, np.float64).reshape(4, -1, H)
        n = np.full(x.shape[0], x.shape[1]) if lengths is None else np.reshape(lengths, -1)
        h_n, ys = np.zeros(state.shape), np.zeros(x.shape[:2] + (2 * H,))
        for b in range(x.shape[0]):
            h_n[:, b], ys[b, :n[b]] = np_stack(x[b, :n[b]], state[:, b])
        if unbatched:
            return ys[0], h_n[:, 0]
        return (ys if d["batch_first"] else np.swapaxes(ys, 0, 1)), h_n

    check_outcome(call, problems, reference)


# --------------------------------------------------------------------------- pad_sequences


@st.composite
def pad_draws(draw):
    broken = choose_broken(draw, ("count", "tail", "dtype", "out_dtype", "padding", "max_len"))
    return dict(count=pick(draw, broken, "count", [2, 3, 1], [0]),
                lengths=draw(st.lists(st.integers(0, 3), min_size=3, max_size=3)),
                tail=pick(draw, broken, "tail", ["same"], ["ragged", "scalar"]),
                dtype=pick(draw, broken, "dtype", ["float32", "int32", "bool", "complex64"], ["str"]),
                out_dtype=pick(draw, broken, "out_dtype", [None, None, "float32"], ["int32"]),
                padding=pick(draw, broken, "padding", [0.0, 0, 1], [-1, 0.5, float("nan")]),
                max_len=pick(draw, broken, "max_len", [None, None, 3, 5], [1, -1, 4.0]),
                batch_first=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 16)))


def _holds(kind: str, pad) -> bool:
    """Whether an array of NumPy dtype kind `kind` holds the padding value `pad` exactly."""
    if kind in "fc":
        return True
    if pad != pad:  # NaN
        return False
    return pad in (0, 1) if kind == "b" else pad == int(pad)


def _pad_problems(d, longest: int) -> list:
    """Returns the arguments of a pad_sequences draw that are wrong (by NumPy's casting rules)."""
    problems = ["sequences"] * (d["count"] == 0 or d["dtype"] == "str" or d["tail"] == "scalar" or
                                (d["count"] > 1 and d["tail"] == "ragged"))
    max_len = d["max_len"]
    problems += ["max_len"] * (max_len is not None and (not isinstance(max_len, int) or max_len < longest))
    if d["dtype"] != "str":
        found = np.dtype(DTYPES[d["dtype"]])
        out = found if d["out_dtype"] is None else np.dtype(d["out_dtype"])
        problems += ["dtype"] * (not np.can_cast(found, out, "same_kind"))
        problems += ["padding_value"] * (not _holds(out.kind, d["padding"]))
    return problems


@settings(SETTINGS, max_examples=40)
@given(pad_draws())
def test_pad_sequences_gives_the_loop_reference_or_names_the_bad_argument(d):
    rng = np.random.default_rng(d["seed"])
    lens = d["lengths"][:d["count"]]
    tails = [(2,), (3,), (2,)] if d["tail"] == "ragged" else [(2,)] * 3
    if d["dtype"] == "str":
        seqs = [np.array(["a"] * n, dtype=str) for n in lens]
    elif d["tail"] == "scalar":
        seqs = [make_array(rng, (), d["dtype"]) for _ in lens]
    else:
        seqs = [make_array(rng, (n,) + tails[i], d["dtype"]) for i, n in enumerate(lens)]
    problems = _pad_problems(d, max(lens, default=0))

    def call():
        return pad_sequences(seqs, batch_first=d["batch_first"], padding_value=d["padding"], max_len=d["max_len"],
                             dtype=d["out_dtype"])

    def reference():
        T = max(lens) if d["max_len"] is None else d["max_len"]
        out = np.full((len(seqs), T, 2), d["padding"], np.complex128)
        for b, s in enumerate(seqs):
            out[b, :len(s)] = s
        out = out if d["batch_first"] else np.swapaxes(out, 0, 1)
        return (out.real if d["dtype"] != "complex64" else out), np.array(lens)

    if problems:
        return check_outcome(call, problems, reference)
    event("valid")
    padded, lengths = call()
    want, want_lengths = reference()
    assert padded.dtype == np.dtype(d["out_dtype"] or DTYPES[d["dtype"]]) and lengths.dtype == np.int32
    np.testing.assert_array_equal(lengths, want_lengths)
    np.testing.assert_array_equal(padded.astype(want.dtype), want)  # NaN padding compares equal to NaN


# --------------------------------------------------------------------------- attention

Q = M = 3
ATTENTIONS = {kind: Attention(kind, Q, M, 2 if kind == "additive" else None) for kind in ("additive", "dot", "general")}
ATT_PARAMS = {kind: shaped_params(att.init, seed=2) for kind, att in ATTENTIONS.items()}
ATT_APPLY = {kind: jax.jit(att.apply) for kind, att in ATTENTIONS.items()}


def np_attention(kind: str, q, m, mask):
    """Returns ``(context [B, M], weights [B, S])`` of one kind of attention, in NumPy float64."""
    p = np_params(ATT_PARAMS[kind])
    if kind == "additive":
        scores = np.tanh((q @ p["w_q"])[:, None, :] + m @ p["w_m"]) @ p["v"]  # [B, S]
    elif kind == "dot":
        scores = np.einsum("bq,bsq->bs", q, m)
    else:
        scores = np.einsum("bq,qm,bsm->bs", q, p["w"], m)
    real = np.ones(scores.shape, bool) if mask is None else mask
    e = np.where(real, np.exp(scores - np.max(np.where(real, scores, -np.inf), axis=-1, keepdims=True,
                                               initial=-np.inf)), 0.0)
    weights = e / np.maximum(e.sum(-1, keepdims=True), 1e-300)
    return np.einsum("bs,bsm->bm", weights, m), weights


@st.composite
def attention_draws(draw):
    broken = choose_broken(draw, ("q_dtype", "m_dtype", "q_shape", "m_shape", "mask"))
    dtypes = (["float32", "float32", "float16", "bfloat16"], ["int32", "bool", "complex64"])
    return dict(kind=draw(st.sampled_from(list(ATTENTIONS))), batch=draw(st.sampled_from([2, 0])),
                slots=draw(st.sampled_from([3, 0])), q_dtype=pick(draw, broken, "q_dtype", *dtypes),
                m_dtype=pick(draw, broken, "m_dtype", *dtypes),
                q_shape=pick(draw, broken, "q_shape", ["ok"], ["rank", "size", "batch"]),
                m_shape=pick(draw, broken, "m_shape", ["ok"], ["rank", "size"]),
                mask=pick(draw, broken, "mask", ["none", "valid"], ["empty_row", "int", "shape"]),
                seed=draw(st.integers(0, 2 ** 16)))


def _attention_inputs(rng, d):
    """Returns ``(query, memory, mask, problems)`` of an attention draw."""
    B, S = d["batch"], d["slots"]
    q_shape = {"ok": (B, Q), "rank": (Q,), "size": (B, Q + 1), "batch": (B + 1, Q)}[d["q_shape"]]
    m_shape = {"ok": (B, S, M), "rank": (B, M), "size": (B, S, M + 1)}[d["m_shape"]]
    query, memory = make_array(rng, q_shape, d["q_dtype"]), make_array(rng, m_shape, d["m_dtype"])
    real = rng.random((B, S)) < 0.6
    real[:, 0:1] = True  # a real slot per row (when S > 0)
    mask = {"none": None, "valid": real, "empty_row": real & (np.arange(B) != 0)[:, None], "int": real.astype(np.int32),
            "shape": real[:, :1] if S else np.ones((B, 1), bool)}[d["mask"]]
    problems = ["query"] * (d["q_dtype"] not in FLOATS or d["q_shape"] != "ok")
    problems += ["memory"] * (d["m_dtype"] not in FLOATS or d["m_shape"] != "ok" or d["q_shape"] == "batch")
    no_real = d["mask"] in ("valid", "empty_row") and B > 0 and (S == 0 or d["mask"] == "empty_row")
    problems += ["mask"] * (d["mask"] in ("int", "shape") or no_real)
    return query, memory, mask, problems


@SETTINGS
@given(attention_draws())
def test_attention_gives_the_numpy_reference_or_names_the_bad_argument(d):
    query, memory, mask, problems = _attention_inputs(np.random.default_rng(d["seed"]), d)
    kind = d["kind"]

    def call():
        if problems:
            return ATTENTIONS[kind](ATT_PARAMS[kind], query, memory, mask)
        return ATT_APPLY[kind](ATT_PARAMS[kind], query, memory, mask)

    as64 = (lambda a: np.asarray(a.astype(np.float32), np.float64))
    check_outcome(call, problems, lambda: np_attention(kind, as64(query), as64(memory), mask))


# --------------------------------------------------------------------------- greedy decoding and beam search

V = 5
TABLE = np.random.default_rng(3).normal(size=(V, V)).astype(np.float32)


def step_fn(carry, tokens):
    """A toy decoder: ``logits = TABLE[token] + 0.3 * carry``; the carry ``[N]`` counts the steps taken."""
    return carry + 1.0, jnp.asarray(TABLE)[tokens] + 0.3 * carry[:, None]


def np_greedy(first, steps: int, eos):
    """Returns ``(carry [B], tokens [B, steps])`` of greedy decoding with `step_fn`: a loop per row."""
    carries, out = np.zeros(len(first)), np.zeros((len(first), steps), np.int64)
    for b, tok in enumerate(first):
        c, finished = 0.0, False
        for t in range(steps):
            if finished:
                continue  # pad_id 0, carry held
            tok = int(np.argmax(TABLE[tok] + 0.3 * np.float32(c)))
            c, out[b, t], finished = c + 1.0, tok, tok == eos
        carries[b] = c
    return carries, out


def np_log_prob(first: int, tokens, length: int) -> float:
    """Returns the sum of `step_fn`'s log-softmax over a hypothesis' first `length` tokens (a NumPy replay)."""
    total, tok = 0.0, first
    for t in range(length):
        logits = TABLE[tok].astype(np.float64) + 0.3 * t
        total += logits[tokens[t]] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
        tok = tokens[t]
    return total


@functools.lru_cache(maxsize=None)
def _jit_decoder(mode: str, steps: int, eos, beam: int):
    if mode == "greedy":
        return jax.jit(lambda c, f: greedy(step_fn, c, f, steps, eos_id=eos))
    return jax.jit(lambda c, f: beam_search(step_fn, c, f, steps, beam_size=beam, eos_id=eos, length_penalty=0.0))


@st.composite
def decoding_draws(draw):
    broken = choose_broken(draw, ("steps", "first", "eos"))
    return dict(mode=draw(st.sampled_from(["greedy", "beam"])), batch=draw(st.sampled_from([2, 0])),
                steps=pick(draw, broken, "steps", [3, 3, 1], [0, -1, 2.0]), beam=draw(st.sampled_from([1, 2])),
                first=pick(draw, broken, "first", ["ok"], ["float", "bool", "2d", "too_big", "negative"]),
                eos=pick(draw, broken, "eos", [2, 2, None], [V, -1]), seed=draw(st.integers(0, 2 ** 16)))


def _decoding_problems(d) -> list:
    problems = ["first_tokens"] * (d["first"] in ("float", "bool", "2d") or
                                   (d["first"] in ("too_big", "negative") and d["batch"] > 0))
    steps_name = "num_steps" if d["mode"] == "greedy" else "max_len"
    ok_steps = isinstance(d["steps"], int) and d["steps"] >= (0 if d["mode"] == "greedy" else 1)
    problems += [steps_name] * (not ok_steps)
    return problems + ["eos_id"] * (d["eos"] in (V, -1) or (d["eos"] is None and d["mode"] == "beam"))


@SETTINGS
@given(decoding_draws())
def test_decoders_give_the_loop_reference_or_name_the_bad_argument(d):
    """Greedy against a loop per row; beam search of width 1 without length penalty against the same loop,
    and of width 2 against a NumPy replay of the log-probabilities of the hypotheses it returns."""
    rng = np.random.default_rng(d["seed"])
    B = d["batch"]
    ok = rng.integers(0, V, B).astype(np.int32)
    first = {"ok": ok, "float": ok.astype(np.float32), "bool": ok > 2, "2d": ok[:, None],
             "too_big": np.full(B, V, np.int32), "negative": np.full(B, -1, np.int32)}[d["first"]]
    problems, carry, found = _decoding_problems(d), jnp.zeros(B), {}

    def call():
        if problems and d["mode"] == "greedy":
            return greedy(step_fn, carry, first, d["steps"], eos_id=d["eos"])
        if problems:
            return beam_search(step_fn, carry, first, d["steps"], beam_size=d["beam"], eos_id=d["eos"],
                               length_penalty=0.0)
        out = found["out"] = _jit_decoder(d["mode"], d["steps"], d["eos"], d["beam"])(carry, first)
        if d["mode"] == "greedy":
            return out
        assert np.all(np.diff(np.asarray(out.scores), axis=1) <= 0), "hypotheses must come best first"
        return out.tokens[:, 0] if d["beam"] == 1 else out.log_probs

    def reference():
        carries, tokens = np_greedy(first, d["steps"], d["eos"])
        if d["mode"] == "greedy":
            return carries, tokens
        if d["beam"] == 1:
            return tokens  # K = 1, alpha = 0: greedy
        out = found["out"]
        return np.reshape([[np_log_prob(first[b], out.tokens[b, k], out.lengths[b, k]) for k in range(d["beam"])]
                           for b in range(B)], (B, d["beam"]))

    check_outcome(call, problems, reference)


def test_a_dtype_error_is_a_type_error_and_a_value_error():
    """`rnn_jax.checks.DTypeError`: PyTorch's kind of error for a dtype, and what the earlier checks raised."""
    with pytest.raises(TypeError, match=r"xs must be a floating-point array .* got dtype int32"):
        unroll(CELL, CELL_PARAMS, np.zeros((1, 2, I), np.int32))
    with pytest.raises(ValueError, match=r"mask must be boolean, got dtype float32"):
        unroll(CELL, CELL_PARAMS, np.zeros((1, 2, I), np.float32), mask=np.ones((1, 2), np.float32))
