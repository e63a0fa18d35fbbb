"""What a task supplies to the training loop (`rnn_jax.training.loop.train_and_evaluate`).

A task says only what is particular to it; the loop owns the rest (workdir, initialisation, jit,
sharding, evaluation cadence, checkpoints, selection, results). Subclass `Task` and fill in:

* data: `train_batches(position, process_index, process_count)`, an iterator of this process's part of
  each global training batch, starting at global batch number `position` (so resuming is exact and no
  two processes read the same rows); `eval_sets`, named `EvalSet`s (the `dev_set` is evaluated
  periodically and selects the checkpoint; every set is evaluated at the end with the selected one);
* model: `init(key) -> params` and `loss(params, batch, carry, key) -> (loss_sum, count, aux, carry)`
  (`rnn_jax.training.step`: masked sums, ``key`` None at evaluation; ``aux['outputs']`` for host metrics);
* optional carried state (truncated BPTT): `initial_carry(batch_size)` (leaves batch-major,
  ``[batch, ...]``) and `reset_carry(position)`; None means the task carries nothing;
* the optimiser `tx`, the run length `total_steps` and, if it has epochs, `steps_per_epoch`;
* host-side metrics `eval_metrics(name, metrics, outputs)` and end-of-run `artifacts(params, workdir,
  results)` (samples, plots, prediction files).

Every batch is a dict of arrays whose leading axis is the batch and which holds a ``'mask'`` entry
(``[B]`` or ``[B, T]``) marking real examples or tokens: evaluation pads batches to a multiple of the
device count by repeating the last row with the mask off, so the loss must count only masked-in entries.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import optax


class EvalSet(NamedTuple):
    """A named evaluation set: its batches, read afresh on each evaluation.

    Attributes:
      batches: ``() -> iterable of batch dicts`` (each with a ``'mask'``), covering every example once.
      carry: pass the recurrent state from one batch to the next (a split read as parallel streams,
        all batches of the same size); otherwise no state enters any batch.
    """

    batches: Callable[[], Iterable[Mapping[str, Any]]]
    carry: bool = False


class Task:
    """The base of every task: defaults for the optional parts; the rest raises until a subclass fills it.

    Attributes (set by the subclass, usually in ``__init__``):
      tx: the optax optimiser.
      total_steps: training steps of the run (>= 1).
      steps_per_epoch: batches per pass over the training data, or None (then ``eval_every=None``
        evaluates only at the end, and no ``epoch`` metric is written).
      eval_sets: ``{name: EvalSet}``.
      dev_set: the name of the set evaluated periodically and used for selection.
    """

    tx: optax.GradientTransformation
    total_steps: int
    steps_per_epoch: int | None = None
    eval_sets: Mapping[str, EvalSet] = {}
    dev_set: str = "valid"

    # --- data
    def train_batches(self, position: int, process_index: int, process_count: int) -> Iterator[dict]:
        """Returns an endless iterator of this process's rows of global batches `position`, `position` + 1, ..."""
        raise NotImplementedError

    # --- model
    def init(self, key) -> Any:
        """Returns the model's parameters."""
        raise NotImplementedError

    def loss(self, params, batch, carry, key) -> tuple:
        """Returns ``(loss_sum, count, aux, carry)`` for one batch (`rnn_jax.training.step`)."""
        raise NotImplementedError

    # --- carried state (truncated BPTT)
    def initial_carry(self, batch_size: int) -> Any:
        """Returns the state entering a stream's first batch, leaves ``[batch_size, ...]``; None: no state."""
        del batch_size
        return None

    def reset_carry(self, position: int) -> bool:
        """Returns whether global training batch `position` starts new streams (the carry resets to initial)."""
        del position
        return False

    # --- host side
    def eval_metrics(self, name: str, metrics: Mapping[str, float],
                     outputs: Sequence[tuple[Mapping[str, Any], Any]]) -> dict:
        """Returns further metrics of evaluation set `name` (e.g. perplexity, a confusion matrix).

        Args:
          name: the set's name.
          metrics: the reduced sums (``loss``, and ``X`` for every ``X_sum`` of the loss's aux).
          outputs: ``(batch, outputs)`` pairs on the host, real rows only, when the loss's aux has
            ``'outputs'``; else empty.
        """
        del name, metrics, outputs
        return {}

    def artifacts(self, params, workdir: str | os.PathLike, results: Mapping[str, Any]) -> dict:
        """Writes end-of-run files (samples, plots, predictions) and returns entries for results.json."""
        del params, workdir, results
        return {}
