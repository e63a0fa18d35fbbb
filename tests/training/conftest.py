"""Shared by the training tests: the repository root (cwd and PYTHONPATH of their subprocesses) and an
exact pytree comparison."""

from pathlib import Path

import jax
import numpy as np

from tests.training.loop import leaves

REPO = Path(__file__).resolve().parents[2]


def assert_trees_equal(a, b):
    """Asserts two pytrees have one structure and bit-identical leaves."""
    la, lb = leaves(a), leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)
