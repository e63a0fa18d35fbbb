"""The sentiment experiment end to end on a tiny setting: learning, selection by dev, outputs, resume."""

import pytest

from experiments import sentiment
from rnn_jax import training
from tests.data import DATA_DIR, requires_data

pytestmark = requires_data

SMOKE = sentiment.smoke_config(sentiment.Config(data_dir=None if DATA_DIR is None else str(DATA_DIR)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sst")
    return workdir, sentiment.train_and_evaluate(SMOKE, workdir)


def test_trains_selects_by_dev_and_writes_outputs(run):
    workdir, results = run
    losses = training.read_metrics(workdir)["train_loss"][1]
    assert losses[-1] < losses[0], losses
    assert results["test"]["examples"] == 1821 and results["dev"]["examples"] == 872  # SST-2 splits
    confusion = results["test"]["confusion"]
    assert sum(map(sum, confusion)) == 1821
    assert results["test"]["accuracy"] == pytest.approx((confusion[0][0] + confusion[1][1]) / 1821)
    assert results["selected_step"] in (8, 16)  # an epoch boundary, chosen by dev accuracy
    for name in ("results.json", "vocab.json", "confusion.png", "loss_curves.png"):
        assert (workdir / name).exists(), name


def test_a_finished_run_resumes_without_training_again(run):
    workdir, results = run
    again = sentiment.train_and_evaluate(SMOKE, workdir)
    assert again["steps"] == results["steps"]
    assert again["test"]["accuracy"] == results["test"]["accuracy"]
