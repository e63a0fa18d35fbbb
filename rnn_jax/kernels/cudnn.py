"""The cuDNN kernel: one LSTM layer (one direction or both) as one cuDNN RNN call, through `jax.experimental.rnn`.

It computes the function `rnn_jax.unroll` computes (BUILD_NOTES.md's padding semantics included) for what
`jax.experimental.rnn` offers: the LSTM without projection, peepholes or layer norm, float32. The GRU,
the Elman RNN and ``proj_size`` have no cuDNN path in JAX; 'auto' uses the scan for them.

* Weights: one flat vector in cuDNN's layout with PyTorch's matrices (`jax.experimental.rnn`'s module
  docstring): each direction's ``W_ih [4H, I]`` then ``W_hh [4H, H]``, then each direction's ``b_ih`` and
  ``b_hh [4H]``; the gate order i, f, g, o is ours, and our ``w_ih [I, 4H]`` is ``W_ih`` transposed.
  `flat_weights` is plain JAX, so gradients flow back through it; a layer without bias gets zeros.
* Lengths go to cuDNN, which runs every sequence within its own length (the backward direction from each
  sequence's last step) and returns each sequence's final state, as the scan does. cuDNN takes lengths
  >= 1: a length-0 sequence runs one step whose results are dropped (its outputs zeroed, its final carry
  the initial one). Outputs at padded steps are zeroed here too. A lone backward direction
  (``unroll(reverse=True)``) runs left to right over each sequence reversed within its length.
* Matmul precision follows JAX's (``jax_default_matmul_precision``), as XLA's dots in the scan do: with
  JAX's default, cuDNN may use TF32 on GPUs that have it; ``'highest'`` asks for full float32.
* The forward and backward calls (`jax.experimental.rnn.lstm_fwd` and ``lstm_bwd``) sit under a
  `jax.custom_vjp` of our own, each wrapped by `rnn_jax.kernels.partition.sequential_vmap`:
  `jax.experimental.rnn` has no batching rule, so under vmap the mapped slices run one after another.
* Not partitioned over devices: in a jit sharded over several devices XLA gathers the batch onto each
  (correct, not parallel), so 'auto' takes cuDNN only in a process with one device
  (`rnn_jax.kernels.choice`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import rnn as jax_rnn

from rnn_jax.cells import LSTMState
from rnn_jax.kernels.partition import sequential_vmap
from rnn_jax.kernels.served import unserved_cell
from rnn_jax.sequence import hold_invalid, lengths_to_mask, reverse_padded

Array = jax.Array
F32 = jnp.float32
# every option of the cells the kernel serves, with the values it serves (None: any value)
_SERVED = {"lstm": {"proj_size": (0,), "peephole": (False,), "layer_norm": (False,), "bias": None,
                    "initializer": None, "dtype": None, "param_dtype": None}}


def unavailable_reason() -> str | None:
    """Returns why `jax.experimental.rnn` cannot call cuDNN in this process, or None (it can)."""
    if jax.default_backend() != "gpu":
        return f"cuDNN runs on a GPU backend; the default backend is {jax.default_backend()!r}"
    if getattr(jax_rnn, "gpu_rnn", None) is None:
        return "this jaxlib has no cuDNN RNN (jax.experimental.rnn could not import jax._src.lib.gpu_rnn)"
    return None


def cell_reason(cell) -> str | None:
    """Returns why the cuDNN kernel does not serve `cell` (a `rnn_jax.cells.Cell`), or None (it does)."""
    reason = unserved_cell(cell, _SERVED)
    if reason is not None:
        return f"{reason} (jax.experimental.rnn offers cuDNN's LSTM only)"
    return None


def flat_weights(params_dirs: list) -> Array:
    """Returns cuDNN's flat weight vector ``[D * (4H * (I + H) + 8H)]`` for one layer's directions.

    Args: each direction's LSTM parameters (``w_ih [I, 4H]``, ``w_hh [H, 4H]``, optional ``b_ih``,
    ``b_hh [4H]``), forward first.
    """
    matrices, biases = [], []
    for p in params_dirs:
        matrices += [p["w_ih"].astype(F32).T.reshape(-1), p["w_hh"].astype(F32).T.reshape(-1)]
        zeros = jnp.zeros((p["w_hh"].shape[1],), F32)
        biases += [p.get("b_ih", zeros).astype(F32), p.get("b_hh", zeros).astype(F32)]
    return jnp.concatenate(matrices + biases)


def _forward(I: int, H: int, bidirectional: bool, x, h0, c0, w, lengths):
    (y, hn, cn), residuals = jax_rnn.lstm_fwd(x, h0, c0, w, lengths, input_size=I, hidden_size=H, num_layers=1,
                                              dropout=0.0, bidirectional=bidirectional, precision=None)
    return y, hn, cn, residuals


def _backward(I: int, H: int, bidirectional: bool, treedef, *leaves):
    """The backward call over the residuals' leaves and the three output gradients: returns dx, dh0, dc0, dw."""
    residuals, grads = jax.tree.unflatten(treedef, leaves[:-3]), leaves[-3:]
    return jax_rnn.lstm_bwd(I, H, 1, 0.0, bidirectional, None, residuals, grads)[:4]


@functools.lru_cache(maxsize=None)
def _forward_call(I: int, H: int, bidirectional: bool):
    """Returns the forward call for these sizes, its mapped slices run in turn under vmap."""
    return sequential_vmap(functools.partial(_forward, I, H, bidirectional))


@functools.lru_cache(maxsize=None)
def _backward_call(I: int, H: int, bidirectional: bool, treedef):
    """Returns the backward call for these sizes and residuals, its mapped slices run in turn under vmap."""
    return sequential_vmap(functools.partial(_backward, I, H, bidirectional, treedef))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def lstm_call(I: int, H: int, bidirectional: bool, x, h0, c0, w, lengths):
    """Returns ``(y [B, T, D*H], hn [D, B, H], cn [D, B, H])``: one cuDNN LSTM call, batch-major.

    Args: sizes I and H, both directions or one; ``x [B, T, I]``, ``h0``, ``c0 [D, B, H]``, the flat
    weights ``w`` (`flat_weights`), all float32; ``lengths`` int32 ``[B]`` in ``[1, T]``.
    Differentiable in x, h0, c0 and w.
    """
    y, hn, cn, _ = _forward_call(I, H, bidirectional)(x, h0, c0, w, lengths)
    return y, hn, cn


def _call_fwd(I, H, bidirectional, x, h0, c0, w, lengths):
    y, hn, cn, residuals = _forward_call(I, H, bidirectional)(x, h0, c0, w, lengths)
    return (y, hn, cn), residuals


def _call_bwd(I, H, bidirectional, residuals, grads):
    leaves, treedef = jax.tree.flatten(residuals)
    dx, dh0, dc0, dw = _backward_call(I, H, bidirectional, treedef)(*leaves, *(g.astype(F32) for g in grads))
    return dx, dh0, dc0, dw, None


lstm_call.defvjp(_call_fwd, _call_bwd)


def run_layer(cell, params_dirs: list, x: Array, lengths, carries: list, reverses: tuple):
    """Returns ``(finals, ys)``, one per direction: the LSTM `cell` over ``x [T, B, I]`` by cuDNN.

    Args and results as `rnn_jax.kernels.onednn_layer.run_layer`'s: a cell `cell_reason` accepts (the
    caller checked), each direction's parameters, time-major inputs, lengths ``[B]`` in ``[0, T]`` or None,
    each direction's initial `LSTMState` and ``reverse`` flag (``(False,)``, ``(True,)`` or
    ``(False, True)``). Outputs are ``[T, B, H]`` per direction, zero at padded steps, float32.
    """
    x = x.astype(F32)
    T, B, I = x.shape
    H = cell.hidden_size
    if T == 0 or B == 0:  # nothing to run: the initial carries and empty outputs
        return list(carries), [jnp.zeros((T, B, H), F32) for _ in reverses]
    full = jnp.full((B,), T, jnp.int32) if lengths is None else lengths.astype(jnp.int32)
    lone_reverse = tuple(reverses) == (True,)
    x_run = reverse_padded(x, full, time_major=True) if lone_reverse else x
    h0 = jnp.stack([c.h.astype(F32) for c in carries])  # [D, B, H]
    c0 = jnp.stack([c.c.astype(F32) for c in carries])
    y, hn, cn = lstm_call(I, H, len(reverses) == 2, jnp.swapaxes(x_run, 0, 1), h0, c0, flat_weights(params_dirs),
                          jnp.maximum(full, 1))
    y = jnp.swapaxes(y, 0, 1)  # [T, B, D*H]
    valid = lengths_to_mask(full, T, time_major=True)[..., None]  # [T, B, 1]
    ys = [jnp.where(valid, y[..., d * H:(d + 1) * H], 0.0) for d in range(len(reverses))]
    if lone_reverse:
        ys = [reverse_padded(ys[0], full, time_major=True)]
    # a length-0 sequence keeps its initial carry
    finals = [hold_invalid(full > 0, LSTMState(hn[d], cn[d]), LSTMState(h0[d], c0[d])) for d in range(len(reverses))]
    return finals, ys
