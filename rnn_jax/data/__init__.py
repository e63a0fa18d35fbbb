"""Readers of real corpora, vocabularies and batching for the experiments.

* `files`: the data root (``data_dir`` argument, else ``$RNN_JAX_DATA``), locating files, sha256 checks.
* `text`: tiny Shakespeare (TFDS's 90/5/5 cut) and Penn Treebank (Mikolov) at char and word level.
* `sst`: Stanford Sentiment Treebank trees -> SST-5 / SST-2 sentences or all labelled phrases; bucketed batches.
* `vocab`: `Vocabulary` built from a training split, ``<pad>`` = 0, ``<unk>``, optional ``<bos>``/``<eos>``, JSON.
* `lm`: token streams as ``B`` parallel streams in chunks of ``T`` steps for truncated BPTT, resumable.
* `tfds_builders` (imported on demand; imports tensorflow_datasets, never TensorFlow): TFDS builders that
  prepare these corpora as array_record from the local copy, read back with ``tfds.data_source``.

Nothing here reads files at import time.
"""

from rnn_jax.data.files import data_root, locate, verify_file
from rnn_jax.data.lm import LMBatch, LMBatches, LMCorpus, LMIterator, load_lm_corpus, lm_vocabulary
from rnn_jax.data.sst import (SentenceBatch, SentimentExample, Tree, bucket_lengths_for, parse_tree, read_sst,
                              read_sst_trees, sentence_batches, sst_vocabulary, to_binary, tree_phrases)
from rnn_jax.data.text import (SPLITS, canonical_split, decode_ptb_char_line, lm_tokens, read_ptb,
                               read_tiny_shakespeare, split_like_tfds)
from rnn_jax.data.vocab import Vocabulary

__all__ = [
    "data_root", "locate", "verify_file", "LMBatch", "LMBatches", "LMCorpus", "LMIterator", "load_lm_corpus",
    "lm_vocabulary", "SentenceBatch", "SentimentExample", "Tree", "bucket_lengths_for", "parse_tree", "read_sst",
    "read_sst_trees", "sentence_batches", "sst_vocabulary", "to_binary", "tree_phrases", "SPLITS",
    "canonical_split", "decode_ptb_char_line", "lm_tokens", "read_ptb", "read_tiny_shakespeare", "split_like_tfds",
    "Vocabulary",
]
