"""Locating the staged corpora (the data root, which file holds which split), checking their sha256, opening text.

The data root is, in order: the `data_dir` argument, the ``RNN_JAX_DATA`` environment variable, or None
(no local copy: readers then prepare the TFDS builders in `rnn_jax.data.tfds_builders`, which download
the official sources). Files are read in place; nothing is ever written under the data root.

The staged layout (``../shared/data``, see each folder's SOURCE.md) is::

  charlm/tinyshakespeare/input.txt
  charlm/ptb/ptb.{train,valid,test}.txt.gz, ptb.char.{train,valid,test}.txt.gz
  sentiment/sst/{train,dev,test}.txt
  tfds/tiny_shakespeare/1.0.0/...        (a prepared TFDS copy)

`locate` also accepts a data root that points further down (``.../charlm/ptb``) and the official archives'
layouts (``simple-examples/data/ptb.train.txt`` uncompressed, SST's ``trees/train.txt``). The file map
(`TINY_SHAKESPEARE`, `ptb_relpath`, `sst_relpath`) lives here, once, for both the split readers and the
TFDS builders.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Sequence

from rnn_jax.data.splits import canonical_split

ENV_VAR = "RNN_JAX_DATA"

TINY_SHAKESPEARE = "charlm/tinyshakespeare/input.txt"
# the corpora name their held-out file differently (PTB "valid", SST "dev"); split -> file stem
_PTB_NAMES = {"train": "train", "validation": "valid", "test": "test"}
_SST_NAMES = {"train": "train", "validation": "dev", "test": "test"}

# sha256 of each file as published in the staged SOURCE.md files, keyed by file name. Gzipped and plain
# forms of the PTB files both appear: the staged copy is gzipped, Mikolov's simple-examples is plain.
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
    name = f"{_SST_NAMES[canonical_split(split)]}.txt"
    return f"sentiment/sst/{name}", (f"trees/{name}",)


def sha256_of(path: str | os.PathLike) -> str:
    """Returns the hex sha256 of the file's bytes as stored (a .gz file is hashed compressed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, expected: str | None = None) -> None:
    """Checks the file's sha256 against `expected` (default: `SHA256` by file name); returns None.

    Files with no recorded checksum pass unchecked. Raises:
      ValueError: the checksum differs (names the file, both digests and where the expected one comes from).
    """
    path = Path(path)
    expected = expected or SHA256.get(path.name)
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
            f"set {ENV_VAR} to the folder holding charlm/ and sentiment/.")
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
        "holding charlm/ and sentiment/ (e.g. ../shared/data).")


def read_text(path: str | os.PathLike) -> str:
    """Returns the whole UTF-8 text of a plain or gzipped (``.gz``) file, newlines kept as stored."""
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            data = f.read()
    else:
        data = path.read_bytes()
    return data.decode("utf-8")  # newlines as stored (all staged files use \n)
