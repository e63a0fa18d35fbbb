"""One recurrent layer by the oneDNN kernel, with `rnn_jax.unroll`'s semantics (fixed and variable lengths).

`run_layer` is what `rnn_jax.unroll` and the stacks call when the kernel is chosen
(`rnn_jax.kernels.choice`); how lengths are served is in `rnn_jax.kernels.onednn`'s docstring.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_jax.cells import LSTMState, carry_h
from rnn_jax.kernels.onednn import F32, LSTM, cell_code, layer_call, onednn_weights
from rnn_jax.precision import matmul
from rnn_jax.sequence import lengths_to_mask, reverse_padded

Array = jax.Array


def _stack_carries(code: int, carries: list):
    """Returns ``(h0 [1, D, B, H_out], c0 [1, D, B, H] or [0])`` from per-direction carries."""
    h0 = jnp.stack([carry_h(c).astype(F32) for c in carries])[None]
    c0 = jnp.stack([c.c.astype(F32) for c in carries])[None] if code == LSTM else jnp.zeros((0,), F32)
    return h0, c0


def _carry(code: int, h: Array, c: Array):
    return LSTMState(h, c) if code == LSTM else h


def _fixed(cell, code: int, params_dirs: list, x: Array, carries: list, reverses: tuple):
    """All sequences of length T: one call for the layer. Returns ``(finals, ys)`` per direction."""
    direction = 2 if len(reverses) == 2 else int(reverses[0])
    h0, c0 = _stack_carries(code, carries)
    y, hn, cn = layer_call(code, direction, x, h0, c0, *onednn_weights(cell, code, params_dirs))
    H_out = hn.shape[-1]
    ys = [y[..., d * H_out:(d + 1) * H_out] for d in range(len(reverses))]
    finals = [_carry(code, hn[0, d], cn[0, d] if code == LSTM else None) for d in range(len(reverses))]
    return finals, ys


def _at_last_step(seq: Array, lengths: Array, initial: Array) -> Array:
    """Returns ``seq [T, B, F]`` at each sequence's last valid step, `initial` ``[B, F]`` for length 0."""
    idx = jnp.clip(lengths - 1, 0, seq.shape[0] - 1)
    last = jnp.take_along_axis(seq, idx[None, :, None], axis=0)[0]
    return jnp.where((lengths > 0)[:, None], last, initial)


def _lstm_cells(cell, params: dict, x: Array, y: Array, h0: Array, c0: Array) -> Array:
    """Returns every step's cell state ``[T, B, H]`` of an LSTM run whose outputs (its h) were ``y``.

    The gates of step t need only ``x_t`` and ``h_{t-1}`` (``y_{t-1}``, or ``h0``), so they are computed
    for all steps at once (the cell's own input projection, biases included, plus the recurrent matmul);
    ``c_t = f_t c_{t-1} + i_t g_t`` is then a linear recurrence from ``c0``.
    """
    H = cell.hidden_size
    h_prev = jnp.concatenate([h0[None], y[:-1]], axis=0)  # [T, B, H_out]
    z = cell.project_inputs(params, x) + matmul(h_prev, params["w_hh"], F32)  # [T, B, 4H]
    i, f, g = jax.nn.sigmoid(z[..., :H]), jax.nn.sigmoid(z[..., H:2 * H]), jnp.tanh(z[..., 2 * H:3 * H])

    def step(c, fig):
        c = fig[0] * c + fig[1]
        return c, c

    return jax.lax.scan(step, c0, (f, i * g))[1]


def _variable(cell, code: int, params: dict, x: Array, lengths: Array, carry, reverse: bool):
    """One direction over sequences of their own lengths: returns ``(final, ys [T, B, H_out])``."""
    x_run = reverse_padded(x, lengths, time_major=True) if reverse else x
    h0, c0 = _stack_carries(code, [carry])
    y_run = layer_call(code, 0, x_run, h0, c0, *onednn_weights(cell, code, [params]))[0]
    h = _at_last_step(y_run, lengths, h0[0, 0])
    c = None
    if code == LSTM:
        c = _at_last_step(_lstm_cells(cell, params, x_run, y_run, h0[0, 0], c0[0, 0]), lengths, c0[0, 0])
    ys = reverse_padded(y_run, lengths, time_major=True) if reverse else y_run
    valid = lengths_to_mask(lengths, x.shape[0], time_major=True)  # [T, B]
    return _carry(code, h, c), jnp.where(valid[..., None], ys, 0.0)


def run_layer(cell, params_dirs: list, x: Array, lengths, carries: list, reverses: tuple):
    """Returns ``(finals, ys)``, one per direction: `cell` over ``x [T, B, I]`` by the oneDNN kernel.

    Args:
      cell: a cell `rnn_jax.kernels.onednn.cell_code` serves (the caller checked).
      params_dirs: each direction's cell parameters (one or two dicts).
      x: time-major inputs ``[T, B, I]`` (computed in float32).
      lengths: ``[B]`` integers in ``[0, T]``, or None (every sequence has T steps).
      carries: each direction's initial carry (batch shape ``[B]``).
      reverses: each direction's ``reverse`` flag: ``(False,)``, ``(True,)`` or ``(False, True)``.

    Returns:
      finals (each direction's final carry, as `rnn_jax.unroll` returns it) and ys (each direction's
      outputs ``[T, B, H_out]``, zero at padded steps), float32.
    """
    code = cell_code(cell)
    x = x.astype(F32)
    T, B = x.shape[:2]
    if T == 0 or B == 0:  # nothing to run: the initial carries and empty outputs
        return list(carries), [jnp.zeros((T, B, cell.output_size), F32) for _ in reverses]
    if lengths is None:
        return _fixed(cell, code, params_dirs, x, carries, reverses)
    results = [_variable(cell, code, p, x, lengths, c, r) for p, c, r in zip(params_dirs, carries, reverses)]
    return [r[0] for r in results], [r[1] for r in results]
