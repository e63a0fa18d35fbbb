"""Pieces the task models share."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_jax.unroll import _dropout_mask


def embed_tokens(table, tokens, *, rate: float, dropout_key, deterministic: bool):
    """Returns ``(x [B, T, E], rnn_key, out_key)``: embedded ``tokens [B, T]`` with dropout, and two keys.

    With dropout active (``not deterministic and rate > 0``) `dropout_key` is split three ways: the
    embedding's mask, the recurrent stack's key and one for the model's output side; otherwise all None.
    """
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape [batch, time], got {tokens.shape}")
    train = not deterministic and rate > 0
    keys = jax.random.split(dropout_key, 3) if train else (None,) * 3
    x = jnp.take(table, tokens, axis=0)  # [B, T, E]
    if train:
        x = x * _dropout_mask(keys[0], rate, x.shape, x.dtype)
    return x, keys[1], keys[2]
