"""Split readers of Multi30k task 1 (WMT16-18 multimodal translation, text only): aligned English-German pairs.

Files: ``translation/multi30k/tok/<stem>.lc.norm.tok.<lang>.gz`` (lowercased, punctuation-normalised,
Moses-tokenised: the usual setting of WMT16/17 MMT papers) and ``translation/multi30k/raw/<stem>.<lang>.gz``
(original case and punctuation), read in place, or the TFDS ``multi30k`` dataset (configs ``tok`` / ``raw``).
Pairs per split (translation/SOURCE.md): train 29,000, validation (``val``) 1,014, test (``test_2016_flickr``,
the standard "test2016") 1,000, ``test_2017_flickr`` 1,000, ``test_2017_mscoco`` 461, ``test_2018_flickr``
1,071. For BLEU against the raw references, detokenise a system's tokenised output with
`rnn_jax.data.translation_format.detokenize`.
"""

from __future__ import annotations

import os

from rnn_jax.data import files
from rnn_jax.data.translation_format import parallel_lines


def _check_languages(src: str, tgt: str) -> None:
    for arg, lang in (("src", src), ("tgt", tgt)):
        if lang not in files.MULTI30K_LANGUAGES:
            raise ValueError(f"{arg} must be one of {files.MULTI30K_LANGUAGES}, got {lang!r}")
    if src == tgt:
        raise ValueError(f"src and tgt must differ, got src={src!r} and tgt={tgt!r}")


def read_multi30k(split: str, *, src: str = "en", tgt: str = "de", tokenized: bool = True,
                  data_dir: str | os.PathLike | None = None, source: str = "auto",
                  tfds_dir: str | os.PathLike | None = None, verify: bool = False) -> list[tuple[str, str]]:
    """Returns a split's ``(source line, target line)`` pairs (`str`, no end-of-line), aligned, in file order.

    Args:
      split: train / validation (val, dev) / test (= test_2016_flickr) / test_2017_flickr / test_2017_mscoco /
        test_2018_flickr (`files.multi30k_split`).
      src, tgt: ``"en"`` and ``"de"`` in either order.
      tokenized: the lowercased Moses-tokenised files (``tok/``) instead of the raw ones (``raw/``).
      data_dir, source, tfds_dir, verify: where to read, as in `rnn_jax.data.text.read_tiny_shakespeare` (files
        under the data root, see `files.multi30k_relpath`; the TFDS dataset ``multi30k``, config ``tok``/``raw``).

    Raises:
      ValueError: a bad argument, or the two sides' line counts differ (names both files and both counts).
    """
    _check_languages(src, tgt)
    split = files.multi30k_split(split)
    if files.resolve_source(source, data_dir) == "tfds":
        from rnn_jax.data import tfds_builders  # imports tensorflow_datasets: only on this path
        records = tfds_builders.read_records("multi30k", split, config="tok" if tokenized else "raw",
                                             tfds_dir=tfds_dir, data_dir=data_dir)
        return [(r[src], r[tgt]) for r in records]
    sides = []
    for lang in (src, tgt):
        relpath, alternatives = files.multi30k_relpath(split, lang, tokenized)
        path = files.locate(relpath, data_dir, alternatives=alternatives, verify=verify)
        sides.append((files.read_text(path), str(path)))
    (src_text, src_origin), (tgt_text, tgt_origin) = sides
    return parallel_lines(src_text, tgt_text, src_origin, tgt_origin)
