"""The char-LM experiment end to end on its smoke config: the loss falls, checkpoints resume exactly, sampling."""

from pathlib import Path

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import char_lm, harness
from experiments.configs import char_lm as configs
from rnn_jax import training
from tests.data import DATA_DIR, requires_data

pytestmark = requires_data
REPO = Path(__file__).resolve().parents[2]


def smoke(variant="smoke", **overrides):
    config = configs.get_config(variant)
    config.data_dir = None if DATA_DIR is None else str(DATA_DIR)
    config.update(overrides)
    return config


SMOKE = smoke(schedule="constant")  # a run stopped at step 20 and resumed to 30 must equal one run to 30


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
    for name in ("results.json", "vocab.json", "loss_curves.png", "sample.txt", "config.json"):
        assert (workdir / name).exists(), name
    assert results["step"] == 30 and results["selected_step"] == 30  # validation loss falls throughout
    assert results["test"]["tokens"] == 55_769  # every test target once (55,770 characters)
    assert results["valid"]["bpc"] == pytest.approx(results["valid"]["loss"] / np.log(2), rel=1e-6)
    assert results["valid"]["ppl"] == pytest.approx(np.exp(results["valid"]["loss"]))
    assert (workdir / "checkpoints" / "30").is_dir()


def test_resume_continues_the_same_curve(full_run, tmp_path):
    workdir_full, results_full = full_run
    char_lm.train_and_evaluate(smoke(schedule="constant", steps=20), tmp_path)  # "killed" after step 20
    results = char_lm.train_and_evaluate(SMOKE, tmp_path)  # the step budget may change on resume
    assert results["step"] == 30
    full, resumed = _series(workdir_full), _series(tmp_path)
    for step in (25, 30):  # logged after the restart
        assert resumed[step] == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    assert results["test"]["loss"] == pytest.approx(results_full["test"]["loss"], rel=1e-5)


def test_a_workdir_of_another_model_is_refused(full_run):
    workdir, _ = full_run
    with pytest.raises(ValueError, match=r"hidden: 32 -> 48"):
        char_lm.train_and_evaluate(smoke(schedule="constant", hidden=48), workdir)


def test_greedy_sampling_from_the_checkpoint_is_the_models_argmax_continuation(full_run):
    """The sampler's carried state against re-reading the whole growing text at every step."""
    workdir, _ = full_run
    text = char_lm.sample_from_checkpoint(workdir, "ROMEO:", 12, temperature=1.0, top_k=1, seed=1)
    task = char_lm.LanguageModelTask(harness.config_from_workdir(workdir), workdir)
    template = training.create_train_state(task.init(jax.random.key(0)), task.tx, jax.random.key(0))
    params = training.Checkpointer(workdir, save_every=1).restore_latest(template).state.params
    vocab, expected = task.corpus.vocab, "ROMEO:"
    unk = vocab.unk_id
    for _ in range(12):
        logits, _ = task.model.apply(params, jnp.asarray(vocab.encode(list(expected)))[None])
        scores = np.array(logits[0, -1])
        scores[unk] = -np.inf  # the sampler never draws <unk>
        expected += vocab.decode([int(np.argmax(scores))])[0]
    assert text == expected


def test_sampling_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        char_lm.sample_from_checkpoint(tmp_path, "a", 5, temperature=1.0, top_k=None, seed=0)


def test_config_file_variants_on_the_command_line():
    """``--config`` defaults to the char config; a variant follows the path (``--config.x=`` overrides are
    exercised by the kill -9 test, through the program itself)."""
    fv = flags.FlagValues()
    harness.define_flags("char_lm", fv)
    fv(["char_lm", "--workdir=/tmp/unused"])
    assert fv.config.to_dict() == configs.char().to_dict()
    fv = flags.FlagValues()
    harness.define_flags("char_lm", fv)
    fv(["char_lm", "--workdir=/tmp/unused", "--config=" + str(REPO / "experiments/configs/char_lm.py:word_small")])
    word = fv.config
    assert (word.corpus, word.hidden, word.optimizer, word.epochs, word.steps) == ("ptb_word", 200, "sgd", 13, None)
    assert configs.get_config("word_medium").hidden == 650
    assert configs.get_config("ptb_char,smoke").corpus == "ptb_char"
    with pytest.raises(ValueError, match="config variant must be one of"):
        configs.get_config("word_big")


def test_word_level_schedule_halves_the_rate_each_epoch_after_the_fourth():
    config = configs.word_small()
    assert (config.learning_rate, config.clip_norm) == (20.0, 0.25)  # Zaremba's 1.0 and 5 on a loss summed over 20 steps
    tx = char_lm.make_tx(config, epoch_steps=10, total_steps=130)
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
    config = configs.word_small()
    config.update(layers=1, hidden=16, embed=16, epochs=0.02, save_every=1000, log_every=10, eval_batch_size=200,
                  data_dir=SMOKE.data_dir)
    results = char_lm.train_and_evaluate(config, tmp_path)
    assert results["step"] == round(0.02 * ((929_589 - 1) // 20 // 20))  # PTB training words with <eos>
    losses = list(_series(tmp_path).values())
    assert losses[-1] < losses[0]
    assert results["test"]["ppl"] == pytest.approx(np.exp(results["test"]["loss"]))
    assert results["test"]["ppl"] < 3000  # from about 10,000 (uniform over the vocabulary) down
    assert results["test"]["tokens"] == 82_430 - 1
    assert len(results["sample"].split()) > 30  # words, not characters


