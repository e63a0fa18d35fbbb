"""The workdir's configuration snapshot and the build-once files."""

import json

import pytest

from rnn_jax.training import workdir as wd


def test_flatten_and_differences_leave_resumable_fields_out():
    saved = {"model": {"hidden": 8, "layers": 2}, "steps": 100, "loop": {"eval_every": 5}, "seed": 0}
    now = {"model": {"hidden": 8, "layers": 3}, "steps": 200, "loop": {"eval_every": 7}, "extra": (1, 2)}
    assert wd.flatten(saved) == {"model.hidden": 8, "model.layers": 2, "steps": 100, "loop.eval_every": 5,
                                 "seed": 0}
    assert wd.config_differences(saved, now) == ["extra: '<absent>' -> [1, 2]", "model.layers: 2 -> 3",
                                                 "seed: 0 -> '<absent>'"]
    assert {"steps", "epochs", "eval_every", "log_every", "save_every", "data_dir", "verbosity"} <= wd.RESUMABLE_FIELDS


def test_snapshot_writes_then_checks_and_records_the_latest_resumable_values(tmp_path):
    wd.snapshot_config(tmp_path, {"hidden": 8, "steps": 10, "data_dir": None})
    wd.snapshot_config(tmp_path, {"hidden": 8, "steps": 20, "data_dir": "/data"})
    assert wd.read_config(tmp_path) == {"hidden": 8, "steps": 20, "data_dir": "/data"}
    with pytest.raises(ValueError, match=r"written by another configuration.*hidden: 8 -> 9"):
        wd.snapshot_config(tmp_path, {"hidden": 9, "steps": 20, "data_dir": "/data"})
    assert json.loads((tmp_path / "config.json").read_text())["hidden"] == 8  # the refused run wrote nothing
    with pytest.raises(FileNotFoundError, match="train first"):
        wd.read_config(tmp_path / "empty")


def test_load_or_build_builds_once_then_loads(tmp_path):
    built = []
    path = tmp_path / "sub" / "vocab.txt"

    def build():
        built.append(1)
        return "abc"

    save = lambda value, p: p.write_text(value)  # noqa: E731
    assert wd.load_or_build(path, lambda p: p.read_text(), build, save) == "abc"
    path.write_text("changed on disk")
    assert wd.load_or_build(path, lambda p: p.read_text(), build, save) == "changed on disk"
    assert built == [1]
