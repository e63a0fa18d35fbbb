"""Parallel sentences (source, target) as arrays for an encoder-decoder, batched by source length.

`pair_vocabularies` builds the two word vocabularies of a training split (``<pad>`` 0, ``<unk>`` 1,
``<s>`` 2, ``</s>`` 3); `encode_pairs` turns tokenised line pairs into id arrays; `pair_batches` groups them
into a few source-length buckets and pads each batch:

* ``src [B, S]`` source ids, ``src_lengths [B]`` (>= 1);
* ``tgt_in [B, T]`` = ``<s> y_1 .. y_n`` and ``tgt_out [B, T]`` = ``y_1 .. y_n </s>`` (teacher forcing),
  ``mask [B, T]`` 1.0 on the n + 1 real target positions;
* ``index [B]`` each pair's position in its split (to put translations back in order).

T is the batch's longest target rounded up to a multiple of `tgt_multiple`, so a jit-compiled step sees
few shapes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from rnn_jax.data.vocab import Vocabulary
from rnn_jax.sequence import bucket_indices

SPECIALS = dict(pad="<pad>", unk="<unk>", bos="<s>", eos="</s>")


class EncodedPair(NamedTuple):
    """One sentence pair as ids: ``src [S]`` and ``tgt [n]`` (no ``<s>``/``</s>``)."""

    src: np.ndarray
    tgt: np.ndarray


def pair_vocabularies(pairs: Sequence[tuple[str, str]], *, min_count: int = 1) -> tuple[Vocabulary, Vocabulary]:
    """Returns (source, target) word vocabularies of whitespace-tokenised training `pairs`."""
    src = Vocabulary.build((s.split() for s, _ in pairs), min_count=min_count, **SPECIALS)
    tgt = Vocabulary.build((t.split() for _, t in pairs), min_count=min_count, **SPECIALS)
    return src, tgt


def save_vocabularies(vocabs: tuple[Vocabulary, Vocabulary], path: str | os.PathLike) -> None:
    """Writes (source, target) vocabularies as one JSON file ``{"src": ..., "tgt": ...}``."""
    body = {"src": vocabs[0].to_dict(), "tgt": vocabs[1].to_dict()}
    Path(path).write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")


def load_vocabularies(path: str | os.PathLike) -> tuple[Vocabulary, Vocabulary]:
    """Reads the (source, target) vocabularies `save_vocabularies` wrote."""
    body = json.loads(Path(path).read_text(encoding="utf-8"))
    return Vocabulary.from_dict(body["src"]), Vocabulary.from_dict(body["tgt"])


def encode_pairs(pairs: Sequence[tuple[str, str]], src_vocab: Vocabulary, tgt_vocab: Vocabulary,
                 *, max_len: int | None = None) -> list[EncodedPair]:
    """Returns the pairs as ids; a side longer than `max_len` tokens is cut to it (None: never).

    An empty source is a ValueError naming the pair (a translation needs something to translate).
    """
    out = []
    for i, (s, t) in enumerate(pairs):
        src, tgt = s.split()[:max_len], t.split()[:max_len]
        if not src:
            raise ValueError(f"pair {i} has an empty source line (target {t!r})")
        out.append(EncodedPair(src_vocab.encode(src), tgt_vocab.encode(tgt)))
    return out


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def stack_pairs(pairs: Sequence[EncodedPair], indices, S: int, *, tgt_multiple: int, bos_id: int,
                eos_id: int) -> dict:
    """Returns the batch dict (module docstring) of `pairs`, sources padded to `S` (a longer source is cut to
    its first S tokens: `pair_batches` with ``overflow='truncate'``)."""
    B = len(pairs)
    T = _round_up(max(len(p.tgt) for p in pairs) + 1, tgt_multiple)
    batch = {"src": np.zeros((B, S), np.int32), "src_lengths": np.zeros(B, np.int32),
             "tgt_in": np.zeros((B, T), np.int32), "tgt_out": np.zeros((B, T), np.int32),
             "mask": np.zeros((B, T), np.float32), "index": np.asarray(indices, np.int32)}
    for b, p in enumerate(pairs):
        n, src = len(p.tgt), p.src[:S]
        batch["src"][b, :len(src)] = src
        batch["src_lengths"][b] = len(src)
        batch["tgt_in"][b, :n + 1] = np.concatenate([[bos_id], p.tgt])
        batch["tgt_out"][b, :n + 1] = np.concatenate([p.tgt, [eos_id]])
        batch["mask"][b, :n + 1] = 1.0
    return batch


def pair_batches(pairs: Sequence[EncodedPair], *, batch_size: int, buckets: Sequence[int], bos_id: int,
                 eos_id: int, tgt_multiple: int = 8, shuffle: bool = False, seed: int = 0,
                 drop_remainder: bool = False, overflow: str = "error") -> Iterator[dict]:
    """Yields batches of `pairs` from source-length buckets (each source padded to its bucket's bound).

    Args:
      pairs: encoded pairs; ``index`` in a batch is a position in this sequence.
      batch_size: pairs per batch (a bucket's last batch may be short unless `drop_remainder`).
      buckets: increasing source lengths, the last >= the longest source unless `overflow` says otherwise.
      bos_id, eos_id: the target's start and end ids.
      tgt_multiple: targets are padded to a multiple of this.
      shuffle, seed: shuffle within buckets and the order of batches (NumPy generator).
      overflow: a source past the last bucket: ``'error'`` (a ValueError naming the pair and its length),
        ``'truncate'`` (its first ``buckets[-1]`` tokens; the target is kept whole) or ``'drop'`` (the pair left
        out); `rnn_jax.sequence.bucket_overflow` counts them.
    """
    lengths = [len(p.src) for p in pairs]
    groups = bucket_indices(lengths, buckets, batch_size, shuffle=shuffle, seed=seed, drop_remainder=drop_remainder,
                            overflow=overflow)
    for bound, idx in groups:
        yield stack_pairs([pairs[i] for i in idx], idx, bound, tgt_multiple=tgt_multiple, bos_id=bos_id,
                          eos_id=eos_id)
