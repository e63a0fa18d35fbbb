"""The PyTorch-like specs (RNN / LSTM / GRU) against manual compositions of `unroll`, shapes and checks.

Independent of torch: tests/interop/test_torch.py compares the specs with PyTorch itself.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from rnn_jax import GRU, LSTM, RNN, Stack, cells, unroll
from tests.conftest import assert_close

I, H, P, T, B = 3, 4, 2, 5, 2
LENGTHS = np.array([5, 2], np.int32)

# name -> (spec, the cell built by hand, as the layers should use it)
SPECS = {
    "lstm_bi_proj": (LSTM(I, H, 2, bidirectional=True, proj_size=P), lambda: cells.lstm(H, proj_size=P)),
    "lstm_peep_ln_proj": (LSTM(I, H, 2, bidirectional=True, proj_size=P, peephole=True, layer_norm=True),
                          lambda: cells.lstm(H, proj_size=P, peephole=True, layer_norm=True)),
    "gru_cho": (GRU(I, H, 2, bidirectional=True, variant="cho"), lambda: cells.gru(H, variant="cho")),
    "rnn_relu": (RNN(I, H, 1, nonlinearity="relu", batch_first=True), lambda: cells.elman(H, nonlinearity="relu")),
}

_CACHE = {}


def _setup(name):
    """Returns (spec, params, inputs in the spec's layout, jitted apply), cached."""
    if name not in _CACHE:
        spec, _ = SPECS[name]
        params = spec.init(jax.random.key(0))
        xs = jax.random.normal(jax.random.key(1), (B, T, I) if spec.batch_first else (T, B, I))
        apply = jax.jit(spec.apply, static_argnames=("deterministic",))
        _CACHE[name] = (spec, params, xs, apply)
    return _CACHE[name]


def _random_state(spec, key):
    cell = spec.cell()
    leaves, tree = jax.tree.flatten(cell.initial_carry((spec.num_layers * spec.num_directions, B)))
    ks = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, l.shape) for k, l in zip(ks, leaves)])


def manual_stack(name, params, xs, lengths, initial_state):
    """Composes `unroll` calls by hand: layers in a loop, backward = reverse within length, concat features."""
    spec, make_cell = SPECS[name]
    cell = make_cell()
    x = jnp.swapaxes(xs, 0, 1) if spec.batch_first else xs  # [T, B, I]
    D = spec.num_directions
    finals = []
    for layer in range(spec.num_layers):
        outs = []
        for d, direction in enumerate(["forward", "backward"][:D]):
            carry = jax.tree.map(lambda s: s[layer * D + d], initial_state)
            final, ys = unroll(cell, params[layer][direction], x, lengths, carry, reverse=d == 1, time_major=True)
            outs.append(ys)
            finals.append(final)
        x = jnp.concatenate(outs, axis=-1)  # [T, B, D * H_out]
    state = jax.tree.map(lambda *s: jnp.stack(s), *finals)
    return (jnp.swapaxes(x, 0, 1) if spec.batch_first else x), state


_MANUAL = {}


@pytest.mark.parametrize("name", list(SPECS))
def test_spec_equals_manual_composition_of_unroll(name):
    spec, params, xs, apply = _setup(name)
    state0 = _random_state(spec, jax.random.key(2))
    out, state = apply(params, xs, LENGTHS, state0)
    if name not in _MANUAL:
        _MANUAL[name] = jax.jit(lambda p, x, l, s: manual_stack(name, p, x, l, s))
    want_out, want_state = _MANUAL[name](params, xs, LENGTHS, state0)
    assert_close(out, want_out, "exact")
    assert_close(state, want_state, "exact")
    # padded steps are zero in both directions' halves
    out_bm = np.asarray(out if spec.batch_first else jnp.swapaxes(out, 0, 1))
    assert np.all(out_bm[1, 2:] == 0.0) and np.all(np.abs(out_bm[1, :2]).sum(-1) > 0)


def test_output_shapes_bidirectional_multilayer_projection():
    spec, params, xs, apply = _setup("lstm_bi_proj")
    out, (h_n, c_n) = apply(params, xs)
    assert out.shape == (T, B, 2 * P)
    assert h_n.shape == (4, B, P) and c_n.shape == (4, B, H)
    assert [sorted(p) for p in params] == [["backward", "forward"]] * 2
    assert params[0]["forward"]["w_ih"].shape == (I, 4 * H)
    assert params[1]["backward"]["w_ih"].shape == (2 * P, 4 * H)  # layer 1 reads both directions
    assert params[1]["forward"]["w_hr"].shape == (H, P)
    # last time step of the forward half is h_n of the last layer's forward direction (no padding)
    assert_close(out[-1, :, :P], h_n[2], "exact")
    assert_close(out[0, :, P:], h_n[3], "exact")


def test_batch_first_layout():
    spec = LSTM(I, H, 2, bidirectional=True, proj_size=P, batch_first=True)
    _, params, xs, apply = _setup("lstm_bi_proj")
    out_bf, state_bf = jax.jit(spec.apply)(params, jnp.swapaxes(xs, 0, 1), LENGTHS)
    out, state = apply(params, xs, LENGTHS)
    assert out_bf.shape == (B, T, 2 * P)
    assert_close((jnp.swapaxes(out_bf, 0, 1), state_bf), (out, state), "exact")


def test_unbatched_input():
    spec, params, xs, apply = _setup("lstm_bi_proj")
    state0 = _random_state(spec, jax.random.key(3))
    out, state = apply(params, xs, LENGTHS, state0)
    out1, (h1, c1) = jax.jit(spec.apply)(params, xs[:, 1], LENGTHS[1], jax.tree.map(lambda s: s[:, 1], state0))
    assert out1.shape == (T, 2 * P) and h1.shape == (4, P) and c1.shape == (4, H)
    assert_close(out1, out[:, 1], "exact")
    assert_close((h1, c1), (state.h[:, 1], state.c[:, 1]), "exact")


def test_gru_cho_differs_from_pytorch_variant():
    spec, params, xs, apply = _setup("gru_cho")
    out_cho, _ = apply(params, xs)
    out_pt, _ = GRU(I, H, 2, bidirectional=True).apply(params, xs)
    assert out_cho.shape == out_pt.shape == (T, B, 2 * H)
    assert not np.allclose(out_cho, out_pt, atol=1e-4)


def test_peephole_layernorm_projection_params():
    spec, params, _, _ = _setup("lstm_peep_ln_proj")
    p = params[1]["backward"]
    assert {"w_ci", "w_cf", "w_co", "w_hr", "ln_ih_scale", "ln_c_scale"} <= set(p)
    assert "b_ih" not in p
    assert p["w_ih"].shape == (2 * P, 4 * H) and p["w_hh"].shape == (P, 4 * H)
    assert spec.output_size == P


# --------------------------------------------------------------------------- inter-layer dropout

_DROP = LSTM(I, H, 2, bidirectional=True, proj_size=P, dropout=0.5)
_DROP_APPLY = jax.jit(_DROP.apply, static_argnames=("deterministic",))


def test_inter_layer_dropout_equals_layers_run_by_hand():
    """Dropout sits between layers: the layers unrolled by hand with the documented key plan's mask.

    The stack splits its key into 3 per layer; layer l's directions take keys 3l and 3l+1 (no
    regulariser inside the layers here, so they go unused) and the mask after layer l takes key 3l+2.
    """
    _, params, xs, apply = _setup("lstm_bi_proj")
    with pytest.raises(ValueError, match="dropout_key"):
        _DROP.apply(params, xs, LENGTHS, deterministic=False)
    assert_close(_DROP_APPLY(params, xs, LENGTHS), apply(params, xs, LENGTHS), "exact")  # deterministic
    key = jax.random.key(1)
    out, state = _DROP_APPLY(params, xs, LENGTHS, dropout_key=key, deterministic=False)
    cell = cells.lstm(H, proj_size=P)
    k_between = jax.random.split(key, 6)[2]
    x, finals = xs, []
    for layer in range(2):
        directions = [unroll(cell, params[layer][d], x, LENGTHS, reverse=d == "backward", time_major=True)
                      for d in ("forward", "backward")]
        finals += [final for final, _ in directions]
        x = jnp.concatenate([ys for _, ys in directions], axis=-1)  # [T, B, 2P]
        if layer == 0:
            keep = np.asarray(jax.random.bernoulli(k_between, 0.5, x.shape), np.float32)
            x = x * keep / 0.5
    assert_close(out, x, "exact")
    assert_close(state, jax.tree.map(lambda *s: jnp.stack(s), *finals), "exact")
    assert np.all(np.asarray(out)[2:, 1] == 0.0)  # padding stays zero


def test_dropout_not_after_last_layer():
    spec = GRU(I, H, 1, dropout=0.5)
    params = spec.init(jax.random.key(0))
    xs = jnp.ones((T, B, I))
    noisy = spec.apply(params, xs, dropout_key=jax.random.key(1), deterministic=False)
    assert_close(noisy, spec.apply(params, xs), "exact")


# --------------------------------------------------------------------------- argument checks


def test_initial_state_shapes_are_checked():
    spec, params, xs, _ = _setup("lstm_bi_proj")
    good = _random_state(spec, jax.random.key(4))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(4, 2, 2\)"):
        spec.apply(params, xs, initial_state=(good.h[:2], good.c))
    with pytest.raises(ValueError, match=r"c_0 must have shape \(4, 2, 4\)"):
        spec.apply(params, xs, initial_state=(good.h, good.c[..., :2]))
    with pytest.raises(ValueError, match=r"\(h_0, c_0\)"):
        spec.apply(params, xs, initial_state=good.h)
    gru, gparams, gxs, _ = _setup("gru_cho")
    with pytest.raises(ValueError, match=r"h_0 must have shape \(4, 2, 4\)"):
        gru.apply(gparams, gxs, initial_state=jnp.zeros((2, B, H)))


def test_batch_first_confusion_is_reported():
    spec = RNN(I, H)  # batch_first=False: expects [T, B, I]
    params = spec.init(jax.random.key(0))
    batch_major = jnp.ones((B, T, I))  # a batch-first batch given to a time-major spec
    with pytest.raises(ValueError, match="batch_first"):
        spec.apply(params, batch_major, LENGTHS)
    spec_bf = RNN(I, H, batch_first=True)
    with pytest.raises(ValueError, match="batch_first"):
        spec_bf.apply(params, jnp.ones((T, B, I)), LENGTHS)


@pytest.mark.parametrize("call,exc,match", [
    (lambda p, x: LSTM(I, H, 2, proj_size=P).apply(p, x[..., :2]), ValueError, "input_size"),
    (lambda p, x: LSTM(I, H, 2, proj_size=P).apply(p, x[0, 0]), ValueError, "inputs must have shape"),
    (lambda p, x: LSTM(I, H, 3, bidirectional=True, proj_size=P).apply(p, x), ValueError, "params"),
    (lambda p, x: LSTM(I, H, 2, bidirectional=True, proj_size=P).apply(p, x, np.array([6, 1])), ValueError,
     "lengths"),
    (lambda p, x: LSTM(I, H, 2, bidirectional=True, proj_size=P).apply(p, x, np.array([1.0, 2.0])), TypeError,
     "lengths"),
    (lambda p, x: LSTM(I, H, 0), ValueError, "num_layers"),
    (lambda p, x: LSTM(I, 0), ValueError, "hidden_size"),
    (lambda p, x: LSTM(I, H, proj_size=H), ValueError, "proj_size"),
    (lambda p, x: GRU(I, H, dropout=1.0), ValueError, "dropout"),
    (lambda p, x: GRU(I, H, variant="keras"), ValueError, "variant"),
    (lambda p, x: RNN(I, H, nonlinearity="gelu"), ValueError, "nonlinearity"),
])
def test_bad_arguments(call, exc, match):
    _, params, xs, _ = _setup("lstm_bi_proj")
    with pytest.raises(exc, match=match):
        call(params, xs)


# --------------------------------------------------------------------------- gradients


def test_grad_through_apply_with_lengths():
    spec = GRU(2, 2, 2, bidirectional=True)
    params = spec.init(jax.random.key(5))
    xs = jax.random.normal(jax.random.key(6), (3, 2, 2))  # [T, B, I]
    lengths = np.array([3, 1], np.int32)

    def loss(params, xs):
        out, h_n = spec.apply(params, xs, lengths)
        return jnp.sum(jnp.sin(out)) + jnp.sum(h_n ** 2)

    g_params, g_xs = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, xs)
    assert jax.tree.structure(g_params) == jax.tree.structure(params)
    g_xs = np.asarray(g_xs)
    assert np.all(g_xs[1:, 1] == 0.0)  # padding gets no gradient
    assert np.all(np.abs(g_xs[:, 0]).sum(-1) > 0) and np.abs(g_xs[0, 1]).sum() > 0
    assert all(np.abs(np.asarray(g)).sum() > 0 for g in jax.tree.leaves(g_params))
    with jax.enable_x64(True):
        spec64 = GRU(2, 2, 2, bidirectional=True, param_dtype=jnp.float64)
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x64 = jnp.asarray(xs, jnp.float64)

        @jax.jit
        def loss64(params, xs):
            out, h_n = spec64.apply(params, xs, lengths)
            return jnp.sum(jnp.sin(out)) + jnp.sum(h_n ** 2)

        jax.test_util.check_grads(loss64, (p64, x64), order=1, modes=("rev",), atol=1e-5, rtol=1e-5, eps=1e-6)


# --------------------------------------------------------------------------- the generic Stack


def test_stack_of_a_named_cell_is_the_specialised_spec():
    """Stack(cell_factory='lstm', options) computes exactly what LSTM(...) does, with the same params."""
    spec, params, xs, apply = _setup("lstm_peep_ln_proj")
    stack = Stack(I, H, 2, cell_factory="lstm", bidirectional=True,
                  cell_options={"proj_size": P, "peephole": True, "layer_norm": True})
    assert stack.cell().describe() == spec.cell().describe()
    assert jax.tree.structure(stack.init(jax.random.key(0))) == jax.tree.structure(params)
    assert_close(jax.jit(stack.apply)(params, xs, LENGTHS), apply(params, xs, LENGTHS), "exact")
    assert isinstance(spec, Stack) and spec.cell_options == stack.cell_options


def test_stack_takes_a_factory_and_equal_specs_hash_alike():
    factory = functools.partial(cells.gru, variant="cho")
    stack = Stack(I, H, 2, cell_factory=factory, bidirectional=True)
    spec, params, xs, apply = _setup("gru_cho")
    assert_close(stack.apply(params, xs), apply(params, xs), "exact")
    a = Stack(I, H, cell_factory="gru", cell_options={"variant": "cho"}, dtype="bfloat16")
    b = Stack(I, H, cell_factory="gru", cell_options=(("variant", "cho"),), dtype=jnp.bfloat16)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(ValueError, match="cell must be one of"):
        Stack(I, H, cell_factory="peephole")
    with pytest.raises(ValueError, match=r"\['dtype'\] are set by the stack"):
        Stack(I, H, cell_options={"dtype": jnp.float32})


@pytest.mark.parametrize("kind", ["min_gru", "min_lstm"])
def test_parallel_cells_run_by_their_scan_unless_a_step_regulariser_needs_the_loop(kind):
    """A cell with a parallel form runs by it in the stack (no lax.scan in the jaxpr) and equals `unroll`."""
    stack = Stack(I, H, 2, cell_factory=kind, bidirectional=True, batch_first=True)
    params = stack.init(jax.random.key(3))
    xs = jax.random.normal(jax.random.key(4), (B, T, I))
    assert stack.runs_parallel
    assert "scan[" not in str(jax.make_jaxpr(lambda p: stack.apply(p, xs, LENGTHS))(params))
    sequential = dataclasses.replace(stack, zoneout=0.1)
    assert not sequential.runs_parallel
    assert "scan[" in str(jax.make_jaxpr(lambda p: sequential.apply(p, xs, LENGTHS))(params))
    cell = stack.cell()
    want = dataclasses.replace(stack, cell_factory=lambda h, **kw: cell._replace(parallel=None))
    assert not want.runs_parallel
    assert_close(stack.apply(params, xs, LENGTHS), want.apply(params, xs, LENGTHS))
