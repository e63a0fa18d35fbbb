"""unroll(): a cell over a sequence with `lax.scan`, masks for variable lengths, reverse within length.

Padding semantics (masks, never packing): step t of sequence b is valid iff ``t < lengths[b]`` (or
``mask[b, t]``). On an invalid step the carry is held and the output is zero, so the final carry is the
state after each sequence's own last token; a length-0 sequence returns its initial carry and all-zero
outputs. ``reverse=True`` runs each sequence from its own last token back to its first: the scan runs
backwards over the padded time axis and, because padded steps hold the (initial) carry, the first real
step it meets is ``t = length - 1``. This is exactly "reverse within the length, run forward, reverse
back" (`rnn_jax.sequence.reverse_padded`) without the two gathers, so padding never leaks into the
backward direction.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_jax.cells import Cell, LSTMState
from rnn_jax.fused import fused_scan
from rnn_jax.sequence import valid_steps

Array = jax.Array


def _check_carry(carry, expected, name="carry"):
    leaves, tree = jax.tree.flatten(carry)
    exp_leaves, exp_tree = jax.tree.flatten(expected)
    if tree != exp_tree:
        raise ValueError(f"{name} must have the structure of the cell's initial_carry ({exp_tree}), got {tree}")
    for got, want in zip(leaves, exp_leaves):
        if tuple(got.shape) != tuple(want.shape):
            raise ValueError(f"{name} must have shapes {[tuple(w.shape) for w in exp_leaves]}, got "
                             f"{[tuple(g.shape) for g in leaves]}")
    # the scan carry keeps one dtype: the cell's carry dtype
    return jax.tree.map(lambda c, w: jnp.asarray(c).astype(w.dtype), carry, expected)


def _dropout_mask(key, rate: float, shape, dtype) -> Array:
    """Returns an inverted-dropout mask: 0 with probability `rate`, else 1/(1-rate)."""
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def _check_rate(name: str, rate: float) -> float:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {rate}")
    return rate


def _h_of(carry):
    return carry.h if isinstance(carry, LSTMState) else carry


def _with_h(carry, h):
    return carry._replace(h=h) if isinstance(carry, LSTMState) else h


def check_inputs(xs, params, time_major: bool) -> int:
    """Returns the cell's input size after checking that batched ``xs`` is ``[B, T, I]`` (``[T, B, I]``)."""
    if xs.ndim != 3:
        layout = "[time, batch, features]" if time_major else "[batch, time, features]"
        raise ValueError(f"xs must have shape {layout} or [time, features], got {xs.shape}")
    input_size = params["w_ih"].shape[0]
    if xs.shape[-1] != input_size:
        raise ValueError(f"xs must have {input_size} features (the cell's input_size) on its last axis, "
                         f"got shape {xs.shape}")
    return input_size


def unroll(cell: Cell, params, xs, lengths=None, carry=None, reverse: bool = False, time_major: bool = False,
           unroll: int = 1, *, mask=None, checkpoint: bool = False, hoist_inputs: bool | None = None,
           input_dropout: float = 0.0, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
           dropout_key=None, deterministic: bool = True, fused_backward: bool = True):
    """Returns ``(final_carry, outputs)``: `cell` run over `xs` with `lax.scan`.

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
        Gal & Ghahramani 2016).
      zoneout: zoneout rate on the carry (Krueger et al. 2016): each unit keeps its previous value with
        this probability at each step; at evaluation the expectation is used.
      dropout_key: PRNG key, required when a rate is > 0 and not `deterministic`.
      deterministic: disables dropout (zoneout then uses its expectation).
      fused_backward: differentiate with `rnn_jax.fused.fused_scan` (weight gradients as one matmul after
        the backward loop) where it applies: a cell with a ``tail``, no checkpointing, no zoneout and no
        recurrent dropout in training. Otherwise, or when False, plain autodiff of
        the scan. Both compute the same function.

    Returns:
      final_carry (batch shape ``[B]``) and outputs ``[B, T, output_size]`` (``[T, B, ...]`` if time_major),
      zero on invalid steps.
    """
    xs = jnp.asarray(xs)
    if xs.ndim == 2:  # one unbatched sequence [T, I]
        add = (lambda a: None if a is None else jnp.asarray(a)[None])
        carry_b = None if carry is None else jax.tree.map(lambda c: jnp.asarray(c)[None], carry)
        mask_b = None if mask is None else jnp.asarray(mask)[None]
        final, ys = unroll_fn(cell, params, xs[None], add(lengths), carry_b, reverse, False, unroll, mask=mask_b,
                              checkpoint=checkpoint, hoist_inputs=hoist_inputs, input_dropout=input_dropout,
                              recurrent_dropout=recurrent_dropout, zoneout=zoneout, dropout_key=dropout_key,
                              deterministic=deterministic, fused_backward=fused_backward)
        return jax.tree.map(lambda c: c[0], final), ys[0]
    input_size = check_inputs(xs, params, time_major)
    for name, rate in (("input_dropout", input_dropout), ("recurrent_dropout", recurrent_dropout),
                       ("zoneout", zoneout)):
        _check_rate(name, rate)
    train_noise = not deterministic and (input_dropout > 0 or recurrent_dropout > 0 or zoneout > 0)
    if train_noise and dropout_key is None:
        raise ValueError("dropout_key is required when deterministic=False and a dropout or zoneout rate is > 0")

    xs = xs if time_major else jnp.swapaxes(xs, 0, 1)  # [T, B, I]
    T, B = xs.shape[:2]
    valid = valid_steps(lengths, mask, T, B, time_major=time_major)  # [T, B] or None

    expected = cell.initial_carry((B,))
    carry = expected if carry is None else _check_carry(carry, expected)

    keys = jax.random.split(dropout_key, 3) if train_noise else (None, None, None)
    if input_dropout > 0 and not deterministic:
        xs = xs * _dropout_mask(keys[0], input_dropout, (1, B, input_size), xs.dtype)  # [T, B, I]
    rec_mask = None
    if recurrent_dropout > 0 and not deterministic:
        h0 = _h_of(carry)
        rec_mask = _dropout_mask(keys[1], recurrent_dropout, h0.shape, h0.dtype)  # [B, H_out]

    if hoist_inputs is None:
        hoist_inputs = jax.default_backend() != "cpu"
    if fused_backward and cell.tail is not None and not checkpoint and rec_mask is None and zoneout == 0:
        final, ys = fused_scan(cell, params, xs, carry, valid, reverse, unroll, hoist_inputs)  # ys [T, B, O]
        return final, (ys if time_major else jnp.swapaxes(ys, 0, 1))
    seq = cell.project_inputs(params, xs) if hoist_inputs else xs  # [T, B, G*H] or [T, B, I]
    scanned = {"x": seq}
    if valid is not None:
        scanned["valid"] = valid
    if zoneout > 0 and not deterministic:
        scanned["key"] = jax.random.split(keys[2], T)

    def body(c, inp):
        x_t = inp["x"] if hoist_inputs else cell.project_inputs(params, inp["x"])
        c_in = c if rec_mask is None else _with_h(c, _h_of(c) * rec_mask)
        new, y = cell.step(params, c_in, x_t)
        if zoneout > 0:
            if deterministic:
                new = jax.tree.map(lambda n, o: zoneout * o + (1.0 - zoneout) * n, new, c)
            else:
                leaves, tree = jax.tree.flatten(new)
                ks = jax.random.split(inp["key"], len(leaves))
                olds = jax.tree.leaves(c)
                leaves = [jnp.where(jax.random.bernoulli(k, zoneout, n.shape), o, n)
                          for k, n, o in zip(ks, leaves, olds)]
                new = jax.tree.unflatten(tree, leaves)
            y = _h_of(new).astype(y.dtype)
        if "valid" in inp:
            v = inp["valid"][:, None]  # [B, 1]
            new = jax.tree.map(lambda n, o: jnp.where(v, n, o), new, c)
            y = jnp.where(v, y, jnp.zeros((), y.dtype))
        return new, y

    if checkpoint:
        body = jax.checkpoint(body, prevent_cse=False)
    final, ys = jax.lax.scan(body, carry, scanned, reverse=reverse, unroll=unroll)  # ys [T, B, O]
    return final, (ys if time_major else jnp.swapaxes(ys, 0, 1))


unroll_fn = unroll  # the name used inside unroll(), whose `unroll` argument shadows the function

