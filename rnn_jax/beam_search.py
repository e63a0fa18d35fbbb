"""Batched beam search for any step function: one `lax.scan` of ``max_len`` steps over B*K rows.

Import it as ``from rnn_jax.beam_search import beam_search`` (it builds on `rnn_jax.decoding`, which does
not import it back).

The step function is `rnn_jax.decoding`'s, ``step_fn(carry, tokens [N]) -> (carry, logits [N, V])``, or
``(carry, logits, aux)`` with ``return_aux=True`` (aux: a pytree of ``[N, ...]`` arrays, e.g. attention
weights ``[N, S]``). Beam search calls it on N = B*K rows: the carry is tiled K times along its batch axis
(row ``b * K + k`` is beam k of sequence b) and gathered along the beam backpointers after every step, so
any decoder works unchanged.

The search, at step t (0-based), for each of the B sequences:

* every live beam is extended by every token: K*V candidates, scored by the beam's log-probability plus
  the token's (``log_softmax`` of the logits, accumulated in float32). At step 0 only beam 0 is live (the
  others start at -inf), so the K beams are distinct;
* an eos candidate that ranks among the K best of the K*V candidates is finished: it joins a separate pool
  of the K best finished hypotheses, ranked by normalised score (an older one wins a tie). A finished
  hypothesis keeps its score, emits ``pad_id`` after eos and is never pushed out by live ones;
* the K best candidates that are not eos become the live beams (live beams always keep K slots);
* after the last step, the live beams (length ``max_len``, no eos) compete with the pool, so every sequence
  returns K hypotheses even if none ever emits eos.

Scores: ``log_prob / length ** alpha`` (``length_norm="power"``, the default), or Wu et al. (2016)'s
``log_prob / ((5 + length) / 6) ** alpha`` (``length_norm="gnmt"``), with alpha = ``length_penalty`` and
length = the tokens emitted including eos. alpha = 0 ranks by raw log-probability; then beam_size=1 is
greedy decoding (`rnn_jax.decoding.greedy` with the same eos_id). All ``max_len`` steps always run
(shapes are fixed; there is no early stop).

Checks: `rnn_jax.decoding`'s (``first_tokens`` integer ``[B]`` and the step's outputs at trace time,
``first_tokens`` in ``[0, V)`` only when concrete), plus the beam's own scalars and every carry leaf having
the batch axis. B = 0 gives empty results.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnn_jax.checks import check_choice, check_size
from rnn_jax.decoding import StepFn, check_first_tokens, lengths_of, probe_step

LENGTH_NORMS = ("power", "gnmt")


class BeamResult(NamedTuple):
    """The K best hypotheses of each of B sequences, best first (``result.tokens[:, 0]`` is the answer).

    tokens: ``[B, K, max_len]``, ``pad_id`` after eos.
    scores: ``[B, K]`` float32, the normalised scores that rank them (see the module docstring).
    log_probs: ``[B, K]`` float32, the raw sums of the tokens' log-probabilities (eos included).
    lengths: ``[B, K]`` int32, tokens up to and including eos; ``max_len`` for one that never emitted eos.
    carry: each hypothesis' final carry, batch B*K (row ``b * K + k``) at ``carry_batch_axis``: the carry
      returned by the step that produced its eos (or its last token, which is never fed).
    aux: with ``return_aux``, the step function's aux for each hypothesis' tokens, ``[B, K, max_len, ...]``
      per leaf (zeros after its length); None otherwise.

    A slot whose log-probability is -inf (fewer than K hypotheses of non-zero probability exist) has
    score -inf, tokens ``pad_id`` and length 0.
    """

    tokens: jax.Array
    scores: jax.Array
    log_probs: jax.Array
    lengths: jax.Array
    carry: Any
    aux: Any


class _Hyps(NamedTuple):
    """K hypotheses per sequence: tokens [B, K, T], aux [B, K, T, ...], log_probs/scores [B, K], carry B*K."""

    tokens: jax.Array
    aux: Any
    log_probs: jax.Array
    scores: jax.Array
    carry: Any


def length_normalise(log_probs, lengths, *, length_penalty: float = 1.0, length_norm: str = "power"):
    """Returns float32 ``log_probs / lengths ** alpha`` ("power") or ``/ ((5 + lengths) / 6) ** alpha``
    ("gnmt", Wu et al. 2016), with alpha = `length_penalty`; `lengths` broadcast against `log_probs`."""
    check_choice("length_norm", length_norm, LENGTH_NORMS)
    lengths = jnp.asarray(lengths, jnp.float32)
    base = lengths if length_norm == "power" else (5.0 + lengths) / 6.0
    return jnp.asarray(log_probs, jnp.float32) / base ** length_penalty


def _check_beam_args(max_len, beam_size, eos_id, pad_id, length_penalty, length_norm,
                     carry_batch_axis, return_aux):
    check_size("max_len", max_len, 1)
    check_size("beam_size", beam_size, 1)
    check_size("eos_id", eos_id, 0)
    if isinstance(pad_id, bool) or not isinstance(pad_id, numbers.Integral):
        raise ValueError(f"pad_id must be an integer, got {pad_id!r}")
    # a traced length_penalty (beam_search under an outer jit) cannot be checked; a number can
    if isinstance(length_penalty, numbers.Real) and not length_penalty >= 0:
        raise ValueError(f"length_penalty must be a number >= 0, got {length_penalty!r}")
    check_choice("length_norm", length_norm, LENGTH_NORMS)
    check_size("carry_batch_axis", carry_batch_axis, 0)
    if not isinstance(return_aux, bool):
        raise ValueError(f"return_aux must be a bool, got {return_aux!r}")


def _tile(carry, beam_size: int, axis: int, batch: int):
    """Returns `carry` with each row repeated `beam_size` times along `axis` (row b -> rows b*K .. b*K+K-1)."""

    def tile(x):
        x = jnp.asarray(x)
        if x.ndim <= axis or x.shape[axis] != batch:
            raise ValueError(f"carry leaf of shape {x.shape} has no batch axis of size {batch} at "
                             f"carry_batch_axis={axis}")
        return jnp.repeat(x, beam_size, axis=axis)

    return jax.tree.map(tile, carry)


def _take_beams(tree, idx):
    """Returns every ``[B, K, ...]`` leaf of `tree` gathered along its beam axis by ``idx [B, K']``."""
    return jax.tree.map(lambda x: jax.vmap(lambda xb, ib: xb[ib])(x, idx), tree)


def _write(buffers, values, t):
    """Returns every ``[B, K, T, ...]`` buffer with step `t` set to the matching ``[B, K, ...]`` value."""
    def write(buf, v):
        return jax.lax.dynamic_update_slice_in_dim(buf, v[:, :, None].astype(buf.dtype), t, axis=2)

    return jax.tree.map(write, buffers, values)


def _take_rows(carry, idx, axis: int):
    """Returns the carry's rows ``b * K + idx[b, k]`` (``idx [B, K]``) along `axis`, in that order."""
    batch, width = idx.shape
    rows = (jnp.arange(batch)[:, None] * width + idx).reshape(batch * width)  # [B*K]
    return jax.tree.map(lambda x: jnp.take(x, rows, axis=axis), carry)


def _best(a: _Hyps, b: _Hyps, axis: int) -> _Hyps:
    """Returns the K best of `a`'s and `b`'s hypotheses together by score, best first (`a`'s win ties)."""
    batch, k = a.scores.shape
    scores, idx = jax.lax.top_k(jnp.concatenate([a.scores, b.scores], axis=1), k)  # [B, K] of 2K
    both = jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=1), (a.tokens, a.aux, a.log_probs),
                        (b.tokens, b.aux, b.log_probs))
    tokens, aux, log_probs = _take_beams(both, idx)
    # the two carries side by side: a's row b*K + j, then b's row B*K + b*K + j (_take_rows adds the b*K)
    offsets = jnp.where(idx < k, idx, batch * k + idx - k)  # [B, K]
    carry = jax.tree.map(lambda x, y: jnp.concatenate([x, y], axis=axis), a.carry, b.carry)
    return _Hyps(tokens, aux, log_probs, scores, _take_rows(carry, offsets, axis))


def _search_step(step_fn: StepFn, *, vocab: int, eos_id: int, axis: int, return_aux: bool, normalise):
    """Returns the scan body ``((live, pool, fed [B*K]), t) -> ((live, pool, fed), None)`` of one step."""

    def body(state, t):
        live, pool, fed = state
        out = step_fn(live.carry, fed)
        new_carry, logits = out[0], out[1]
        batch, k = live.scores.shape
        aux = jax.tree.map(lambda a: a.reshape((batch, k) + a.shape[1:]), out[2] if return_aux else None)
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1).reshape(batch, k, vocab)
        cand = live.log_probs[..., None] + logp  # [B, K, V]
        flat = cand.reshape(batch, k * vocab)
        # eos ends a hypothesis only where it ranks among the K best candidates (so K=1 is greedy)
        _, top = jax.lax.top_k(flat, k)  # [B, K]
        eos_at = jnp.arange(k) * vocab + eos_id  # [K], where each beam's eos candidate sits in `flat`
        in_top = jnp.any(top[:, None, :] == eos_at[None, :, None], axis=-1)  # [B, K]
        ended_lp = jnp.where(in_top, cand[..., eos_id], -jnp.inf)  # [B, K]
        ended = _Hyps(_write(live.tokens, jnp.full((batch, k), eos_id), t), _write(live.aux, aux, t), ended_lp,
                      normalise(ended_lp, t + 1), new_carry)
        pool = _best(pool, ended, axis)

        log_probs, idx = jax.lax.top_k(cand.at[..., eos_id].set(-jnp.inf).reshape(batch, k * vocab), k)
        parent, token = idx // vocab, (idx % vocab).astype(fed.dtype)  # [B, K]
        tokens, past_aux, step_aux = _take_beams((live.tokens, live.aux, aux), parent)
        live = _Hyps(_write(tokens, token, t), _write(past_aux, step_aux, t), log_probs, log_probs,
                     _take_rows(new_carry, parent, axis))
        return (live, pool, token.reshape(batch * k)), None

    return body


def beam_search(step_fn: StepFn, carry, first_tokens, max_len: int, *, beam_size: int, eos_id: int, pad_id: int = 0,
                length_penalty: float = 1.0, length_norm: str = "power", carry_batch_axis: int = 0,
                return_aux: bool = False) -> BeamResult:
    """Returns the `BeamResult` of a beam search of width `beam_size`: ``tokens [B, K, max_len]`` best first.

    Args:
      step_fn: ``(carry, tokens [N]) -> (carry, logits [N, V])``, or ``(carry, logits, aux)`` with
        `return_aux`; called on N = B*K rows (see the module docstring).
      carry: the state after the prime (batch B at `carry_batch_axis` of every leaf).
      first_tokens: ``[B]`` int, the token fed at the first step (the prime's last token).
      max_len: the most tokens a hypothesis emits, eos included (a Python int >= 1).
      beam_size: K, the live beams and the finished hypotheses kept per sequence (an int >= 1).
      eos_id: the end token, in ``[0, V)``.
      pad_id: what a finished hypothesis emits after eos.
      length_penalty: alpha >= 0 of the length normalisation (0: raw log-probabilities).
      length_norm: "power" (``length ** alpha``) or "gnmt" (``((5 + length) / 6) ** alpha``).
      carry_batch_axis: the batch axis of the carry's leaves (1 for ``[L, B, H]`` states).
      return_aux: `step_fn` also returns aux; the result then carries each hypothesis' aux step by step.

    Checked at trace time (under jit too): every argument's type and shape and `step_fn`'s outputs; only
    outside jit (concrete `first_tokens`): each first token in ``[0, V)``.
    """
    first_tokens = check_first_tokens(first_tokens)
    _check_beam_args(max_len, beam_size, eos_id, pad_id, length_penalty, length_norm,
                     carry_batch_axis, return_aux)
    batch, k = first_tokens.shape[0], beam_size
    carry = _tile(carry, k, carry_batch_axis, batch)
    fed = jnp.repeat(first_tokens, k)  # [B*K]
    vocab, aux_shapes = probe_step(step_fn, carry, fed, return_aux=return_aux, rows="B*K")
    if eos_id >= vocab:
        raise ValueError(f"eos_id must lie in [0, {vocab}) (the vocabulary size), got {eos_id}")
    normalise = functools.partial(length_normalise, length_penalty=length_penalty, length_norm=length_norm)

    start = jnp.broadcast_to(jnp.where(jnp.arange(k) == 0, 0.0, -jnp.inf), (batch, k)).astype(jnp.float32)
    live = _Hyps(jnp.full((batch, k, max_len), pad_id, first_tokens.dtype),
                 jax.tree.map(lambda s: jnp.zeros((batch, k, max_len) + s.shape[1:], s.dtype), aux_shapes),
                 start, start, carry)
    pool = live._replace(log_probs=jnp.full_like(start, -jnp.inf), scores=jnp.full_like(start, -jnp.inf))
    body = _search_step(step_fn, vocab=vocab, eos_id=eos_id, axis=carry_batch_axis, return_aux=return_aux,
                        normalise=normalise)
    (live, pool, _), _ = jax.lax.scan(body, (live, pool, fed), jnp.arange(max_len))
    best = _best(pool, live._replace(scores=normalise(live.log_probs, max_len)), carry_batch_axis)

    empty = best.log_probs == -jnp.inf  # [B, K]
    tokens = jnp.where(empty[..., None], jnp.asarray(pad_id, best.tokens.dtype), best.tokens)
    lengths = jnp.where(empty, 0, lengths_of(best.tokens, eos_id))
    return BeamResult(tokens, best.scores, best.log_probs, lengths, best.carry, best.aux)
