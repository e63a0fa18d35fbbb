"""Tests of rnn_jax/data/lm.py: streams and chunks checked against index arithmetic on a ramp, targets shifted by
one across chunk boundaries, every target counted once in evaluation, and a restored position continuing identically."""

import itertools
import json
import logging

import numpy as np
import pytest

from rnn_jax.data import lm, text
from rnn_jax.data.vocab import Vocabulary
from tests.data import DATA_DIR, requires_data


def _epoch(batches):
    return [batches.batch(k) for k in range(len(batches))]


@pytest.mark.parametrize("n,batch_size,seq_len", list(itertools.product((2, 7, 50), (1, 3), (1, 4))))
def test_evaluation_layout_covers_every_target_once(n, batch_size, seq_len):
    ids = np.arange(n) + 100  # a ramp: the target of token x is x + 1
    batches = lm.LMBatches(ids, batch_size, seq_len, drop_remainder=False)
    seen = []
    for k, b in enumerate(_epoch(batches)):
        assert b.inputs.shape == b.targets.shape == b.mask.shape == (batch_size, seq_len)
        assert b.inputs.dtype == b.targets.dtype == np.int32 and b.mask.dtype == bool
        assert b.reset == (k == 0) and b.position == k
        np.testing.assert_array_equal(b.targets[b.mask], b.inputs[b.mask] + 1)
        assert not b.inputs[~b.mask].any() and not b.targets[~b.mask].any()  # padding is id 0
        seen.extend(b.targets[b.mask].tolist())
    assert sorted(seen) == list(range(101, 100 + n))  # each of the N - 1 targets exactly once
    assert batches.num_targets == n - 1
    # padding only at the end of each stream: masks are prefixes
    full = np.concatenate([b.mask for b in _epoch(batches)], axis=1)  # [B, L]
    assert all((row[:-1] >= row[1:]).all() for row in full)


@pytest.mark.parametrize("batch_size,seq_len", [(1, 1), (1, 5), (3, 1), (4, 6)])
def test_training_layout_streams_are_contiguous_and_continue_across_chunks(batch_size, seq_len):
    n = 103
    ids = np.arange(n)
    batches = lm.LMBatches(ids, batch_size, seq_len)
    length = ((n - 1) // batch_size) // seq_len * seq_len  # pairs per stream
    assert len(batches) == length // seq_len and batches.num_targets == batch_size * length
    epoch = _epoch(batches)
    for k, b in enumerate(epoch):
        assert b.mask.all()
        # reference: stream s, chunk k starts at token s * length + k * T
        expected = np.arange(batch_size)[:, None] * length + k * seq_len + np.arange(seq_len)[None, :]
        np.testing.assert_array_equal(b.inputs, expected)
        np.testing.assert_array_equal(b.targets, expected + 1)
    for prev, nxt in zip(epoch, epoch[1:]):  # the target of a chunk's last step is the next chunk's first input
        np.testing.assert_array_equal(prev.targets[:, -1], nxt.inputs[:, 0])


def test_positions_wrap_into_epochs_and_reset():
    batches = lm.LMBatches(np.arange(40), 2, 4)
    assert len(batches) == 4
    b = batches.batch(9)  # epoch 2, chunk 1
    assert b.position == 9 and not b.reset
    np.testing.assert_array_equal(b.inputs, batches.batch(1).inputs)
    assert batches.batch(8).reset
    assert [x.position for x in batches.iterator(num_epochs=2)] == list(range(8))
    with pytest.raises(ValueError, match="position"):
        batches.batch(-1)


def test_restored_position_continues_identically():
    batches = lm.LMBatches(np.random.default_rng(0).integers(0, 50, size=500), 3, 7)
    it = batches.iterator()
    for _ in range(len(batches) - 2):
        next(it)
    state = json.loads(json.dumps(it.get_state()))  # as a checkpoint would store it
    expected = [next(it) for _ in range(6)]  # crosses the epoch boundary
    resumed = batches.iterator()  # a fresh iterator, as after a restart
    resumed.set_state(state)
    assert resumed.epoch == 0
    for e, r in zip(expected, (next(resumed) for _ in range(6))):
        assert e.position == r.position and e.reset == r.reset
        np.testing.assert_array_equal(e.inputs, r.inputs)
        np.testing.assert_array_equal(e.targets, r.targets)
    assert resumed.get_state() == it.get_state() and resumed.epoch == 1
    again = batches.iterator(position=state["position"])
    np.testing.assert_array_equal(next(again).inputs, expected[0].inputs)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"too few for one full chunk.*drop_remainder=False"):
        lm.LMBatches(np.arange(10), 4, 3)
    with pytest.raises(ValueError, match="1-D integer"):
        lm.LMBatches(np.zeros((2, 5), np.int32), 1, 1)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        lm.LMBatches(np.arange(1), 1, 1, drop_remainder=False)
    with pytest.raises(ValueError, match=">= 1"):
        lm.LMBatches(np.arange(10), 0, 1)


@requires_data
def test_tiny_shakespeare_corpus_round_trip(tmp_path):
    corpus = lm.load_lm_corpus("tiny_shakespeare", data_dir=DATA_DIR)
    vocab = corpus.vocab
    assert len(vocab) == 66 and vocab.tokens[0] == "<unk>" and vocab.pad is None  # 65 characters + <unk>
    assert list(vocab.tokens[1:]) == sorted(vocab.tokens[1:])
    assert {s: v.shape for s, v in corpus.splits.items()} == {"train": (1_003_854,), "validation": (55_770,),
                                                             "test": (55_770,)}
    test_text = text.read_tiny_shakespeare("test", data_dir=DATA_DIR)
    assert "".join(vocab.decode(corpus.splits["test"])) == test_text
    assert vocab.unk_id not in set(np.unique(corpus.splits["test"]).tolist())  # every test character is in train
    assert corpus.unknown == {"train": 0, "validation": 0, "test": 0}
    # resume: the saved vocabulary encodes identically
    reloaded = lm.load_lm_corpus("tiny_shakespeare", vocab=Vocabulary.load(vocab.save(tmp_path / "v.json")),
                                 splits=("test",), data_dir=DATA_DIR)
    np.testing.assert_array_equal(reloaded.splits["test"], corpus.splits["test"])
    batches = lm.LMBatches(corpus.splits["train"], 64, 100)
    first = batches.batch(0)
    assert first.inputs.shape == (64, 100) and len(batches) == 1_003_853 // 64 // 100
    assert "".join(vocab.decode(first.inputs[0])) == text.read_tiny_shakespeare("train", data_dir=DATA_DIR)[:100]
    evaluation = lm.LMBatches(corpus.splits["validation"], 8, 100, drop_remainder=False)
    assert sum(int(b.mask.sum()) for b in _epoch(evaluation)) == 55_769


def test_characters_outside_the_training_vocabulary_become_unk_and_are_counted(tmp_path, caplog):
    # 100 characters: train the first 90 (a, b, newline), validation 5 with two unseen, test 5 with one
    folder = tmp_path / "charlm" / "tinyshakespeare"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_text("ab\n" * 30 + "aéb€a" + "ba\nbé", encoding="utf-8")
    caplog.set_level(logging.INFO)
    corpus = lm.load_lm_corpus("tiny_shakespeare", data_dir=tmp_path)
    assert corpus.vocab.tokens == ("<unk>", "\n", "a", "b")
    assert corpus.unknown == {"train": 0, "validation": 2, "test": 1}
    assert corpus.splits["validation"].tolist() == [2, 0, 3, 0, 2] and corpus.splits["test"].tolist() == [3, 2, 1, 3, 0]
    assert "tiny_shakespeare validation: 2 of 5 tokens are outside the vocabulary (encoded as <unk>)" in caplog.text
