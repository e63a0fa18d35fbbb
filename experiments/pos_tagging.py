"""Part-of-speech tagging on Universal Dependencies English EWT: the lecture's one-to-one mapping.

Command (configs, wall times and metrics in `experiments/configs/pos_tagging.py`)::

    RNN_JAX_DATA=../shared/data python -m experiments.pos_tagging --workdir=W
    python -m experiments.pos_tagging --workdir=W --config=experiments/configs/pos_tagging.py:ud22

Words (embedding + a character bi-LSTM) -> stacked bidirectional LSTM -> a tag per token
(`rnn_jax.models.tagger`), trained on gold tokenisation, selected by dev accuracy at each epoch's end,
the test split evaluated once with the selected checkpoint. The config's ``batching`` picks one of the
lecture's four batching answers (`rnn_jax.data.tagging`). Writes metrics, curves, accuracy over all and
over unseen words, a per-tag confusion plot of the test split, and the dev and test predictions as CoNLL-U
(the input files with the predicted tag in the tag column, everything else untouched) to the workdir.
"""

from __future__ import annotations

import functools
from pathlib import Path

from absl import app
import jax
import numpy as np

from experiments import harness, plots
from rnn_jax import training
from rnn_jax.data import conllu_format, tagging, ud
from rnn_jax.models.tagger import Tagger
from rnn_jax.sequence import bucket_overflow

SPLITS = (("dev", "validation"), ("test", "test"))


class TaggingTask(training.Task):
    """UD EWT tagging as a `Task`: batches laid out by ``config.batching``, no carried state."""

    def __init__(self, config, workdir: str | Path):
        self.config = config
        self.texts = {name: ud.ud_text(split, version=config.ud_version, data_dir=config.data_dir)
                      for name, split in (("train", "train"),) + SPLITS}
        if config.max_eval_sentences:  # the first sentences of dev and test only (smoke runs)
            for name, _ in SPLITS:
                text, origin = self.texts[name]
                blocks = conllu_format.sentence_blocks(text, origin)[:config.max_eval_sentences]
                self.texts[name] = conllu_format.join_blocks([b.text for b in blocks]), origin
        parsed = {name: conllu_format.parse_conllu(*self.texts[name]) for name in self.texts}
        pairs = {name: [(s.words, getattr(s, config.column)) for s in sents] for name, sents in parsed.items()}
        train = pairs["train"][:config.max_train_sentences or None]
        self.vocabs = training.load_or_build(Path(workdir) / "vocab.json", tagging.TaggingVocabularies.load,
                                             lambda: tagging.TaggingVocabularies.build(
                                                 train, lowercase=config.lowercase,
                                                 tag_set=ud.tag_set(parsed["train"], config.column)),
                                             lambda v, p: v.save(p))
        encode = lambda ps, alpha=0.0: [tagging.encode_sentence(  # noqa: E731
            w, t, self.vocabs, max_word_chars=config.max_word_chars, word_dropout_alpha=alpha) for w, t in ps]
        self.train = encode(train, config.word_dropout_alpha)
        if config.batching in ("buckets", "vmap") and (n := bucket_overflow([len(s.words) for s in self.train],
                                                                               config.buckets)):
            print(f"{n} training sentences are longer than the largest bucket: overflow={config.overflow!r}")
        self.encoded = {name: encode(pairs[name]) for name, _ in SPLITS}
        self.model = Tagger(len(self.vocabs.words), len(self.vocabs.chars), len(self.vocabs.tags),
                            word_dim=config.word_dim, char_dim=config.char_dim, char_hidden=config.char_hidden,
                            hidden_size=config.hidden, num_layers=config.layers, cell=config.cell,
                            cell_options=config.cell_options, dropout=config.dropout,
                            unk_id=self.vocabs.words.unk_id)
        self.steps_per_epoch = sum(1 for _ in self._epoch(0))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.tx = training.make_optimizer("adam", config.learning_rate, schedule="cosine",
                                          total_steps=self.total_steps, clip_norm=config.clip_norm)
        self.eval_sets = {name: training.EvalSet(lambda name=name: self._eval_batches(name)) for name, _ in SPLITS}
        self.dev_set = "dev"

    def _epoch(self, epoch: int):
        c = self.config
        return tagging.tagging_batches(self.train, c.batching, batch_size=c.batch_size, buckets=c.buckets,
                                       shuffle=True, seed=c.seed + epoch, drop_remainder=True, overflow=c.overflow)

    def _eval_batches(self, name):
        return tagging.tagging_batches(self.encoded[name], "buckets", batch_size=self.config.eval_batch_size,
                                       buckets=self.config.buckets)

    def train_batches(self, position, process_index, process_count):
        return training.epoch_rows(self._epoch, self.steps_per_epoch, position, process_index, process_count)

    def init(self, key):
        return self.model.init(key)

    def loss(self, params, batch, carry, key):
        loss_sum, count, aux = self.model.loss(params, batch, dropout_key=key, deterministic=key is None,
                                               vmap=self.config.batching == "vmap")
        return loss_sum, count, {"accuracy_sum": aux["correct"], "outputs": aux["predictions"]}, carry

    def eval_metrics(self, name, metrics, outputs):
        K = len(self.vocabs.tags)
        confusion = np.zeros((K, K), np.int64)
        unseen = unseen_right = 0
        for batch, predictions in outputs:
            real = batch["mask"] > 0
            np.add.at(confusion, (batch["tags"][real], predictions[real]), 1)
            new = real & batch["unseen"]
            unseen += int(new.sum())
            unseen_right += int((new & (predictions == batch["tags"])).sum())
        return {"tokens": int(metrics["count"]), "unseen_tokens": unseen,
                "unseen_accuracy": unseen_right / max(unseen, 1), "confusion": confusion.tolist()}

    @functools.cached_property
    def _predictions(self):
        """The jitted ``(params, batch) -> predictions [B, T]``, shared by the dev and test files."""
        return jax.jit(lambda p, b: self.model.loss(p, b)[2]["predictions"])

    def predict(self, params, name) -> list[list[str]]:
        """Returns the predicted tags of split `name`, one list per sentence in file order."""
        out = [None] * len(self.encoded[name])
        for batch in self._eval_batches(name):
            predictions = np.asarray(self._predictions(params, {k: v for k, v in batch.items() if k != "index"}))
            for row, i in enumerate(batch["index"]):
                out[i] = self.vocabs.tags.decode(predictions[row, :batch["lengths"][row]])
        return out

    def artifacts(self, params, workdir, results):
        files = {}
        if jax.process_index() != 0:
            return files
        for name, _ in SPLITS:
            text, origin = self.texts[name]
            path = Path(workdir) / f"{name}.predicted.conllu"
            path.write_text(conllu_format.replace_tags(text, self.predict(params, name), column=self.config.column,
                                                       origin=origin), encoding="utf-8")
            files[f"{name}_predictions"] = str(path)
        plots.plot_confusion(Path(workdir) / "confusion.png", results["test"]["confusion"], list(self.vocabs.tags.tokens))
        return files


def train_and_evaluate(config, workdir) -> dict:
    """Trains (resuming from the workdir), selects by dev accuracy, evaluates test once; returns the results."""
    return harness.run_task(TaggingTask, config, workdir, best_metric="dev_accuracy", best_mode="max")


main = harness.main_of(train_and_evaluate)


if __name__ == "__main__":
    harness.define_flags("pos_tagging")
    app.run(main)
