"""Attention against hand-computed cases and NumPy formulas over the real slots of each example alone."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rnn_jax import attention, cells, unroll, wrappers
from rnn_jax.attention import Attention
from tests.conftest import assert_close

B, Q, M, A, S = 3, 4, 5, 6, 7
LENGTHS = np.array([7, 3, 1])  # a full row, a padded row, a single real slot
SPECS = {"additive": Attention("additive", Q, M, A), "dot": Attention("dot", M, M),
         "general": Attention("general", Q, M)}


@jax.jit
def _softmax(scores, mask):
    return attention.masked_softmax(scores, mask)


_additive = jax.jit(attention.additive_score)


@functools.partial(jax.jit, static_argnums=4)
def _apply(params, query, memory, mask, att):
    return att(params, query, att.prepare(params, memory), mask)


def np_scores(kind, params, q, m):
    """The papers' formulas over one example's slots: ``q [Q]``, ``m [S, M]`` -> ``[S]`` (float64 loops)."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    if kind == "additive":
        return np.array([p["v"] @ np.tanh(q @ p["w_q"] + m_s @ p["w_m"]) for m_s in m])
    if kind == "general":
        return np.array([q @ p["w"] @ m_s for m_s in m])
    return np.array([q @ m_s for m_s in m])


def np_attention(kind, params, query, memory, lengths):
    """Returns (context [B, M], weights [B, S]): each example's softmax over its first lengths[b] slots."""
    query, memory = np.asarray(query, np.float64), np.asarray(memory, np.float64)
    contexts, weights = [], np.zeros(memory.shape[:2])
    for b, n in enumerate(lengths):
        s = np_scores(kind, params, query[b], memory[b, :n])
        w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        weights[b, :n] = w
        contexts.append(w @ memory[b, :n])
    return np.stack(contexts), weights


def random_params(init, *args, seed=0):
    """Returns params of `init`'s shapes and dtypes drawn by NumPy (no random-number program to compile)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda key: init(key, *args), jax.random.key(0))
    return jax.tree.map(lambda a: jnp.asarray(rng.uniform(-0.6, 0.6, a.shape), a.dtype), shapes)


def pad_memory(memory, mask, extra: int, fill):
    """Returns memory and mask with `extra` more masked slots, every masked slot holding `fill`'s values."""
    mask = np.pad(np.asarray(mask), ((0, 0), (0, extra)))  # [B, S + extra]
    memory = np.pad(np.asarray(memory), ((0, 0), (0, extra), (0, 0)))
    return jnp.asarray(np.where(mask[:, :, None], memory, fill), jnp.float32), jnp.asarray(mask)


def _case(kind, seed=0):
    att = SPECS[kind]
    rng = np.random.default_rng(seed)
    query = jnp.asarray(rng.normal(size=(B, att.query_size)), jnp.float32)
    memory = jnp.asarray(rng.normal(size=(B, S, M)), jnp.float32)
    return att, random_params(att.init, seed=seed), query, memory, jnp.asarray(np.arange(S)[None, :] < LENGTHS[:, None])


def test_init_is_uniform_within_one_over_sqrt_fan_in_as_torch_linear():
    params = jax.jit(lambda key: {kind: att.init(key) for kind, att in SPECS.items()})(jax.random.key(5))
    fan_ins = {"w_q": Q, "w_m": M, "v": A, "w": Q}
    shapes = {"w_q": (Q, A), "w_m": (M, A), "v": (A,), "w": (Q, M)}
    assert params["dot"] == {} and set(params["additive"]) == {"w_q", "w_m", "v"} and set(params["general"]) == {"w"}
    for name, w in {**params["additive"], **params["general"]}.items():
        bound = 1.0 / np.sqrt(fan_ins[name])
        assert w.shape == shapes[name] and w.dtype == jnp.float32
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound and np.unique(w).size == w.size


def test_additive_score_by_hand_and_with_precomputed_keys():
    params = {"w_q": jnp.array([[1.0]]), "w_m": jnp.array([[2.0]]), "v": jnp.array([3.0])}
    memory = jnp.array([[[0.25], [-1.0]]])  # [1, 2, 1]
    got = _additive(params, jnp.array([[0.5]]), memory)
    np.testing.assert_allclose(got, [[3 * np.tanh(1.0), 3 * np.tanh(-1.5)]], rtol=1e-6)
    att, params, query, memory, _ = _case("additive")
    want = np.stack([np_scores("additive", params, np.asarray(query[b], np.float64), np.asarray(memory[b]))
                     for b in range(B)])
    keys = jax.jit(attention.precompute_keys)(params, memory)
    assert keys.shape == (B, S, A)
    assert_close(_additive(params, query, memory), want)
    assert_close(_additive(params, query, None, keys=keys), want)
    assert_close(att.score(params, query, att.prepare(params, memory)), want)  # eager, through the spec


def test_dot_and_general_scores_by_hand():
    q = jnp.array([[1.0, 2.0]])
    m = jnp.array([[[3.0, 4.0], [1.0, 0.0], [-1.0, 1.0]]])
    np.testing.assert_array_equal(attention.dot_score(q, m), [[11.0, 1.0, 1.0]])
    w = jnp.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])  # q W = [1, 2, 2]
    m3 = jnp.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [2.0, -1.0, 0.0]]])
    np.testing.assert_array_equal(attention.general_score({"w": w}, q, m3), [[5.0, 2.0, 0.0]])
    for kind in ("dot", "general"):
        att, params, query, memory, _ = _case(kind)
        want = np.stack([np_scores(kind, params, np.asarray(query[b], np.float64), np.asarray(memory[b]))
                         for b in range(B)])
        assert_close(att.score(params, query, memory), want)


@pytest.mark.parametrize("jit", [False, True])
def test_masked_softmax_sums_to_one_and_is_zero_on_padding(jit):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(6, 5)).astype(np.float32) * 3
    mask = rng.random((6, 5)) < 0.5
    mask[:, 0] |= ~mask.any(axis=1)  # every row has a real slot
    mask[4] = [False, False, True, False, False]  # a single real slot
    mask[5] = True
    weights = np.asarray((_softmax if jit else attention.masked_softmax)(jnp.asarray(scores), jnp.asarray(mask)))
    assert weights.dtype == np.float32
    assert np.all(weights[~mask] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert weights[4, 2] == 1.0
    for b in range(6):
        s = scores[b][mask[b]].astype(np.float64)
        np.testing.assert_allclose(weights[b][mask[b]], np.exp(s - s.max()) / np.exp(s - s.max()).sum(), rtol=1e-6)


@pytest.mark.parametrize("kind", list(SPECS))
def test_padded_memory_changes_nothing_and_matches_each_example_alone(kind):
    att, params, query, memory, mask = _case(kind)
    context, weights = _apply(params, query, memory, mask, att)
    want_context, want_weights = np_attention(kind, params, query, memory, LENGTHS)
    assert_close((context, weights), (want_context, want_weights))
    assert np.all(np.asarray(weights)[~np.asarray(mask)] == 0.0)
    padded, padded_mask = pad_memory(memory, mask, 3, 50.0 * np.random.default_rng(7).normal(size=(B, S + 3, M)))
    context2, weights2 = _apply(params, query, padded, padded_mask, att)
    assert_close((context2, weights2[:, :S]), (context, weights))
    assert np.all(np.asarray(weights2)[:, S:] == 0.0)


def test_large_scores_do_not_overflow_and_masked_scores_play_no_part():
    scores = jnp.array([[1e4, 1e4 - 1.0, -1e4, 1e30], [-1e4, -1e4 - 2.0, np.inf, 1e4]], jnp.float32)
    mask = jnp.array([[True, True, True, False], [True, True, False, False]])
    e = np.exp([-0.0, -1.0])
    want = np.array([[e[0], e[1], 0.0, 0.0] / e.sum(), [1.0, np.exp(-2.0), 0.0, 0.0] / (1 + np.exp(-2.0))])
    weights = _softmax(scores, mask)
    assert np.all(np.isfinite(weights))
    assert_close(weights, want)
    grads = jax.grad(lambda s: jnp.sum(_softmax(s, mask) * jnp.arange(4.0)[None, :]))(scores)
    assert np.all(np.isfinite(grads)) and np.all(np.asarray(grads)[~np.asarray(mask)] == 0.0)


def test_all_masked_row_is_an_error_when_concrete_and_zeros_under_jit():
    scores = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    mask = jnp.array([[True, True], [False, False]])
    with pytest.raises(ValueError, match=r"mask must have a real \(True\) slot in every row; rows \[1\]"):
        attention.masked_softmax(scores, mask)
    weights = _softmax(scores, mask)
    np.testing.assert_array_equal(weights[1], [0.0, 0.0])
    assert_close(weights[0], np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum())
    grads = jax.grad(lambda s: jnp.sum(_softmax(s, mask) ** 2))(scores)
    assert np.all(np.isfinite(grads))
    att, params, query, memory, _ = _case("general")
    empty = jnp.zeros((B, S), bool).at[0].set(True)
    context, _ = _apply(params, query, memory, empty, att)
    np.testing.assert_array_equal(context[1:], 0.0)


@pytest.mark.parametrize("kind", list(SPECS))
def test_gradients_of_scores_to_context_match_finite_differences(kind):
    att, params, query, memory, _ = _case(kind, seed=3)
    with jax.enable_x64(True):
        params, query, memory = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), (params, query[:2], memory[:2, :3]))
        mask = jnp.array([[True, True, False], [True, False, True]])
        check_grads(jax.jit(lambda p, q, m: att(p, q, att.prepare(p, m), mask)[0]), (params, query, memory),
                    order=1, modes=["rev"])


def test_bfloat16_memory_scores_in_float32():
    for kind in SPECS:
        att, params, query, memory, mask = _case(kind)
        context, weights = att(params, query, att.prepare(params, memory.astype(jnp.bfloat16)), mask)
        assert context.dtype == weights.dtype == jnp.float32
        want = np_attention(kind, params, query, memory.astype(jnp.bfloat16).astype(jnp.float32), LENGTHS)
        assert_close((context, weights), want, "bf16")


def _errors():
    att, params, query, memory, mask = _case("additive")
    gen = SPECS["general"]
    g_params = random_params(gen.init)
    return [
        (lambda: Attention("dot", 3, 5), r"query_size == memory_size, got query_size=3 and memory_size=5"),
        (lambda: attention.dot_score(jnp.ones((2, 3)), jnp.ones((2, 4, 5))), r"query_size=3 and memory_size=5"),
        (lambda: Attention("bahdanau", 3, 5, 2), r"kind must be one of \('additive', 'dot', 'general'\)"),
        (lambda: Attention("additive", 3, 5), r"attn_size must be an integer >= 1, got None"),
        (lambda: Attention("general", 3, 5, 4), r"attn_size is additive attention's"),
        (lambda: att(params, query[0], memory, mask), r"query must have shape \[batch, query_size\], got \(4,\)"),
        (lambda: att(params, query, memory[0], mask), r"memory must have shape \[batch, slots, memory_size\], "
                                                      r"got \(7, 5\)"),
        (lambda: att(params, query[:, :3], memory, mask), r"query must have 4 features \(query_size\).*\(3, 3\)"),
        (lambda: att(params, query, memory[:, :, :2], mask), r"memory must have 5 features .*\(3, 7, 2\)"),
        (lambda: gen(g_params, query[:2], memory, mask), r"memory must have the query's batch size 2"),
        (lambda: att(params, query, memory, mask[:, :4]), r"mask must have the scores' shape \[3, 7\].*\(3, 4\)"),
        (lambda: att(params, query, memory, mask.astype(jnp.int32)), r"mask must be boolean.*int32"),
        (lambda: attention.additive_score(params, query, keys=jnp.ones((3, 7, 2))),
         r"keys must have 6 features .*\(3, 7, 2\)"),
        (lambda: attention.attend(jnp.ones((3, 7)), jnp.ones((3, 6, 5))), r"memory must have shape \[3, 7, "
                                                                           r"memory_size\].*\(3, 6, 5\)"),
        (lambda: attention.masked_softmax(jnp.ones((3,)), None), r"scores must have shape \[batch, slots\]"),
    ]


def test_errors_name_the_argument_and_the_shapes():
    for fn, message in _errors():
        with pytest.raises(ValueError, match=message):
            fn()


def test_feed_inputs_decoder_over_padded_memory_is_unchanged_by_extra_padding():
    H, I, T = 4, 3, 5
    att = Attention("additive", H, M, A)

    def decoder(prepared, mask):
        feed_fn = (lambda p, carry: att(p, cells.carry_h(carry), prepared, mask)[0])
        return wrappers.feed_inputs(cells.gru(H), feed_fn, M, feed_init=att.init)

    @jax.jit
    def run(params, xs, memory, mask):
        return unroll(decoder(att.prepare(params["feed"], memory), mask), params, xs, jnp.array([5, 2, 4]))

    params = random_params(decoder(None, None).init, I, seed=11)
    _, _, _, memory, mask = _case("additive", seed=12)
    xs = jnp.asarray(np.random.default_rng(13).normal(size=(B, T, I)), jnp.float32)
    final, ys = run(params, xs, memory, mask)
    base, p = cells.gru(H), {k: v for k, v in params.items() if k != "feed"}  # a plain GRU of input I + M
    step = jax.jit(lambda h, x: base.step(p, h, base.project_inputs(p, x))[0])
    h, want = np.zeros((B, H), np.float32), np.zeros((B, T, H))
    for t in range(T):  # by hand: each example's context from its own real slots, then the plain GRU step
        context, _ = np_attention("additive", params["feed"], h, memory, LENGTHS)
        new = np.asarray(step(h, np.concatenate([xs[:, t], context.astype(np.float32)], -1)))
        valid = (t < np.array([5, 2, 4]))[:, None]
        h = np.where(valid, new, h)
        want[:, t] = np.where(valid, new, 0.0)
    assert_close((final, ys), (h, want))
    padded, padded_mask = pad_memory(memory, mask, 2, np.full((B, S + 2, M), -9.0))
    assert_close(run(params, xs, padded, padded_mask), (final, ys))
