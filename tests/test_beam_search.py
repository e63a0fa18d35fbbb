"""rnn_jax.beam_search against references: greedy decoding (beam 1), every sequence enumerated in Python
(a beam as wide as the tree finds the true best K), hand-built tables whose answers are worked out by hand
(greedy is wrong; length normalisation flips the choice), and each returned hypothesis replayed through the
step function one sequence at a time (its log-probability, final carry and aux).

The models: log-probability tables (``TABLE[prev]`` scores the token after ``prev``), a GRU-like step with
an ``[L, B, H]`` carry, and a step whose logits depend on the whole history of tokens it was fed (recorded
in its carry), so a carry gathered along the wrong beam is visible in every later score.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import decoding
from rnn_jax.beam_search import beam_search
from tests.conftest import assert_close

NEG_INF = -np.inf


def log_table(probs):
    """Returns the float32 log of a probability table, -inf where a probability is 0."""
    probs = np.asarray(probs, np.float64)
    return np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0)), NEG_INF).astype(np.float32)


def table_step(table):
    """Returns ``step_fn(carry [N] steps taken, tokens [N]) -> (carry + 1, table[tokens] [N, V])``."""
    table = jnp.asarray(table)
    return lambda carry, tokens: (carry + 1, table[tokens])


def history_step(vocab, max_len, seed, num_aux=3):
    """Returns a step (with aux) whose logits are a sum over every token fed so far, by position.

    carry: ``{"hist": [N, max_len] int32 the tokens fed (-1 after), "count": [N] int32 tokens fed}``;
    aux: ``{"attn": [N, num_aux] a softmax of the logits, "count": [N] the count after the step}``.
    """
    rng = np.random.default_rng(seed)
    weights = jnp.asarray(rng.normal(size=(max_len, vocab, vocab)).astype(np.float32))  # [position, fed, next]
    mix = jnp.asarray(rng.normal(size=(vocab, num_aux)).astype(np.float32))

    def step_fn(carry, tokens):
        n = tokens.shape[0]
        hist = carry["hist"].at[jnp.arange(n), carry["count"]].set(tokens)  # [N, max_len]
        count = carry["count"] + 1
        fed = jnp.arange(max_len)[None, :] < count[:, None]  # [N, max_len]
        per_position = weights[jnp.arange(max_len)[None, :], jnp.maximum(hist, 0)]  # [N, max_len, V]
        logits = jnp.sum(jnp.where(fed[..., None], per_position, 0.0), axis=1)  # [N, V]
        return {"hist": hist, "count": count}, logits, {"attn": jax.nn.softmax(logits @ mix, axis=-1), "count": count}

    return step_fn


def history_carry(batch, max_len):
    return {"hist": np.full((batch, max_len), -1, np.int32), "count": np.zeros(batch, np.int32)}


def without_aux(step_fn):
    return lambda carry, tokens: step_fn(carry, tokens)[:2]


def normalised(log_prob, length, alpha, form="power"):
    base = length if form == "power" else (5.0 + length) / 6.0
    return log_prob / base ** alpha


def row_of(carry, b, axis=0):
    """Returns row `b` of a batched carry as a batch of one (numpy)."""
    return jax.tree.map(lambda x: np.take(np.asarray(x), [b], axis=axis), carry)


def log_softmax64(logits):
    logits = np.asarray(logits, np.float64)
    top = logits.max()
    return logits - top - np.log(np.sum(np.exp(logits - top)))


def replay(step_fn, carry, first, tokens, eos_id):
    """Feeds one sequence's tokens through ``step_fn`` (batch 1) up to eos: returns (log_prob, carry, auxes)."""
    step_fn = jax.jit(step_fn)
    log_prob, fed, auxes = 0.0, int(first), []
    for tok in (int(t) for t in tokens):
        carry, logits, *aux = jax.tree.map(np.asarray, step_fn(carry, np.array([fed], np.int32)))
        log_prob += log_softmax64(logits[0])[tok]
        auxes.append(aux[0] if aux else None)
        if tok == eos_id:
            break
        fed = tok
    return log_prob, carry, auxes


def enumerate_hypotheses(step_fn, carry, first, max_len, eos_id):
    """Returns every hypothesis ``(tokens tuple, log_prob, carry)`` from one row: ending in eos, or
    ``max_len`` tokens without one, by a depth-first walk feeding ``step_fn`` one prefix at a time."""
    step_fn = jax.jit(step_fn)
    found = []

    def walk(prefix, log_prob, carry, fed):
        carry, logits = jax.tree.map(np.asarray, step_fn(carry, np.array([fed], np.int32))[:2])
        for tok, lp in enumerate(log_softmax64(logits[0])):
            seq = prefix + (tok,)
            if tok == eos_id or len(seq) == max_len:
                found.append((seq, log_prob + lp, carry))
            else:
                walk(seq, log_prob + lp, carry, tok)

    walk((), 0.0, carry, int(first))
    return found


def padded(seq, max_len, pad_id=0):
    return list(seq) + [pad_id] * (max_len - len(seq))


@functools.lru_cache(maxsize=None)
def jitted_search(step_fn, **settings):
    """Returns ``run(carry, first_tokens, length_penalty=alpha) -> BeamResult`` of numpy arrays: one compiled
    search per model and static settings, shared by the tests; alpha is traced, so all alphas share it."""
    run = jax.jit(functools.partial(beam_search, step_fn, **settings))
    return lambda *args, **kwargs: jax.tree.map(np.asarray, run(*args, **kwargs))


# ---------------------------------------------------------------------------------------- beam 1 = greedy
def gru_like_step(vocab=5, hidden=4, seed=0):
    """Returns a random two-layer GRU-like step with a carry ``[L=2, N, H]`` (batch on axis 1)."""
    rng = np.random.default_rng(seed)
    embed, rec0, rec1, out = (jnp.asarray(rng.normal(size=s).astype(np.float32))
                              for s in [(vocab, hidden), (hidden, hidden), (hidden, hidden), (hidden, vocab)])

    def step_fn(carry, tokens):
        h0 = jnp.tanh(carry[0] @ rec0 + embed[tokens])
        h1 = jnp.tanh(carry[1] @ rec1 + h0)
        return jnp.stack([h0, h1]), 3.0 * (h1 @ out)

    return step_fn


GRU_STEP = gru_like_step()


def test_beam_1_without_length_penalty_is_greedy():
    first = np.array([0, 1, 2, 3, 4, 1], np.int32)
    carry = jnp.asarray(np.random.default_rng(1).normal(size=(2, 6, 4)).astype(np.float32))
    g_carry, g_tokens = decoding.greedy(GRU_STEP, carry, first, 8, eos_id=3, carry_batch_axis=1)
    result = jitted_search(GRU_STEP, max_len=8, beam_size=1, eos_id=3, carry_batch_axis=1)(carry, first,
                                                                                          length_penalty=0.0)
    ended = (np.asarray(g_tokens) == 3).any(-1)
    assert ended.any() and not ended.all()  # both kinds of row are seen
    np.testing.assert_array_equal(result.tokens[:, 0], g_tokens)
    np.testing.assert_array_equal(result.lengths[:, 0], decoding.lengths_of(g_tokens, 3))
    assert_close(result.carry, g_carry, "exact")  # held at eos by greedy, the carry at eos here
    for b in range(6):
        log_prob, _, _ = replay(GRU_STEP, row_of(carry, b, 1), first[b], g_tokens[b], eos_id=3)
        assert_close(result.log_probs[b, 0], np.float32(log_prob))


# ---------------------------------------------------------------------------------------------- exhaustive
EX_VOCAB, EX_LEN, EX_EOS, EX_BEAM = 3, 4, 1, 24  # 24 = V * (V-1)**(T-1): every candidate at every step fits
EX_STEP = without_aux(history_step(EX_VOCAB, EX_LEN, seed=3))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_beam_as_wide_as_the_tree_finds_the_best_of_all_sequences(alpha):
    first = np.array([0, 2], np.int32)
    carry = history_carry(2, EX_LEN)
    result = jitted_search(EX_STEP, max_len=EX_LEN, beam_size=EX_BEAM, eos_id=EX_EOS)(carry, first,
                                                                                     length_penalty=alpha)
    for b in range(2):
        hyps = enumerate_hypotheses(EX_STEP, row_of(carry, b), first[b], EX_LEN, EX_EOS)
        assert len(hyps) == 15 + 16  # ending at steps 1..4, and the 2**4 without eos
        hyps.sort(key=lambda h: -normalised(h[1], len(h[0]), alpha))
        for k, (seq, log_prob, ref_carry) in enumerate(hyps[:EX_BEAM]):
            np.testing.assert_array_equal(result.tokens[b, k], padded(seq, EX_LEN), err_msg=f"row {b} rank {k}")
            assert result.lengths[b, k] == len(seq)
            assert_close(result.log_probs[b, k], np.float32(log_prob))
            assert_close(result.scores[b, k], np.float32(normalised(log_prob, len(seq), alpha)))
            # the carry followed the beam: the tokens fed are the first token and the hypothesis' own
            assert_close(row_of(result.carry, b * EX_BEAM + k), ref_carry, "exact")
            np.testing.assert_array_equal(result.carry["hist"][b * EX_BEAM + k],
                                          padded((int(first[b]),) + seq[:-1], EX_LEN, -1))


# ------------------------------------------------------------------------------------------ by hand
EOS, A, B_, S = 0, 1, 2, 3  # eos, two words, and a start token nothing produces
# from S: a (.5) beats b (.4), but after a nothing is likely, while b is followed by eos (.9)
GREEDY_WRONG = log_table([[.25, .25, .25, .25], [.3, .36, .34, 0], [.9, .05, .05, 0], [.1, .5, .4, 0]])
# from S: eos (.4) or a (.6); after a: eos (.5), a (.3), b (.2)
LENGTHS = log_table([[.25, .25, .25, .25], [.5, .3, .2, 0], [.25, .25, .25, .25], [.4, .6, 0, 0]])
LENGTHS_STEP = table_step(LENGTHS)
GREEDY_WRONG_TRACES = []  # one entry each time the step below is traced


def GREEDY_WRONG_STEP(carry, tokens):
    GREEDY_WRONG_TRACES.append(tokens.shape)
    return table_step(GREEDY_WRONG)(carry, tokens)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_2_finds_what_greedy_misses(alpha):
    first, carry = np.array([S, A], np.int32), np.zeros(2, np.int32)
    _, g_tokens = decoding.greedy(GREEDY_WRONG_STEP, carry, first, 2, eos_id=EOS)
    np.testing.assert_array_equal(g_tokens[0], [A, A])  # p = .5 * .36 = .18
    result = jitted_search(GREEDY_WRONG_STEP, max_len=2, beam_size=2, eos_id=EOS)(carry, first, length_penalty=alpha)
    np.testing.assert_array_equal(result.tokens[0], [[B_, EOS], [A, A]])  # p = .4 * .9 = .36, then .18
    # from a: [b, eos] (.34 * .9 = .306), then [a, a] (.36 * .36 = .1296); [eos] (.3) would come second,
    # but at step 0 it ranks below a and b (.36, .34), so it never ends
    np.testing.assert_array_equal(result.tokens[1], [[B_, EOS], [A, A]])
    log_probs = np.log([[.36, .18], [.306, .1296]])
    assert_close(result.log_probs, log_probs.astype(np.float32))
    assert_close(result.scores, (log_probs / 2.0 ** alpha).astype(np.float32))
    np.testing.assert_array_equal(result.lengths, [[2, 2], [2, 2]])
    np.testing.assert_array_equal(result.carry, [2, 2, 2, 2])  # steps taken


# (tokens, p) of every hypothesis of non-zero probability from S with max_len 2, by hand
LENGTH_HYPS = [((EOS,), .4), ((A, EOS), .6 * .5), ((A, A), .6 * .3), ((A, B_), .6 * .2)]


@pytest.mark.parametrize("alpha, order", [(0.0, [0, 1, 2, 3]), (1.0, [1, 2, 0, 3])])
def test_length_normalisation_by_hand(alpha, order):
    """alpha=0: [eos] (log .4 = -0.92) beats [a, eos] (log .3 = -1.20); alpha=1: [a, eos] (-1.20 / 2 = -0.60)
    beats [a, a] (log .18 / 2 = -0.86) and [eos] (-0.92 / 1). Beyond the four hypotheses, slots are empty."""
    first, carry = np.array([S], np.int32), np.zeros(1, np.int32)
    result = jitted_search(LENGTHS_STEP, max_len=2, beam_size=6, eos_id=EOS, pad_id=-1)(carry, first,
                                                                                       length_penalty=alpha)
    for k, (seq, p) in enumerate(LENGTH_HYPS[i] for i in order):
        np.testing.assert_array_equal(result.tokens[0, k], padded(seq, 2, -1))
        assert result.lengths[0, k] == len(seq)
        assert_close(result.log_probs[0, k], np.float32(np.log(p)))
        assert_close(result.scores[0, k], np.float32(np.log(p) / len(seq) ** alpha))
    np.testing.assert_array_equal(result.tokens[0, 4:], -1)
    np.testing.assert_array_equal(result.lengths[0, 4:], 0)
    assert np.all(result.scores[0, 4:] == NEG_INF)


def test_a_row_that_never_emits_eos_returns_full_length_hypotheses():
    """Row 1 starts in {3, 4}, which lead only to {3, 4} (eos at -inf): its best 3 of the 2**5 sequences."""
    rng = np.random.default_rng(4)
    table = rng.normal(size=(5, 5)).astype(np.float32)
    table[3:, :3] = NEG_INF
    first, carry = np.array([1, 3], np.int32), np.zeros(2, np.int32)
    result = jitted_search(table_step(table), max_len=5, beam_size=3, eos_id=0)(carry, first)
    assert np.isfinite(result.scores).all()
    np.testing.assert_array_equal(result.lengths[1], [5, 5, 5])
    logp = np.stack([log_softmax64(row) for row in table])  # [V, V]
    ref = sorted(itertools.product([3, 4], repeat=5),
                 key=lambda seq: -sum(logp[prev, tok] for prev, tok in zip((3,) + seq[:-1], seq)))[:3]
    np.testing.assert_array_equal(result.tokens[1], ref)
    for k, seq in enumerate(ref):
        log_prob = sum(logp[prev, tok] for prev, tok in zip((3,) + seq[:-1], seq))
        assert_close(result.scores[1, k], np.float32(log_prob / 5))


# ------------------------------------------------------------------------------------- replayed one by one
AUX_VOCAB, AUX_LEN, AUX_EOS, AUX_BEAM = 5, 6, 2, 3
AUX_STEP = history_step(AUX_VOCAB, AUX_LEN, seed=18)
AUX_FIRST = np.array([0, 3, 4], np.int32)


@functools.lru_cache(maxsize=None)
def _aux_result():
    """Returns the search (Wu et al.'s normalisation, alpha 1) and each hypothesis replayed alone:
    ``(result, [(b, k, tokens, (log_prob, carry, auxes))])``."""
    run = jitted_search(AUX_STEP, max_len=AUX_LEN, beam_size=AUX_BEAM, eos_id=AUX_EOS, return_aux=True,
                        length_norm="gnmt")
    result = run(history_carry(3, AUX_LEN), AUX_FIRST, length_penalty=1.0)
    replays = []
    for b, k in itertools.product(range(3), range(AUX_BEAM)):
        tokens = result.tokens[b, k, :result.lengths[b, k]]
        carry = row_of(history_carry(3, AUX_LEN), b)
        replays.append((b, k, tokens, replay(AUX_STEP, carry, AUX_FIRST[b], tokens, AUX_EOS)))
    return result, replays


def test_the_carry_follows_the_beams():
    """Logits depend on every token fed: a carry gathered along the wrong beam would change the scores."""
    result, replays = _aux_result()
    assert (result.lengths < AUX_LEN).any() and (result.lengths == AUX_LEN).any()
    for b, k, tokens, (log_prob, carry, _) in replays:
        assert_close(result.log_probs[b, k], np.float32(log_prob), err_msg=f"row {b} rank {k}")
        assert_close(result.scores[b, k], np.float32(normalised(log_prob, len(tokens), 1.0, "gnmt")))
        assert_close(row_of(result.carry, b * AUX_BEAM + k), carry, "exact")
    assert (np.diff(result.scores, axis=1) <= 0).all()  # best first


def test_aux_follows_the_backpointers():
    result, replays = _aux_result()
    assert result.aux["attn"].shape == (3, AUX_BEAM, AUX_LEN, 3)
    for b, k, tokens, (_, _, auxes) in replays:
        length = len(tokens)
        expected = jax.tree.map(lambda *steps: np.concatenate(steps), *auxes)  # [length, ...] per leaf
        assert_close(jax.tree.map(lambda x: x[b, k, :length], result.aux), expected, err_msg=f"row {b} rank {k}")
        assert all((x[b, k, length:] == 0).all() for x in jax.tree.leaves(result.aux))


# --------------------------------------------------------------------------------------------------- jit
def test_jit_compiles_once_and_agrees_with_eager():
    run = jitted_search(GREEDY_WRONG_STEP, max_len=2, beam_size=2, eos_id=EOS)  # jit(partial(beam_search, ...))
    first = np.array([S, A], np.int32)
    result = run(np.zeros(2, np.int32), first, length_penalty=1.0)
    np.testing.assert_array_equal(result.tokens[:, 0], [[B_, EOS], [B_, EOS]])  # the hand answer above
    traces = len(GREEDY_WRONG_TRACES)
    again = run(np.full(2, 5, np.int32), first, length_penalty=0.5)
    assert len(GREEDY_WRONG_TRACES) == traces  # new values of the same shapes: no retrace
    np.testing.assert_array_equal(again.carry, result.carry + 5)
    assert_close(beam_search(GREEDY_WRONG_STEP, np.zeros(2, np.int32), first, 2, beam_size=2, eos_id=EOS), result,
                 "exact")


# ------------------------------------------------------------------------------------------------ errors
def _search(**overrides):
    args = dict(step_fn=GREEDY_WRONG_STEP, carry=jnp.zeros(3, jnp.int32), first_tokens=jnp.array([3, 1, 2]),
                max_len=3, beam_size=2, eos_id=0)
    args.update(overrides)
    return beam_search(**args)


@pytest.mark.parametrize("overrides, match", [
    (dict(beam_size=0), "beam_size must be an integer >= 1"),
    (dict(beam_size=1.5), "beam_size must be an integer >= 1"),
    (dict(beam_size=True), "beam_size must be an integer >= 1"),
    (dict(max_len=0), "max_len must be an integer >= 1"),
    (dict(first_tokens=jnp.zeros((3, 1), jnp.int32)), r"first_tokens must be integer tokens of shape \[B\]"),
    (dict(first_tokens=jnp.zeros(3)), r"first_tokens must be integer tokens of shape \[B\]"),
    (dict(eos_id=-1), "eos_id must be an integer >= 0"),
    (dict(eos_id=None), "eos_id must be an integer >= 0"),
    (dict(eos_id=4), r"eos_id must lie in \[0, 4\)"),
    (dict(pad_id=0.5), "pad_id must be an integer"),
    (dict(length_penalty=-1.0), "length_penalty must be a number >= 0"),
    (dict(length_penalty=float("nan")), "length_penalty must be a number >= 0"),
    (dict(length_norm="wu"), "length_norm must be one of"),
    (dict(carry_batch_axis=-1), "carry_batch_axis must be an integer >= 0"),
    (dict(carry_batch_axis=1), "no batch axis of size 3 at carry_batch_axis=1"),
    (dict(carry=jnp.zeros(2, jnp.int32)), "no batch axis of size 3 at carry_batch_axis=0"),
    (dict(return_aux=1), "return_aux must be a bool"),
    (dict(return_aux=True), r"step_fn must return \(carry, logits, aux\)"),
    (dict(step_fn=lambda c, t: (c, jnp.zeros(6))), r"step_fn must return logits of shape \[B\*K=6, V\]"),
    (dict(step_fn=lambda c, t: (c[:2], jnp.zeros((6, 4)))), "step_fn must return a carry of the structure"),
    (dict(step_fn=lambda c, t: (c, jnp.zeros((6, 4)), jnp.zeros(3)), return_aux=True),
     r"aux leaves must have shape \[B\*K=6, \.\.\.\]"),
])
def test_errors_name_the_argument(overrides, match):
    with pytest.raises(ValueError, match=match):
        _search(**overrides)
