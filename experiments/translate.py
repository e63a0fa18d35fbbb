"""Multi30k translation with an encoder-decoder: the lecture's sequence-to-sequence model and attention.

Command (configs, wall times and BLEU in `experiments/configs/translate.py`)::

    RNN_JAX_DATA=../shared/data python -m experiments.translate --workdir=W          # Bahdanau, en->de
    python -m experiments.translate --workdir=W --config=experiments/configs/translate.py:cho_de_en

Trained by teacher forcing on the lowercased tokenised training pairs (word vocabularies of the training
split), evaluated at each epoch's end on the validation split by loss and by greedy-decoding BLEU, the
checkpoint selected by validation BLEU (or loss). At the end the selected model translates test2016 (and
the 2017 Flickr, 2017 COCO and 2018 test sets) by beam search with length normalisation and greedily,
scored by sacrebleu two ways (`experiments.bleu`); the workdir receives the tokenised and detokenised test
translations (one per line, in test order), the exact sacrebleu signatures in results.json and attention
heatmaps of a few test sentences.
"""

from __future__ import annotations

import functools
from pathlib import Path

from absl import app
import jax
import numpy as np

from experiments import bleu, harness, plots
from rnn_jax import training
from rnn_jax.data import multi30k, parallel
from rnn_jax.data.translation_format import detokenize
from rnn_jax.models import seq2seq
from rnn_jax.models.seq2seq_decoding import beam_translate
from rnn_jax.sequence import bucket_overflow

EVAL_SPLITS = {"valid": "validation", "test": "test"}  # evaluated by the loop (loss, greedy BLEU)
EXTRA_TESTS = {"test2017": "test_2017_flickr", "mscoco2017": "test_2017_mscoco", "test2018": "test_2018_flickr"}
MODELS = {"cho": seq2seq.cho2014, "bahdanau": seq2seq.bahdanau2015, "luong": seq2seq.luong2015}


def build_model(config, src_vocab: Vocabulary, tgt_vocab: Vocabulary) -> seq2seq.Seq2Seq:
    """Returns the config's `Seq2Seq`: a paper's settings (``config.model``) with the config's sizes."""
    fields = config.model_fields.to_dict()
    return MODELS[config.model](len(src_vocab), len(tgt_vocab), config.embed, config.hidden, dropout=config.dropout,
                                pad_id=tgt_vocab.pad_id, bos_id=tgt_vocab.bos_id, eos_id=tgt_vocab.eos_id, **fields)


class TranslationTask(training.Task):
    """Multi30k as a `Task`: source-length buckets, teacher forcing; evaluation decodes greedily."""

    def __init__(self, config, workdir: str | Path):
        self.config = config
        read = functools.partial(multi30k.read_multi30k, src=config.src, tgt=config.tgt, data_dir=config.data_dir)
        train = read("train")[:config.max_train_pairs or None]
        self.src_vocab, self.tgt_vocab = training.load_or_build(
            Path(workdir) / "vocab.json", parallel.load_vocabularies,
            lambda: parallel.pair_vocabularies(train, min_count=config.min_count), parallel.save_vocabularies)
        splits = {**EVAL_SPLITS, **{name: EXTRA_TESTS[name] for name in config.extra_tests}}
        self.pairs = {name: read(split)[:config.max_eval_pairs or None] for name, split in splits.items()}
        self.raw = functools.partial(read, tokenized=False)
        encode = functools.partial(parallel.encode_pairs, src_vocab=self.src_vocab, tgt_vocab=self.tgt_vocab)
        self.train = encode(train, max_len=config.max_train_len)
        if n := bucket_overflow([len(p.src) for p in self.train], config.buckets):
            print(f"{n} training sources are longer than the largest bucket: overflow={config.overflow!r}")
        self.encoded = {name: encode(pairs, max_len=config.buckets[-1]) for name, pairs in self.pairs.items()}
        self.model = build_model(config, self.src_vocab, self.tgt_vocab)
        self.steps_per_epoch = sum(1 for _ in self._epoch(0))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.tx = training.make_optimizer("adam", config.learning_rate, schedule="cosine", total_steps=self.total_steps,
                                          clip_norm=config.clip_norm)
        self.eval_sets = {name: training.EvalSet(lambda name=name: self._batches(name)) for name in EVAL_SPLITS}
        self.dev_set = "valid"

    def _epoch(self, epoch: int):
        c = self.config
        return parallel.pair_batches(self.train, batch_size=c.batch_size, buckets=c.buckets, shuffle=True,
                                     seed=c.seed + epoch, drop_remainder=True, bos_id=self.tgt_vocab.bos_id,
                                     eos_id=self.tgt_vocab.eos_id, overflow=c.overflow)

    def _batches(self, name):
        return parallel.pair_batches(self.encoded[name], batch_size=self.config.eval_batch_size,
                                     buckets=self.config.buckets, bos_id=self.tgt_vocab.bos_id,
                                     eos_id=self.tgt_vocab.eos_id)

    def train_batches(self, position, process_index, process_count):
        return training.epoch_rows(self._epoch, self.steps_per_epoch, position, process_index, process_count)

    def init(self, key):
        return self.model.init(key)

    def loss(self, params, batch, carry, key):
        train = key is not None
        loss_sum, count, aux = self.model.loss(params, {**batch, "tgt_mask": batch["mask"]}, dropout_key=key,
                                               deterministic=not train,
                                               label_smoothing=self.config.label_smoothing if train else 0.0)
        out = {"nll_sum": aux["nll"], "accuracy_sum": aux["correct"]}
        if not train:  # evaluation also translates, greedily, for BLEU
            out["outputs"] = self.model.greedy_translate(params, batch["src"], batch["src_lengths"],
                                                         self.config.max_decode_len)
        return loss_sum, count, out, carry

    def detokens(self, ids) -> str:
        """Returns the tokenised line of target ids ``[N]`` up to (not including) the first eos."""
        ids = list(np.asarray(ids))
        if self.tgt_vocab.eos_id in ids:
            ids = ids[:ids.index(self.tgt_vocab.eos_id)]
        return " ".join(self.tgt_vocab.decode(ids, skip_special=True))

    def _in_order(self, name, outputs) -> list[str]:
        lines = [None] * len(self.encoded[name])
        for batch, tokens in outputs:
            for row, i in enumerate(batch["index"]):
                lines[i] = self.detokens(tokens[row])
        return lines

    def eval_metrics(self, name, metrics, outputs):
        hyps = self._in_order(name, outputs)
        score, _ = bleu.tokenized_bleu(hyps, [t for _, t in self.pairs[name]])
        return {"bleu": score, "perplexity": float(np.exp(metrics["nll"])), "sentences": len(hyps)}

    def artifacts(self, params, workdir, results):
        if jax.process_index() != 0:
            return {}
        translate = Translator(self.model, self.config)
        report = {}
        for name in (*EVAL_SPLITS, *self.config.extra_tests):
            report[name] = self._score_set(translate, params, name, Path(workdir), results.get(name, {}))
        return {"beam": report}

    def _score_set(self, translate, params, name, workdir, loop_metrics) -> dict:
        """Translates split `name` by beam search and greedily, writes the files, returns the BLEU entries."""
        beam, greedy, attention = translate.split(params, self._batches(name), len(self.encoded[name]))
        beam_lines = [self.detokens(t) for t in beam]
        greedy_lines = [self.detokens(t) for t in greedy]
        refs_tok = [t for _, t in self.pairs[name]]
        refs_raw = [t for _, t in self.raw(EVAL_SPLITS.get(name) or EXTRA_TESTS[name])][:len(refs_tok)]
        detok = detokenize(beam_lines, self.config.tgt)
        (workdir / f"{name}.beam.tok.txt").write_text("\n".join(beam_lines) + "\n", encoding="utf-8")
        (workdir / f"{name}.beam.detok.txt").write_text("\n".join(detok) + "\n", encoding="utf-8")
        tok_score, tok_sig = bleu.tokenized_bleu(beam_lines, refs_tok)
        raw_score, raw_sig = bleu.detokenized_bleu(detok, refs_raw)
        out = {"bleu_tok_lc": tok_score, "signature_tok_lc": tok_sig, "bleu_detok_13a": raw_score,
               "signature_detok_13a": raw_sig, "greedy_bleu_tok_lc": bleu.tokenized_bleu(greedy_lines, refs_tok)[0],
               "beam_size": self.config.beam_size, "length_penalty": self.config.length_penalty}
        if "bleu" in loop_metrics:
            out["loop_greedy_bleu"] = loop_metrics["bleu"]
        if name == "test" and attention is not None:
            for k in range(self.config.attention_plots):
                self._plot_attention(workdir / f"attention_{k}.png", self.encoded[name][k].src, beam[k],
                                     attention[k])
        return out

    def _plot_attention(self, path, src_ids, tgt_ids, weights):
        """Plots one translation's attention ``weights [max_len, S]``: every emitted token, eos included."""
        ids = list(np.asarray(tgt_ids))
        n = ids.index(self.tgt_vocab.eos_id) + 1 if self.tgt_vocab.eos_id in ids else len(ids)
        src = self.src_vocab.decode(src_ids)
        plots.plot_attention(path, weights[:n, :len(src)], src, self.tgt_vocab.decode(ids[:n]))


class Translator:
    """Jitted beam search and greedy decoding of batches; results back in split order."""

    def __init__(self, model: seq2seq.Seq2Seq, config):
        self.beam = jax.jit(functools.partial(beam_translate, model, max_len=config.max_decode_len,
                                              beam_size=config.beam_size, length_penalty=config.length_penalty))
        self.greedy = jax.jit(functools.partial(model.greedy_translate, max_len=config.max_decode_len))

    def split(self, params, batches, n: int):
        """Returns ``(beam tokens, greedy tokens, attention or None)``, lists of n arrays in split order."""
        beam, greedy, attention = [None] * n, [None] * n, [None] * n
        for batch in batches:
            b_tok, b_att = self.beam(params, batch["src"], batch["src_lengths"])
            g_tok = self.greedy(params, batch["src"], batch["src_lengths"])
            for row, i in enumerate(batch["index"]):
                beam[i], greedy[i] = np.asarray(b_tok[row]), np.asarray(g_tok[row])
                attention[i] = None if b_att is None else np.asarray(b_att[row])
        return beam, greedy, None if attention[0] is None else attention


def train_and_evaluate(config, workdir) -> dict:
    """Trains (resuming from the workdir), selects by validation BLEU or loss, decodes the tests; returns results."""
    best = ("valid_bleu", "max") if config.select_by == "bleu" else ("valid_loss", "min")
    return harness.run_task(TranslationTask, config, workdir, best_metric=best[0], best_mode=best[1])


main = harness.main_of(train_and_evaluate, ("valid", "test"))


if __name__ == "__main__":
    harness.define_flags("translate")
    app.run(main)
