"""minGRU / minLSTM: the parallel scans against a Python loop over `step`, `rnn_jax.unroll`, hand-computed
steps and numerical gradients.

Almost all of this file's time is XLA compiling associative scans (O(log T) levels, each its own fusions),
so every jit here asks for ``xla_backend_optimization_level=0``, which halves that and leaves float
semantics alone: these tests check values, not speed.
"""

import functools

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rnn_jax import cells, unroll
from rnn_jax.minimal import g, log_g, min_gru, min_lstm, parallel_unroll
from rnn_jax.wrappers import zoneout
from tests.conftest import assert_close

I, H, B, T = 3, 4, 3, 6
LENGTHS = np.array([6, 2, 0], np.int32)  # full, partial, empty
FACTORIES = {"min_gru": min_gru, "min_lstm": min_lstm}
KINDS = tuple(FACTORIES)
SCANS = ("log", "linear")

_CACHE = {}
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _setup(kind):
    """Returns (cell, params, xs [B, T, I], initial carry [B, H] with both signs), cached."""
    if kind not in _CACHE:
        cell = FACTORIES[kind](H)
        params = cell.init(jax.random.key(0), I)
        xs = 2.0 * jax.random.normal(jax.random.key(1), (B, T, I))
        carry = jax.random.normal(jax.random.key(2), (B, H))
        _CACHE[kind] = (cell, params, xs, carry)
    return _CACHE[kind]


def _par(cell, *args, mask=None, **static):
    """Returns ``parallel_unroll(cell, *args, mask=mask, **static)`` through a jit cached per cell and options."""
    k = ("par", cell, tuple(sorted(static.items())))
    if k not in _CACHE:
        _CACHE[k] = jit(lambda *a, mask=None: parallel_unroll(cell, *a, mask=mask, **static))
    return _CACHE[k](*args, mask=mask)


def loop_reference(kind, params, xs, lengths=None, carry=None, reverse=False):
    """A Python loop over `cell.step`, each sequence alone, reversed by hand within its length."""
    cell = _setup(kind)[0]
    k = ("step", kind)
    if k not in _CACHE:
        _CACHE[k] = jit(lambda p, h, x: cell.step(p, h, cell.project_inputs(p, x)))
    step = _CACHE[k]
    xs = np.asarray(xs)
    n, t_max = xs.shape[:2]
    lengths = np.full(n, t_max) if lengths is None else np.asarray(lengths)
    h0 = np.zeros((n, H), np.float32) if carry is None else np.asarray(carry)
    ys = np.zeros((n, t_max, H), np.float32)
    finals = []
    for b in range(n):
        order = list(range(lengths[b]))
        if reverse:
            order = order[::-1]
        h = jnp.asarray(h0[b])
        for t in order:
            h, y = step(params, h, xs[b, t])
            ys[b, t] = np.asarray(y)
        finals.append(np.asarray(h))
    return np.stack(finals), ys


# --------------------------------------------------------------------------- against references


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scan", SCANS)
def test_parallel_equals_step_loop(kind, scan):
    cell, params, xs, carry = _setup(kind)
    # forward with lengths and a carry is compared with `unroll` below
    for lengths, c, reverse in ((None, None, False), (LENGTHS, carry, True)):
        got = _par(cell, params, xs, lengths, c, reverse=reverse, scan=scan)
        want = loop_reference(kind, params, xs, lengths, c, reverse)
        assert_close(got, want, err_msg=f"lengths={lengths} carry={c is not None} reverse={reverse}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_parallel_equals_unroll_values_and_grads(kind, reverse):
    """The same cell and params through `rnn_jax.unroll` (sequential lax.scan) and both scans."""
    cell, params, xs, carry = _setup(kind)
    weights = jax.random.normal(jax.random.key(3), (B, T, H))

    def run(fn, **kw):
        def loss(params, xs, carry):
            final, ys = fn(cell, params, xs, LENGTHS, carry, reverse=reverse, **kw)
            return jnp.sum(ys * weights) + jnp.sum(jnp.sin(final)), (final, ys)
        (_, outs), grads = jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(params, xs, carry)
        return outs, grads

    want_outs, want_grads = run(unroll)
    outs, grads = run(parallel_unroll)  # the default, log-space scan; check_grads covers 'linear'
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))
    assert_close(outs, want_outs)
    assert_close(grads, want_grads, "grad")


@pytest.mark.parametrize("kind", KINDS)
def test_mask_and_unbatched_match_unroll(kind):
    cell, params, xs, carry = _setup(kind)
    mask = jnp.array([[1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 0, 0], [0] * T], bool)  # not a prefix
    for scan, reverse in (("log", True), ("linear", False)):
        want = jit(lambda p, x, c, m: unroll(cell, p, x, carry=c, reverse=reverse, mask=m))(params, xs, carry, mask)
        assert_close(_par(cell, params, xs, None, carry, reverse=reverse, mask=mask, scan=scan),
                     want, err_msg=f"{scan} reverse={reverse}")
    got = _par(cell, params, xs[1], LENGTHS[1], carry[1])  # one sequence [T, I]
    assert_close(got, jit(lambda *a: unroll(cell, *a))(params, xs[1], LENGTHS[1], carry[1]))


@pytest.mark.parametrize("kind", KINDS)
def test_batch_major_equals_time_major(kind):
    cell, params, xs, carry = _setup(kind)
    fb, yb = _par(cell, params, xs, LENGTHS, carry, reverse=True)
    ft, yt = _par(cell, params, jnp.swapaxes(xs, 0, 1), LENGTHS, carry, reverse=True, time_major=True)
    assert yt.shape == (T, B, H)
    assert_close((fb, yb), (ft, jnp.swapaxes(yt, 0, 1)), "exact")


@pytest.mark.parametrize("kind", KINDS)
def test_log_and_linear_scans_agree(kind):
    cell, params, _, carry = _setup(kind)
    xs = 4.0 * jax.random.normal(jax.random.key(4), (B, 24, I))  # saturated gates: a near 0 and near 1
    lengths = np.array([24, 17, 0], np.int32)
    assert_close(_par(cell, params, xs, lengths, carry, scan="log"),
                 _par(cell, params, xs, lengths, carry, scan="linear"))


@pytest.mark.parametrize("kind", KINDS)
def test_zero_length_time_axis(kind):
    cell, params, _, carry = _setup(kind)
    final, ys = parallel_unroll(cell, params, jnp.zeros((B, 0, I)), carry=carry)  # nothing to compile
    assert ys.shape == (B, 0, H)
    assert_close(final, carry, "exact")


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scan", SCANS)
def test_check_grads(kind, scan):
    cell = FACTORIES[kind](2)
    params = cell.init(jax.random.key(5), 2)
    xs = jax.random.normal(jax.random.key(6), (2, 3, 2))
    carry = jnp.array([[0.3, -0.7], [1.1, 0.2]])
    lengths = np.array([3, 0], np.int32)

    def f(params, xs, carry):
        final, ys = parallel_unroll(cell, params, xs, lengths, carry, reverse=True, scan=scan)
        return jnp.sum(ys * ys) + jnp.sum(final)

    check_grads(jax.jit(f), (params, xs, carry), order=1, modes=("rev",), eps=1e-3, atol=5e-3, rtol=5e-3)


def test_g_and_log_g():
    x = jnp.array([-30.0, -2.0, -1e-3, 0.0, 1e-3, 3.0])
    want = np.array([1 / (1 + math.exp(30)), 1 / (1 + math.exp(2)), 1 / (1 + math.exp(1e-3)), 0.5, 0.501, 3.5])
    assert_close(g(x), want)
    assert_close(log_g(x), np.log(want))
    assert np.isfinite(jax.grad(lambda x: jnp.sum(log_g(x)))(x)).all()


# --------------------------------------------------------------------------- hand-computed


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def _run_both(cell, params, xs, h0):
    """Returns [(final, ys)] from both scans and `unroll`, for one sequence xs [T, 1]."""
    return [_par(cell, params, xs, None, h0, scan=s) for s in SCANS] + [unroll(cell, params, xs, carry=h0)]


def test_min_gru_two_steps_by_hand():
    cell = min_gru(1)
    params = {"w_ih": jnp.array([[0.5, 1.0]]), "b_ih": jnp.array([0.0, 0.5])}  # gates z, h
    # t=1, x=1: z = s(0.5), h~ = g(1.5) = 2.0; t=2, x=-2: z = s(-1), h~ = g(-1.5) = s(-1.5)
    h1 = (1 - _sig(0.5)) * 0.4 + _sig(0.5) * 2.0
    h2 = (1 - _sig(-1.0)) * h1 + _sig(-1.0) * _sig(-1.5)
    for final, ys in _run_both(cell, params, jnp.array([[1.0], [-2.0]]), jnp.array([0.4])):
        assert_close(ys, np.array([[h1], [h2]]))
        assert_close(final, np.array([h2]))


def test_min_lstm_two_steps_by_hand():
    cell = min_lstm(1)
    params = {"w_ih": jnp.array([[1.0, -1.0, 2.0]]), "b_ih": jnp.array([0.0, 0.5, -1.0])}  # gates f, i, h
    # t=1, x=1: f = s(1), i = s(-0.5), h~ = g(1) = 1.5; t=2, x=-2: f = s(-2), i = s(2.5), h~ = s(-5)
    f1, i1 = _sig(1.0), _sig(-0.5)
    h1 = f1 / (f1 + i1) * -0.4 + i1 / (f1 + i1) * 1.5
    f2, i2 = _sig(-2.0), _sig(2.5)
    h2 = f2 / (f2 + i2) * h1 + i2 / (f2 + i2) * _sig(-5.0)
    for final, ys in _run_both(cell, params, jnp.array([[1.0], [-2.0]]), jnp.array([-0.4])):
        assert_close(ys, np.array([[h1], [h2]]))
        assert_close(final, np.array([h2]))


# --------------------------------------------------------------------------- long sequences, dtypes, init


@pytest.mark.parametrize("kind,scan", [("min_gru", "log"), ("min_lstm", "linear")])
def test_long_sequence_parallel_equals_sequential(kind, scan):
    cell = FACTORIES[kind](4, scan=scan)
    params = cell.init(jax.random.key(7), 3)
    xs = jax.random.normal(jax.random.key(8), (2, 4096, 3))
    lengths = np.array([4096, 1234], np.int32)
    carry = jnp.ones((2, 4))
    want = jit(lambda p, x: unroll(cell, p, x, lengths, carry))(params, xs)
    assert_close(_par(cell, params, xs, lengths, carry), want)  # the cell's scan


@pytest.mark.parametrize("kind", KINDS)
def test_bfloat16_compute(kind):
    cell32, params, xs, carry = _setup(kind)
    cell16 = FACTORIES[kind](H, dtype=jnp.bfloat16)
    final, ys = _par(cell16, params, xs, LENGTHS, carry)
    assert ys.dtype == jnp.bfloat16 and final.dtype == jnp.float32
    assert_close((final, ys), _par(cell32, params, xs, LENGTHS, carry), "bf16")


@pytest.mark.parametrize("kind", KINDS)
def test_init_shapes_and_bounds(kind):
    G = {"min_gru": 2, "min_lstm": 3}[kind]
    cell = FACTORIES[kind](5)
    assert (cell.kind, cell.num_gates, cell.hidden_size, cell.output_size) == (kind, G, 5, 5)
    p = jit(cell.init, static_argnums=1)(jax.random.key(0), 16)
    assert p["w_ih"].shape == (16, G * 5) and p["b_ih"].shape == (G * 5,)
    assert float(jnp.max(jnp.abs(p["w_ih"]))) <= 0.25 and float(jnp.max(jnp.abs(p["b_ih"]))) <= 0.25
    p = jit(FACTORIES[kind](5, bias=False, initializer="jax").init, static_argnums=1)(jax.random.key(0), 16)
    assert set(p) == {"w_ih"}
    assert cell.initial_carry((2, 3)).shape == (2, 3, 5)


def test_the_cells_scan_option_is_parallel_unrolls_default_and_parallel_binds_the_cell():
    cell, params, xs, carry = _setup("min_gru")
    assert dict(cell.options)["scan"] == "linear"
    linear = _par(cell, params, xs, LENGTHS, carry, scan="linear")
    assert_close(_par(cell, params, xs, LENGTHS, carry), linear, "exact")
    assert_close(jit(cell.parallel)(params, xs, LENGTHS, carry), linear, "exact")
    log_cell = min_gru(H, scan="log")
    assert_close(_par(log_cell, params, xs, LENGTHS, carry), _par(cell, params, xs, LENGTHS, carry, scan="log"),
                 "exact")
    with pytest.raises(ValueError, match="scan must be one of"):
        min_gru(H, scan="heinsen")


def test_no_bias_matches_unroll():
    cell = min_lstm(H, bias=False)
    params = cell.init(jax.random.key(0), I)
    xs = _setup("min_lstm")[2]
    assert_close(_par(cell, params, xs, LENGTHS), unroll(cell, params, xs, LENGTHS))


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_name_the_argument():
    cell, params, xs, carry = _setup("min_gru")
    cases = [
        (lambda: parallel_unroll(cell, params, xs[None]), ValueError, "xs must have shape"),
        (lambda: parallel_unroll(cell, params, xs[..., :2]), ValueError, "xs must have 3 features"),
        (lambda: parallel_unroll(cell, params, xs, LENGTHS[:2]), ValueError, "lengths must have shape"),
        (lambda: parallel_unroll(cell, params, xs, LENGTHS + 1), ValueError, "lengths must lie in"),
        (lambda: parallel_unroll(cell, params, xs, LENGTHS * 1.0), TypeError, "lengths must be an integer"),
        (lambda: parallel_unroll(cell, params, xs, carry=carry[:, :2]), ValueError, "carry must have shapes"),
        (lambda: parallel_unroll(cell, params, xs, mask=jnp.ones((B, T + 1), bool)), ValueError,
         "mask must have shape"),
        (lambda: parallel_unroll(cell, params, xs, LENGTHS, mask=jnp.ones((B, T), bool)), ValueError,
         "pass lengths or mask"),
        (lambda: parallel_unroll(cell, params, xs, scan="heinsen"), ValueError, "scan must be one of"),
        (lambda: parallel_unroll(cells.gru(H), params, xs), ValueError, "cell must be a Cell of kind"),
        (lambda: parallel_unroll(zoneout(cell, 0.1), params, xs), ValueError, r"cell is wrapped \(\['zoneout'"),
        (lambda: min_gru(0), ValueError, "hidden_size must be"),
        (lambda: min_lstm(4, initializer="xavier"), ValueError, "initializer must be one of"),
        (lambda: cell.init(jax.random.key(0), 0), ValueError, "input_size must be"),
    ]
    for fn, err, msg in cases:
        with pytest.raises(err, match=msg):
            fn()
