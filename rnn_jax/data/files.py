"""Locating the staged corpora (the data root, which file holds which split), checking their sha256, opening text.

The data root is, in order: the `data_dir` argument, the ``RNN_JAX_DATA`` environment variable, or None
(no local copy: readers then prepare the TFDS builders in `rnn_jax.data.tfds_builders`, which download
the official sources). Files are read in place; nothing is ever written under the data root.

The staged layout (``../shared/data``, see each folder's SOURCE.md) is::

  charlm/tinyshakespeare/input.txt
  charlm/ptb/ptb.{train,valid,test}.txt.gz, ptb.char.{train,valid,test}.txt.gz
  sentiment/sst/{train,dev,test}.txt
  pos/ud-{2.16,2.2}/en_ewt-ud-{train,dev,test}.conllu.gz
  translation/multi30k/raw/<stem>.{en,de}.gz, tok/<stem>.lc.norm.tok.{en,de}.gz   (stems: `MULTI30K_STEMS`)
  captioning/coco-mini/annotations/captions_{train,val}2017.json, {train,val}2017/*.jpg   (`COCO_MINI`)
  tfds/tiny_shakespeare/1.0.0/...        (a prepared TFDS copy)

`locate` also accepts a data root that points further down (``.../charlm/ptb``) and the official layouts
(``simple-examples/data/ptb.train.txt`` uncompressed, SST's ``trees/train.txt``, plain ``.conllu`` files,
the multi30k/dataset repository's ``data/task1/{raw,tok}/``). The file map (`TINY_SHAKESPEARE`,
`ptb_relpath`, `sst_relpath`, `ud_relpath`, `multi30k_relpath`) lives here, once, for both the split readers
and the TFDS builders.

Captioning reads a *dataset root* instead (`captions_root`): a folder in COCO's layout
(``annotations/captions_<split><year>.json`` + ``<split><year>/`` image folders) or Karpathy's
(``dataset_<name>.json`` + the image folder), so the full COCO, Flickr8k or Flickr30k work the same way; a data
root holding ``captioning/coco-mini`` (the default, through ``$RNN_JAX_DATA``) stands for that dataset root.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import Sequence

from rnn_jax.data.splits import canonical_split

ENV_VAR = "RNN_JAX_DATA"

TINY_SHAKESPEARE = "charlm/tinyshakespeare/input.txt"
# the corpora name their held-out file differently (PTB "valid", SST "dev"); split -> file stem
_PTB_NAMES = {"train": "train", "validation": "valid", "test": "test"}
_DEV_NAMES = {"train": "train", "validation": "dev", "test": "test"}  # SST and UD
UD_VERSIONS = ("2.16", "2.2")
MULTI30K_LANGUAGES = ("en", "de")
# Multi30k task 1: TFDS split name -> file stem; "test" is test_2016_flickr, the usual test set ("test2016")
MULTI30K_STEMS = {"train": "train", "validation": "val", "test": "test_2016_flickr",
                  "test_2017_flickr": "test_2017_flickr", "test_2017_mscoco": "test_2017_mscoco",
                  "test_2018_flickr": "test_2018_flickr"}
COCO_MINI = "captioning/coco-mini"
COCO_YEARS = ("2017", "2014")  # annotation file names tried in this order
CAPTION_LAYOUTS = ("coco", "karpathy")
KARPATHY_DATASETS = ("coco", "flickr8k", "flickr30k")
# COCO names its splits' files and folders train<year> / val<year>; its test images have no public captions
_COCO_SPLITS = {"train": "train", "validation": "val"}
# where to get the data, for error messages (captions_root, the image_captions builder)
COCO_HINT = ("For the full COCO captions, extract annotations_trainval2017.zip (annotations/captions_{train,val}2017"
             ".json) and train2017.zip / val2017.zip from the official site, cocodataset.org, into one folder; for "
             "Karpathy's splits, put dataset_{coco,flickr8k,flickr30k}.json next to the image folder.")

# sha256 of each file as published in the staged SOURCE.md files, keyed by file name, or by "folder/name" for
# names that occur in several folders (see `expected_sha256`). Gzipped and plain forms both appear: the
# staged copies are gzipped, Mikolov's simple-examples, the UD release and Multi30k's tok/ files are plain.
SHA256 = {
    # charlm/SOURCE.md
    "input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    "ptb.char.test.txt.gz": "17fddeac8a46a1bcb04ea9b11c0e1fbc1606e382b9edaf55322c59de70316334",
    "ptb.char.train.txt.gz": "bfe1c3eda8bcc757be2e685093d94ae9610ec4e062d50efed2444f1421577dc8",
    "ptb.char.valid.txt.gz": "e4be541ff951695f186c0e9a3737f019467dde91b9ca870d026c34080daed326",
    "ptb.test.txt.gz": "5015d206077ff3e96161868c5c280ec8a28e9ad5617ef99ee0e734aaef6130c5",
    "ptb.train.txt.gz": "c4c6455d85f60640431f7bc738d51265ba2d55dcce10e8906322d6f9e3dcca81",
    "ptb.valid.txt.gz": "f2148d96d82f827399b7e5040868a4541bd2d2612ebaf5a2ff213bc07fd74eb8",
    "ptb.char.test.txt": "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
    "ptb.char.train.txt": "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
    "ptb.char.valid.txt": "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    # sentiment/SOURCE.md
    "dev.txt": "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",
    "test.txt": "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",
    "train.txt": "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",
    # pos/SOURCE.md: the files as stored, then the uncompressed release files (what r2.16 / r2.2 serve)
    "ud-2.16/en_ewt-ud-dev.conllu.gz": "41086e3afc9ae572f899c9123f874d6d04a52e374a3d2ac7a6667ce48e3bf3e3",
    "ud-2.16/en_ewt-ud-test.conllu.gz": "29c151eee8846d3f3ef7806c126ecac9932af2317c008c6d6b076c5e14950dbe",
    "ud-2.16/en_ewt-ud-train.conllu.gz": "bd47e08c9e18ec12d319e84df2ccdb272ff6de1d0dba5761117d3caf8b358f7b",
    "ud-2.2/en_ewt-ud-dev.conllu.gz": "e3c3fdec802a218f0b4c27b214febec58602605986813cf58e990a13de3b226d",
    "ud-2.2/en_ewt-ud-test.conllu.gz": "948ccfa1acc892510193c3124a75ccb2d68248f4cdda18f28824dc35bc4c1e4c",
    "ud-2.2/en_ewt-ud-train.conllu.gz": "6b016a926e86a5135f28141fb683cc69f210c75ceb5125ed5cf63e683b3e1a30",
    "ud-2.16/en_ewt-ud-train.conllu": "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
    "ud-2.16/en_ewt-ud-dev.conllu": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
    "ud-2.16/en_ewt-ud-test.conllu": "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
    "ud-2.2/en_ewt-ud-train.conllu": "74001b5c55bc997fc63394c46ed36207f0107d83e0e57c89699733b5dc999eae",
    "ud-2.2/en_ewt-ud-dev.conllu": "9e0340da5b4ede956b52c4ad2b6ce2a3192c1c7e14d5addbd2f0679a41864432",
    "ud-2.2/en_ewt-ud-test.conllu": "849d1814228f7b124daf22c1a1bd7428fcf6d2f3337698f714fe2ea7f0b7e600",
    # translation/SOURCE.md (raw/*.gz are the repository's own gzip files, byte for byte)
    "image_splits/test_2016_flickr.txt": "871e8ecafc66fb13e044ecccf669d04a865b4c58553227df86b933f0337a1563",
    "image_splits/test_2017_flickr.txt": "7bef9b1eb747593c23a8597e830ac804d28180d1226c1d6e5bc3f08ccc561e85",
    "image_splits/test_2017_mscoco.txt": "8f976b3c0beed9d96c918fb41e36178f1af11f0ff61d964592b80f932cb5c6d8",
    "image_splits/test_2018_flickr.txt": "8922c98be3e2b6866cd27d90e855214c2d9437fb9ebe406cdcde0edb786b4b95",
    "image_splits/train.txt": "97ee57e160a46c7d0e75298ebf57967e1245698a6f8806436ff07e61d1a41221",
    "image_splits/val.txt": "db26f03eaf833ec47bfaea129ed053b68cbcfc5d1f9a09c4cdf7c88fbfea7108",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2017_flickr.de.gz": "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee",
    "test_2017_flickr.en.gz": "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074",
    "test_2017_mscoco.de.gz": "799e4854c25d601cb6cb6be29eabe5667734c61ace2f495e03e429031a0bc338",
    "test_2017_mscoco.en.gz": "aab300bfb4427697987e02cd0aacd44bfe8aa50456231b6474c08038bbed2b58",
    "test_2018_flickr.de.gz": "ddd0130c7d97482dc5197a02141dae8dd79f20f03586c480d675c09a32daf608",
    "test_2018_flickr.en.gz": "ef4f4844037d4c5dea75c9a8ed5fd78905967a26f67c255e230cc9780032654d",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "test_2016_flickr.lc.norm.tok.de.gz": "2628844bbb7783afa0ba8a9927f174aafeee715871aa8deed3af2c4d0b71a658",
    "test_2016_flickr.lc.norm.tok.en.gz": "b95df925929cb222d0cf733f153bcbfba0f00180c85fd61dd5c4fb27f29ee394",
    "test_2017_flickr.lc.norm.tok.de.gz": "aa48934689a0fac1f506d19878ef9f48d823b2f1655bd3db5018f533cc0b2111",
    "test_2017_flickr.lc.norm.tok.en.gz": "6f015edf8eea8e5bff43d65e1743b2572577756b671a203651ccce508e787c35",
    "test_2017_mscoco.lc.norm.tok.de.gz": "41d547d42224fd190b5ea169a18a840e9625bb7844d4255008e2400597275580",
    "test_2017_mscoco.lc.norm.tok.en.gz": "547d290e8b81097e8a307b1ef5b6ce7ff29fed52ae63a779a45bd4cc739f67c2",
    "test_2018_flickr.lc.norm.tok.de.gz": "87b950eb1b484c97882d29e1ffceec68568d6a4b2bf72b1e7f9cdd62e3e37e90",
    "test_2018_flickr.lc.norm.tok.en.gz": "6942a488ee2f67a37c7a838ac456addc402a1ba61448c4da317b1bacc9b648eb",
    "train.lc.norm.tok.de.gz": "7e3392f03c0fe978165d22fb5eaf0d0b9b1d9c413283b5193f02d4cb27e50797",
    "train.lc.norm.tok.en.gz": "79d990dd71713faec0e3165cbd3b60acdf6fe11cab2e37a28f374c6bdbb297ec",
    "val.lc.norm.tok.de.gz": "006ad58fd6a2ad6502094160fe5273d93abf34a207967fdc69eafd7558b5ef39",
    "val.lc.norm.tok.en.gz": "2c7e5e9cf54ba0dff0cc4b84836d5a583f80ecaaab90b37a123d1376306215cd",
    # the repository's plain tok/ files (what a download gets): SOURCE.md says the staged .gz hold them
    # unchanged, so these are the sha256 of the decompressed staged files
    "test_2016_flickr.lc.norm.tok.de": "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4",
    "test_2016_flickr.lc.norm.tok.en": "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2",
    "test_2017_flickr.lc.norm.tok.de": "02067e4a9402786a4fcb8c1b6f4307e4a5073ced64800abead5273b54f5f31f6",
    "test_2017_flickr.lc.norm.tok.en": "c9d1dfd7a26add989382e534af235af9f0f658b2a30e7eb0efdaf142496ee54f",
    "test_2017_mscoco.lc.norm.tok.de": "e2825990b8a4e5289d2cdba801d57c187810bab9b4f5d87a30c35800a0d871b6",
    "test_2017_mscoco.lc.norm.tok.en": "fe69ae004d71c42ead0301e70c57de5b1b6b5fb7f52210d42b22801e98e656f3",
    "test_2018_flickr.lc.norm.tok.de": "45ce6b121708adf538d3a8c71dc1acbcb1e0f2bca74ace8e58652f9ea5b96335",
    "test_2018_flickr.lc.norm.tok.en": "a66e25cbb8323d74a40873dcd222659f39e30ee7687a6ed5445833aed0673239",
    "train.lc.norm.tok.de": "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505",
    "train.lc.norm.tok.en": "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119",
    "val.lc.norm.tok.de": "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00",
    "val.lc.norm.tok.en": "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec",
    # captioning/SOURCE.md: COCO-MINI's JSONs, filtered from COCO's; keyed with the dataset folder, since the
    # full COCO release holds different files under the same annotations/ names (those pass unchecked)
    "coco-mini/annotations/captions_train2017.json": "42be98d9f3f07f9961ad33119b80b6582bbfd9bd0e13ed7485910342babf26a5",
    "coco-mini/annotations/captions_val2017.json": "1e7ca2a0d0ebe94d60ada0747bf9ba0accac281785dfdba771b2d47b0b11e135",
}

# (resolved path, size, mtime_ns) -> sha256 already checked; hashing the same file twice is wasted time.
_VERIFIED: set = set()


def data_root(data_dir: str | os.PathLike | None = None) -> Path | None:
    """Returns the data root: `data_dir` if given, else ``$RNN_JAX_DATA`` if set and non-empty, else None.

    The path is returned as given (not checked): `locate` reports a missing folder or file.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR, "")
    return Path(env).expanduser() if env else None


def _root_origin(data_dir) -> str:
    if data_dir is not None and str(data_dir) != "":
        return f"data_dir={str(data_dir)!r}"
    return f"${ENV_VAR}={os.environ.get(ENV_VAR, '')!r}"


def resolve_source(source: str, data_dir: str | os.PathLike | None = None) -> str:
    """Returns where a reader reads from, ``"files"`` or ``"tfds"``, for ``source`` "auto" / "files" / "tfds".

    ``"auto"`` means files when a data root is configured (`data_root`), else TFDS, whose builders then
    download the official sources. Raises ValueError for any other `source`.
    """
    if source not in ("auto", "files", "tfds"):
        raise ValueError(f"source must be 'auto', 'files' or 'tfds', got {source!r}")
    if source == "auto":
        return "files" if data_root(data_dir) is not None else "tfds"
    return source


def ptb_relpath(split: str, level: str) -> tuple[str, tuple[str, ...]]:
    """Returns ``(staged relative path, alternative paths)`` (`str`, `tuple` of `str`) of a PTB file.

    Args:
      split: train / validation / test (or an alias, see `rnn_jax.data.splits.canonical_split`).
      level: ``"word"`` (``ptb.*.txt``) or ``"char"`` (``ptb.char.*.txt``); ValueError otherwise.
    """
    if level not in ("word", "char"):
        raise ValueError(f"level must be 'word' or 'char', got {level!r}")
    name = f"ptb.{'char.' if level == 'char' else ''}{_PTB_NAMES[canonical_split(split)]}.txt"
    # staged (gzipped), then Mikolov's simple-examples layout (plain text)
    return f"charlm/ptb/{name}.gz", (f"charlm/ptb/{name}", f"simple-examples/data/{name}")


def sst_relpath(split: str) -> tuple[str, tuple[str, ...]]:
    """Returns ``(staged relative path, alternative paths)`` (`str`, `tuple` of `str`) of an SST tree file:
    ``sentiment/sst/{train,dev,test}.txt``, else the official zip's ``trees/*.txt``."""
    name = f"{_DEV_NAMES[canonical_split(split)]}.txt"
    return f"sentiment/sst/{name}", (f"trees/{name}",)


def ud_relpath(split: str, version: str = "2.16") -> tuple[str, tuple[str, ...]]:
    """Returns ``(staged relative path, alternative paths)`` (`str`, `tuple` of `str`) of a UD English EWT file:
    ``pos/ud-<version>/en_ewt-ud-{train,dev,test}.conllu.gz``, else the release's plain ``.conllu``.

    Args:
      split: train / validation (dev) / test.
      version: a UD release of `UD_VERSIONS` (``"2.16"``, or ``"2.2"`` as in the CoNLL 2018 shared task).
    """
    if version not in UD_VERSIONS:
        raise ValueError(f"version must be one of {UD_VERSIONS}, got {version!r}")
    name = f"en_ewt-ud-{_DEV_NAMES[canonical_split(split)]}.conllu"
    return f"pos/ud-{version}/{name}.gz", (f"pos/ud-{version}/{name}",)


def multi30k_split(split: str) -> str:
    """Returns the TFDS split name (a key of `MULTI30K_STEMS`) of a Multi30k split: train / validation (val,
    dev) / test (= ``test_2016_flickr``), or ``test_2017_flickr``, ``test_2017_mscoco``, ``test_2018_flickr``."""
    if split == "test_2016_flickr":
        return "test"
    if isinstance(split, str) and split in MULTI30K_STEMS:
        return split
    try:
        return canonical_split(split)
    except ValueError:
        raise ValueError(f"split must be one of {sorted(MULTI30K_STEMS)} (or test_2016_flickr, valid, dev, val), "
                         f"got {split!r}") from None


def multi30k_relpath(split: str, lang: str, tokenized: bool = True) -> tuple[str, tuple[str, ...]]:
    """Returns ``(staged relative path, alternative paths)`` (`str`, `tuple` of `str`) of one side of a Multi30k
    task 1 split: ``translation/multi30k/tok/<stem>.lc.norm.tok.<lang>.gz`` (`tokenized`) or
    ``translation/multi30k/raw/<stem>.<lang>.gz``, else the repository's ``data/task1/{tok,raw}/`` files.

    Args:
      split: see `multi30k_split`.
      lang: ``"en"`` or ``"de"`` (`MULTI30K_LANGUAGES`).
      tokenized: the lowercased, normalised, Moses-tokenised files instead of the raw ones.
    """
    if lang not in MULTI30K_LANGUAGES:
        raise ValueError(f"lang must be one of {MULTI30K_LANGUAGES}, got {lang!r}")
    stem = MULTI30K_STEMS[multi30k_split(split)]
    if tokenized:
        name = f"{stem}.lc.norm.tok.{lang}"
        return f"translation/multi30k/tok/{name}.gz", (f"translation/multi30k/tok/{name}", f"data/task1/tok/{name}")
    name = f"{stem}.{lang}.gz"
    return f"translation/multi30k/raw/{name}", (f"data/task1/raw/{name}",)


def captions_split(split: str) -> str:
    """Returns the split name of a captioning split: train / validation (val, dev) / test, or ``"restval"``
    (Karpathy's remaining COCO images)."""
    if split == "restval":
        return split
    try:
        return canonical_split(split)
    except ValueError:
        raise ValueError(f"split must be one of train/validation/test/restval (or val, dev), got {split!r}") from None


def captions_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Returns the captioning dataset root: ``<dir>/captioning/coco-mini`` or ``<dir>/coco-mini`` when the
    directory (`data_dir`, else ``$RNN_JAX_DATA``, see `data_root`) holds the staged COCO-MINI, else the
    directory itself (a dataset root in COCO's or Karpathy's layout, see `captions_layout`).

    Raises:
      FileNotFoundError: no directory is configured, or it does not exist (says where to get COCO).
    """
    root = data_root(data_dir)
    if root is None:
        raise FileNotFoundError(
            "no captioning data: the data_dir argument is not given and $" + ENV_VAR + " is unset. Pass "
            f"data_dir=<a dataset root> (--config.data_dir) or set {ENV_VAR} to the folder holding {COCO_MINI}. "
            + COCO_HINT)
    for path in _candidates(root, COCO_MINI):  # <dir>/captioning/coco-mini, <dir>/coco-mini
        if path.is_dir():
            return path
    if not root.is_dir():
        raise FileNotFoundError(f"the captioning data directory {root} (from {_root_origin(data_dir)}) does not "
                                f"exist. {COCO_HINT}")
    return root


def captions_layout(root: str | os.PathLike, layout: str = "auto", dataset: str | None = None) -> str:
    """Returns the layout (``"coco"`` or ``"karpathy"``, `CAPTION_LAYOUTS`) of a captioning dataset root.

    ``"auto"``: Karpathy's when `dataset` is given, else COCO's if ``root/annotations/`` exists, else Karpathy's if
    a ``root/dataset_*.json`` exists. Raises ValueError for a bad `layout` or `dataset` (one of
    `KARPATHY_DATASETS`, Karpathy's layout only), FileNotFoundError when "auto" finds neither (names both).
    """
    if layout not in ("auto", *CAPTION_LAYOUTS):
        raise ValueError(f"layout must be 'auto', 'coco' or 'karpathy', got {layout!r}")
    if dataset is not None and dataset not in KARPATHY_DATASETS:
        raise ValueError(f"dataset must be None or one of {KARPATHY_DATASETS}, got {dataset!r}")
    if layout == "coco" and dataset is not None:
        raise ValueError(f"dataset applies to the Karpathy layout only, got dataset={dataset!r} with layout='coco'")
    root = Path(root)
    if layout != "auto":
        return layout
    if dataset is not None:
        return "karpathy"
    if (root / "annotations").is_dir():
        return "coco"
    if any(root.glob("dataset_*.json")):
        return "karpathy"
    raise FileNotFoundError(
        f"cannot tell the captioning layout of {root}: it holds neither {root / 'annotations'}/ (COCO: "
        f"annotations/captions_<split><year>.json) nor {root / 'dataset_*.json'} (Karpathy: "
        f"dataset_{{{','.join(KARPATHY_DATASETS)}}}.json). {COCO_HINT}")


def coco_captions_file(root: str | os.PathLike, split: str) -> tuple[Path, str]:
    """Returns ``(path of the caption JSON, the split's image folder relative to root)`` (`Path`, `str`) of a COCO
    root: ``annotations/captions_train2017.json`` and ``train2017`` (else the 2014 names, `COCO_YEARS`).

    Raises ValueError for a split without COCO captions (test, restval), FileNotFoundError when neither year's
    file exists (names the paths tried).
    """
    split = captions_split(split)
    if split not in _COCO_SPLITS:
        raise ValueError(f"COCO's caption files cover train and validation only, got split={split!r} (its test "
                         "images have no public captions); for Karpathy's test split use layout='karpathy' with "
                         "dataset_coco.json")
    root, tried = Path(root), []
    for year in COCO_YEARS:
        folder = f"{_COCO_SPLITS[split]}{year}"
        path = root / "annotations" / f"captions_{folder}.json"
        if path.is_file():
            return path, folder
        tried.append(str(path))
    raise FileNotFoundError(f"cannot find COCO's {split} captions under {root}: tried {', '.join(tried)}. {COCO_HINT}")


def karpathy_file(root: str | os.PathLike, dataset: str | None = None) -> Path:
    """Returns the path of a Karpathy split file, ``root/dataset_<dataset>.json``; with `dataset` None, the
    only ``dataset_*.json`` there.

    Raises FileNotFoundError when it is missing, ValueError when `dataset` is None and several exist.
    """
    root = Path(root)
    found = sorted(root.glob("dataset_*.json")) if dataset is None else [root / f"dataset_{dataset}.json"]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise ValueError(f"{root} holds several Karpathy files ({', '.join(p.name for p in found)}); pass dataset= "
                         f"one of {KARPATHY_DATASETS}")
    if not found:
        name = "dataset_*.json" if dataset is None else f"dataset_{dataset}.json"
        raise FileNotFoundError(f"cannot find {root / name}. {COCO_HINT}")
    return found[0]


def sha256_of(path: str | os.PathLike) -> str:
    """Returns the hex sha256 of the file's bytes as stored (a .gz file is hashed compressed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def expected_sha256(path: str | os.PathLike) -> str | None:
    """Returns the recorded sha256 (`SHA256`) of a file by its ``folder/folder/name`` (COCO-MINI's
    ``coco-mini/annotations/...``), else its ``folder/name`` (names that occur in several folders, e.g.
    ``ud-2.16/en_ewt-ud-dev.conllu.gz``), else its name; None when none is recorded."""
    path = Path(path)
    for key in (f"{path.parent.parent.name}/{path.parent.name}/{path.name}", f"{path.parent.name}/{path.name}"):
        if key in SHA256:
            return SHA256[key]
    return SHA256.get(path.name)


def verify_file(path: str | os.PathLike, expected: str | None = None) -> None:
    """Checks the file's sha256 against `expected` (default: `expected_sha256` of the path); returns None.

    Files with no recorded checksum pass unchecked. Raises:
      ValueError: the checksum differs (names the file, both digests and where the expected one comes from).
    """
    path = Path(path)
    expected = expected or expected_sha256(path)
    if expected is None:
        return
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, expected)
    if key in _VERIFIED:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(f"sha256 mismatch for {path}: got {actual}, expected {expected} (from the dataset's "
                         "SOURCE.md); the local copy differs from the staged/official file")
    _VERIFIED.add(key)


def _candidates(root: Path, relpath: str) -> list[Path]:
    # Try the full relative path, then drop leading folders, so a root pointing further down also works.
    parts = Path(relpath).parts
    return [root.joinpath(*parts[k:]) for k in range(len(parts))]


def locate(relpath: str, data_dir: str | os.PathLike | None = None, *, alternatives: Sequence[str] = (),
           verify: bool = False) -> Path:
    """Returns the path of `relpath` (or of one of `alternatives`) under the data root.

    Args:
      relpath: the staged relative path, e.g. ``"charlm/ptb/ptb.train.txt.gz"``.
      data_dir: the data root; None falls back to ``$RNN_JAX_DATA`` (see `data_root`).
      alternatives: other relative paths holding the same content (official layouts, uncompressed forms).
      verify: check the sha256 recorded in `SHA256` for the file found.

    Raises:
      FileNotFoundError: no root is configured, or no candidate exists; the message names the `data_dir`
        argument, ``$RNN_JAX_DATA`` and every path tried.
      ValueError: `verify` and the checksum differs.
    """
    root = data_root(data_dir)
    if root is None:
        raise FileNotFoundError(
            f"cannot find {relpath}: no data directory is configured (data_dir argument not given and "
            f"${ENV_VAR} is unset). Pass data_dir=/path/to/shared/data (--data_dir in the experiments) or "
            f"set {ENV_VAR} to the folder holding the staged corpora (charlm/, sentiment/, pos/, translation/).")
    tried = []
    for rel in (relpath, *alternatives):
        for path in _candidates(root, rel):
            tried.append(str(path))
            if path.is_file():
                if verify:
                    verify_file(path)
                return path
    where = "does not exist" if not root.is_dir() else "does not hold it"
    raise FileNotFoundError(
        f"cannot find {relpath}: the data directory {root} (from {_root_origin(data_dir)}) {where}. "
        f"Tried: {', '.join(tried)}. Point the data_dir argument (--data_dir) or ${ENV_VAR} at the folder "
        "holding the staged corpora (charlm/, sentiment/, pos/, translation/; e.g. ../shared/data).")


def read_text(path: str | os.PathLike) -> str:
    """Returns the whole UTF-8 text of a plain or gzipped (``.gz``) file, newlines kept as stored.

    Raises:
      ValueError: a ``.gz`` file that is truncated or damaged (names the file), or bytes that are not UTF-8
        (names the file, the 1-based line and the byte offset).
    """
    path = Path(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                data = f.read()
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise ValueError(f"{path}: not a complete gzip file ({e}); the copy is truncated or damaged") from None
    else:
        data = path.read_bytes()
    try:
        return data.decode("utf-8")  # newlines as stored (all staged files use \n)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text ({e.reason} at byte {e.start}: "
                         f"{data[e.start:e.start + 4]!r})") from None
