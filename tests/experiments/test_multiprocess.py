"""Two processes on one machine through ``jax.distributed`` (localhost coordinator, CPU collectives):
an experiment's unchanged program trains a few steps, writes a checkpoint, and both restarted processes
resume from it.

The char LM's two-process run is also held against one process with two (forced) devices and the same
global batch: equal parameters (to float rounding of the cross-process sums) show that each process fed
its own half of every batch (the same half twice would train on other data), and equal evaluation token
counts that every evaluation example was counted exactly once across the processes. Only process 0
prints and writes files. A real multi-host run (processes on different machines, a shared filesystem
for checkpoints) cannot be shown here.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.data import DATA_DIR
from tests.experiments.common import saved_params
from tests.training.conftest import REPO

CHAR_LM = ("char_lm", "experiments/configs/char_lm.py:smoke",  # a constant rate: the stop at 2 leaves the
           {"save_every": 2, "eval_every": 2, "log_every": 2, "schedule": "constant"})  # schedule as it was
TAGGER = ("pos_tagging", "experiments/configs/pos_tagging.py:smoke",
          {"log_every": 2, "batch_size": 8, "max_train_sentences": 64, "max_eval_sentences": 32, "buckets": "(160,)"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", **extra)
    env.pop("XLA_FLAGS", None)
    if DATA_DIR is not None:
        env["RNN_JAX_DATA"] = str(DATA_DIR)
    return env


def _command(experiment, workdir, **overrides):
    module, config, fields = experiment
    return [sys.executable, "-m", f"experiments.{module}", f"--workdir={workdir}", f"--config={config}",
            *[f"--config.{k}={v}" for k, v in {**fields, **overrides}.items()]]


def _two_processes(experiment, workdir, **overrides) -> list[str]:
    """Runs the program as processes 0 and 1 of one job; returns their outputs after both exit 0."""
    port = _free_port()
    procs = [subprocess.Popen([*_command(experiment, workdir, **overrides), f"--coordinator_address=127.0.0.1:{port}",
                               "--num_processes=2", f"--process_id={i}"], cwd=REPO, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=400)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    return outputs


def _leaves(tree):
    import jax  # noqa: PLC0415 - only to flatten the restored trees
    return jax.tree.leaves(tree)


def _train_then_resume(experiment, workdir, first: dict, second: dict):
    out0, out1 = _two_processes(experiment, workdir, **first)
    assert "process 0 of 2: 1 local of 2 devices" in out0 and "process 1 of 2: 1 local of 2 devices" in out1
    assert "training steps 1-" in out0 and "training steps" not in out1  # only process 0 prints
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir())
    assert steps, "no checkpoint written"
    out0, out1 = _two_processes(experiment, workdir, **second)
    assert f"resumed from step {steps[-1]} " in out0, out0[-2000:]
    return json.loads((workdir / "results.json").read_text()), steps[-1]


def test_two_processes_train_resume_and_match_one_process_with_two_devices(tmp_path):
    results, resumed = _train_then_resume(CHAR_LM, tmp_path / "two", {"steps": 2}, {"steps": 4})
    assert resumed == 2
    assert results["step"] == 4 and "sample" in results  # process 0 wrote the artifacts
    one = subprocess.run(_command(CHAR_LM, tmp_path / "one", steps=4), cwd=REPO, capture_output=True, text=True,
                         env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"), timeout=400)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-2000:]
    single = json.loads((tmp_path / "one" / "results.json").read_text())
    for name in ("valid", "test"):
        assert results[name]["tokens"] == single[name]["tokens"]  # every example once across the processes
        assert results[name]["loss"] == pytest.approx(single[name]["loss"], rel=1e-5)
    for a, b in zip(_leaves(saved_params(tmp_path / "two", 4)), _leaves(saved_params(tmp_path / "one", 4))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_two_processes_run_and_resume_the_tagger(tmp_path):
    results, resumed = _train_then_resume(TAGGER, tmp_path / "tagger", {"epochs": 1}, {"epochs": 2})
    assert results["step"] == 2 * resumed  # resumed after epoch 1 of 2
    assert results["test"]["tokens"] > 0 and list((tmp_path / "tagger").glob("*.conllu"))  # process 0's files
