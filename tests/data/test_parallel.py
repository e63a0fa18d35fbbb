"""rnn_jax.data.parallel: vocabularies, encoding and the teacher-forcing batch layout, checked by hand."""

import numpy as np
import pytest

from rnn_jax.data import parallel

PAIRS = [("a man runs", "ein mann läuft"), ("a dog", "ein hund"), ("a man", "ein mann")]


def test_vocabularies_put_the_specials_first_drop_rare_words_and_round_trip(tmp_path):
    src, tgt = parallel.pair_vocabularies(PAIRS, min_count=2)
    parallel.save_vocabularies((src, tgt), tmp_path / "v.json")
    assert parallel.load_vocabularies(tmp_path / "v.json") == (src, tgt)
    assert src.tokens == ("<pad>", "<unk>", "<s>", "</s>", "a", "man")
    assert (tgt.pad_id, tgt.unk_id, tgt.bos_id, tgt.eos_id) == (0, 1, 2, 3)
    assert tgt.tokens[4:] == ("ein", "mann")


def test_batches_shift_the_target_for_teacher_forcing_and_mask_its_real_positions():
    src, tgt = parallel.pair_vocabularies(PAIRS)
    encoded = parallel.encode_pairs(PAIRS, src, tgt)
    (batch,) = parallel.pair_batches(encoded, batch_size=3, buckets=(4,), bos_id=2, eos_id=3, tgt_multiple=4)
    row = list(batch["index"]).index(0)
    assert batch["src"].shape == (3, 4) and batch["src_lengths"][row] == 3
    ids = tgt.encode("ein mann läuft".split()).tolist()
    assert batch["tgt_in"][row].tolist() == [2] + ids  # T = 3 words + 1 rounded up to 4
    assert batch["tgt_out"][row].tolist() == ids + [3]
    assert batch["mask"][row].tolist() == [1, 1, 1, 1]
    short = list(batch["index"]).index(1)
    assert batch["mask"][short].tolist() == [1, 1, 1, 0] and batch["tgt_out"][short, 2] == 3


def test_sources_go_to_their_bucket_and_bad_input_is_named():
    src, tgt = parallel.pair_vocabularies(PAIRS)
    encoded = parallel.encode_pairs(PAIRS, src, tgt)
    shapes = {b["src"].shape[1] for b in parallel.pair_batches(encoded, batch_size=1, buckets=(2, 3), bos_id=2,
                                                                eos_id=3)}
    assert shapes == {2, 3}
    with pytest.raises(ValueError, match="exceeds the largest bucket"):
        next(parallel.pair_batches(encoded, batch_size=1, buckets=(2,), bos_id=2, eos_id=3))
    with pytest.raises(ValueError, match="pair 1 has an empty source"):
        parallel.encode_pairs([("a", "b"), ("", "c")], src, tgt)
    assert np.array_equal(parallel.encode_pairs([("a man runs", "x")], src, tgt, max_len=2)[0].src,
                          src.encode(["a", "man"]))


def test_sources_past_the_largest_bucket_are_cut_or_dropped_by_overflow():
    src, tgt = parallel.pair_vocabularies(PAIRS)
    encoded = parallel.encode_pairs(PAIRS, src, tgt)  # sources of 3, 2 and 2 words
    with pytest.raises(ValueError, match=r"sequence 0 of length 3 exceeds the largest bucket \(2\) \(1 of 3"):
        next(parallel.pair_batches(encoded, batch_size=3, buckets=(2,), bos_id=2, eos_id=3))
    (batch,) = parallel.pair_batches(encoded, batch_size=3, buckets=(2,), bos_id=2, eos_id=3, overflow="truncate")
    row = batch["index"].tolist().index(0)
    assert batch["src"][row].tolist() == src.encode(["a", "man"]).tolist() and batch["src_lengths"][row] == 2
    assert batch["tgt_out"][row, :4].tolist() == tgt.encode("ein mann läuft".split()).tolist() + [3]  # target whole
    (batch,) = parallel.pair_batches(encoded, batch_size=3, buckets=(2,), bos_id=2, eos_id=3, overflow="drop")
    assert sorted(batch["index"].tolist()) == [1, 2]
