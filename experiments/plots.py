"""Figures the experiments write: a confusion matrix, an attention alignment (Bahdanau et al. 2015, fig. 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_confusion(path: Path, confusion, labels) -> None:
    """Writes a confusion-matrix PNG (rows: true labels, columns: predictions)."""
    cm = np.asarray(confusion)
    fig = _figure(0.6 * len(labels) + 2, 0.6 * len(labels) + 1.5)
    ax = fig.add_subplot()
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black",
                fontsize=10 if len(labels) <= 6 else 6)
    ax.set_xticks(range(len(labels)), labels, rotation=0 if len(labels) <= 6 else 90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_attention(path: Path, weights, source: Sequence[str], target: Sequence[str]) -> None:
    """Writes an alignment PNG: ``weights [len(target), len(source)]`` (rows: output words, columns: inputs)."""
    w = np.asarray(weights, np.float64)
    if w.shape != (len(target), len(source)):
        raise ValueError(f"weights must have shape [len(target), len(source)]=({len(target)}, {len(source)}), "
                         f"got {w.shape}")
    fig = _figure(0.4 * len(source) + 2, 0.4 * len(target) + 1.5)
    ax = fig.add_subplot()
    ax.imshow(w, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(source)), source, rotation=90)
    ax.set_yticks(range(len(target)), target)
    ax.xaxis.tick_top()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
