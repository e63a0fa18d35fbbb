"""Suite-wide settings: strict JAX, one tolerance helper, shared fixtures.

Rank promotion raises (``(3,) + (3, 1)`` would otherwise silently become ``(3, 3)``). Tests share compiled
functions through module-level caches and keep shapes small, so the suite stays within minutes on 2 cores.
"""

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

# Tolerances by what is compared: same-library float32 rearrangements, PyTorch float32 forward values,
# PyTorch gradients, and bfloat16 compute against float32.
TOLERANCES = {
    "exact": dict(rtol=1e-6, atol=1e-6),
    "forward": dict(rtol=1e-5, atol=1e-5),
    "grad": dict(rtol=1e-4, atol=1e-4),
    "bf16": dict(rtol=5e-2, atol=5e-2),
}


def assert_close(actual, expected, kind: str = "forward", err_msg: str = ""):
    """Asserts two pytrees of arrays agree within the suite's tolerance for `kind`."""
    tol = TOLERANCES[kind]
    a_leaves, a_tree = jax.tree.flatten(actual)
    e_leaves, e_tree = jax.tree.flatten(expected)
    assert a_tree == e_tree, f"structures differ: {a_tree} vs {e_tree} {err_msg}"
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        a = np.asarray(a, dtype=np.float64)
        e = np.asarray(e, dtype=np.float64)
        assert a.shape == e.shape, f"leaf {i}: shape {a.shape} vs {e.shape} {err_msg}"
        np.testing.assert_allclose(a, e, err_msg=f"leaf {i} {err_msg}", **tol)


@pytest.fixture
def key():
    return jax.random.key(0)
