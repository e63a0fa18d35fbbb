"""Dropout masks and key plans against hand-drawn references and the properties a real bug would break."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import dropout as dropout_lib
from tests.conftest import assert_close


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_mask_drops_the_expected_fraction_and_keeps_the_expectation(rate):
    mask = np.asarray(dropout_lib.dropout_mask(jax.random.key(0), rate, (200, 500), jnp.float32))
    assert set(np.unique(mask)) <= {0.0, np.float32(1.0 / (1.0 - rate))}
    dropped = (mask == 0).mean()
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / mask.size)  # 4 standard errors
    assert abs(mask.mean() - 1.0) < 0.02  # inverted dropout: the mean activation is unchanged


def test_mask_is_the_documented_bernoulli_draw():
    """The stream recorded runs depend on: keep = bernoulli(key, 1 - rate, shape), scaled by 1 / (1 - rate)."""
    key = jax.random.key(4)
    keep = np.asarray(jax.random.bernoulli(key, 0.7, (3, 5)), np.float32)
    assert_close(dropout_lib.dropout_mask(key, 0.3, (3, 5), jnp.float32), keep / 0.7, "exact")
    x = jax.random.normal(jax.random.key(5), (3, 5))
    assert_close(dropout_lib.dropout(key, 0.3, x), np.asarray(x) * keep / 0.7, "exact")
    assert dropout_lib.dropout(None, 0.0, x) is x


def test_variational_mask_is_one_per_sequence():
    key = jax.random.key(1)
    mask = dropout_lib.variational_mask(key, 0.5, (7, 4, 3), jnp.float32, time_axis=0)
    assert mask.shape == (1, 4, 3)
    assert_close(mask, dropout_lib.dropout_mask(key, 0.5, (1, 4, 3), jnp.float32), "exact")
    batch_major = dropout_lib.variational_mask(key, 0.5, (4, 7, 3), jnp.float32, time_axis=1)
    assert batch_major.shape == (4, 1, 3)


def test_is_active():
    assert dropout_lib.is_active(0.1, deterministic=False)
    assert not dropout_lib.is_active(0.1, deterministic=True)
    assert not dropout_lib.is_active(0.0, deterministic=False)


def test_key_plans_are_flat_splits_in_a_fixed_order():
    key = jax.random.key(2)
    flat = jax.random.split(key, 3)
    named = dropout_lib.unroll_keys(key)
    assert list(named) == ["input", "recurrent", "zoneout"]
    for k, want in zip(named.values(), flat):
        assert jnp.array_equal(jax.random.key_data(k), jax.random.key_data(want))
    layers = dropout_lib.layer_keys(key, 2)
    flat = jax.random.split(key, 6)
    for layer, keys in enumerate(layers):
        got = [*keys.directions, keys.between]
        for k, want in zip(got, flat[3 * layer:3 * layer + 3]):
            assert jnp.array_equal(jax.random.key_data(k), jax.random.key_data(want))
    assert dropout_lib.layer_keys(None, 2) == [dropout_lib.LayerKeys((None, None), None)] * 2
    assert dropout_lib.split_named(None, ("a", "b")) == {"a": None, "b": None}
