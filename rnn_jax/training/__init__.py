"""Training infrastructure shared by the experiments; plain arguments in, no flags or configs read.

* `rnn_jax.training.loop`: `train_and_evaluate(task, LoopSettings(...), workdir)`, the one training loop
  every experiment runs on (workdir, initialisation, jit, sharding, evaluation, checkpoints, selection,
  results); `rnn_jax.training.task`: `Task` and `EvalSet`, what a task supplies to it.
* `rnn_jax.training.state`: `TrainState` (params, opt_state, step, key), `create_train_state`,
  `make_schedule`, `make_optimizer` (Adam/AdamW/SGD, schedules, clipping by global norm).
* `rnn_jax.training.step`: `make_train_step` / `make_eval_step` over a masked
  ``loss_fn(params, batch, key) -> (loss_sum, count, aux)``, their carried forms for state passed from
  batch to batch, `check_finite`, `reduce_metrics`.
* `rnn_jax.training.evaluation`: `evaluate_set` (every example once, batches padded to the devices).
* `rnn_jax.training.sharding`: `make_mesh`, `shard_batch`, `global_batch`, `pad_batch`, `replicate`
  (data parallelism over all devices on the batch axis).
* `rnn_jax.training.checkpoint`: `Checkpointer` (orbax; the state and array items; keep the last K and
  the best; exact resume).
* `rnn_jax.training.workdir`: the configuration snapshot a resumed run must match (`RESUMABLE_FIELDS`),
  `load_or_build` for files derived once (a vocabulary).
* `rnn_jax.training.storage`: `prepare_workdir` (created and really writable), `check_free_space` (room for
  the checkpoints, before training), `start_over` (discard a run's workdir, explicitly).
* `rnn_jax.training.accumulation`: gradient accumulation over micro-batches by sums (``micro_batches``).
* `rnn_jax.training.faults`: the named moments a crash test stops a run at (a no-op without a hook).
* `rnn_jax.training.metrics`: `MetricWriter` (``metrics.jsonl``, TensorBoard), `ProgressLine`,
  `write_results`, `read_metrics`, `plot_curves`.
* `rnn_jax.training.host`: `keep_host_memory` (glibc malloc reuses freed memory: XLA:CPU's per-call
  buffers stop page-faulting; experiments call it from ``main()``).
"""

from rnn_jax.training.checkpoint import Checkpointer, Restored
from rnn_jax.training.evaluation import evaluate_set
from rnn_jax.training.host import keep_host_memory
from rnn_jax.training.loop import LoopSettings, describe, train_and_evaluate
from rnn_jax.training.metrics import MetricWriter, ProgressLine, plot_curves, read_metrics, write_results
from rnn_jax.training.sharding import (batch_sharding, epoch_rows, global_batch, make_mesh, pad_batch, replicate,
                                       replicated_sharding, shard_batch)
from rnn_jax.training.state import TrainState, create_train_state, make_optimizer, make_schedule
from rnn_jax.training.step import (check_finite, make_carried_eval_step, make_carried_train_step, make_eval_step,
                                   make_train_step, reduce_metrics)
from rnn_jax.training.storage import check_free_space, prepare_workdir, start_over
from rnn_jax.training.task import EvalSet, Task
from rnn_jax.training.workdir import RESUMABLE_FIELDS, load_or_build, read_config, snapshot_config

__all__ = [
    "TrainState", "create_train_state", "make_optimizer", "make_schedule", "make_train_step",
    "make_eval_step", "make_carried_train_step", "make_carried_eval_step", "check_finite", "reduce_metrics",
    "make_mesh", "epoch_rows", "batch_sharding", "replicated_sharding", "shard_batch", "global_batch", "pad_batch",
    "replicate", "Checkpointer", "Restored", "MetricWriter", "ProgressLine", "write_results", "read_metrics",
    "plot_curves", "keep_host_memory", "LoopSettings", "train_and_evaluate", "describe", "Task", "EvalSet",
    "evaluate_set", "RESUMABLE_FIELDS", "load_or_build", "read_config", "snapshot_config", "prepare_workdir",
    "check_free_space", "start_over",
]
