"""A masked recurrent scan with a hand-written backward pass, as cuDNN and oneDNN organise it.

Reverse-mode autodiff of ``lax.scan`` accumulates the recurrent weight gradient in the backward loop's
carry: every step adds ``h_{t-1}^T delta_t`` into a ``[R, G*H]`` buffer, a small matmul with a large
read-modify-write. Here the backward recurrence computes only what is sequential (the per-step gate
gradients ``delta_t`` and ``dh_{t-1} = delta_t W_hh^T``); the weight gradient becomes one large matmul
after the loop, ``dW_hh = H_prev^T Delta`` over all ``T*B`` rows, and the input-projection gradient
(``dW_ih``, ``db``, ``dx``) is left to autodiff of the hoisted projection, again one large matmul.

It applies to any cell with a ``tail`` (`rnn_jax.cells.Cell`): the step after its single recurrent
matmul ``zh_t = h_{t-1} @ w_hh``. The forward pass stores the carries and ``zh_t``; the backward pass
recomputes the tail's cheap elementwise work with `jax.vjp` per step. Gradients of the tail's own small
parameters (peepholes, layer-norm gains, the GRU's ``b_hn``, an LSTM projection) accumulate in the loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rnn_jax.cells import LSTMState, _matmul

_OUTSIDE = ("w_ih", "w_hh")  # used by project_inputs / the recurrent matmul, not by the tail


def _h(carry):
    return carry.h if isinstance(carry, LSTMState) else carry


def _compute_dtype(cell, w_hh):
    return cell.dtype if cell.dtype is not None else w_hh.dtype


def _masked(new, old, v):
    """Returns `new` where ``v [B]`` is true, else `old` (per leaf)."""
    return jax.tree.map(lambda n, o: jnp.where(v[:, None], n, o), new, old)


def _forward(cell, tparams, w_hh, proj, carry0, valid, reverse, unroll, keep):
    """Runs the scan; returns (final_carry, ys) or, with `keep`, also (carries [T, ...], zh [T, B, G*H])."""
    cdt = _compute_dtype(cell, w_hh)

    def body(c, inp):
        zh = _matmul(_h(c), w_hh, cdt).astype(_h(c).dtype)  # [B, G*H]
        new, y = cell.tail({**tparams, "w_hh": w_hh}, c, inp["x"], zh)
        if "valid" in inp:
            new = _masked(new, c, inp["valid"])
            y = jnp.where(inp["valid"][:, None], y, jnp.zeros((), y.dtype))
        return new, ((y, new, zh) if keep else y)

    xs = {"x": proj} if valid is None else {"x": proj, "valid": valid}
    return jax.lax.scan(body, carry0, xs, reverse=reverse, unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 6, 7))
def fused_scan(cell, tparams, w_hh, proj, carry0, valid, reverse, unroll):
    """Returns ``(final_carry, ys [T, B, O])``: `cell` scanned over time-major projected inputs.

    Args:
      cell: a `rnn_jax.cells.Cell` with a ``tail``.
      tparams: the cell's parameters without ``w_ih``/``w_hh`` (those the tail reads).
      w_hh: ``[R, G*H]`` recurrent weights.
      proj: ``[T, B, G*H]``, the hoisted input projection.
      carry0: initial carry, batch shape ``[B]``.
      valid: ``[T, B]`` booleans or None (all valid).
      reverse: scan from the last step to the first.
      unroll: steps per loop iteration (``lax.scan``'s unroll).
    """
    return _forward(cell, tparams, w_hh, proj, carry0, valid, reverse, unroll, keep=False)


def _fused_fwd(cell, tparams, w_hh, proj, carry0, valid, reverse, unroll):
    final, (ys, carries, zh) = _forward(cell, tparams, w_hh, proj, carry0, valid, reverse, unroll, keep=True)
    return (final, ys), (tparams, w_hh, proj, carry0, valid, carries, zh)


def _fused_bwd(cell, reverse, unroll, res, cts):
    tparams, w_hh, proj, carry0, valid, carries, zh = res
    d_final, d_ys = cts
    cdt = _compute_dtype(cell, w_hh)
    # carry entering each step: the previous step's carry in scan order
    if reverse:
        prev = jax.tree.map(lambda cs, c0: jnp.concatenate([cs[1:], c0[None]], 0), carries, carry0)
    else:
        prev = jax.tree.map(lambda cs, c0: jnp.concatenate([c0[None], cs[:-1]], 0), carries, carry0)

    def body(acc, inp):
        d_new, d_tp = acc
        c_prev = inp["prev"]
        # w_hh is closed over: the tail reads only its dtype, and its gradient is computed after the loop
        _, vjp = jax.vjp(lambda tp, c, p, z: cell.tail({**tp, "w_hh": w_hh}, c, p, z),
                         tparams, c_prev, inp["x"], inp["zh"])
        d_y = inp["dy"]
        if "valid" in inp:
            v = inp["valid"]
            d_in = jax.tree.map(lambda d: jnp.where(v[:, None], d, jnp.zeros((), d.dtype)), d_new)
            d_y = jnp.where(v[:, None], d_y, jnp.zeros((), d_y.dtype))
        else:
            d_in = d_new
        g_tp, g_c, g_x, g_zh = vjp((d_in, d_y))
        g_h = _h(g_c) + _matmul(g_zh, w_hh.T, cdt).astype(_h(g_c).dtype)  # [B, R]
        g_c = g_c._replace(h=g_h) if isinstance(g_c, LSTMState) else g_h
        if "valid" in inp:  # a held step passes its carry's cotangent straight through
            g_c = jax.tree.map(lambda g, d: g + jnp.where(v[:, None], jnp.zeros((), d.dtype), d), g_c, d_new)
        d_tp = jax.tree.map(jnp.add, d_tp, g_tp)
        return (g_c, d_tp), (g_x, g_zh)

    xs = {"prev": prev, "x": proj, "zh": zh, "dy": d_ys}
    if valid is not None:
        xs["valid"] = valid
    d_tp0 = jax.tree.map(jnp.zeros_like, tparams)
    (d_carry0, d_tp), (d_proj, d_zh) = jax.lax.scan(body, (d_final, d_tp0), xs, reverse=not reverse,
                                                      unroll=unroll)
    # dW_hh = sum_t h_{t-1}^T delta_t as one [R, T*B] x [T*B, G*H] matmul
    h_prev = _h(prev)
    rows = h_prev.shape[0] * h_prev.shape[1]
    d_w_hh = _matmul(h_prev.reshape(rows, -1).T, d_zh.reshape(rows, -1), cdt).astype(w_hh.dtype)  # [R, G*H]
    return d_tp, d_w_hh, d_proj.astype(proj.dtype), d_carry0, None


fused_scan.defvjp(_fused_fwd, _fused_bwd)


def split_params(params):
    """Returns ``(tail_params, w_hh)`` from a cell's parameters."""
    return {k: v for k, v in params.items() if k not in _OUTSIDE}, params["w_hh"]
