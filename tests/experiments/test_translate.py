"""The translation experiment end to end on its smoke config: learning, selection by validation BLEU,
beam and greedy test translations in order, sacrebleu signatures, and a stopped run resuming exactly."""

import json

import pytest

from experiments import translate
from experiments.configs import translate as configs
from rnn_jax import training
from tests.data import requires_data
from tests.experiments.common import crash_then_resume, smoke_config

pytestmark = requires_data


def smoke(**overrides):
    # checkpoints inside an epoch (8 batches), so a resume starts mid-epoch
    return smoke_config(configs, save_every=3, **overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mt")
    return workdir, translate.train_and_evaluate(smoke(), workdir)


def test_trains_selects_by_validation_bleu_and_writes_translations_in_test_order(run):
    workdir, results = run
    series = training.read_metrics(workdir)
    losses = series["train_loss"][1]
    assert losses[-1] < losses[0], losses
    bleu = dict(zip(*series["valid_bleu"]))
    assert bleu[results["selected_step"]] == max(bleu.values())
    for name in ("test", "test2018"):
        tok = (workdir / f"{name}.beam.tok.txt").read_text(encoding="utf-8").split("\n")[:-1]
        detok = (workdir / f"{name}.beam.detok.txt").read_text(encoding="utf-8").split("\n")[:-1]
        assert len(tok) == len(detok) == 40  # one line per source sentence (max_eval_pairs)
        entry = results["beam"][name]
        assert entry["signature_tok_lc"].startswith("nrefs:1|case:lc|eff:no|tok:none")
        assert "tok:13a" in entry["signature_detok_13a"]
    assert results["beam"]["test"]["greedy_bleu_tok_lc"] == pytest.approx(results["test"]["bleu"])
    assert (workdir / "attention_0.png").exists()


def test_a_run_stopped_mid_epoch_resumes_to_the_uninterrupted_result(run, tmp_path, monkeypatch):
    workdir, results = run
    # the end-of-run decoding is not what a resume tests, and compiling it costs most of this test's time
    monkeypatch.setattr(translate.TranslationTask, "artifacts", lambda self, params, workdir, results: {})
    resumed = crash_then_resume(translate, "TranslationTask", smoke(extra_tests=()), tmp_path, 11, monkeypatch)
    assert training.read_metrics(tmp_path)["train_loss"] == training.read_metrics(workdir)["train_loss"]
    assert resumed["test"]["loss"] == results["test"]["loss"] and resumed["test"]["bleu"] == results["test"]["bleu"]
    assert json.loads((tmp_path / "results.json").read_text())["selected_step"] == results["selected_step"]
