"""Tests of rnn_jax/data/ud.py on the staged UD English EWT files: sentence and word counts of both releases
against pos/SOURCE.md, the release file read back byte for byte (uncompressed sha256 from SOURCE.md), gold
tags written back giving the file unchanged, the plain .conllu layout, a malformed file's error, and the TFDS
builder read back equal to the files (the parser on hand-made text: test_conllu_format.py)."""

import gzip
import hashlib
import sys

import pytest

from rnn_jax.data import conllu_format, files, ud
from tests.data import DATA_DIR, requires_data

# pos/SOURCE.md: (sentences, words) by version and split
COUNTS = {"2.16": {"train": (12_544, 204_577), "validation": (2_001, 25_147), "test": (2_077, 25_094)},
          "2.2": {"train": (12_543, 204_585), "validation": (2_002, 25_148), "test": (2_077, 25_096)}}
SHA256_UNCOMPRESSED_DEV = {"2.16": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
                           "2.2": "9e0340da5b4ede956b52c4ad2b6ce2a3192c1c7e14d5addbd2f0679a41864432"}


@requires_data
@pytest.mark.parametrize("version", ["2.16", "2.2"])
def test_sentence_and_word_counts_match_source_md(version):
    for split, (n_sentences, n_words) in COUNTS[version].items():
        sentences = ud.read_ud(split, version=version, data_dir=DATA_DIR, verify=True)
        assert (len(sentences), sum(len(s.words) for s in sentences)) == (n_sentences, n_words), split
        assert all(len(s.words) == len(s.upos) == len(s.xpos) for s in sentences)
        assert len({s.sent_id for s in sentences}) == n_sentences and None not in {s.sent_id for s in sentences}
    train = ud.read_ud("train", version=version, data_dir=DATA_DIR)
    assert ud.tag_set(train) == conllu_format.UPOS_TAGS  # the 17 universal tags, all used
    assert "_" not in ud.tag_set(train, "xpos") and {"NN", "VBZ", "-LRB-"} <= set(ud.tag_set(train, "xpos"))


@requires_data
def test_first_dev_sentence_and_split_aliases():
    dev = ud.read_ud("dev", data_dir=DATA_DIR)
    assert dev == ud.read_ud("validation", data_dir=DATA_DIR)
    first = dev[0]
    assert first.words == ("From", "the", "AP", "comes", "this", "story", ":")
    assert first.upos == ("ADP", "DET", "PROPN", "VERB", "DET", "NOUN", "PUNCT")
    assert first.xpos == ("IN", "DT", "NNP", "VBZ", "DT", "NN", ":")
    assert first.sent_id == "weblog-blogspot.com_nominations_20041117172713_ENG_20041117_172713-0001"
    with pytest.raises(ValueError, match=r"version must be one of \('2.16', '2.2'\), got '2.0'"):
        ud.read_ud("dev", version="2.0", data_dir=DATA_DIR)
    with pytest.raises(ValueError, match="split must be one of"):
        ud.ud_text("holdout", data_dir=DATA_DIR)
    with pytest.raises(ValueError, match="column must be one of"):
        ud.tag_set(dev, "deprel")


@requires_data
@pytest.mark.parametrize("version", ["2.16", "2.2"])
def test_gold_tags_written_back_give_the_release_file_byte_for_byte(version):
    text, origin = ud.ud_text("dev", version=version, data_dir=DATA_DIR)
    assert origin.endswith(f"ud-{version}/en_ewt-ud-dev.conllu.gz")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == SHA256_UNCOMPRESSED_DEV[version]
    gold = ud.read_ud("dev", version=version, data_dir=DATA_DIR)
    assert conllu_format.replace_tags(text, [s.upos for s in gold], origin=origin) == text
    assert conllu_format.replace_tags(text, [s.xpos for s in gold], column="xpos") == text
    # other tags: the file parses back with them, and every line but the word lines' UPOS field is unchanged
    other = [tuple("X" if t == "NOUN" else "NOUN" for t in s.upos) for s in gold]
    out = conllu_format.replace_tags(text, other, origin=origin)
    back = conllu_format.parse_conllu(out, "replaced")
    assert [s.upos for s in back] == other and [s.words for s in back] == [s.words for s in gold]
    assert [s.xpos for s in back] == [s.xpos for s in gold]
    old_lines, new_lines = text.split("\n"), out.split("\n")
    assert len(old_lines) == len(new_lines)
    for a, b in zip(old_lines, new_lines):
        fa, fb = a.split("\t"), b.split("\t")
        if len(fa) == 10 and fa[0].isdigit():
            assert fa[:3] + fa[4:] == fb[:3] + fb[4:] and fa[3] != fb[3]
        else:  # comments, multiword-token and empty-node lines, blank lines
            assert a == b


@requires_data
def test_plain_conllu_layout_and_its_checksum(tmp_path):
    folder = tmp_path / "pos" / "ud-2.2"
    folder.mkdir(parents=True)
    plain = gzip.decompress((DATA_DIR / "pos/ud-2.2/en_ewt-ud-test.conllu.gz").read_bytes())
    (folder / "en_ewt-ud-test.conllu").write_bytes(plain)
    assert ud.read_ud("test", version="2.2", data_dir=tmp_path, verify=True) == \
        ud.read_ud("test", version="2.2", data_dir=DATA_DIR)
    (folder / "en_ewt-ud-test.conllu").write_bytes(plain.replace(b"\tNOUN\t", b"\tPROPN\t", 1))
    with pytest.raises(ValueError, match=r"sha256 mismatch.*en_ewt-ud-test\.conllu"):
        ud.read_ud("test", version="2.2", data_dir=tmp_path, verify=True)
    assert files.ud_relpath("valid", "2.16") == ("pos/ud-2.16/en_ewt-ud-dev.conllu.gz",
                                                 ("pos/ud-2.16/en_ewt-ud-dev.conllu",))


def test_a_malformed_file_names_the_file_and_the_line(tmp_path):
    folder = tmp_path / "pos" / "ud-2.16"
    folder.mkdir(parents=True)
    good = "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n"
    bad = "2\tthere\tthere\tADV\tRB\t_\t1\tadvmod\t_\n"  # nine columns
    (folder / "en_ewt-ud-train.conllu").write_text(f"# sent_id = a\n{good}\n# sent_id = b\n{good}{bad}\n")
    with pytest.raises(ValueError) as e:
        ud.read_ud("train", data_dir=tmp_path)
    assert str(e.value).startswith(f"{folder / 'en_ewt-ud-train.conllu'}: line 6: expected 10 tab-separated")
    assert repr(bad.rstrip("\n")) in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"cannot find pos/ud-2.16/en_ewt-ud-dev.conllu.gz"):
        ud.read_ud("dev", data_dir=tmp_path)
    # a truncated download, and bytes that are not UTF-8, are named by file (and line)
    whole = gzip.compress(f"# sent_id = a\n{good}\n".encode() * 50)
    (folder / "en_ewt-ud-dev.conllu.gz").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=r"en_ewt-ud-dev\.conllu\.gz: not a complete gzip file"):
        ud.read_ud("dev", data_dir=tmp_path)
    (folder / "en_ewt-ud-test.conllu").write_bytes(f"# sent_id = a\n{good}\n# sent_id = b\n".encode() + b"1\tcaf\xe9")
    with pytest.raises(ValueError, match=r"en_ewt-ud-test\.conllu: line 5: not UTF-8 text"):
        ud.ud_text("test", data_dir=tmp_path)


def _tiny_release(root):
    """Writes hand-made train/dev/test files (multiword tokens, empty nodes, comments) in a folder of their own,
    which has no recorded checksums (the staged release is read by the other tests); returns their texts."""
    word = "{}\t{}\t{}\t{}\t_\t_\t0\troot\t_\t_\n"
    texts = {
        "train": "# newdoc id = d\n# sent_id = t1\n" + word.format(1, "I", "I", "PRON")
                 + "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No\n" + word.format(2, "do", "do", "AUX")
                 + word.format(3, "n't", "not", "PART") + "\n# sent_id = t2\n" + word.format(1, "Go", "go", "VERB")
                 + "1.1\tgo\tgo\tVERB\t_\t_\t_\t_\t0:root\t_\n\n",
        "dev": "# sent_id = d1\n" + word.format(1, "Hi", "hi", "INTJ") + "\n",
        "test": word.format(1, "Yes", "yes", "INTJ") + word.format(2, "!", "!", "PUNCT") + "\n",
    }
    root.mkdir()
    for split, text in texts.items():
        (root / f"en_ewt-ud-{split}.conllu").write_text(text)
    return texts


def test_tfds_builder_keeps_each_sentence_block_byte_for_byte(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from rnn_jax.data import tfds_builders
    texts = _tiny_release(tmp_path / "release")
    out = tmp_path / "tfds"
    tfds_builders.prepare("ud_english_ewt", config="2.2", tfds_dir=out, data_dir=tmp_path / "release")
    assert "tensorflow" not in sys.modules
    for split, expected in texts.items():
        text, origin = ud.ud_text(split, version="2.2", source="tfds", tfds_dir=out, data_dir=tmp_path / "release")
        assert text == expected and origin == f"TFDS ud_english_ewt/2.2/{'validation' if split == 'dev' else split}"
    assert ud.read_ud("train", version="2.2", source="tfds", tfds_dir=out, data_dir=tmp_path / "release") == [
        conllu_format.TaggedSentence(("I", "do", "n't"), ("PRON", "AUX", "PART"), ("_",) * 3, "t1"),
        conllu_format.TaggedSentence(("Go",), ("VERB",), ("_",), "t2")]
    sources = tfds.data_source("ud_english_ewt/2.2", data_dir=str(out), download=False)
    assert {s: len(v) for s, v in sources.items()} == {"train": 2, "validation": 1, "test": 1}
    assert sources["train"][1]["sent_id"] == b"t2" and sources["test"][0]["sent_id"] == b""
    with pytest.raises(ValueError, match=r"config must be one of \['2.16', '2.2'\]"):
        tfds_builders.prepare("ud_english_ewt", config="2.0", tfds_dir=out, data_dir=tmp_path / "release")
    with pytest.raises(FileNotFoundError, match="not prepared"):  # the other config is its own dataset
        tfds_builders.data_source("ud_english_ewt", "test", config="2.16", tfds_dir=out, data_dir=tmp_path,
                                  download=False)
