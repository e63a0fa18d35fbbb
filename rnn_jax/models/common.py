"""Pieces the task models share: token embedding with its dropout, the checks of token ids and loss targets,
and the cell fields' checks.

Every model checks its inputs where they enter, by `rnn_jax.checks`: ids are integers (a TypeError
otherwise) of the documented rank and batch (ValueErrors naming the argument), checked at trace time, so
under jit too; their range ``[0, V)`` only when concrete. Under jit an out-of-range id is not caught: its
embedding (``jnp.take``) is a NaN row for ids ``>= V`` and wraps around for negative ones.
"""

from __future__ import annotations

import jax.numpy as jnp

from rnn_jax import dropout as dropout_lib
from rnn_jax import registry
from rnn_jax.cells import freeze_options
from rnn_jax.checks import check_ids, check_rate, check_real, check_shape

EMBED_SITES = ("embed", "rnn", "out")


def embed_tokens(table, tokens, *, rate: float, dropout_key, deterministic: bool, embed_rate: float | None = None,
                 name: str = "tokens"):
    """Returns ``(x [B, T, E], rnn_key, out_key)``: embedded ``tokens [B, T]`` with dropout, and two keys.

    `tokens` are checked by `rnn_jax.checks.check_ids` against the table's V rows; `name` names them.

    With dropout active (``not deterministic`` and `rate` or `embed_rate` > 0) `dropout_key` is split three
    ways (`rnn_jax.dropout.split_named` over ``EMBED_SITES``): the embedding's mask, the recurrent stack's
    key and one for the model's output side; otherwise all None. `rate` is the model's largest dropout
    rate after the embedding, `embed_rate` the rate on the embeddings (None: `rate`).
    """
    tokens = check_ids(name, tokens, table.shape[0], "[batch, time]")
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


def check_targets(targets, mask, batch_shape: tuple, num_classes: int, names=("targets", "mask")):
    """Returns ``(targets, mask)`` as arrays of shape `batch_shape` after checking them (names from `names`).

    targets: integer ids in ``[0, num_classes)`` (the range only when concrete; under jit an id out of it
    gives a NaN or wrong cross-entropy); mask: real numbers (bool, integer or float weights).
    """
    layout = "the logits' leading axes"
    targets = check_ids(names[0], targets, num_classes, layout, shape=batch_shape, what="the number of classes")
    mask = check_shape(names[1], check_real(names[1], mask, allow_bool=True), batch_shape, layout)
    return targets, mask

