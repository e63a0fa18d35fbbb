"""Whether a workdir can take a run, checked before training; and discarding a workdir's previous run.

A run that cannot write its checkpoints should fail in its first second, not after an hour:

* `prepare_workdir` creates the directory and writes, fsyncs and removes a probe file in it, so a path
  that is a file, a read-only mount or a directory without permission is an error naming the path and
  the operating system's reason (the probe really writes: permission bits alone prove nothing for root);
* `check_free_space` compares the file system's free space (``statvfs``: blocks available to this user)
  with what the checkpoints still to come need: ``checkpoint_bytes`` times the checkpoints that will be
  on disk at once (`keep` + the best + one being written), less those already there;
* `start_over` discards a previous run in the workdir (its config snapshot, checkpoints, metrics and
  outputs) when asked explicitly, and only in a directory a run wrote (one holding ``config.json``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from rnn_jax.training.sharding import wait_for_all
from rnn_jax.training.state import is_typed_key
from rnn_jax.training.workdir import CONFIG_FILE


def prepare_workdir(workdir: str | os.PathLike) -> Path:
    """Returns `workdir` as a `Path` after creating it and proving a file can be written there.

    Raises:
      ValueError: naming the path and the reason when it is a file, cannot be created or is not writable.
    """
    path = Path(workdir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"workdir {path} is a file, not a directory: pass a directory for the run's outputs")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"rnn_jax")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as error:
        raise ValueError(f"workdir {path} cannot be written ({error.strerror or error}): checkpoints, metrics "
                         f"and results go there; pass a writable --workdir") from error
    return path


def tree_bytes(tree: Any) -> int:
    """Returns the bytes of a pytree's arrays (a checkpoint's size before compression)."""
    def nbytes(x) -> int:
        if is_typed_key(x):  # a typed key is saved as its key data
            x = jax.random.key_data(x)
        return int(np.prod(np.shape(x), dtype=np.int64)) * np.dtype(x.dtype).itemsize

    return sum(nbytes(x) for x in jax.tree.leaves(tree) if hasattr(x, "dtype"))


def check_free_space(workdir: str | os.PathLike, checkpoint_bytes: int, *, keep: int, existing: int = 0,
                     statvfs: Callable[[str], Any] | None = None) -> int:
    """Returns the free bytes under `workdir` after checking they hold the checkpoints still to come.

    Args:
      workdir: an existing directory.
      checkpoint_bytes: one checkpoint's size (`tree_bytes` of the state and items).
      keep: the checkpoints kept besides the best one.
      existing: checkpoints already on disk there (a resumed run).
      statvfs: ``os.statvfs`` by default (a stand-in in tests).

    Raises:
      ValueError: naming the free and the needed space.
    """
    stat = (statvfs or os.statvfs)(os.fspath(workdir))
    free = int(stat.f_bavail) * int(stat.f_frsize)
    needed = int(checkpoint_bytes) * max(keep + 2 - existing, 1)
    if free < needed:
        raise ValueError(
            f"workdir {workdir} has {free / 2**20:.1f} MiB free, but its checkpoints need about "
            f"{needed / 2**20:.1f} MiB ({checkpoint_bytes / 2**20:.1f} MiB each, up to {keep + 2} on disk at once "
            f"with keep={keep}); free some space, keep fewer checkpoints or use another --workdir")
    return free


def start_over(workdir: str | os.PathLike) -> bool:
    """Deletes the previous run in `workdir` (everything in it) if a run wrote it; returns whether it did.

    Only a directory holding a run's ``config.json`` is emptied (process 0 deletes; with several processes
    all wait for it); any other non-empty directory is refused, so a mistyped path never loses files.

    Raises:
      ValueError: when `workdir` is a non-empty directory no run wrote.
    """
    path = Path(workdir)
    if not path.is_dir():
        return False
    if not (path / CONFIG_FILE).exists():
        if any(path.iterdir()):
            raise ValueError(f"start_over: {path} holds files but no {CONFIG_FILE}, so no run wrote it; "
                             f"refusing to delete them")
        return False
    if jax.process_index() == 0:
        for entry in path.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    wait_for_all("rnn_jax start_over")
    return True
