"""Vocabularies: token <-> id maps built from a training split, saved and reloaded as JSON.

Ids are laid out as: the special tokens first, in the order ``pad, unk, bos, eos`` (each optional; by
default ``<pad>`` = 0 and ``<unk>`` = 1), then the corpus tokens by decreasing count (ties by token) or
in sorted order. A special token that also occurs in the corpus (PTB's own ``<unk>``) keeps its special
id and is not counted twice. Unknown tokens encode to ``<unk>``; a vocabulary without ``unk`` refuses them.

Tokens are strings: words, or single characters (a `str` is a sequence of characters, so
``vocab.encode("to be")`` encodes characters, and long character strings take a vectorised path).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

FORMAT = "rnn_jax.vocabulary/1"


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
    """A token <-> id map. Build with `Vocabulary.build`, reload with `Vocabulary.load`.

    Attributes:
      tokens: every token, index = id (specials first).
      pad, unk, bos, eos: the special token strings, or None where the vocabulary has none.
    """

    tokens: tuple[str, ...]
    pad: str | None = "<pad>"
    unk: str | None = "<unk>"
    bos: str | None = None
    eos: str | None = None

    def __post_init__(self):
        tokens = tuple(self.tokens)
        object.__setattr__(self, "tokens", tokens)
        index = {t: i for i, t in enumerate(tokens)}
        if len(index) != len(tokens):
            dup = [t for t, c in collections.Counter(tokens).items() if c > 1][:5]
            raise ValueError(f"tokens must be distinct, got duplicates {dup}")
        for name in ("pad", "unk", "bos", "eos"):
            special = getattr(self, name)
            if special is not None and special not in index:
                raise ValueError(f"{name}={special!r} is not among the tokens")
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_char_table", None)

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def build(cls, corpus: Iterable[Sequence[str]] | Mapping[str, int], *, pad: str | None = "<pad>",
              unk: str | None = "<unk>", bos: str | None = None, eos: str | None = None, min_count: int = 1,
              max_size: int | None = None, order: str = "frequency") -> "Vocabulary":
        """Returns a vocabulary of the tokens of `corpus` (the training split only).

        Args:
          corpus: token sequences (sentences as lists of words, or strings of characters), or a mapping
            token -> count.
          pad, unk, bos, eos: special tokens (None leaves one out); they take ids 0, 1, ... in that order.
          min_count: tokens seen fewer times are left out (they will encode to `unk`).
          max_size: the largest vocabulary size, specials included (most frequent tokens kept).
          order: ``"frequency"`` (decreasing count, ties by token) or ``"sorted"`` (by token, as char-rnn
            orders characters).
        """
        if order not in ("frequency", "sorted"):
            raise ValueError(f"order must be 'frequency' or 'sorted', got {order!r}")
        if isinstance(corpus, Mapping):
            counts = collections.Counter(dict(corpus))
        else:
            counts = collections.Counter()
            for seq in corpus:
                counts.update(seq)
        specials = [s for s in (pad, unk, bos, eos) if s is not None]
        if len(set(specials)) != len(specials):
            raise ValueError(f"special tokens must be distinct, got {specials}")
        kept = [(t, c) for t, c in counts.items() if c >= min_count and t not in specials]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))  # most frequent first, so max_size keeps those
        if max_size is not None:
            if max_size < len(specials):
                raise ValueError(f"max_size must be >= the {len(specials)} special tokens, got {max_size}")
            kept = kept[:max_size - len(specials)]
        words = [t for t, _ in kept]
        if order == "sorted":
            words.sort()
        return cls(tuple(specials + words), pad=pad, unk=unk, bos=bos, eos=eos)

    # ---- lookups ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token) -> bool:
        return token in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash((self.tokens, self.pad, self.unk, self.bos, self.eos))

    def __repr__(self) -> str:
        return (f"Vocabulary(size={len(self)}, pad={self.pad!r}, unk={self.unk!r}, bos={self.bos!r}, "
                f"eos={self.eos!r}, first={list(self.tokens[:8])})")

    def _id(self, name: str) -> int | None:
        special = getattr(self, name)
        return None if special is None else self._index[special]

    @property
    def pad_id(self) -> int | None:
        """The id of the padding token (0 when present), or None."""
        return self._id("pad")

    @property
    def unk_id(self) -> int | None:
        """The id unknown tokens map to, or None (then unknown tokens are an error)."""
        return self._id("unk")

    @property
    def bos_id(self) -> int | None:
        """The id of the begin-of-sequence token, or None."""
        return self._id("bos")

    @property
    def eos_id(self) -> int | None:
        """The id of the end-of-sequence token, or None."""
        return self._id("eos")

    @property
    def special_ids(self) -> frozenset:
        """The ids of the special tokens present (pad, unk, bos, eos)."""
        return frozenset(i for i in (self.pad_id, self.unk_id, self.bos_id, self.eos_id) if i is not None)

    def token_to_id(self, token: str) -> int:
        """Returns the id of `token`, or `unk_id` for an unknown token (KeyError when there is no unk)."""
        i = self._index.get(token)
        if i is not None:
            return i
        if self.unk is None:
            raise KeyError(f"token {token!r} is not in the vocabulary and the vocabulary has no unk token")
        return self._index[self.unk]

    def id_to_token(self, i: int) -> str:
        """Returns the token of id `i` (IndexError outside ``[0, len)``)."""
        if not 0 <= int(i) < len(self.tokens):
            raise IndexError(f"id {int(i)} is outside the vocabulary [0, {len(self.tokens)})")
        return self.tokens[int(i)]

    # ---- encode / decode ----------------------------------------------------------------------------
    def _char_ids(self, text: str) -> np.ndarray:
        """Returns the ids ``[T]`` of the characters of `text`, -1 for those not in the vocabulary."""
        table = self._char_table
        if table is None:  # code point -> id for every single-character token; -1 = unknown
            singles = {ord(t): i for t, i in self._index.items() if len(t) == 1}
            table = np.full(max(singles, default=0) + 1, -1, dtype=np.int32)
            for code, i in singles.items():
                table[code] = i
            object.__setattr__(self, "_char_table", table)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # [T]
        ids = np.full(codes.shape, -1, dtype=np.int32)
        inside = codes < table.shape[0]
        ids[inside] = table[codes[inside]]
        return ids

    def _encode_chars(self, text: str) -> np.ndarray:
        ids = self._char_ids(text)
        unknown = ids < 0
        if unknown.any():
            if self.unk is None:
                bad = text[int(np.flatnonzero(unknown)[0])]
                raise KeyError(f"character {bad!r} is not in the vocabulary and the vocabulary has no unk token")
            ids[unknown] = self.unk_id
        return ids

    def encode(self, tokens: Sequence[str], *, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """Returns the ids ``[T]`` (int32) of `tokens`; unknown tokens map to `unk_id`.

        Args:
          tokens: a sequence of tokens; a `str` is taken as a sequence of characters.
          add_bos, add_eos: prepend `bos_id` / append `eos_id` (ValueError if the vocabulary lacks them).
        """
        if isinstance(tokens, str) and len(tokens) > 64:
            ids = self._encode_chars(tokens)
        else:
            ids = np.fromiter((self.token_to_id(t) for t in tokens), dtype=np.int32, count=len(tokens))
        if add_bos or add_eos:
            for flag, name in ((add_bos, "bos"), (add_eos, "eos")):
                if flag and getattr(self, name) is None:
                    raise ValueError(f"add_{name}=True but the vocabulary has no {name} token")
            ids = np.concatenate([[self.bos_id] if add_bos else [], ids, [self.eos_id] if add_eos else []]
                                 ).astype(np.int32)
        return ids

    def count_unknown(self, tokens: Sequence[str]) -> int:
        """Returns how many of `tokens` (a `str`: its characters) are not in the vocabulary: those `encode`
        maps to `unk_id` (a token that is the unk token itself is known, as PTB's own ``<unk>``)."""
        if isinstance(tokens, str) and len(tokens) > 64:
            return int(np.count_nonzero(self._char_ids(tokens) < 0))
        return sum(count for token, count in collections.Counter(tokens).items() if token not in self._index)

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> list[str]:
        """Returns the tokens of `ids` (any integer array-like ``[T]``); `skip_special` drops pad/unk/bos/eos."""
        ids = np.asarray(ids).reshape(-1)
        skip = self.special_ids if skip_special else frozenset()
        return [self.id_to_token(i) for i in ids.tolist() if i not in skip]

    # ---- persistence --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Returns a JSON-ready dict: ``{"format", "tokens", "pad", "unk", "bos", "eos"}``."""
        return {"format": FORMAT, "tokens": list(self.tokens), "pad": self.pad, "unk": self.unk,
                "bos": self.bos, "eos": self.eos}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Vocabulary":
        """Returns the vocabulary saved by `to_dict` (ValueError on another format)."""
        if d.get("format") != FORMAT:
            raise ValueError(f"not a vocabulary file: format {d.get('format')!r}, expected {FORMAT!r}")
        return cls(tuple(d["tokens"]), pad=d["pad"], unk=d["unk"], bos=d["bos"], eos=d["eos"])

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the vocabulary as JSON to `path` (atomically: a temporary file, then a rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=0), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        """Returns the vocabulary saved at `path` by `save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
