"""The run's workdir: the configuration snapshot a resumed run must match, and files built once per run.

A run writes its configuration (a plain nested dict, e.g. ``ConfigDict.to_dict()``) to
``<workdir>/config.json`` the first time. A later run in the same workdir resumes it only if its
configuration equals the snapshot in every field except those in `RESUMABLE_FIELDS`, the settings that
may change on resume without changing what is being trained; anything else (other model sizes, another
task or dataset) is refused with an error naming the fields that differ, so a workdir is never silently
reused by a different experiment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import jax

CONFIG_FILE = "config.json"

# The one list of configuration fields that may differ between a run and the workdir it resumes: the step
# budget, the evaluation / logging / checkpoint cadence, where the data are read from and how much is
# printed. Matched on the last component of a dotted name, so a field nested in a sub-config counts too.
RESUMABLE_FIELDS = frozenset({
    "steps", "epochs", "eval_every", "log_every", "save_every", "progress_seconds", "data_dir", "verbosity",
    "keep_checkpoints", "micro_batches", "start_over",
})

T = TypeVar("T")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Returns ``{'a.b.c': value}``: the leaves of a nested mapping under dotted names."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Returns ``['name: saved -> current', ...]`` for the fields that differ, resumable ones left out."""
    a, b = flatten(saved), flatten(json.loads(json.dumps(current, default=str)))
    names = sorted(set(a) | set(b))
    missing = "<absent>"
    return [f"{n}: {a.get(n, missing)!r} -> {b.get(n, missing)!r}" for n in names
            if a.get(n, missing) != b.get(n, missing) and n.rsplit(".", 1)[-1] not in RESUMABLE_FIELDS]


def snapshot_config(workdir: str | os.PathLike, config: Mapping[str, Any], *, write: bool = True) -> Path:
    """Returns the path of the workdir's config snapshot, written now or checked against `config`.

    Writes ``<workdir>/config.json`` on a fresh workdir; on one that has it, rewrites it with `config`
    (so resumable fields record their latest values) after checking that nothing else differs. With
    ``write=False`` (every process but the first of a multi-process run) it only checks an existing one.

    Raises:
      ValueError: naming every differing field, when the workdir was written by another configuration.
    """
    path = Path(workdir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        differences = config_differences(json.loads(path.read_text(encoding="utf-8")), config)
        if differences:
            raise ValueError(
                f"workdir {path.parent} was written by another configuration; these fields differ (saved -> "
                f"now): {'; '.join(differences)}. Use another --workdir, or the saved settings to resume. "
                f"Fields that may change on resume: {sorted(RESUMABLE_FIELDS)}; start_over=True discards the "
                f"workdir's previous run.")
    if write:
        _write_atomically(path, lambda tmp: tmp.write_text(json.dumps(config, indent=1, sort_keys=True, default=str)
                                                           + "\n", encoding="utf-8"))
    return path


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Calls ``write(tmp)`` for a temporary file beside `path`, then renames it onto `path` (atomic)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_config(workdir: str | os.PathLike) -> dict:
    """Returns the configuration snapshot of `workdir` (see `snapshot_config`).

    Raises:
      FileNotFoundError: when the workdir holds none (no run has started there).
    """
    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: no run has been started in {Path(workdir)} (train first)")
    return json.loads(path.read_text(encoding="utf-8"))


def load_or_build(path: str | os.PathLike, load: Callable[[Path], T], build: Callable[[], T],
                  save: Callable[[T, Path], Any]) -> T:
    """Returns ``load(path)`` if `path` exists, else ``build()``, saved to `path` first.

    For what a run derives once from its data and must reuse when it resumes (a vocabulary built from
    the training split): a resumed run then sees exactly the ids the checkpoint was trained with. The
    file is written atomically and only by process 0 (`build` must be deterministic: every process of a
    multi-process run builds the same value, and one that finds the file loads it).
    """
    path = Path(path)
    if path.exists():
        return load(path)
    value = build()
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, lambda tmp: save(value, tmp))
    return value
