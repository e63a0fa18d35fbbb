"""Tests of rnn_jax/data/vocab.py: id layout, unknown tokens, encode/decode round trips, JSON save/load."""

import json

import numpy as np
import pytest

from rnn_jax.data.vocab import FORMAT, Vocabulary

CORPUS = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"]]


def test_build_layout_specials_then_frequency():
    v = Vocabulary.build(CORPUS, bos="<bos>", eos="<eos>")
    # specials first (pad 0, unk 1, bos, eos), then by count, ties by token
    assert v.tokens == ("<pad>", "<unk>", "<bos>", "<eos>", "cat", "sat", "the", "a", "dog")
    assert (v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, 3)
    assert v.special_ids == {0, 1, 2, 3}
    assert len(v) == 9 and "dog" in v and "cow" not in v


def test_min_count_max_size_sorted_and_mapping():
    assert Vocabulary.build(CORPUS, min_count=2).tokens == ("<pad>", "<unk>", "cat", "sat", "the")
    assert Vocabulary.build(CORPUS, max_size=4).tokens == ("<pad>", "<unk>", "cat", "sat")
    assert Vocabulary.build(["hello"], pad=None, unk=None, order="sorted").tokens == ("e", "h", "l", "o")
    assert Vocabulary.build({"x": 3, "y": 5}).tokens == ("<pad>", "<unk>", "y", "x")
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(CORPUS, max_size=1)
    with pytest.raises(ValueError, match="order"):
        Vocabulary.build(CORPUS, order="random")


def test_special_token_in_corpus_keeps_its_special_id():
    # PTB's corpus holds <unk> itself; it must not appear twice
    v = Vocabulary.build([["<unk>", "a", "<unk>", "<eos>"]], pad=None, eos="<eos>")
    assert v.tokens == ("<unk>", "<eos>", "a")
    assert v.unk_id == 0 and v.eos_id == 1


def test_encode_decode_round_trip_and_unknowns():
    v = Vocabulary.build(CORPUS, bos="<bos>", eos="<eos>")
    ids = v.encode(["the", "dog", "sat"])
    assert ids.dtype == np.int32 and ids.shape == (3,)
    assert v.decode(ids) == ["the", "dog", "sat"]
    assert v.encode(["the", "zebra"]).tolist() == [v.token_to_id("the"), v.unk_id]
    full = v.encode(["cat"], add_bos=True, add_eos=True)
    assert full.dtype == np.int32 and full.tolist() == [2, v.token_to_id("cat"), 3]
    assert v.decode(full, skip_special=True) == ["cat"]
    assert v.decode(np.array([[4, 5]])) == ["cat", "sat"]  # any shape, flattened
    assert v.encode([]).shape == (0,)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        v.decode([99])


def test_missing_specials_are_errors():
    v = Vocabulary.build(CORPUS, unk=None)
    with pytest.raises(KeyError, match="no unk token"):
        v.encode(["zebra"])
    with pytest.raises(ValueError, match="no bos token"):
        v.encode(["cat"], add_bos=True)
    with pytest.raises(ValueError, match="duplicates"):
        Vocabulary(("a", "a"), pad=None, unk=None)
    with pytest.raises(ValueError, match="not among the tokens"):
        Vocabulary(("a",), pad="<pad>", unk=None)


def test_long_character_strings_take_the_vectorised_path_with_same_ids():
    v = Vocabulary.build(["hello world, hello there"], pad=None, order="sorted")
    text = "hello world, the zebra é\n" * 10  # unknown characters: z, b, é, newline
    fast = v.encode(text)
    slow = np.array([v.token_to_id(c) for c in text], dtype=np.int32)
    np.testing.assert_array_equal(fast, slow)
    assert "".join(v.decode(v.encode("hello there" * 10))) == "hello there" * 10
    with pytest.raises(KeyError, match="character 'z'"):
        Vocabulary.build(["abc"], pad=None, unk=None).encode("abcz" * 20)


def test_count_unknown_counts_what_encode_maps_to_unk():
    v = Vocabulary.build(["hello world"], pad=None, order="sorted")
    for text in ("hé llo\n", "hé llo\n" * 20):  # the short path and the vectorised one
        ids = v.encode(text)
        assert v.count_unknown(text) == text.count("é") + text.count("\n") == int((ids == v.unk_id).sum())
    words = Vocabulary.build([["<unk>", "a", "b"]], pad=None)  # PTB-like: the corpus's own <unk> is a known token
    assert words.count_unknown(["a", "<unk>", "zebra", "zebra", "b"]) == 2 and words.count_unknown([]) == 0


def test_save_load_json_round_trip(tmp_path):
    v = Vocabulary.build(CORPUS + [["naïve", "\n"]], bos="<bos>")
    path = v.save(tmp_path / "sub" / "vocab.json")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["format"] == FORMAT and saved["tokens"][:2] == ["<pad>", "<unk>"] and saved["eos"] is None
    w = Vocabulary.load(path)
    assert w == v and w.tokens == v.tokens and w.bos_id == v.bos_id
    np.testing.assert_array_equal(w.encode(["naïve", "?", "\n"]), v.encode(["naïve", "?", "\n"]))
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left behind
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a vocabulary file"):
        Vocabulary.load(tmp_path / "bad.json")
