"""Tests of rnn_jax/data/sst.py: split and label counts against the published SST numbers (SOURCE.md), a
malformed file's error, the vocabulary's <unk> mapping, and bucketed batches (the tree parser itself:
test_sst_format.py)."""

import collections
import functools
import re

import numpy as np
import pytest

from rnn_jax.data import sst
from rnn_jax.data.vocab import Vocabulary
from tests.data import DATA_DIR, requires_data


@functools.lru_cache(maxsize=None)
def _read(split, **kw):
    return tuple(sst.read_sst(split, data_dir=DATA_DIR, **kw))


@requires_data
def test_split_sizes_and_label_counts_match_sst():
    sizes = {s: len(_read(s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 8_544, "dev": 1_101, "test": 2_210}
    binary = {s: len(_read(s, binary=True)) for s in ("train", "dev", "test")}
    assert binary == {"train": 6_920, "dev": 872, "test": 1_821}
    counts = {s: [collections.Counter(e.label for e in _read(s))[k] for k in range(5)]
              for s in ("train", "dev", "test")}
    assert counts == {"train": [1092, 2218, 1624, 2322, 1288], "dev": [139, 289, 229, 279, 165],
                      "test": [279, 633, 389, 510, 399]}
    assert collections.Counter(e.label for e in _read("dev", binary=True)) == {0: 139 + 289, 1: 279 + 165}
    first = _read("train")[0]
    assert first.label == 3 and first.tokens[:4] == ("The", "Rock", "is", "destined") and first.tokens[-1] == "."
    assert max(len(e.tokens) for s in ("train", "dev", "test") for e in _read(s)) == 56


@requires_data
def test_phrases_of_the_training_trees():
    every = _read("train", phrases=True, unique_phrases=False)
    assert len(every) == 318_582  # every labelled node (SOURCE.md)
    unique = _read("train", phrases=True)
    assert len(unique) == 159_274 and len({e.tokens for e in unique}) == len(unique)
    assert len(_read("train", phrases=True, binary=True)) == 77_616
    sentences = {e.tokens for e in _read("train")}
    assert sentences <= {e.tokens for e in unique}  # roots are phrases too
    assert all(e.label in (0, 1) for e in _read("train", phrases=True, binary=True))


@requires_data
def test_vocabulary_from_train_only_and_unk_mapping(tmp_path):
    train, dev = _read("train"), _read("dev")
    vocab = sst.sst_vocabulary(train)
    assert (vocab.pad_id, vocab.unk_id) == (0, 1) and len(vocab) == 18_282
    train_words = {t for e in train for t in e.tokens}
    assert set(vocab.tokens[2:]) == train_words
    unseen = [t for e in dev for t in e.tokens if t not in train_words]
    assert unseen and all(vocab.token_to_id(t) == vocab.unk_id for t in unseen)
    ids = vocab.encode(train[5].tokens)
    assert tuple(vocab.decode(ids)) == train[5].tokens
    assert Vocabulary.load(vocab.save(tmp_path / "vocab.json")) == vocab
    lower = _read("dev", lowercase=True)
    assert all(t == t.lower() for e in lower for t in e.tokens) and len(lower) == 1_101


@requires_data
@pytest.mark.parametrize("shuffle", [False, True])
def test_sentence_batches_cover_each_example_once(shuffle):
    examples = _read("dev", binary=True)
    vocab = sst.sst_vocabulary(_read("train"))
    buckets = sst.bucket_lengths_for([len(e.tokens) for e in examples])
    assert list(buckets) == sorted(buckets) and buckets[-1] >= max(len(e.tokens) for e in examples)
    seen = []
    for b in sst.sentence_batches(examples, vocab, batch_size=32, bucket_lengths=buckets, shuffle=shuffle, seed=1):
        assert b.tokens.shape[1] in buckets and b.tokens.shape[0] <= 32 and b.tokens.dtype == np.int32
        for row, length, label, i in zip(b.tokens, b.lengths, b.labels, b.indices):
            ex = examples[i]
            assert length == len(ex.tokens) and label == ex.label
            np.testing.assert_array_equal(row[:length], vocab.encode(ex.tokens))
            assert (row[length:] == vocab.pad_id).all()
        assert (b.weights == 1).all()
        seen.extend(b.indices.tolist())
    assert sorted(seen) == list(range(len(examples)))
    if shuffle:
        orders = [[tuple(b.indices) for b in sst.sentence_batches(examples, vocab, batch_size=32, shuffle=True,
                                                                  seed=s)] for s in (1, 1, 2)]
        assert orders[0] == orders[1] != orders[2]


@requires_data
def test_sentence_batches_fixed_shapes():
    examples = _read("test", binary=True)
    vocab = sst.sst_vocabulary(_read("train"))
    buckets = (16, 32, 64)
    padded = list(sst.sentence_batches(examples, vocab, batch_size=50, bucket_lengths=buckets, pad_batch=True))
    assert {b.tokens.shape for b in padded} <= {(50, 16), (50, 32), (50, 64)}
    assert sum(float(b.weights.sum()) for b in padded) == len(examples)
    for b in padded:
        added = b.weights == 0
        assert (b.lengths[added] == 1).all() and (b.indices[added] == -1).all()  # never a zero length
    dropped = list(sst.sentence_batches(examples, vocab, batch_size=50, bucket_lengths=buckets, drop_remainder=True))
    assert all(b.tokens.shape[0] == 50 for b in dropped)
    with pytest.raises(ValueError, match="pad token"):
        next(sst.sentence_batches(examples, Vocabulary.build([["a"]], pad=None), batch_size=2))


def test_a_malformed_line_in_a_split_file_names_the_file_and_the_line(tmp_path):
    folder = tmp_path / "sentiment" / "sst"
    folder.mkdir(parents=True)
    (folder / "dev.txt").write_text("(3 (2 a) (4 b))\n(1 (1 c) (2 d)\n(4 e)\n")
    with pytest.raises(ValueError, match=r"dev\.txt: tree line 2 is malformed: unbalanced") as e:
        sst.read_sst("validation", data_dir=tmp_path)
    assert str(folder / "dev.txt") in str(e.value) and "'(1 (1 c) (2 d)'" in str(e.value)
    # the lines themselves are still read back as they are; only parsing refuses them
    assert sst.read_sst_trees("dev", data_dir=tmp_path)[1] == "(1 (1 c) (2 d)"
    # line numbers are the file's: a blank line inside is refused, a label past 4 named with its line
    (folder / "dev.txt").write_text("(3 (2 a) (4 b))\n\n(4 e)\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(folder / 'dev.txt'))}: line 2 is blank"):
        sst.read_sst("dev", data_dir=tmp_path)
    (folder / "dev.txt").write_text("(3 (2 a) (4 b))\n(4 e)\n(7 (2 c) (2 d))\n\n")  # trailing blank lines are fine
    with pytest.raises(ValueError, match=r"dev\.txt: tree line 3 is malformed: label 7 is outside 0-4"):
        sst.read_sst("dev", data_dir=tmp_path)


def test_examples_past_the_largest_bucket_are_cut_or_dropped_by_overflow():
    examples = [sst.SentimentExample(("a", "b", "c", "d", "e"), 1), sst.SentimentExample(("b",), 0),
                sst.SentimentExample(("c", "a"), 1)]
    vocab = Vocabulary.build([ex.tokens for ex in examples])
    with pytest.raises(ValueError, match=r"sequence 0 of length 5 exceeds the largest bucket \(4\)"):
        next(sst.sentence_batches(examples, vocab, batch_size=4, bucket_lengths=(2, 4)))
    cut = list(sst.sentence_batches(examples, vocab, batch_size=4, bucket_lengths=(2, 4), overflow="truncate"))
    (long,) = [b for b in cut if 0 in b.indices.tolist()]
    assert long.tokens.shape == (1, 4) and long.lengths.tolist() == [4]
    assert long.tokens[0].tolist() == vocab.encode(("a", "b", "c", "d")).tolist() and long.labels.tolist() == [1]
    kept = list(sst.sentence_batches(examples, vocab, batch_size=4, bucket_lengths=(2, 4), overflow="drop"))
    assert sorted(i for b in kept for i in b.indices.tolist()) == [1, 2]
    with pytest.raises(ValueError, match=r"examples\[1\] has none \(1 of 2 are empty\)"):
        next(sst.sentence_batches([examples[1], sst.SentimentExample((), 0)], vocab, batch_size=2))

