"""Split readers of Universal Dependencies English EWT for part-of-speech tagging: tagged sentences and the raw
CoNLL-U text that predictions are written back into.

The format is parsed (strictly, with line numbers in errors) in `rnn_jax.data.conllu_format`; this module
reads the splits from the local files (``pos/ud-<version>/en_ewt-ud-{train,dev,test}.conllu.gz``, read in
place) or from the TFDS ``ud_english_ewt`` dataset (config = the version), both through that parser.
Sentences and words (syntactic words: multiword tokens and empty nodes are not words), pos/SOURCE.md:

=======  =================  ==============  ==============
version  train              dev             test
=======  =================  ==============  ==============
2.16     12,544 / 204,577   2,001 / 25,147  2,077 / 25,094
2.2      12,543 / 204,585   2,002 / 25,148  2,077 / 25,096
=======  =================  ==============  ==============

2.2 is the release of the CoNLL 2018 shared task. UPOS has the 17 universal tags
(`conllu_format.UPOS_TAGS`), XPOS the Penn Treebank tags. Typical use (`replace_tags` is
`rnn_jax.data.conllu_format.replace_tags`)::

    train = read_ud("train")
    text, origin = ud_text("test")
    predicted = replace_tags(text, [tagger(s.words) for s in read_ud("test")], column="upos", origin=origin)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterable

from rnn_jax.data import files
from rnn_jax.data.conllu_format import TAG_COLUMNS, TaggedSentence, join_blocks, parse_conllu
from rnn_jax.data.splits import canonical_split


@functools.lru_cache(maxsize=4)
def _file_text(path: str, size: int, mtime_ns: int) -> str:
    return files.read_text(path)


@functools.lru_cache(maxsize=8)
def _file_sentences(path: str, size: int, mtime_ns: int) -> tuple[TaggedSentence, ...]:
    return tuple(parse_conllu(files.read_text(path), path))  # the text itself is not kept (train: 14 MB)


def _file_key(path: Path) -> tuple[str, int, int]:
    """Returns (resolved path, size, mtime_ns): a changed file is read again, an unchanged one once a process."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _local_file(split: str, version: str, data_dir, verify: bool) -> tuple[str, int, int]:
    relpath, alternatives = files.ud_relpath(split, version)
    return _file_key(files.locate(relpath, data_dir, alternatives=alternatives, verify=verify))


def _tfds_text(split: str, version: str, data_dir, tfds_dir) -> tuple[str, str]:
    from rnn_jax.data import tfds_builders  # imports tensorflow_datasets: only on this path
    records = tfds_builders.read_records("ud_english_ewt", split, config=version, tfds_dir=tfds_dir,
                                         data_dir=data_dir)
    return join_blocks([r["conllu"] for r in records]), f"TFDS ud_english_ewt/{version}/{split}"


def ud_text(split: str, *, version: str = "2.16", data_dir: str | os.PathLike | None = None, source: str = "auto",
            tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> tuple[str, str]:
    """Returns ``(text, origin)``: a split's whole CoNLL-U text (`str`, as released, byte for byte) and where it
    was read (a file path or the TFDS split), the input of `replace_tags`.

    Args:
      split: train / validation (dev) / test.
      version: ``"2.16"`` or ``"2.2"`` (`files.UD_VERSIONS`).
      data_dir, source, tfds_dir, verify: where to read, as in `rnn_jax.data.text.read_tiny_shakespeare` (files
        under the data root, see `files.ud_relpath`; the TFDS dataset ``ud_english_ewt``, config `version`).
    """
    files.ud_relpath(split, version)  # checks split and version whichever the source
    split = canonical_split(split)
    if files.resolve_source(source, data_dir) == "tfds":
        return _tfds_text(split, version, data_dir, tfds_dir)
    key = _local_file(split, version, data_dir, verify)
    return _file_text(*key), key[0]


def read_ud(split: str, *, version: str = "2.16", data_dir: str | os.PathLike | None = None, source: str = "auto",
            tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> list[TaggedSentence]:
    """Returns a split's sentences as `TaggedSentence` (words, UPOS, XPOS, sent_id), in file order.

    Args: as in `ud_text`. A file is parsed once per process (cached by path, size and modification time).

    Raises:
      ValueError: a bad `split` / `version` / `source`, or a malformed file (names the file, the line number and
        the line, see `conllu_format.sentence_blocks`).
    """
    files.ud_relpath(split, version)
    split = canonical_split(split)
    if files.resolve_source(source, data_dir) == "tfds":
        return parse_conllu(*_tfds_text(split, version, data_dir, tfds_dir))
    return list(_file_sentences(*_local_file(split, version, data_dir, verify)))


def tag_set(sentences: Iterable[TaggedSentence], column: str = "upos") -> tuple[str, ...]:
    """Returns the sorted distinct tags (`tuple` of `str`) of `column` (``"upos"`` or ``"xpos"``) in the
    sentences, e.g. the 17 `conllu_format.UPOS_TAGS` on EWT's train split; ``_`` (no tag) included if it occurs."""
    if column not in TAG_COLUMNS:
        raise ValueError(f"column must be one of {sorted(TAG_COLUMNS)}, got {column!r}")
    return tuple(sorted({tag for s in sentences for tag in getattr(s, column)}))
