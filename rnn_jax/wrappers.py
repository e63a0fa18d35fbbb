"""Cells made from cells: a step fed from its own state, and regularisers of the recurrence.

Each wrapper returns a `rnn_jax.cells.Cell` with the same contract, so `rnn_jax.unroll`, the stacks and
step-by-step decoding run it unchanged. A wrapper adds its entries to ``options`` (a kernel that matches
an unwrapped cell's record no longer matches) and drops ``tail`` and ``parallel``: its step does more than
one recurrent matmul's tail, so `rnn_jax.unroll` differentiates it by plain autodiff of the scan.

**Fed inputs** (`feed_inputs`): a decoder whose per-step input depends on its previous state, e.g. the
attention context of Bahdanau et al. (2015), ``context_t = attend(h_{t-1}, memory)``, or Luong et al.'s
(2015) input feeding. The cell's input at step t is the concatenation ``[x_t, f_t]`` of a part known in
advance (``x_t [..., I]``: the previous target's embedding) and a fed part ``f_t = feed_fn(params['feed'],
carry_{t-1}) [..., F]``. ``w_ih`` is ``[I + F, G*H]`` (the rows of a plain cell with input ``I + F``, x's
first), so the wrapped cell computes exactly ``cell.step(p, carry, cell.project_inputs(p, [x_t, f_t]))``:

* ``project_inputs(params, xs [..., I])`` is the base cell's with ``w_ih[:I]``: hoistable as before;
* ``step(params, carry, proj_t)`` computes ``f_t`` from the carry, adds ``f_t @ w_ih[I:]`` to ``proj_t``
  and runs the base step; with ``emit_feed`` its output is ``[y_t, f_t]`` (``output_size + F``), for
  output layers that read the context too.

The memory an attention attends over is data, not a parameter: close `feed_fn` over it where the
decoder is called (the cell is rebuilt per call, like every cell, at trace time). Translation and
captioning decoders differ only in `feed_fn` (additive or multiplicative attention over source states or
image regions). The base cell's input projection must be affine (not the layer-norm LSTM, whose LN acts
on the whole ``[x, f] W_ih``).

**Regularisers**, the cells `rnn_jax.unroll`'s keywords build:

* `recurrent_dropout`: a variational mask on h before the recurrent matmul (Gal & Ghahramani 2016), one
  per sequence, drawn when the wrapper is made;
* `zoneout` (Krueger et al. 2016): each unit of the carry keeps its previous value with probability
  `rate` at each step; at evaluation the expectation ``rate * old + (1 - rate) * new``. In training the
  step needs a key per step: its per-step input is the pair ``(x_t, key_t)`` and ``project_inputs``
  passes the keys through, so `rnn_jax.unroll.scan` takes ``xs`` as ``(xs [T, B, I], keys [T])``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from rnn_jax.cells import Cell, carry_h, freeze_options, replace_h
from rnn_jax.checks import check_rate, check_size
from rnn_jax.dropout import dropout_mask
from rnn_jax.precision import matmul


def _wrapped(cell: Cell, **changes) -> Cell:
    """Returns `cell` with `changes`, its fused and parallel forms dropped and `options` extended."""
    record = changes.pop("record")
    return cell._replace(tail=None, parallel=None, options=freeze_options(cell.options, **record), **changes)


def feed_inputs(cell: Cell, feed_fn: Callable, feed_size: int, *, feed_init: Callable | None = None,
                emit_feed: bool = False) -> Cell:
    """Returns `cell` whose step adds an input computed from the previous carry (see the module docstring).

    Args:
      cell: the base cell; its ``project_inputs`` must be affine (``cell.affine_inputs``).
      feed_fn: ``(feed_params, carry) -> f [..., feed_size]``, from the carry before the step;
        ``feed_params`` is ``params['feed']`` (None without `feed_init`).
      feed_size: F.
      feed_init: optional ``key -> feed_params`` (e.g. attention weights), kept under ``params['feed']``.
      emit_feed: the step's output is ``[y_t, f_t]`` (``[..., output_size + F]``) instead of ``y_t``.

    Params: the base cell's for input size ``I + F`` (``w_ih [I + F, G*H]``), plus ``'feed'``. Without
    `feed_init`, ``init(key, I)`` is ``cell.init(key, I + F)``; with it the key is split in two.
    """
    check_size("feed_size", feed_size)
    if cell.feed_size:
        raise ValueError("feed_inputs takes a cell that feeds nothing yet: concatenate the fed parts in one feed_fn")
    if not cell.affine_inputs:
        raise ValueError(f"feed_inputs needs a cell whose input projection is affine; {cell.kind} with options "
                         f"{dict(cell.options)} normalises the whole input projection")

    def init(key, input_size: int):
        check_size("input_size", input_size)
        if feed_init is None:
            return cell.init(key, input_size + feed_size)
        k_cell, k_feed = jax.random.split(key)
        return {**cell.init(k_cell, input_size + feed_size), "feed": feed_init(k_feed)}

    def project_inputs(params, xs):  # [..., I] -> [..., G*H], the rows of w_ih that x meets
        w = params["w_ih"]
        return cell.project_inputs({**params, "w_ih": w[:w.shape[0] - feed_size]}, xs)

    def step(params, carry, proj_t):
        w = params["w_ih"]
        f = feed_fn(params.get("feed"), carry)  # [..., F]
        fed = matmul(f, w[w.shape[0] - feed_size:], cell.compute_dtype(params)).astype(proj_t.dtype)
        new, y = cell.step(params, carry, proj_t + fed)  # proj_t [..., G*H]
        return new, (jnp.concatenate([y, f.astype(y.dtype)], axis=-1) if emit_feed else y)

    record = {"feed_fn": feed_fn, "feed_size": feed_size, "feed_init": feed_init, "emit_feed": emit_feed}
    return _wrapped(cell, init=init, project_inputs=project_inputs, step=step, feed_size=feed_size,
                    output_size=cell.output_size + (feed_size if emit_feed else 0), record=record)


def recurrent_dropout(cell: Cell, rate: float, key, batch_shape) -> Cell:
    """Returns `cell` whose step sees ``h * mask``: one inverted-dropout mask ``[*batch_shape, H_out]``.

    The mask is drawn now, from `key`, in the dtype of ``cell.initial_carry(batch_shape)``; the whole
    carry seen by the base step has the masked h (the GRU's ``z * h`` too), the held carry does not.
    """
    check_rate("recurrent_dropout", rate)
    h0 = carry_h(cell.initial_carry(tuple(batch_shape)))
    mask = dropout_mask(key, rate, h0.shape, h0.dtype)  # [*batch_shape, H_out]

    def step(params, carry, proj_t):
        return cell.step(params, replace_h(carry, carry_h(carry) * mask), proj_t)

    return _wrapped(cell, step=step, record={"recurrent_dropout": rate})


def zoneout(cell: Cell, rate: float, *, train: bool = False) -> Cell:
    """Returns `cell` with zoneout on every carry leaf; the output is the new carry's h.

    Args:
      cell: the base cell.
      rate: the probability that a unit keeps its previous value.
      train: draw per-unit choices (the step's input is then ``(proj_t, key_t)``, see the module
        docstring); False: the expectation ``rate * old + (1 - rate) * new``.
    """
    check_rate("zoneout", rate)

    def mix(old, new, key):
        if key is None:
            return jax.tree.map(lambda n, o: rate * o + (1.0 - rate) * n, new, old)
        leaves, tree = jax.tree.flatten(new)
        keys = jax.random.split(key, len(leaves))
        kept = [jnp.where(jax.random.bernoulli(k, rate, n.shape), o, n)
                for k, n, o in zip(keys, leaves, jax.tree.leaves(old))]
        return jax.tree.unflatten(tree, kept)

    def project_inputs(params, inputs):
        return (cell.project_inputs(params, inputs[0]), inputs[1]) if train else cell.project_inputs(params, inputs)

    def step(params, carry, proj_t):
        proj_t, key = proj_t if train else (proj_t, None)
        new, y = cell.step(params, carry, proj_t)
        new = mix(carry, new, key)
        return new, carry_h(new).astype(y.dtype)

    return _wrapped(cell, project_inputs=project_inputs, step=step, record={"zoneout": rate, "zoneout_train": train})
