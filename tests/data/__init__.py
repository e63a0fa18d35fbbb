"""Tests of rnn_jax.data against the real staged corpora.

The data root is ``$RNN_JAX_DATA`` (CI sets it to ``../shared/data``), else ``../shared/data`` beside the
repository. Tests that need the corpora skip with the reason when neither exists.
"""

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]


def _find_data_dir() -> Path | None:
    env = os.environ.get("RNN_JAX_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(_REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "charlm").is_dir() and (path / "sentiment").is_dir():
            return path
    return None


DATA_DIR = _find_data_dir()
requires_data = pytest.mark.skipif(
    DATA_DIR is None, reason="staged corpora not found: set RNN_JAX_DATA to the shared/data folder "
                             "(charlm/, sentiment/, tfds/), or place it at ../shared/data")
