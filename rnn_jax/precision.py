"""Compute dtype apart from parameter dtype: matmuls in the compute dtype, accumulation in float32 or wider.

With ``dtype=bfloat16`` the matmul operands are bfloat16 but products accumulate, and nonlinearities and
carries run, in ``promote(dtype, float32)``, so a scan carry never changes dtype. `bcast` adds a vector to
an array explicitly, so the library runs under ``jax_numpy_rank_promotion='raise'``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def acc_dtype(dtype) -> jnp.dtype:
    """Returns the dtype of accumulation, nonlinearities and carries for compute dtype `dtype`."""
    return jnp.promote_types(dtype, jnp.float32)


def matmul(x: Array, w: Array, dtype) -> Array:
    """Returns ``x [..., K] @ w [K, N] -> [..., N]`` computed in `dtype`, accumulated in `acc_dtype(dtype)`."""
    return jnp.matmul(x.astype(dtype), w.astype(dtype), preferred_element_type=acc_dtype(dtype))


def bcast(v: Array, like: Array) -> Array:
    """Returns the vector ``v [F]`` as ``[1, ..., 1, F]`` in like's dtype, to add to ``like [..., F]``."""
    return jnp.reshape(v, (1,) * (like.ndim - 1) + v.shape).astype(like.dtype)


def compute_dtype(dtype, params):
    """Returns the compute dtype: `dtype`, or when None that of the parameters' recurrent (else input) matrix."""
    if dtype is not None:
        return dtype
    return params["w_hh"].dtype if "w_hh" in params else params["w_ih"].dtype
