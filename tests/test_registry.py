"""Cells by name: every name builds its factory's cell, options reach it, and misuse is named."""

import functools

import jax.numpy as jnp
import pytest

from rnn_jax import cells, minimal, registry


@pytest.mark.parametrize("name", list(registry.CELLS))
def test_names_build_their_factories_cells(name):
    cell = registry.make_cell(name, 4, bias=False, initializer="jax", dtype=jnp.bfloat16, param_dtype=jnp.float32)
    assert cell.kind == name and cell.hidden_size == 4
    want = registry.CELLS[name](4, bias=False, initializer="jax", dtype=jnp.bfloat16)
    assert cell.describe() == want.describe()
    assert dict(cell.options)["dtype"] == jnp.bfloat16 and dict(cell.options)["bias"] is False


def test_options_reach_the_cell_and_factories_pass_through():
    cell = registry.make_cell("lstm", 5, {"proj_size": 2, "peephole": True})
    assert cell.output_size == 2 and dict(cell.options)["peephole"] is True
    assert registry.make_cell("min_gru", 3, (("scan", "log"),)).options == minimal.min_gru(3, scan="log").options
    factory = functools.partial(cells.elman, nonlinearity="relu")
    assert registry.cell_factory(factory) is factory
    assert dict(registry.make_cell(factory, 3).options)["nonlinearity"] == "relu"


def test_bad_names_and_doubled_options_are_named():
    with pytest.raises(ValueError, match=r"cell must be one of \('elman', 'lstm', 'gru', 'min_gru', 'min_lstm'\)"):
        registry.cell_factory("peephole")
    with pytest.raises(ValueError, match=r"cell options \['bias'\] are set by the stack's own fields"):
        registry.make_cell("gru", 3, {"bias": False}, bias=True)
    with pytest.raises(TypeError, match="peephole"):
        registry.make_cell("gru", 3, {"peephole": True})
