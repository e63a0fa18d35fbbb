"""Gradient accumulation: one update from a batch run as `k` micro-batches, equal to the whole batch's.

A masked loss is a sum over real targets divided by their count, so the mean of per-micro-batch means
(what `optax.MultiSteps` averages) weighs a micro-batch of few real tokens as much as a full one and is
not the large batch's gradient. Here each micro-batch contributes its *sums*: the loss sum, the count
and the gradient of the loss sum (times the step's `grad_scale`); after the last one the gradient sum
is divided by the total count, which is exactly the gradient of the whole batch's mean, up to float
rounding (the order of the additions changes).

Micro-batch ``i`` of ``k`` takes rows ``i, i + k, i + 2k, ...`` of every batch-major leaf (a strided
split: a batch whose rows are split over devices in contiguous blocks gives every micro-batch rows from
every device, so no row moves between devices). The carry (truncated BPTT state, batch-major) is split
the same way and the carries leaving the micro-batches are joined back into the batch's row order.
Scalars (rank-0 leaves) go to every micro-batch unchanged. Micro-batch ``i``'s PRNG key is
``fold_in(key, i)``, so with dropout an accumulated step draws other masks than the one-batch step
(without randomness the two agree to rounding).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from rnn_jax.checks import check_size


def check_micro_batches(micro_batches, batch, what: str = "batch") -> int:
    """Returns `micro_batches` after checking it is >= 1 and divides every batch-major leaf of `batch`.

    Shapes are static, so this also runs at trace time inside `jit`.

    Raises:
      ValueError: naming ``micro_batches`` and the leaf whose leading axis it does not divide.
    """
    k = check_size("micro_batches", micro_batches)
    for path, x in jax.tree_util.tree_leaves_with_path(batch):
        if jnp.ndim(x) and jnp.shape(x)[0] % k:
            raise ValueError(f"micro_batches={k} must divide the batch size: {what} leaf "
                             f"{jax.tree_util.keystr(path)} has shape {jnp.shape(x)}")
    return k


def split_micro_batches(tree, k: int):
    """Returns `tree` with each batch-major leaf ``[B, ...]`` as ``[k, B // k, ...]``, row ``j k + i`` at ``[i, j]``.

    Rank-0 leaves are left as they are (`micro_batch` hands them to every micro-batch).
    """
    return jax.tree.map(lambda x: jnp.swapaxes(jnp.reshape(x, (-1, k, *jnp.shape(x)[1:])), 0, 1)
                        if jnp.ndim(x) else x, tree)


def join_micro_batches(tree, k: int):
    """Returns the inverse of `split_micro_batches`: leaves ``[k, B // k, ...]`` back to ``[B, ...]``."""
    return jax.tree.map(lambda x: jnp.reshape(jnp.swapaxes(x, 0, 1), (-1, *jnp.shape(x)[2:])), tree)


def _is_sum(name: str) -> bool:
    return name.endswith("_sum") or name.endswith("_count")


def accumulate_gradients(loss_fn: Callable, params, batch, carry, key, *, micro_batches: int,
                         grad_scale: float = 1.0) -> tuple[Any, tuple]:
    """Returns ``(grads, (loss_sum, count, aux, new_carry))`` of `batch` run as `micro_batches` micro-batches.

    Args:
      loss_fn: ``(params, batch, carry, key) -> (loss_sum, count, aux, new_carry)`` with `aux` a dict of
        scalars (``'outputs'`` already removed): `rnn_jax.training.step`'s contract, checked by the caller.
      params: the parameters.
      batch: a pytree of ``[B, ...]`` arrays (and scalars), ``B`` divisible by `micro_batches`.
      carry: batch-major carry ``[B, ...]`` leaves, or None.
      key: the step's PRNG key (None when there is no randomness); micro-batch ``i`` gets ``fold_in(key, i)``.
      micro_batches: ``k >= 1``.
      grad_scale: multiplies each micro-batch's loss sum before differentiation.

    Returns:
      grads: the gradient of ``grad_scale * total loss_sum / max(total count, 1)``;
      loss_sum, count: totals over the micro-batches (float32 scalars);
      aux: ``*_sum`` / ``*_count`` entries summed, any other entry averaged over the micro-batches;
      new_carry: the carries leaving the micro-batches in the batch's row order (stop-gradient), or None.
    """
    k = check_micro_batches(micro_batches, batch)
    check_micro_batches(k, carry, "carry")
    parts = split_micro_batches(batch, k)
    carries = None if carry is None else split_micro_batches(carry, k)

    def micro(i):
        rows = jax.tree.map(lambda x: x[i] if jnp.ndim(x) else x, parts)
        part_carry = None if carries is None else jax.tree.map(lambda x: x[i], carries)
        part_key = None if key is None else jax.random.fold_in(key, i)

        def objective(p):
            loss_sum, count, aux, new_carry = loss_fn(p, rows, part_carry, part_key)
            return jnp.asarray(loss_sum, jnp.float32) * grad_scale, (loss_sum, count, aux, new_carry)

        grads, (loss_sum, count, aux, new_carry) = jax.grad(objective, has_aux=True)(params)
        sums = {"loss_sum": jnp.asarray(loss_sum, jnp.float32), "count": jnp.asarray(count, jnp.float32),
                **{n: jnp.asarray(v, jnp.float32) for n, v in aux.items()}}
        return grads, sums, jax.lax.stop_gradient(new_carry)

    def body(total, i):
        grads, sums, new_carry = micro(i)
        return jax.tree.map(jnp.add, total, (grads, sums)), new_carry

    zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(lambda: micro(0)[:2]))
    (grads, sums), new_carries = jax.lax.scan(body, zero, jnp.arange(k))
    count = sums.pop("count")
    loss_sum = sums.pop("loss_sum")
    grads = jax.tree.map(lambda g: g / jnp.maximum(count, 1.0), grads)
    aux = {n: v if _is_sum(n) else v / k for n, v in sums.items()}
    new_carry = None if carry is None else join_micro_batches(new_carries, k)
    return grads, (loss_sum, count, aux, new_carry)
