"""Tests of rnn_jax/data/multi30k.py and rnn_jax/data/translation_format.py on the staged Multi30k task 1 files:
pair counts of every split against translation/SOURCE.md (tokenised and raw), alignment, argument and
misalignment errors, the repository's own layout with its checksums, Moses detokenisation against the raw
references, and the TFDS builder read back equal to the files."""

import gzip
import sys

import pytest

from rnn_jax.data import files, multi30k, translation_format
from tests.data import DATA_DIR, requires_data

COUNTS = {"train": 29_000, "validation": 1_014, "test": 1_000, "test_2017_flickr": 1_000, "test_2017_mscoco": 461,
          "test_2018_flickr": 1_071}  # translation/SOURCE.md


@requires_data
@pytest.mark.parametrize("tokenized", [True, False])
def test_pair_counts_of_every_split_match_source_md(tokenized):
    for split, n in COUNTS.items():
        pairs = multi30k.read_multi30k(split, tokenized=tokenized, data_dir=DATA_DIR, verify=True)
        assert len(pairs) == n, split
        assert multi30k.read_multi30k(split, src="de", tgt="en", tokenized=tokenized, data_dir=DATA_DIR) == \
            [(de, en) for en, de in pairs]
    assert multi30k.read_multi30k("test_2016_flickr", tokenized=tokenized, data_dir=DATA_DIR) == \
        multi30k.read_multi30k("test", tokenized=tokenized, data_dir=DATA_DIR)
    assert multi30k.read_multi30k("val", tokenized=tokenized, data_dir=DATA_DIR) == \
        multi30k.read_multi30k("validation", tokenized=tokenized, data_dir=DATA_DIR)


@requires_data
def test_first_pairs_and_the_tokenised_form():
    raw = multi30k.read_multi30k("validation", tokenized=False, data_dir=DATA_DIR)
    tok = multi30k.read_multi30k("validation", data_dir=DATA_DIR)
    assert raw[1] == ("A man sleeping in a green room on a couch.", "Ein Mann schläft in einem grünen Raum auf einem Sofa.")
    assert tok[1] == ("a man sleeping in a green room on a couch .", "ein mann schläft in einem grünen raum auf einem sofa .")
    assert tok[2][0] == "a boy wearing headphones sits on a woman &apos;s shoulders ."  # Moses escapes XML
    train = multi30k.read_multi30k("train", data_dir=DATA_DIR)
    assert all(en == en.lower() and de == de.lower() for en, de in train)
    # the repository README's word counts (SOURCE.md) are those of the tokenised files
    test = multi30k.read_multi30k("test", data_dir=DATA_DIR)
    assert [sum(len(p[side].split()) for p in pairs) for pairs in (train, test) for side in (0, 1)] == \
        [377_534, 360_706, 12_968, 12_103]


def test_arguments_are_checked():
    for kwargs, match in (({"src": "fr"}, "src must be one of"), ({"tgt": "cs"}, "tgt must be one of"),
                          ({"src": "de", "tgt": "de"}, "src and tgt must differ")):
        with pytest.raises(ValueError, match=match):
            multi30k.read_multi30k("train", data_dir="/nowhere", **kwargs)
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'test_2017_flickr'"):
        multi30k.read_multi30k("test_2019", data_dir="/nowhere")
    assert files.multi30k_relpath("val", "de") == (
        "translation/multi30k/tok/val.lc.norm.tok.de.gz",
        ("translation/multi30k/tok/val.lc.norm.tok.de", "data/task1/tok/val.lc.norm.tok.de"))
    assert files.multi30k_relpath("test", "en", tokenized=False) == (
        "translation/multi30k/raw/test_2016_flickr.en.gz", ("data/task1/raw/test_2016_flickr.en.gz",))


def test_misaligned_sides_name_both_files_and_counts(tmp_path):
    folder = tmp_path / "translation" / "multi30k" / "raw"
    folder.mkdir(parents=True)
    (folder / "val.en.gz").write_bytes(gzip.compress(b"a\nb\nc\n"))
    (folder / "val.de.gz").write_bytes(gzip.compress(b"x\ny\n"))
    with pytest.raises(ValueError) as e:
        multi30k.read_multi30k("val", tokenized=False, data_dir=tmp_path)
    assert str(e.value) == (f"parallel files are not aligned: {folder / 'val.en.gz'} has 3 lines, "
                            f"{folder / 'val.de.gz'} has 2")
    assert translation_format.parallel_lines(" a \nb", "x\ny\n", "s", "t") == [(" a ", "x"), ("b", "y")]
    assert translation_format.text_lines("") == []


def test_a_blank_line_on_either_side_names_the_file_and_the_line(tmp_path):
    folder = tmp_path / "translation" / "multi30k" / "tok"
    folder.mkdir(parents=True)
    for en, de, bad, number in ((b"a\nb\nc\n", b"x\n \t\nz\n", "de", 2), (b"\nb\n\n", b"x\ny\nz\n", "en", 1)):
        (folder / "val.lc.norm.tok.en.gz").write_bytes(gzip.compress(en))
        (folder / "val.lc.norm.tok.de.gz").write_bytes(gzip.compress(de))
        with pytest.raises(ValueError) as e:
            multi30k.read_multi30k("val", data_dir=tmp_path)
        count = 2 if bad == "en" else 1
        assert str(e.value) == (f"{folder / f'val.lc.norm.tok.{bad}.gz'}: line {number} is blank ({count} of 3 lines "
                                "are); every line of parallel text must hold a sentence")


@requires_data
def test_repository_layout_and_its_checksums(tmp_path):
    # the multi30k/dataset repository: data/task1/raw/*.gz as staged, data/task1/tok/* uncompressed
    for form, name in (("raw", "test_2017_mscoco.{}.gz"), ("tok", "test_2017_mscoco.lc.norm.tok.{}")):
        folder = tmp_path / "data" / "task1" / form
        folder.mkdir(parents=True)
        for lang in ("en", "de"):
            staged = (DATA_DIR / "translation/multi30k" / form / (name.format(lang) + ".gz" * (form == "tok")))
            data = staged.read_bytes()
            (folder / name.format(lang)).write_bytes(gzip.decompress(data) if form == "tok" else data)
    for tokenized in (True, False):
        assert multi30k.read_multi30k("test_2017_mscoco", tokenized=tokenized, data_dir=tmp_path, verify=True) == \
            multi30k.read_multi30k("test_2017_mscoco", tokenized=tokenized, data_dir=DATA_DIR)
    changed = tmp_path / "data/task1/tok/test_2017_mscoco.lc.norm.tok.de"
    changed.write_text(changed.read_text().replace("ein", "eine", 1))
    with pytest.raises(ValueError, match=r"sha256 mismatch.*test_2017_mscoco\.lc\.norm\.tok\.de"):
        multi30k.read_multi30k("test_2017_mscoco", data_dir=tmp_path, verify=True)


@requires_data
@pytest.mark.parametrize("lang", ["en", "de"])
def test_detokenised_lines_equal_the_raw_references_lowercased(lang):
    side = 0 if lang == "en" else 1
    for split in ("validation", "test"):
        tok = [p[side] for p in multi30k.read_multi30k(split, data_dir=DATA_DIR)]
        raw = [p[side] for p in multi30k.read_multi30k(split, tokenized=False, data_dir=DATA_DIR)]
        detok = translation_format.detokenize(tok, lang)
        agree = sum(d == r.lower() for d, r in zip(detok, raw))
        # the rest differ by the tokeniser's punctuation normalisation (quotes, no-break spaces), never by more
        assert agree >= len(raw) - 6, (split, len(raw) - agree)
    if lang == "en":
        assert detok[:1] == ["a man in an orange hat starring at something."]
        assert translation_format.detokenize(["a woman &apos;s hat , &quot;red&quot; ."], "en") == \
            ["a woman's hat, \"red\"."]
    with pytest.raises(ValueError, match="lang must be a two-letter"):
        translation_format.detokenize(tok, "english")
    with pytest.raises(ValueError, match="lines must be a sequence"):
        translation_format.detokenize("a b", lang)


@requires_data
def test_tfds_builder_reads_back_equal_to_the_files(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from rnn_jax.data import tfds_builders
    for config, tokenized in (("tok", True), ("raw", False)):
        tfds_builders.prepare("multi30k", config=config, tfds_dir=tmp_path, data_dir=DATA_DIR)
        for split in COUNTS:
            direct = multi30k.read_multi30k(split, src="de", tgt="en", tokenized=tokenized, data_dir=DATA_DIR)
            if split == "train":  # reading all 29,000 records back takes seconds: the count and a sample
                source = tfds_builders.data_source("multi30k", split, config=config, tfds_dir=tmp_path,
                                                   download=False)
                sample = [0, 1, 14_500, 28_999]
                assert len(source) == len(direct) and \
                    [(r["de"].decode(), r["en"].decode()) for r in source.__getitems__(sample)] == \
                    [direct[i] for i in sample]
                continue
            assert multi30k.read_multi30k(split, src="de", tgt="en", tokenized=tokenized, source="tfds",
                                          tfds_dir=tmp_path, data_dir=DATA_DIR) == direct, split
    assert "tensorflow" not in sys.modules
    sources = tfds.data_source("multi30k/raw", data_dir=str(tmp_path), download=False)
    assert {s: len(v) for s, v in sources.items()} == COUNTS
    assert sources["validation"][1]["en"] == b"A man sleeping in a green room on a couch."
