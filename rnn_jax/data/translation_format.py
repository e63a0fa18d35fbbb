"""Line-aligned parallel text (one sentence per line, line i of one side translates line i of the other) and
Moses detokenisation for BLEU against raw references.

Multi30k's tokenised files (``*.lc.norm.tok.*``) were lowercased, punctuation-normalised and tokenised with
the Moses scripts, which also escape ``'`` ``"`` ``&`` ``<`` ``>`` ... as XML entities (``woman &apos;s``);
`detokenize` undoes the tokenisation and the escaping with `sacremoses.MosesDetokenizer`, so a system trained
on them can be scored with sacreBLEU on the raw references. The case and normalisation are not undone:
on Multi30k's val and test_2016_flickr the detokenised line equals the raw line lowercased for all but a
handful of lines (tests/data/test_multi30k.py).

Nothing here locates or reads a file: `rnn_jax.data.multi30k` and `rnn_jax.data.tfds_builders` read the
files and pass their text.
"""

from __future__ import annotations

import functools
from typing import Sequence


def text_lines(text: str) -> list[str]:
    """Returns the lines (`list` of `str`, no end-of-line) of a one-sentence-per-line text; the final newline
    ends the last line and adds none; each line is kept as it is (spaces included)."""
    if text == "":
        return []
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def parallel_lines(src_text: str, tgt_text: str, src_origin: str, tgt_origin: str) -> list[tuple[str, str]]:
    """Returns the ``(source line, target line)`` pairs of two line-aligned texts, in order.

    Args:
      src_text, tgt_text: the two sides' whole texts (see `text_lines`).
      src_origin, tgt_origin: where each comes from (file paths or TFDS splits), named in errors.

    Raises:
      ValueError: the two sides have different numbers of lines (names both origins and both counts), or a
        line is blank (empty or whitespace only) on either side: nothing to translate, or nothing to learn but
        the end of the sentence (names the file, the line number and how many lines are blank).
    """
    src, tgt = text_lines(src_text), text_lines(tgt_text)
    if len(src) != len(tgt):
        raise ValueError(f"parallel files are not aligned: {src_origin} has {len(src)} lines, {tgt_origin} has "
                         f"{len(tgt)}")
    for side, origin in ((src, src_origin), (tgt, tgt_origin)):
        blank = [number for number, line in enumerate(side, 1) if not line.strip()]
        if blank:
            raise ValueError(f"{origin}: line {blank[0]} is blank ({len(blank)} of {len(side)} lines are); every line "
                             "of parallel text must hold a sentence")
    return list(zip(src, tgt))


@functools.lru_cache(maxsize=None)
def _detokenizer(lang: str):
    from sacremoses import MosesDetokenizer  # imported on use: it takes most of a second to import
    return MosesDetokenizer(lang=lang)


def detokenize(lines: Sequence[str], lang: str) -> list[str]:
    """Returns each Moses-tokenised line (tokens separated by spaces) detokenised, XML entities unescaped.

    Args:
      lines: tokenised sentences (`str`, tokens separated by whitespace).
      lang: the language's ISO 639-1 code (``"en"``, ``"de"``, ...), which picks the Moses rules.

    E.g. ``detokenize(["a boy sits on a woman &apos;s shoulders ."], "en")`` ->
    ``["a boy sits on a woman's shoulders."]``.
    """
    if not isinstance(lang, str) or len(lang) != 2 or not lang.isalpha():
        raise ValueError(f"lang must be a two-letter language code such as 'en' or 'de', got {lang!r}")
    if isinstance(lines, str):
        raise ValueError("lines must be a sequence of lines, got a single str")
    detok = _detokenizer(lang.lower())
    return [detok.detokenize(line.split()) for line in lines]
