"""Named moments of a training run where a test can stop the process deterministically.

The loop calls `reached(point, step)` at each of `POINTS`; without a hook (always, outside tests) that is
a no-op. A crash test installs a hook in the child process it will kill (`set_hook`), e.g. one that
announces the moment on stdout and then sleeps, so the parent sends ``SIGKILL`` exactly there and never
races the run:

* ``'train_step'``: step `step`'s update has been dispatched and is computing (its metrics not read yet);
* ``'checkpoint_write'``: step `step`'s asynchronous checkpoint is being written: the hook runs in
  orbax's commit thread, after the arrays were handed over and before the step directory is renamed into
  place, so the write stays unfinished while the hook holds it;
* ``'evaluation'``: the evaluation at step `step` has computed its first batch.

The library never installs a hook; reading the hook is the only cost (one global lookup per call).
"""

from __future__ import annotations

from typing import Callable

POINTS = ("train_step", "checkpoint_write", "evaluation")

Hook = Callable[[str, int], None]
_hook: Hook | None = None


def set_hook(hook: Hook | None) -> None:
    """Installs ``hook(point, step)``, called at every point of `POINTS` the run reaches (None removes it)."""
    global _hook
    _hook = hook


def armed() -> bool:
    """Returns whether a hook is installed (the checkpoint writer adds its commit-thread point only then)."""
    return _hook is not None


def reached(point: str, step: int) -> None:
    """Calls the installed hook with ``(point, step)``; a no-op without one.

    Raises:
      ValueError: for a point not in `POINTS` (a typo in the loop would otherwise never fire).
    """
    if point not in POINTS:
        raise ValueError(f"point must be one of {POINTS}, got {point!r}")
    if _hook is not None:
        _hook(point, int(step))
