"""Tests of rnn_jax/data/text.py on the staged corpora: tiny Shakespeare against TFDS's own split, PTB word
and char level against Mikolov's published sizes, and the char files against the word files (the parsers on
hand-made text: test_text_format.py; split names: test_splits.py)."""

import functools
import sys

import pytest

from rnn_jax.data import files, lm, splits, text
from tests.data import DATA_DIR, requires_data

pytestmark = requires_data


@functools.lru_cache(maxsize=None)
def _ptb(split, level):
    return tuple(text.read_ptb(split, level=level, data_dir=DATA_DIR))


def test_tiny_shakespeare_split_sizes_and_cover():
    parts = [text.read_tiny_shakespeare(s, data_dir=DATA_DIR, verify=True) for s in splits.SPLITS]
    assert [len(p) for p in parts] == [1_003_854, 55_770, 55_770]
    assert "".join(parts) == files.read_text(DATA_DIR / files.TINY_SHAKESPEARE)
    assert text.read_tiny_shakespeare("valid", data_dir=DATA_DIR) == parts[1]


def test_tiny_shakespeare_split_equals_prepared_tfds_copy():
    # The stock TFDS builder's output (prepared with TensorFlow, staged in tfds/), read without TensorFlow.
    import tensorflow_datasets as tfds
    sources = tfds.data_source("tiny_shakespeare", data_dir=str(DATA_DIR / "tfds"), download=False)
    assert sorted(sources) == ["test", "train", "validation"]
    for split, source in sources.items():
        assert len(source) == 1
        assert source[0]["text"].decode("utf-8") == text.read_tiny_shakespeare(split, data_dir=DATA_DIR), split
    builder = tfds.builder_from_directory(str(DATA_DIR / "tfds/tiny_shakespeare/1.0.0"))
    assert builder.as_data_source(split="test")[0]["text"].decode() == text.read_tiny_shakespeare("test",
                                                                                                data_dir=DATA_DIR)
    assert "tensorflow" not in sys.modules


def test_tiny_shakespeare_sources_agree():
    # source="tfds" with the staged data root reads the prepared copy under <root>/tfds
    for split in splits.SPLITS:
        assert text.read_tiny_shakespeare(split, data_dir=DATA_DIR, source="tfds") == \
            text.read_tiny_shakespeare(split, data_dir=DATA_DIR, source="files")


def test_ptb_word_sizes_match_mikolov():
    lines = {s: _ptb(s, "word") for s in splits.SPLITS}
    assert {s: len(v) for s, v in lines.items()} == {"train": 42_068, "validation": 3_370, "test": 3_761}
    assert lines["validation"][0] == "consumers may want to move their telephones a little closer to the tv set"
    tokens = {s: text.lm_tokens("ptb_word", s, data_dir=DATA_DIR) for s in splits.SPLITS}
    assert {s: len(v) for s, v in tokens.items()} == {"train": 929_589, "validation": 73_760, "test": 82_430}
    assert tokens["train"].count("<eos>") == 42_068 and tokens["train"][-1] == "<eos>"
    vocab = lm.lm_vocabulary("ptb_word", tokens["train"])
    assert len(vocab) == 10_000  # Mikolov's vocabulary, <unk> and <eos> included
    assert vocab.pad is None and vocab.unk_id == 0 and vocab.eos_id == 1
    # Mikolov's preprocessing closes the vocabulary: validation and test hold no word outside train's
    assert all(t in vocab for s in ("validation", "test") for t in tokens[s])


def test_ptb_char_decodes_to_the_word_lines():
    # Reference: the word-level file. Decoding the char file ('_' = space, one line per line) gives it back.
    for split in splits.SPLITS:
        assert _ptb(split, "char") == _ptb(split, "word"), split
    stream = text.lm_tokens("ptb_char", "validation", data_dir=DATA_DIR)
    assert isinstance(stream, str) and stream.endswith("\n") and stream.count("\n") == 3_370
    assert stream.startswith("consumers may want to move their telephones a little closer to the tv set\n")
    train = text.lm_tokens("ptb_char", "train", data_dir=DATA_DIR)
    assert len(train) == 5_017_482
    alphabet = set(train)
    assert len(alphabet) == 50 and {" ", "\n", "<", ">", "N"} <= alphabet and "_" not in alphabet
    assert set(stream) <= alphabet


def test_bad_arguments():
    with pytest.raises(ValueError, match="level must be"):
        text.read_ptb("train", level="byte", data_dir=DATA_DIR)
    with pytest.raises(ValueError, match="corpus must be one of"):
        text.lm_tokens("enwik8", "train", data_dir=DATA_DIR)
    with pytest.raises(ValueError, match="source must be"):
        text.read_tiny_shakespeare("train", data_dir=DATA_DIR, source="web")
