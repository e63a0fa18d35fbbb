"""Configs of the character- and word-level language model (`experiments/char_lm.py`).

Variants by name after the file, comma-separated (``:word_small,smoke``); the default is ``char``.
Wall times and metrics measured on the 2-core CPU with ``RNN_JAX_DATA=../shared/data`` (BUILD_NOTES.md,
issues 4 and 10); this host's speed drifts 10-15% within an hour.

* ``char`` (default): tiny Shakespeare, 2 x 512 LSTM, dropout 0.25 between the layers, Adam 3e-3 cosine
  over 1400 steps, clipping 5, 64 x 100 characters; evaluation as one stream.
  ``python -m experiments.char_lm --workdir=W``: 25-27 min, validation 1.357 / test 1.489 nats per
  character (2.148 bpc; goal 1.50, the PyTorch reference 1.509 in 30 min). On the host of issue 14, one
  run after the other: 29.0 min with the oneDNN kernel ('auto'), validation 1.360 / test 1.490, against
  30.3 min for the scan (commit 76eb09c), 1.357 / 1.489.
* ``ptb_char``: the same model on Penn Treebank characters, 2700 steps, evaluated every 1350.
  ``python -m experiments.char_lm --config=experiments/configs/char_lm.py:ptb_char --workdir=W``:
  54 min, validation 1.465 / test 1.425 bits per character (Graves 2013, one layer: 1.32).
* ``min_gru``: the char config with minGRU cells (Feng et al. 2024, parallel scan).
  ``python -m experiments.char_lm --config=experiments/configs/char_lm.py:min_gru --workdir=W``:
  10.2 min, validation 1.637 / test 1.742 nats (session 2, before the generic stack: its parameters and
  dropout masks now come from the stack's key plan, so a rerun lands within seed noise, not on these digits).
* ``peephole``: the char config with Graves (2013)'s peephole LSTM (``cell_options.peephole``; a locked
  config takes new cell options only through a variant that declares them). Not measured.
* ``word_small``: Zaremba et al. (2014)'s small PTB word model: 2 x 200 LSTM, no dropout, every parameter
  uniform in +-0.1, SGD 1.0 halved each epoch after the 4th, clipping 5 -- on the loss summed over the 20
  steps of a chunk, i.e. 20 and 0.25 on our per-token mean --, batch 20 x 20 words, 13 epochs, the input
  projection hoisted (faster at batch 20), evaluation in 10 streams.
  ``python -m experiments.char_lm --config=experiments/configs/char_lm.py:word_small --workdir=W``:
  28 min, validation / test perplexity 117.4 / 112.9 (Zaremba et al. 120.7 / 114.5; PyTorch 112.6). On
  the host of issue 14 with the oneDNN kernel ('auto'): 39 min, 118.2 / 113.2.
* ``word_medium``: their regularised 2 x 650 model (dropout 0.5, 39 epochs, x0.8 after the 6th); not run here.
* ``smoke``: shrinks any of the above to a 1 x 32 model and 30 steps (tests; about 15 s).
"""

import ml_collections
from ml_collections import config_dict

from experiments.configs import add_run_fields, pick_variant


def char() -> ml_collections.ConfigDict:
    """Returns the character-level config (the default)."""
    c = ml_collections.ConfigDict()
    c.corpus = "tiny_shakespeare"  # tiny_shakespeare | ptb_char | ptb_word
    c.data_dir = config_dict.placeholder(str)  # None: $RNN_JAX_DATA, else TFDS / official sources
    # model
    c.cell = "lstm"  # lstm | gru | min_gru | min_lstm
    c.cell_options = ml_collections.ConfigDict()  # further arguments of the cell (see the peephole variant)
    c.layers = 2
    c.hidden = 512
    c.embed = 128
    c.tie_embeddings = False
    c.dropout = 0.25  # between layers
    c.embed_dropout = 0.0
    c.output_dropout = 0.0
    c.init_scale = config_dict.placeholder(float)  # every parameter uniform in +-init_scale; None: layer defaults
    c.hoist_inputs = config_dict.placeholder(bool)  # None: by backend (rnn_jax.unroll)
    # data and optimisation
    c.batch_size = 64
    c.seq_len = 100
    c.optimizer = "adam"
    c.learning_rate = 3e-3  # 2e-3 gave test 1.505 (BUILD_NOTES.md, issue 4)
    c.schedule = "cosine"
    c.warmup_steps = 0
    c.decay_start_epoch = 4.0  # 'step' schedule
    c.decay_factor = 0.5
    c.clip_norm = 5.0  # 0: off
    c.steps = config_dict.placeholder(int)
    c.steps = 1400  # None: `epochs` passes over the training text
    c.epochs = config_dict.placeholder(float)
    # the loop
    c.eval_every = config_dict.placeholder(int)
    c.eval_every = 400  # None: every epoch
    c.save_every = 200
    c.log_every = 50
    c.keep_checkpoints = 2
    c.seed = 0
    add_run_fields(c)
    c.eval_batch_size = 1  # the whole split as one stream, the state carried throughout
    return c


def word_small() -> ml_collections.ConfigDict:
    """Returns Zaremba et al.'s small Penn Treebank word model."""
    c = char()
    c.corpus = "ptb_word"
    c.hidden = c.embed = 200
    c.dropout = 0.0
    c.init_scale = 0.1
    c.hoist_inputs = True  # at batch 20 hoisting is faster on CPU too (88 -> 73 ms per step)
    c.batch_size, c.seq_len = 20, 20
    c.optimizer, c.schedule = "sgd", "step"
    c.learning_rate = 1.0 * 20  # their lr 1 on a loss summed over the chunk's 20 steps
    c.clip_norm = 5.0 / 20
    c.decay_start_epoch, c.decay_factor = 4.0, 0.5
    c.steps, c.epochs = None, 13.0
    c.eval_every, c.save_every, c.log_every = None, 1000, 250
    c.eval_batch_size = 10
    return c


def word_medium() -> ml_collections.ConfigDict:
    """Returns Zaremba et al.'s medium (regularised 2 x 650) Penn Treebank word model."""
    c = word_small()
    c.hidden = c.embed = 650
    c.dropout = c.embed_dropout = c.output_dropout = 0.5
    c.init_scale = 0.05
    c.seq_len = 35
    c.learning_rate, c.clip_norm = 1.0 * 35, 5.0 / 35
    c.decay_start_epoch, c.decay_factor = 6.0, 0.8
    c.epochs = 39.0
    return c


def ptb_char() -> ml_collections.ConfigDict:
    """Returns the character config on Penn Treebank characters (2700 steps fit the hour)."""
    c = char()
    c.corpus = "ptb_char"
    c.steps, c.eval_every = 2700, 1350
    return c


def min_gru() -> ml_collections.ConfigDict:
    """Returns the character config with minGRU cells."""
    c = char()
    c.cell = "min_gru"
    return c


def peephole() -> ml_collections.ConfigDict:
    """Returns the character config with Graves (2013)'s peephole LSTM."""
    c = char()
    c.cell_options.peephole = True
    return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Returns `c` shrunk to a tiny model and 30 steps: the whole pipeline in seconds."""
    c.layers, c.hidden = 1, 32
    c.embed = 32 if c.tie_embeddings else 16
    c.batch_size, c.seq_len = 8, 20
    c.steps, c.epochs = min(c.steps or 30, 30), None
    c.eval_every, c.save_every, c.log_every = 15, 10, 5
    c.eval_batch_size = 512
    return c


VARIANTS = {"char": char, "word_small": word_small, "word_medium": word_medium, "ptb_char": ptb_char,
            "min_gru": min_gru, "peephole": peephole}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Returns the config named by `variant`: ``'char'`` (default) or another of `VARIANTS`, then ``',smoke'``."""
    return pick_variant(variant, VARIANTS, "char", smoke)
