"""The char-LM experiment end to end on a tiny setting: the loss falls, checkpoints resume exactly, sampling."""

import dataclasses
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from absl import app, flags
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import char_lm
from rnn_jax import training
from tests.data import DATA_DIR, requires_data

pytestmark = requires_data

# constant learning rate: a run stopped at step 20 and resumed to 30 must equal one run to 30
SMOKE = char_lm.smoke_config(char_lm.Config(schedule="constant", steps=30,
                                             data_dir=None if DATA_DIR is None else str(DATA_DIR)))


def _series(workdir, name="train_loss"):
    """``{step: value}`` of one metric in the run's metrics.jsonl."""
    return dict(zip(*training.read_metrics(workdir)[name]))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("full")
    return workdir, char_lm.train_and_evaluate(SMOKE, workdir)


def test_loss_falls_and_outputs_are_written(full_run):
    workdir, results = full_run
    losses = list(_series(workdir).values())
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
    full, resumed = _series(workdir_full), _series(tmp_path)
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


def _config(*argv):
    fv = flags.FlagValues()
    char_lm.define_flags(fv)
    fv(["char_lm", "--workdir=/tmp/unused", *argv])
    return char_lm.config_from_flags(fv)


def test_flags_pick_the_level_preset_and_explicit_flags_override_it():
    assert _config() == char_lm.PRESETS["char"]
    word = _config("--level=word")
    assert word == char_lm.PRESETS["word_small"]
    assert (word.corpus, word.hidden, word.optimizer, word.epochs, word.steps) == ("ptb_word", 200, "sgd", 13, None)
    assert _config("--level=word", "--hidden=300", "--corpus=ptb").hidden == 300
    assert _config("--corpus=ptb").corpus == "ptb_char"
    assert _config("--level=word", "--steps=50").steps == 50  # --steps replaces the preset's epochs
    assert _config("--level=word", "--steps=50").epochs is None
    assert _config("--level=word", "--preset=word_medium").hidden == 650
    with pytest.raises(app.UsageError, match="--level=char"):
        _config("--corpus=ptb_word")
    with pytest.raises(app.UsageError, match="word-level configuration"):
        _config("--preset=word_small")


def test_word_level_schedule_halves_the_rate_each_epoch_after_the_fourth():
    cfg = char_lm.PRESETS["word_small"]
    assert char_lm.total_steps(cfg, epoch_steps=10) == 130  # 13 epochs
    assert char_lm.total_steps(dataclasses.replace(cfg, steps=7), epoch_steps=10) == 7
    assert (cfg.learning_rate, cfg.clip_norm) == (20.0, 0.25)  # Zaremba's 1.0 and 5 on a loss summed over 20 steps
    tx = char_lm.make_tx(cfg, epoch_steps=10)
    params = {"w": jnp.zeros(())}
    opt_state = tx.init(params)
    rates = []
    for _ in range(61):
        updates, opt_state = tx.update({"w": jnp.full((), 0.1)}, opt_state, params)
        rates.append(-float(updates["w"]) / 0.1)  # SGD: update = -lr * gradient (norm 0.1 < clip 0.25)
    assert rates[0] == pytest.approx(20) and rates[39] == pytest.approx(20)  # epochs 1-4 (steps 0-39)
    assert rates[40] == pytest.approx(10) and rates[49] == pytest.approx(10)
    assert rates[50] == pytest.approx(5) and rates[60] == pytest.approx(2.5)
    updates, _ = tx.update({"w": jnp.full((), 1.0)}, tx.init(params), params)
    assert float(updates["w"]) == pytest.approx(-20 * 0.25)  # clipped to norm 0.25


def test_word_level_run_reports_perplexity_and_samples_words(tmp_path):
    """The word-level path end to end: SGD with the step schedule, a length in epochs, perplexity, words."""
    cfg = dataclasses.replace(char_lm.PRESETS["word_small"], layers=1, hidden=16, embed=16, epochs=0.02,
                              save_every=1000, log_every=10, eval_batch_size=200, data_dir=SMOKE.data_dir)
    results = char_lm.train_and_evaluate(cfg, tmp_path)
    assert results["step"] == round(0.02 * ((929_589 - 1) // 20 // 20))  # PTB training words with <eos>
    losses = list(_series(tmp_path).values())
    assert losses[-1] < losses[0]
    assert results["test"]["ppl"] == pytest.approx(np.exp(results["test"]["loss"]))
    assert results["test"]["ppl"] < 3000  # from about 10,000 (uniform over the vocabulary) down
    assert results["test"]["tokens"] == 82_430 - 1
    assert len(results["sample"].split()) > 30  # words, not characters


def test_the_program_resumes_after_kill_9(tmp_path):
    """`python -m experiments.char_lm` SIGKILLed mid-run restarts from its newest checkpoint."""
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo), JAX_PLATFORMS="cpu")
    if SMOKE.data_dir:
        env["RNN_JAX_DATA"] = SMOKE.data_dir
    tiny = ["--layers=1", "--hidden=32", "--embed=16", "--batch_size=8", "--seq_len=20", "--save_every=20",
            "--eval_every=100000", "--log_every=10", f"--workdir={tmp_path}"]
    cmd = [sys.executable, "-m", "experiments.char_lm", *tiny]
    ckpts = tmp_path / "checkpoints"
    proc = subprocess.Popen([*cmd, "--steps=100000"], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if ckpts.is_dir() and any(p.name.isdigit() for p in ckpts.iterdir()):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    resume_from = max(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    done = subprocess.run([*cmd, f"--steps={resume_from + 20}"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed from step {resume_from} " in done.stderr
    assert json.loads((tmp_path / "results.json").read_text())["step"] == resume_from + 20
    assert not [p for p in ckpts.iterdir() if "tmp" in p.name]  # an interrupted write is cleaned up
