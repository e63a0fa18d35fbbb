"""Configs of image caption generation (`experiments/captioning.py`).

Variants by name after the file, comma-separated (``:show_tell,fit``); the default is ``sat``. Measured on
the 2-core CPU with ``RNN_JAX_DATA=../shared/data`` (BUILD_NOTES.md, issue 12). COCO-MINI's 80 training and
79 validation images are no benchmark: the figures show that the pipeline learns, not how well a model
captions (published anchors, for orientation only: Show and Tell COCO BLEU-4 27.7, CIDEr 85.5; Show,
Attend and Tell soft attention BLEU-4 19.5 on Flickr8k, 24.3 on COCO).

* ``sat`` (default): Xu et al. 2015's Show, Attend and Tell as a user would train it on COCO or Flickr
  without pretrained weights: a 4-block CNN (3x3 convolutions of 32-64-128-256 channels, each followed by
  2x2 max-pooling) trained jointly on 128x128 images, giving an 8x8 grid of 256-d annotations; an LSTM of
  512 with additive attention (256) from the previous state, the gating scalar and the deep output layer;
  embeddings 256, dropout 0.5, the doubly stochastic regulariser with lambda 1; Adam 4e-4 with cosine
  decay, clipping 5; batches of 16 images with all their captions; selected by validation BLEU-4
  (greedy); captions by beam search (beam 3). On COCO-MINI (``python -m experiments.captioning
  --workdir=W``: 150 steps; 36 min niced beside another run, so not an idle figure) it is undertrained, as
  30 epochs of 80 images must be: selected at step 90, validation greedy BLEU-1..4 37.8 / 16.1 / 2.9 / 1.1,
  CIDEr-D 6.6, METEOR 7.7 (beam 3: 34.1 / 12.2 / 5.3 / 1.9, CIDEr-D 6.9); the captions are the corpus's
  commonest words ("a man with a a a ..."). 80 images are no benchmark.
* ``show_tell``: Vinyals et al. 2015's Show and Tell with the same CNN (its grid mean-pooled to one
  vector, the image embedding fed as the LSTM's first input) and sizes.
* ``features``: any decoder on precomputed image features (``features_dir``: one ``.npy`` per image, named
  by the image file's stem, a vector ``[D]`` or a grid ``[S, D]`` / ``[h, w, D]``), instead of the CNN.
* ``fit`` (a modifier, the README's command): fit the training images: no dropout, Adam 1e-3 with cosine
  decay for 120 epochs (600 steps), the training images evaluated every 100 steps, the final checkpoint (no
  selection). ``python -m experiments.captioning --config=experiments/configs/captioning.py:fit
  --workdir=W``: **13.9 min** on the idle 2-core CPU (0.75 steps/s, then greedy and beam captions of both
  splits and METEOR's JVM); **training-set BLEU-4 100.0** greedy (target 90; 8.3, 17.5, 62.0, 96.1, 100.0,
  100.0 at steps 100-600), CIDEr-D 291, METEOR 100. Validation (memorised, so poor, as expected): greedy
  BLEU-1..4 35.3 / 16.3 / 7.1 / 3.3, CIDEr-D 7.4, METEOR 8.6; beam 3 33.6 / 14.1 / 5.8 / 2.8.
* ``smoke``: a tiny model on 8 images for 2 epochs (tests).
"""

import ml_collections
from ml_collections import config_dict

from experiments.configs import add_run_fields, pick_variant


def sat() -> ml_collections.ConfigDict:
    """Returns the default config: Show, Attend and Tell on a jointly trained CNN."""
    c = ml_collections.ConfigDict()
    c.data_dir = config_dict.placeholder(str)  # a COCO or Karpathy-split root; None: $RNN_JAX_DATA/captioning/coco-mini
    c.layout = "auto"  # auto | coco | karpathy
    c.max_images = 0  # 0: all; else the first images of each split (smoke runs)
    # encoder
    c.encoder = "cnn"  # cnn (trained jointly) | features (precomputed .npy per image)
    c.features_dir = config_dict.placeholder(str)
    c.image_size = 128
    c.channels = (32, 64, 128, 256)
    # captions
    c.min_count = 1  # rarer training words are <unk>
    c.max_caption_len = 24  # captions cut to this many tokens
    c.len_multiple = 4  # batches padded to a multiple of this many steps (fewer shapes to compile)
    # decoder (rnn_jax.models.captioner)
    c.decoder = "show_attend_tell"  # show_attend_tell | show_tell
    c.embed = 256
    c.hidden = 512
    c.attn_size = 256
    c.gate = True
    c.dropout = 0.5
    c.label_smoothing = 0.0
    c.attention_reg = 1.0  # lambda of the doubly stochastic regulariser (Show, Attend and Tell)
    # optimisation
    c.batch_size = 16  # images, each with all its captions
    c.learning_rate = 4e-4  # Adam
    c.schedule = "cosine"
    c.clip_norm = 5.0
    c.epochs = 30
    c.dev_set = "valid"  # evaluated at each epoch's end
    c.select_by = "bleu4"  # bleu4 (greedy, on dev_set) | last
    # decoding
    c.max_decode_len = 24
    c.beam_size = 3
    c.length_penalty = 1.0  # score / len**alpha
    c.meteor = True  # METEOR through its Java scorer at the end
    c.plot_images = 8
    c.attention_plots = 3
    # the loop: evaluation and checkpoints at each epoch's end (eval_every None) or every eval_every steps
    c.log_every = 20
    c.eval_every = config_dict.placeholder(int)
    c.save_every = config_dict.placeholder(int)
    c.keep_checkpoints = 1
    c.eval_batch_size = 40
    c.seed = 0
    add_run_fields(c)
    return c


def show_tell() -> ml_collections.ConfigDict:
    """Returns Show and Tell on the same CNN and sizes."""
    c = sat()
    c.decoder = "show_tell"
    c.attention_reg = 0.0
    return c


def features() -> ml_collections.ConfigDict:
    """Returns the default decoder on precomputed features (set ``--config.features_dir``)."""
    c = sat()
    c.encoder = "features"
    return c


def fit(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Returns `c` set to fit the training images: no dropout, long training, the final checkpoint."""
    c.dropout = 0.0
    c.learning_rate = 1e-3
    c.epochs = 120
    c.dev_set = "train"
    c.select_by = "last"
    c.eval_every = 100
    return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Returns `c` shrunk so the whole pipeline runs in seconds."""
    c.max_images = 8
    c.image_size = 32
    c.channels = (8, 16)
    c.embed = c.hidden = 16
    c.attn_size = 8
    c.batch_size, c.epochs = 4, 2
    c.learning_rate = 3e-3
    c.max_caption_len, c.len_multiple = 11, 12  # one caption length: one compiled step
    c.max_decode_len = 12
    c.beam_size = 2
    c.meteor = False
    c.plot_images = 2
    c.attention_plots = 1
    c.log_every = 1
    c.eval_batch_size = 8
    return c


VARIANTS = {"sat": sat, "show_tell": show_tell, "features": features}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Returns the config named by `variant` (one of `VARIANTS`, default ``sat``), then ``',fit'``, ``',smoke'``."""
    names = [n for n in (variant or "").split(",") if n]
    base = ",".join(n for n in names if n not in ("fit", "smoke"))
    config = pick_variant(base, VARIANTS, "sat", smoke)
    if "fit" in names:
        config = fit(config)
    return smoke(config) if "smoke" in names else config
