"""unroll(): a cell over a sequence with `lax.scan`, masks for variable lengths, reverse within length.

Padding semantics (masks, never packing): step t of sequence b is valid iff ``t < lengths[b]`` (or
``mask[b, t]``). On an invalid step the carry is held and the output is zero, so the final carry is the
state after each sequence's own last token; a length-0 sequence returns its initial carry and all-zero
outputs. ``reverse=True`` runs each sequence from its own last token back to its first: the scan runs
backwards over the padded time axis and, because padded steps hold the (initial) carry, the first real
step it meets is ``t = length - 1``. This is exactly "reverse within the length, run forward, reverse
back" (`rnn_jax.sequence.reverse_padded`) without the two gathers, so padding never leaks into the
backward direction.

`unroll` checks its arguments, turns the layout time-major, applies the regularisers its keywords ask
for (variational input dropout on ``xs``; recurrent dropout and zoneout as `rnn_jax.wrappers` cells, keys
from `rnn_jax.dropout.unroll_keys`) and hands the rest to `scan`, the time-major core. `scan` takes the
fused backward pass (`rnn_jax.fused`) for a cell with a ``tail`` unless checkpointing; every wrapper
drops the tail, so zoneout and recurrent dropout in training differentiate by plain autodiff.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_jax import dropout as dropout_lib
from rnn_jax import wrappers
from rnn_jax.cells import Cell
from rnn_jax.checks import check_carry, check_floating, check_inputs, check_rate
from rnn_jax.fused import fused_scan
from rnn_jax.kernels.choice import choose, run_layer
from rnn_jax.sequence import batch_of_one, hold_invalid, valid_steps, zero_invalid

Array = jax.Array


def scan(cell: Cell, params, xs, carry, valid=None, *, reverse: bool = False, unroll: int = 1,
         checkpoint: bool = False, hoist_inputs: bool | None = None, fused_backward: bool = True):
    """Returns ``(final_carry, ys [T, B, O])``: `cell` over time-major ``xs [T, B, I]`` from `carry`.

    Args (as `unroll`'s, with these differences): `xs` is time-major and may be any pytree whose leaves
    have the leading axis T (a zoneout cell in training takes ``(xs, keys)``); `carry` is required, batch
    shape ``[B]``, in the cell's carry dtype; `valid` is the boolean ``[T, B]`` of valid steps or None.
    """
    if hoist_inputs is None:
        hoist_inputs = jax.default_backend() != "cpu"
    if fused_backward and cell.tail is not None and not checkpoint:
        return fused_scan(cell, params, xs, carry, valid, reverse, unroll, hoist_inputs)
    scanned = {"x": cell.project_inputs(params, xs) if hoist_inputs else xs}  # [T, B, G*H] or [T, B, I]
    if valid is not None:
        scanned["valid"] = valid

    def body(c, inp):
        x_t = inp["x"] if hoist_inputs else cell.project_inputs(params, inp["x"])
        new, y = cell.step(params, c, x_t)
        if "valid" in inp:
            new, y = hold_invalid(inp["valid"], new, c), zero_invalid(inp["valid"], y)
        return new, y

    if checkpoint:
        body = jax.checkpoint(body, prevent_cse=False)
    return jax.lax.scan(body, carry, scanned, reverse=reverse, unroll=unroll)


def kernel_lengths(lengths, T: int):
    """Returns checked `lengths` as int32 ``[B]`` clipped to ``[0, T]`` (how the scan treats them), or None."""
    return None if lengths is None else jnp.clip(jnp.asarray(lengths).astype(jnp.int32), 0, T)


def _regularize(cell: Cell, xs, batch: int, rates: dict, key, deterministic: bool):
    """Returns ``(cell, xs)`` with unroll's dropout and zoneout `rates` applied (``xs [T, B, I]``)."""
    for name, rate in rates.items():
        check_rate(name, rate)
    train = not deterministic and any(r > 0 for r in rates.values())
    if train and key is None:
        raise ValueError("dropout_key is required when deterministic=False and a dropout or zoneout rate is > 0")
    keys = dropout_lib.unroll_keys(key if train else None)
    if train and rates["input_dropout"] > 0:
        xs = xs * dropout_lib.variational_mask(keys["input"], rates["input_dropout"], xs.shape, xs.dtype,
                                               time_axis=0)  # mask [1, B, I]
    if train and rates["recurrent_dropout"] > 0:
        cell = wrappers.recurrent_dropout(cell, rates["recurrent_dropout"], keys["recurrent"], (batch,))
    if rates["zoneout"] > 0:
        cell = wrappers.zoneout(cell, rates["zoneout"], train=train)
        if train:
            xs = (xs, jax.random.split(keys["zoneout"], xs.shape[0]))  # one key per step
    return cell, xs


def unroll(cell: Cell, params, xs, lengths=None, carry=None, reverse: bool = False, time_major: bool = False,
           unroll: int = 1, *, mask=None, checkpoint: bool = False, hoist_inputs: bool | None = None,
           input_dropout: float = 0.0, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
           dropout_key=None, deterministic: bool = True, fused_backward: bool = True, kernel: str = "auto"):
    """Returns ``(final_carry, outputs)``: `cell` run over `xs` with `lax.scan` (or an equal platform kernel).

    Args:
      cell: a `rnn_jax.cells.Cell`.
      params: the cell's parameters (from ``cell.init``).
      xs: ``[B, T, I]`` (``[T, B, I]`` if time_major), or one unbatched sequence ``[T, I]``.
      lengths: optional ``[B]`` integers in ``[0, T]`` (a scalar for an unbatched sequence).
      carry: optional initial carry with batch shape ``[B]`` (default: ``cell.initial_carry``, zeros).
      reverse: run each sequence backwards within its own length.
      time_major: layout of `xs` and the outputs.
      unroll: passed to ``lax.scan`` (steps per loop iteration).
      mask: optional boolean ``[B, T]`` (``[T, B]`` if time_major) of valid steps, instead of lengths.
      checkpoint: rematerialise each step in the backward pass (``jax.checkpoint``): memory O(T * carry)
        instead of O(T * activations), for long sequences.
      hoist_inputs: compute the input projection of all steps as one matmul before the scan (True), or
        each step's inside it (False). None (default) picks by backend: inside on CPU, where XLA runs the
        step's input matmul on a second core beside the recurrent one (faster on 2 cores), hoisted on
        accelerators, where one large matmul is what pays (BUILD_NOTES.md, issue 3).
      input_dropout: variational dropout on the inputs (one mask per sequence, reused at every step).
      recurrent_dropout: variational dropout on h before the recurrent matmul (one mask per sequence;
        Gal & Ghahramani 2016; `rnn_jax.wrappers.recurrent_dropout`).
      zoneout: zoneout rate on the carry (Krueger et al. 2016): each unit keeps its previous value with
        this probability at each step; at evaluation the expectation is used (`rnn_jax.wrappers.zoneout`).
      dropout_key: PRNG key, required when a rate is > 0 and not `deterministic`.
      deterministic: disables dropout (zoneout then uses its expectation).
      fused_backward: differentiate with `rnn_jax.fused.fused_scan` (weight gradients as one matmul after
        the backward loop) where it applies: a cell with a ``tail``, no checkpointing, no zoneout and no
        recurrent dropout in training. Otherwise, or when False, plain autodiff of the scan. Both compute
        the same function.
      kernel: ``'auto'`` (default), ``'scan'``, ``'onednn'`` or ``'cudnn'``: what runs the recurrence
        (`rnn_jax.kernels.choice` has the rule of 'auto' and the errors). Every kernel computes this
        function to float32 rounding; the knobs above that only shape the scan (unroll, hoist_inputs,
        fused_backward) do not apply to a kernel.

    Returns:
      final_carry (batch shape ``[B]``) and outputs ``[B, T, output_size]`` (``[T, B, ...]`` if time_major),
      zero on invalid steps.

    Checks (`rnn_jax.checks`; the module docstring's padding semantics): `xs` must be floating point
    (any precision, computed in the cell's compute dtype; integers, bools and complex numbers are a
    TypeError), the carry real numbers, lengths integers, the mask boolean; ranks and sizes are
    ValueErrors naming the argument. All of these hold at trace time, so also under jit. The lengths'
    range ``[0, T]`` is checked only for concrete lengths: under jit a length outside it acts as if clipped
    (`rnn_jax.sequence.check_lengths`). Empty batches (B = 0) and T = 0 return empty outputs and, for
    T = 0, the initial carry.
    """
    xs = check_floating("xs", xs)
    unbatched = xs.ndim == 2
    if unbatched:  # one sequence [T, I]: a batch of one, batch-major
        xs, time_major = xs[None], False
        lengths, carry, mask = batch_of_one(lengths, carry, mask)
    check_inputs(xs, cell.input_size(params), time_major)
    xs = xs if time_major else jnp.swapaxes(xs, 0, 1)  # [T, B, I]
    T, B = xs.shape[:2]
    valid = valid_steps(lengths, mask, T, B, time_major=time_major)  # [T, B] or None
    expected = cell.initial_carry((B,))
    carry = expected if carry is None else check_carry(carry, expected)
    rates = {"input_dropout": input_dropout, "recurrent_dropout": recurrent_dropout, "zoneout": zoneout}
    cell, xs = _regularize(cell, xs, B, rates, dropout_key, deterministic)
    chosen = choose(kernel, cell, params, mask=mask is not None, checkpoint=checkpoint)
    if chosen != "scan":
        finals, outs = run_layer(chosen, cell, [params], xs, kernel_lengths(lengths, T), [carry], (reverse,))
        final, ys = finals[0], outs[0]
    else:
        final, ys = scan(cell, params, xs, carry, valid, reverse=reverse, unroll=unroll, checkpoint=checkpoint,
                         hoist_inputs=hoist_inputs, fused_backward=fused_backward)  # ys [T, B, O]
    ys = ys if time_major else jnp.swapaxes(ys, 0, 1)
    if unbatched:
        return jax.tree.map(lambda c: c[0], final), ys[0]
    return final, ys
