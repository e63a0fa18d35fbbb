"""Character- and word-level language models: teacher forcing with truncated BPTT, sampling at the end.

Train (the README's main job; configs, commands, wall times and metrics in `experiments/configs/char_lm.py`)::

    python -m experiments.char_lm --workdir=W                      # tiny Shakespeare, 2 x 512 LSTM
    python -m experiments.char_lm --workdir=W --config=experiments/configs/char_lm.py:word_small
    python -m experiments.char_lm --workdir=W --config.steps=200   # any field overridden

Sample from the newest checkpoint of a workdir (its model settings come from its config.json)::

    python -m experiments.char_lm --workdir=W --mode=sample --prime="ROMEO:" --sample_length=500

The vocabulary is built from the training split and kept in the workdir. The recurrent state is carried
from chunk to chunk (and through checkpoints); evaluation reads each split as `eval_batch_size` streams
(one by default) and reports nats, bits per token and perplexity.
"""

from __future__ import annotations

from pathlib import Path

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments import harness
from rnn_jax import decoding, training
from rnn_jax.data import lm as lm_data
from rnn_jax.data.vocab import Vocabulary
from rnn_jax.models.language_model import LanguageModel
from rnn_jax.training import sharding

LN2 = float(np.log(2.0))


def build_model(config, vocab_size: int) -> LanguageModel:
    """Returns the `LanguageModel` of `config` for a vocabulary of `vocab_size`."""
    return LanguageModel(vocab_size, config.hidden if config.tie_embeddings else config.embed, config.hidden,
                         config.layers, cell=config.cell, cell_options=config.cell_options,
                         dropout=config.dropout, embed_dropout=config.embed_dropout,
                         output_dropout=config.output_dropout, tie_embeddings=config.tie_embeddings,
                         init_scale=config.init_scale, hoist_inputs=config.hoist_inputs)


def make_tx(config, epoch_steps: int, total_steps: int):
    """Returns the optimiser of `config` for a training split of `epoch_steps` chunks and a run of `total_steps`."""
    return training.make_optimizer(
        config.optimizer, config.learning_rate, schedule=config.schedule, warmup_steps=config.warmup_steps,
        total_steps=total_steps, decay_start=round(config.decay_start_epoch * epoch_steps), decay_every=epoch_steps,
        decay_factor=config.decay_factor, clip_norm=config.clip_norm or None)


def _batch_major(state):
    """The model's state ``[L, B, ...]`` as the loop's batch-major carry ``[B, L, ...]`` (and back)."""
    return jax.tree.map(lambda s: jnp.swapaxes(s, 0, 1), state)


class LanguageModelTask(training.Task):
    """Tiny Shakespeare or PTB (characters or words) as a `Task`: TBPTT chunks with the state carried."""

    def __init__(self, config, workdir: str | Path):
        self.config = config
        vocab_path = Path(workdir) / "vocab.json"  # built from the training split once, reused on resume
        vocab = Vocabulary.load(vocab_path) if vocab_path.exists() else None
        self.corpus = lm_data.load_lm_corpus(config.corpus, vocab=vocab, data_dir=config.data_dir)
        if vocab is None and jax.process_index() == 0:
            self.corpus.vocab.save(vocab_path)
        self.model = build_model(config, len(self.corpus.vocab))
        self.batches = lm_data.LMBatches(self.corpus.splits["train"], config.batch_size, config.seq_len)
        self.steps_per_epoch = len(self.batches)
        self.total_steps = config.steps or max(1, round(config.epochs * self.steps_per_epoch))
        self.tx = make_tx(config, self.steps_per_epoch, self.total_steps)
        self.eval_sets = {name: training.EvalSet(lambda ids=self.corpus.splits[split]: self._streams(ids), carry=True)
                          for name, split in (("valid", "validation"), ("test", "test"))}
        self.dev_set = "valid"

    def _streams(self, ids):
        """The batches of a whole split read as `eval_batch_size` streams (every target once)."""
        seq_len = self.config.seq_len
        batches = lm_data.LMBatches(ids, min(self.config.eval_batch_size, max(1, (len(ids) - 1) // seq_len)),
                                    seq_len, drop_remainder=False)
        for i in range(len(batches)):
            b = batches.batch(i)
            yield {"inputs": b.inputs, "targets": b.targets, "mask": b.mask}

    def train_batches(self, position, process_index, process_count):
        for b in self.batches.iterator(position):
            batch = {"inputs": b.inputs, "targets": b.targets, "mask": b.mask}
            yield sharding.process_rows(batch, process_index, process_count)

    def reset_carry(self, position):
        return position % self.steps_per_epoch == 0  # each epoch starts the streams afresh

    def init(self, key):
        return self.model.init(key)

    def initial_carry(self, batch_size):
        return _batch_major(self.model.initial_state(batch_size))

    def loss(self, params, batch, carry, key):
        loss_sum, count, state = self.model.loss(params, batch["inputs"], batch["targets"], batch["mask"],
                                                 _batch_major(carry), dropout_key=key, deterministic=key is None)
        return loss_sum, count, {"bpc_sum": loss_sum / LN2}, _batch_major(state)

    def eval_metrics(self, name, metrics, outputs):
        return {"ppl": float(np.exp(metrics["loss"])), "tokens": int(metrics["count"])}

    def artifacts(self, params, workdir, results):
        level = self.corpus.level
        text = generate(self.model, params, self.corpus.vocab, "\n" if level == "char" else "the", 300,
                        jax.random.fold_in(jax.random.key(self.config.seed), 2), level=level)
        if jax.process_index() == 0:
            (Path(workdir) / "sample.txt").write_text(text)
        return {"sample": text[:300]}


def generate(model: LanguageModel, params, vocab: Vocabulary, prime: str, length: int, key, *,
             temperature: float = 0.8, top_k: int | None = None, level: str = "char") -> str:
    """Returns `prime` followed by `length` sampled tokens (characters, or words for level='word')."""
    tokens = list(prime) if level == "char" else prime.split()
    if not tokens:
        raise ValueError("prime must hold at least one token")
    ids = jnp.asarray(vocab.encode(tokens), jnp.int32)[None, :]  # [1, P]
    _, state = model.apply(params, ids[:, :-1]) if ids.shape[1] > 1 else (None, model.initial_state(1))
    banned = None if vocab.unk is None else int(vocab.encode([vocab.unk])[0])

    def step(c, t):  # never draw <unk>: it stands for characters absent from training
        c, logits = model.step(params, c, t)
        return c, logits if banned is None else logits.at[:, banned].set(-jnp.inf)

    _, out = decoding.sample(step, state, ids[:, -1], length, key, temperature=temperature, top_k=top_k)
    words = vocab.decode(np.asarray(out[0]).tolist())
    sep = "" if level == "char" else " "
    return prime + sep + sep.join(w if w != "<eos>" else "\n" for w in words)


def train_and_evaluate(config, workdir) -> dict:
    """Trains the config's model in `workdir` (resuming), evaluates, samples; returns the results."""
    return harness.run_task(LanguageModelTask, config, workdir, best_metric="valid_loss")


def sample_from_checkpoint(workdir, prime: str, length: int, *, temperature: float, top_k: int | None,
                           seed: int) -> str:
    """Returns text sampled from the newest checkpoint in `workdir` (model settings from its config.json)."""
    config = harness.config_from_workdir(workdir)
    task = LanguageModelTask(config, workdir)
    template = training.create_train_state(task.init(jax.random.key(0)), task.tx, jax.random.key(0))
    with training.Checkpointer(workdir, save_every=1) as ckpt:
        restored = ckpt.restore_latest(template)
    if restored is None:
        raise FileNotFoundError(f"{workdir} holds no checkpoint: train first (--mode=train)")
    return generate(task.model, restored.state.params, task.corpus.vocab, prime, length, jax.random.key(seed),
                    temperature=temperature, top_k=top_k, level=task.corpus.level)


def main(argv):
    del argv
    config = harness.start()
    f = flags.FLAGS
    if f.mode == "sample":
        print(sample_from_checkpoint(f.workdir, f.prime, f.sample_length, temperature=f.temperature,
                                     top_k=f.top_k or None, seed=f.sample_seed))
        return
    results = train_and_evaluate(config, f.workdir)
    harness.print_results(results, ("valid", "test"))
    print(results["sample"])


if __name__ == "__main__":
    harness.define_flags("char_lm")
    flags.DEFINE_enum("mode", "train", ["train", "sample"], "train (resumes from the workdir) or sample from "
                      "its newest checkpoint.")
    flags.DEFINE_string("prime", "\n", "--mode=sample: the text the sample starts from.")
    flags.DEFINE_integer("sample_length", 500, "--mode=sample: tokens to draw.")
    flags.DEFINE_float("temperature", 0.8, "--mode=sample: temperature (> 0).")
    flags.DEFINE_integer("top_k", 0, "--mode=sample: draw among the k most likely tokens (0: all).")
    flags.DEFINE_integer("sample_seed", 0, "--mode=sample: seed of the draws (training's is --config.seed).")
    app.run(main)
