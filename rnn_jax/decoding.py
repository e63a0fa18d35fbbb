"""Autoregressive decoding for any step function: greedy, and sampling with temperature and top-k.

A step function is ``step_fn(carry, tokens [B]) -> (carry, logits [B, V])``: it consumes the previous
token of each sequence and scores the next one. Decoding runs as one `lax.scan`, so it jit-compiles
once per length.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

StepFn = Callable[[Any, jax.Array], tuple[Any, jax.Array]]


def filter_logits(logits, *, temperature: float = 1.0, top_k: int | None = None):
    """Returns ``logits [..., V]`` divided by `temperature`, with all but the `top_k` largest set to -inf."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (use greedy() for argmax decoding), got {temperature}")
    logits = logits / temperature
    if top_k is not None:
        V = logits.shape[-1]
        if not 1 <= top_k <= V:
            raise ValueError(f"top_k must lie in [1, {V}] (the vocabulary size), got {top_k}")
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]  # [..., 1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return logits


def sample(step_fn: StepFn, carry, first_tokens, num_steps: int, key, *, temperature: float = 1.0,
           top_k: int | None = None):
    """Returns ``(tokens [B, num_steps], carry)``: tokens drawn one at a time from ``step_fn``'s logits.

    Args:
      step_fn: ``(carry, tokens [B]) -> (carry, logits [B, V])``.
      carry: the state after the prime text (batch shape ``[B]``).
      first_tokens: ``[B]`` int, the token fed at the first step (the prime's last token).
      num_steps: how many tokens to draw.
      key: PRNG key; step t uses ``fold_in(key, t)``.
      temperature: > 0; below 1 sharpens, above 1 flattens the distribution.
      top_k: keep only the k most likely tokens at each step (None: all).
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")

    def body(state, t):
        c, tok = state
        c, logits = step_fn(c, tok)
        logits = filter_logits(logits.astype(jnp.float32), temperature=temperature, top_k=top_k)
        nxt = jax.random.categorical(jax.random.fold_in(key, t), logits, axis=-1).astype(tok.dtype)  # [B]
        return (c, nxt), nxt

    (carry, _), toks = jax.lax.scan(body, (carry, jnp.asarray(first_tokens)), jnp.arange(num_steps))
    return jnp.swapaxes(toks, 0, 1), carry


def greedy(step_fn: StepFn, carry, first_tokens, num_steps: int):
    """Returns ``(tokens [B, num_steps], carry)``: the most likely token at each step."""

    def body(state, _):
        c, tok = state
        c, logits = step_fn(c, tok)
        nxt = jnp.argmax(logits, axis=-1).astype(tok.dtype)  # [B]
        return (c, nxt), nxt

    (carry, _), toks = jax.lax.scan(body, (carry, jnp.asarray(first_tokens)), None, length=num_steps)
    return jnp.swapaxes(toks, 0, 1), carry
