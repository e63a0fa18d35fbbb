"""rnn_jax.decoding against references: greedy against a plain Python loop over a transition table of
logits (and a path worked out by hand), sampling's frequencies against softmax(logits / temperature),
top-k's support, eos padding and the held carry, the helpers by hand, and the argument errors.

The step functions are tables: ``TABLE[prev]`` are the logits of the token after ``prev``. The carry counts
the steps a row has taken and remembers the token it was fed last, so a held carry is visible.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import decoding
from tests.conftest import assert_close

# the argmax path is 0 -> 1 -> 2 -> 3 -> 0 -> ...
HAND_TABLE = np.array([[0.0, 2.0, 1.0, -1.0],
                       [0.5, 0.0, 3.0, 1.0],
                       [1.0, 0.0, 0.5, 2.5],
                       [4.0, 1.0, 0.0, 0.5]], np.float32)  # [V=4, V]
RANDOM_TABLE = np.random.default_rng(0).normal(size=(5, 5)).astype(np.float32) * 2.0  # [V=5, V], no ties


def table_step(table):
    """Returns ``step_fn(carry, tokens [B]) -> (carry, table[tokens] [B, V])``.

    carry: ``{"count": [B] int32 steps taken, "fed": [B] int32 the last token fed}``.
    """
    table = jnp.asarray(table)

    def step_fn(carry, tokens):
        return {"count": carry["count"] + 1, "fed": tokens}, table[tokens]

    return step_fn


def start_carry(batch):
    return {"count": jnp.zeros(batch, jnp.int32), "fed": jnp.full(batch, -7, jnp.int32)}


def reference_greedy(table, first_tokens, num_steps, eos_id=None, pad_id=0):
    """A Python loop, row by row: returns (tokens [B, num_steps], count [B], fed [B]) as numpy."""
    tokens, counts, feds = [], [], []
    for tok in (int(t) for t in first_tokens):
        row, count, fed, done = [], 0, -7, False
        for _ in range(num_steps):
            if done:
                row.append(pad_id)
                continue
            count, fed = count + 1, tok
            tok = int(np.argmax(table[tok]))
            row.append(tok)
            done = tok == eos_id
        tokens.append(row)
        counts.append(count)
        feds.append(fed)
    return np.array(tokens, np.int32).reshape(len(counts), num_steps), np.array(counts), np.array(feds)


# ------------------------------------------------------------------------------------------------ greedy
def test_greedy_by_hand_with_eos_padding_and_held_carry():
    first = jnp.array([0, 2, 3], jnp.int32)
    carry, tokens = decoding.greedy(table_step(HAND_TABLE), start_carry(3), first, 5, eos_id=3, pad_id=-1)
    np.testing.assert_array_equal(tokens, [[1, 2, 3, -1, -1], [3, -1, -1, -1, -1], [0, 1, 2, 3, -1]])
    np.testing.assert_array_equal(carry["count"], [3, 1, 4])  # the steps up to and including eos
    np.testing.assert_array_equal(carry["fed"], [2, 2, 2])  # the token fed at the step that produced eos
    assert tokens.dtype == jnp.int32

    carry, tokens = decoding.greedy(table_step(HAND_TABLE), start_carry(3), first, 5)  # no eos: no stopping
    np.testing.assert_array_equal(tokens, [[1, 2, 3, 0, 1], [3, 0, 1, 2, 3], [0, 1, 2, 3, 0]])
    np.testing.assert_array_equal(carry["count"], [5, 5, 5])
    np.testing.assert_array_equal(carry["fed"], [0, 2, 3])


@pytest.mark.parametrize("eos_id, pad_id", [(None, 0), (2, 0), (4, -1), (0, 0)])
def test_greedy_against_a_python_loop(eos_id, pad_id):
    first = np.array([0, 1, 2, 3, 4, 2], np.int32)
    carry, tokens = decoding.greedy(table_step(RANDOM_TABLE), start_carry(6), jnp.asarray(first), 7,
                                    eos_id=eos_id, pad_id=pad_id)
    ref_tokens, ref_count, ref_fed = reference_greedy(RANDOM_TABLE, first, 7, eos_id, pad_id)
    np.testing.assert_array_equal(tokens, ref_tokens)
    np.testing.assert_array_equal(carry["count"], ref_count)
    np.testing.assert_array_equal(carry["fed"], ref_fed)


def test_greedy_jitted_and_zero_steps():
    first = jnp.array([0, 3], jnp.int32)
    run = jax.jit(lambda c, f: decoding.greedy(table_step(HAND_TABLE), c, f, 4, eos_id=3))
    carry, tokens = run(start_carry(2), first)
    ref_tokens, ref_count, ref_fed = reference_greedy(HAND_TABLE, np.asarray(first), 4, eos_id=3)
    np.testing.assert_array_equal(tokens, ref_tokens)
    np.testing.assert_array_equal(carry["count"], ref_count)
    carry, tokens = decoding.greedy(table_step(HAND_TABLE), start_carry(2), first, 0, eos_id=3)
    assert tokens.shape == (2, 0)
    assert_close(carry, start_carry(2), "exact")


def test_held_carry_with_the_batch_on_axis_1():
    """A carry leaf laid out [L, B], as the language model's [L, B, H] states are."""

    def step_fn(carry, tokens):
        return carry + jnp.array([[1], [10]], jnp.int32), jnp.asarray(HAND_TABLE)[tokens]  # carry [2, B]

    first = jnp.array([0, 2, 3], jnp.int32)
    carry, _ = decoding.greedy(step_fn, jnp.zeros((2, 3), jnp.int32), first, 5, eos_id=3, carry_batch_axis=1)
    np.testing.assert_array_equal(carry, [[3, 1, 4], [30, 10, 40]])  # steps taken: 3, 1, 4 (by hand above)
    with pytest.raises(ValueError, match=r"no batch axis of size 3 at carry_batch_axis=0"):
        decoding.greedy(step_fn, jnp.zeros((2, 3), jnp.int32), first, 5, eos_id=3)


# ------------------------------------------------------------------------------------------------ sample
@pytest.mark.parametrize("eos_id", [None, 2])
def test_sample_with_top_k_1_is_greedy(eos_id):
    first = jnp.array([0, 1, 2, 3, 4, 2], jnp.int32)
    ref_carry, ref_tokens = decoding.greedy(table_step(RANDOM_TABLE), start_carry(6), first, 7, eos_id=eos_id)

    def one(key):
        return decoding.sample(table_step(RANDOM_TABLE), start_carry(6), first, 7, key, temperature=0.7, top_k=1,
                               eos_id=eos_id)

    carry, tokens = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 3))  # 3 keys, one compilation
    for i in range(3):
        np.testing.assert_array_equal(tokens[i], ref_tokens)
        assert_close(jax.tree.map(lambda x: x[i], carry), ref_carry, "exact")


FIXED_LOGITS = np.array([1.0, 0.0, -0.5, 2.0], np.float32)  # [V=4]; every step, whatever the token
NUM_KEYS, DRAW_BATCH = 2000, 2


@functools.lru_cache(maxsize=None)
def _draws(temperature, top_k, num_steps=2):
    """Returns tokens [NUM_KEYS, DRAW_BATCH, num_steps] sampled from FIXED_LOGITS, one key per draw batch."""

    def step_fn(carry, tokens):
        return carry, jnp.broadcast_to(jnp.asarray(FIXED_LOGITS), (tokens.shape[0], FIXED_LOGITS.size))

    def one(key):
        first = jnp.zeros(DRAW_BATCH, jnp.int32)
        return decoding.sample(step_fn, (), first, num_steps, key, temperature=temperature, top_k=top_k)[1]

    keys = jax.random.split(jax.random.key(42), NUM_KEYS)
    return np.asarray(jax.jit(jax.vmap(one))(keys))


def _expected_probs(temperature, top_k):
    """softmax(FIXED_LOGITS / temperature) over the top_k largest, written out in float64."""
    logits = FIXED_LOGITS.astype(np.float64) / temperature
    keep = np.argsort(-logits)[:top_k] if top_k is not None else np.arange(logits.size)
    weights = np.zeros_like(logits)
    weights[keep] = np.exp(logits[keep])
    return weights / weights.sum()


def _chi_square(counts, probs):
    expected = counts.sum() * probs
    support = probs > 0
    return float(np.sum((counts[support] - expected[support]) ** 2 / expected[support]))


# chi-square quantiles at 0.999 (1 - a false alarm rate of 0.001), by degrees of freedom
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 15: 37.70}


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.5, None), (2.0, None), (1.0, 2), (3.0, 3)])
def test_sample_frequencies_match_softmax(temperature, top_k):
    tokens = _draws(temperature, top_k).reshape(-1)  # 8000 draws
    probs = _expected_probs(temperature, top_k)
    counts = np.bincount(tokens, minlength=probs.size).astype(np.float64)
    assert counts[probs == 0].sum() == 0  # nothing outside the top k
    np.testing.assert_allclose(counts / counts.sum(), probs, atol=0.02)  # ~4 standard errors at worst
    assert _chi_square(counts, probs) < CHI2_999[int((probs > 0).sum()) - 1]


def test_sample_steps_draw_independently():
    """The pairs (token at step 0, token at step 1) follow p x p: each step has its own key."""
    tokens = _draws(1.0, None).reshape(-1, 2)  # 4000 pairs
    probs = _expected_probs(1.0, None)
    pairs = np.bincount(tokens[:, 0] * probs.size + tokens[:, 1], minlength=probs.size ** 2).astype(np.float64)
    assert _chi_square(pairs, np.outer(probs, probs).reshape(-1)) < CHI2_999[15]


@pytest.mark.parametrize("top_k", [2, 3])
def test_top_k_never_draws_outside_the_top_k(top_k):
    first = jnp.array([0, 1, 2, 3], jnp.int32)

    def one(key):  # a high temperature spreads the draws over all k allowed tokens
        return decoding.sample(table_step(RANDOM_TABLE), start_carry(4), first, 6, key, temperature=5.0,
                               top_k=top_k)[1]

    tokens = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(1), 300)))  # [300, B, 6]
    prev = np.concatenate([np.broadcast_to(np.asarray(first)[None, :, None], (300, 4, 1)), tokens[..., :-1]], -1)
    allowed = np.argsort(-RANDOM_TABLE, axis=-1)[:, :top_k]  # [V, k]
    assert (allowed[prev] == tokens[..., None]).any(-1).all()
    for p in range(RANDOM_TABLE.shape[0]):  # every allowed token is drawn after each previous token
        assert set(tokens[prev == p].tolist()) == set(allowed[p].tolist())


def test_sample_stops_at_eos_and_holds_the_carry():
    first = jnp.array([0, 1, 2, 3], jnp.int32)

    def one(key):
        return decoding.sample(table_step(RANDOM_TABLE), start_carry(4), first, 6, key, temperature=2.0,
                               eos_id=1, pad_id=-1)

    carry, tokens = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(2), 50))
    carry, tokens = jax.tree.map(np.asarray, (carry, tokens))
    assert (tokens == 1).any() and (tokens == -1).any()  # the test sees both finished and running rows
    for row, count, fed, first_tok in zip(tokens.reshape(-1, 6), carry["count"].reshape(-1),
                                          carry["fed"].reshape(-1), np.tile(np.asarray(first), 50)):
        length = next((i + 1 for i, t in enumerate(row) if t == 1), 6)
        assert (row[length:] == -1).all() and -1 not in row[:length]
        assert count == length  # steps taken up to and including eos
        assert fed == ([first_tok] + row.tolist())[length - 1]  # the token fed at the last step taken


def test_sample_is_deterministic_in_its_key():
    first = jnp.array([0, 1, 2], jnp.int32)
    run = jax.jit(lambda key: decoding.sample(table_step(RANDOM_TABLE), start_carry(3), first, 8, key,
                                              temperature=3.0))
    a, b, c = run(jax.random.key(5))[1], run(jax.random.key(5))[1], run(jax.random.key(6))[1]
    np.testing.assert_array_equal(a, b)
    assert (np.asarray(a) != np.asarray(c)).any()


# ----------------------------------------------------------------------------------------------- helpers
def test_filter_logits_by_hand():
    logits = jnp.array([[1.0, 3.0, 2.0, 0.0], [2.0, 2.0, 1.0, 2.0]])
    out = decoding.filter_logits(logits, temperature=2.0, top_k=2)
    inf = -np.inf
    np.testing.assert_array_equal(out, [[inf, 1.5, 1.0, inf], [1.0, 1.0, inf, 1.0]])  # ties with the k-th stay
    np.testing.assert_array_equal(decoding.filter_logits(logits), logits)


def test_finish_tokens_by_hand_for_any_batch_shape():
    tokens = jnp.array([[3, 1], [2, 3]], jnp.int32)  # [B=2, K=2], as beams are
    finished = jnp.array([[False, True], [False, False]])
    out, now = decoding.finish_tokens(tokens, finished, eos_id=3, pad_id=0)
    np.testing.assert_array_equal(out, [[3, 0], [2, 3]])
    np.testing.assert_array_equal(now, [[True, True], [False, True]])
    out, now = decoding.finish_tokens(tokens, finished, eos_id=None)
    np.testing.assert_array_equal(out, tokens)
    np.testing.assert_array_equal(now, finished)


def test_hold_carry_by_hand():
    finished = jnp.array([True, False, True])
    new = {"a": jnp.array([1, 2, 3]), "b": jnp.array([[10, 20, 30], [40, 50, 60]])}
    old = {"a": jnp.array([-1, -2, -3]), "b": -new["b"]}
    out = decoding.hold_carry(finished, {"a": new["a"]}, {"a": old["a"]})
    np.testing.assert_array_equal(out["a"], [-1, 2, -3])
    out = decoding.hold_carry(finished, {"b": new["b"]}, {"b": old["b"]}, batch_axis=1)
    np.testing.assert_array_equal(out["b"], [[-10, 20, -30], [-40, 50, -60]])


def test_lengths_of_by_hand():
    tokens = jnp.array([[1, 3, 0], [3, 3, 3], [0, 1, 2]], jnp.int32)
    np.testing.assert_array_equal(decoding.lengths_of(tokens, 3), [2, 1, 3])
    np.testing.assert_array_equal(decoding.lengths_of(jnp.stack([tokens, tokens[::-1]]), 3), [[2, 1, 3], [3, 1, 2]])
    assert decoding.lengths_of(tokens, 3).dtype == jnp.int32


# ------------------------------------------------------------------------------------------------ errors
def _decode(fn, **overrides):
    args = dict(step_fn=table_step(HAND_TABLE), carry=start_carry(3), first_tokens=jnp.array([0, 1, 2], jnp.int32),
                num_steps=4)
    args.update(overrides)
    if fn == "sample":
        args.setdefault("key", jax.random.key(0))
        return decoding.sample(**args)
    return decoding.greedy(**args)


@pytest.mark.parametrize("fn", ["greedy", "sample"])
@pytest.mark.parametrize("overrides, match", [
    (dict(num_steps=-1), "num_steps must be an integer >= 0"),
    (dict(num_steps=2.0), "num_steps must be an integer >= 0"),
    (dict(num_steps=True), "num_steps must be an integer >= 0"),
    (dict(first_tokens=jnp.zeros((3, 1), jnp.int32)), r"first_tokens must be integer tokens of shape \[B\]"),
    (dict(first_tokens=jnp.zeros(3)), r"first_tokens must be integer tokens of shape \[B\]"),
    (dict(eos_id=-1), "eos_id must be None or an integer >= 0"),
    (dict(eos_id=4), r"eos_id must lie in \[0, 4\)"),
    (dict(pad_id=0.5), "pad_id must be an integer"),
    (dict(carry_batch_axis=-1), "carry_batch_axis must be an integer >= 0"),
    (dict(step_fn=lambda c, t: (c, jnp.zeros(3))), r"step_fn must return logits of shape \[B=3, V\]"),
])
def test_decoding_errors_name_the_argument(fn, overrides, match):
    with pytest.raises(ValueError, match=match):
        _decode(fn, **overrides)


@pytest.mark.parametrize("overrides, match", [
    (dict(temperature=0.0), "temperature must be > 0"),
    (dict(temperature=-1.0), "temperature must be > 0"),
    (dict(temperature=float("nan")), "temperature must be > 0"),
    (dict(top_k=0), r"top_k must be None or an integer in \[1, V\]"),
    (dict(top_k=1.5), "top_k must be None or an integer"),
    (dict(top_k=5), r"top_k must be None or an integer in \[1, 4\]"),  # V is 4
])
def test_sampling_errors_name_the_argument(overrides, match):
    with pytest.raises(ValueError, match=match):
        _decode("sample", **overrides)


def test_filter_logits_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"top_k must be None or an integer in \[1, 4\]"):
        decoding.filter_logits(jnp.zeros((2, 4)), top_k=5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        decoding.filter_logits(jnp.zeros((2, 4)), temperature=0.0)
