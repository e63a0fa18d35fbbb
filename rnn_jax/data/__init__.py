"""Readers of real corpora, vocabularies and batching for the experiments, in three layers.

A module imports only from layers below its own, never upward (not even inside a function):

1. **Bottom**: pure pieces that never touch TFDS. The parsers take text already read and never locate a file.

   * `splits`: split names ``train`` / ``validation`` / ``test`` and their aliases (``valid``, ``dev``).
   * `text_format` (parser): tiny Shakespeare's 90/5/5 cut as TFDS makes it; PTB word and char line decoding.
   * `sst_format` (parser): SST's PTB-style trees -> `Tree`, labelled phrases, SST-2 labels; tree lines.
   * `conllu_format` (parser): CoNLL-U -> `TaggedSentence` (words, UPOS, XPOS), strictly, line numbers in
     errors; sentence blocks; `replace_tags` writes predicted tags back byte for byte.
   * `translation_format` (parser): line-aligned parallel text -> pairs; Moses `detokenize` (sacremoses).
   * `captions_format` (parser): COCO caption JSON and Karpathy-split JSON -> `CaptionedImage`; caption words.
   * `files`: the data root (``data_dir`` argument, else ``$RNN_JAX_DATA``), which file holds which split,
     locating files, sha256 checks, reading plain or gzipped text (uses `splits`); UD and Multi30k file names.
   * `vocab`: `Vocabulary` built from a training split, ``<pad>`` = 0, ``<unk>``, optional ``<bos>``/``<eos>``, JSON.

2. **Builders**: `tfds_builders` (imported on demand; imports tensorflow_datasets, never TensorFlow): TFDS
   builders that prepare these corpora as array_record from the local copy (or the official download)
   through the parsers above, read back with ``tfds.data_source``.

3. **Split readers**, from the local files or the TFDS datasets:

   * `text`: tiny Shakespeare and Penn Treebank (Mikolov) splits at char and word level; LM token streams.
   * `sst`: Stanford Sentiment Treebank -> SST-5 / SST-2 sentences or all labelled phrases; bucketed batches.
   * `lm` (on `text`): token streams as ``B`` parallel streams in chunks of ``T`` steps for truncated BPTT,
     resumable.
   * `ud`: Universal Dependencies English EWT (2.16 or 2.2) -> tagged sentences, and the raw CoNLL-U text.
   * `multi30k`: Multi30k task 1 English-German pairs, tokenised or raw, every test set.
   * `tagging`: tagged sentences as word, character and tag ids; the four batching layouts (one by one,
     padding to the longest, length buckets, buckets for a vmapped loss).
   * `parallel`: sentence pairs as ids for teacher forcing, in source-length buckets.
   * `captions`: captioned images (COCO-MINI, any COCO or Flickr/COCO Karpathy-split folder), their JPEG bytes
     decoded and resized in memory, or precomputed features per image.
   * `caption_batches`: batches of images with all their captions as ids for teacher forcing.

Nothing here reads files at import time.
"""

from rnn_jax.data.captions import read_captions
from rnn_jax.data.captions_format import CaptionedImage, tokenize_caption
from rnn_jax.data.conllu_format import TaggedSentence, parse_conllu, replace_tags
from rnn_jax.data.files import data_root, locate, verify_file
from rnn_jax.data.lm import LMBatch, LMBatches, LMCorpus, LMIterator, load_lm_corpus, lm_vocabulary
from rnn_jax.data.multi30k import read_multi30k
from rnn_jax.data.splits import SPLITS, canonical_split
from rnn_jax.data.sst import (SentenceBatch, bucket_lengths_for, read_sst, read_sst_trees, sentence_batches,
                              sst_vocabulary)
from rnn_jax.data.sst_format import SentimentExample, Tree, parse_tree, to_binary, tree_phrases
from rnn_jax.data.text import lm_tokens, read_ptb, read_tiny_shakespeare
from rnn_jax.data.text_format import decode_ptb_char_line, split_like_tfds
from rnn_jax.data.translation_format import detokenize
from rnn_jax.data.ud import read_ud, tag_set, ud_text
from rnn_jax.data.vocab import Vocabulary

__all__ = [
    "data_root", "locate", "verify_file", "LMBatch", "LMBatches", "LMCorpus", "LMIterator", "load_lm_corpus",
    "lm_vocabulary", "SentenceBatch", "SentimentExample", "Tree", "bucket_lengths_for", "parse_tree", "read_sst",
    "read_sst_trees", "sentence_batches", "sst_vocabulary", "to_binary", "tree_phrases", "SPLITS",
    "canonical_split", "decode_ptb_char_line", "lm_tokens", "read_ptb", "read_tiny_shakespeare", "split_like_tfds",
    "Vocabulary", "TaggedSentence", "parse_conllu", "replace_tags", "read_multi30k", "detokenize", "read_ud",
    "tag_set", "ud_text", "read_captions", "CaptionedImage", "tokenize_caption",
]
