"""Evaluation of one named set: every example once, batches padded to the device count, sums reduced on the host."""

from __future__ import annotations

from typing import Any, Callable

import jax
from jax.experimental import multihost_utils
import numpy as np
from jax.sharding import Mesh

from rnn_jax.training import sharding
from rnn_jax.training.step import reduce_metrics
from rnn_jax.training.task import EvalSet


def _real_rows(tree, n: int, gather: bool = False):
    """`tree`'s leaves on the host, cut to their first `n` rows (the real ones of a padded batch); with
    `gather`, global arrays split over processes are gathered first (every process sees all rows, in order)."""
    if gather and jax.process_count() > 1:
        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(lambda x: np.asarray(x)[:n], jax.device_get(tree))


def evaluate_set(eval_step: Callable, state, eval_set: EvalSet, initial_carry: Callable[[int], Any],
                 mesh: Mesh, on_batch: Callable[[int], None] | None = None) -> tuple[dict, list]:
    """Returns ``(metrics, outputs)`` of `eval_set` evaluated with `state`.

    Each batch is padded on its batch axis to a multiple of the mesh's devices (`sharding.pad_batch`:
    rows with the mask off), so a one-stream split runs on many devices. With several processes each
    process places only its own rows of every (padded) batch (`sharding.process_rows`), so across
    processes every example is evaluated exactly once; the sums are global and the host outputs are
    gathered from all processes. With ``eval_set.carry`` the recurrent state flows from batch to batch,
    starting from ``initial_carry(rows)`` for this process's rows.

    Args:
      eval_step: jitted ``(state, batch, carry) -> (metrics, outputs, carry)``
        (`rnn_jax.training.step.make_carried_eval_step`).
      state: the `TrainState` to evaluate.
      eval_set: the batches.
      initial_carry: the task's ``initial_carry``.
      mesh: the data-parallel mesh.
      on_batch: called with each batch's index once it is computed (the loop's fault point).

    Returns:
      metrics: `reduce_metrics` of every batch (``loss``, ``count``, each aux ``X_sum`` as ``X``);
      outputs: ``[(host batch, host outputs)]``, real rows only, if the loss returns ``aux['outputs']``.
    """
    carry, totals, outputs = None, [], []
    for i, batch in enumerate(eval_set.batches()):
        padded, n = sharding.pad_batch(dict(batch), mesh.size)
        local = sharding.process_rows(padded, jax.process_index(), jax.process_count())
        if eval_set.carry and carry is None:
            carry = sharding.global_batch(initial_carry(int(np.shape(local["mask"])[0])), mesh)
        metrics, out, new_carry = eval_step(state, sharding.global_batch(local, mesh), carry)
        carry = new_carry if eval_set.carry else None
        totals.append(jax.device_get(metrics))
        if out is not None:
            outputs.append((_real_rows(batch, n), _real_rows(out, n, gather=True)))
        if on_batch is not None:
            on_batch(i)
    if not totals:
        raise ValueError("an evaluation set yielded no batches")
    return reduce_metrics(totals), outputs
