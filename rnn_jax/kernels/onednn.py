"""The oneDNN kernel: one recurrent layer (one direction or both) as one oneDNN RNN primitive call.

It computes the function `rnn_jax.unroll` computes (BUILD_NOTES.md's padding semantics included), to
float32 rounding, for the cells `cell_code` accepts: the Elman RNN (tanh, relu), the LSTM (with
``proj_size``) and the PyTorch GRU (oneDNN's linear-before-reset GRU), float32 parameters and compute.

* Parameters are converted once per call: our ``[in, G*H]`` matrices are already oneDNN's ``ldigo`` for
  one layer and direction (the LSTM's gate order i, f, g, o is oneDNN's); the GRU's r, z, n become
  oneDNN's u (= z), r, n; the biases are summed (``b_ih + b_hh``), except the GRU's ``b_hn``, which stays
  inside ``r * (h W_hn + b_hn)`` as oneDNN's fourth bias. The conversion is plain JAX, so gradients flow
  back through it.
* `layer_call` is the primitive under a `jax.custom_vjp`: forward inference when not differentiated;
  forward training (which fills oneDNN's workspace) and oneDNN's backward when it is.
* Fixed lengths: one call per layer; a bidirectional layer is one ``bidirectional_concat`` call.
* Variable lengths (the primitive has none): each direction runs left to right over its own input, the
  backward direction over each sequence reversed within its length (`rnn_jax.sequence.reverse_padded`),
  so every output at a valid step is exact (causal); the outputs are reversed back and zeroed at padded
  steps. Final h is the output at each sequence's last step (the initial h for length 0). The LSTM's
  final c is not among the outputs: it is recomputed from them, exactly, by the cell's own equations in
  parallel over time (the gates from ``x_t`` and ``h_{t-1}``, then the linear recurrence
  ``c_t = f_t c_{t-1} + i_t g_t``); jit drops that work when c is not used.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.kernels import onednn_library
from rnn_jax.kernels.partition import data_parallel
from rnn_jax.kernels.served import unserved_cell

Array = jax.Array
F32 = jnp.float32
ELMAN, ELMAN_RELU, LSTM, GRU = 0, 1, 2, 3
# every option of the cells the kernel serves, with the values it serves (None: any value)
_SERVED = {
    "elman": {"nonlinearity": ("tanh", "relu"), "bias": None, "initializer": None, "dtype": None,
              "param_dtype": None},
    "lstm": {"proj_size": None, "peephole": (False,), "layer_norm": (False,), "bias": None, "initializer": None,
             "dtype": None, "param_dtype": None},
    "gru": {"variant": ("pytorch",), "bias": None, "initializer": None, "dtype": None, "param_dtype": None},
}


def cell_code(cell) -> int | str:
    """Returns the kernel's code for `cell` (0-3, see onednn_rnn.cc), or why it does not serve it (a str)."""
    reason = unserved_cell(cell, _SERVED)
    if reason is not None:
        return reason
    if cell.kind == "lstm":
        return LSTM
    if cell.kind == "gru":
        return GRU
    return ELMAN_RELU if dict(cell.options)["nonlinearity"] == "relu" else ELMAN


def _gates_to_onednn(code: int, w: Array, H: int) -> Array:
    """Returns ``w [..., G*H]`` with its gates in oneDNN's order (the GRU's r, z, n -> z, r, n)."""
    if code != GRU:
        return w
    return jnp.concatenate([w[..., H:2 * H], w[..., :H], w[..., 2 * H:]], axis=-1)


def _bias(code: int, params: dict, H: int, G: int) -> Array:
    """Returns oneDNN's bias ``[Gb, H]`` (Gb = 4 for the GRU: z, r, n, and b_hn apart; else G)."""
    if "b_ih" not in params:
        return jnp.zeros((4 if code == GRU else G, H), F32)
    b_ih, b_hh = params["b_ih"].astype(F32), params["b_hh"].astype(F32)
    if code != GRU:
        return (b_ih + b_hh).reshape(G, H)
    b_zr = _gates_to_onednn(code, b_ih[:2 * H] + b_hh[:2 * H], H)  # r, z -> z, r
    return jnp.concatenate([b_zr, b_ih[2 * H:], b_hh[2 * H:]]).reshape(4, H)


def onednn_weights(cell, code: int, params_dirs: list) -> tuple:
    """Returns ``(w_layer [1,D,I,G,H], w_iter [1,D,H_out,G,H], bias [1,D,Gb,H], w_proj [1,D,H,P] or [0])``."""
    H, G = cell.hidden_size, cell.num_gates

    def one(p):
        wl = _gates_to_onednn(code, p["w_ih"].astype(F32), H)
        wi = _gates_to_onednn(code, p["w_hh"].astype(F32), H)
        return wl.reshape(wl.shape[0], G, H), wi.reshape(wi.shape[0], G, H), _bias(code, p, H, G)

    parts = [one(p) for p in params_dirs]
    wl, wi, b = (jnp.stack([part[k] for part in parts])[None] for k in range(3))
    if "w_hr" in params_dirs[0]:
        wp = jnp.stack([p["w_hr"].astype(F32) for p in params_dirs])[None]
    else:
        wp = jnp.zeros((0,), F32)
    return wl, wi, b, wp


# Below this many multiply-adds per step and direction a call runs on one OpenMP thread: on 2 cores a
# second thread's fork and join (a futex wake when XLA's threads each hold an OpenMP team) costs more
# than it saves there (measured: BUILD_NOTES.md, issue 14).
PARALLEL_MACS = 1_500_000


def call_threads(x, wl, wi) -> int:
    """Returns the OpenMP threads of one call over ``x [T, N, I]`` with weights ``wl [1, D, I, G, H]``,
    ``wi [1, D, H_out, G, H]``: 1 for a small step, 0 (OpenMP's default) otherwise."""
    (_, N, I), (*_, G, H), H_out = x.shape, wl.shape, wi.shape[2]
    return 1 if N * G * H * (I + H_out) < PARALLEL_MACS else 0


def _forward_call(code: int, direction: int, training: int, x, h0, c0, wl, wi, b, wp):
    """The forward FFI call: returns ``(y [T,N,D*H_out], hn, cn, workspace [N, row] bytes)``.

    The workspace is shaped by rows so that it splits with the batch (`rnn_jax.kernels.partition`): a row
    is what one sequence needs (oneDNN's figure for N = 1, which bounds its per-sequence bytes for any N;
    the handler checks the size it gets).
    """
    T, N, I = x.shape
    D, H_out, H = wl.shape[1], wi.shape[2], wl.shape[-1]
    row = onednn_library.workspace_bytes(code, direction, T, 1, I, H, H_out, wp.ndim == 4) if training else 0
    out = (jax.ShapeDtypeStruct((T, N, D * H_out), F32), jax.ShapeDtypeStruct(h0.shape, F32),
           jax.ShapeDtypeStruct(c0.shape, F32), jax.ShapeDtypeStruct((N, row), jnp.uint8))
    call = jax.ffi.ffi_call(onednn_library.TARGETS[0], out, vmap_method="sequential")
    return call(x, h0, c0, wl, wi, b, wp, cell=np.int32(code), direction=np.int32(direction),
                training=np.int32(training), threads=np.int32(call_threads(x, wl, wi)))


def _backward_call(code: int, direction: int, *arrays):
    """The backward FFI call over the residuals and the output gradients: returns the 7 input gradients."""
    out = tuple(jax.ShapeDtypeStruct(a.shape, F32) for a in arrays[:7])
    x, wl, wi = arrays[0], arrays[3], arrays[4]
    call = jax.ffi.ffi_call(onednn_library.TARGETS[1], out, vmap_method="sequential")
    return call(*arrays, cell=np.int32(code), direction=np.int32(direction),
                threads=np.int32(call_threads(x, wl, wi)))


# batch dimensions: x [T, N, I], h0/c0 [1, D, N, H], weights none; y [T, N, .], workspace [N, row]
_LAYER_DIMS = (1, 2, 2, None, None, None, None)
_forward = data_parallel(_forward_call, 3, _LAYER_DIMS, (1, 2, 2, 0))
_backward = data_parallel(_backward_call, 2, _LAYER_DIMS + (1, 2, 2, 0, 1, 2, 2), _LAYER_DIMS, summed=(3, 4, 5, 6))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def layer_call(code: int, direction: int, x, h0, c0, wl, wi, b, wp):
    """Returns ``(y [T, N, D*H_out], hn [1, D, N, H_out], cn [1, D, N, H] or [0])``: one primitive call.

    Args: `code` from `cell_code`; `direction` 0 (left to right), 1 (right to left) or 2 (both, outputs
    concatenated); ``x [T, N, I]``, ``h0 [1, D, N, H_out]``, ``c0 [1, D, N, H]`` (LSTM, else ``[0]``) and
    the weights from `onednn_weights`, all float32. Differentiable in every array argument.
    """
    onednn_library.load()
    y, hn, cn, _ = _forward(code, direction, 0, x, h0, c0, wl, wi, b, wp)
    return y, hn, cn


def _layer_fwd(code, direction, x, h0, c0, wl, wi, b, wp):
    onednn_library.load()
    y, hn, cn, ws = _forward(code, direction, 1, x, h0, c0, wl, wi, b, wp)
    return (y, hn, cn), (x, h0, c0, wl, wi, b, wp, y, hn, cn, ws)


def _layer_bwd(code, direction, residuals, grads):
    return tuple(_backward(code, direction, *residuals, *(g.astype(F32) for g in grads)))


layer_call.defvjp(_layer_fwd, _layer_bwd)

