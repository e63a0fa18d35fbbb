"""Suite-wide settings: strict JAX, one tolerance helper, shared fixtures.

Rank promotion raises (``(3,) + (3, 1)`` would otherwise silently become ``(3, 3)``). Tests share compiled
functions through module-level caches and keep shapes small, so the suite stays within minutes on 2 cores.
Each test process also keeps JAX's persistent compilation cache in a fresh temporary directory (removed
at exit): an experiment's end-to-end tests run the same pipeline two or three times (a run, a crashed run,
its resume), and every run re-jits the same steps; from the cache the second compile is a file read
(the translation resume test: 112 s -> 15 s). The programs tests start as subprocesses share it through
the environment. Executables are the same either way, so no figure changes.
"""

import atexit
import os
import shutil
import tempfile

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

_JIT_CACHE = tempfile.mkdtemp(prefix="rnn_jax_tests_jit_cache_")
atexit.register(shutil.rmtree, _JIT_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _JIT_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
# the same for the programs tests start (a killed run and its restarts, two processes of one job)
os.environ.update(JAX_COMPILATION_CACHE_DIR=_JIT_CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                  JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")

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
