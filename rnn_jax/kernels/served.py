"""What a platform kernel serves: the cell options and arguments it computes exactly as the scan does.

Shared by the kernels (`rnn_jax.kernels.onednn`, `rnn_jax.kernels.cudnn`) and the rule of ``kernel='auto'``
(`rnn_jax.kernels.choice`). A kernel declares the cells it serves as ``{kind: {option: allowed values, or
None for any value}}``; an option the record does not name (a wrapper's entry: zoneout, recurrent dropout)
is not served.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def unserved_cell(cell, served: dict) -> str | None:
    """Returns why a kernel that serves `served` does not serve `cell` (a `rnn_jax.cells.Cell`), or None."""
    options_served = served.get(cell.kind)
    if options_served is None:
        kinds = ", ".join(repr(kind) for kind in served)
        return f"it serves the {kinds} cells, not {cell.kind!r}"
    options = dict(cell.options)
    extra = sorted(set(options) - set(options_served))
    if extra:
        return f"the cell is wrapped or has options it does not serve: {extra}"
    for name, allowed in options_served.items():
        if allowed is not None and options.get(name) not in allowed:
            return f"{cell.kind} with {name}={options.get(name)!r} (it serves {name} in {list(allowed)})"
    if cell.feed_size:
        return "the cell feeds itself inputs (feed_inputs)"
    return None


def unserved_arguments(cell, params, *, mask: bool = False, checkpoint: bool = False) -> str | None:
    """Returns why a float32 kernel that serves lengths does not serve these arguments, or None.

    Args: the `cell` and its `params`; `mask`: a boolean mask was given (kernels serve lengths, i.e. masks
    that are a prefix of each sequence); `checkpoint`: the scan's rematerialisation was asked for.
    """
    if cell.compute_dtype(params) != jnp.float32:
        return f"it computes in float32, not {jnp.dtype(cell.compute_dtype(params)).name}"
    dtypes = sorted({jnp.dtype(leaf.dtype).name for leaf in jax.tree.leaves(params)} - {"float32"})
    if dtypes:
        return f"it takes float32 parameters, not {dtypes}"
    if mask:
        return "a boolean mask was given (it serves lengths, i.e. masks that are a prefix of each sequence)"
    if checkpoint:
        return "checkpoint=True asks for the scan's rematerialisation"
    return None
