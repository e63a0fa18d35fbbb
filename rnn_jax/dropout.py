"""Dropout masks and the key plans that hand each dropout site its own key.

Inverted dropout: a mask is 0 with probability ``rate`` and ``1 / (1 - rate)`` otherwise, so the expected
activation is unchanged and evaluation needs no rescaling. A *variational* mask (Gal & Ghahramani 2016) is
drawn once per sequence and reused at every step: the time axis of its shape is 1 and broadcasts.

Key plans (which key each site gets) are fixed, so that a recorded run reproduces with the same seed:

* `unroll_keys`: one `rnn_jax.unroll` call splits its key 3 ways: ``input`` (variational input mask),
  ``recurrent`` (variational mask on h) and ``zoneout`` (split again into one key per step).
* `layer_keys`: a stack of L layers splits its key ``3 * L`` ways; layer l takes ``3l`` (forward
  direction), ``3l + 1`` (backward direction, unused when unidirectional) and ``3l + 2`` (the dropout
  after the layer's output, not used after the last layer).
* `split_named` splits one key into named sites in a given order (the models' embedding / stack / output).

A site is active only in training (``not deterministic``) with a rate > 0; `is_active` says so.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array

UNROLL_SITES = ("input", "recurrent", "zoneout")


def is_active(rate: float, deterministic: bool) -> bool:
    """Returns whether dropout at `rate` changes anything: in training and with ``rate > 0``."""
    return not deterministic and rate > 0


def dropout_mask(key, rate: float, shape, dtype) -> Array:
    """Returns an inverted-dropout mask of `shape`: 0 with probability `rate`, else ``1 / (1 - rate)``."""
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def dropout(key, rate: float, x: Array) -> Array:
    """Returns ``x [...]`` times a fresh inverted-dropout mask of its shape (x itself if rate is 0)."""
    if rate == 0:
        return x
    return x * dropout_mask(key, rate, x.shape, x.dtype)


def variational_mask(key, rate: float, shape, dtype, *, time_axis: int) -> Array:
    """Returns one mask per sequence for an array of `shape`: `dropout_mask` with ``shape[time_axis] = 1``.

    E.g. ``shape = [T, B, I]``, ``time_axis=0`` gives ``[1, B, I]``, the same mask at every step.
    """
    shape = list(shape)
    shape[time_axis] = 1
    return dropout_mask(key, rate, tuple(shape), dtype)


def split_named(key, names: Sequence[str]) -> dict:
    """Returns ``{name: key}`` from one split of `key` into ``len(names)`` keys, in order (all None if key is)."""
    if key is None:
        return {name: None for name in names}
    return dict(zip(names, jax.random.split(key, len(names))))


def unroll_keys(key) -> dict:
    """Returns the keys of one unroll: ``{'input', 'recurrent', 'zoneout'}`` (see the module docstring)."""
    return split_named(key, UNROLL_SITES)


class LayerKeys(NamedTuple):
    """The keys of one layer of a stack: one per direction (forward, backward) and one after its output."""

    directions: tuple
    between: Array | None


def layer_keys(key, num_layers: int) -> list[LayerKeys]:
    """Returns one `LayerKeys` per layer from one split of `key` into ``3 * num_layers`` (all None if key is)."""
    if key is None:
        return [LayerKeys((None, None), None) for _ in range(num_layers)]
    ks = jax.random.split(key, 3 * num_layers)
    return [LayerKeys((ks[3 * layer], ks[3 * layer + 1]), ks[3 * layer + 2]) for layer in range(num_layers)]
