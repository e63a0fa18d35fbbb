"""Pure parsers of the plain-text language-modelling corpora: the tiny Shakespeare cut and PTB's lines.

Nothing here locates or reads a file: each function takes the text already read (`rnn_jax.data.text`
reads the splits, `rnn_jax.data.tfds_builders` prepares them, both through these parsers).

* **tiny Shakespeare** (karpathy/char-rnn ``input.txt``) has no official split; `split_like_tfds` cuts it
  exactly as TFDS ``tiny_shakespeare`` 1.0.0 does: train ``text[:int(0.9 N)]``, validation the first
  ``int(0.5 R)`` characters of the rest ``R``, test the remainder.
* **PTB words** (``ptb.{train,valid,test}.txt``): one sentence per line, words separated by spaces;
  `parse_ptb` joins each line's words with single spaces.
* **PTB characters** (``ptb.char.*.txt``): Mikolov's format writes each character separated by spaces and
  words separated by ``_`` (``c o n s u m e r s _ m a y``). `decode_ptb_char_line` decodes as the
  character-level literature does (Mikolov 2012; Krueger et al. 2016, Merity et al. 2018 ``pennchar``):
  whitespace-split symbols, ``_`` is the space between words. Each decoded line equals the word file's line.
"""

from __future__ import annotations


def split_like_tfds(text: str) -> dict[str, str]:
    """Returns ``{"train", "validation", "test"}`` -> text (`str`), cut 90/5/5 by characters exactly as TFDS
    ``tiny_shakespeare`` does (train ``text[:int(0.9 N)]``; the rest halved at ``int(0.5 R)``)."""
    i = int(len(text) * 0.9)
    train, rest = text[:i], text[i:]
    j = int(len(rest) * 0.5)
    return {"train": train, "validation": rest[:j], "test": rest[j:]}


def decode_ptb_char_line(line: str) -> str:
    """Returns the text (`str`) of one line of Mikolov's char-level file: symbols split on whitespace, ``_`` -> space.

    ``" c o n s u m e r s _ m a y \\n"`` -> ``"consumers may"`` (no end-of-line; `rnn_jax.data.text.lm_tokens`
    adds it).
    """
    return "".join(" " if c == "_" else c for c in line.split())


def parse_ptb(raw: str, level: str) -> list[str]:
    """Returns the lines (`list` of `str`) of a raw PTB file as text: words joined by single spaces (word
    level) or decoded characters (char level, `decode_ptb_char_line`); blank lines (the trailing space
    after the last newline of the char files) are dropped."""
    lines = raw.split("\n")
    if level == "char":
        out = [decode_ptb_char_line(line) for line in lines]
    else:
        out = [" ".join(line.split()) for line in lines]
    return [line for line in out if line]
