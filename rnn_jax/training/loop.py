"""The one training loop every task runs on: `train_and_evaluate(task, settings, workdir)`.

A task (`rnn_jax.training.task.Task`) supplies its data, model, loss, optional carried state, host
metrics and end-of-run artifacts. The loop owns everything else:

* the workdir: the configuration snapshot (`rnn_jax.training.workdir`: a workdir written by another
  configuration is refused, naming the fields that differ), ``metrics.jsonl`` and TensorBoard,
  ``results.json``, ``loss_curves.png``;
* initialisation: parameters from ``fold_in(key(seed), 0)``, the train state's base key ``fold_in(key(seed),
  1)`` (each step's key is ``fold_in(base, step)``), end-of-run artifacts get ``fold_in(key(seed), 2)``;
* jit with buffer donation (state and carry), the batch sharded over all devices of a 1-D mesh and the
  state replicated (`rnn_jax.training.sharding`; a training batch that does not divide by the device
  count is an error naming it, evaluation pads);
* every `log_every` steps the training metrics (after the NaN/inf check naming the step), every
  `eval_every` steps an evaluation of the task's dev set, every `save_every` steps an orbax checkpoint
  holding the train state, the data position and the carried state; the last step is always evaluated
  and saved, once;
* resume from the newest checkpoint (exact: same data position, carry and randomness), selection of the
  best checkpoint by `best_metric` (a dev metric, e.g. ``'valid_loss'``), the final evaluation of every
  set with the selected parameters, a progress line with steps/s and ETA.

The loop reads no flags and no config files: an experiment maps its config onto a task and `LoopSettings`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from rnn_jax.checks import check_size
from rnn_jax.training import faults, sharding
from rnn_jax.training.checkpoint import Checkpointer
from rnn_jax.training.evaluation import evaluate_set
from rnn_jax.training.metrics import RESULTS_FILE, MetricWriter, ProgressLine, plot_curves, write_results
from rnn_jax.training.state import create_train_state
from rnn_jax.training.storage import check_free_space, prepare_workdir, tree_bytes
from rnn_jax.training.step import check_finite, make_carried_eval_step, make_carried_train_step, reduce_metrics
from rnn_jax.training.task import Task
from rnn_jax.training.workdir import snapshot_config


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """How the loop runs (plain values; an experiment maps its config onto them).

    Attributes:
      log_every: training metrics every N steps.
      eval_every: dev evaluation every N steps; None: once per epoch (``task.steps_per_epoch``), or only
        at the end when the task has no epochs.
      save_every: checkpoint every N steps; None: at every evaluation.
      keep: how many of the newest checkpoints to keep (the best one is kept besides).
      best_metric: the dev metric that selects the final checkpoint, ``'<dev_set>_<name>'`` (None: the last).
      best_mode: ``'min'`` or ``'max'``.
      seed: the run's seed.
      progress_seconds: at most one progress line per this many seconds.
      tensorboard: also write TensorBoard event files.
      micro_batches: run each training batch as this many micro-batches, accumulating loss sums, counts
        and gradient sums into one update equal to the whole batch's (`rnn_jax.training.accumulation`).
    """

    log_every: int = 50
    eval_every: int | None = None
    save_every: int | None = None
    keep: int = 2
    best_metric: str | None = None
    best_mode: str = "min"
    seed: int = 0
    progress_seconds: float = 30.0
    tensorboard: bool = True
    micro_batches: int = 1

    def __post_init__(self):
        check_size("log_every", self.log_every)
        check_size("micro_batches", self.micro_batches)
        check_size("keep", self.keep)
        for name in ("eval_every", "save_every"):  # None: at each epoch / evaluation
            if getattr(self, name) is not None:
                check_size(name, getattr(self, name))
        if self.best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {self.best_mode!r}")


def _items(position: int, carry) -> dict:
    """The arrays a checkpoint holds beside the train state: the data position and the carry (if any)."""
    items = {"data": {"position": np.asarray(position, np.int64)}}
    if carry is not None:
        items["carry"] = carry
    return items


def _scalars(prefix: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics worth a curve: finite-or-not floats, counts left out, names prefixed."""
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()
            if isinstance(v, (int, float, np.floating)) and k != "count" and not k.endswith("_count")}


class _NoWriter:
    """What processes other than the first write metrics to: nothing."""

    def write(self, step: int, scalars: Mapping[str, Any]) -> None:
        del step, scalars


class _Run:
    """One call of `train_and_evaluate`: the compiled steps, the mesh, the writers, the cadence."""

    def __init__(self, task: Task, settings: LoopSettings, workdir: Path, print_fn: Callable[[str], None]):
        check_size("task.total_steps", task.total_steps)
        if task.dev_set not in task.eval_sets:
            raise ValueError(f"task.dev_set {task.dev_set!r} is not one of its eval_sets {sorted(task.eval_sets)}")
        self.task, self.settings, self.workdir = task, settings, workdir
        self.primary = jax.process_index() == 0  # the one process that prints and writes files
        self.print = print_fn if self.primary else (lambda line: None)
        self.mesh = sharding.make_mesh()
        self.total = task.total_steps
        self.eval_every = settings.eval_every or task.steps_per_epoch or self.total
        self.key = jax.random.key(settings.seed)
        self.train_step = jax.jit(make_carried_train_step(task.loss, micro_batches=settings.micro_batches),
                                  donate_argnums=(0, 2))
        self.eval_step = jax.jit(make_carried_eval_step(task.loss))
        self.ckpt = Checkpointer(workdir, save_every=settings.save_every or self.eval_every, keep=settings.keep,
                                 best_metric=settings.best_metric, best_mode=settings.best_mode)
        self.dev_cache: dict[int, dict] = {}  # step -> dev metrics evaluated in this process

    # --- state
    def initial_carry(self):
        """The carry entering the first batch, as a global array split on the batch axis (None: no carry)."""
        local = self.task.initial_carry(self.local_batch_size)
        return None if local is None else sharding.global_batch(local, self.mesh)

    def start(self):
        """Returns ``(state, position, carry)``: fresh, or restored from the newest checkpoint."""
        task = self.task
        params = task.init(jax.random.fold_in(self.key, 0))
        state = sharding.replicate(create_train_state(params, task.tx, jax.random.fold_in(self.key, 1)), self.mesh)
        first = next(task.train_batches(0, jax.process_index(), jax.process_count()))
        self.local_batch_size = sharding.check_divisible(first, len(self.mesh.local_devices), "training batch")
        carry = self.initial_carry()
        restored = self.ckpt.restore_latest(state, items=_items(0, carry))  # the template of what was saved
        for step, why, moved in self.ckpt.set_aside:
            self.print(f"checkpoint {step} is unreadable ({why}); moved it to {moved}")
        check_free_space(self.workdir, tree_bytes((state, _items(0, carry))), keep=self.settings.keep,
                         existing=len(self.ckpt.all_steps()))  # those set aside are no longer listed
        if restored is None:
            return state, 0, carry
        state, _, items = restored
        position = int(items["data"]["position"])
        self.print(f"resumed from step {int(state.step)} (data position {position}) in {self.workdir}")
        return state, position, items.get("carry")

    # --- evaluation
    def evaluate(self, name: str, state, step: int) -> dict:
        """Returns the metrics of evaluation set `name`: reduced sums and the task's host metrics."""
        metrics, outputs = evaluate_set(self.eval_step, state, self.task.eval_sets[name], self.task.initial_carry,
                                        self.mesh, on_batch=lambda i: faults.reached("evaluation", step) if i == 0 else None)
        return {**metrics, **self.task.eval_metrics(name, metrics, outputs)}

    def evaluate_dev(self, step: int, state) -> dict:
        metrics = self.evaluate(self.task.dev_set, state, step)
        self.dev_cache[step] = metrics
        self.print(f"step {step}: {self.task.dev_set} {describe(metrics)}")
        return metrics

    # --- the loop
    def log_point(self, step: int, state, history: list, carry, position: int, writer, progress) -> None:
        """Reduces and writes the training metrics since the last point; evaluates and saves when due."""
        check_finite(history, step)  # before saving, so the newest checkpoint always predates a divergence
        train = reduce_metrics(history)
        scalars = {**_scalars("train_", {k: v for k, v in train.items() if k != "grad_norm"}),
                   "grad_norm": train["grad_norm"]}
        if self.task.steps_per_epoch:
            scalars["epoch"] = step / self.task.steps_per_epoch
        ranked = None
        if self.is_eval_point(step):
            dev = _scalars(f"{self.task.dev_set}_", self.evaluate_dev(step, state))
            scalars.update(dev)
            ranked = {k: v for k, v in dev.items() if k == self.settings.best_metric}
        writer.write(step, scalars)
        progress.update(step, loss=train["loss"])
        self.ckpt.save(step, state, items=_items(position, carry), metrics=ranked, force=step == self.total)

    def is_eval_point(self, step: int) -> bool:
        return step % self.eval_every == 0 or step == self.total

    def is_log_point(self, step: int) -> bool:
        return step % self.settings.log_every == 0 or self.is_eval_point(step) or self.ckpt.should_save(step)

    def train(self, state, position: int, carry):
        """Runs the steps left; returns the final state."""
        task, start = self.task, int(state.step)
        if start < self.total:
            self.print(f"training steps {start + 1}-{self.total} on {self.mesh.size} device(s), "
                       f"{jax.process_count()} process(es); workdir {self.workdir}")
        batches = task.train_batches(position, jax.process_index(), jax.process_count())
        history = []
        with self.writer() as writer:
            progress = ProgressLine(self.total, every_seconds=self.settings.progress_seconds, start_step=start,
                                    print_fn=self.print)
            for step in range(start + 1, self.total + 1):
                if carry is not None and task.reset_carry(position):
                    carry = self.initial_carry()
                batch = sharding.global_batch(next(batches), self.mesh)
                state, metrics, carry = self.train_step(state, batch, carry)
                faults.reached("train_step", step)
                position += 1
                history.append(metrics)
                if self.is_log_point(step):
                    self.log_point(step, state, history, carry, position, writer, progress)
                    history = []
        self.ckpt.wait()
        return state

    # --- the end
    def select(self, state):
        """Returns ``(step, state)`` of the checkpoint chosen by the best metric (the last without one)."""
        best = self.ckpt.best_step
        if best is None or best == int(state.step):
            return int(state.step), state
        self.print(f"selected step {best} by {self.settings.best_metric} ({self.settings.best_mode})")
        return best, self.ckpt.restore(state, best).state

    def finish(self, state, started: float, config: Mapping[str, Any] | None) -> dict:
        """Evaluates every set with the selected checkpoint; writes artifacts, results.json and curves."""
        step, selected = self.select(state)
        results: dict[str, Any] = {} if config is None else {"config": dict(config)}
        results.update(step=int(state.step), selected_step=step)
        for name in self.task.eval_sets:
            cached = self.dev_cache.get(step) if name == self.task.dev_set else None
            results[name] = cached if cached is not None else self.evaluate(name, selected, step)
        for name in self.task.eval_sets:
            self.print(f"step {step} (selected): {name} {describe(results[name])}")
        if self.primary:  # with several processes, on a host copy of the replicated params: the others wait
            params = selected.params if jax.process_count() == 1 else jax.device_get(selected.params)
            results.update(self.task.artifacts(params, self.workdir, results) or {})
            results["wall_time_s"] = time.time() - started
            write_results(self.workdir, results)
            plot_curves(self.workdir, keys=("train_loss", f"{self.task.dev_set}_loss"))
        sharding.wait_for_all("rnn_jax finish")  # the others wait for process 0's files
        if not self.primary:  # and return what it wrote, so every process returns the same results
            results = json.loads((self.workdir / RESULTS_FILE).read_text(encoding="utf-8"))
        return results

    def writer(self):
        """The metrics writer: ``metrics.jsonl`` and TensorBoard on process 0, nothing on the others."""
        if self.primary:
            return MetricWriter(self.workdir, tensorboard=self.settings.tensorboard, log=False)
        return contextlib.nullcontext(_NoWriter())


def train_and_evaluate(task: Task, settings: LoopSettings, workdir: str | os.PathLike, *,
                       config: Mapping[str, Any] | None = None,
                       print_fn: Callable[[str], None] | None = None) -> dict:
    """Trains `task` in `workdir` (resuming from its newest checkpoint), evaluates, returns the results.

    Args:
      task: what is particular to the experiment (`rnn_jax.training.task.Task`).
      settings: the loop's cadence, selection and seed.
      workdir: the run's directory.
      config: the run's whole configuration as a plain nested dict: snapshotted in ``config.json`` and
        checked against the snapshot when resuming (`rnn_jax.training.workdir.snapshot_config`), and
        stored in results.json.
      print_fn: where the loop's progress and result lines go (default: ``print``, flushed).

    Returns:
      ``{'step', 'selected_step', <set name>: metrics for every eval set, ..., 'wall_time_s'}`` plus the
      task's artifact entries and ``'config'``; the same is written to ``<workdir>/results.json``.
    """
    started = time.time()
    workdir = prepare_workdir(workdir)
    if config is not None:
        snapshot_config(workdir, config, write=jax.process_index() == 0)
    run = _Run(task, settings, workdir, print_fn or (lambda line: print(line, flush=True)))
    try:
        return run.finish(run.train(*run.start()), started, config)
    finally:
        run.ckpt.close()


def describe(metrics: Mapping[str, Any]) -> str:
    """Returns ``'accuracy=0.8512 examples=872 loss=0.3456'``: a set's scalar metrics on one line, counts left out."""
    shown = []
    for k, v in metrics.items():
        if isinstance(v, (bool, np.bool_)) or k == "count" or k.endswith("_count"):
            continue
        if isinstance(v, (int, np.integer)):
            shown.append(f"{k}={v}")
        elif isinstance(v, (float, np.floating)):
            shown.append(f"{k}={v:.4f}" if math.isfinite(v) else f"{k}={v}")
    return " ".join(shown)
