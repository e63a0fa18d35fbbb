"""Training infrastructure shared by the experiments; plain arguments in, no flags read.

* `rnn_jax.training.state`: `TrainState` (params, opt_state, step, key), `create_train_state`,
  `make_schedule`, `make_optimizer` (Adam/AdamW/SGD, schedules, clipping by global norm).
* `rnn_jax.training.step`: `make_train_step` / `make_eval_step` over a masked
  ``loss_fn(params, batch, key) -> (loss_sum, count, aux)``, `check_finite`, `reduce_metrics`.
* `rnn_jax.training.sharding`: `make_mesh`, `shard_batch`, `replicate` (data parallelism over all
  devices on the batch axis).
* `rnn_jax.training.checkpoint`: `Checkpointer` (orbax; keep the last K and the best; exact resume).
* `rnn_jax.training.metrics`: `MetricWriter` (log, ``metrics.jsonl``, TensorBoard), `ProgressLine`,
  `write_results`, `read_metrics`, `plot_curves`.
* `rnn_jax.training.host`: `keep_host_memory` (glibc malloc reuses freed memory: XLA:CPU's per-call
  buffers stop page-faulting; experiments call it from ``main()``).

A loop, in outline (an experiment fills in data, model and flags)::

    tx = make_optimizer('adam', 2e-3, schedule='cosine', total_steps=n, clip_norm=5.0)
    state = replicate(create_train_state(params, tx, jax.random.key(seed)), mesh)
    ckpt = Checkpointer(workdir, save_every=500, keep=3, best_metric='valid_loss')
    state, extra = ckpt.restore_latest(state) or (state, {'data_position': 0})
    train_step = jax.jit(make_train_step(loss_fn), donate_argnums=0)
    for step in range(int(state.step) + 1, n + 1):
        state, m = train_step(state, shard_batch(next(batches), mesh))
        history.append(m)
        if step % log_every == 0 or ckpt.should_save(step) or step == n:
            check_finite(history, step)       # names the first bad step; before saving, so the
            train = reduce_metrics(history)   # newest checkpoint always predates a divergence
            history = []
            writer.write(step, {f'train_{k}': v for k, v in train.items()})
            ckpt.save(step, state, extra={'data_position': ...}, metrics={'valid_loss': ...},
                      force=step == n)
"""

from rnn_jax.training.checkpoint import Checkpointer
from rnn_jax.training.host import keep_host_memory
from rnn_jax.training.metrics import MetricWriter, ProgressLine, plot_curves, read_metrics, write_results
from rnn_jax.training.sharding import (batch_sharding, make_mesh, replicate, replicated_sharding,
                                       shard_batch)
from rnn_jax.training.state import TrainState, create_train_state, make_optimizer, make_schedule
from rnn_jax.training.step import check_finite, make_eval_step, make_train_step, reduce_metrics

__all__ = [
    "TrainState", "create_train_state", "make_optimizer", "make_schedule", "make_train_step",
    "make_eval_step", "check_finite", "reduce_metrics", "make_mesh", "batch_sharding",
    "replicated_sharding", "shard_batch", "replicate", "Checkpointer", "MetricWriter", "ProgressLine",
    "write_results", "read_metrics", "plot_curves", "keep_host_memory",
]
