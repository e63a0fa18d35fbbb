"""Autoregressive decoding for any step function: greedy, and sampling with temperature and top-k.

The convention is the library's own, carry first (as ``step(params, carry, x) -> (carry, y)`` and
`lax.scan`):

* a step function is ``step_fn(carry, tokens [B]) -> (carry, logits [B, V])``: it consumes the previous
  token of each of the B sequences and scores the next one over a vocabulary of V;
* `greedy` and `sample` return ``(carry, tokens [B, num_steps])``; tokens keep ``first_tokens``' integer
  dtype.

End of sequence: with ``eos_id`` set, a row that has emitted ``eos_id`` is finished. Its later tokens are
``pad_id`` and its carry is held from then on: the final carry of a row is the one returned by the step
that produced its eos (as, without eos, the final carry is the one returned by the step that produced the
last token; that token itself is never fed). Holding the carry needs to know which axis of each carry
leaf is the batch: ``carry_batch_axis`` (0 by default; 1 for the ``[L, B, H]`` states of
`rnn_jax.models.language_model`). Finished rows still go through ``step_fn`` (the batch stays dense);
their results are discarded. `lengths_of` turns the tokens into lengths.

The pieces a beam search shares with these two are public: `filter_logits`, `finish_tokens` (pad what
comes after eos and update the finished mask), `hold_carry` and `lengths_of`. Decoding runs as one
`lax.scan`, so it jit-compiles once per length. Beam search over the same step functions lives in its own
module, which builds on this one: ``from rnn_jax.beam_search import beam_search``.

Checks, before the loop and at trace time (so under jit too): ``first_tokens`` integer (a TypeError) of
shape ``[B]``, the scalar arguments, and what ``step_fn`` returns, traced once by `probe_step` (the carry
it was given, logits ``[B, V]``; ValueErrors naming the argument). Only for concrete ``first_tokens``: each
in ``[0, V)``; under jit an out-of-range token reaches ``step_fn`` as it is. B = 0 and ``num_steps = 0``
give empty tokens.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.checks import DTypeError, concrete

StepFn = Callable[[Any, jax.Array], tuple[Any, jax.Array]]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_sampling_args(temperature, top_k, vocab_size: int | None = None):
    """Raises ValueError for temperature <= 0 or top_k outside [1, vocab_size] (any >= 1 if unknown)."""
    # a traced temperature (sample under an outer jit) cannot be checked; a number can
    if isinstance(temperature, numbers.Real) and not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use greedy() for argmax decoding), got {temperature}")
    if top_k is None:
        return
    upper = "V" if vocab_size is None else vocab_size
    if not _is_int(top_k) or top_k < 1 or (vocab_size is not None and top_k > vocab_size):
        raise ValueError(f"top_k must be None or an integer in [1, {upper}] (the vocabulary size), got {top_k!r}")


def filter_logits(logits, *, temperature: float = 1.0, top_k: int | None = None):
    """Returns ``logits [..., V]`` divided by `temperature`, with all but the `top_k` largest set to -inf.

    Ties with the k-th largest are all kept, so a row can keep more than k tokens.
    """
    _check_sampling_args(temperature, top_k, logits.shape[-1])
    logits = logits / temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]  # [..., 1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return logits


def finish_tokens(tokens, finished, *, eos_id: int | None, pad_id: int = 0):
    """Returns ``(tokens, finished)`` after one step: finished rows' tokens become `pad_id`, and rows
    that emit `eos_id` now become finished.

    Args:
      tokens: ``[...]`` int, the tokens chosen at this step (any batch shape: ``[B]``, or ``[B, K]`` beams).
      finished: ``[...]`` bool, the rows finished before this step.
      eos_id: the end token; None: no row ever finishes (both come back unchanged).
      pad_id: what finished rows emit.
    """
    if eos_id is None:
        return tokens, finished
    tokens = jnp.where(finished, jnp.asarray(pad_id, tokens.dtype), tokens)
    return tokens, finished | (tokens == eos_id)


def hold_carry(finished, new_carry, old_carry, *, batch_axis: int = 0):
    """Returns the carry with `old_carry`'s rows where ``finished [B]`` is set, `new_carry`'s elsewhere.

    Every leaf of both carries has the batch axis B at `batch_axis` (e.g. ``[B, H]`` with 0, ``[L, B, H]``
    with 1); the two carries have the same structure, shapes and dtypes.
    """

    def pick(new, old):
        if new.ndim <= batch_axis or new.shape[batch_axis] != finished.shape[0]:
            raise ValueError(f"carry leaf of shape {new.shape} has no batch axis of size {finished.shape[0]} at "
                             f"carry_batch_axis={batch_axis}")
        shape = [1] * new.ndim
        shape[batch_axis] = finished.shape[0]
        return jnp.where(finished.reshape(shape), old, new)

    return jax.tree.map(pick, new_carry, old_carry)


def lengths_of(tokens, eos_id: int):
    """Returns ``[...]`` int32 lengths of ``tokens [..., T]``: up to and including the first `eos_id`, T if none."""
    is_eos = tokens == eos_id  # [..., T]
    first = jnp.argmax(is_eos, axis=-1)  # [...]; 0 also when there is none, told apart by `any`
    return jnp.where(jnp.any(is_eos, axis=-1), first + 1, tokens.shape[-1]).astype(jnp.int32)


def check_first_tokens(first_tokens) -> jax.Array:
    """Returns ``first_tokens`` as an integer array ``[B]`` after checking its dtype (TypeError) and rank."""
    tokens = jnp.asarray(first_tokens)
    message = f"first_tokens must be integer tokens of shape [B], got {tokens.dtype} {tokens.shape}"
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise DTypeError(message)
    if tokens.ndim != 1:
        raise ValueError(message)
    return tokens


def probe_step(step_fn: StepFn, carry, tokens, *, return_aux: bool = False, rows: str = "B"):
    """Returns ``(V, aux)``: the vocabulary size and the aux shapes of one traced step on ``tokens [N]``.

    Traces `step_fn` once (``jax.eval_shape``, nothing runs) and checks what it returns: ``(carry, logits
    [N, V])`` (``(carry, logits, aux)`` with `return_aux`, aux leaves ``[N, ...]``), the carry of the
    structure, shapes and dtypes it was given (as `lax.scan` needs). Then, for concrete ``tokens``, checks
    they lie in ``[0, V)``: ValueError naming ``first_tokens``. `rows` names N in the messages.
    """
    n = tokens.shape[0]
    out = jax.eval_shape(step_fn, carry, tokens)
    want = "(carry, logits, aux)" if return_aux else "(carry, logits)"
    if not isinstance(out, tuple) or len(out) != (3 if return_aux else 2):
        raise ValueError(f"step_fn must return {want} with return_aux={return_aux}, got {out}")
    seen, expected = jax.tree.map(lambda x: (x.shape, x.dtype), out[0]), jax.eval_shape(lambda c: c, carry)
    if seen != jax.tree.map(lambda x: (x.shape, x.dtype), expected):
        raise ValueError(f"step_fn must return a carry of the structure, shapes and dtypes it was given "
                         f"({expected}), got {out[0]}")
    logits = out[1]
    if logits.ndim != 2 or logits.shape[0] != n:
        raise ValueError(f"step_fn must return logits of shape [{rows}={n}, V], got {logits.shape}")
    aux = out[2] if return_aux else None
    for leaf in jax.tree.leaves(aux):
        if leaf.ndim < 1 or leaf.shape[0] != n:
            raise ValueError(f"step_fn's aux leaves must have shape [{rows}={n}, ...], got {leaf.shape}")
    value = concrete(tokens)
    if value is not None and value.size and (value.min() < 0 or value.max() >= logits.shape[1]):
        raise ValueError(f"first_tokens must lie in [0, {logits.shape[1]}) (the vocabulary size), got values in "
                         f"[{value.min()}, {value.max()}]")
    return logits.shape[1], aux


def _check_decode_args(num_steps, eos_id, pad_id, carry_batch_axis):
    if not _is_int(num_steps) or num_steps < 0:
        raise ValueError(f"num_steps must be an integer >= 0, got {num_steps!r}")
    if eos_id is not None and (not _is_int(eos_id) or eos_id < 0):
        raise ValueError(f"eos_id must be None or an integer >= 0, got {eos_id!r}")
    if not _is_int(pad_id):
        raise ValueError(f"pad_id must be an integer, got {pad_id!r}")
    if not _is_int(carry_batch_axis) or carry_batch_axis < 0:
        raise ValueError(f"carry_batch_axis must be an integer >= 0, got {carry_batch_axis!r}")


def _decode(step_fn: StepFn, carry, first_tokens, num_steps: int, choose, *, eos_id, pad_id, carry_batch_axis):
    """The loop `greedy` and `sample` share; ``choose(logits [B, V], t) -> tokens [B]`` picks each step's."""
    first_tokens = check_first_tokens(first_tokens)
    _check_decode_args(num_steps, eos_id, pad_id, carry_batch_axis)
    batch = first_tokens.shape[0]
    vocab, _ = probe_step(step_fn, carry, first_tokens)
    if eos_id is not None and eos_id >= vocab:
        raise ValueError(f"eos_id must lie in [0, {vocab}) (the vocabulary size), got {eos_id}")

    def body(state, t):
        c, tok, finished = state
        new_c, logits = step_fn(c, tok)
        if eos_id is not None:  # without eos nothing is held, so the carry's layout does not matter
            new_c = hold_carry(finished, new_c, c, batch_axis=carry_batch_axis)
        nxt, finished = finish_tokens(choose(logits, t).astype(tok.dtype), finished, eos_id=eos_id, pad_id=pad_id)
        return (new_c, nxt, finished), nxt

    init = (carry, first_tokens, jnp.zeros(batch, bool))
    (carry, _, _), toks = jax.lax.scan(body, init, jnp.arange(num_steps))  # toks [num_steps, B]
    return carry, jnp.swapaxes(toks, 0, 1)


def greedy(step_fn: StepFn, carry, first_tokens, num_steps: int, *, eos_id: int | None = None, pad_id: int = 0,
           carry_batch_axis: int = 0):
    """Returns ``(carry, tokens [B, num_steps])``: the most likely token at each step (the first on ties).

    Args:
      step_fn: ``(carry, tokens [B]) -> (carry, logits [B, V])``.
      carry: the state after the prime (batch B at `carry_batch_axis` of every leaf).
      first_tokens: ``[B]`` int, the token fed at the first step (the prime's last token).
      num_steps: how many tokens to produce (a Python int >= 0).
      eos_id: the end token: a row that emits it is finished (see the module docstring); None: never.
      pad_id: the token finished rows emit.
      carry_batch_axis: the batch axis of the carry's leaves, used only with `eos_id`.

    Checked at trace time (under jit too): every argument's type and shape and `step_fn`'s outputs; only
    outside jit (concrete `first_tokens`): each first token in ``[0, V)``.
    """
    return _decode(step_fn, carry, first_tokens, num_steps, lambda logits, t: jnp.argmax(logits, axis=-1),
                   eos_id=eos_id, pad_id=pad_id, carry_batch_axis=carry_batch_axis)


def sample(step_fn: StepFn, carry, first_tokens, num_steps: int, key, *, temperature: float = 1.0,
           top_k: int | None = None, eos_id: int | None = None, pad_id: int = 0, carry_batch_axis: int = 0):
    """Returns ``(carry, tokens [B, num_steps])``: tokens drawn one at a time from ``step_fn``'s logits.

    Args:
      step_fn, carry, first_tokens, num_steps, eos_id, pad_id, carry_batch_axis: as for `greedy`.
      key: PRNG key; step t uses ``fold_in(key, t)``, and the B rows draw independently.
      temperature: > 0; below 1 sharpens, above 1 flattens the distribution.
      top_k: keep only the k most likely tokens at each step (None: all; 1: greedy).
    """
    _check_sampling_args(temperature, top_k)  # top_k's upper bound is checked once V is known

    def choose(logits, t):
        logits = filter_logits(logits.astype(jnp.float32), temperature=temperature, top_k=top_k)
        return jax.random.categorical(jax.random.fold_in(key, t), logits, axis=-1)  # [B]

    return _decode(step_fn, carry, first_tokens, num_steps, choose, eos_id=eos_id, pad_id=pad_id,
                   carry_batch_axis=carry_batch_axis)
