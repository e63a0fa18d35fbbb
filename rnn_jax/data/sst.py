"""Split readers of the Stanford Sentiment Treebank: (tokens, label) sentences or phrases, and their batches.

The tree format (`Tree`, `parse_tree`, `tree_phrases`, `to_binary`) is parsed in `rnn_jax.data.sst_format`;
this module reads the splits, from the local files or the TFDS ``sst`` dataset, and batches them.

* SST-5 (fine-grained): every sentence, labels 0 very negative .. 4 very positive: 8,544 / 1,101 / 2,210.
* SST-2 (binary): neutral (2) sentences dropped, 0/1 -> 0 (negative), 3/4 -> 1 (positive): 6,920 / 872 / 1,821.
* ``phrases=True``: every labelled node of the trees (the root included) as an example, the standard way to
  train on SST (Socher et al. 2013; Tai et al. 2015); by default each distinct token span is kept once.

`sentence_batches` pads examples into a few bucket lengths with `rnn_jax.sequence.bucket_by_length`.
"""

from __future__ import annotations

import os
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from rnn_jax.data import files
from rnn_jax.data.splits import canonical_split
from rnn_jax.data.sst_format import SentimentExample, parse_trees, to_binary, tree_lines, tree_phrases
from rnn_jax.data.vocab import Vocabulary
from rnn_jax.sequence import bucket_by_length


def _split_lines(split: str, data_dir, source: str, tfds_dir, verify: bool) -> tuple[list[str], str]:
    """Returns a split's tree lines and where they were read (a file path or the TFDS split), for errors."""
    split = canonical_split(split)
    if files.resolve_source(source, data_dir) == "tfds":
        from rnn_jax.data import tfds_builders  # imports tensorflow_datasets: only on this path
        records = tfds_builders.read_records("sst", split, tfds_dir=tfds_dir, data_dir=data_dir)
        return [r["tree"] for r in records], f"TFDS sst/{split}"
    relpath, alternatives = files.sst_relpath(split)
    path = files.locate(relpath, data_dir, alternatives=alternatives, verify=verify)
    return tree_lines(files.read_text(path), str(path)), str(path)


def read_sst_trees(split: str, *, data_dir: str | os.PathLike | None = None, source: str = "auto",
                   tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> list[str]:
    """Returns the tree lines (`str`, one per sentence, file order) of a split (train / validation = dev / test).

    Args: as in `rnn_jax.data.text.read_tiny_shakespeare`; files are ``sentiment/sst/{train,dev,test}.txt``
    (or the official zip's ``trees/*.txt``, see `files.sst_relpath`); the TFDS dataset is ``sst``.
    """
    return _split_lines(split, data_dir, source, tfds_dir, verify)[0]


def read_sst(split: str, *, binary: bool = False, phrases: bool = False, unique_phrases: bool = True,
             lowercase: bool = False, data_dir: str | os.PathLike | None = None, source: str = "auto",
             tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> list[SentimentExample]:
    """Returns the split's examples as `SentimentExample` (tokens tuple, int label), in file order.

    Args:
      split: train / validation (dev) / test.
      binary: SST-2 (neutral dropped, labels 0/1) instead of SST-5 (labels 0-4).
      phrases: every labelled node of each tree instead of the sentences only (root first, pre-order).
      unique_phrases: with `phrases`, keep each distinct token span once (its first occurrence).
      lowercase: lower-case the tokens.
      data_dir, source, tfds_dir, verify: where to read, as in `read_sst_trees`.

    Raises:
      ValueError: a malformed tree line; the message names the file (or TFDS split), the line's number and text.
    """
    out, seen = [], set()
    for tree in parse_trees(*_split_lines(split, data_dir, source, tfds_dir, verify)):
        items = tree_phrases(tree) if phrases else [SentimentExample(tuple(tree.leaves()), tree.label)]
        for tokens, label in items:
            if binary:
                label = to_binary(label)
                if label is None:
                    continue
            if lowercase:
                tokens = tuple(t.lower() for t in tokens)
            if phrases and unique_phrases:
                if tokens in seen:
                    continue
                seen.add(tokens)
            out.append(SentimentExample(tokens, label))
    return out


def sst_vocabulary(train_examples: Sequence[SentimentExample], *, min_count: int = 1) -> Vocabulary:
    """Returns a vocabulary (``<pad>`` = 0, ``<unk>`` = 1, words by frequency) of the training examples' tokens."""
    return Vocabulary.build((ex.tokens for ex in train_examples), min_count=min_count)


def bucket_lengths_for(lengths: Sequence[int], num_buckets: int = 4, *, multiple: int = 8) -> tuple[int, ...]:
    """Returns increasing bucket lengths: the length quantiles ``k / num_buckets`` rounded up to `multiple`,
    the last one covering the longest sequence (e.g. SST sentences: ``(16, 24, 32, 56)``)."""
    lengths = np.asarray(lengths)
    if lengths.size == 0 or num_buckets < 1 or multiple < 1:
        raise ValueError(f"need lengths, num_buckets >= 1 and multiple >= 1, got {lengths.size} lengths, "
                         f"{num_buckets}, {multiple}")
    qs = np.quantile(lengths, np.arange(1, num_buckets + 1) / num_buckets)
    qs[-1] = lengths.max()
    bounds = sorted({int(max(multiple, multiple * np.ceil(q / multiple))) for q in qs})
    return tuple(bounds)


class SentenceBatch(NamedTuple):
    """A padded batch of sentences.

    tokens: ``[B, T_bucket]`` int32 ids, `pad_id` past each length. lengths: ``[B]`` int32.
    labels: ``[B]`` int32. weights: ``[B]`` float32, 1 for real examples and 0 for rows added by
    ``pad_batch`` (those have length 1, a single pad token, so pooling never divides by zero; weight the
    loss as ``sum(weights * loss), sum(weights)``). indices: ``[B]`` int64 into the examples, -1 for added rows.
    """
    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    indices: np.ndarray


def sentence_batches(examples: Sequence[SentimentExample], vocab: Vocabulary, *, batch_size: int,
                     bucket_lengths: Sequence[int] | None = None, shuffle: bool = False, seed: int = 0,
                     drop_remainder: bool = False, pad_batch: bool = False,
                     overflow: str = "error") -> Iterator[SentenceBatch]:
    """Yields `SentenceBatch` padded to a few bucket lengths (`rnn_jax.sequence.bucket_by_length`).

    Args:
      examples: (tokens, label) examples; tokens are encoded with `vocab` (unknown -> ``<unk>``).
      vocab: a vocabulary with a pad token.
      batch_size: ``B``.
      bucket_lengths: increasing padded lengths; None: `bucket_lengths_for` the examples' lengths.
      shuffle, seed: shuffle within buckets and the batch order (pass the epoch as `seed` for a new order each epoch).
      drop_remainder: drop each bucket's short last batch (training).
      pad_batch: fill each short batch up to ``B`` rows of weight 0, so every batch has one of
        ``len(bucket_lengths)`` shapes (evaluation without extra compilations).
      overflow: an example past the last of `bucket_lengths`: ``'error'``, ``'truncate'`` (its first
        ``bucket_lengths[-1]`` tokens) or ``'drop'``, as in `rnn_jax.sequence.bucket_by_length`.

    The order depends only on the arguments: to resume mid-epoch, rebuild with the same seed and skip the
    batches already used (``itertools.islice``).
    """
    if vocab.pad_id is None:
        raise ValueError("vocab must have a pad token to pad sentences")
    if len(examples) == 0:
        return
    ids = [vocab.encode(ex.tokens) for ex in examples]
    empty = [i for i, x in enumerate(ids) if len(x) == 0]
    if empty:
        raise ValueError(f"examples must have at least one token: examples[{empty[0]}] has none "
                         f"({len(empty)} of {len(ids)} are empty)")
    if bucket_lengths is None:
        bucket_lengths = bucket_lengths_for([len(x) for x in ids])
    labels = [ex.label for ex in examples]
    for padded, lengths, indices, labs in bucket_by_length(
            ids, bucket_lengths, batch_size, batch_first=True, padding_value=vocab.pad_id, shuffle=shuffle,
            seed=seed, drop_remainder=drop_remainder, extras=labels, overflow=overflow):
        n = len(indices)
        tokens = padded.astype(np.int32)  # [n, T_bucket]
        lengths = lengths.astype(np.int32)  # [n]
        labs = np.asarray(labs, dtype=np.int32)  # [n]
        weights = np.ones(n, dtype=np.float32)
        indices = np.asarray(indices, dtype=np.int64)
        if pad_batch and n < batch_size:
            extra = batch_size - n
            tokens = np.concatenate([tokens, np.full((extra, tokens.shape[1]), vocab.pad_id, np.int32)])  # [B, T]
            lengths = np.concatenate([lengths, np.ones(extra, np.int32)])
            labs = np.concatenate([labs, np.zeros(extra, np.int32)])
            weights = np.concatenate([weights, np.zeros(extra, np.float32)])
            indices = np.concatenate([indices, np.full(extra, -1, np.int64)])
        yield SentenceBatch(tokens, lengths, labs, weights, indices)
