"""Character-level (and word-level) language model: teacher forcing with truncated BPTT, sampling at test.

Train (the README's main job; ``--steps`` stops early, ``--smoke`` shrinks everything)::

    python -m experiments.char_lm --workdir=/tmp/char_lm                      # tiny Shakespeare
    python -m experiments.char_lm --workdir=/tmp/ptb_char --corpus=ptb_char
    python -m experiments.char_lm --workdir=/tmp/ptb_word --corpus=ptb_word ...   (word level)

Sample from the newest checkpoint of a workdir::

    python -m experiments.char_lm --workdir=/tmp/char_lm --mode=sample --prime="ROMEO:" \\
        --sample_length=500 --temperature=0.8 --top_k=20

Data: ``--data_dir`` or ``$RNN_JAX_DATA`` (a folder laid out like ``../shared/data``), else the TFDS /
official sources (`rnn_jax.data`). The vocabulary is built from the training split and saved in the
workdir; a restarted run resumes from the newest checkpoint with the same data position, key and carried
state, so its curve continues the uninterrupted one. Evaluation covers the whole validation/test text
(every target once, state carried across chunks) and reports nats and bits per character.

Default flags: a 2-layer 512-unit LSTM, dropout 0.25, Adam 2e-3 with cosine decay, clipping 5, batch
64 x 100 characters, the configuration of the PyTorch reference in issue 4. Results with defaults on the
2-core CPU are recorded in BUILD_NOTES.md (issue 4).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from pathlib import Path

from absl import app, flags, logging
import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import decoding, training
from rnn_jax.data import lm as lm_data
from rnn_jax.data.vocab import Vocabulary
from rnn_jax.models.language_model import LanguageModel

CORPORA = ("tiny_shakespeare", "ptb_char", "ptb_word")
FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a program: tests import this module)."""
    flags.DEFINE_string("workdir", None, "Checkpoints, metrics, vocabulary, samples and plots go here.")
    flags.DEFINE_enum("mode", "train", ["train", "sample"], "train (resumes if the workdir has a "
                      "checkpoint) or sample from the newest checkpoint.")
    flags.DEFINE_enum("corpus", "tiny_shakespeare", CORPORA, "Dataset.")
    flags.DEFINE_string("data_dir", None, "Folder laid out like ../shared/data (default $RNN_JAX_DATA).")
    flags.DEFINE_enum("cell", "lstm", ["lstm", "peephole", "gru"], "Recurrent cell.")
    flags.DEFINE_integer("layers", 2, "Recurrent layers.")
    flags.DEFINE_integer("hidden", 512, "Units per layer.")
    flags.DEFINE_integer("embed", 128, "Embedding size (== hidden with --tie_embeddings).")
    flags.DEFINE_bool("tie_embeddings", False, "Share input embedding and output weights.")
    flags.DEFINE_float("dropout", 0.25, "Dropout on embeddings, between layers, before the output.")
    flags.DEFINE_integer("batch_size", 64, "Parallel text streams.")
    flags.DEFINE_integer("seq_len", 100, "Truncated-BPTT length (steps per chunk).")
    flags.DEFINE_float("learning_rate", 2e-3, "Peak learning rate.")
    flags.DEFINE_enum("optimizer", "adam", ["adam", "adamw", "sgd"], "Optimiser.")
    flags.DEFINE_enum("schedule", "cosine", ["constant", "cosine", "linear_warmup_cosine", "step"],
                      "Learning-rate schedule over --steps.")
    flags.DEFINE_integer("warmup_steps", 0, "Linear warm-up steps.")
    flags.DEFINE_float("clip_norm", 5.0, "Clip gradients to this global norm (0: off).")
    flags.DEFINE_integer("steps", 1600, "Training steps (chunks of batch_size x seq_len).")
    flags.DEFINE_integer("eval_every", 400, "Evaluate on the validation text every N steps.")
    flags.DEFINE_integer("save_every", 200, "Checkpoint every N steps (and at the end).")
    flags.DEFINE_integer("log_every", 50, "Log training metrics every N steps.")
    flags.DEFINE_integer("seed", 0, "Seed of parameters, dropout and sampling.")
    flags.DEFINE_string("prime", "\n", "Text the samples start from.")
    flags.DEFINE_integer("sample_length", 500, "Tokens to sample.")
    flags.DEFINE_float("temperature", 0.8, "Sampling temperature (> 0).")
    flags.DEFINE_integer("top_k", 0, "Sample among the k most likely tokens (0: all).")
    flags.DEFINE_bool("smoke", False, "Tiny model and few steps: runs the whole pipeline in seconds.")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run depends on (flags parsed into plain values; the library reads no flags)."""

    corpus: str = "tiny_shakespeare"
    data_dir: str | None = None
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 512
    embed: int = 128
    tie_embeddings: bool = False
    dropout: float = 0.25
    batch_size: int = 64
    seq_len: int = 100
    learning_rate: float = 2e-3
    optimizer: str = "adam"
    schedule: str = "cosine"
    warmup_steps: int = 0
    clip_norm: float = 5.0
    steps: int = 1600
    eval_every: int = 400
    save_every: int = 200
    log_every: int = 50
    seed: int = 0
    eval_batch_size: int = 128


def config_from_flags() -> Config:
    """Returns the Config of the command line; --smoke overrides sizes for an end-to-end run in seconds."""
    names = [f.name for f in dataclasses.fields(Config) if f.name != "eval_batch_size"]
    cfg = Config(**{name: getattr(FLAGS, name) for name in names})
    return smoke_config(cfg) if FLAGS.smoke else cfg


def smoke_config(cfg: Config) -> Config:
    """Returns `cfg` shrunk to a tiny model and a few steps (tests, demos)."""
    return dataclasses.replace(cfg, layers=1, hidden=32, embed=16, batch_size=8, seq_len=20, steps=min(cfg.steps, 30),
                               eval_every=15, save_every=10, log_every=5, eval_batch_size=512)


def build_model(cfg: Config, vocab_size: int) -> LanguageModel:
    return LanguageModel(vocab_size, cfg.hidden if cfg.tie_embeddings else cfg.embed, cfg.hidden, cfg.layers,
                         cell=cfg.cell, dropout=cfg.dropout, tie_embeddings=cfg.tie_embeddings)


def _load_corpus(cfg: Config, workdir: Path, splits=("train", "validation", "test")):
    """Returns the corpus, reusing the workdir's vocabulary when it exists (resume, sampling)."""
    vocab_path = workdir / "vocab.json"
    vocab = Vocabulary.load(vocab_path) if vocab_path.exists() else None
    corpus = lm_data.load_lm_corpus(cfg.corpus, vocab=vocab, splits=splits, data_dir=cfg.data_dir)
    if vocab is None:
        corpus.vocab.save(vocab_path)
    return corpus


# ----------------------------------------------------------------------------- carried state in checkpoints

def _encode_state(state) -> list:
    return [{"shape": list(a.shape), "data": base64.b64encode(np.asarray(a, np.float32).tobytes()).decode()}
            for a in jax.tree.leaves(state)]


def _decode_state(encoded: list, template):
    leaves = [np.frombuffer(base64.b64decode(e["data"]), np.float32).reshape(e["shape"]) for e in encoded]
    return jax.tree.unflatten(jax.tree.structure(template), [jnp.asarray(a) for a in leaves])


# ----------------------------------------------------------------------------- steps

def make_steps(model: LanguageModel):
    """Returns jitted ``train_step(state, batch) -> (state, metrics)`` and ``eval_step(params, batch) -> ...``.

    A batch is ``{'inputs', 'targets' [B, T] int32, 'mask' [B, T] bool, 'carry': the model state}``; the
    new carry comes back in ``metrics['carry']`` (no gradient flows into it: truncated BPTT).
    """

    def loss_fn(params, batch, key):
        loss_sum, count, carry = model.loss(params, batch["inputs"], batch["targets"], batch["mask"], batch["carry"],
                                            dropout_key=key, deterministic=key is None)
        return loss_sum, count, {"carry": jax.lax.stop_gradient(carry)}

    train_step = jax.jit(training.make_train_step(loss_fn), donate_argnums=0)

    @jax.jit
    def eval_step(params, batch):
        loss_sum, count, carry = model.loss(params, batch["inputs"], batch["targets"], batch["mask"], batch["carry"])
        return loss_sum, count, carry

    return train_step, eval_step


def evaluate(model: LanguageModel, eval_step, params, ids, batch_size: int, seq_len: int) -> dict:
    """Returns ``{'loss' (nats per token), 'bpc' (bits), 'ppl', 'tokens'}`` over the whole split ``ids``."""
    batches = lm_data.LMBatches(ids, min(batch_size, max(1, (len(ids) - 1) // seq_len)), seq_len,
                                drop_remainder=False)
    carry = model.initial_state(batches.batch_size)
    total, count = 0.0, 0
    for i in range(len(batches)):
        b = batches.batch(i)
        s, c, carry = eval_step(params, {"inputs": b.inputs, "targets": b.targets, "mask": b.mask, "carry": carry})
        total += float(s)
        count += int(c)
    loss = total / max(count, 1)
    return {"loss": loss, "bpc": loss / np.log(2.0), "ppl": float(np.exp(loss)), "tokens": count}


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

    out, _ = decoding.sample(step, state, ids[:, -1], length, key, temperature=temperature, top_k=top_k)
    words = vocab.decode(np.asarray(out[0]).tolist())
    sep = "" if level == "char" else " "
    return prime + sep + sep.join(w if w != "<eos>" else "\n" for w in words)


# ----------------------------------------------------------------------------- the run

def train_and_evaluate(cfg: Config, workdir: str | os.PathLike) -> dict:
    """Trains (resuming from the workdir's newest checkpoint), evaluates, samples; returns the results."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    (workdir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))  # for --mode=sample
    corpus = _load_corpus(cfg, workdir)
    model = build_model(cfg, len(corpus.vocab))
    logging.info("corpus %s: vocabulary %d, train %d tokens; model %s", cfg.corpus, len(corpus.vocab),
                 len(corpus.splits["train"]), model)
    train_batches = lm_data.LMBatches(corpus.splits["train"], cfg.batch_size, cfg.seq_len)
    tx = training.make_optimizer(cfg.optimizer, cfg.learning_rate, schedule=cfg.schedule,
                                 warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                                 clip_norm=cfg.clip_norm or None)
    key = jax.random.key(cfg.seed)
    state = training.create_train_state(model.init(jax.random.fold_in(key, 0)), tx, jax.random.fold_in(key, 1))
    carry = model.initial_state(cfg.batch_size)
    ckpt = training.Checkpointer(workdir, save_every=cfg.save_every, keep=2, best_metric="valid_loss")
    restored = ckpt.restore_latest(state)
    position = 0
    if restored is not None:
        state, extra = restored
        position = int(extra["data_position"])
        carry = _decode_state(extra["carry"], carry)
        logging.info("resumed from step %d (data position %d)", int(state.step), position)
    batches = train_batches.iterator(position)
    train_step, eval_step = make_steps(model)
    writer = training.MetricWriter(workdir)
    progress = training.ProgressLine(cfg.steps, start_step=int(state.step))
    history, valid = [], None
    for step in range(int(state.step) + 1, cfg.steps + 1):
        b = next(batches)
        if b.reset:
            carry = model.initial_state(cfg.batch_size)
        state, metrics = train_step(state, {"inputs": b.inputs, "targets": b.targets, "mask": b.mask, "carry": carry})
        carry = metrics.pop("carry")
        history.append(metrics)
        due_eval = step % cfg.eval_every == 0 or step == cfg.steps
        if step % cfg.log_every == 0 or due_eval or ckpt.should_save(step):
            training.check_finite(history, step)
            train = training.reduce_metrics(history)
            history = []
            scalars = {"train_loss": train["loss"], "train_bpc": train["loss"] / np.log(2.0),
                       "grad_norm": train["grad_norm"], "epoch": step / len(train_batches)}
            if due_eval:
                valid = evaluate(model, eval_step, state.params, corpus.splits["validation"], cfg.eval_batch_size,
                                 cfg.seq_len)
                scalars.update(valid_loss=valid["loss"], valid_bpc=valid["bpc"])
            writer.write(step, scalars)
            line = progress.update(step, loss=train["loss"])
            if line:
                logging.info(line)
            ckpt.save(step, state, extra={"data_position": batches.get_state()["position"],
                                          "carry": _encode_state(carry)},
                      metrics={"valid_loss": valid["loss"]} if due_eval else None, force=step == cfg.steps)
    ckpt.wait()
    valid = evaluate(model, eval_step, state.params, corpus.splits["validation"], cfg.eval_batch_size, cfg.seq_len)
    test = evaluate(model, eval_step, state.params, corpus.splits["test"], cfg.eval_batch_size, cfg.seq_len)
    sample = generate(model, state.params, corpus.vocab, "\n" if corpus.level == "char" else "the", 300,
                      jax.random.fold_in(key, 2), level=corpus.level)
    (workdir / "sample.txt").write_text(sample)
    writer.close()
    ckpt.close()
    results = {"config": dataclasses.asdict(cfg), "step": int(state.step), "valid": valid, "test": test,
               "wall_time_s": time.time() - started, "sample": sample[:300]}
    training.write_results(workdir, results)
    training.plot_curves(workdir, keys=("train_loss", "valid_loss"))
    logging.info("valid %.4f nats (%.4f bpc), test %.4f nats (%.4f bpc, ppl %.2f)", valid["loss"], valid["bpc"],
                 test["loss"], test["bpc"], test["ppl"])
    return results


def sample_from_checkpoint(cfg: Config, workdir: str | os.PathLike, prime: str, length: int, *,
                           temperature: float, top_k: int | None, seed: int) -> str:
    """Returns text sampled from the newest checkpoint in `workdir` (model settings from its config.json)."""
    workdir = Path(workdir)
    if not (workdir / "vocab.json").exists():
        raise FileNotFoundError(f"{workdir} holds no vocab.json: train first (--mode=train)")
    if (workdir / "config.json").exists():
        cfg = Config(**json.loads((workdir / "config.json").read_text()))
    vocab = Vocabulary.load(workdir / "vocab.json")
    model = build_model(cfg, len(vocab))
    tx = training.make_optimizer(cfg.optimizer, cfg.learning_rate, schedule=cfg.schedule, total_steps=cfg.steps,
                                 clip_norm=cfg.clip_norm or None)
    template = training.create_train_state(model.init(jax.random.key(0)), tx, jax.random.key(0))
    with training.Checkpointer(workdir, save_every=cfg.save_every) as ckpt:
        restored = ckpt.restore_latest(template)
    if restored is None:
        raise FileNotFoundError(f"{workdir} holds no checkpoint: train first (--mode=train)")
    level = "word" if cfg.corpus == "ptb_word" else "char"
    return generate(model, restored[0].params, vocab, prime, length, jax.random.key(seed), temperature=temperature,
                    top_k=top_k, level=level)


def main(argv):
    del argv
    if not FLAGS.workdir:
        raise app.UsageError("--workdir is required")
    cfg = config_from_flags()
    if FLAGS.mode == "sample":
        print(sample_from_checkpoint(cfg, FLAGS.workdir, FLAGS.prime, FLAGS.sample_length,
                                     temperature=FLAGS.temperature, top_k=FLAGS.top_k or None, seed=FLAGS.seed))
        return
    results = train_and_evaluate(cfg, FLAGS.workdir)
    print(json.dumps({k: results[k] for k in ("step", "valid", "test", "wall_time_s")}, indent=1))
    print(results["sample"])


if __name__ == "__main__":
    define_flags()
    app.run(main)
