"""Evaluation of one named set: every example once, batches padded to the device count, sums reduced on the host."""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh

from rnn_jax.training import sharding
from rnn_jax.training.step import reduce_metrics
from rnn_jax.training.task import EvalSet


def _real_rows(tree, n: int):
    """`tree`'s leaves on the host, cut to their first `n` rows (the real ones of a padded batch)."""
    return jax.tree.map(lambda x: np.asarray(x)[:n], jax.device_get(tree))


def evaluate_set(eval_step: Callable, state, eval_set: EvalSet, initial_carry: Callable[[int], Any],
                 mesh: Mesh) -> tuple[dict, list]:
    """Returns ``(metrics, outputs)`` of `eval_set` evaluated with `state`.

    Each batch is padded on its batch axis to a multiple of the mesh's devices (`sharding.pad_batch`:
    rows with the mask off), so a one-stream split runs on many devices. With ``eval_set.carry`` the
    recurrent state flows from batch to batch, starting from ``initial_carry(padded_batch_size)``.

    Args:
      eval_step: jitted ``(state, batch, carry) -> (metrics, outputs, carry)``
        (`rnn_jax.training.step.make_carried_eval_step`).
      state: the `TrainState` to evaluate.
      eval_set: the batches.
      initial_carry: the task's ``initial_carry``.
      mesh: the data-parallel mesh.

    Returns:
      metrics: `reduce_metrics` of every batch (``loss``, ``count``, each aux ``X_sum`` as ``X``);
      outputs: ``[(host batch, host outputs)]``, real rows only, if the loss returns ``aux['outputs']``.
    """
    carry, totals, outputs = None, [], []
    for batch in eval_set.batches():
        padded, n = sharding.pad_batch(dict(batch), mesh.size)
        if eval_set.carry and carry is None:
            carry = sharding.shard_batch(initial_carry(int(np.shape(padded["mask"])[0])), mesh)
        metrics, out, new_carry = eval_step(state, sharding.shard_batch(padded, mesh), carry)
        carry = new_carry if eval_set.carry else None
        totals.append(jax.device_get(metrics))
        if out is not None:
            outputs.append((_real_rows(batch, n), _real_rows(out, n)))
    if not totals:
        raise ValueError("an evaluation set yielded no batches")
    return reduce_metrics(totals), outputs
