"""A workdir that cannot take the run fails before training; start_over empties only a run's workdir.

Tests run as root, where permission bits stop nothing, so the unwritable and the full disk are real: a
read-only tmpfs and a 64 KiB tmpfs, mounted inside a private mount namespace (``unshare -m``) of a
subprocess, so no mount outlives it. Skipped where mounting is not allowed.
"""

import os
import shutil
import subprocess
import types

import numpy as np
import pytest

from rnn_jax import training
from rnn_jax.training import storage
from tests.training.conftest import REPO
from tests.training.toy_task import ToyTask

QUIET = {"print_fn": lambda line: None}


def test_a_workdir_that_is_a_file_is_refused_before_anything_runs(tmp_path):
    path = tmp_path / "run"
    path.write_text("not a directory")
    with pytest.raises(ValueError, match=f"workdir {path} is a file, not a directory"):
        training.train_and_evaluate(ToyTask(total_steps=2), training.LoopSettings(), path, config={"a": 1}, **QUIET)
    assert path.read_text() == "not a directory"
    with pytest.raises(ValueError, match=r"workdir .*/run/sub cannot be written \(Not a directory\)"):
        storage.prepare_workdir(path / "sub")


def _statvfs(free_bytes):
    return lambda path: types.SimpleNamespace(f_bavail=free_bytes // 4096, f_frsize=4096)


def test_free_space_counts_the_checkpoints_on_disk_at_once(tmp_path):
    assert storage.check_free_space(tmp_path, 1000, keep=2, statvfs=_statvfs(4096)) == 4096  # 4 x 1000 fits
    with pytest.raises(ValueError, match=r"has 0.0 MiB free, but its checkpoints need about 4.0 MiB \(1.0 MiB "
                                         r"each, up to 4 on disk at once with keep=2\)"):
        storage.check_free_space(tmp_path, 2**20, keep=2, statvfs=_statvfs(4096))
    # a resumed run with 3 checkpoints on disk needs room for one more
    assert storage.check_free_space(tmp_path, 4000, keep=2, existing=3, statvfs=_statvfs(4096))


def test_the_loop_checks_free_space_before_its_first_step(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.os, "statvfs", _statvfs(0))
    with pytest.raises(ValueError, match="MiB free, but its checkpoints need"):
        training.train_and_evaluate(ToyTask(total_steps=3), training.LoopSettings(), tmp_path, **QUIET)
    assert not (tmp_path / "metrics.jsonl").exists() and not any((tmp_path / "checkpoints").iterdir())


def test_tree_bytes_counts_key_data():
    import jax  # noqa: PLC0415
    tree = {"w": np.zeros((3, 4), np.float32), "key": jax.random.key(0), "step": np.int32(1)}
    assert storage.tree_bytes(tree) == 48 + 8 + 4


_MOUNTED = r"""
set -e
mkdir -p "$1/ro" "$1/tiny"
mount -t tmpfs -o ro,size=1m tmpfs "$1/ro"
mount -t tmpfs -o size=64k tmpfs "$1/tiny"
python3 - "$1" <<'EOF'
import sys
from rnn_jax.training import storage
root = sys.argv[1]
for call in (lambda: storage.prepare_workdir(root + "/ro/run"), lambda: storage.prepare_workdir(root + "/ro"),
             lambda: storage.check_free_space(storage.prepare_workdir(root + "/tiny/run"), 2**20, keep=1)):
    try:
        call()
        print("no error")
    except ValueError as e:
        print("ValueError:", e)
EOF
"""


def test_a_read_only_mount_and_a_full_disk_are_refused(tmp_path):
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to mount a read-only and a tiny tmpfs")
    done = subprocess.run(["unshare", "-m", "bash", "-c", _MOUNTED, "mounted", str(tmp_path)], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=120)
    if done.returncode and "mount" in done.stderr and "permission denied" in done.stderr.lower():
        pytest.skip(f"mounting is not allowed here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert "cannot be written (Read-only file system)" in lines[0], lines
    assert "cannot be written (Read-only file system)" in lines[1], lines
    assert "/tiny/run has 0.1 MiB free, but its checkpoints need about 3.0 MiB" in lines[2], lines


def test_start_over_empties_a_runs_workdir_and_refuses_any_other(tmp_path):
    run = tmp_path / "run"
    settings = training.LoopSettings(log_every=1)
    training.train_and_evaluate(ToyTask(total_steps=2), settings, run, config={"lr": 0.1}, **QUIET)
    with pytest.raises(ValueError, match="lr: 0.1 -> 0.2"):
        training.train_and_evaluate(ToyTask(total_steps=2), settings, run, config={"lr": 0.2}, **QUIET)
    assert training.start_over(run)
    assert list(run.iterdir()) == []
    results = training.train_and_evaluate(ToyTask(total_steps=2), settings, run, config={"lr": 0.2}, **QUIET)
    assert results["config"] == {"lr": 0.2}
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds files but no config.json"):
        training.start_over(other)
    assert (other / "notes.txt").read_text() == "keep me"
    assert not training.start_over(tmp_path / "absent")
