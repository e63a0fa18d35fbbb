"""Tests of rnn_jax/data/files.py: the data root's precedence, clear errors, sha256 checks, other layouts, the
file map and the choice between files and TFDS."""

import gzip
import re
import shutil

import pytest

from rnn_jax.data import files, splits, text
from tests.data import DATA_DIR, requires_data


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path / "env"))
    assert files.data_root(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    assert files.data_root() == tmp_path / "env"  # then the environment variable
    monkeypatch.setenv(files.ENV_VAR, "")
    assert files.data_root() is None  # empty counts as unset
    monkeypatch.delenv(files.ENV_VAR)
    assert files.data_root() is None
    assert files.data_root("") is None


def test_locate_without_any_root_names_both_settings(monkeypatch):
    monkeypatch.delenv(files.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match=r"data_dir.*RNN_JAX_DATA"):
        files.locate("charlm/tinyshakespeare/input.txt")


def test_missing_file_error_names_origin_and_paths(monkeypatch, tmp_path):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        files.locate("charlm/ptb/ptb.train.txt.gz")
    msg = str(e.value)
    assert f"$RNN_JAX_DATA={str(tmp_path)!r}" in msg and "data_dir" in msg
    assert str(tmp_path / "charlm" / "ptb" / "ptb.train.txt.gz") in msg
    with pytest.raises(FileNotFoundError, match=r"from data_dir='/no/such/dir'\) does not exist"):
        text.read_tiny_shakespeare("train", data_dir="/no/such/dir")
    with pytest.raises(FileNotFoundError, match=r"does not hold it"):
        text.read_ptb("train", data_dir=tmp_path)


def test_verify_detects_a_changed_file(tmp_path):
    path = tmp_path / "dev.txt"  # a name with a recorded checksum
    path.write_text("(2 (2 not) (2 sst))\n")
    with pytest.raises(ValueError, match=r"sha256 mismatch.*dev.txt"):
        files.verify_file(path)
    files.verify_file(tmp_path / "dev.txt", files.sha256_of(path))  # the right digest passes
    other = tmp_path / "unknown.txt"
    other.write_text("x")
    files.verify_file(other)  # no recorded checksum: nothing to check


def test_read_text_gzip_and_plain(tmp_path):
    content = "a b\nc é\n "
    (tmp_path / "x.txt").write_text(content, encoding="utf-8")
    with gzip.open(tmp_path / "x.txt.gz", "wt", encoding="utf-8") as f:
        f.write(content)
    assert files.read_text(tmp_path / "x.txt") == content
    assert files.read_text(tmp_path / "x.txt.gz") == content


def test_read_text_names_the_file_of_a_truncated_gzip_or_bytes_that_are_not_utf8(tmp_path):
    whole = gzip.compress(("line\n" * 2000).encode())
    for name, data, problem in (("cut.txt.gz", whole[:len(whole) // 2], "not a complete gzip file"),
                                ("noise.txt.gz", b"\x1f\x8b\x08\x00" + bytes(range(40)), "not a complete gzip file"),
                                ("plain.txt.gz", b"not gzip at all\n", "not a complete gzip file")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path / name))}: {problem}"):
            files.read_text(tmp_path / name)
    (tmp_path / "latin1.txt").write_bytes("ok\nstill ok\ncaf\u00e9\n".encode("latin-1"))
    latin1 = re.escape(str(tmp_path / "latin1.txt"))
    with pytest.raises(ValueError, match=f"^{latin1}: line 3: not UTF-8 text .* at byte 15"):
        files.read_text(tmp_path / "latin1.txt")
    (tmp_path / "bad.txt.gz").write_bytes(gzip.compress(b"a\n\xff\n"))
    with pytest.raises(ValueError, match=r"bad\.txt\.gz: line 2: not UTF-8 text"):
        files.read_text(tmp_path / "bad.txt.gz")



def test_file_map_of_each_split_and_its_aliases():
    assert files.ptb_relpath("valid", "word") == files.ptb_relpath("validation", "word") == (
        "charlm/ptb/ptb.valid.txt.gz", ("charlm/ptb/ptb.valid.txt", "simple-examples/data/ptb.valid.txt"))
    assert files.ptb_relpath("test", "char")[0] == "charlm/ptb/ptb.char.test.txt.gz"
    assert files.sst_relpath("dev") == files.sst_relpath("validation") == ("sentiment/sst/dev.txt",
                                                                           ("trees/dev.txt",))
    assert files.sst_relpath("train") == ("sentiment/sst/train.txt", ("trees/train.txt",))
    with pytest.raises(ValueError, match="level must be"):
        files.ptb_relpath("train", "byte")
    with pytest.raises(ValueError, match="split must be one of"):
        files.sst_relpath("holdout")


def test_resolve_source(monkeypatch, tmp_path):
    monkeypatch.delenv(files.ENV_VAR, raising=False)
    assert files.resolve_source("auto") == "tfds"  # no local copy: the builders download
    assert files.resolve_source("auto", tmp_path) == "files"
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    assert files.resolve_source("auto") == "files"
    assert files.resolve_source("tfds") == "tfds" and files.resolve_source("files", None) == "files"
    with pytest.raises(ValueError, match="source must be"):
        files.resolve_source("web")

@requires_data
def test_every_staged_file_matches_its_source_md_checksum():
    names = [files.TINY_SHAKESPEARE] + [f"sentiment/sst/{n}" for n in ("train.txt", "dev.txt", "test.txt")]
    assert names[1:] == [files.sst_relpath(split)[0] for split in splits.SPLITS]
    for split in splits.SPLITS:
        for level in ("word", "char"):
            names.append(files.ptb_relpath(split, level)[0])
    for name in names:
        files.verify_file(files.locate(name, DATA_DIR))  # raises on a mismatch
        assert files.locate(name, DATA_DIR, verify=True).name in files.SHA256


@requires_data
def test_root_further_down_and_official_layouts(tmp_path):
    # a data root pointing at the corpus folder itself
    assert files.locate("charlm/ptb/ptb.valid.txt.gz", DATA_DIR / "charlm" / "ptb").is_file()
    # Mikolov's simple-examples (plain text) and SST's trees/ folder, as the official archives extract
    data = tmp_path / "simple-examples" / "data"
    data.mkdir(parents=True)
    with gzip.open(DATA_DIR / "charlm/ptb/ptb.valid.txt.gz", "rb") as src, open(data / "ptb.valid.txt", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "trees").mkdir()
    shutil.copy(DATA_DIR / "sentiment/sst/dev.txt", tmp_path / "trees" / "dev.txt")
    staged = text.read_ptb("valid", data_dir=DATA_DIR)
    for root in (tmp_path, tmp_path / "simple-examples", data):
        assert text.read_ptb("valid", data_dir=root, verify=True) == staged  # plain file's own checksum
    from rnn_jax.data import sst
    assert sst.read_sst_trees("dev", data_dir=tmp_path, verify=True) == sst.read_sst_trees("dev", data_dir=DATA_DIR)
