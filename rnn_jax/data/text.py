"""Split readers of the plain-text language-modelling corpora: tiny Shakespeare and Penn Treebank (Mikolov).

Splits are named as in TFDS: ``train``, ``validation``, ``test`` (``valid`` and ``dev`` are accepted). Each
reader takes the split from the local files (`rnn_jax.data.files`) or from the TFDS datasets
(`rnn_jax.data.tfds_builders`); both go through the same parsers (`rnn_jax.data.text_format`).

* **tiny Shakespeare** (1,115,394 characters), cut 90/5/5 as TFDS does: 1,003,854 / 55,770 / 55,770
  characters. tests/data/test_text.py checks the cut against the prepared TFDS copy.
* **PTB words**: one sentence per line, already lower-cased with ``<unk>`` and ``N``. The token stream is
  the whitespace-split words with ``<eos>`` after every line, as in Mikolov's RNNLM, Zaremba et al. 2014
  and pytorch/examples: 929,589 / 73,760 / 82,430 tokens, and the training vocabulary has exactly 10,000
  words (``<unk>`` and ``<eos>`` included).
* **PTB characters**: the decoded lines, each ending with an end-of-line symbol, which we write as
  ``"\\n"``. The alphabet is 48 characters + space + newline = 50 symbols (the literature's 50: 49
  symbols + ``<eos>``).
"""

from __future__ import annotations

import os

from rnn_jax.data import files, text_format
from rnn_jax.data.splits import canonical_split

LM_CORPORA = ("tiny_shakespeare", "ptb_char", "ptb_word")
EOS = "<eos>"


def read_tiny_shakespeare(split: str, *, data_dir: str | os.PathLike | None = None, source: str = "auto",
                          tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> str:
    """Returns the text (a `str`) of one split of tiny Shakespeare.

    Args:
      split: train / validation / test.
      data_dir: the data root (see `files.data_root`); None uses ``$RNN_JAX_DATA``.
      source: ``"files"`` reads ``charlm/tinyshakespeare/input.txt`` and cuts it
        (`text_format.split_like_tfds`); ``"tfds"`` reads the TFDS ``tiny_shakespeare`` dataset (a prepared
        copy under `tfds_dir`, under ``<data root>/tfds`` or the TFDS default folder; otherwise prepared
        there without TensorFlow); ``"auto"``: files when a data root is configured, else tfds (which
        downloads the official file).
      verify: check the sha256 of the local file.
    """
    split = canonical_split(split)
    if files.resolve_source(source, data_dir) == "tfds":
        from rnn_jax.data import tfds_builders  # imports tensorflow_datasets: only on this path
        return tfds_builders.read_records("tiny_shakespeare", split, tfds_dir=tfds_dir, data_dir=data_dir)[0]["text"]
    path = files.locate(files.TINY_SHAKESPEARE, data_dir, verify=verify)
    return text_format.split_like_tfds(files.read_text(path))[split]


def read_ptb(split: str, *, level: str = "word", data_dir: str | os.PathLike | None = None, source: str = "auto",
             tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> list[str]:
    """Returns the sentences (one `str` per line of the file, no end-of-line) of a PTB split.

    Word level: words separated by single spaces (``"consumers may want ..."``). Char level: the decoded
    text (see `text_format.decode_ptb_char_line`), which equals the word-level line. 42,068 / 3,370 / 3,761
    lines.

    Args:
      split: train / validation / test.
      level: ``"word"`` (``ptb.*.txt``) or ``"char"`` (``ptb.char.*.txt``).
      data_dir, source, tfds_dir, verify: as in `read_tiny_shakespeare` (TFDS datasets ``ptb_word`` / ``ptb_char``).
    """
    relpath, alternatives = files.ptb_relpath(split, level)
    if files.resolve_source(source, data_dir) == "tfds":
        from rnn_jax.data import tfds_builders  # imports tensorflow_datasets: only on this path
        records = tfds_builders.read_records(f"ptb_{level}", canonical_split(split), tfds_dir=tfds_dir,
                                             data_dir=data_dir)
        return [r["text"] for r in records]
    path = files.locate(relpath, data_dir, alternatives=alternatives, verify=verify)
    return text_format.parse_ptb(files.read_text(path), level)


def lm_tokens(corpus: str, split: str, **read_kwargs) -> str | list[str]:
    """Returns one split of a language-modelling corpus as a single token stream.

    * ``"tiny_shakespeare"``: the split's text, a `str` (its characters are the tokens).
    * ``"ptb_char"``: the decoded lines, each followed by ``"\\n"`` (a `str`; 5,017,482 train characters).
    * ``"ptb_word"``: a `list` of words with ``"<eos>"`` after every line (929,589 train tokens).

    `read_kwargs` (data_dir, source, tfds_dir, verify) go to `read_tiny_shakespeare` / `read_ptb`.
    """
    if corpus == "tiny_shakespeare":
        return read_tiny_shakespeare(split, **read_kwargs)
    if corpus == "ptb_char":
        return "".join(line + "\n" for line in read_ptb(split, level="char", **read_kwargs))
    if corpus == "ptb_word":
        out = []
        for line in read_ptb(split, level="word", **read_kwargs):
            out.extend(line.split())
            out.append(EOS)
        return out
    raise ValueError(f"corpus must be one of {LM_CORPORA}, got {corpus!r}")
