"""``kill -9`` at chosen moments, then restarts: the run ends with the parameters of a run never killed.

One chain over the char LM's program (carried state, a data stream, periodic evaluation): SIGKILL while
evaluating at step 6, while step 9 computes, and while step 12's (the last) checkpoint is being written
(asynchronously, held open in orbax's commit thread), each followed by a restart of the same command;
the fourth run completes. Each kill is sent when the child announces the moment (`fault_child`), so
nothing races. The final parameters must equal those of an uninterrupted in-process run bit for bit
(CPU, same compiled programs: resume restores the exact params, optimiser state, key, data position
and carry).
"""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np

from experiments import char_lm
from experiments.configs import char_lm as configs
from tests.experiments.common import saved_params, smoke_config
from tests.training.conftest import REPO

STEPS, SAVE_EVERY, EVAL_EVERY = 12, 4, 6
OVERRIDES = dict(steps=STEPS, save_every=SAVE_EVERY, eval_every=EVAL_EVERY, log_every=2)
KILLS = (("evaluation", 6), ("train_step", 9), ("checkpoint_write", 12))


def _run_until(point, step, workdir, env):
    """Runs the program until it announces (point, step), then SIGKILLs it; returns its stdout lines."""
    cmd = [sys.executable, "-m", "tests.experiments.fault_child", point, str(step), "char_lm",
           f"--workdir={workdir}", "--config=experiments/configs/char_lm.py:smoke",
           *[f"--config.{k}={v}" for k, v in OVERRIDES.items()]]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith(f"REACHED {point} {step}"):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if point == "none":
        assert proc.returncode == 0, lines[-20:]
    else:
        assert proc.returncode == -signal.SIGKILL, lines[-20:]
    return lines


def _resumed_from(lines):
    found = [int(line.split()[3]) for line in lines if line.startswith("resumed from step")]
    return found[0] if found else 0


def test_kill_9_at_three_moments_then_resume_gives_the_uninterrupted_parameters(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    config = smoke_config(configs, **OVERRIDES)
    if config.data_dir:
        env["RNN_JAX_DATA"] = config.data_dir
    workdir = tmp_path / "killed"
    resumed = []
    for point, step in KILLS:
        lines = _run_until(point, step, workdir, env)
        resumed.append(_resumed_from(lines))
    lines = _run_until("none", 0, workdir, env)
    resumed.append(_resumed_from(lines))
    assert not [line for line in lines if "CheckpointManagerOptions" in line]  # third-party INFO stays quiet
    # 1st run: from scratch; 2nd: after the kill at evaluation 6 (checkpoint 4, unless its write was cut);
    # 3rd: after the kill in step 9 (4 or 8); 4th: 8, since the write of 12 was held open and never finished
    assert resumed[0] == 0 and resumed[1] in (0, 4) and resumed[2] in (4, 8) and resumed[3] == 8, resumed
    assert json.loads((workdir / "results.json").read_text())["step"] == STEPS
    assert not [p for p in (workdir / "checkpoints").iterdir() if not p.name.isdigit()]  # no partial write left

    reference = tmp_path / "uninterrupted"
    char_lm.train_and_evaluate(config, reference)
    got, want = saved_params(workdir, STEPS), saved_params(reference, STEPS)
    assert jax.tree.structure(got) == jax.tree.structure(want) and len(jax.tree.leaves(want)) >= 4
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)
