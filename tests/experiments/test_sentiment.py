"""The sentiment experiment end to end on its smoke config: learning, selection by dev, outputs, mid-run resume."""

import numpy as np
import pytest

from experiments import sentiment
from experiments.configs import sentiment as configs
from rnn_jax import training
from tests.data import requires_data
from tests.experiments.common import crash_then_resume, smoke_config

pytestmark = requires_data


def smoke(**overrides):
    # checkpoints inside an epoch (8 batches), so a resume starts mid-epoch
    return smoke_config(configs, save_every=3, **overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sst")
    return workdir, sentiment.train_and_evaluate(smoke(), workdir)


def test_trains_selects_by_dev_and_writes_outputs(run):
    workdir, results = run
    series = training.read_metrics(workdir)
    losses = series["train_loss"][1]
    assert losses[-1] < losses[0], losses
    assert results["test"]["examples"] == 1821 and results["dev"]["examples"] == 872  # SST-2 splits
    confusion = np.asarray(results["test"]["confusion"])
    assert confusion.sum() == 1821
    assert results["test"]["accuracy"] == pytest.approx(np.trace(confusion) / 1821)
    # the selected checkpoint is the one whose recorded dev accuracy is best, and its dev figures are those
    dev = dict(zip(*series["dev_accuracy"]))
    assert sorted(dev) == [8, 16]  # evaluated at each epoch's end
    assert dev[results["selected_step"]] == max(dev.values()) == pytest.approx(results["dev"]["accuracy"])
    dev_loss = dict(zip(*series["dev_loss"]))
    assert results["dev"]["loss"] == pytest.approx(dev_loss[results["selected_step"]], rel=1e-6)
    for name in ("results.json", "vocab.json", "confusion.png", "loss_curves.png"):
        assert (workdir / name).exists(), name


def test_a_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(run, tmp_path, monkeypatch):
    workdir, results = run
    # from the step-9 checkpoint, batch 2 of epoch 2
    resumed = crash_then_resume(sentiment, "SentimentTask", smoke(), tmp_path, 11, monkeypatch)
    full, again = training.read_metrics(workdir), training.read_metrics(tmp_path)
    assert again["train_loss"] == full["train_loss"]  # every logged step, those after the restart included
    assert resumed["test"]["loss"] == results["test"]["loss"] and resumed["selected_step"] == results["selected_step"]
