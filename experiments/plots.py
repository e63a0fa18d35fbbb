"""Figures the experiments write: a confusion matrix, an attention alignment (Bahdanau et al. 2015, fig. 3),
images with their captions and a caption's attention over the image (Xu et al. 2015)."""

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


def plot_captions(path: Path, images, captions: Sequence[str], *, columns: int = 4) -> None:
    """Writes a grid of ``images [N, H, W, 3]`` (floats in [0, 1]) each titled with its caption."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(captions):
        raise ValueError(f"images must have shape [N, H, W, 3] with N = len(captions) = {len(captions)}, got "
                         f"{images.shape}")
    rows = -(-len(images) // columns)
    fig = _figure(3.2 * columns, 3.4 * rows)
    for k, (image, caption) in enumerate(zip(images, captions)):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(np.clip(image, 0.0, 1.0))
        ax.set_title(_wrap(caption, 34), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_caption_attention(path: Path, image, words: Sequence[str], weights, *, columns: int = 5) -> None:
    """Writes Xu et al. (2015)'s figure: the image, then one panel per generated word with its attention.

    ``image [H, W, 3]`` in [0, 1]; ``weights [len(words), h, w]``, the attention over the h x w grid that
    produced each word, drawn upsampled (nearest) over the image, brighter where the weight is larger.
    """
    image, w = np.asarray(image), np.asarray(weights, np.float64)
    if w.ndim != 3 or len(w) != len(words):
        raise ValueError(f"weights must have shape [len(words)={len(words)}, h, w], got {w.shape}")
    H, W = image.shape[:2]
    panels = len(words) + 1
    rows = -(-panels // columns)
    fig = _figure(2.2 * columns, 2.4 * rows)
    ax = fig.add_subplot(rows, columns, 1)
    ax.imshow(np.clip(image, 0.0, 1.0))
    ax.set_title("image", fontsize=9)
    ax.axis("off")
    for k, (word, alpha) in enumerate(zip(words, w)):
        ax = fig.add_subplot(rows, columns, k + 2)
        ax.imshow(np.clip(image, 0.0, 1.0))
        ax.imshow(alpha / max(alpha.max(), 1e-12), cmap="gray", alpha=0.6, vmin=0.0, vmax=1.0,
                  extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
        ax.set_title(word, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _wrap(text: str, width: int) -> str:
    """Returns `text` broken into lines of at most about `width` characters at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
