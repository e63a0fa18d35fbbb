"""Tagged sentences as arrays, and the lecture's four ways to batch sequences of different lengths.

A sentence is ``(words, tags)``, two equal-length string tuples. `TaggingVocabularies` maps words,
characters and tags to ids (built on the training split only); `encode_sentence` turns a sentence into
`EncodedSentence` arrays; `tagging_batches` groups them into batches laid out for a batching mode:

* ``'one_by_one'``: one sentence per batch at its own length, no padding at all (a compiled step per
  distinct length, and no parallelism across sentences);
* ``'padding'``: shuffled batches zero-padded to the longest sentence of each batch;
* ``'buckets'``: batches drawn from a few length buckets and padded to the bucket's length (few shapes,
  little padding; the default);
* ``'vmap'``: the buckets' layout, for a loss written for one sentence and batched by ``jax.vmap``.

The layout never changes a sentence's result: padded tokens have ``mask`` 0 and ``char_lengths`` 0.
Each batch is a dict: ``words [B, T]``, ``lengths [B]``, ``chars [B, T, C]``, ``char_lengths [B, T]``,
``tags [B, T]``, ``mask [B, T]`` (1.0 on real tokens), ``word_drop [B, T]`` (the probability word dropout
replaces the token by ``<unk>``), ``unseen [B, T]`` (the word form never occurs in training) and
``index [B]`` (the sentence's position in its split, to put predictions back in order).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from rnn_jax.data.vocab import Vocabulary
from rnn_jax.sequence import bucket_indices

MODES = ("one_by_one", "padding", "buckets", "vmap")
FORMAT = "rnn_jax.tagging_vocabularies/1"


@dataclasses.dataclass(frozen=True)
class TaggingVocabularies:
    """Word, character and tag vocabularies, plus the training words' counts (for word dropout and for
    telling unseen words apart). Words are looked up lower-cased when `lowercase`; characters never are."""

    words: Vocabulary
    chars: Vocabulary
    tags: Vocabulary
    counts: dict
    lowercase: bool = True

    @classmethod
    def build(cls, sentences: Sequence[tuple], *, lowercase: bool = True,
              tag_set: Sequence[str] | None = None) -> "TaggingVocabularies":
        """Returns the vocabularies of training `sentences` (``(words, tags)`` pairs); the tags are
        `tag_set` (sorted) when given, else those the sentences hold."""
        forms = collections.Counter(w for words, _ in sentences for w in words)
        keys = collections.Counter()
        for w, c in forms.items():
            keys[w.lower() if lowercase else w] += c
        chars = Vocabulary.build(w for words, _ in sentences for w in words)
        tags = Vocabulary.build([tag_set] if tag_set is not None else (tags for _, tags in sentences), pad=None,
                                unk=None, order="sorted")
        return cls(Vocabulary.build(keys), chars, tags, dict(forms), lowercase)

    def word_key(self, word: str) -> str:
        """The form a word is looked up by in `words`."""
        return word.lower() if self.lowercase else word

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the vocabularies as one JSON file; returns its path."""
        path = Path(path)
        body = {"format": FORMAT, "lowercase": self.lowercase, "counts": self.counts,
                **{name: getattr(self, name).to_dict() for name in ("words", "chars", "tags")}}
        path.write_text(json.dumps(body, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TaggingVocabularies":
        """Reads vocabularies written by `save`."""
        body = json.loads(Path(path).read_text())
        if body.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file (format={body.get('format')!r})")
        return cls(*(Vocabulary.from_dict(body[n]) for n in ("words", "chars", "tags")), body["counts"],
                   body["lowercase"])


class EncodedSentence(NamedTuple):
    """One sentence as arrays: ``words [T]``, ``chars [T, C]``, ``char_lengths [T]``, ``tags [T]``,
    ``word_drop [T]`` float32, ``unseen [T]`` bool."""

    words: np.ndarray
    chars: np.ndarray
    char_lengths: np.ndarray
    tags: np.ndarray
    word_drop: np.ndarray
    unseen: np.ndarray


def clip_word(word: str, max_chars: int) -> str:
    """Returns `word`, or its first ``ceil(max_chars / 2)`` and last ``floor(max_chars / 2)`` characters
    when it is longer than `max_chars` (prefixes and suffixes carry a word's morphology)."""
    if len(word) <= max_chars:
        return word
    head = (max_chars + 1) // 2
    return word[:head] + word[len(word) - (max_chars - head):]


def encode_sentence(words: Sequence[str], tags: Sequence[str], vocabs: TaggingVocabularies, *,
                    max_word_chars: int, word_dropout_alpha: float = 0.0) -> EncodedSentence:
    """Returns the arrays of one sentence; chars are padded to ``C = max_word_chars`` (longer words clipped,
    `clip_word`); ``word_drop`` is ``alpha / (alpha + count(word))`` (Kiperwasser & Goldberg 2016: rare
    training words are replaced by ``<unk>`` most often, so its embedding learns what unseen words need)."""
    if len(words) != len(tags) or not words:
        raise ValueError(f"a sentence needs >= 1 word and one tag per word, got {len(words)} words, "
                         f"{len(tags)} tags")
    T = len(words)
    chars = np.zeros((T, max_word_chars), np.int32)
    char_lengths = np.zeros(T, np.int32)
    for i, w in enumerate(words):
        ids = vocabs.chars.encode(clip_word(w, max_word_chars))
        chars[i, :len(ids)] = ids
        char_lengths[i] = len(ids)
    counts = np.array([vocabs.counts.get(w, 0) for w in words], np.float32)  # 0: unseen, already <unk>
    drop = np.where(counts > 0, word_dropout_alpha / (word_dropout_alpha + np.maximum(counts, 1.0)), 0.0)
    return EncodedSentence(vocabs.words.encode([vocabs.word_key(w) for w in words]), chars, char_lengths,
                           vocabs.tags.encode(list(tags)), drop.astype(np.float32), counts == 0)


def stack_sentences(sentences: Sequence[EncodedSentence], indices: Sequence[int], T: int) -> dict:
    """Returns the batch dict (module docstring) of `sentences` padded to `T` words (a longer sentence is cut to
    its first T words: `tagging_batches` with ``overflow='truncate'``)."""
    B, C = len(sentences), sentences[0].chars.shape[1]
    batch = {"words": np.zeros((B, T), np.int32), "lengths": np.zeros(B, np.int32),
             "chars": np.zeros((B, T, C), np.int32), "char_lengths": np.zeros((B, T), np.int32),
             "tags": np.zeros((B, T), np.int32), "mask": np.zeros((B, T), np.float32),
             "word_drop": np.zeros((B, T), np.float32), "unseen": np.zeros((B, T), bool),
             "index": np.asarray(indices, np.int32)}
    for b, s in enumerate(sentences):
        n = min(len(s.words), T)
        batch["lengths"][b] = n
        batch["mask"][b, :n] = 1.0
        for name in ("words", "chars", "char_lengths", "tags", "word_drop", "unseen"):
            batch[name][b, :n] = getattr(s, name)[:n]
    return batch


def _groups(lengths, mode, batch_size, buckets, shuffle, seed, overflow) -> list:
    """Returns the batches as ``(padded length or None, indices)`` in the mode's grouping."""
    if mode in ("buckets", "vmap"):
        return bucket_indices(lengths, buckets, batch_size, shuffle=shuffle, seed=seed, overflow=overflow)
    order = np.random.default_rng(seed).permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    size = 1 if mode == "one_by_one" else batch_size
    return [(None, order[i:i + size]) for i in range(0, len(order), size)]


def tagging_batches(sentences: Sequence[EncodedSentence], mode: str, *, batch_size: int,
                    buckets: Sequence[int] = (), shuffle: bool = False, seed: int = 0,
                    drop_remainder: bool = False, overflow: str = "error") -> Iterator[dict]:
    """Yields the batch dicts of `sentences` laid out for `mode` (module docstring).

    Args:
      sentences: encoded sentences; ``index`` in a batch is a position in this sequence.
      mode: one of `MODES` (``'one_by_one'`` ignores `batch_size`: one sentence per batch).
      batch_size: sentences per batch (the last of a group may be short unless `drop_remainder`).
      buckets: increasing padded lengths (``'buckets'`` / ``'vmap'``), the last >= the longest sentence unless
        `overflow` says what to do with longer ones.
      shuffle, seed: shuffle sentences (and, with buckets, the order of batches) by a NumPy generator.
      drop_remainder: leave out batches shorter than `batch_size` (training; not for ``'one_by_one'``).
      overflow: with buckets, a sentence past the last: ``'error'`` (a ValueError naming it and its length),
        ``'truncate'`` (its first ``buckets[-1]`` words, ``lengths`` and ``mask`` say so) or ``'drop'`` (left
        out); `rnn_jax.sequence.bucket_overflow` counts them.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lengths = np.array([len(s.words) for s in sentences])
    for bound, idx in _groups(lengths, mode, batch_size, buckets, shuffle, seed, overflow):
        if drop_remainder and mode != "one_by_one" and len(idx) < batch_size:
            continue
        yield stack_sentences([sentences[i] for i in idx], idx, bound or int(lengths[idx].max()))
