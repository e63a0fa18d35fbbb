"""What the captioning experiment writes at the end of a run: greedy and beam captions of every evaluated
image (jitted, back in split order), the captions file, every caption metric (one METEOR JVM for all sets),
and the figures (images with their captions, the attention behind each word)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping, Sequence

import jax
import numpy as np

from experiments import caption_metrics, plots
from rnn_jax.models.caption_decoding import beam_caption

MODES = ("greedy", "beam")


class CaptionWriter:
    """Jitted greedy and beam-search captioning of batches whose ``'inputs'`` `features_fn` encodes."""

    def __init__(self, model, features_fn: Callable, max_len: int, *, beam_size: int, length_penalty: float):
        """`features_fn(params, inputs) -> features [B, (S,) D]`; `model` a `Captioner` under params['captioner']."""

        def greedy(params, inputs):
            return model.greedy_caption(params["captioner"], features_fn(params, inputs), max_len)

        def beam(params, inputs):
            return beam_caption(model, params["captioner"], features_fn(params, inputs), max_len,
                                beam_size=beam_size, length_penalty=length_penalty)

        self.greedy, self.beam = jax.jit(greedy), jax.jit(beam)

    def split(self, params, batches, n: int):
        """Returns ``(greedy tokens, beam tokens, beam attention or None)``: lists of n arrays in split order
        (tokens ``[max_len]``, attention ``[max_len, S]``), from batches with ``'inputs'`` and ``'index'``."""
        greedy, beam, alphas = [None] * n, [None] * n, [None] * n
        for batch in batches:
            g_tok = self.greedy(params, batch["inputs"])
            b_tok, b_att = self.beam(params, batch["inputs"])
            for row, i in enumerate(batch["index"]):
                greedy[i], beam[i] = np.asarray(g_tok[row]), np.asarray(b_tok[row])
                alphas[i] = None if b_att is None else np.asarray(b_att[row])
        return greedy, beam, None if alphas[0] is None else alphas


def write_captions(path: Path, images: Sequence, lines: Mapping[str, Sequence[str]]) -> None:
    """Writes a JSON list, one entry per image in split order: ``image_id``, ``file_name`` and each mode's caption."""
    rows = [{"image_id": im.image_id, "file_name": im.file_name, **{m: lines[m][k] for m in lines}}
            for k, im in enumerate(images)]
    Path(path).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def score_sets(lines: Mapping[str, Mapping[str, Sequence[str]]], references: Mapping[str, Sequence[Sequence[str]]],
               *, meteor: bool) -> dict:
    """Returns ``{set: {mode: caption_metrics.caption_scores}}`` of ``lines[set][mode]`` against the set's
    references, METEOR (when asked) from one JVM for every set and mode (None without Java)."""
    out = {name: {mode: caption_metrics.caption_scores(hyps, references[name], meteor=False)
                  for mode, hyps in by_mode.items()} for name, by_mode in lines.items()}
    if not meteor:
        return out
    with caption_metrics.meteor_scorer() as score:
        for name, by_mode in lines.items():
            for mode, hyps in by_mode.items():
                value = None if score is None else score(hyps, references[name])
                out[name][mode].update(meteor=value, meteor_x100=None if value is None else 100.0 * value)
    return out


def draw(workdir: Path, name: str, pixels, lines: Sequence[str], words: Sequence[Sequence[str]], alphas,
         grid_shape, *, images: int, attention: int) -> None:
    """Draws the first `images` of set `name` with their captions and, given ``alphas`` (per image ``[L, S]``),
    the attention over the ``grid_shape`` (h, w) grid behind each of ``words`` (eos included) of the first
    `attention` images; files ``captions_<name>.png`` and ``attention_<name>_<k>.png``."""
    n = min(images, len(lines))
    if n == 0:
        return
    plots.plot_captions(workdir / f"captions_{name}.png", pixels[:n], lines[:n])
    if alphas is None:
        return
    h, w = grid_shape
    for k in range(min(attention, n)):
        weights = np.asarray(alphas[k][:len(words[k])]).reshape(len(words[k]), h, w)
        plots.plot_caption_attention(workdir / f"attention_{name}_{k}.png", pixels[k], words[k], weights)
