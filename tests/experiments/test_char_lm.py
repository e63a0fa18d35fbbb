"""The char-LM experiment end to end on a tiny setting: the loss falls, checkpoints resume exactly, sampling."""

import dataclasses
import json

import numpy as np
import pytest

from experiments import char_lm
from tests.data import DATA_DIR, requires_data

pytestmark = requires_data

# constant learning rate: a run stopped at step 20 and resumed to 30 must equal one run to 30
SMOKE = char_lm.smoke_config(char_lm.Config(schedule="constant", steps=30,
                                             data_dir=None if DATA_DIR is None else str(DATA_DIR)))


def _metrics(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("full")
    return workdir, char_lm.train_and_evaluate(SMOKE, workdir)


def test_loss_falls_and_outputs_are_written(full_run):
    workdir, results = full_run
    losses = [m["train_loss"] for m in _metrics(workdir) if "train_loss" in m]
    assert losses[-1] < losses[0] - 0.3, losses  # from about log(66) = 4.19 nats down
    for name in ("results.json", "vocab.json", "loss_curves.png", "sample.txt"):
        assert (workdir / name).exists(), name
    assert results["step"] == 30
    assert results["test"]["tokens"] == 55_769  # every test target once (55,770 characters)
    assert results["valid"]["bpc"] == pytest.approx(results["valid"]["loss"] / np.log(2))
    assert (workdir / "checkpoints" / "30").is_dir()


def test_resume_continues_the_same_curve(full_run, tmp_path):
    workdir_full, results_full = full_run
    char_lm.train_and_evaluate(dataclasses.replace(SMOKE, steps=20), tmp_path)  # "killed" after step 20
    results = char_lm.train_and_evaluate(SMOKE, tmp_path)  # restarts from the step-20 checkpoint
    assert results["step"] == 30
    full = {m["step"]: m["train_loss"] for m in _metrics(workdir_full) if "train_loss" in m}
    resumed = {m["step"]: m["train_loss"] for m in _metrics(tmp_path) if "train_loss" in m}
    for step in (25, 30):  # logged after the restart
        assert resumed[step] == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    assert results["test"]["loss"] == pytest.approx(results_full["test"]["loss"], rel=1e-5)


def test_sampling_from_a_checkpoint_has_the_requested_length(full_run):
    workdir, _ = full_run
    text = char_lm.sample_from_checkpoint(SMOKE, workdir, "ROMEO:", 57, temperature=0.8, top_k=10, seed=1)
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 57


def test_sampling_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        char_lm.sample_from_checkpoint(SMOKE, tmp_path, "a", 5, temperature=1.0, top_k=None, seed=0)
