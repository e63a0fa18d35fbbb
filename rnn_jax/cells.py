"""Recurrent cells as pure functions over plain pytrees.

A cell is built by a factory (`elman`, `lstm`, `gru`; `rnn_jax.minimal` adds `min_gru`, `min_lstm`) and is
a `Cell` NamedTuple of four pure functions whose hyperparameters live in the closure:

* ``init(key, input_size) -> params``
* ``initial_carry(batch_shape, dtype=None) -> carry`` (zeros)
* ``project_inputs(params, xs) -> projected``: the input-to-hidden matmul of every time step at once,
  ``xs [..., input_size] -> [..., gates * hidden_size]``, so it can leave the time loop.
* ``step(params, carry, projected_t) -> (carry, y_t)``: the recurrent part of one step, all gates in one
  fused matmul; the argument order of a ``lax.scan`` body.

A cell describes itself: ``kind`` names its equations (``'elman'``, ``'lstm'``, ``'gru'``, ...) and
``options`` is a hashable record of every option it was built with (`freeze_options`: sorted
``(name, value)`` pairs, e.g. ``(('bias', True), ..., ('peephole', False), ('proj_size', 0))``), so code
that could compute the same function another way (a platform kernel) can decide exactly whether it does:
``cell.kind == 'lstm' and dict(cell.options) == {...}``. Wrappers (`rnn_jax.wrappers`) add their own
entries. ``factory(hidden_size, **dict(cell.options))`` rebuilds an unwrapped cell.

Equations are PyTorch's (``torch.nn.RNNCell``, ``LSTMCell``, ``GRUCell``):

* Elman: ``h' = act(x W_ih + b_ih + h W_hh + b_hh)``, act in {tanh, relu}.
* LSTM, gate order **i, f, g, o**:
  ``i,f,o = sigmoid(.)``, ``g = tanh(.)``, ``c' = f*c + i*g``, ``h' = o*tanh(c')``; with ``proj_size=P``
  the output is ``h' = (o*tanh(c')) W_hr`` (PyTorch's ``weight_hr``), so ``h`` has size P and ``c`` size H.
  ``peephole=True`` adds Graves (2013) eq. 7-11 diagonal peepholes: ``w_ci*c`` into i and ``w_cf*c``
  into f (previous cell state), ``w_co*c'`` into o (new cell state).
  ``layer_norm=True`` is Ba et al. (2016) eq. 20-22: the 4H pre-activations are
  ``LN(h W_hh) + LN(x W_ih)`` and the output is ``o*tanh(LN(c'))``; each LN has its own gain and offset
  (the offsets play the role of the biases, so ``b_ih``/``b_hh`` are not used).
* GRU, gate order **r, z, n**: ``r,z = sigmoid(x W_i{r,z} + b_i{r,z} + h W_h{r,z} + b_h{r,z})``,
  ``n = tanh(x W_in + b_in + r*(h W_hn + b_hn))``, ``h' = (1-z)*n + z*h`` (reset after the hidden matmul,
  PyTorch/cuDNN). ``variant='cho'`` is Cho et al. (2014): ``n = tanh(x W_in + b_in + (r*h) W_hn + b_hn)``.

Weight layout: matrices are stored ``[in_features, out_features]`` (``x @ W``), i.e. the transpose of
PyTorch's ``weight_ih_l0``; gates are concatenated on the last axis in the order above. Carries are named:
``LSTMState(h, c)`` (h first, as PyTorch returns ``(h_n, c_n)``; note Flax uses ``(c, h)``), a bare array
``h`` for Elman and GRU. `carry_h` reads ``h`` out of any carry and `replace_h` replaces it.

A per-step input that depends on the previous state (an attention context ``attend(h_{t-1}, memory)``)
cannot be hoisted by ``project_inputs``: `rnn_jax.wrappers.feed_inputs` wraps a cell so that its step
computes that input from the carry and adds its projection (documented there).

Precision (`rnn_jax.precision`): ``param_dtype`` is the dtype parameters are created in; ``dtype`` is the
compute dtype of the matmuls (``None``: that of the parameters, `Cell.compute_dtype`). Matmuls accumulate
and the nonlinearities and carries run in ``promote(dtype, float32)``, so with ``dtype=bfloat16`` the state
stays in float32 and the scan carry never changes dtype; step outputs ``y_t`` are in the compute dtype.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.checks import check_choice, check_size
from rnn_jax.precision import acc_dtype, bcast, compute_dtype, matmul

Array = jax.Array
Params = dict

INITIALIZERS = ("pytorch", "jax")
GRU_VARIANTS = ("pytorch", "cho")


class LSTMState(NamedTuple):
    """LSTM carry: ``h [..., output_size]`` (P with projection, else H) and ``c [..., hidden_size]``."""

    h: Array
    c: Array


class Cell(NamedTuple):
    """A recurrent cell: pure functions plus the sizes and the record needed to wire it.

    Attributes:
      init: ``(key, input_size) -> params``.
      initial_carry: ``(batch_shape, dtype=None) -> carry`` of zeros.
      project_inputs: ``(params, xs [..., input_size]) -> [..., num_gates * hidden_size]``.
      step: ``(params, carry, projected_t [..., G*H]) -> (carry, y_t [..., output_size])``.
      kind: the equations: ``'elman'``, ``'lstm'``, ``'gru'``, ``'min_gru'``, ``'min_lstm'``.
      hidden_size: H.
      output_size: size of ``y_t`` (P for a projected LSTM, else H; wrappers may add to it).
      num_gates: G (1, 4 or 3; 2 or 3 for the minimal cells).
      dtype: compute dtype (None: the parameters').
      tail: optional ``(params, carry, projected_t, zh_t) -> (carry, y_t)``, the step after its one
        recurrent matmul ``zh_t = h @ w_hh`` (accumulation dtype); ``step`` is then exactly
        ``tail(params, carry, projected_t, h @ w_hh)``. Cells that have it get `rnn_jax.unroll`'s fused
        backward pass (weight gradients as one matmul after the loop); None for cells whose recurrence
        needs more than one matmul on the carry (the Cho GRU) or whose step does more (wrappers).
      options: the hashable record of the cell's options (`freeze_options`), wrappers' entries included.
      parallel: optional ``(params, xs, lengths=None, carry=None, reverse=False, time_major=False, *,
        mask=None) -> (final_carry, outputs)`` with `rnn_jax.unroll`'s results by a parallel scan (the
        minimal cells); stacks use it in place of ``unroll``.
      feed_size: F, the rows of ``w_ih`` the step feeds itself (`rnn_jax.wrappers.feed_inputs`); 0 otherwise.
      affine_inputs: whether ``project_inputs`` is ``xs @ w_ih + constant`` (False for the layer-norm LSTM).
    """

    init: Callable[..., Params]
    initial_carry: Callable[..., Any]
    project_inputs: Callable[[Params, Array], Array]
    step: Callable[[Params, Any, Array], tuple[Any, Array]]
    kind: str
    hidden_size: int
    output_size: int
    num_gates: int
    dtype: Any = None
    tail: Callable[..., tuple[Any, Array]] | None = None
    options: tuple = ()
    parallel: Callable[..., tuple[Any, Array]] | None = None
    feed_size: int = 0
    affine_inputs: bool = True

    def compute_dtype(self, params):
        """Returns the dtype the cell's matmuls run in with `params`: ``dtype``, else the parameters'."""
        return compute_dtype(self.dtype, params)

    def input_size(self, params) -> int:
        """Returns I, the size of the inputs ``xs [..., I]`` that `params` take (``w_ih`` rows less fed ones)."""
        return params["w_ih"].shape[0] - self.feed_size

    def describe(self) -> tuple:
        """Returns ``(kind, hidden_size, options)``: equal for cells that compute the same function."""
        return self.kind, self.hidden_size, self.options


# --------------------------------------------------------------------------- carries and records


def carry_h(carry) -> Array:
    """Returns ``h [..., output_size]`` of any cell's carry (an `LSTMState`'s h, or the bare array)."""
    return carry.h if isinstance(carry, LSTMState) else carry


def replace_h(carry, h: Array):
    """Returns `carry` with its h replaced by ``h`` (the other leaves, e.g. an LSTM's c, kept)."""
    return carry._replace(h=h) if isinstance(carry, LSTMState) else h


def freeze_options(options=(), **more) -> tuple:
    """Returns cell options as a sorted tuple of ``(name, value)`` pairs: hashable, equal for equal options.

    Args:
      options: a mapping (dict, FrozenDict, ml_collections ConfigDict) or ``(name, value)`` pairs.
      more: further options, overriding those in `options`.

    Entries named ``*dtype`` become a canonical ``jnp.dtype`` (or stay None), so ``jnp.float32`` and
    ``'float32'`` record alike.
    """
    items = dict(options.items() if hasattr(options, "items") else options)
    items.update(more)
    for name, value in items.items():
        if name.endswith("dtype") and value is not None:
            items[name] = jnp.dtype(value)
    record = tuple(sorted(items.items()))
    try:
        hash(record)
    except TypeError:
        raise ValueError(f"cell options must be hashable values, got {record}") from None
    return record


# --------------------------------------------------------------------------- helpers


def _layer_norm(x: Array, scale: Array, offset: Array | None, eps: float = 1e-5) -> Array:
    """Layer norm over the last axis of `x` (in x's dtype), with gain `scale` and optional `offset`."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + eps) * bcast(scale, x)
    return y if offset is None else y + bcast(offset, x)


def _gate_activations(z: Array, scales: tuple[float, ...]) -> Array:
    """Returns the gates' activations of ``z [..., G*H]``: sigmoid where a gate's scale is 0.5, tanh where 1.

    Uses sigmoid(x) = 0.5 * tanh(x / 2) + 0.5, so every gate is ``tanh(z * s) * s + b`` with s = 0.5,
    b = 0.5 for sigmoid gates and s = 1, b = 0 for tanh gates, applied to the whole vector at once.
    XLA:CPU vectorises one transcendental over the contiguous ``[B, G*H]`` block but not per-gate slices
    of it: on an LSTM step at B=32, H=256 the elementwise part ran 4-5x faster (BUILD_NOTES.md, issue 3).
    """
    G = len(scales)
    H = z.shape[-1] // G
    s = np.repeat(np.asarray(scales, np.float32), H)  # [G*H]
    b = np.where(s == 0.5, 0.5, 0.0).astype(np.float32)
    s = bcast(jnp.asarray(s), z)
    return jnp.tanh(z * s) * s + bcast(jnp.asarray(b), z)


def _uniform(key, shape, bound, dtype):
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _make_weights(key, input_size, hidden_size, rec_size, num_gates, *, bias, initializer, param_dtype,
                  forget_gate=None):
    """Returns ``w_ih [I, G*H]``, ``w_hh [R, G*H]`` and, with bias, ``b_ih``, ``b_hh [G*H]``."""
    gh = num_gates * hidden_size
    k_ih, k_hh, k_bi, k_bh = jax.random.split(key, 4)
    if initializer == "pytorch":
        bound = 1.0 / math.sqrt(hidden_size)
        params = {
            "w_ih": _uniform(k_ih, (input_size, gh), bound, param_dtype),
            "w_hh": _uniform(k_hh, (rec_size, gh), bound, param_dtype),
        }
        if bias:
            params["b_ih"] = _uniform(k_bi, (gh,), bound, param_dtype)
            params["b_hh"] = _uniform(k_bh, (gh,), bound, param_dtype)
        return params
    # "jax": Glorot-uniform input weights, an orthogonal block per gate for the recurrent weights,
    # zero biases except a forget-gate bias of 1 (Jozefowicz et al. 2015).
    w_ih = jax.nn.initializers.glorot_uniform()(k_ih, (input_size, gh), param_dtype)
    ortho = jax.nn.initializers.orthogonal()
    w_hh = jnp.concatenate(
        [ortho(k, (rec_size, hidden_size), param_dtype) for k in jax.random.split(k_hh, num_gates)], axis=1)
    params = {"w_ih": w_ih, "w_hh": w_hh}
    if bias:
        b_ih = jnp.zeros((gh,), param_dtype)
        if forget_gate is not None:
            b_ih = b_ih.at[forget_gate * hidden_size:(forget_gate + 1) * hidden_size].set(1.0)
        params["b_ih"] = b_ih
        params["b_hh"] = jnp.zeros((gh,), param_dtype)
    return params


def _project(params, xs, dtype, bias_vector):
    """Returns ``xs @ w_ih`` in the compute dtype, plus ``bias_vector(params) [G*H]`` unless it is None."""
    z = matmul(xs, params["w_ih"], compute_dtype(dtype, params))  # [..., G*H]
    return z if bias_vector is None else z + bcast(bias_vector(params), z)


def _summed_biases(params):
    return params["b_ih"] + params["b_hh"]


def _step_from_tail(tail, dtype):
    """Returns ``step(params, carry, proj_t)``: the recurrent matmul on the carry's h, then `tail`."""

    def step(params, carry, proj_t):
        h = carry_h(carry)
        return tail(params, carry, proj_t, matmul(h, params["w_hh"], compute_dtype(dtype, params)).astype(h.dtype))

    return step


def _zeros_carry(batch_shape, size, dtype):
    return jnp.zeros(tuple(batch_shape) + (size,), dtype)


def _carry_dtype(carry_dtype, dtype, param_dtype):
    return carry_dtype or acc_dtype(dtype or param_dtype)


# --------------------------------------------------------------------------- Elman


def elman(hidden_size: int, *, nonlinearity: str = "tanh", bias: bool = True, initializer: str = "pytorch",
          dtype=None, param_dtype=jnp.float32) -> Cell:
    """Returns an Elman RNN cell, ``h' = act(x W_ih + b_ih + h W_hh + b_hh)``; carry ``h [..., H]``.

    Args:
      hidden_size: H.
      nonlinearity: ``'tanh'`` or ``'relu'``.
      bias: whether ``b_ih`` and ``b_hh`` exist.
      initializer: ``'pytorch'`` (uniform +-1/sqrt(H)) or ``'jax'`` (Glorot input, orthogonal recurrent).
      dtype: compute dtype of the matmuls (None: the parameters').
      param_dtype: dtype of the parameters.
    """
    check_size("hidden_size", hidden_size)
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
    check_choice("initializer", initializer, INITIALIZERS)
    options = freeze_options(nonlinearity=nonlinearity, bias=bias, initializer=initializer, dtype=dtype,
                             param_dtype=param_dtype)
    act = jnp.tanh if nonlinearity == "tanh" else jax.nn.relu

    def init(key, input_size: int) -> Params:
        check_size("input_size", input_size)
        return _make_weights(key, input_size, hidden_size, hidden_size, 1, bias=bias, initializer=initializer,
                             param_dtype=param_dtype)

    def initial_carry(batch_shape=(), carry_dtype=None):
        return _zeros_carry(batch_shape, hidden_size, _carry_dtype(carry_dtype, dtype, param_dtype))

    def project_inputs(params, xs):
        return _project(params, xs, dtype, _summed_biases if bias else None)  # [..., H]

    def tail(params, h, proj_t, zh):
        h_new = act(proj_t.astype(h.dtype) + zh)
        return h_new, h_new.astype(compute_dtype(dtype, params))

    return Cell(init, initial_carry, project_inputs, _step_from_tail(tail, dtype), "elman", hidden_size,
                hidden_size, 1, dtype, tail, options)


# --------------------------------------------------------------------------- LSTM


def _lstm_extras(key, H, proj_size, peephole, layer_norm, bias, initializer, param_dtype) -> Params:
    """Returns the LSTM's optional parameters: ``w_hr [H, P]``, peepholes ``w_c* [H]``, LN gains/offsets."""
    k_p, k_r = key
    params = {}
    bound = 1.0 / math.sqrt(H)
    if proj_size:
        if initializer == "pytorch":
            params["w_hr"] = _uniform(k_r, (H, proj_size), bound, param_dtype)
        else:
            params["w_hr"] = jax.nn.initializers.glorot_uniform()(k_r, (H, proj_size), param_dtype)
    if peephole:
        for name, k in zip(("w_ci", "w_cf", "w_co"), jax.random.split(k_p, 3)):
            params[name] = (_uniform(k, (H,), bound, param_dtype) if initializer == "pytorch"
                            else jnp.zeros((H,), param_dtype))
    if layer_norm:
        params["ln_ih_scale"] = jnp.ones((4 * H,), param_dtype)
        params["ln_hh_scale"] = jnp.ones((4 * H,), param_dtype)
        params["ln_c_scale"] = jnp.ones((H,), param_dtype)
        if bias:
            params["ln_ih_bias"] = jnp.zeros((4 * H,), param_dtype).at[H:2 * H].set(
                1.0 if initializer == "jax" else 0.0)
            params["ln_hh_bias"] = jnp.zeros((4 * H,), param_dtype)
            params["ln_c_bias"] = jnp.zeros((H,), param_dtype)
    return params


def _lstm_cell_update(params, c: Array, z: Array, peephole: bool) -> tuple[Array, Array]:
    """Returns ``(c' [..., H], o [..., H])`` from ``c [..., H]`` and the pre-activations ``z [..., 4H]``."""
    if not peephole:
        i, f, g, o = jnp.split(_gate_activations(z, (0.5, 0.5, 1.0, 0.5)), 4, axis=-1)  # 4 x [..., H]
        return f * c + i * g, o
    # i, f see c_{t-1}; o sees c_t, so o is activated after the cell update (per gate: no block activation)
    zi, zf, zg, zo = jnp.split(z, 4, axis=-1)  # 4 x [..., H]
    zi = zi + bcast(params["w_ci"], c) * c
    zf = zf + bcast(params["w_cf"], c) * c
    c_new = jax.nn.sigmoid(zf) * c + jax.nn.sigmoid(zi) * jnp.tanh(zg)
    return c_new, jax.nn.sigmoid(zo + bcast(params["w_co"], c_new) * c_new)


def _lstm_output(params, c_new: Array, o: Array, *, layer_norm: bool, proj_size: int, cdt) -> Array:
    """Returns ``h' = o * tanh(c')`` (``LN(c')`` with layer norm), projected to ``[..., P]`` with proj_size."""
    c_out = _layer_norm(c_new, params["ln_c_scale"], params.get("ln_c_bias")) if layer_norm else c_new
    h_new = o * jnp.tanh(c_out)  # [..., H]
    if proj_size:
        h_new = matmul(h_new, params["w_hr"], cdt).astype(c_new.dtype)  # [..., P]
    return h_new


def lstm(hidden_size: int, *, proj_size: int = 0, peephole: bool = False, layer_norm: bool = False,
         bias: bool = True, initializer: str = "pytorch", dtype=None, param_dtype=jnp.float32) -> Cell:
    """Returns an LSTM cell (PyTorch's equations, gate order i,f,g,o); carry ``LSTMState(h, c)``.

    Args:
      hidden_size: H, the size of ``c``.
      proj_size: P > 0 adds PyTorch's output projection ``w_hr [H, P]``; ``h`` then has size P.
      peephole: Graves (2013) diagonal peepholes ``w_ci``, ``w_cf``, ``w_co [H]``.
      layer_norm: Ba et al. (2016) layer-normalised LSTM (gains and offsets replace the biases).
      bias: biases (``b_ih``, ``b_hh``; with layer_norm, the LN offsets).
      initializer: ``'pytorch'`` or ``'jax'`` (Glorot input, orthogonal recurrent, forget bias 1).
      dtype: compute dtype of the matmuls (None: the parameters').
      param_dtype: dtype of the parameters.
    """
    check_size("hidden_size", hidden_size)
    check_size("proj_size", proj_size, 0)
    check_choice("initializer", initializer, INITIALIZERS)
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}")
    options = freeze_options(proj_size=proj_size, peephole=peephole, layer_norm=layer_norm, bias=bias,
                             initializer=initializer, dtype=dtype, param_dtype=param_dtype)
    H, out_size = hidden_size, proj_size or hidden_size

    def init(key, input_size: int) -> Params:
        check_size("input_size", input_size)
        k_w, k_p, k_r = jax.random.split(key, 3)
        params = _make_weights(k_w, input_size, H, out_size, 4, bias=bias and not layer_norm,
                               initializer=initializer, param_dtype=param_dtype, forget_gate=1)
        return {**params, **_lstm_extras((k_p, k_r), H, proj_size, peephole, layer_norm, bias, initializer,
                                         param_dtype)}

    def initial_carry(batch_shape=(), carry_dtype=None):
        dt = _carry_dtype(carry_dtype, dtype, param_dtype)
        return LSTMState(_zeros_carry(batch_shape, out_size, dt), _zeros_carry(batch_shape, H, dt))

    def project_inputs(params, xs):
        if layer_norm:  # the input LN acts on x W_ih alone, so it stays hoisted
            return _layer_norm(_project(params, xs, dtype, None), params["ln_ih_scale"], params.get("ln_ih_bias"))
        return _project(params, xs, dtype, _summed_biases if bias else None)  # [..., 4H]

    def tail(params, carry: LSTMState, proj_t, zh):
        cdt = compute_dtype(dtype, params)
        if layer_norm:
            zh = _layer_norm(zh, params["ln_hh_scale"], params.get("ln_hh_bias"))
        c_new, o = _lstm_cell_update(params, carry.c, proj_t.astype(carry.c.dtype) + zh, peephole)  # z [..., 4H]
        h_new = _lstm_output(params, c_new, o, layer_norm=layer_norm, proj_size=proj_size, cdt=cdt)
        return LSTMState(h_new, c_new), h_new.astype(cdt)

    return Cell(init, initial_carry, project_inputs, _step_from_tail(tail, dtype), "lstm", H, out_size, 4, dtype,
                tail, options, affine_inputs=not layer_norm)


# --------------------------------------------------------------------------- GRU


def _gru_tail(params, h, proj_t, zh, *, H: int, bias: bool, cdt):
    """The PyTorch GRU after its recurrent matmul ``zh = h W_hh [..., 3H]``: returns ``(h', y)``."""
    proj_t = proj_t.astype(h.dtype)
    hn = zh[..., 2 * H:]  # [..., H]
    if bias:
        hn = hn + bcast(params["b_hh"][2 * H:], hn)
    r = jax.nn.sigmoid(proj_t[..., :H] + zh[..., :H])
    z = jax.nn.sigmoid(proj_t[..., H:2 * H] + zh[..., H:2 * H])
    n = jnp.tanh(proj_t[..., 2 * H:] + r * hn)
    h_new = (1.0 - z) * n + z * h
    return h_new, h_new.astype(cdt)


def _cho_step(params, h, proj_t, *, H: int, cdt):
    """The Cho GRU step, reset before the matmul: two dependent matmuls. Returns ``(h', y)``."""
    acc = h.dtype
    proj_t = proj_t.astype(acc)
    w_hh = params["w_hh"]
    zrz = matmul(h, w_hh[:, :2 * H], cdt).astype(acc)  # [..., 2H]
    r = jax.nn.sigmoid(proj_t[..., :H] + zrz[..., :H])
    z = jax.nn.sigmoid(proj_t[..., H:2 * H] + zrz[..., H:])
    n = jnp.tanh(proj_t[..., 2 * H:] + matmul(r * h, w_hh[:, 2 * H:], cdt).astype(acc))
    h_new = (1.0 - z) * n + z * h
    return h_new, h_new.astype(cdt)


def gru(hidden_size: int, *, variant: str = "pytorch", bias: bool = True, initializer: str = "pytorch",
        dtype=None, param_dtype=jnp.float32) -> Cell:
    """Returns a GRU cell (gate order r,z,n); carry ``h [..., H]``.

    Args:
      hidden_size: H.
      variant: ``'pytorch'`` (reset applied after the hidden matmul, as PyTorch and cuDNN) or ``'cho'``
        (Cho et al. 2014: reset applied to h before it).
      bias: whether ``b_ih`` and ``b_hh`` exist.
      initializer: ``'pytorch'`` or ``'jax'``.
      dtype: compute dtype of the matmuls (None: the parameters').
      param_dtype: dtype of the parameters.
    """
    check_size("hidden_size", hidden_size)
    check_choice("variant", variant, GRU_VARIANTS)
    check_choice("initializer", initializer, INITIALIZERS)
    options = freeze_options(variant=variant, bias=bias, initializer=initializer, dtype=dtype,
                             param_dtype=param_dtype)
    H = hidden_size

    def init(key, input_size: int) -> Params:
        check_size("input_size", input_size)
        return _make_weights(key, input_size, H, H, 3, bias=bias, initializer=initializer, param_dtype=param_dtype)

    def initial_carry(batch_shape=(), carry_dtype=None):
        return _zeros_carry(batch_shape, H, _carry_dtype(carry_dtype, dtype, param_dtype))

    def input_biases(params):
        b_hh = jnp.asarray(params["b_hh"])
        if variant == "pytorch":  # b_hn stays inside r * (h W_hn + b_hn)
            b_hh = b_hh.at[2 * H:].set(0)
        return params["b_ih"] + b_hh

    def project_inputs(params, xs):
        return _project(params, xs, dtype, input_biases if bias else None)  # [..., 3H]

    def tail(params, h, proj_t, zh):
        return _gru_tail(params, h, proj_t, zh, H=H, bias=bias, cdt=compute_dtype(dtype, params))

    def cho_step(params, h, proj_t):
        return _cho_step(params, h, proj_t, H=H, cdt=compute_dtype(dtype, params))

    if variant == "pytorch":
        return Cell(init, initial_carry, project_inputs, _step_from_tail(tail, dtype), "gru", H, H, 3, dtype, tail,
                    options)
    return Cell(init, initial_carry, project_inputs, cho_step, "gru", H, H, 3, dtype, options=options)
