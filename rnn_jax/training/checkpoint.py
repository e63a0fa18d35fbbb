"""Checkpoints in the workdir: `Checkpointer`, a thin layer over `orbax.checkpoint.CheckpointManager`.

Each checkpoint is a step directory ``<workdir>/checkpoints/<step>/`` holding the train state's arrays
(``state``: params, opt_state, step, key), optional array ``items`` saved beside it (the training loop
keeps the data position and any carried recurrent state there) and a JSON ``extra`` (small host values).
Writes are orbax's own: each goes to a temporary directory renamed into place once complete, so a run
killed at any moment leaves only whole checkpoints (stale temporary directories are removed when the
next `Checkpointer` opens the directory). Saves are asynchronous: the arrays are copied off the state
before `save` returns, so the caller may donate the state to the next step at once.

Resume contract: `restore_latest` returns exactly the saved params, opt_state, step, key and items, and
the saved `extra`, so a run that restores, repositions its data and continues produces bit-for-bit the
same curve as one that never stopped (checked in tests/training, also across ``kill -9``).
"""

from __future__ import annotations

import logging as logging_lib
import math
import os
from typing import Any, Mapping, NamedTuple

from absl import logging
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

from rnn_jax.checks import check_size
from rnn_jax.training import faults
from rnn_jax.training.checkpoint_check import layout_differences, saved_layout, set_aside, template_layout
from rnn_jax.training.sharding import wait_for_all
from rnn_jax.training.state import TrainState, is_typed_key


class Restored(NamedTuple):
    """What `Checkpointer.restore` returns: the train state, the JSON extra and the array items (or None)."""

    state: TrainState
    extra: dict
    items: dict | None


class _UnrankedSaveFilter(logging_lib.Filter):
    """Drops orbax's warning for a save without metrics under best-retention: unranked saves are by design
    here (a checkpoint between evaluations is kept while among the last `keep`)."""

    def filter(self, record) -> bool:
        return "did not provide metrics" not in record.getMessage()


_UNRANKED_FILTER = _UnrankedSaveFilter()


class _ExtraHandler(ocp.JsonCheckpointHandler):
    """orbax's JSON handler for the ``extra`` item; with a fault hook installed (tests only) it adds one
    commit future that calls ``faults.reached('checkpoint_write', step)`` in orbax's commit thread, so the
    step directory is not renamed into place while the hook holds it."""

    async def async_save(self, directory, item=None, args=None):
        futures = list(await super().async_save(directory, item, args) or [])
        if faults.armed():
            step = int(str(directory.parent.name).split(".", 1)[0])  # ``<step>.orbax-checkpoint-tmp-...``

            async def reach():
                faults.reached("checkpoint_write", step)

            futures.append(ocp.future.CommitFutureAwaitingContractedSignals(reach(), name="rnn_jax_fault"))
        return futures


def _abstract(tree):
    """The shapes, dtypes and shardings of `tree`'s arrays: what orbax restores into."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _to_tree(state: TrainState) -> dict:
    """The saved form: arrays only (a typed key becomes its uint32 key data)."""
    key = jax.random.key_data(state.key) if is_typed_key(state.key) else state.key
    return {"params": state.params, "opt_state": state.opt_state, "step": state.step, "key": key}


def _registry() -> ocp.handlers.DefaultCheckpointHandlerRegistry:
    """The handlers of a checkpoint's three items: orbax's standard ones, `_ExtraHandler` for ``extra``."""
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    for name in ("state", "items"):
        handler = ocp.StandardCheckpointHandler()
        registry.add(name, ocp.args.StandardSave, handler)
        registry.add(name, ocp.args.StandardRestore, handler)
    extra = _ExtraHandler()
    registry.add("extra", ocp.args.JsonSave, extra)
    registry.add("extra", ocp.args.JsonRestore, extra)
    return registry


class Checkpointer:
    """Saves every `save_every` steps, keeps the last `keep` and the best by `best_metric`, restores.

    Args:
      workdir: the run's directory; checkpoints go to ``<workdir>/<subdir>``.
      save_every: `should_save(step)` is true on multiples of it (>= 1).
      keep: how many of the most recent checkpoints to keep (>= 1).
      best_metric: a key of the `metrics` passed to `save` (e.g. ``'valid_loss'``); the best checkpoint by
        it is kept too, beyond the last `keep`. None keeps the last `keep` only.
      best_mode: ``'min'`` or ``'max'``: which value of `best_metric` is best.
      async_save: write in a background thread (orbax's default); `wait` blocks until writes finish.

    Use as a context manager, or call `close` at the end (which waits for pending writes).
    """

    def __init__(self, workdir: str | os.PathLike, *, save_every: int, keep: int = 3,
                 best_metric: str | None = None, best_mode: str = "min", subdir: str = "checkpoints",
                 async_save: bool = True):
        check_size("save_every", save_every)
        check_size("keep", keep)
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
        self.directory = os.path.abspath(os.path.join(os.fspath(workdir), subdir))
        self.save_every, self.keep = save_every, keep
        self.best_metric, self.best_mode = best_metric, best_mode
        policies = [ocm.LatestN(n=keep)]
        best_fn = None
        if best_metric is not None:
            best_fn = lambda m: m[best_metric]  # noqa: E731
            # BestN sorts ascending and keeps the tail: descending (reverse) keeps the minimum
            policies.append(ocm.BestN(get_metric_fn=best_fn, reverse=(best_mode == "min"), n=1,
                                      keep_checkpoints_without_metrics=False))
        options = ocp.CheckpointManagerOptions(
            create=True, cleanup_tmp_directories=True, enable_async_checkpointing=async_save,
            best_fn=best_fn, best_mode=best_mode, preservation_policy=ocm.AnyPreservationPolicy(policies))
        self._manager = ocp.CheckpointManager(self.directory, options=options, handler_registry=_registry())
        self.set_aside: list[tuple[int, str, str]] = []  # (step, why, where) of unreadable checkpoints moved
        if best_metric is not None:
            logging.get_absl_logger().addFilter(_UNRANKED_FILTER)  # adding the same filter twice is a no-op

    # --- queries
    def should_save(self, step: int) -> bool:
        """Returns whether `step` is a multiple of `save_every`."""
        return int(step) % self.save_every == 0

    @property
    def latest_step(self) -> int | None:
        """The newest saved step (pending asynchronous writes included), or None."""
        return self._manager.latest_step()

    @property
    def best_step(self) -> int | None:
        """The step with the best `best_metric` among those kept, or None (also if no best_metric)."""
        return None if self.best_metric is None else self._manager.best_step()

    def all_steps(self) -> list[int]:
        """Returns the kept steps, ascending."""
        return sorted(self._manager.all_steps())

    # --- save and restore
    def save(self, step: int, state: TrainState, *, items: Mapping[str, Any] | None = None,
             extra: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
             force: bool = False) -> bool:
        """Returns True if it saved `state` as step `step`; False if not due or that step exists.

        Args:
          step: the state's step (``int(state.step)``); saved when `should_save(step)` or `force`
            (use ``force=True`` for the final step).
          state: the `TrainState`.
          items: further pytrees of arrays saved beside the state, by name, e.g. ``{'data': {'position':
            array}, 'carry': recurrent_state}``: orbax writes them as arrays (with their shardings), in
            the same atomic step directory. `restore` needs a template of the same names and structure.
          extra: JSON-serialisable dict restored alongside the state (small host values, e.g. a
            vocabulary path).
          metrics: scalars by name; ``metrics[best_metric]`` (if present and finite) ranks the
            checkpoint for best-retention. A checkpoint without it is kept only while among the last
            `keep`.

        Raises:
          ValueError: if `step` is not the state's step.
        """
        step = int(step)
        if not (force or self.should_save(step)):
            return False
        if step in self._manager.all_steps():
            return False
        if int(jax.device_get(state.step)) != step:
            raise ValueError(f"save(step={step}) got a state at step {int(state.step)}")
        ranked = None
        if self.best_metric is not None and metrics is not None and self.best_metric in metrics:
            value = float(jax.device_get(metrics[self.best_metric]))
            if math.isfinite(value):
                ranked = {k: float(jax.device_get(v)) for k, v in metrics.items()}
        parts = {"state": ocp.args.StandardSave(_to_tree(state)), "extra": ocp.args.JsonSave(dict(extra or {}))}
        if items:
            parts["items"] = ocp.args.StandardSave(dict(items))
        args = ocp.args.Composite(**parts)
        return bool(self._manager.save(step, args=args, metrics=ranked, force=True))

    def restore(self, template_state: TrainState, step: int, *,
                items: Mapping[str, Any] | None = None) -> "Restored":
        """Returns `Restored` ``(state, extra, items)`` saved at `step`, with the templates' shapes and shardings.

        Args:
          template_state: a `TrainState` of the same structure (e.g. a freshly created one); its `tx`
            is carried over, its arrays only give shapes, dtypes and placement.
          step: a kept step (see `all_steps`).
          items: templates of the `items` saved with the state (same names and structures), or None to
            restore the state only (``Restored.items`` is then None).
        """
        self.wait()
        parts = {"state": ocp.args.StandardRestore(_abstract(_to_tree(template_state))),
                 "extra": ocp.args.JsonRestore()}
        if items:
            parts["items"] = ocp.args.StandardRestore(_abstract(dict(items)))
        restored = self._manager.restore(int(step), args=ocp.args.Composite(**parts))
        tree = restored["state"]
        key = tree["key"]
        if is_typed_key(template_state.key):
            key = jax.random.wrap_key_data(key, impl=jax.random.key_impl(template_state.key))
        state = template_state.replace(params=tree["params"], opt_state=tree["opt_state"], step=tree["step"],
                                       key=key)
        return Restored(state, dict(restored["extra"] or {}), dict(restored["items"]) if items else None)

    def restore_latest(self, template_state: TrainState, *,
                       items: Mapping[str, Any] | None = None) -> "Restored | None":
        """Returns `Restored` of the newest readable checkpoint (see `restore`), or None if there is none.

        A checkpoint whose arrays cannot be read (a truncated or corrupted file) is moved aside to
        ``<directory>.unreadable/`` with a warning naming it and why, and the previous one is tried; each
        is recorded in `set_aside` as ``(step, why, new path)``. Nothing is deleted.

        Raises:
          ValueError: when the newest checkpoint's arrays read fine but differ from the templates (names,
            shapes or dtypes): it was written by another run, so no older one would be right either.
        """
        self.wait()
        for step in sorted(self._manager.all_steps(), reverse=True):
            why = self._unreadable(step, template_state, items)
            if why is None:
                try:
                    return self.restore(template_state, step, items=items)
                except Exception as error:  # noqa: BLE001 - the layout matched, so the data are damaged
                    why = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            moved = self._set_aside(step)
            self.set_aside.append((step, why, moved))
            logging.warning("checkpoint %d in %s is unreadable (%s); moved it to %s and trying the previous one",
                            step, self.directory, why, moved)
        return None

    def _unreadable(self, step: int, template_state: TrainState, items) -> str | None:
        """Returns why checkpoint `step` cannot be read, None if its layout matches; raises for another run's."""
        parts = {"state": _to_tree(template_state), **({"items": dict(items)} if items else {})}
        for name, tree in parts.items():
            saved = saved_layout(os.path.join(self.directory, str(step), name))
            if saved is None:
                return f"the metadata of its {name!r} arrays cannot be read"
            differences = layout_differences(saved, template_layout(tree))
            if differences:
                raise ValueError(
                    f"checkpoint {step} in {self.directory} was written by another run: its {name!r} arrays differ "
                    f"from this run's ({'; '.join(differences)}). Use another workdir, or remove its checkpoints "
                    f"to start over.")
        return None

    def _set_aside(self, step: int) -> str:
        """Moves step `step` aside (process 0 only; every process waits for it) and reloads the manager."""
        target = f"{self.directory}.unreadable/<moved by process 0>"
        if jax.process_index() == 0:
            target = os.fspath(set_aside(self.directory, step))
        wait_for_all(f"rnn_jax set aside checkpoint {step}")
        self._manager.reload()
        return target

    # --- lifetime
    def wait(self) -> None:
        """Blocks until every pending asynchronous write is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending writes and releases orbax's threads."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
