"""Pieces the task models share: token embedding with its dropout, and the cell fields' checks."""

from __future__ import annotations

import jax.numpy as jnp

from rnn_jax import dropout as dropout_lib
from rnn_jax import registry
from rnn_jax.cells import freeze_options
from rnn_jax.checks import check_rate

EMBED_SITES = ("embed", "rnn", "out")


def embed_tokens(table, tokens, *, rate: float, dropout_key, deterministic: bool, embed_rate: float | None = None):
    """Returns ``(x [B, T, E], rnn_key, out_key)``: embedded ``tokens [B, T]`` with dropout, and two keys.

    With dropout active (``not deterministic`` and `rate` or `embed_rate` > 0) `dropout_key` is split three
    ways (`rnn_jax.dropout.split_named` over ``EMBED_SITES``): the embedding's mask, the recurrent stack's
    key and one for the model's output side; otherwise all None. `rate` is the model's largest dropout
    rate after the embedding, `embed_rate` the rate on the embeddings (None: `rate`).
    """
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape [batch, time], got {tokens.shape}")
    embed_rate = check_rate("embed_rate", rate if embed_rate is None else embed_rate)
    train = not deterministic and (rate > 0 or embed_rate > 0)
    keys = dropout_lib.split_named(dropout_key if train else None, EMBED_SITES)
    x = jnp.take(table, tokens, axis=0)  # [B, T, E]
    if train and embed_rate > 0:
        x = dropout_lib.dropout(keys["embed"], embed_rate, x)
    return x, keys["rnn"], keys["out"]


def freeze_cell(model) -> None:
    """Checks a frozen model's ``cell`` (a name or factory) and stores its ``cell_options`` as frozen pairs."""
    registry.cell_factory(model.cell)
    object.__setattr__(model, "cell_options", freeze_options(model.cell_options))
