"""Argument checks at the library's boundary: sizes, choices, rates, carries, dtypes, token ids and input layouts.

Each raises an error naming the argument, the value (or shape, or dtype) seen and what was expected, so
every module states a rule once and words it the same way: ``hidden_size must be an integer >= 1, got 0``.
A wrong shape, size or value is a ``ValueError``; a wrong dtype is a `DTypeError`, which is a ``TypeError``
(as NumPy and PyTorch report dtypes) and also a ``ValueError`` (what the earlier checks raised for a dtype).

Under ``jax.jit`` (or ``vmap``, ``grad``) an array argument is a tracer: its shape and dtype are static and
its values are not. So every rank, shape and dtype rule here is checked at trace time, inside jit as
outside; a rule on values (lengths in ``[0, T]``, token ids in ``[0, V)``, a real slot in every mask row) is
checked only when the array is concrete (`concrete` returns None for a tracer), and each function's
docstring says what the unchecked values do under jit.

Dtype policy of the library's entry points (PyTorch refuses integer inputs to ``nn.LSTM``; Flax casts any
float input to the layer's compute ``dtype``, which is the rule here since compute and parameter dtypes are
separate fields):

* data (``xs``/``inputs``, attention's ``query``/``memory``, image ``features``): floating point of any
  precision (float16, bfloat16, float32, float64), computed in the cell's or layer's compute dtype;
  integers, bools and complex numbers are refused (`check_floating`): a cast would silently invent a
  meaning (complex -> real drops the imaginary part);
* carries and initial states: real numbers (floats, or integers, which cast exactly), cast to the cell's
  carry dtype; bool and complex refused (`check_real`);
* lengths, token ids, labels: integers (`check_integer`, `check_ids`); masks: bool (`check_boolean`).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np


class DTypeError(TypeError, ValueError):
    """An argument of the wrong dtype: a ``TypeError`` and, for callers of the earlier checks, a ``ValueError``."""


def concrete(x):
    """Returns `x` as a NumPy array, or None when it is a tracer (inside jit, values are data)."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


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
    through the scan. Leaves must hold real numbers (`check_real`).
    """
    leaves, tree = jax.tree.flatten(carry)
    leaves = [check_real(name, leaf) for leaf in leaves]
    exp_leaves, exp_tree = jax.tree.flatten(expected)
    if tree != exp_tree:
        raise ValueError(f"{name} must have the structure of the cell's initial_carry ({exp_tree}), got {tree}")
    for got, want in zip(leaves, exp_leaves):
        if tuple(jnp.shape(got)) != tuple(want.shape):
            raise ValueError(f"{name} must have shapes {[tuple(w.shape) for w in exp_leaves]}, got "
                             f"{[tuple(jnp.shape(g)) for g in leaves]}")
    return jax.tree.unflatten(exp_tree, [g.astype(w.dtype) for g, w in zip(leaves, exp_leaves)])


def check_inputs(xs, input_size: int, time_major: bool) -> int:
    """Returns `input_size` after checking that batched ``xs`` is floating ``[B, T, input_size]`` (``[T, B, ...]``)."""
    check_floating("xs", xs)
    if xs.ndim != 3:
        layout = "[time, batch, features]" if time_major else "[batch, time, features]"
        raise ValueError(f"xs must have shape {layout} or [time, features], got {xs.shape}")
    if xs.shape[-1] != input_size:
        raise ValueError(f"xs must have {input_size} features (the cell's input_size) on its last axis, "
                         f"got shape {xs.shape}")
    return input_size


def _as_array(name: str, x):
    """Returns `x` as a JAX array; a value JAX cannot hold (None, a string, a ragged list) is a DTypeError."""
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError) as err:
        raise DTypeError(f"{name} must be an array of numbers, got {type(x).__name__} {x!r:.80}") from err


def check_floating(name: str, x):
    """Returns `x` as an array after checking its dtype is floating point (float16/bfloat16/float32/float64).

    Integers, bools and complex numbers are a `DTypeError` (cast integers with ``.astype(jnp.float32)``).
    """
    x = _as_array(name, x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise DTypeError(f"{name} must be a floating-point array (float16, bfloat16, float32 or float64), got dtype "
                         f"{x.dtype}")
    return x


def check_real(name: str, x, *, allow_bool: bool = False):
    """Returns `x` as an array after checking it holds real numbers: floats or integers (bools if `allow_bool`,
    as a mask of weights may be); complex numbers are a `DTypeError`."""
    x = _as_array(name, x)
    if x.dtype == jnp.bool_:
        if allow_bool:
            return x
        raise DTypeError(f"{name} must hold real numbers (a float or integer dtype), got dtype bool")
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
        raise DTypeError(f"{name} must hold real numbers (a float or integer dtype), got dtype {x.dtype}")
    return x


def check_integer(name: str, x, layout: str = ""):
    """Returns `x` as an array after checking its dtype is an integer one (not bool); `layout` words the message."""
    x = _as_array(name, x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise DTypeError(f"{name} must be an integer array{' of shape ' + layout if layout else ''}, got dtype "
                         f"{x.dtype}")
    return x


def check_boolean(name: str, x, hint: str = ""):
    """Returns `x` as an array after checking its dtype is bool; `hint` tells how to make one."""
    x = _as_array(name, x)
    if x.dtype != jnp.bool_:
        raise DTypeError(f"{name} must be boolean, got dtype {x.dtype}{'; ' + hint if hint else ''}")
    return x


def check_rank(name: str, x, layout: str):
    """Returns `x` after checking it has as many axes as ``layout`` (e.g. ``'[batch, slots, memory_size]'``) names."""
    axes = layout.count(",") + 1 if layout.strip("[] ") else 0
    if jnp.ndim(x) != axes:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(jnp.shape(x))}")
    return x


def check_shape(name: str, x, shape: tuple, layout: str):
    """Returns `x` after checking its shape is `shape` (``layout`` names the axes in the message)."""
    if tuple(jnp.shape(x)) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} ({layout}), got {tuple(jnp.shape(x))}")
    return x


def check_ids(name: str, ids, vocab_size: int, layout: str, shape: tuple | None = None,
              what: str = "the vocabulary size"):
    """Returns integer `ids` as an array after checking dtype, rank (or `shape`) and, when concrete, ``[0, V)``
    (`what` names V in the message).

    Under jit the range cannot be checked: an embedding lookup (``jnp.take``) then gives NaN rows for ids
    ``>= vocab_size`` and wraps negative ones around.
    """
    ids = check_integer(name, ids)
    if shape is None:
        check_rank(name, ids, layout)
    else:
        check_shape(name, ids, shape, layout)
    value = concrete(ids)
    if value is not None and value.size and (value.min() < 0 or value.max() >= vocab_size):
        raise ValueError(f"{name} must lie in [0, {vocab_size}) ({what}), got values in "
                         f"[{value.min()}, {value.max()}]")
    return ids
