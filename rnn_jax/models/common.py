"""Pieces the task models share."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_jax.unroll import _dropout_mask


def embed_tokens(table, tokens, *, rate: float, dropout_key, deterministic: bool, embed_rate: float | None = None):
    """Returns ``(x [B, T, E], rnn_key, out_key)``: embedded ``tokens [B, T]`` with dropout, and two keys.

    With dropout active (``not deterministic`` and `rate` or `embed_rate` > 0) `dropout_key` is split three
    ways: the embedding's mask, the recurrent stack's key and one for the model's output side; otherwise all
    None. `rate` is the model's largest dropout rate after the embedding, `embed_rate` the rate on the
    embeddings (None: `rate`).
    """
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape [batch, time], got {tokens.shape}")
    embed_rate = rate if embed_rate is None else embed_rate
    if not 0.0 <= embed_rate < 1.0:
        raise ValueError(f"embed_rate must be in [0, 1), got {embed_rate}")
    train = not deterministic and (rate > 0 or embed_rate > 0)
    keys = jax.random.split(dropout_key, 3) if train else (None,) * 3
    x = jnp.take(table, tokens, axis=0)  # [B, T, E]
    if train and embed_rate > 0:
        x = x * _dropout_mask(keys[0], embed_rate, x.shape, x.dtype)
    return x, keys[1], keys[2]
