"""Sequence utilities against PyTorch / NumPy references, and padding-invariance properties of unroll."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_jax import (bucket_by_length, cells, lengths_to_mask, mask_to_lengths, pad_sequences, reverse_padded,
                     unroll, vmap_sequences)
from rnn_jax.sequence import bucket_indices, bucket_overflow, hold_invalid, zero_invalid
from tests.conftest import assert_close

RNG = np.random.default_rng(0)
SEQS = [RNG.normal(size=(n, 2)).astype(np.float32) for n in (3, 1, 4)]


# --------------------------------------------------------------------------- pad_sequences


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("padding_value", [0.0, -1.5])
def test_pad_sequences_matches_torch(batch_first, padding_value):
    torch = pytest.importorskip("torch")
    padded, lengths = pad_sequences(SEQS, batch_first=batch_first, padding_value=padding_value)
    want = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(s) for s in SEQS], batch_first=batch_first,
                                           padding_value=padding_value).numpy()
    assert padded.shape == want.shape == ((3, 4, 2) if batch_first else (4, 3, 2))
    np.testing.assert_array_equal(padded, want)
    np.testing.assert_array_equal(lengths, [3, 1, 4])
    assert lengths.dtype == np.int32


def test_pad_sequences_one_dimensional_and_max_len():
    torch = pytest.importorskip("torch")
    seqs = [np.arange(1, 4), np.arange(1, 2)]
    padded, lengths = pad_sequences(seqs, batch_first=True, max_len=5, padding_value=-1)
    want = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(s) for s in seqs], batch_first=True,
                                           padding_value=-1).numpy()
    np.testing.assert_array_equal(padded[:, :3], want)
    np.testing.assert_array_equal(padded[:, 3:], -1)
    np.testing.assert_array_equal(lengths, [3, 1])
    padded_tm, _ = pad_sequences(seqs, max_len=5)
    assert padded_tm.shape == (5, 2)


@pytest.mark.parametrize("call,match", [
    (lambda: pad_sequences([]), "sequences"),
    (lambda: pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))]), r"sequences\[1\]"),
    (lambda: pad_sequences(SEQS, max_len=3), "max_len"),
])
def test_pad_sequences_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- masks and lengths


@pytest.mark.parametrize("time_major", [False, True])
def test_lengths_mask_round_trip(time_major):
    lengths = np.array([0, 3, 5, 1], np.int32)
    mask = np.asarray(lengths_to_mask(lengths, 5, time_major=time_major))
    ref = np.zeros((4, 5), bool)
    for b, L in enumerate(lengths):
        ref[b, :L] = True
    np.testing.assert_array_equal(mask, ref.T if time_major else ref)
    np.testing.assert_array_equal(mask_to_lengths(mask, time_major=time_major), lengths)


def test_mask_to_lengths_rejects_wrong_rank():
    with pytest.raises(ValueError, match="mask must have shape"):
        mask_to_lengths(np.ones(3, bool))


# --------------------------------------------------------------------------- reverse_padded


def _np_reverse(xs, lengths):
    out = xs.copy()
    for b, L in enumerate(lengths):
        out[b, :L] = xs[b, :L][::-1]
    return out


@pytest.mark.parametrize("feature_shape", [(), (2,), (2, 3)])
def test_reverse_padded_matches_numpy_and_is_an_involution(feature_shape):
    xs = RNG.normal(size=(3, 5) + feature_shape).astype(np.float32)
    lengths = np.array([5, 0, 3], np.int32)
    rev = np.asarray(reverse_padded(xs, lengths))
    np.testing.assert_array_equal(rev, _np_reverse(xs, lengths))
    np.testing.assert_array_equal(reverse_padded(rev, lengths), xs)
    rev_tm = reverse_padded(np.swapaxes(xs, 0, 1), lengths, time_major=True)
    np.testing.assert_array_equal(np.swapaxes(rev_tm, 0, 1), rev)


def test_reverse_padded_without_lengths_flips():
    xs = RNG.normal(size=(2, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(reverse_padded(xs), xs[:, ::-1])
    np.testing.assert_array_equal(reverse_padded(xs, time_major=True), xs[::-1])


# --------------------------------------------------------------------------- bucket_by_length

BUCKET_SEQS = [np.full((n, 1), i, np.float32) for i, n in enumerate([1, 7, 3, 9, 2, 5, 6, 4, 8, 3, 1])]
BOUNDS = (3, 6, 9)


def _collect(**kw):
    return list(bucket_by_length(BUCKET_SEQS, BOUNDS, 2, **kw))


@pytest.mark.parametrize("batch_first", [True, False])
def test_bucket_by_length_covers_every_sequence_once(batch_first):
    seen = []
    for padded, lengths, idx in _collect(batch_first=batch_first, padding_value=-1.0):
        padded = padded if batch_first else np.swapaxes(padded, 0, 1)  # [B, T_bucket, 1]
        bound = padded.shape[1]
        assert bound in BOUNDS
        for row, L, i in zip(padded, lengths, idx):
            L_true = len(BUCKET_SEQS[i])
            assert L == L_true
            assert bound == min(b for b in BOUNDS if b >= L_true)  # the smallest bucket that holds it
            np.testing.assert_array_equal(row[:L], BUCKET_SEQS[i])
            np.testing.assert_array_equal(row[L:], -1.0)
        seen.extend(int(i) for i in idx)
    assert sorted(seen) == list(range(len(BUCKET_SEQS)))


def test_bucket_by_length_drop_remainder_and_extras():
    full = _collect()
    dropped = _collect(drop_remainder=True, extras=[f"label{i}" for i in range(len(BUCKET_SEQS))])
    assert all(len(b[2]) == 2 for b in dropped)
    # per bucket, only the last short batch goes: buckets 3, 6, 9 hold 5, 3 and 3 sequences
    assert sum(len(b[2]) for b in dropped) == 4 + 2 + 2
    assert len(full) == len(dropped) + 3
    assert sorted(len(b[2]) for b in full) == [1, 1, 1] + [2] * 4
    for _, _, idx, labels in dropped:
        assert labels == [f"label{i}" for i in idx]


def test_bucket_by_length_shuffle_is_reproducible_by_seed():
    def order(seed):
        return [tuple(int(i) for i in b[2]) for b in _collect(shuffle=True, seed=seed)]
    assert order(3) == order(3)
    assert any(order(3) != order(s) for s in (4, 5, 6))
    assert sorted(i for b in order(3) for i in b) == list(range(len(BUCKET_SEQS)))


@pytest.mark.parametrize("call,match", [
    (lambda: list(bucket_by_length(BUCKET_SEQS, (3, 6), 2)), "exceeds the largest bucket"),
    (lambda: list(bucket_by_length(BUCKET_SEQS, (9, 6), 2)), "bucket_lengths"),
    (lambda: list(bucket_by_length(BUCKET_SEQS, (0, 9), 2)), "bucket_lengths"),
    (lambda: list(bucket_by_length(BUCKET_SEQS, BOUNDS, 0)), "batch_size"),
])
def test_bucket_by_length_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bucket_overflow_truncate_and_drop_by_hand(caplog):
    # BUCKET_SEQS lengths 1 7 3 9 2 5 6 4 8 3 1; with buckets (3, 6) sequences 1, 3 and 8 (lengths 7, 9, 8) are too long
    long = {1, 3, 8}
    assert bucket_overflow([len(s) for s in BUCKET_SEQS], (3, 6)) == 3 and bucket_overflow([], (3,)) == 0
    caplog.set_level(logging.INFO)
    cut = list(bucket_by_length(BUCKET_SEQS, (3, 6), 2, overflow="truncate"))
    assert sorted(int(i) for b in cut for i in b[2]) == list(range(len(BUCKET_SEQS)))
    for padded, lengths, idx in cut:
        for row, L, i in zip(padded, lengths, idx):
            want = BUCKET_SEQS[i][:6]  # the largest bucket's first 6 steps
            assert L == len(want) and padded.shape[1] == (6 if i in long else min(b for b in (3, 6) if b >= L))
            np.testing.assert_array_equal(row[:L], want)
    assert "3 of 11 sequences are longer than the largest bucket (6, the longest 9): truncated" in caplog.text
    dropped = list(bucket_by_length(BUCKET_SEQS, (3, 6), 2, overflow="drop"))
    assert sorted(int(i) for b in dropped for i in b[2]) == sorted(set(range(len(BUCKET_SEQS))) - long)
    assert "dropped" in caplog.text
    with pytest.raises(ValueError, match=r"sequence 3 of length 9 exceeds the largest bucket \(6\) \(3 of 11 "):
        bucket_indices([len(s) for s in BUCKET_SEQS], (3, 6), 2)
    with pytest.raises(ValueError, match=r"overflow must be one of \('error', 'truncate', 'drop'\), got 'cut'"):
        bucket_indices([1], (3,), 2, overflow="cut")


# --------------------------------------------------------------------------- vmap and padding invariance

I, H, B = 2, 3, 3
_CELL = cells.lstm(H, peephole=True)
_PARAMS = _CELL.init(jax.random.key(0), I)


@pytest.mark.parametrize("time_major", [False, True])
def test_vmap_sequences_equals_batched_masked_run(time_major):
    xs = jax.random.normal(jax.random.key(1), (B, 4, I))
    lengths = np.array([4, 0, 2], np.int32)

    def one(x, length, params):  # x [T, I], length ()
        return unroll(_CELL, params, x, length, reverse=True)

    data = jnp.swapaxes(xs, 0, 1) if time_major else xs
    got = jax.jit(lambda d, l, p: vmap_sequences(one, d, l, p, time_major=time_major))(data, lengths, _PARAMS)
    want = unroll(_CELL, _PARAMS, xs, lengths, reverse=True)
    assert_close(got, want, "exact")


_RUNS = {}


def _run(reverse):
    if reverse not in _RUNS:
        _RUNS[reverse] = jax.jit(lambda p, xs, lengths: unroll(_CELL, p, xs, lengths, reverse=reverse))
    return _RUNS[reverse]


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(0, 4), min_size=B, max_size=B), perm=st.permutations(range(B)),
       seed=st.integers(0, 2 ** 16), reverse=st.booleans())
def test_more_padding_and_batch_order_do_not_change_results(lengths, perm, seed, reverse):
    T, T_more = 4, 6
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths, np.int32)
    perm = np.array(perm)
    xs = rng.normal(size=(B, T, I)).astype(np.float32)
    # garbage everywhere past each length: padding content must not matter
    xs_more = rng.normal(size=(B, T_more, I)).astype(np.float32) * 100.0
    for b, L in enumerate(lengths):
        xs_more[b, :L] = xs[b, :L]
    final, ys = _run(reverse)(_PARAMS, xs, lengths)
    final_m, ys_m = _run(reverse)(_PARAMS, xs_more[perm], lengths[perm])
    inv = np.argsort(perm)
    final_m = jax.tree.map(lambda a: a[inv], final_m)
    ys_m = np.asarray(ys_m)[inv]
    assert_close(final_m, final, "exact")
    assert_close(ys_m[:, :T], ys, "exact")
    assert np.all(ys_m[:, T:] == 0.0)
    for b, L in enumerate(lengths):
        assert np.all(np.asarray(ys)[b, L:] == 0.0)


def test_hold_invalid_and_zero_invalid_per_row():
    """The padding rule of a scan step: invalid rows keep the old carry (every leaf) and output zeros."""
    valid = jnp.array([True, False, True])
    new = cells.LSTMState(jnp.ones((3, 2)), 2 * jnp.ones((3, 4)))
    old = cells.LSTMState(jnp.zeros((3, 2)), -jnp.ones((3, 4)))
    held = hold_invalid(valid, new, old)
    assert isinstance(held, cells.LSTMState)
    assert_close(held.h, np.array([[1, 1], [0, 0], [1, 1]]), "exact")
    assert_close(held.c, np.array([[2] * 4, [-1] * 4, [2] * 4]), "exact")
    y = zero_invalid(valid, jnp.full((3, 2), 5.0, jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    assert_close(y.astype(jnp.float32), np.array([[5, 5], [0, 0], [5, 5]]), "exact")
