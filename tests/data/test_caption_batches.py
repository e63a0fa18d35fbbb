"""Caption batches against hand-written arrays: every caption of an image in its row, teacher forcing,
missing captions masked out, each image once per pass, and the argument errors."""

import numpy as np
import pytest

from rnn_jax.data import caption_batches as cb
from rnn_jax.data.vocab import Vocabulary

BOS, EOS = 2, 3


def test_vocabulary_counts_every_caption_of_every_image_and_keeps_the_specials():
    vocab = cb.caption_vocabulary([[["a", "dog"], ["a", "cat"]], [["a", "dog", "runs"]]], min_count=2)
    assert [vocab.id_to_token(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert "a" in vocab and "dog" in vocab and "cat" not in vocab and "runs" not in vocab


def test_encode_cuts_to_max_len_and_rejects_empty_captions():
    vocab = Vocabulary.build([["a", "b", "c"]], pad="<pad>", unk="<unk>", bos="<s>", eos="</s>")
    (caps,) = cb.encode_captions([[["a", "b", "c"], ["zzz"]]], vocab, max_len=2)
    assert [c.tolist() for c in caps] == [vocab.encode(["a", "b"]).tolist(), [vocab.unk_id]]
    with pytest.raises(ValueError, match=r"captions\[0\]\[1\] is empty"):
        cb.encode_captions([[["a"], []]], vocab)
    with pytest.raises(ValueError, match=r"captions\[1\] must hold at least one caption"):
        cb.encode_captions([[["a"]], []], vocab)


def test_rows_hold_all_captions_with_teacher_forcing_arrays_by_hand():
    encoded = [[np.array([5, 6]), np.array([7])], [np.array([8, 9, 10])]]  # image 1 has one caption of two
    (batch,) = cb.caption_batches(encoded, batch_size=2, refs=2, bos_id=BOS, eos_id=EOS, len_multiple=5)
    assert batch["index"].tolist() == [0, 1]
    # longest caption 3 + eos = 4 -> rounded up to 5
    np.testing.assert_array_equal(batch["tgt_in"], [[[2, 5, 6, 0, 0], [2, 7, 0, 0, 0]],
                                                    [[2, 8, 9, 10, 0], [0, 0, 0, 0, 0]]])
    np.testing.assert_array_equal(batch["tgt_out"], [[[5, 6, 3, 0, 0], [7, 3, 0, 0, 0]],
                                                     [[8, 9, 10, 3, 0], [0, 0, 0, 0, 0]]])
    np.testing.assert_array_equal(batch["mask"], [[[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]],
                                                  [[1, 1, 1, 1, 0], [0, 0, 0, 0, 0]]])
    assert batch["mask"].dtype == np.float32 and batch["tgt_in"].dtype == np.int32


def test_a_shuffled_pass_sees_each_image_once_and_drop_remainder_skips_the_short_batch():
    encoded = [[np.array([5 + i])] for i in range(7)]
    batches = list(cb.caption_batches(encoded, batch_size=3, refs=1, bos_id=BOS, eos_id=EOS, shuffle=True, seed=4))
    assert sorted(np.concatenate([b["index"] for b in batches]).tolist()) == list(range(7))
    assert [len(b["index"]) for b in batches] == [3, 3, 1]
    kept = list(cb.caption_batches(encoded, batch_size=3, refs=1, bos_id=BOS, eos_id=EOS, shuffle=True, seed=4,
                                   drop_remainder=True))
    assert [b["index"].tolist() for b in kept] == [b["index"].tolist() for b in batches[:2]]
    for b in batches:  # the row's target is its own image's caption
        np.testing.assert_array_equal(b["tgt_out"][:, 0, 0], 5 + b["index"])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="batch_size"):
        next(cb.caption_batches([[np.array([5])]], batch_size=0, refs=1, bos_id=BOS, eos_id=EOS))
    with pytest.raises(ValueError, match="at least one image"):
        next(cb.caption_batches([], batch_size=2, refs=1, bos_id=BOS, eos_id=EOS))
