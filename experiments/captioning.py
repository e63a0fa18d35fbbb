"""Image caption generation: a CNN encoder (or precomputed features) and an LSTM decoder, with or without
soft attention over the image (Vinyals et al. 2015, Show and Tell; Xu et al. 2015, Show, Attend and Tell).

Command (configs, wall times and scores in `experiments/configs/captioning.py`)::

    RNN_JAX_DATA=../shared/data python -m experiments.captioning --workdir=W \
        --config=experiments/configs/captioning.py:fit       # fit COCO-MINI's 80 training images
    python -m experiments.captioning --workdir=W --config.data_dir=/data/coco   # the full COCO layout

Images are decoded and resized in memory (never written anywhere); every batch row is one image with all
its captions (`rnn_jax.data.caption_batches`), trained by teacher forcing. Evaluation never teacher-forces
what it scores: each image is captioned greedily and scored by BLEU-1..4 against all its references (the
loss and perplexity beside it are teacher-forced, as always). At the end the selected checkpoint captions
every evaluated image greedily and by beam search; the workdir receives a JSON file of the captions of each
set, BLEU-1..4, CIDEr-D and METEOR in results.json, a grid of images with their captions and, for the
attention decoder, the attention over the image behind every generated word (Xu et al.'s figure).
"""

from __future__ import annotations

from pathlib import Path

from absl import app
import jax
import jax.numpy as jnp
import numpy as np

from experiments import caption_metrics, harness
from experiments.caption_outputs import CaptionWriter, draw, score_sets, write_captions
from rnn_jax import training
from rnn_jax.data import caption_batches as batching
from rnn_jax.data import captions as captions_lib
from rnn_jax.data.captions_format import tokenize_caption
from rnn_jax.data.vocab import Vocabulary
from rnn_jax.models.captioner import Captioner
from rnn_jax.models.image_encoder import ConvEncoder

SPLITS = {"train": "train", "valid": "validation"}  # evaluation sets and the reader's split names
ENCODERS = ("cnn", "features")
SMALL_SET = 1000  # fewer training images than this: results.json says the figures are no benchmark


def read_split(config, name: str) -> list:
    """Returns the `CaptionedImage`s of evaluation set `name`, cut to ``config.max_images`` (0: all)."""
    images = captions_lib.read_captions(SPLITS[name], data_dir=config.data_dir, layout=config.layout)
    return images[:config.max_images or None]


def load_inputs(config, images) -> np.ndarray:
    """Returns the encoder's inputs of `images`: pixels ``[N, P, P, 3]`` in [0, 1], or features ``[N, (S,) D]``."""
    if config.encoder == "cnn":
        return np.stack([captions_lib.decode_image(captions_lib.image_bytes(im), config.image_size)
                         for im in images])
    if not config.features_dir:
        raise ValueError("config.features_dir must name a folder of .npy features when config.encoder='features'")
    return np.stack([captions_lib.load_features(config.features_dir, im.file_name) for im in images])


class CaptioningTask(training.Task):
    """Captioning as a `Task`: batches of images with all their captions; evaluation captions greedily."""

    def __init__(self, config, workdir: str | Path):
        if config.encoder not in ENCODERS:
            raise ValueError(f"config.encoder must be one of {ENCODERS}, got {config.encoder!r}")
        self.config = config
        self.images = {name: read_split(config, name) for name in SPLITS}
        self.tokens = {name: [[tokenize_caption(c) for c in im.captions] for im in images]
                       for name, images in self.images.items()}
        self.vocab = training.load_or_build(
            Path(workdir) / "vocab.json", Vocabulary.load,
            lambda: batching.caption_vocabulary(self.tokens["train"], min_count=config.min_count),
            lambda vocab, path: vocab.save(path))
        self.encoded = {name: batching.encode_captions(t, self.vocab, max_len=config.max_caption_len)
                        for name, t in self.tokens.items()}
        self.refs = max(len(c) for enc in self.encoded.values() for c in enc)
        self.inputs = {name: load_inputs(config, images) for name, images in self.images.items()}
        self.cnn = ConvEncoder(config.image_size, tuple(config.channels)) if config.encoder == "cnn" else None
        feature_size = self.cnn.feature_size if self.cnn else self.inputs["train"].shape[-1]
        self.model = Captioner(len(self.vocab), config.embed, config.hidden, feature_size, decoder=config.decoder,
                               attn_size=config.attn_size, gate=config.gate, dropout=config.dropout,
                               pad_id=self.vocab.pad_id, bos_id=self.vocab.bos_id, eos_id=self.vocab.eos_id)
        self.steps_per_epoch = len(self.encoded["train"]) // config.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"config.batch_size {config.batch_size} exceeds the {len(self.encoded['train'])} "
                             "training images")
        self.total_steps = self.steps_per_epoch * config.epochs
        self.tx = training.make_optimizer("adam", config.learning_rate, schedule=config.schedule,
                                          total_steps=self.total_steps, clip_norm=config.clip_norm)
        self.eval_sets = {name: training.EvalSet(lambda name=name: self._batches(name)) for name in SPLITS}
        self.dev_set = config.dev_set

    def _with_inputs(self, name, batch) -> dict:
        return {**batch, "inputs": self.inputs[name][batch["index"]]}

    def _epoch(self, epoch: int):
        c = self.config
        return (self._with_inputs("train", b) for b in batching.caption_batches(
            self.encoded["train"], batch_size=c.batch_size, refs=self.refs, bos_id=self.vocab.bos_id,
            eos_id=self.vocab.eos_id, shuffle=True, seed=c.seed + epoch, drop_remainder=True,
            len_multiple=c.len_multiple))

    def _batches(self, name):
        return (self._with_inputs(name, b) for b in batching.caption_batches(
            self.encoded[name], batch_size=self.config.eval_batch_size, refs=self.refs, bos_id=self.vocab.bos_id,
            eos_id=self.vocab.eos_id, len_multiple=self.config.len_multiple))

    def train_batches(self, position, process_index, process_count):
        return training.epoch_rows(self._epoch, self.steps_per_epoch, position, process_index, process_count)

    def init(self, key):
        k_cnn, k_dec = jax.random.split(key)
        params = {"captioner": self.model.init(k_dec)}
        if self.cnn is not None:
            params["cnn"] = self.cnn.init(k_cnn)
        return params

    def features(self, params, inputs, key=None):
        """Returns the decoder's image features ``[B, (S,) D]`` of a batch's inputs (the CNN's grid, or as given)."""
        if self.cnn is None:
            return jnp.asarray(inputs, jnp.float32)
        return self.cnn.apply(params["cnn"], inputs, dropout_key=key, deterministic=key is None)

    def loss(self, params, batch, carry, key):
        train = key is not None
        k_cnn, k_dec = jax.random.split(key) if train else (None, None)
        feats = self.features(params, batch["inputs"], k_cnn)  # [B, (S,) D]
        B, R, T = batch["tgt_in"].shape
        flat = {"features": jnp.repeat(feats, R, axis=0), "tgt_in": batch["tgt_in"].reshape(B * R, T),
                "tgt_out": batch["tgt_out"].reshape(B * R, T), "tgt_mask": batch["mask"].reshape(B * R, T)}
        c = self.config
        loss_sum, count, aux = self.model.loss(
            params["captioner"], flat, dropout_key=k_dec, deterministic=not train,
            label_smoothing=c.label_smoothing if train else 0.0, attention_reg=c.attention_reg)
        out = {"nll_sum": aux["nll"], "accuracy_sum": aux["correct"]}
        if not train:  # evaluation also captions each image once, greedily, for BLEU
            out["outputs"] = self.model.greedy_caption(params["captioner"], feats, c.max_decode_len)
        return loss_sum, count, out, carry

    def words(self, ids, *, with_eos: bool = False) -> list[str]:
        """Returns the words of generated ids ``[L]`` up to the first eos (included if `with_eos`: then every
        emitted token, specials too, one word each)."""
        ids = list(np.asarray(ids))
        if self.vocab.eos_id in ids:
            ids = ids[:ids.index(self.vocab.eos_id) + with_eos]
        return self.vocab.decode(ids, skip_special=not with_eos)

    def references(self, name) -> list[list[str]]:
        """Returns each image's tokenised reference captions of set `name`, as lines."""
        return [[" ".join(c) for c in image] for image in self.tokens[name]]

    def eval_metrics(self, name, metrics, outputs):
        lines = [None] * len(self.encoded[name])
        for batch, tokens in outputs:
            for row, i in enumerate(batch["index"]):
                lines[i] = " ".join(self.words(tokens[row]))
        scores = caption_metrics.caption_bleu(lines, self.references(name))
        return {**{k: v for k, v in scores.items() if k != "signature"}, "images": len(lines),
                "perplexity": float(np.exp(metrics["nll"]))}

    def artifacts(self, params, workdir, results):
        if jax.process_index() != 0:
            return {}
        c, workdir = self.config, Path(workdir)
        writer = CaptionWriter(self.model, self.features, c.max_decode_len, beam_size=c.beam_size,
                               length_penalty=c.length_penalty)
        lines = {}
        for name in SPLITS:
            greedy, beam, alphas = writer.split(params, self._batches(name), len(self.encoded[name]))
            lines[name] = {"greedy": [" ".join(self.words(t)) for t in greedy],
                           "beam": [" ".join(self.words(t)) for t in beam]}
            write_captions(workdir / f"captions_{name}.json", self.images[name], lines[name])
            if self.cnn is not None:  # only pixels can be drawn
                emitted = [self.words(t, with_eos=True) for t in beam]
                draw(workdir, name, self.inputs[name], lines[name]["beam"], emitted, alphas, self.cnn.grid_shape,
                     images=c.plot_images, attention=c.attention_plots)
        scores = score_sets(lines, {name: self.references(name) for name in SPLITS}, meteor=c.meteor)
        for entry in scores.values():
            entry.update(beam_size=c.beam_size, length_penalty=c.length_penalty)
        return {"final": scores, "note": self.note()}

    def note(self) -> str:
        """Returns what the figures are worth: the split sizes and, for a small set, that it is no benchmark."""
        n, m = len(self.images["train"]), len(self.images["valid"])
        small = ": too few for a benchmark (a check that the pipeline learns); published figures are on COCO or Flickr"
        return f"{n} training and {m} validation images" + (small if n < SMALL_SET else "")


def train_and_evaluate(config, workdir) -> dict:
    """Trains (resuming from the workdir), selects (or keeps the last), captions every set; returns results."""
    best = f"{config.dev_set}_bleu4" if config.select_by == "bleu4" else None
    return harness.run_task(CaptioningTask, config, workdir, best_metric=best, best_mode="max")


main = harness.main_of(train_and_evaluate, tuple(SPLITS))


if __name__ == "__main__":
    harness.define_flags("captioning")
    app.run(main)
