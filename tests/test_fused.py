"""The fused backward pass (rnn_jax.fused) against plain autodiff of the scan, and against PyTorch.

Every unroll here runs the scan (``kernel='scan'``): the fused pass belongs to it, not to the kernels.

PyTorch gradient parity of the default (fused) path is in tests/interop/test_torch.py; here every cell
with a tail is compared with ``fused_backward=False`` on what PyTorch lacks: peepholes, layer norm, masks
with holes, reverse with a given carry, unbatched inputs and a float64 finite-difference check.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rnn_jax import cells
from rnn_jax import unroll as plain_unroll
from rnn_jax.fused import fused_scan
from tests.conftest import assert_close

unroll = functools.partial(plain_unroll, kernel="scan")

B, T, I, H = 3, 5, 4, 6

CELLS = {
    "elman_relu": lambda **kw: cells.elman(H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: cells.lstm(H, **kw),
    "lstm_proj": lambda **kw: cells.lstm(H, proj_size=2, **kw),
    "lstm_peephole_ln": lambda **kw: cells.lstm(H, peephole=True, layer_norm=True, **kw),
    "gru": lambda **kw: cells.gru(H, **kw),
    "gru_nobias": lambda **kw: cells.gru(H, bias=False, **kw),
}


@functools.lru_cache(maxsize=None)
def _grad_fn(name, fused, reverse, use_mask, hoist):
    cell = CELLS[name]()

    def loss(params, xs, carry, w, valid):
        kw = dict(mask=valid) if use_mask else dict(lengths=valid)
        final, ys = unroll(cell, params, xs, carry=carry, reverse=reverse, fused_backward=fused,
                           hoist_inputs=hoist, **kw)
        return jnp.sum(ys * w) + sum(jnp.sum(jnp.sin(leaf)) for leaf in jax.tree.leaves(final))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def _inputs(name):
    cell = CELLS[name]()
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    carry = jax.tree.map(lambda a: 0.3 + 0.1 * jnp.ones_like(a), cell.initial_carry((B,)))
    w = jax.random.normal(jax.random.key(2), (B, T, cell.output_size))
    return params, xs, carry, w


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("valid", ["lengths", "holes"])
def test_fused_gradients_equal_autodiff(name, reverse, valid):
    """Both projection placements are covered: hoisted for two of the four (reverse, valid) pairs."""
    hoist = reverse == (valid == "holes")
    params, xs, carry, w = _inputs(name)
    if valid == "lengths":
        v = jnp.array([5, 2, 0], jnp.int32)
    else:  # a mask with holes: held steps in the middle of a sequence
        v = jnp.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    use_mask = valid == "holes"
    got = _grad_fn(name, True, reverse, use_mask, hoist)(params, xs, carry, w, v)
    want = _grad_fn(name, False, reverse, use_mask, True)(params, xs, carry, w, v)
    assert_close(got, want, "grad")


def test_fused_path_is_taken_and_matches_the_primal():
    """The custom VJP really runs (a different jaxpr), and its primal output is the plain scan's."""
    cell = CELLS["lstm"]()
    params, xs, carry, _ = _inputs("lstm")
    fused = jax.make_jaxpr(lambda p: unroll(cell, p, xs, carry=carry))(params)
    plain = jax.make_jaxpr(lambda p: unroll(cell, p, xs, carry=carry, fused_backward=False))(params)
    assert "custom_vjp_call" in str(fused) and "custom_vjp_call" not in str(plain)
    assert_close(unroll(cell, params, xs, carry=carry), unroll(cell, params, xs, carry=carry, fused_backward=False),
                 "exact")


@pytest.mark.parametrize("name", ["lstm", "gru"])
@pytest.mark.parametrize("hoist", [True, False])
def test_fused_scan_check_grads_float64(name, hoist):
    """Finite differences in float64 on the custom VJP itself (params, inputs, carry)."""
    with jax.enable_x64(True):
        cell = CELLS[name](param_dtype=jnp.float64)
        params = cell.init(jax.random.key(0), I)
        xs = jax.random.normal(jax.random.key(1), (T, 2, I), jnp.float64)  # time-major
        carry = jax.tree.map(lambda a: jnp.full(a.shape, 0.2, jnp.float64), cell.initial_carry((2,)))
        valid = jnp.array([[True, True]] * 3 + [[True, False]] * 2)  # [T, B]

        def f(p, x, c):
            final, ys = fused_scan(cell, p, x, c, valid, False, 1, hoist)
            return jnp.sum(jnp.tanh(ys)) + sum(jnp.sum(leaf ** 2) for leaf in jax.tree.leaves(final))

        check_grads(f, (params, xs, carry), order=1, modes=("rev",))


def test_unbatched_and_bfloat16_follow_autodiff():
    cell = cells.lstm(H, dtype=jnp.bfloat16)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (T, I))  # unbatched

    def loss(p, fused):
        _, ys = unroll(cell, p, xs, lengths=3, fused_backward=fused)
        return jnp.sum(ys.astype(jnp.float32) ** 2)

    got = jax.grad(loss)(params, True)
    want = jax.grad(loss)(params, False)
    assert jax.tree.map(lambda a: a.dtype, got) == jax.tree.map(lambda a: a.dtype, params)
    assert_close(got, want, "bf16")


def test_checkpointed_gradients_equal_the_fused_ones():
    """Checkpointing leaves the fused path (plain autodiff of a rematerialised scan): same gradients."""
    cell = CELLS["gru"]()
    params, xs, carry, w = _inputs("gru")
    lengths = jnp.array([5, 2, 0], jnp.int32)

    def loss(p, **kw):
        return jnp.sum(unroll(cell, p, xs, lengths, carry, **kw)[1] * w)

    assert_close(jax.grad(functools.partial(loss, checkpoint=True))(params), jax.grad(loss)(params), "grad")


PATHS = [  # (unroll options, cell, whether the fused backward pass is taken)
    (dict(), "lstm", True),
    (dict(fused_backward=False), "lstm", False),
    (dict(checkpoint=True), "lstm", False),
    (dict(zoneout=0.2), "lstm", False),  # evaluation: the expectation is still per-step work
    (dict(zoneout=0.2, deterministic=False), "gru", False),
    (dict(recurrent_dropout=0.3, deterministic=False), "lstm", False),
    (dict(recurrent_dropout=0.3), "lstm", True),  # evaluation: no mask, nothing per step
    (dict(input_dropout=0.3, deterministic=False), "gru", True),  # the mask is applied before the scan
    (dict(), "lstm_peephole_ln", True),
    (dict(), "gru_cho", False),  # two recurrent matmuls: no tail
]


@pytest.mark.parametrize("options,name,fused", PATHS, ids=lambda v: str(v))
def test_fused_path_is_taken_exactly_where_it_applies(options, name, fused):
    cell = cells.gru(H, variant="cho") if name == "gru_cho" else CELLS[name]()
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    jaxpr = jax.make_jaxpr(lambda p: unroll(cell, p, xs, dropout_key=jax.random.key(2), **options))(params)
    assert ("custom_vjp_call" in str(jaxpr)) == fused


def _zoneout_loop(cell, params, xs, carry, lengths, rate, keep=None):
    """A plain Python loop with zoneout: the expectation, or ``keep[t]`` (per carry leaf, True: old value)."""
    ys = []
    for t in range(xs.shape[1]):
        new, _ = cell.step(params, carry, cell.project_inputs(params, xs[:, t]))
        if keep is None:
            new = jax.tree.map(lambda n, o: rate * o + (1 - rate) * n, new, carry)
        else:
            new = jax.tree.map(lambda k, n, o: jnp.where(k, o, n), keep[t], new, carry)
        valid = (t < lengths)[:, None]  # [B, 1]
        new = jax.tree.map(lambda n, o: jnp.where(valid, n, o), new, carry)
        y = new.h if isinstance(new, cells.LSTMState) else new
        ys.append(jnp.where(valid, y, 0.0))
        carry = new
    return carry, jnp.stack(ys, axis=1)


def _zoneout_keep_masks(key, rate, carry):
    """The per-step, per-leaf choices drawn by hand: unroll's key plan (input, recurrent, zoneout) then one
    key per step, split again per carry leaf."""
    step_keys = jax.random.split(jax.random.split(key, 3)[2], T)
    leaves, tree = jax.tree.flatten(carry)
    return [jax.tree.unflatten(tree, [jax.random.bernoulli(k, rate, leaf.shape)
                                      for k, leaf in zip(jax.random.split(step_keys[t], len(leaves)), leaves)])
            for t in range(T)]


@pytest.mark.parametrize("name", ["gru", "lstm_proj"])
@pytest.mark.parametrize("train", [False, True])
def test_zoneout_values_and_gradients_equal_a_python_loop(name, train):
    """Zoneout leaves the fused path; its scan against a loop with the same expectation or choices."""
    cell = CELLS[name]()
    params, xs, carry, w = _inputs(name)
    lengths = jnp.array([5, 2, 0], jnp.int32)
    key = jax.random.key(3)
    keep = _zoneout_keep_masks(key, 0.4, carry) if train else None

    def loss_scan(p):
        final, ys = unroll(cell, p, xs, lengths, carry, zoneout=0.4, dropout_key=key, deterministic=not train)
        return jnp.sum(ys * w) + sum(jnp.sum(leaf) for leaf in jax.tree.leaves(final)), (final, ys)

    def loss_loop(p):
        final, ys = _zoneout_loop(cell, p, xs, carry, lengths, 0.4, keep)
        return jnp.sum(ys * w) + sum(jnp.sum(leaf) for leaf in jax.tree.leaves(final)), (final, ys)

    (_, got), g_got = jax.value_and_grad(loss_scan, has_aux=True)(params)
    (_, want), g_want = jax.value_and_grad(loss_loop, has_aux=True)(params)
    assert_close(got, want, "forward")
    assert_close(g_got, g_want, "grad")
    if train:  # both old and new values were kept somewhere, so the choices were really compared
        kept = np.stack([np.asarray(jax.tree.leaves(k)[0]) for k in keep])
        assert kept.any() and not kept.all()
