"""Which saved checkpoint a run may resume from: layouts compared before restoring, unreadable ones set aside.

Two failures look alike inside orbax (both raise ``ValueError`` from deep in TensorStore) but call for
opposite answers, so they are told apart before anything is restored:

* **another run's checkpoint** (other model sizes, another task): the saved arrays' metadata read fine
  but their names, shapes or dtypes differ from this run's state. Falling back to an older checkpoint
  would be wrong (it was written by the same other run), so `layout_differences` names the arrays and
  the caller raises.
* **an unreadable checkpoint** (a truncated or corrupted file: a disk that filled, a copy cut short):
  its metadata cannot be read, or it matches and the arrays still fail to load. The caller moves it
  aside with `set_aside` (to ``<workdir>/<subdir>.unreadable/``: renamed, never deleted, nothing else in
  the workdir touched) and tries the previous one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath


def saved_layout(item_dir: str | os.PathLike) -> dict[str, tuple] | None:
    """Returns ``{'params/w': (shape, dtype name)}`` of the arrays saved in one checkpoint item, or None.

    Reads only orbax's metadata (``_METADATA``), never the arrays; None when it is missing or unreadable.
    """
    try:
        metadata = ocp.StandardCheckpointHandler().metadata(epath.Path(os.fspath(item_dir)))
    except Exception:  # noqa: BLE001 - any failure to read the metadata means an unreadable checkpoint
        return None
    tree = getattr(metadata, "tree", None)
    if tree is None:
        return None
    return {_name(path): (tuple(leaf.shape), np.dtype(leaf.dtype).name)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def template_layout(tree: Any) -> dict[str, tuple]:
    """Returns the layout (as `saved_layout`) of a pytree of arrays: what restoring into it expects."""
    return {_name(path): (tuple(np.shape(x)), np.dtype(x.dtype).name)
            for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def layout_differences(saved: Mapping[str, tuple], expected: Mapping[str, tuple], limit: int = 6) -> list[str]:
    """Returns lines naming the arrays that are missing, extra or of another shape or dtype (at most `limit`;
    the parameters' first, as they say most about which model wrote the checkpoint)."""
    names = sorted(set(saved) | set(expected), key=lambda n: (not n.startswith("params/"), n))
    lines = [f"{n}: saved {_shown(saved.get(n))}, this run {_shown(expected.get(n))}"
             for n in names if saved.get(n) != expected.get(n)]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def set_aside(directory: str | os.PathLike, step: int) -> Path:
    """Returns where step `step`'s directory under `directory` was moved: ``<directory>.unreadable/<step>-<time>``.

    A rename on the same file system (atomic, nothing copied or deleted); the caller reloads its manager.
    """
    source = Path(directory) / str(step)
    target = Path(f"{os.fspath(directory)}.unreadable") / f"{step}-{time.strftime('%Y%m%dT%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    return target


def _name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def _shown(entry) -> str:
    return "absent" if entry is None else f"{entry[1]}{list(entry[0])}"
