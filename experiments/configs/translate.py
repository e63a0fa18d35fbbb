"""Configs of Multi30k translation (`experiments/translate.py`).

Variants by name after the file, comma-separated (``:cho_de_en,smoke``); the default is ``bahdanau_en_de``.
Measured on the 2-core CPU with ``RNN_JAX_DATA=../shared/data`` (BUILD_NOTES.md, issue 11):

* ``bahdanau_en_de`` (default): Bahdanau et al. 2015's RNNsearch at a CPU size: word vocabularies of the
  training split (min count 2), embeddings 256, a bidirectional Cho-form GRU encoder of 256 per direction,
  a GRU decoder of 256 with additive attention from the previous state over the masked encoder states, a
  maxout readout of 256; dropout 0.3, label smoothing 0.1, Adam 1e-3 with cosine decay, clipping 1,
  batches of 64 pairs from source-length buckets; selected by validation BLEU (greedy) at each epoch's
  end; test decoded by beam search (beam 8, length normalisation ``score / len**1``).
  ``python -m experiments.translate --workdir=W``: 63 min on the 2-core CPU (12 epochs at ~2 steps/s, then
  beam and greedy decoding of five sets; about 10 of those minutes shared with other work), selected at
  epoch 9 by validation BLEU 36.8 (greedy): **test2016 BLEU 38.51** with beam 8 (greedy 36.80), lowercased
  tokenised, 38.50 detokenised 13a; test2017 30.40, mscoco2017 25.98, test2018 28.55 (beam). Target 34.0,
  stretch 36.0; Elliott & Kadar 2017's 1000-unit attentive GRU, beam 12: 35.5.
* ``bahdanau_de_en``: the same, German to English: 46 min (niced work beside it, idle cycles only),
  selected at epoch 8 by validation BLEU 39.6 (greedy): **test2016 BLEU 41.32** with beam 8 (greedy 39.80),
  41.30 detokenised 13a; test2017 35.05, mscoco2017 27.97, test2018 34.05. Target 35.0, stretch 38.0;
  bentrevett's PyTorch tutorial (de->en, Bahdanau attention, greedy) 28.30.
* ``cho_en_de`` / ``cho_de_en``: Cho et al. 2014's encoder-decoder (no attention; the summary vector fed
  to every decoder step and the readout), the same sizes. ``python -m experiments.translate
  --config=experiments/configs/translate.py:cho_en_de --workdir=W``: both directions were run side by side
  (each on about one core) over two sessions with a resume between them, about 77 min (en->de) and 68 min
  (de->en) in all, not idle figures. Selected at the last epoch (validation BLEU still rising: en->de 24.3,
  de->en 26.6 greedy): **en->de test2016 BLEU 27.26** with beam 8 (greedy 25.33); **de->en 28.59** (greedy
  26.81). Attention is worth 11-13 BLEU here. bentrevett's PyTorch Cho model (de->en, greedy): 20.61.
* ``luong_en_de``: multiplicative ('general') scores on the Bahdanau model (the ordering of Bahdanau).
* ``smoke``: a tiny model on 256 training pairs for 2 epochs, 40 pairs per evaluation set (tests).
"""

import ml_collections
from ml_collections import config_dict

from experiments.configs import add_run_fields, pick_variant


def bahdanau_en_de() -> ml_collections.ConfigDict:
    """Returns the default config: Bahdanau attention, English to German."""
    c = ml_collections.ConfigDict()
    c.data_dir = config_dict.placeholder(str)  # None: $RNN_JAX_DATA, else TFDS / the official repository
    c.src, c.tgt = "en", "de"
    c.min_count = 2  # rarer training words are <unk>
    c.max_train_pairs = 0  # 0: all
    c.max_eval_pairs = 0  # 0: all
    c.max_train_len = 50  # training sides cut to this many tokens
    c.extra_tests = ("test2017", "mscoco2017", "test2018")  # decoded at the end beside valid and test2016
    # model: a paper's settings (rnn_jax.models.seq2seq) with these sizes and overrides
    c.model = "bahdanau"  # bahdanau | cho | luong
    c.embed = 256
    c.hidden = 256
    c.model_fields = ml_collections.ConfigDict({"readout_size": 256})
    c.dropout = 0.3
    c.label_smoothing = 0.1
    # optimisation
    c.batch_size = 64
    c.buckets = (10, 13, 16, 20, 26, 40, 64)  # source lengths
    c.overflow = "error"  # a training source past the last bucket: error | truncate | drop (evaluation: cut to it)
    c.learning_rate = 1e-3  # Adam, cosine decay
    c.clip_norm = 1.0
    c.epochs = 12
    c.select_by = "bleu"  # bleu (validation, greedy) | loss
    # decoding
    c.max_decode_len = 60
    c.beam_size = 8
    c.length_penalty = 1.0  # score / len**alpha
    c.attention_plots = 4
    # the loop: evaluation and checkpoints at each epoch's end
    c.log_every = 100
    c.save_every = config_dict.placeholder(int)  # None: at each evaluation (each epoch's end)
    c.keep_checkpoints = 1
    c.eval_batch_size = 128
    c.seed = 0
    add_run_fields(c)
    return c


def bahdanau_de_en() -> ml_collections.ConfigDict:
    """Returns the default model, German to English."""
    c = bahdanau_en_de()
    c.src, c.tgt = "de", "en"
    return c


def cho_en_de() -> ml_collections.ConfigDict:
    """Returns Cho et al. 2014's model (no attention), English to German."""
    c = bahdanau_en_de()
    c.model = "cho"
    return c


def cho_de_en() -> ml_collections.ConfigDict:
    """Returns Cho et al. 2014's model (no attention), German to English."""
    c = cho_en_de()
    c.src, c.tgt = "de", "en"
    return c


def luong_en_de() -> ml_collections.ConfigDict:
    """Returns the default with Luong's 'general' multiplicative scores."""
    c = bahdanau_en_de()
    c.model_fields.attention = "general"
    return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Returns `c` shrunk so the whole pipeline runs in seconds."""
    c.embed = c.hidden = 16
    c.model_fields.readout_size = 16
    c.batch_size, c.epochs = 32, 2
    c.max_train_pairs, c.max_eval_pairs = 256, 40
    c.extra_tests = ("test2018",)
    c.buckets = (64,)
    c.max_decode_len = 20
    c.beam_size = 3
    c.attention_plots = 1
    c.log_every = 2
    c.eval_batch_size = 40
    return c


VARIANTS = {"bahdanau_en_de": bahdanau_en_de, "bahdanau_de_en": bahdanau_de_en, "cho_en_de": cho_en_de,
            "cho_de_en": cho_de_en, "luong_en_de": luong_en_de}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Returns the config named by `variant` (one of `VARIANTS`, default ``bahdanau_en_de``), then ``',smoke'``."""
    return pick_variant(variant, VARIANTS, "bahdanau_en_de", smoke)
