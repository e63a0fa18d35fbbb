"""Sentiment classification on the Stanford Sentiment Treebank: the lecture's many-to-one model.

Command (configs, wall times and metrics in `experiments/configs/sentiment.py`)::

    RNN_JAX_DATA=../shared/data python -m experiments.sentiment --workdir=W
    python -m experiments.sentiment --workdir=W --config=experiments/configs/sentiment.py:sst5

Embedding -> bidirectional recurrent stack -> pooling over each sentence's own length -> softmax.
Training on every labelled phrase of the training trees in length buckets, reshuffled each epoch; the
checkpoint is selected by dev accuracy at each epoch's end and the test split evaluated once with it.
Writes metrics, curves, a confusion-matrix plot of the test split and results.json.
"""

from __future__ import annotations

from pathlib import Path

from absl import app
import jax
import jax.numpy as jnp
import numpy as np

from experiments import harness, plots
from rnn_jax import training
from rnn_jax.data import sst as sst_data
from rnn_jax.data.vocab import Vocabulary
from rnn_jax.models.classifier import Classifier
from rnn_jax.sequence import bucket_overflow

LABELS = {2: ["neg", "pos"], 5: ["--", "-", "0", "+", "++"]}


def _as_dict(b) -> dict:
    """A `SentenceBatch` as the loop's batch: ``tokens [B, T]``, ``lengths``, ``labels``, ``mask [B]``."""
    return {"tokens": b.tokens, "lengths": b.lengths, "labels": b.labels, "mask": b.weights}


class SentimentTask(training.Task):
    """SST-2 / SST-5 as a `Task`: bucketed sentence (or phrase) batches, no carried state."""

    def __init__(self, config, workdir: str | Path):
        self.config = config
        self.num_classes = 5 if config.fine_grained else 2
        read = lambda split, phrases=False: sst_data.read_sst(  # noqa: E731
            split, binary=not config.fine_grained, phrases=phrases, data_dir=config.data_dir)
        train = read("train", config.phrases)
        self.train = train[:config.max_train_examples] if config.max_train_examples else train
        if config.buckets and (n := bucket_overflow([len(e.tokens) for e in self.train], config.buckets)):
            print(f"{n} training examples are longer than the largest bucket: overflow={config.overflow!r}")
        self.vocab = training.load_or_build(Path(workdir) / "vocab.json", Vocabulary.load,
                                            lambda: sst_data.sst_vocabulary(self.train), lambda v, p: v.save(p))
        unk = self.vocab.unk_id
        self.model = Classifier(len(self.vocab), config.embed, config.hidden, self.num_classes, config.layers,
                                cell=config.cell, cell_options=config.cell_options, pooling=config.pooling,
                                dropout=config.dropout,
                                word_dropout=config.word_dropout, unk_id=unk)
        self.steps_per_epoch = sum(1 for _ in self._epoch(0))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.tx = training.make_optimizer("adamw" if config.weight_decay else "adam", config.learning_rate,
                                          schedule="cosine", total_steps=self.total_steps,
                                          weight_decay=config.weight_decay, clip_norm=config.clip_norm)
        self.eval_sets = {name: training.EvalSet(lambda ex=read(split): self._eval_batches(ex))
                          for name, split in (("dev", "validation"), ("test", "test"))}
        self.dev_set = "dev"

    def _epoch(self, epoch: int):
        c = self.config
        return map(_as_dict, sst_data.sentence_batches(self.train, self.vocab, batch_size=c.batch_size,
                                                       bucket_lengths=tuple(c.buckets) or None, shuffle=True,
                                                       seed=c.seed + epoch, drop_remainder=True, overflow=c.overflow))

    def _eval_batches(self, examples):
        for b in sst_data.sentence_batches(examples, self.vocab, batch_size=self.config.eval_batch_size,
                                           pad_batch=True):
            yield _as_dict(b)

    def train_batches(self, position, process_index, process_count):
        return training.epoch_rows(self._epoch, self.steps_per_epoch, position, process_index, process_count)

    def init(self, key):
        return self.model.init(key)

    def loss(self, params, batch, carry, key):
        loss_sum, count, aux = self.model.loss(params, batch["tokens"], batch["lengths"], batch["labels"],
                                               batch["mask"].astype(jnp.float32), dropout_key=key,
                                               deterministic=key is None)
        return loss_sum, count, {"accuracy_sum": aux["correct"], "outputs": aux["predictions"]}, carry

    def eval_metrics(self, name, metrics, outputs):
        confusion = np.zeros((self.num_classes, self.num_classes), np.int64)
        for batch, predictions in outputs:
            real = batch["mask"] > 0
            np.add.at(confusion, (batch["labels"][real], predictions[real]), 1)
        return {"examples": int(metrics["count"]), "confusion": confusion.tolist()}

    def artifacts(self, params, workdir, results):
        if jax.process_index() == 0:
            plots.plot_confusion(Path(workdir) / "confusion.png", results["test"]["confusion"], LABELS[self.num_classes])
        return {}


def train_and_evaluate(config, workdir) -> dict:
    """Trains (resuming from the workdir), selects by dev accuracy, evaluates test once; returns the results."""
    return harness.run_task(SentimentTask, config, workdir, best_metric="dev_accuracy", best_mode="max")


main = harness.main_of(train_and_evaluate)


if __name__ == "__main__":
    harness.define_flags("sentiment")
    app.run(main)
