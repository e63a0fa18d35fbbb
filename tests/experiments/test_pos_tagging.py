"""The POS tagging experiment end to end on its smoke config: learning, selection by dev, CoNLL-U predictions,
unseen-word accuracy, and a run stopped mid-epoch resuming to the uninterrupted result."""

import json

import numpy as np
import pytest

from experiments import pos_tagging
from experiments.configs import pos_tagging as configs
from rnn_jax import training
from rnn_jax.data import conllu_format
from tests.data import requires_data
from tests.experiments.common import crash_then_resume, smoke_config

pytestmark = requires_data


def smoke(**overrides):
    # checkpoints inside an epoch (12 batches), so a resume starts mid-epoch
    return smoke_config(configs, save_every=5, **overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pos")
    return workdir, pos_tagging.train_and_evaluate(smoke(), workdir)


def test_trains_selects_by_dev_and_scores_all_and_unseen_tokens(run):
    workdir, results = run
    losses = training.read_metrics(workdir)["train_loss"][1]
    assert losses[-1] < losses[0], losses
    for name in ("dev", "test"):
        confusion = np.asarray(results[name]["confusion"])
        assert confusion.shape == (17, 17) and confusion.sum() == results[name]["tokens"]
        assert results[name]["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
        assert 0 < results[name]["unseen_tokens"] < results[name]["tokens"]
    dev = dict(zip(*training.read_metrics(workdir)["dev_accuracy"]))
    assert dev[results["selected_step"]] == max(dev.values())
    for name in ("results.json", "vocab.json", "confusion.png", "loss_curves.png"):
        assert (workdir / name).exists(), name


@pytest.mark.parametrize("name", ["dev", "test"])
def test_predictions_are_the_input_conllu_with_only_the_upos_column_changed(run, name):
    workdir, results = run
    task_text = conllu_format.join_blocks([b.text for b in conllu_format.sentence_blocks(
        *pos_tagging.ud.ud_text("validation" if name == "dev" else "test", data_dir=smoke().data_dir))][:100])
    predicted = (workdir / f"{name}.predicted.conllu").read_text(encoding="utf-8")
    gold_lines, new_lines = task_text.split("\n"), predicted.split("\n")
    assert len(gold_lines) == len(new_lines)
    changed = right = words = 0
    for g, p in zip(gold_lines, new_lines):
        gf, pf = g.split("\t"), p.split("\t")
        if len(gf) == 10 and gf[0].isdigit():
            words += 1
            assert gf[:3] + gf[4:] == pf[:3] + pf[4:]  # every column but UPOS untouched
            changed += gf[3] != pf[3]
            right += gf[3] == pf[3]
        else:
            assert g == p  # comments, multiword tokens, empty nodes, blank lines
    assert words == results[name]["tokens"]
    assert right / words == pytest.approx(results[name]["accuracy"])  # the file holds what was scored


def test_a_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(run, tmp_path, monkeypatch):
    workdir, results = run
    # from the step-15 checkpoint, mid epoch 2
    resumed = crash_then_resume(pos_tagging, "TaggingTask", smoke(), tmp_path, 17, monkeypatch)
    assert training.read_metrics(tmp_path)["train_loss"] == training.read_metrics(workdir)["train_loss"]
    assert resumed["test"]["loss"] == results["test"]["loss"] and resumed["selected_step"] == results["selected_step"]
    assert json.loads((tmp_path / "results.json").read_text())["test"]["accuracy"] == results["test"]["accuracy"]
