"""A masked recurrent scan with a hand-written backward pass, as cuDNN and oneDNN organise it.

Reverse-mode autodiff of ``lax.scan`` accumulates the recurrent weight gradient in the backward loop's
carry: every step adds ``h_{t-1}^T delta_t`` into a ``[R, G*H]`` buffer, a small matmul with a large
read-modify-write. Here the backward recurrence computes only what is sequential (the per-step gate
gradients ``delta_t`` and ``dh_{t-1} = delta_t W_hh^T``); the weight gradient becomes one large matmul
after the loop, ``dW_hh = H_prev^T Delta`` over all ``T*B`` rows, and the input-projection gradient
(``dW_ih``, ``db``, ``dx``) is left to autodiff of the hoisted projection, again one large matmul.

It applies to any cell with a ``tail`` (`rnn_jax.cells.Cell`): the step after its single recurrent
matmul ``zh_t = h_{t-1} @ w_hh``. The forward pass stores the projected inputs, the carries and
``zh_t``; the backward pass recomputes the tail's cheap elementwise work with `jax.vjp` per step.
Gradients of the tail's own small parameters (peepholes, layer-norm gains, the GRU's ``b_hn``, an LSTM
projection) accumulate in the loop; those of the input projection come from one `jax.vjp` of
``project_inputs`` over all steps after it.

The input projection is computed either before the loop (``hoist=True``, one large matmul) or inside
it (``hoist=False``). On a 2-core CPU the second is faster: XLA runs the step's input matmul on one core
while the recurrent matmul, which the step must wait for, runs on the other (BUILD_NOTES.md, issue 3).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rnn_jax.cells import carry_h, replace_h
from rnn_jax.precision import matmul
from rnn_jax.sequence import hold_invalid, zero_invalid


def _cast_matrices(params, dtype):
    """`params` with ``w_ih`` and ``w_hh`` cast to the compute dtype once, outside the loop.

    Under bfloat16 compute the cells' matmuls would otherwise convert the float32 matrices at every step.
    """
    return {**params, **{k: params[k].astype(dtype) for k in ("w_ih", "w_hh") if k in params}}


def _tail_params(params):
    """The parameters the tail may differentiate: all but the two large matrices."""
    return {k: v for k, v in params.items() if k not in ("w_ih", "w_hh")}


def _forward(cell, params, xs, carry0, valid, reverse, unroll, hoist, keep):
    """Runs the scan; returns (final, ys) or, with `keep`, (final, (ys, proj, carries, zh)), time-major."""
    cdt = cell.compute_dtype(params)
    pc = _cast_matrices(params, cdt)
    w_hh = pc["w_hh"]

    def body(c, inp):
        p_t = inp["x"] if hoist else cell.project_inputs(pc, inp["x"])  # [B, G*H]
        zh = matmul(carry_h(c), w_hh, cdt).astype(carry_h(c).dtype)  # [B, G*H]
        new, y = cell.tail(params, c, p_t, zh)
        if "valid" in inp:
            new = hold_invalid(inp["valid"], new, c)
            y = zero_invalid(inp["valid"], y)
        if not keep:
            return new, y
        return new, (y, new, zh) if hoist else (y, new, zh, p_t)

    scanned = {"x": cell.project_inputs(params, xs) if hoist else xs}  # [T, B, G*H] or [T, B, I]
    if valid is not None:
        scanned["valid"] = valid
    final, out = jax.lax.scan(body, carry0, scanned, reverse=reverse, unroll=unroll)
    if not keep:
        return final, out
    ys, carries, zh = out[:3]
    proj = scanned["x"] if hoist else out[3]
    return final, (ys, proj, carries, zh)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 5, 6, 7))
def fused_scan(cell, params, xs, carry0, valid, reverse, unroll, hoist):
    """Returns ``(final_carry, ys [T, B, O])``: `cell` scanned over time-major inputs ``xs [T, B, I]``.

    Args:
      cell: a `rnn_jax.cells.Cell` with a ``tail``.
      params: the cell's parameters.
      xs: ``[T, B, I]`` inputs (projected by ``cell.project_inputs`` inside).
      carry0: initial carry, batch shape ``[B]``.
      valid: ``[T, B]`` booleans or None (all valid).
      reverse: scan from the last step to the first.
      unroll: steps per loop iteration (``lax.scan``'s unroll).
      hoist: project all steps before the loop (True) or each step inside it (False).
    """
    return _forward(cell, params, xs, carry0, valid, reverse, unroll, hoist, keep=False)


def _fused_fwd(cell, params, xs, carry0, valid, reverse, unroll, hoist):
    final, (ys, proj, carries, zh) = _forward(cell, params, xs, carry0, valid, reverse, unroll, hoist, keep=True)
    return (final, ys), (params, xs, carry0, valid, proj, carries, zh)


def _previous_carries(carries, carry0, reverse: bool):
    """Returns the carry entering each step ``[T, B, ...]``: the previous step's carry in scan order."""
    if reverse:
        return jax.tree.map(lambda cs, c0: jnp.concatenate([cs[1:], c0[None]], 0), carries, carry0)
    return jax.tree.map(lambda cs, c0: jnp.concatenate([c0[None], cs[:-1]], 0), carries, carry0)


def _backward_body(cell, tparams, w_hh, w_hh_t, pc, cdt, hoist: bool):
    """Returns the backward loop's body: per step the gate gradients and ``dh``, never a weight gradient."""

    def body(acc, inp):
        d_new, d_tp = acc
        # w_hh is closed over: the tail reads only its dtype, and its gradient is computed after the loop
        _, vjp = jax.vjp(lambda tp, c, p, z: cell.tail({**tp, "w_hh": w_hh}, c, p, z),
                         tparams, inp["prev"], inp["x"], inp["zh"])
        d_y = inp["dy"]
        if "valid" in inp:
            v = inp["valid"][:, None]  # [B, 1]
            d_in = jax.tree.map(lambda d: jnp.where(v, d, jnp.zeros((), d.dtype)), d_new)
            d_y = jnp.where(v, d_y, jnp.zeros((), d_y.dtype))
        else:
            d_in = d_new
        g_tp, g_c, g_x, g_zh = vjp((d_in, d_y))
        g_c = replace_h(g_c, carry_h(g_c) + matmul(g_zh, w_hh_t, cdt).astype(carry_h(g_c).dtype))  # h: [B, R]
        if "valid" in inp:  # a held step passes its carry's cotangent straight through
            g_c = jax.tree.map(lambda g, d: g + jnp.where(v, jnp.zeros((), d.dtype), d), g_c, d_new)
        d_tp = jax.tree.map(jnp.add, d_tp, g_tp)
        if hoist:
            return (g_c, d_tp), (g_x, g_zh)
        # the input gradient of this step does not feed the recurrence: XLA computes it beside it
        _, vjp_x = jax.vjp(lambda x: cell.project_inputs(pc, x), inp["xs"])
        return (g_c, d_tp), (g_x, g_zh, vjp_x(g_x.astype(inp["x"].dtype))[0])

    return body


def _fused_bwd(cell, reverse, unroll, hoist, res, cts):
    params, xs, carry0, valid, proj, carries, zh = res
    d_final, d_ys = cts
    cdt = cell.compute_dtype(params)
    w_hh = params["w_hh"]
    # W_hh^T materialised once: XLA would otherwise fold the transpose into every step's dot, whose
    # transposed-operand form ran about 25% slower on XLA:CPU (BUILD_NOTES.md, issue 3)
    pc = _cast_matrices(params, cdt)
    w_hh_t = jax.lax.optimization_barrier(jnp.transpose(pc["w_hh"]))  # [G*H, R]
    tparams = _tail_params(params)
    prev = _previous_carries(carries, carry0, reverse)
    scanned = {"prev": prev, "x": proj, "zh": zh, "dy": d_ys}
    if valid is not None:
        scanned["valid"] = valid
    if not hoist:
        scanned["xs"] = xs
    body = _backward_body(cell, tparams, w_hh, w_hh_t, pc, cdt, hoist)
    d_tp0 = jax.tree.map(jnp.zeros_like, tparams)
    (d_carry0, d_tp), outs = jax.lax.scan(body, (d_final, d_tp0), scanned, reverse=not reverse, unroll=unroll)
    d_proj, d_zh = outs[:2]
    # after the loop, each a few large matmuls over all T*B rows:
    h_prev = carry_h(prev)
    rows = h_prev.shape[0] * h_prev.shape[1]
    d_w_hh = matmul(h_prev.reshape(rows, -1).T, d_zh.reshape(rows, -1), cdt)  # [R, G*H]
    if hoist:
        _, vjp_proj = jax.vjp(cell.project_inputs, params, xs)
        d_params, d_xs = vjp_proj(d_proj.astype(proj.dtype))  # dW_ih = X^T dP, db = sum dP, dX = dP W_ih^T
    else:
        _, vjp_proj = jax.vjp(lambda p: cell.project_inputs(p, xs), params)
        (d_params,), d_xs = vjp_proj(d_proj.astype(proj.dtype)), outs[2]
    d_params = {k: (d_params[k] + d_tp[k] if k in d_tp else d_params[k]) for k in d_params}
    d_params["w_hh"] = d_params["w_hh"] + d_w_hh.astype(w_hh.dtype)
    return d_params, d_xs, d_carry0, None


fused_scan.defvjp(_fused_fwd, _fused_bwd)
