"""rnn_jax.data.tagging: vocabularies, sentence encoding and the batch layouts, checked by hand."""

import numpy as np
import pytest

from rnn_jax.data import tagging

TRAIN = [(("The", "cat", "sat"), ("DET", "NOUN", "VERB")), (("the", "cat"), ("DET", "NOUN"))]


def test_vocabularies_count_forms_lowercase_words_and_round_trip(tmp_path):
    v = tagging.TaggingVocabularies.build(TRAIN)
    assert v.words.tokens[2:] == ("cat", "the", "sat")  # by count (cat 2, the 2 as The + the), then by token
    assert v.counts == {"The": 1, "cat": 2, "sat": 1, "the": 1}
    assert v.tags.tokens == ("DET", "NOUN", "VERB") and v.tags.pad is None
    assert "T" in v.chars and "t" in v.chars
    again = tagging.TaggingVocabularies.load(v.save(tmp_path / "v.json"))
    assert again == v


def test_clip_word_keeps_prefix_and_suffix():
    assert tagging.clip_word("short", 8) == "short"
    assert tagging.clip_word("internationalization", 8) == "inte" + "tion"
    assert tagging.clip_word("abcdefg", 4) == "ab" + "fg"
    assert tagging.clip_word("abcdefg", 5) == "abc" + "fg"


def test_encode_sentence_by_hand():
    v = tagging.TaggingVocabularies.build(TRAIN)
    s = tagging.encode_sentence(("The", "dog", "sat"), ("DET", "NOUN", "VERB"), v, max_word_chars=2,
                                word_dropout_alpha=0.5)
    assert s.words.tolist() == [v.words.token_to_id("the"), v.words.unk_id, v.words.token_to_id("sat")]
    assert s.char_lengths.tolist() == [2, 2, 2]  # every word clipped to 2 characters ("Te", "dg", "st")
    assert s.chars[0].tolist() == [v.chars.token_to_id("T"), v.chars.token_to_id("e")]
    np.testing.assert_allclose(s.word_drop, [0.5 / 1.5, 0.0, 0.5 / 1.5])  # alpha / (alpha + count); unseen 0
    assert s.unseen.tolist() == [False, True, False]
    assert s.tags.tolist() == [0, 1, 2]
    odd = tagging.encode_sentence(("Thé", "cät"), ("DET", "NOUN"), v, max_word_chars=4)  # characters never seen
    unk = v.chars.unk_id
    assert odd.chars[:, :3].tolist() == [[v.chars.token_to_id("T"), v.chars.token_to_id("h"), unk],
                                         [v.chars.token_to_id("c"), unk, v.chars.token_to_id("t")]]
    assert v.chars.count_unknown("Thé" + "cät") == 2 and odd.unseen.tolist() == [True, True]
    with pytest.raises(ValueError, match="one tag per word"):
        tagging.encode_sentence(("a", "b"), ("DET",), v, max_word_chars=4)


def test_batches_pad_with_zeros_and_keep_each_sentence_index():
    v = tagging.TaggingVocabularies.build(TRAIN)
    encoded = [tagging.encode_sentence(w, t, v, max_word_chars=4) for w, t in TRAIN]
    (batch,) = tagging.tagging_batches(encoded, "buckets", batch_size=4, buckets=(5,))
    assert batch["words"].shape == (2, 5) and batch["chars"].shape == (2, 5, 4)
    order = batch["index"].tolist()
    assert sorted(order) == [0, 1]
    row = order.index(1)
    assert batch["lengths"][row] == 2 and batch["mask"][row].tolist() == [1, 1, 0, 0, 0]
    assert (batch["char_lengths"][row, 2:] == 0).all() and (batch["words"][row, 2:] == 0).all()


def test_bad_modes_and_buckets_are_named():
    v = tagging.TaggingVocabularies.build(TRAIN)
    encoded = [tagging.encode_sentence(w, t, v, max_word_chars=4) for w, t in TRAIN]
    with pytest.raises(ValueError, match="mode must be one of"):
        next(tagging.tagging_batches(encoded, "packed", batch_size=2))
    with pytest.raises(ValueError, match="exceeds the largest bucket"):
        next(tagging.tagging_batches(encoded, "buckets", batch_size=2, buckets=(2,)))
    with pytest.raises(ValueError, match="bucket_lengths must be positive and increasing"):
        next(tagging.tagging_batches(encoded, "vmap", batch_size=2, buckets=(4, 3)))


def test_sentences_past_the_largest_bucket_are_cut_or_dropped_by_overflow():
    v = tagging.TaggingVocabularies.build(TRAIN)
    encoded = [tagging.encode_sentence(w, t, v, max_word_chars=4) for w, t in TRAIN]  # 3 and 2 words
    with pytest.raises(ValueError, match=r"sequence 0 of length 3 exceeds the largest bucket \(2\)"):
        next(tagging.tagging_batches(encoded, "buckets", batch_size=2, buckets=(2,)))
    (batch,) = tagging.tagging_batches(encoded, "vmap", batch_size=2, buckets=(2,), overflow="truncate")
    row = batch["index"].tolist().index(0)
    assert batch["words"].shape == (2, 2) and batch["lengths"][row] == 2 and batch["mask"][row].tolist() == [1, 1]
    assert batch["words"][row].tolist() == [v.words.token_to_id("the"), v.words.token_to_id("cat")]
    assert batch["tags"][row].tolist() == [0, 1]
    assert batch["chars"][row, 1].tolist() == v.chars.encode("cat").tolist() + [0]
    (batch,) = tagging.tagging_batches(encoded, "buckets", batch_size=2, buckets=(2,), overflow="drop")
    assert batch["index"].tolist() == [1] and batch["lengths"].tolist() == [2]
