"""Compute dtype apart from parameter dtype: accumulation, matmul, broadcasting and the compute-dtype rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax.precision import acc_dtype, bcast, compute_dtype, matmul
from tests.conftest import assert_close


@pytest.mark.parametrize("dtype,want", [(jnp.bfloat16, jnp.float32), (jnp.float16, jnp.float32),
                                        (jnp.float32, jnp.float32)])
def test_acc_dtype_is_at_least_float32(dtype, want):
    assert acc_dtype(dtype) == want


def test_matmul_rounds_operands_to_the_compute_dtype_and_accumulates_in_float32():
    x = jax.random.normal(jax.random.key(0), (3, 64))
    w = jax.random.normal(jax.random.key(1), (64, 5))
    got = matmul(x, w, jnp.bfloat16)
    assert got.dtype == jnp.float32
    # the reference: operands rounded to bfloat16, products summed in float64
    xr = np.asarray(x.astype(jnp.bfloat16), np.float64)
    wr = np.asarray(w.astype(jnp.bfloat16), np.float64)
    np.testing.assert_allclose(np.asarray(got), xr @ wr, rtol=1e-5, atol=1e-5)
    assert_close(matmul(x[None], w, jnp.float32), (np.asarray(x, np.float64) @ np.asarray(w, np.float64))[None])


def test_bcast_adds_a_vector_under_strict_rank_promotion():
    like = jnp.zeros((2, 3, 4), jnp.bfloat16)
    v = jnp.arange(4.0)
    out = bcast(v, like)
    assert out.shape == (1, 1, 4) and out.dtype == jnp.bfloat16
    assert_close(like + out, np.broadcast_to(np.arange(4.0), (2, 3, 4)), "exact")  # raises on implicit ranks


def test_compute_dtype_prefers_the_given_dtype_then_the_recurrent_matrix():
    params = {"w_ih": jnp.zeros((2, 2), jnp.float16), "w_hh": jnp.zeros((2, 2), jnp.bfloat16)}
    assert compute_dtype(jnp.float32, params) == jnp.float32
    assert compute_dtype(None, params) == jnp.bfloat16
    assert compute_dtype(None, {"w_ih": params["w_ih"]}) == jnp.float16  # cells without recurrent weights
