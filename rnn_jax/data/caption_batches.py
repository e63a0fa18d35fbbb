"""Captions as arrays for a captioning decoder: every caption of an image in one batch row.

`caption_vocabulary` builds the word vocabulary of the training captions (``<pad>`` 0, ``<unk>`` 1, ``<s>``
2, ``</s>`` 3, as `rnn_jax.data.parallel`); `encode_captions` turns each image's tokenised captions into
id arrays; `caption_batches` groups images into batches whose row b holds all captions of image b:

* ``index [B]``: each image's position in its split (the task gathers its pixels or features by it, and
  puts generated captions back in order);
* ``tgt_in [B, R, T]`` = ``<s> y_1 .. y_n``, ``tgt_out [B, R, T]`` = ``y_1 .. y_n </s>`` (teacher forcing),
  ``mask [B, R, T]`` 1.0 on the n + 1 real positions of each real caption; an image with fewer than R
  captions has all-zero rows for the missing ones.

R (``refs``) is fixed per run (the most captions any image has, 5 for COCO and Flickr) and T is the batch's
longest caption plus one, rounded up to a multiple of `len_multiple`, so a jit-compiled step sees few shapes.
Training on every caption of an image in the same step encodes the image once for all of them; an epoch
still sees every (image, caption) pair exactly once.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from rnn_jax.checks import check_size
from rnn_jax.data.parallel import SPECIALS
from rnn_jax.data.vocab import Vocabulary


def caption_vocabulary(captions: Iterable[Sequence[Sequence[str]]], *, min_count: int = 1) -> Vocabulary:
    """Returns the word vocabulary of tokenised training captions (one sequence of captions per image)."""
    return Vocabulary.build((c for image in captions for c in image), min_count=min_count, **SPECIALS)


def encode_captions(captions: Sequence[Sequence[Sequence[str]]], vocab: Vocabulary, *,
                    max_len: int | None = None) -> list[list[np.ndarray]]:
    """Returns each image's captions as id arrays ``[n]`` (no ``<s>``/``</s>``), cut to `max_len` tokens.

    An empty caption is a ValueError naming the image and caption positions (it would teach only ``</s>``).
    """
    if max_len is not None:
        check_size("max_len", max_len)
    out = []
    for i, image in enumerate(captions):
        if not image:
            raise ValueError(f"captions[{i}] must hold at least one caption, got none")
        for j, caption in enumerate(image):
            if not caption:
                raise ValueError(f"captions[{i}][{j}] is empty (no tokens); drop it or fix the annotation")
        out.append([vocab.encode(list(c)[:max_len]).astype(np.int32) for c in image])
    return out


def _pad(encoded: Sequence[Sequence[np.ndarray]], rows: np.ndarray, refs: int, bos_id: int, eos_id: int,
         len_multiple: int) -> dict:
    """Returns the teacher-forcing arrays ``[B, R, T]`` of the images `rows`."""
    longest = max(len(c) for i in rows for c in encoded[i]) + 1
    T = -(-longest // len_multiple) * len_multiple
    B = len(rows)
    tgt_in = np.zeros((B, refs, T), np.int32)
    tgt_out = np.zeros((B, refs, T), np.int32)
    mask = np.zeros((B, refs, T), np.float32)
    for b, i in enumerate(rows):
        for r, ids in enumerate(encoded[i][:refs]):
            n = len(ids)
            tgt_in[b, r, 0], tgt_in[b, r, 1:n + 1] = bos_id, ids
            tgt_out[b, r, :n], tgt_out[b, r, n] = ids, eos_id
            mask[b, r, :n + 1] = 1.0
    return {"index": np.asarray(rows, np.int32), "tgt_in": tgt_in, "tgt_out": tgt_out, "mask": mask}


def caption_batches(encoded: Sequence[Sequence[np.ndarray]], *, batch_size: int, refs: int, bos_id: int,
                    eos_id: int, shuffle: bool = False, seed: int = 0, drop_remainder: bool = False,
                    len_multiple: int = 4) -> Iterator[dict]:
    """Yields batches of images with all their captions (see the module docstring), each image once.

    Args:
      encoded: per image, its captions' ids (`encode_captions`).
      batch_size: images per batch (B).
      refs: R, captions per row (an image's captions past R are dropped: pick R >= the most any image has).
      bos_id, eos_id: the vocabulary's ``<s>`` and ``</s>``.
      shuffle, seed: a fresh image order from `seed` (else split order).
      drop_remainder: skip the last batch when it has fewer than `batch_size` images (training).
      len_multiple: T is rounded up to a multiple of this.
    """
    check_size("batch_size", batch_size)
    check_size("refs", refs)
    check_size("len_multiple", len_multiple)
    if not len(encoded):
        raise ValueError("encoded must hold at least one image, got none")
    order = np.arange(len(encoded))
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(encoded))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        if drop_remainder and len(rows) < batch_size:
            return
        yield _pad(encoded, rows, refs, bos_id, eos_id, len_multiple)
