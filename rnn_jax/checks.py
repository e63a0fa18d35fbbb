"""Argument checks at the library's boundary: sizes, choices, rates, carries and input layouts.

Each raises ``ValueError`` naming the argument, the value (or shape) seen and what was expected, so every
module states a rule once and words it the same way: ``hidden_size must be an integer >= 1, got 0``.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp


def check_size(name: str, value, minimum: int = 1) -> int:
    """Returns `value` after checking it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value, choices: tuple) -> str:
    """Returns `value` after checking it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_rate(name: str, value, *, allow_none: bool = False):
    """Returns `value` after checking it is a number in ``[0, 1)`` (a dropout-like rate); None if allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return value


def check_carry(carry, expected, name: str = "carry"):
    """Returns `carry` cast leaf by leaf to `expected`'s dtypes after checking its structure and shapes.

    `expected` is the cell's ``initial_carry`` for the same batch shape; the cast keeps one carry dtype
    through the scan.
    """
    leaves, tree = jax.tree.flatten(carry)
    exp_leaves, exp_tree = jax.tree.flatten(expected)
    if tree != exp_tree:
        raise ValueError(f"{name} must have the structure of the cell's initial_carry ({exp_tree}), got {tree}")
    for got, want in zip(leaves, exp_leaves):
        if tuple(jnp.shape(got)) != tuple(want.shape):
            raise ValueError(f"{name} must have shapes {[tuple(w.shape) for w in exp_leaves]}, got "
                             f"{[tuple(jnp.shape(g)) for g in leaves]}")
    return jax.tree.map(lambda c, w: jnp.asarray(c).astype(w.dtype), carry, expected)


def check_inputs(xs, input_size: int, time_major: bool) -> int:
    """Returns `input_size` after checking that batched ``xs`` is ``[B, T, input_size]`` (``[T, B, ...]``)."""
    if xs.ndim != 3:
        layout = "[time, batch, features]" if time_major else "[batch, time, features]"
        raise ValueError(f"xs must have shape {layout} or [time, features], got {xs.shape}")
    if xs.shape[-1] != input_size:
        raise ValueError(f"xs must have {input_size} features (the cell's input_size) on its last axis, "
                         f"got shape {xs.shape}")
    return input_size
