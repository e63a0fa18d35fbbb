"""Benchmark cases (cell, size, layers, direction), the default grid, and the inputs every peer shares."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CELLS = ("lstm", "gru", "rnn")
MODES = ("train", "forward")
DTYPES = ("float32", "bfloat16")
LENGTHS = ("fixed", "variable")
INPUT_SEED = 0
LENGTHS_SEED = 1


class Size(NamedTuple):
    batch: int
    time: int
    input: int
    hidden: int

    def __str__(self):
        return "x".join(map(str, self))


class Case(NamedTuple):
    """One configuration of the grid: a stack of `layers` layers of `cell` at `size`."""

    cell: str
    size: Size
    layers: int = 1
    bidirectional: bool = False

    @property
    def label(self) -> str:
        """Returns e.g. ``'lstm 32x100x128x256'`` or ``'lstm 32x100x128x256 2L bi'``."""
        extra = (f" {self.layers}L" if self.layers > 1 else "") + (" bi" if self.bidirectional else "")
        return f"{self.cell} {self.size}{extra}"


# The grid: LSTM at four sizes (the last is the "medium" PTB language model), GRU and Elman RNN at
# the first, and a 2-layer bidirectional LSTM at the first.
DEFAULT_GRID = (
    Case("lstm", Size(32, 100, 128, 256)),
    Case("lstm", Size(16, 200, 64, 128)),
    Case("lstm", Size(64, 50, 256, 512)),
    Case("lstm", Size(128, 35, 650, 650)),
    Case("gru", Size(32, 100, 128, 256)),
    Case("rnn", Size(32, 100, 128, 256)),
    Case("lstm", Size(32, 100, 128, 256), layers=2, bidirectional=True),
)
QUICK_SIZE = Size(4, 8, 8, 16)


def parse_size(text: str) -> Size:
    """Returns the `Size` written as ``BxTxIxH``, e.g. ``32x100x128x256``."""
    parts = text.strip().lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a size must be BxTxIxH with four positive integers, e.g. 32x100x128x256, got {text!r}")
    return Size(*map(int, parts))


class Workload(NamedTuple):
    """What one row runs: the case, the step kind and the shared inputs."""

    case: Case
    mode: str  # 'train' or 'forward'
    dtype: str  # compute dtype, 'float32' or 'bfloat16'; inputs and parameters stay float32
    x: np.ndarray  # [B, T, I] float32, batch-first
    lengths: np.ndarray | None  # [B] int32, or None for full-length sequences

    @property
    def tokens(self) -> int:
        """Returns the real (unpadded) tokens in one step's batch: sum(lengths), or B*T."""
        return int(self.lengths.sum()) if self.lengths is not None else self.x.shape[0] * self.x.shape[1]


def draw_lengths(batch: int, time: int, seed: int = LENGTHS_SEED) -> np.ndarray:
    """Returns ``[batch]`` int32 lengths uniform in [T/4, T] with at least one full-length sequence."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(1, time // 4), time + 1, size=batch)
    lengths[int(np.argmax(lengths))] = time  # the padded length is a real one, as in a bucketed batch
    return lengths.astype(np.int32)


def make_workload(case: Case, mode: str, dtype: str, lengths: str) -> Workload:
    """Returns the `Workload` of `case`: standard-normal inputs and, if lengths='variable', drawn lengths."""
    for name, value, allowed in (("cell", case.cell, CELLS), ("mode", mode, MODES), ("dtype", dtype, DTYPES),
                                 ("lengths", lengths, LENGTHS)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    B, T, I, _ = case.size
    x = np.random.default_rng(INPUT_SEED).standard_normal((B, T, I)).astype(np.float32)  # [B, T, I]
    return Workload(case, mode, dtype, x, draw_lengths(B, T) if lengths == "variable" else None)
