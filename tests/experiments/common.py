"""What the experiments' end-to-end tests share: smoke configs on the staged data, and a deterministic crash."""

import os
from pathlib import Path

import pytest

from tests.data import DATA_DIR


def smoke_config(configs, variant: str = "smoke", **overrides):
    """Returns ``configs.get_config(variant)`` reading the staged data, with `overrides`."""
    config = configs.get_config(variant)
    config.data_dir = None if DATA_DIR is None else str(DATA_DIR)
    config.update(overrides)
    return config


def crashing(task_cls, crash_at: int):
    """Returns a subclass of `task_cls` whose data stream is cut before global batch `crash_at`: a
    deterministic stand-in for a kill (the process raises where a killed one would stop)."""

    class Crashing(task_cls):
        def train_batches(self, position, process_index, process_count):
            for p, batch in enumerate(super().train_batches(position, process_index, process_count), position):
                if p == crash_at:
                    raise KeyboardInterrupt(f"crash before batch {p}")
                yield batch

    return Crashing


def crash_then_resume(module, task_name: str, config, workdir, crash_at: int, monkeypatch) -> dict:
    """Runs ``module.train_and_evaluate`` with ``module.<task_name>`` crashing at `crash_at`, then again in
    the same workdir without the crash; returns the resumed run's results."""
    task_cls = getattr(module, task_name)
    monkeypatch.setattr(module, task_name, crashing(task_cls, crash_at))
    with pytest.raises(KeyboardInterrupt, match=f"batch {crash_at}"):
        module.train_and_evaluate(config, workdir)
    monkeypatch.setattr(module, task_name, task_cls)
    return module.train_and_evaluate(config, workdir)


def saved_params(workdir, step: int):
    """Returns the params of checkpoint `step` in `workdir` as host arrays, whatever devices wrote it."""
    import jax  # noqa: PLC0415 - kept out of the module's import for the configs-only tests
    import orbax.checkpoint as ocp  # noqa: PLC0415

    path = os.fspath(Path(workdir) / "checkpoints" / str(step) / "state")
    local = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=local),
                          ocp.StandardCheckpointer().metadata(path).item_metadata.tree)
    return jax.device_get(ocp.StandardCheckpointer().restore(path, target)["params"])
