"""Tests of rnn_jax/data/splits.py: TFDS split names and the aliases the corpora's files use."""

import pytest

from rnn_jax.data import splits


def test_canonical_split_aliases():
    assert [splits.canonical_split(s) for s in ("train", "valid", "dev", "val", "validation", "test")] == [
        "train", "validation", "validation", "validation", "validation", "test"]
    with pytest.raises(ValueError, match="split must be one of"):
        splits.canonical_split("holdout")


def test_every_canonical_name_maps_to_itself_and_unhashable_names_are_refused():
    assert [splits.canonical_split(s) for s in splits.SPLITS] == list(splits.SPLITS)
    with pytest.raises(ValueError, match="split must be one of"):
        splits.canonical_split(["train"])  # a list is unhashable: still a ValueError, not a TypeError
