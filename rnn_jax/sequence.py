"""Batching variable-length sequences: padding, length masks, reversal within length, bucketing, vmap.

These are the lecture's answers to "sequences in a minibatch have different lengths", in JAX terms:

* pad to a common length and carry a length per sequence (`pad_sequences`, `lengths_to_mask`);
* never pack: a masked scan holds each sequence's state past its length (see `rnn_jax.unroll`);
* reverse each sequence within its own length for the backward direction (`reverse_padded`), never a
  plain flip, which would feed padding first;
* bucket by length so a jit-compiled step sees a handful of shapes (`bucket_by_length`);
* `jax.vmap` of a single-sequence function is JAX's auto-batching (DyNet's idea): `vmap_sequences`.

Shapes: ``B`` batch, ``T`` time, ``...`` feature axes.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.checks import DTypeError, check_boolean, check_integer, check_size, concrete

Array = jax.Array
# what bucketing does with a sequence longer than the largest bucket (`bucket_indices`)
OVERFLOW = ("error", "truncate", "drop")


def check_lengths(lengths, batch_size: int, max_len: int, name: str = "lengths") -> Array:
    """Returns `lengths` as an int32 array ``[B]`` after checking its shape, dtype and range [0, max_len].

    Dtype and shape are checked at trace time (inside jit too); the range only when `lengths` is concrete
    (not a tracer). Under jit a length outside ``[0, max_len]`` acts as if clipped to it: every step t is
    valid iff ``t < length``, so a negative length runs no step and one past the end runs them all.

    Raises:
      TypeError (`rnn_jax.checks.DTypeError`): non-integer lengths (floats, bools).
      ValueError: wrong shape, or a value outside ``[0, max_len]``.
    """
    arr = check_integer(name, lengths, f"({batch_size},)")
    if arr.shape != (batch_size,):
        raise ValueError(f"{name} must have shape ({batch_size},) (one length per sequence), got {arr.shape}")
    value = concrete(lengths)
    if value is not None and value.size and (value.min() < 0 or value.max() > max_len):
        raise ValueError(f"{name} must lie in [0, {max_len}] (the padded length), got values in "
                         f"[{value.min()}, {value.max()}]")
    return arr.astype(jnp.int32)


def valid_steps(lengths, mask, time: int, batch: int, *, time_major: bool = False):
    """Returns the time-major boolean ``[T, B]`` of valid steps from `lengths` or `mask` (None if neither).

    Args:
      lengths: optional ``[B]`` integers in ``[0, T]`` (checked by `check_lengths`).
      mask: optional boolean ``[B, T]`` (``[T, B]`` if time_major; another dtype is a TypeError); not
        together with lengths.
      time, batch: T and B of the padded batch.
    """
    if lengths is not None and mask is not None:
        raise ValueError("pass lengths or mask, not both")
    if mask is not None:
        mask = check_boolean("mask", mask, "use mask.astype(bool) or rnn_jax.sequence.lengths_to_mask")
        want = (time, batch) if time_major else (batch, time)
        if mask.shape != want:
            raise ValueError(f"mask must have shape {list(want)}, got {mask.shape}")
        return (mask if time_major else mask.T).astype(bool)  # [T, B]
    if lengths is not None:
        lengths = check_lengths(lengths, batch, time)
        return jnp.arange(time)[:, None] < lengths[None, :]  # [T, B]
    return None


def batch_of_one(lengths, carry, mask):
    """Returns lengths, carry and mask of one unbatched sequence ``[T, ...]`` with a batch axis of 1 in front.

    Each may be None. `lengths` must be a scalar (ValueError otherwise); the carry's leaves and the mask
    ``[T]`` get the new axis 0.
    """
    if lengths is not None and jnp.ndim(lengths) != 0:
        raise ValueError(f"lengths must be a scalar for one unbatched sequence [time, features], got shape "
                         f"{jnp.shape(lengths)}")
    add = (lambda a: None if a is None else jnp.asarray(a)[None])
    return add(lengths), (None if carry is None else jax.tree.map(add, carry)), add(mask)


def hold_invalid(valid, new, old):
    """Returns the pytree `new` where ``valid [B]`` is true and `old` elsewhere, per leaf ``[B, ...]``.

    A scan step on padding holds its carry this way (the leaves are ``[B, F]``).
    """
    return jax.tree.map(lambda n, o: jnp.where(valid[:, None], n, o), new, old)


def zero_invalid(valid, y):
    """Returns ``y [B, F]`` with the rows where ``valid [B]`` is false set to zero (padding's outputs)."""
    return jnp.where(valid[:, None], y, jnp.zeros((), y.dtype))


def lengths_to_mask(lengths, max_len: int, *, time_major: bool = False) -> Array:
    """Returns the boolean mask ``[B, T]`` (``[T, B]`` if time_major) of valid steps, ``t < lengths[b]``."""
    lengths = jnp.asarray(lengths)
    mask = jnp.arange(max_len)[None, :] < lengths[:, None]  # [B, T]
    return mask.T if time_major else mask


def mask_to_lengths(mask, *, time_major: bool = False) -> Array:
    """Returns lengths ``[B]`` (int32) from a prefix mask ``[B, T]`` (``[T, B]`` if time_major)."""
    mask = jnp.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape [batch, time] (or [time, batch] if time_major), got {mask.shape}")
    return jnp.sum(mask.astype(jnp.int32), axis=0 if time_major else 1)


def _sequence_arrays(sequences) -> list[np.ndarray]:
    """Returns `sequences` as NumPy arrays ``[T_b, ...]`` of numbers with one trailing shape (ValueError naming one)."""
    try:
        items = list(sequences)
    except TypeError as err:
        raise TypeError(f"sequences must be a sequence of arrays [time, ...], got {type(sequences).__name__}") from err
    if not items:
        raise ValueError("sequences must hold at least one sequence")
    arrays = []
    for i, item in enumerate(items):
        try:
            a = np.asarray(item)
        except ValueError as err:  # a ragged nested list
            raise ValueError(f"sequences[{i}] must be an array [time, ...], got a ragged "
                             f"{type(item).__name__}") from err
        if a.dtype.kind not in "biufc":
            raise DTypeError(f"sequences[{i}] must hold numbers (bool, integer, float or complex), got dtype {a.dtype}")
        arrays.append(a)
    tail = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim < 1 or a.shape[1:] != tail:
            raise ValueError(f"sequences[{i}] must have shape [time, *{tail}], got {a.shape}")
    return arrays


def _padding_dtype(arrays, dtype, padding_value) -> np.dtype:
    """Returns the padded array's dtype after checking `dtype` and `padding_value` lose nothing in it."""
    found = np.result_type(*arrays)
    if dtype is None:
        dtype = found
    dtype = np.dtype(dtype)
    if not np.can_cast(found, dtype, casting="same_kind"):
        raise DTypeError(f"dtype must hold the sequences' {found} values without changing their kind, got {dtype}")
    try:
        pad = np.asarray(padding_value)
        with np.errstate(invalid="ignore"):  # NaN -> int warns; the comparison below reports it
            cast = pad.astype(dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"padding_value must be a number, got {padding_value!r}") from err
    nan = (lambda a: np.isnan(a) if a.dtype.kind in "fc" else np.zeros(a.shape, bool))
    same = (cast == pad) | (nan(pad) & nan(cast))
    if pad.ndim or not bool(same):
        raise ValueError(f"padding_value must be a scalar that the padded dtype {dtype} holds exactly, got "
                         f"{padding_value!r}")
    return dtype


def pad_sequences(sequences: Sequence, *, batch_first: bool = False, padding_value=0.0,
                  max_len: int | None = None, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(padded, lengths)``: sequences ``[T_b, ...]`` stacked into ``[T, B, ...]`` (or ``[B, T, ...]``).

    Like ``torch.nn.utils.rnn.pad_sequence``, plus the lengths ``[B]`` (int32). Host-side NumPy, for data
    pipelines. `max_len` pads to a fixed length (an integer >= the longest sequence); default: the longest.
    Sequences may have length 0 (all of them: ``T = 0``); B = 0 is a ValueError (no trailing shape to pad to).
    `dtype` (default: the sequences' common NumPy dtype) must keep the values' kind (int -> float is fine,
    float -> int a TypeError), and `padding_value` must be exactly representable in it (NaN into an integer
    array is a ValueError), so padding never silently changes a value.
    """
    arrays = _sequence_arrays(sequences)
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int32)
    longest = int(lengths.max())
    T = longest if max_len is None else check_size("max_len", max_len, 0)
    if T < longest:
        raise ValueError(f"max_len must be >= the longest sequence ({longest}), got {max_len}")
    dtype = _padding_dtype(arrays, dtype, padding_value)
    out = np.full((len(arrays), T) + arrays[0].shape[1:], padding_value, dtype=dtype)  # [B, T, ...]
    for b, a in enumerate(arrays):
        out[b, :a.shape[0]] = a
    return (out if batch_first else np.swapaxes(out, 0, 1)), lengths


def reverse_padded(xs, lengths=None, *, time_major: bool = False) -> Array:
    """Returns `xs` with each sequence reversed within its own length; padding stays where it was.

    Args:
      xs: ``[B, T, ...]`` (``[T, B, ...]`` if time_major).
      lengths: ``[B]`` integers; None reverses the whole time axis.

    Applying it twice gives back `xs`.
    """
    xs = jnp.asarray(xs)
    t_axis = 0 if time_major else 1
    if lengths is None:
        return jnp.flip(xs, axis=t_axis)
    T = xs.shape[t_axis]
    lengths = jnp.asarray(lengths)
    t = jnp.arange(T)[:, None]  # [T, 1]
    idx = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # [T, B]
    if not time_major:
        idx = idx.T  # [B, T]
    idx = idx.reshape(idx.shape + (1,) * (xs.ndim - 2))
    return jnp.take_along_axis(xs, idx, axis=t_axis)


def bucket_overflow(lengths, bucket_lengths: Sequence[int]) -> int:
    """Returns how many of the lengths ``[N]`` exceed the largest bucket (the last of `bucket_lengths`): the
    sequences ``overflow='truncate'`` cuts to it, or ``overflow='drop'`` leaves out."""
    bounds = tuple(bucket_lengths)
    if not bounds:
        raise ValueError("bucket_lengths must hold at least one bound, got ()")
    return int(np.sum(np.asarray(lengths) > bounds[-1]))


def bucket_indices(lengths, bucket_lengths: Sequence[int], batch_size: int, *, shuffle: bool = False,
                   seed: int = 0, drop_remainder: bool = False, overflow: str = "error"
                   ) -> list[tuple[int, np.ndarray]]:
    """Returns batches as ``(bound, indices)``: sequences grouped by the smallest bucket bound >= their length.

    Args:
      lengths: ``[N]`` sequence lengths.
      bucket_lengths: increasing positive bounds.
      batch_size: sequences per batch (each bucket's last batch may be short).
      shuffle, seed: shuffle within buckets and the order of batches (NumPy generator seeded by `seed`);
        otherwise buckets in order, sequences in input order.
      drop_remainder: leave out batches shorter than `batch_size`.
      overflow: what a length past the last bound gets (`OVERFLOW`): ``'error'`` a ValueError naming the
        sequence, its length and the bucket; ``'truncate'`` the last bucket (the caller cuts the sequence to
        it, as `bucket_by_length` does); ``'drop'`` no batch. Either of the last two logs (absl, INFO) how
        many (`bucket_overflow` counts them).
    """
    bounds = list(bucket_lengths)
    if not bounds or any(b <= 0 for b in bounds) or any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise ValueError(f"bucket_lengths must be positive and increasing, got {tuple(bucket_lengths)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if overflow not in OVERFLOW:
        raise ValueError(f"overflow must be one of {OVERFLOW}, got {overflow!r}")
    lengths = np.asarray(lengths)
    too_long = lengths > bounds[-1]  # [N]
    if too_long.any():
        worst = int(np.argmax(lengths))
        if overflow == "error":
            raise ValueError(f"sequence {worst} of length {lengths[worst]} exceeds the largest bucket ({bounds[-1]}) "
                             f"({int(too_long.sum())} of {lengths.size} sequences do); add a larger bucket, cut the "
                             "sequences first, or pass overflow='truncate' or 'drop'")
        logging.info("bucket_indices: %d of %d sequences are longer than the largest bucket (%d, the longest %d): %s",
                     int(too_long.sum()), lengths.size, bounds[-1], lengths[worst],
                     "truncated to it" if overflow == "truncate" else "dropped")
    bucket_of = np.searchsorted(np.array(bounds), np.minimum(lengths, bounds[-1]), side="left")  # smallest bound >= it
    if overflow == "drop":
        bucket_of[too_long] = len(bounds)  # in no bucket
    rng = np.random.default_rng(seed)
    batches = []
    for k, bound in enumerate(bounds):
        members = np.flatnonzero(bucket_of == k)
        if shuffle:
            members = rng.permutation(members)
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            if drop_remainder and len(chunk) < batch_size:
                continue
            batches.append((int(bound), chunk))
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def bucket_by_length(sequences: Sequence, bucket_lengths: Sequence[int], batch_size: int, *,
                     batch_first: bool = True, padding_value=0.0, shuffle: bool = False, seed: int = 0,
                     drop_remainder: bool = False, extras: Sequence | None = None, overflow: str = "error"
                     ) -> Iterator[tuple]:
    """Yields ``(padded, lengths, indices)`` batches, each padded to one of a few fixed bucket lengths.

    Each sequence goes to the smallest bucket that holds it (`bucket_indices`), so a jit-compiled step sees
    at most ``len(bucket_lengths)`` time shapes (times two when the last batch of a bucket is short; use
    `drop_remainder` or pad the batch axis to avoid that). Sequences longer than the largest bucket are
    an error unless `overflow` says otherwise, never silently cut.

    Args:
      sequences: arrays ``[T_i, ...]``.
      bucket_lengths: increasing padded lengths, e.g. ``(16, 32, 64)``.
      batch_size: sequences per batch.
      batch_first: layout of `padded`: ``[B, T_bucket, ...]`` or ``[T_bucket, B, ...]``.
      shuffle: shuffle within buckets and the order of batches (NumPy generator seeded by `seed`).
      drop_remainder: drop each bucket's last, short batch.
      extras: optional per-sequence items (labels, targets) returned as a 4th element, a list in batch order.
      overflow: ``'error'``, ``'truncate'`` (a sequence past the largest bucket is cut to its first
        ``bucket_lengths[-1]`` steps) or ``'drop'`` (left out), as in `bucket_indices`.

    Yields:
      ``padded``, ``lengths [B]`` (int32, after any cut), ``indices [B]`` into `sequences` (and ``extras``).
    """
    batches = bucket_indices([len(s) for s in sequences], bucket_lengths, batch_size, shuffle=shuffle, seed=seed,
                             drop_remainder=drop_remainder, overflow=overflow)
    for bound, chunk in batches:
        padded, lens = pad_sequences([sequences[i][:bound] for i in chunk], batch_first=batch_first,
                                     padding_value=padding_value, max_len=bound)
        if extras is None:
            yield padded, lens, chunk
        else:
            yield padded, lens, chunk, [extras[i] for i in chunk]


def vmap_sequences(fn: Callable, xs, lengths, *args, time_major: bool = False):
    """Returns ``jax.vmap(fn)`` over a padded batch: ``fn(x [T, ...], length (), *args)`` per sequence.

    JAX's answer to auto-batching: write `fn` for one sequence (with its length as data), and vmap turns
    it into the batched computation. `args` are shared (not mapped). With `rnn_jax.unroll` as `fn`, the
    result equals the batched masked run (tests/test_sequence.py checks it).
    """
    in_axes = (1 if time_major else 0, 0) + (None,) * len(args)
    return jax.vmap(fn, in_axes=in_axes, out_axes=0)(xs, lengths, *args)
