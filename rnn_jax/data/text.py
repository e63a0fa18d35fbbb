"""Plain-text language-modelling corpora: tiny Shakespeare and Penn Treebank (Mikolov), char and word level.

Splits are named as in TFDS: ``train``, ``validation``, ``test`` (``valid`` and ``dev`` are accepted).

* **tiny Shakespeare** (karpathy/char-rnn ``input.txt``, 1,115,394 characters): no official split; we cut
  it exactly as TFDS ``tiny_shakespeare`` 1.0.0 does (`split_like_tfds`): train ``text[:int(0.9 N)]``,
  validation the first ``int(0.5 R)`` characters of the rest ``R``, test the remainder
  (1,003,854 / 55,770 / 55,770 characters). tests/data/test_text.py checks the cut against the prepared TFDS copy.
* **PTB words** (``ptb.{train,valid,test}.txt``): one sentence per line, already lower-cased with ``<unk>``
  and ``N``. The token stream is the whitespace-split words with ``<eos>`` after every line, as in
  Mikolov's RNNLM, Zaremba et al. 2014 and pytorch/examples: 929,589 / 73,760 / 82,430 tokens, and the
  training vocabulary has exactly 10,000 words (``<unk>`` and ``<eos>`` included).
* **PTB characters** (``ptb.char.*.txt``): Mikolov's format writes each character separated by spaces and
  words separated by ``_`` (``c o n s u m e r s _ m a y``). We decode as the character-level literature
  does (Mikolov 2012; Krueger et al. 2016, Merity et al. 2018 ``pennchar``): whitespace-split symbols,
  ``_`` is the space between words, and every line ends with an end-of-line symbol, which we write as
  ``"\\n"``. Each decoded line equals the word file's line with single spaces. The alphabet is 48
  characters + space + newline = 50 symbols (the literature's 50: 49 symbols + ``<eos>``).
"""

from __future__ import annotations

import os

from rnn_jax.data import files

SPLITS = ("train", "validation", "test")
_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation",
            "val": "validation", "test": "test"}
LM_CORPORA = ("tiny_shakespeare", "ptb_char", "ptb_word")
EOS = "<eos>"

TINY_SHAKESPEARE = "charlm/tinyshakespeare/input.txt"
_PTB_NAMES = {"train": "train", "validation": "valid", "test": "test"}


def canonical_split(split: str) -> str:
    """Returns ``"train"``, ``"validation"`` or ``"test"`` for a split name or alias (valid, dev, val)."""
    try:
        return _ALIASES[split]
    except (KeyError, TypeError):
        raise ValueError(f"split must be one of train/validation/test (or valid, dev), got {split!r}") from None


def _resolve_source(source: str, data_dir) -> str:
    if source not in ("auto", "files", "tfds"):
        raise ValueError(f"source must be 'auto', 'files' or 'tfds', got {source!r}")
    if source == "auto":
        return "files" if files.data_root(data_dir) is not None else "tfds"
    return source


def split_like_tfds(text: str) -> dict[str, str]:
    """Returns ``{"train", "validation", "test"}`` -> text, cut 90/5/5 by characters exactly as TFDS
    ``tiny_shakespeare`` does (train ``text[:int(0.9 N)]``; the rest halved at ``int(0.5 R)``)."""
    i = int(len(text) * 0.9)
    train, rest = text[:i], text[i:]
    j = int(len(rest) * 0.5)
    return {"train": train, "validation": rest[:j], "test": rest[j:]}


def read_tiny_shakespeare(split: str, *, data_dir: str | os.PathLike | None = None, source: str = "auto",
                          tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> str:
    """Returns the text (a `str`) of one split of tiny Shakespeare.

    Args:
      split: train / validation / test.
      data_dir: the data root (see `files.data_root`); None uses ``$RNN_JAX_DATA``.
      source: ``"files"`` reads ``charlm/tinyshakespeare/input.txt`` and cuts it (`split_like_tfds`);
        ``"tfds"`` reads the TFDS ``tiny_shakespeare`` dataset (a prepared copy under `tfds_dir`, under
        ``<data root>/tfds`` or the TFDS default folder; otherwise prepared there without TensorFlow);
        ``"auto"``: files when a data root is configured, else tfds (which downloads the official file).
      verify: check the sha256 of the local file.
    """
    split = canonical_split(split)
    if _resolve_source(source, data_dir) == "tfds":
        from rnn_jax.data import tfds_builders  # imports tensorflow_datasets: only on this path
        return tfds_builders.read_records("tiny_shakespeare", split, tfds_dir=tfds_dir, data_dir=data_dir)[0]["text"]
    path = files.locate(TINY_SHAKESPEARE, data_dir, verify=verify)
    return split_like_tfds(files.read_text(path))[split]


def ptb_relpath(split: str, level: str) -> tuple[str, tuple[str, ...]]:
    """Returns ``(staged relative path, alternative paths)`` of a PTB file (level ``"word"`` or ``"char"``)."""
    if level not in ("word", "char"):
        raise ValueError(f"level must be 'word' or 'char', got {level!r}")
    name = f"ptb.{'char.' if level == 'char' else ''}{_PTB_NAMES[canonical_split(split)]}.txt"
    # staged (gzipped), then Mikolov's simple-examples layout (plain text)
    return f"charlm/ptb/{name}.gz", (f"charlm/ptb/{name}", f"simple-examples/data/{name}")


def decode_ptb_char_line(line: str) -> str:
    """Returns the text of one line of Mikolov's char-level file: symbols split on whitespace, ``_`` -> space.

    ``" c o n s u m e r s _ m a y \\n"`` -> ``"consumers may"`` (no end-of-line; `lm_tokens` adds it).
    """
    return "".join(" " if c == "_" else c for c in line.split())


def parse_ptb(raw: str, level: str) -> list[str]:
    """Returns the lines of a raw PTB file as text: words joined by single spaces (word level) or decoded
    characters (char level, `decode_ptb_char_line`); blank lines (the trailing space after the last
    newline of the char files) are dropped."""
    lines = raw.split("\n")
    if level == "char":
        out = [decode_ptb_char_line(line) for line in lines]
    else:
        out = [" ".join(line.split()) for line in lines]
    return [line for line in out if line]


def read_ptb(split: str, *, level: str = "word", data_dir: str | os.PathLike | None = None, source: str = "auto",
             tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> list[str]:
    """Returns the sentences (one `str` per line of the file, no end-of-line) of a PTB split.

    Word level: words separated by single spaces (``"consumers may want ..."``). Char level: the decoded
    text (see `decode_ptb_char_line`), which equals the word-level line. 42,068 / 3,370 / 3,761 lines.

    Args:
      split: train / validation / test.
      level: ``"word"`` (``ptb.*.txt``) or ``"char"`` (``ptb.char.*.txt``).
      data_dir, source, tfds_dir, verify: as in `read_tiny_shakespeare` (TFDS datasets ``ptb_word`` / ``ptb_char``).
    """
    relpath, alternatives = ptb_relpath(split, level)
    if _resolve_source(source, data_dir) == "tfds":
        from rnn_jax.data import tfds_builders
        records = tfds_builders.read_records(f"ptb_{level}", canonical_split(split), tfds_dir=tfds_dir,
                                             data_dir=data_dir)
        return [r["text"] for r in records]
    path = files.locate(relpath, data_dir, alternatives=alternatives, verify=verify)
    return parse_ptb(files.read_text(path), level)


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
