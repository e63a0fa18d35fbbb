"""The boundary checks: what they accept, and messages that name the argument, the value and the rule."""

import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import LSTMState
from rnn_jax.checks import check_carry, check_choice, check_inputs, check_rate, check_size


@pytest.mark.parametrize("value,minimum", [(1, 1), (7, 1), (0, 0), (np.int32(3), 1)])
def test_check_size_accepts_integers_at_or_above_the_minimum(value, minimum):
    assert check_size("n", value, minimum) == value
    assert type(check_size("n", value, minimum)) is int


@pytest.mark.parametrize("value,minimum", [(0, 1), (-1, 0), (True, 1), (2.0, 1), ("3", 1), (None, 1)])
def test_check_size_rejects_the_rest(value, minimum):
    with pytest.raises(ValueError, match=rf"n must be an integer >= {minimum}, got {value!r}"):
        check_size("n", value, minimum)


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 0.999, np.float32(0.25)])
def test_check_rate_accepts_the_half_open_unit_interval(value):
    assert check_rate("dropout", value) == value


@pytest.mark.parametrize("value", [1.0, -0.1, 1.5, True, "0.1", None, float("nan")])
def test_check_rate_rejects_the_rest(value):
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\)"):
        check_rate("dropout", value)


def test_check_rate_none_only_when_allowed():
    assert check_rate("embed_dropout", None, allow_none=True) is None
    with pytest.raises(ValueError, match="embed_dropout"):
        check_rate("embed_dropout", 1.0, allow_none=True)


def test_check_choice():
    assert check_choice("pooling", "max", ("mean", "max")) == "max"
    with pytest.raises(ValueError, match=r"pooling must be one of \('mean', 'max'\), got 'sum'"):
        check_choice("pooling", "sum", ("mean", "max"))


def test_check_carry_casts_to_the_expected_dtypes_and_names_bad_shapes():
    expected = LSTMState(jnp.zeros((2, 3), jnp.float32), jnp.zeros((2, 4), jnp.float32))
    got = check_carry(LSTMState(np.ones((2, 3), np.float64), np.ones((2, 4), np.int32)), expected)
    assert isinstance(got, LSTMState) and got.h.dtype == got.c.dtype == jnp.float32
    with pytest.raises(ValueError, match=r"carry must have shapes \[\(2, 3\), \(2, 4\)\], got \[\(2, 3\), \(2, 3\)\]"):
        check_carry(LSTMState(jnp.zeros((2, 3)), jnp.zeros((2, 3))), expected)
    with pytest.raises(ValueError, match="h_0 must have the structure"):
        check_carry(jnp.zeros((2, 3)), expected, name="h_0")


def test_check_inputs_names_layout_and_size():
    assert check_inputs(jnp.zeros((2, 5, 3)), 3, False) == 3
    with pytest.raises(ValueError, match=r"xs must have shape \[time, batch, features\]"):
        check_inputs(jnp.zeros((5, 3)), 3, True)
    with pytest.raises(ValueError, match=r"xs must have 4 features .* got shape \(2, 5, 3\)"):
        check_inputs(jnp.zeros((2, 5, 3)), 4, False)
