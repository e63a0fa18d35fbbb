"""Language-model batching for truncated backpropagation through time, with a resumable data position.

The split is one token stream ``ids [N]``. Its ``N - 1`` (input, target) pairs, ``inputs = ids[:-1]`` and
``targets = ids[1:]``, are cut into ``B`` contiguous parallel streams of length ``L``, laid out as
``[B, L]`` (stream ``b`` covers pairs ``b*L .. (b+1)*L - 1``), and each stream is read in chunks of ``T``
steps. Chunk ``k`` of every stream continues chunk ``k - 1``, so a model carries its state from one batch to
the next (stop-gradient between them: truncated BPTT, Zaremba et al. 2014). The target of a chunk's last
step is the input of the next chunk's first step.

* ``drop_remainder=True`` (training): ``L = (N - 1) // B`` and ``(L // T)`` full chunks; the tail is
  dropped (fewer than ``B * (T + 1)`` pairs). Every batch has shape ``[B, T]`` and the mask is all True.
* ``drop_remainder=False`` (evaluation over the whole text): ``L = ceil((N - 1) / B)`` and
  ``ceil(L / T)`` chunks, padded with id 0 and mask False at the end; every target is counted exactly
  once (``mask.sum() == N - 1`` over an epoch), still with one batch shape.

A data position is the global chunk index ``position = epoch * num_chunks + chunk``: save it with a
checkpoint (`LMIterator.get_state`), and a restored iterator yields the very same batches from there.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Iterator, Mapping, NamedTuple

from absl import logging
import numpy as np

from rnn_jax.data import text as text_lib
from rnn_jax.data.splits import SPLITS, canonical_split
from rnn_jax.data.vocab import Vocabulary


class LMBatch(NamedTuple):
    """One chunk of every stream.

    inputs: ``[B, T]`` int32 token ids. targets: ``[B, T]`` int32, the token after each input.
    mask: ``[B, T]`` bool, False on padding (only at the end of an epoch with ``drop_remainder=False``).
    position: the global chunk index of this batch. reset: True on an epoch's first chunk, where the
    carried state should start fresh.
    """
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    position: int
    reset: bool


class LMBatches:
    """The chunks of one split, laid out as ``B`` parallel streams (see the module docstring).

    Args:
      ids: the split's token ids ``[N]`` (any integer array-like), N >= 2.
      batch_size: ``B``, the number of parallel streams.
      seq_len: ``T``, steps per chunk (the truncation length of BPTT).
      drop_remainder: True for training (full chunks only); False to cover every target (evaluation).
    """

    def __init__(self, ids, batch_size: int, seq_len: int, *, drop_remainder: bool = True):
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be a 1-D integer array [N], got shape {ids.shape} dtype {ids.dtype}")
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
        pairs = ids.shape[0] - 1
        if pairs < 1:
            raise ValueError(f"ids must hold at least 2 tokens, got {ids.shape[0]}")
        self.batch_size, self.seq_len, self.drop_remainder = batch_size, seq_len, drop_remainder
        if drop_remainder:
            length = pairs // batch_size
            self.num_chunks = length // seq_len
            if self.num_chunks == 0:
                raise ValueError(f"{ids.shape[0]} tokens are too few for one full chunk of batch_size="
                                 f"{batch_size} x seq_len={seq_len} (needs {batch_size * seq_len + 1}); lower them "
                                 "or use drop_remainder=False")
            length = self.num_chunks * seq_len
        else:
            length = math.ceil(pairs / batch_size)
            self.num_chunks = math.ceil(length / seq_len)
            length = self.num_chunks * seq_len
        used = min(pairs, batch_size * length)
        flat_in = np.zeros(batch_size * length, dtype=np.int32)  # [B*L]
        flat_tg = np.zeros(batch_size * length, dtype=np.int32)
        flat_mask = np.zeros(batch_size * length, dtype=bool)
        flat_in[:used] = ids[:used]
        flat_tg[:used] = ids[1:used + 1]
        flat_mask[:used] = True
        self._inputs = flat_in.reshape(batch_size, length)  # [B, L]
        self._targets = flat_tg.reshape(batch_size, length)  # [B, L]
        self._mask = flat_mask.reshape(batch_size, length)  # [B, L]
        self.num_targets = int(used)

    def __len__(self) -> int:
        """Returns the number of chunks per epoch."""
        return self.num_chunks

    def batch(self, position: int) -> LMBatch:
        """Returns the batch at global chunk index `position` (>= 0; epoch = position // len(self))."""
        if position < 0:
            raise ValueError(f"position must be >= 0, got {position}")
        chunk = position % self.num_chunks
        cols = slice(chunk * self.seq_len, (chunk + 1) * self.seq_len)
        return LMBatch(self._inputs[:, cols], self._targets[:, cols], self._mask[:, cols], int(position),
                       chunk == 0)

    def iterator(self, position: int = 0, *, num_epochs: int | None = None) -> "LMIterator":
        """Returns an iterator of batches from `position`, stopping after `num_epochs` epochs from 0 (None: never)."""
        return LMIterator(self, position, num_epochs)


class LMIterator:
    """Yields `LMBatch` in order from a saved position; `get_state`/`set_state` save and restore it.

    The state is ``{"position": int}``, the index of the next batch to yield (JSON-ready).
    """

    def __init__(self, batches: LMBatches, position: int = 0, num_epochs: int | None = None):
        self.batches, self.position, self.num_epochs = batches, int(position), num_epochs

    def __iter__(self) -> Iterator[LMBatch]:
        return self

    def __next__(self) -> LMBatch:
        if self.num_epochs is not None and self.position >= self.num_epochs * len(self.batches):
            raise StopIteration
        batch = self.batches.batch(self.position)
        self.position += 1
        return batch

    @property
    def epoch(self) -> int:
        """The epoch of the next batch."""
        return self.position // len(self.batches)

    def get_state(self) -> dict:
        """Returns ``{"position": int}``: the global index of the next batch."""
        return {"position": self.position}

    def set_state(self, state: Mapping) -> None:
        """Moves to the position saved by `get_state`."""
        position = int(state["position"])
        if position < 0:
            raise ValueError(f"position must be >= 0, got {position}")
        self.position = position


@dataclasses.dataclass(frozen=True, eq=False)
class LMCorpus:
    """A language-modelling corpus: its vocabulary (from the training split), each split's ids ``[N]`` (int32)
    and, per split, how many of its tokens are outside the vocabulary (encoded as ``<unk>``)."""
    name: str
    vocab: Vocabulary
    splits: dict
    unknown: dict = dataclasses.field(default_factory=dict)

    @property
    def level(self) -> str:
        """``"word"`` for ptb_word, else ``"char"``."""
        return "word" if self.name == "ptb_word" else "char"


def lm_vocabulary(corpus: str, train_tokens) -> Vocabulary:
    """Returns the vocabulary of a corpus built from its training tokens.

    Character corpora: the characters in sorted order after ``<unk>`` (id 0; never seen in training, it
    only absorbs characters a prime text may hold): 1 + 65 for tiny Shakespeare, 1 + 50 for PTB.
    ptb_word: the corpus's own ``<unk>`` (id 0) and ``<eos>`` (id 1), then words by frequency: 10,000.
    No ``<pad>``: streams are never padded except at the end of an evaluation epoch, where the mask covers it.
    """
    if corpus == "ptb_word":
        return Vocabulary.build([train_tokens], pad=None, unk="<unk>", eos=text_lib.EOS)
    return Vocabulary.build([train_tokens], pad=None, unk="<unk>", order="sorted")


def load_lm_corpus(corpus: str, *, vocab: Vocabulary | None = None, splits=SPLITS,
                   data_dir: str | os.PathLike | None = None, source: str = "auto",
                   tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> LMCorpus:
    """Returns the corpus's splits as id streams, encoded with `vocab` or a vocabulary built from train.

    Args:
      corpus: ``"tiny_shakespeare"``, ``"ptb_char"`` or ``"ptb_word"`` (see `text.lm_tokens`).
      vocab: a saved vocabulary (reloaded on resume); None builds one from the training split (`lm_vocabulary`).
      splits: which splits to encode.
      data_dir, source, tfds_dir, verify: as in `text.read_tiny_shakespeare`.

    Tokens outside the vocabulary become ``<unk>``; `LMCorpus.unknown` counts them per split, and a non-zero
    count is logged (absl, INFO).
    """
    kw = dict(data_dir=data_dir, source=source, tfds_dir=tfds_dir, verify=verify)
    tokens = {s: text_lib.lm_tokens(corpus, s, **kw) for s in map(canonical_split, splits)}
    if vocab is None:
        train = tokens["train"] if "train" in tokens else text_lib.lm_tokens(corpus, "train", **kw)
        vocab = lm_vocabulary(corpus, train)
    unknown = {s: vocab.count_unknown(t) for s, t in tokens.items()}
    for split, n in unknown.items():
        if n:
            logging.info("%s %s: %d of %d tokens are outside the vocabulary (encoded as %s)", corpus, split, n,
                         len(tokens[split]), vocab.unk)
    return LMCorpus(corpus, vocab, {s: vocab.encode(t) for s, t in tokens.items()}, unknown)
