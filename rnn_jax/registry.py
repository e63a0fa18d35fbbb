"""Cells by name, for configs: ``'lstm'`` plus options in a hashable form instead of a factory object.

`rnn_jax.rnn.Stack` and the task models take a cell as a name from `CELLS` (or a factory) and its options
as `rnn_jax.cells.freeze_options` pairs, so two equal configurations are equal, hash alike and compile
once as jit static arguments. Every factory here takes ``(hidden_size, *, bias, initializer, dtype,
param_dtype, **options)``; the options of each are its keyword arguments (``lstm``: proj_size, peephole,
layer_norm; ``gru``: variant; ``elman``: nonlinearity; ``min_gru``/``min_lstm``: scan).
"""

from __future__ import annotations

from typing import Callable

from rnn_jax import cells, minimal

CELLS: dict[str, Callable[..., cells.Cell]] = {
    "elman": cells.elman,
    "lstm": cells.lstm,
    "gru": cells.gru,
    "min_gru": minimal.min_gru,
    "min_lstm": minimal.min_lstm,
}


def cell_factory(cell) -> Callable[..., cells.Cell]:
    """Returns the factory `cell` names (a key of `CELLS`), or `cell` itself when it is callable."""
    if callable(cell):
        return cell
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {tuple(CELLS)} or a cell factory, got {cell!r}")
    return CELLS[cell]


def make_cell(cell, hidden_size: int, options=(), **common) -> cells.Cell:
    """Returns ``factory(hidden_size, **common, **options)`` for `cell`, a name in `CELLS` or a factory.

    Args:
      cell: a name in `CELLS` or a factory ``(hidden_size, **kwargs) -> Cell``.
      hidden_size: H.
      options: the cell's own options, a mapping or ``(name, value)`` pairs (`rnn_jax.cells.freeze_options`).
      common: options a stack sets for every cell (bias, initializer, dtype, param_dtype); an option may
        not be given both ways.
    """
    own = dict(cells.freeze_options(options))
    both = sorted(set(own) & set(common))
    if both:
        raise ValueError(f"cell options {both} are set by the stack's own fields; set them there")
    return cell_factory(cell)(hidden_size, **common, **own)
