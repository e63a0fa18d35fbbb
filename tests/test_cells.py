"""Cells against hand-written NumPy (float64) references of their equations, gradients, initialisers, dtypes.

References are written from the papers/PyTorch docs, not from rnn_jax.cells: weights are ``[in, out]``
with gates concatenated on the last axis (i,f,g,o for LSTM, r,z,n for GRU).
"""

import functools
import math

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from rnn_jax import cells
from rnn_jax.cells import LSTMState
from tests.conftest import assert_close

I, H, P, B, T = 3, 4, 2, 2, 3


# --------------------------------------------------------------------------- NumPy references


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _ln(x, gain, offset, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gain + offset


def np_elman_step(p, h, x, nonlinearity):
    a = x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"]
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
    return h, h


def np_lstm_step(p, carry, x):
    """PyTorch LSTMCell (i,f,g,o), optional weight_hr projection."""
    h, c = carry
    z = x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"]
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    if "w_hr" in p:
        h = h @ p["w_hr"]
    return (h, c), h


def np_peephole_lstm_step(p, carry, x):
    """Graves (2013) eq. 7-11: peepholes on c_{t-1} for i and f, on c_t for o."""
    h, c_prev = carry
    W = {k: np.split(p[k], 4, axis=-1) for k in ("w_ih", "w_hh", "b_ih", "b_hh")}
    lin = [x @ W["w_ih"][k] + h @ W["w_hh"][k] + W["b_ih"][k] + W["b_hh"][k] for k in range(4)]
    i_t = _sigmoid(lin[0] + p["w_ci"] * c_prev)                 # eq. 7
    f_t = _sigmoid(lin[1] + p["w_cf"] * c_prev)                 # eq. 8
    c_t = f_t * c_prev + i_t * np.tanh(lin[2])                  # eq. 9
    o_t = _sigmoid(lin[3] + p["w_co"] * c_t)                    # eq. 10
    h_t = o_t * np.tanh(c_t)                                    # eq. 11
    return (h_t, c_t), h_t


def np_layernorm_lstm_step(p, carry, x):
    """Ba et al. (2016) eq. 20-22: LN of h W_hh and of x W_ih over all 4H, LN(c_t) before the output tanh."""
    h, c = carry
    z = _ln(h @ p["w_hh"], p["ln_hh_scale"], p["ln_hh_bias"]) + _ln(x @ p["w_ih"], p["ln_ih_scale"],
                                                                      p["ln_ih_bias"])
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(_ln(c, p["ln_c_scale"], p["ln_c_bias"]))
    return (h, c), h


def np_gru_step(p, h, x, variant):
    Wi, Wh = np.split(p["w_ih"], 3, axis=-1), np.split(p["w_hh"], 3, axis=-1)
    bi, bh = np.split(p["b_ih"], 3), np.split(p["b_hh"], 3)
    r = _sigmoid(x @ Wi[0] + bi[0] + h @ Wh[0] + bh[0])
    z = _sigmoid(x @ Wi[1] + bi[1] + h @ Wh[1] + bh[1])
    if variant == "pytorch":
        n = np.tanh(x @ Wi[2] + bi[2] + r * (h @ Wh[2] + bh[2]))
    else:  # Cho et al. 2014
        n = np.tanh(x @ Wi[2] + bi[2] + (r * h) @ Wh[2] + bh[2])
    h = (1.0 - z) * n + z * h
    return h, h


# --------------------------------------------------------------------------- configurations

CONFIGS = {
    "elman_tanh": (functools.partial(cells.elman, nonlinearity="tanh"),
                   functools.partial(np_elman_step, nonlinearity="tanh")),
    "elman_relu": (functools.partial(cells.elman, nonlinearity="relu"),
                   functools.partial(np_elman_step, nonlinearity="relu")),
    "lstm": (cells.lstm, np_lstm_step),
    "lstm_proj": (functools.partial(cells.lstm, proj_size=P), np_lstm_step),
    "lstm_peephole": (functools.partial(cells.lstm, peephole=True), np_peephole_lstm_step),
    "lstm_layernorm": (functools.partial(cells.lstm, layer_norm=True), np_layernorm_lstm_step),
    "gru": (cells.gru, functools.partial(np_gru_step, variant="pytorch")),
    "gru_cho": (functools.partial(cells.gru, variant="cho"), functools.partial(np_gru_step, variant="cho")),
}

_CACHE = {}


def _setup(name):
    """Returns (cell, params, jitted step-after-projection, numpy reference step), cached per config."""
    if name not in _CACHE:
        factory, ref = CONFIGS[name]
        cell = factory(H)
        params = cell.init(jax.random.key(1), I)
        if name == "lstm_layernorm":
            # non-trivial gains and offsets so a reference that ignores them cannot pass
            ks = jax.random.split(jax.random.key(2), 6)
            for k, n in zip(ks, ("ln_ih_scale", "ln_hh_scale", "ln_c_scale", "ln_ih_bias", "ln_hh_bias",
                                 "ln_c_bias")):
                base = 1.0 if n.endswith("scale") else 0.0
                params[n] = base + 0.5 * jax.random.normal(k, params[n].shape)

        @jax.jit
        def step(params, carry, x):
            return cell.step(params, carry, cell.project_inputs(params, x))

        _CACHE[name] = (cell, params, step, ref)
    return _CACHE[name]


def _np(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _random_carry(cell, key, batch=(B,)):
    c0 = cell.initial_carry(batch)
    leaves, tree = jax.tree.flatten(c0)
    ks = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [0.8 * jax.random.normal(k, l.shape, l.dtype) for k, l in zip(ks, leaves)])


def _to_ref_carry(carry):
    return tuple(_np(carry)) if isinstance(carry, LSTMState) else _np(carry)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_step_matches_numpy_reference(name):
    cell, params, step, ref = _setup(name)
    carry = _random_carry(cell, jax.random.key(3))
    x = jax.random.normal(jax.random.key(4), (B, I))
    new, y = step(params, carry, x)
    ref_new, ref_y = ref(_np(params), _to_ref_carry(carry), np.asarray(x, np.float64))
    assert_close(y, ref_y, "forward")
    assert_close(tuple(new) if isinstance(new, LSTMState) else new, ref_new, "forward")
    assert y.shape == (B, cell.output_size)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_several_steps_match_numpy_reference(name):
    cell, params, step, ref = _setup(name)
    carry = cell.initial_carry((B,))
    ref_carry = _to_ref_carry(carry)
    xs = jax.random.normal(jax.random.key(5), (T, B, I))
    np_params = _np(params)
    for t in range(T):
        carry, y = step(params, carry, xs[t])
        ref_carry, ref_y = ref(np_params, ref_carry, np.asarray(xs[t], np.float64))
        assert_close(y, ref_y, "forward", err_msg=f"step {t}")
    assert_close(tuple(carry) if isinstance(carry, LSTMState) else carry, ref_carry, "forward")


def test_variants_are_distinguished():
    """The references (and cells) of look-alike variants really differ, so the tests above can fail."""
    _, params, step, _ = _setup("gru")
    _, _, step_cho, _ = _setup("gru_cho")
    h = jnp.full((B, H), 0.7)
    x = jnp.ones((B, I))
    assert not np.allclose(step(params, h, x)[1], step_cho(params, h, x)[1], atol=1e-4)
    cell, params, step, _ = _setup("lstm_peephole")
    carry = _random_carry(cell, jax.random.key(6))
    y_peep = np_peephole_lstm_step(_np(params), _to_ref_carry(carry), np.ones((B, I)))[1]
    y_plain = np_lstm_step(_np(params), _to_ref_carry(carry), np.ones((B, I)))[1]
    assert not np.allclose(y_peep, y_plain, atol=1e-4)
    assert_close(step(params, carry, jnp.ones((B, I)))[1], y_peep)


def test_project_inputs_hoists_over_leading_axes():
    """project_inputs on [T, B, I] equals projecting each step alone (it is only the input matmul)."""
    cell, params, _, _ = _setup("lstm_peephole")
    xs = jax.random.normal(jax.random.key(7), (T, B, I))
    proj = cell.project_inputs(params, xs)
    assert proj.shape == (T, B, 4 * H)
    assert_close(proj[1], cell.project_inputs(params, xs[1]), "exact")
    p = _np(params)
    assert_close(proj, np.asarray(xs, np.float64) @ p["w_ih"] + p["b_ih"] + p["b_hh"], "forward")


def test_layernorm_lstm_has_no_biases():
    cell, params, _, _ = _setup("lstm_layernorm")
    assert "b_ih" not in params and "b_hh" not in params
    assert params["ln_ih_scale"].shape == (4 * H,) and params["ln_c_scale"].shape == (H,)


def test_unbatched_carry_step():
    """A carry with batch shape () works and equals row 0 of a batched step."""
    cell, params, step, _ = _setup("lstm_proj")
    carry = _random_carry(cell, jax.random.key(8))
    x = jax.random.normal(jax.random.key(9), (B, I))
    new_b, y_b = step(params, carry, x)
    new_1, y_1 = cell.step(params, jax.tree.map(lambda c: c[0], carry), cell.project_inputs(params, x[0]))
    assert y_1.shape == (P,) and new_1.c.shape == (H,)
    assert_close(y_1, y_b[0], "exact")
    assert_close(new_1, jax.tree.map(lambda c: c[0], new_b), "exact")


# --------------------------------------------------------------------------- gradients

GRAD_CASES = [
    ("elman_tanh", 2, ("rev",)), ("elman_relu", 1, ("fwd", "rev")), ("lstm", 1, ("fwd", "rev")),
    ("lstm_proj", 1, ("fwd", "rev")), ("lstm_peephole", 2, ("rev",)), ("lstm_layernorm", 2, ("rev",)),
    ("gru", 1, ("fwd", "rev")), ("gru_cho", 2, ("rev",)),
]


@pytest.mark.parametrize("name,order,modes", GRAD_CASES)
def test_check_grads(name, order, modes):
    """Autodiff of one step (w.r.t. params, carry and input) against finite differences, in float64."""
    factory, _ = CONFIGS[name]
    with jax.enable_x64(True):
        cell = factory(2, param_dtype=jnp.float64) if name != "lstm_proj" else cells.lstm(
            2, proj_size=1, param_dtype=jnp.float64)
        params = cell.init(jax.random.key(10), 2)
        params = jax.tree.map(lambda a: a + 0.1 * jnp.sign(a), params)  # away from the relu kink
        carry = jax.tree.map(lambda c: c + 0.3, cell.initial_carry((1,)))
        x = jnp.asarray([[0.5, -1.0]], jnp.float64)  # [B=1, I=2]
        assert jax.tree.leaves(carry)[0].dtype == jnp.float64

        def f(params, carry, x):
            # finite differences hand NumPy arrays in; NumPy params are tested on their own below
            params = jax.tree.map(jnp.asarray, params)
            carry, y = cell.step(params, carry, cell.project_inputs(params, x))
            return jnp.sum(jnp.sin(y)) + sum(jnp.sum(c * c) for c in jax.tree.leaves(carry))

        jax.test_util.check_grads(f, (params, carry, x), order=order, modes=modes, atol=1e-5, rtol=1e-5,
                                  eps=1e-6)


@pytest.mark.parametrize("name", ["elman_tanh", "lstm_peephole", "gru", "gru_cho"])
def test_numpy_params(name):
    """Params are plain pytrees: NumPy arrays (e.g. loaded from disk) work like jax arrays."""
    cell, params, step, _ = _setup(name)
    x = jnp.ones((B, I))
    carry = cell.initial_carry((B,))
    np_params = jax.tree.map(np.asarray, params)
    assert_close(step(np_params, carry, x), step(params, carry, x), "exact")
    assert_close(cell.project_inputs(np_params, np.ones((B, I), np.float32)), cell.project_inputs(params, x),
                 "exact")


# --------------------------------------------------------------------------- initialisers

H_INIT = 8


def _blocks(w, n):
    return np.split(np.asarray(w, np.float64), n, axis=-1)


@pytest.mark.parametrize("kind", ["elman", "lstm", "lstm_proj_peephole", "gru"])
def test_pytorch_initializer(kind):
    cell = {"elman": lambda: cells.elman(H_INIT),
            "lstm": lambda: cells.lstm(H_INIT),
            "lstm_proj_peephole": lambda: cells.lstm(H_INIT, proj_size=3, peephole=True),
            "gru": lambda: cells.gru(H_INIT)}[kind]()
    init = jax.jit(cell.init, static_argnums=1)
    params = init(jax.random.key(0), 5)
    G, R = cell.num_gates, cell.output_size
    expected = {"w_ih": (5, G * H_INIT), "w_hh": (R, G * H_INIT), "b_ih": (G * H_INIT,), "b_hh": (G * H_INIT,)}
    if kind == "lstm_proj_peephole":
        expected.update(w_hr=(H_INIT, 3), w_ci=(H_INIT,), w_cf=(H_INIT,), w_co=(H_INIT,))
    assert {k: tuple(v.shape) for k, v in params.items()} == expected
    bound = 1.0 / math.sqrt(H_INIT)
    for name, w in params.items():
        w = np.asarray(w)
        assert w.dtype == np.float32, name
        assert np.all(np.abs(w) <= bound), name
        if w.size >= 40:  # uniform on the full interval, not a narrower one
            assert np.abs(w).max() > 0.8 * bound, name
            assert len(np.unique(w)) == w.size, name
    # different keys, different weights; same key, same weights
    assert not np.allclose(params["w_hh"], init(jax.random.key(1), 5)["w_hh"])
    assert_close(params, init(jax.random.key(0), 5), "exact")


@pytest.mark.parametrize("kind", ["elman", "lstm", "lstm_proj", "gru", "lstm_layernorm"])
def test_jax_initializer(kind):
    cell = {"elman": lambda: cells.elman(H_INIT, initializer="jax"),
            "lstm": lambda: cells.lstm(H_INIT, initializer="jax", peephole=True),
            "lstm_proj": lambda: cells.lstm(H_INIT, proj_size=3, initializer="jax"),
            "gru": lambda: cells.gru(H_INIT, initializer="jax"),
            "lstm_layernorm": lambda: cells.lstm(H_INIT, layer_norm=True, initializer="jax")}[kind]()
    params = jax.jit(cell.init, static_argnums=1)(jax.random.key(0), 5)
    G, R = cell.num_gates, cell.output_size
    assert params["w_ih"].shape == (5, G * H_INIT) and params["w_hh"].shape == (R, G * H_INIT)
    for block in _blocks(params["w_hh"], G):  # [R, H] each, orthonormal rows/columns
        if R == H_INIT:
            assert_close(block.T @ block, np.eye(H_INIT), "forward")
        else:  # projected: R = P < H, orthonormal rows
            assert_close(block @ block.T, np.eye(R), "forward")
    if kind == "lstm_layernorm":
        assert "b_ih" not in params
        forget = np.zeros(4 * H_INIT)
        forget[H_INIT:2 * H_INIT] = 1.0
        assert_close(params["ln_ih_bias"], forget, "exact")
        assert_close(params["ln_hh_bias"], np.zeros(4 * H_INIT), "exact")
        return
    expected_b_ih = np.zeros(G * H_INIT)
    if cell.kind == "lstm":  # forget gate (second block) bias 1 (Jozefowicz et al. 2015)
        expected_b_ih[H_INIT:2 * H_INIT] = 1.0
    assert_close(params["b_ih"], expected_b_ih, "exact")
    assert_close(params["b_hh"], np.zeros(G * H_INIT), "exact")
    if kind == "lstm":
        for n in ("w_ci", "w_cf", "w_co"):
            assert params[n].shape == (H_INIT,)


def test_param_dtype():
    params = cells.gru(H, param_dtype=jnp.bfloat16).init(jax.random.key(0), I)
    assert all(p.dtype == jnp.bfloat16 for p in jax.tree.leaves(params))


# --------------------------------------------------------------------------- bfloat16 compute

_BF16 = {}


@pytest.mark.parametrize("name", ["elman_tanh", "lstm_proj", "lstm_peephole", "lstm_layernorm", "gru",
                                  "gru_cho"])
def test_bfloat16_compute(name):
    factory, _ = CONFIGS[name]
    cell32 = factory(H)
    cell16 = factory(H, dtype=jnp.bfloat16)
    params = cell32.init(jax.random.key(11), I)
    xs = jax.random.normal(jax.random.key(12), (T, B, I))

    def run(cell):
        carry = cell.initial_carry((B,))
        proj = cell.project_inputs(params, xs)
        ys = []
        for t in range(T):
            carry, y = cell.step(params, carry, proj[t])
            ys.append(y)
        return carry, jnp.stack(ys)

    carry16, ys16 = jax.jit(lambda: run(cell16))()
    carry32, ys32 = jax.jit(lambda: run(cell32))()
    for leaf in jax.tree.leaves(cell16.initial_carry((B,))) + jax.tree.leaves(carry16):
        assert leaf.dtype == jnp.float32
    assert ys16.dtype == jnp.bfloat16
    assert ys32.dtype == jnp.float32
    assert_close(ys16, ys32, "bf16")
    assert_close(carry16, carry32, "bf16")
    assert not np.array_equal(np.asarray(ys16, np.float32), np.asarray(ys32))  # it really computed in bf16


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize("make,match", [
    (lambda: cells.elman(0), "hidden_size"),
    (lambda: cells.lstm(0), "hidden_size"),
    (lambda: cells.gru(-1), "hidden_size"),
    (lambda: cells.gru(True), "hidden_size"),
    (lambda: cells.elman(2.0), "hidden_size"),
    (lambda: cells.lstm(4, proj_size=4), "proj_size"),
    (lambda: cells.lstm(4, proj_size=5), "proj_size"),
    (lambda: cells.lstm(4, proj_size=-1), "proj_size"),
    (lambda: cells.elman(4, nonlinearity="sigmoid"), "nonlinearity"),
    (lambda: cells.gru(4, variant="keras"), "variant"),
    (lambda: cells.lstm(4, initializer="xavier"), "initializer"),
    (lambda: cells.elman(4, initializer="glorot"), "initializer"),
    (lambda: cells.gru(4, initializer="torch"), "initializer"),
    (lambda: cells.lstm(4).init(jax.random.key(0), 0), "input_size"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --------------------------------------------------------------------------- records and carries


def test_cells_describe_their_equations_and_options():
    """The record a kernel would match on: kind plus every option, hashable, equal for equal cells only."""
    cell = cells.lstm(H, proj_size=P, peephole=True, dtype="bfloat16")
    assert cell.kind == "lstm"
    assert dict(cell.options) == dict(proj_size=P, peephole=True, layer_norm=False, bias=True,
                                      initializer="pytorch", dtype=jnp.bfloat16, param_dtype=jnp.float32)
    assert cell.describe() == cells.lstm(H, proj_size=P, peephole=True, dtype=jnp.bfloat16).describe()
    assert cell.describe() != cells.lstm(H, proj_size=P, dtype=jnp.bfloat16).describe()
    hash(cell.describe())
    rebuilt = cells.lstm(H, **dict(cell.options))  # the record rebuilds the cell
    assert rebuilt.describe() == cell.describe()
    assert dict(cells.gru(H, variant="cho").options)["variant"] == "cho"
    assert dict(cells.elman(H, nonlinearity="relu").options)["nonlinearity"] == "relu"
    assert cells.lstm(H, layer_norm=True).affine_inputs is False and cells.lstm(H).affine_inputs


def test_freeze_options_is_canonical_and_rejects_unhashable_values():
    a = cells.freeze_options({"b": 1, "dtype": "float32"}, a=True)
    assert a == (("a", True), ("b", 1), ("dtype", jnp.dtype("float32")))
    assert a == cells.freeze_options((("dtype", jnp.float32), ("b", 1), ("a", True)))
    assert cells.freeze_options({"dtype": None}) == (("dtype", None),)
    with pytest.raises(ValueError, match="hashable"):
        cells.freeze_options({"sizes": [1, 2]})


def test_carry_h_and_replace_h_for_every_carry():
    state = LSTMState(jnp.ones((B, P)), jnp.zeros((B, H)))
    assert cells.carry_h(state) is state.h
    new = cells.replace_h(state, 2 * state.h)
    assert isinstance(new, LSTMState) and new.c is state.c
    assert_close(new.h, 2 * np.ones((B, P)), "exact")
    h = jnp.ones((B, H))
    assert cells.carry_h(h) is h and cells.replace_h(h, 3 * h).shape == (B, H)


def test_compute_dtype_and_input_size():
    cell = cells.gru(H)
    params = cell.init(jax.random.key(0), I)
    assert cell.compute_dtype(params) == jnp.float32 and cell.input_size(params) == I
    assert cells.gru(H, dtype=jnp.bfloat16).compute_dtype(params) == jnp.bfloat16
