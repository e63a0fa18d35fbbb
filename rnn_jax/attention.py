"""Attention over a masked memory: additive (Bahdanau et al. 2015) and multiplicative (Luong et al. 2015).

A decoder state (the query ``q [B, Q]``) scores each of the S slots of a memory ``m [B, S, M]`` (a
translation encoder's states, or a captioner's grid of image features), the scores become weights by a
softmax over the real slots, and the context is the weighted sum of the memory:

* ``'additive'``: ``score_s = v^T tanh(q W_q + m_s W_m)``, ``W_q [Q, A]``, ``W_m [M, A]``, ``v [A]``
  (Bahdanau eq. A.1.2; Luong's ``concat``);
* ``'dot'``: ``score_s = q . m_s`` (needs Q == M);
* ``'general'``: ``score_s = q W m_s``, ``W [Q, M]``;
* ``weights = masked_softmax(scores, mask)``, ``context = attend(weights, memory) [B, M]``.

``m_s W_m`` does not depend on the query: `precompute_keys` computes it once per source (``keys [B, S, A]``)
and `additive_score` takes it, so a decoder's steps do only the ``[B, Q] x [Q, A]`` matmul.

Padding: ``mask [B, S]`` is True on real slots (`rnn_jax.sequence.lengths_to_mask`); None means every slot
is real (an image grid). Masked slots get weights of exactly 0.0, so their memory values never reach the
context, provided they are finite (``0 * inf`` is NaN; zero padding is the usual). A row with no real slot
is a ValueError when the mask is concrete; under jit it cannot be checked, and that row gets all-zero
weights and a zero context (never NaN). A memory of S = 0 slots without a mask gives the same: weights
``[B, 0]`` and a zero context; B = 0 gives empty results.

Checks, all at trace time (so under jit too) but the mask's real slots: queries, memories, keys, scores
and weights must be floating point (float16/bfloat16/float32/float64; integers, bools and complex numbers
are a TypeError naming the argument), the mask boolean (a TypeError, which `rnn_jax.checks.DTypeError`
also makes a ValueError), and ranks, batch sizes and feature sizes match (ValueErrors naming the argument).

`Attention` is the one entry: a frozen spec (``kind`` and sizes, hashable like `rnn_jax.rnn.Stack`) with
``init(key)``, ``prepare(params, memory) -> AttentionMemory`` and ``apply(params, query, prepared, mask)
-> (context, weights)``. In a decoder, `rnn_jax.wrappers.feed_inputs` feeds the context computed from the
previous carry; prepare the memory once per call, where the cell is built::

    att = Attention('additive', query_size=H, memory_size=M, attn_size=A)
    prepared = att.prepare(params['feed'], memory)
    feed_fn = lambda p, carry: att(p, carry_h(carry), prepared, mask)[0]
    cell = feed_inputs(gru(H), feed_fn, M, feed_init=att.init)

Initialisation: uniform in ``+-1/sqrt(fan_in)``, as ``torch.nn.Linear`` (fan_in Q for ``W_q`` and ``W``, M
for ``W_m``, A for ``v``); no biases, as in the papers' equations. Precision (`rnn_jax.precision`):
parameters are float32 by default; ``dtype`` is the matmuls' compute dtype (None: the inputs' dtype promoted
to float32), accumulation, tanh, scores and the softmax run in ``promote(dtype, float32)``, so a bfloat16
memory gives float32 scores, weights and context.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.checks import check_boolean, check_choice, check_floating, check_rank, check_size, concrete
from rnn_jax.precision import acc_dtype, matmul

Array = jax.Array
Params = dict

KINDS = ("additive", "dot", "general")


# --------------------------------------------------------------------------- checks


def _compute_dtype(dtype, *arrays):
    """Returns `dtype`, or when None the arrays' promoted dtype at least float32."""
    return dtype if dtype is not None else acc_dtype(jnp.result_type(*arrays))


def _check_rank(name: str, x, layout: str) -> Array:
    """Returns `x` as a floating array after checking its dtype (a TypeError) and its rank (a ValueError)."""
    return check_rank(name, check_floating(name, x), layout)


def _check_last(name: str, x: Array, size: int, what: str):
    if x.shape[-1] != size:
        raise ValueError(f"{name} must have {size} features ({what}) on its last axis, got shape {x.shape}")


def _check_query_memory(query, memory, query_size: int, memory_size: int) -> tuple[Array, Array]:
    """Returns query ``[B, Q]`` and memory ``[B, S, M]`` as arrays after checking ranks, batch and sizes."""
    query = _check_rank("query", query, "[batch, query_size]")
    memory = _check_rank("memory", memory, "[batch, slots, memory_size]")
    if memory.shape[0] != query.shape[0]:
        raise ValueError(f"memory must have the query's batch size {query.shape[0]} on axis 0 "
                         f"([batch, slots, memory_size]), got shape {memory.shape}")
    _check_last("query", query, query_size, "query_size")
    _check_last("memory", memory, memory_size, "memory_size")
    return query, memory


def _check_dot_sizes(query_size: int, memory_size: int):
    if query_size != memory_size:
        raise ValueError(f"dot attention needs query_size == memory_size, got query_size={query_size} and "
                         f"memory_size={memory_size} (use 'general' or 'additive' for different sizes)")


def _uniform(key, shape, fan_in: int, dtype) -> Array:
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


# --------------------------------------------------------------------------- additive (Bahdanau)


def additive_init(key, query_size: int, memory_size: int, attn_size: int, *, param_dtype=jnp.float32) -> Params:
    """Returns additive attention's params ``{'w_q': [Q, A], 'w_m': [M, A], 'v': [A]}`` (uniform +-1/sqrt(fan_in))."""
    for name, size in (("query_size", query_size), ("memory_size", memory_size), ("attn_size", attn_size)):
        check_size(name, size)
    k_q, k_m, k_v = jax.random.split(key, 3)
    return {"w_q": _uniform(k_q, (query_size, attn_size), query_size, param_dtype),
            "w_m": _uniform(k_m, (memory_size, attn_size), memory_size, param_dtype),
            "v": _uniform(k_v, (attn_size,), attn_size, param_dtype)}


def precompute_keys(params: Params, memory, *, dtype=None) -> Array:
    """Returns the query-independent half of the additive score, ``keys = memory W_m [B, S, A]``.

    ``memory [B, S, M]``; the keys are in ``promote(dtype, float32)``. Compute them once per source and
    pass them to `additive_score` (or use `Attention.prepare`).
    """
    memory = _check_rank("memory", memory, "[batch, slots, memory_size]")
    _check_last("memory", memory, params["w_m"].shape[0], "the rows of params['w_m']")
    return matmul(memory, params["w_m"], _compute_dtype(dtype, memory, params["w_m"]))  # [B, S, A]


def additive_score(params: Params, query, memory=None, *, keys=None, dtype=None) -> Array:
    """Returns Bahdanau's scores ``v^T tanh(q W_q + m_s W_m)`` ``[B, S]`` for ``query [B, Q]``.

    Args:
      params: from `additive_init`.
      query: ``[B, Q]``.
      memory: ``[B, S, M]``; may be None when `keys` are given.
      keys: optional ``memory W_m [B, S, A]`` from `precompute_keys` (then memory is not multiplied again).
      dtype: compute dtype of the matmuls (None: the inputs', at least float32).
    """
    Q, A = params["w_q"].shape
    query = _check_rank("query", query, "[batch, query_size]")
    _check_last("query", query, Q, "the rows of params['w_q']")
    if keys is None:
        if memory is None:
            raise ValueError("additive_score needs memory [batch, slots, memory_size] or its precomputed keys")
        keys = precompute_keys(params, memory, dtype=dtype)
    keys = _check_rank("keys", keys, "[batch, slots, attn_size]")
    _check_last("keys", keys, A, "attn_size, the columns of params['w_q']")
    if keys.shape[0] != query.shape[0] or (memory is not None and jnp.shape(memory)[:2] != keys.shape[:2]):
        raise ValueError(f"keys must have shape [batch, slots, attn_size] with the query's batch size "
                         f"{query.shape[0]} (and memory's slots), got {keys.shape}")
    cdt = _compute_dtype(dtype, query, keys, params["w_q"])
    acc = acc_dtype(cdt)
    q = matmul(query, params["w_q"], cdt).astype(acc)  # [B, A]
    hidden = jnp.tanh(keys.astype(acc) + q[:, None, :])  # [B, S, A]
    return matmul(hidden, params["v"][:, None], cdt)[..., 0].astype(acc)  # [B, S]


# --------------------------------------------------------------------------- multiplicative (Luong)


def general_init(key, query_size: int, memory_size: int, *, param_dtype=jnp.float32) -> Params:
    """Returns Luong's 'general' params ``{'w': [Q, M]}``, uniform +-1/sqrt(Q) (a Linear from Q to M)."""
    check_size("query_size", query_size)
    check_size("memory_size", memory_size)
    return {"w": _uniform(key, (query_size, memory_size), query_size, param_dtype)}


def _bilinear(q: Array, memory: Array, cdt) -> Array:
    """Returns ``memory [B, S, M] . q [B, M] -> [B, S]`` in ``acc_dtype(cdt)``."""
    return matmul(memory, q[:, :, None], cdt)[..., 0].astype(acc_dtype(cdt))  # [B, S, 1] -> [B, S]


def dot_score(query, memory, *, dtype=None) -> Array:
    """Returns Luong's 'dot' scores ``q . m_s`` ``[B, S]`` for ``query [B, Q]``, ``memory [B, S, M]``, Q == M."""
    query = _check_rank("query", query, "[batch, query_size]")
    memory = _check_rank("memory", memory, "[batch, slots, memory_size]")
    _check_dot_sizes(query.shape[-1], memory.shape[-1])
    query, memory = _check_query_memory(query, memory, query.shape[-1], memory.shape[-1])
    return _bilinear(query, memory, _compute_dtype(dtype, query, memory))


def general_score(params: Params, query, memory, *, dtype=None) -> Array:
    """Returns Luong's 'general' scores ``q W m_s`` ``[B, S]`` for ``query [B, Q]``, ``memory [B, S, M]``."""
    query, memory = _check_query_memory(query, memory, *params["w"].shape)
    cdt = _compute_dtype(dtype, query, memory, params["w"])
    q = matmul(query, params["w"], cdt)  # [B, M]
    return _bilinear(q, memory, cdt)


# --------------------------------------------------------------------------- weights and context


def _check_mask(mask, shape: tuple) -> Array:
    """Returns ``mask [B, S]`` after checking its dtype, its shape and (when concrete) a real slot per row."""
    mask = check_boolean("mask", mask, "True on real slots: use mask.astype(bool) or "
                                       "rnn_jax.sequence.lengths_to_mask")
    if mask.shape != shape:
        raise ValueError(f"mask must have the scores' shape {list(shape)} ([batch, slots]), got {mask.shape}")
    value = concrete(mask)
    if value is not None:
        empty = np.flatnonzero(~value.any(axis=-1))
        if empty.size:
            raise ValueError(f"mask must have a real (True) slot in every row; rows {empty.tolist()} have none "
                             f"(under jit they would get all-zero weights)")
    return mask


def masked_softmax(scores, mask=None) -> Array:
    """Returns the softmax of ``scores [B, S]`` over the slots where ``mask [B, S]`` is True.

    Weights are exactly 0.0 on masked slots and sum to 1 over real ones; they are computed in
    ``promote(scores.dtype, float32)``. The maximum subtracted before ``exp`` is taken over real slots only,
    so large scores do not overflow and masked scores (even inf) play no part. A row with no real slot:
    ValueError for a concrete mask; all-zero weights under jit. ``mask=None``: every slot is real.
    """
    scores = _check_rank("scores", scores, "[batch, slots]")
    s = scores.astype(acc_dtype(scores.dtype))
    if mask is None:
        return jax.nn.softmax(s, axis=-1)
    mask = _check_mask(mask, scores.shape)
    real = jnp.any(mask, axis=-1, keepdims=True)  # [B, 1]
    top = jnp.max(jnp.where(mask, s, -jnp.inf), axis=-1, keepdims=True, initial=-jnp.inf)  # [B, 1], -inf if empty
    top = jax.lax.stop_gradient(jnp.where(real, top, 0.0))  # the shift cancels in the softmax
    # the inner where keeps exp finite on masked slots, so its gradient there is 0, not 0 * inf
    e = jnp.where(mask, jnp.exp(jnp.where(mask, s - top, 0.0)), 0.0)  # [B, S]
    total = jnp.sum(e, axis=-1, keepdims=True)  # >= 1 on rows with a real slot (the maximum's exp(0))
    return jnp.where(mask, e / jnp.where(real, total, 1.0), 0.0)


def attend(weights, memory) -> Array:
    """Returns the context ``sum_s weights[b, s] memory[b, s] [B, M]`` for ``weights [B, S]``, ``memory [B, S, M]``.

    Computed in ``promote(weights.dtype, memory.dtype, float32)``.
    """
    weights = _check_rank("weights", weights, "[batch, slots]")
    memory = _check_rank("memory", memory, "[batch, slots, memory_size]")
    if memory.shape[:2] != weights.shape:
        raise ValueError(f"memory must have shape [{weights.shape[0]}, {weights.shape[1]}, memory_size] "
                         f"(the weights' batch and slots), got {memory.shape}")
    acc = _compute_dtype(None, weights, memory)
    return jnp.einsum("bs,bsm->bm", weights.astype(acc), memory.astype(acc))  # [B, M]


# --------------------------------------------------------------------------- the entry


class AttentionMemory(NamedTuple):
    """A memory ready to attend over: ``memory [B, S, M]`` and, for additive attention, ``keys [B, S, A]``."""

    memory: Array
    keys: Array | None = None


@dataclasses.dataclass(frozen=True)
class Attention:
    """Attention of one kind and size (see the module docstring); hashable, so usable as a jit static argument.

    Attributes:
      kind: ``'additive'``, ``'dot'`` or ``'general'``.
      query_size: Q, the decoder state's size.
      memory_size: M, the memory's feature size (also the context's).
      attn_size: A, additive attention's hidden size (required there, None otherwise).
      dtype: compute dtype of the matmuls (None: the inputs', at least float32).
      param_dtype: dtype of the parameters.
    """

    kind: str
    query_size: int
    memory_size: int
    attn_size: int | None = None
    _: dataclasses.KW_ONLY
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        check_choice("kind", self.kind, KINDS)
        check_size("query_size", self.query_size)
        check_size("memory_size", self.memory_size)
        if self.kind == "additive":
            check_size("attn_size", self.attn_size)
        elif self.attn_size is not None:
            raise ValueError(f"attn_size is additive attention's; {self.kind!r} takes None, got {self.attn_size!r}")
        if self.kind == "dot":
            _check_dot_sizes(self.query_size, self.memory_size)
        object.__setattr__(self, "param_dtype", jnp.dtype(self.param_dtype))
        if self.dtype is not None:
            object.__setattr__(self, "dtype", jnp.dtype(self.dtype))

    def init(self, key) -> Params:
        """Returns the params: `additive_init`'s, `general_init`'s, or ``{}`` for dot attention."""
        if self.kind == "additive":
            return additive_init(key, self.query_size, self.memory_size, self.attn_size, param_dtype=self.param_dtype)
        if self.kind == "general":
            return general_init(key, self.query_size, self.memory_size, param_dtype=self.param_dtype)
        return {}

    def prepare(self, params: Params, memory) -> AttentionMemory:
        """Returns ``memory [B, S, M]`` with what does not depend on the query (additive keys) computed once."""
        memory = _check_rank("memory", memory, "[batch, slots, memory_size]")
        _check_last("memory", memory, self.memory_size, "memory_size")
        keys = precompute_keys(params, memory, dtype=self.dtype) if self.kind == "additive" else None
        return AttentionMemory(memory, keys)

    def score(self, params: Params, query, prepared) -> Array:
        """Returns the scores ``[B, S]`` of ``query [B, Q]`` against `prepared` (or a raw memory ``[B, S, M]``)."""
        query = _check_rank("query", query, "[batch, query_size]")
        _check_last("query", query, self.query_size, "query_size")
        if not isinstance(prepared, AttentionMemory):
            prepared = self.prepare(params, prepared)
        query, memory = _check_query_memory(query, prepared.memory, self.query_size, self.memory_size)
        if self.kind == "additive":
            return additive_score(params, query, memory, keys=prepared.keys, dtype=self.dtype)
        if self.kind == "general":
            return general_score(params, query, memory, dtype=self.dtype)
        return dot_score(query, memory, dtype=self.dtype)

    def apply(self, params: Params, query, prepared, mask=None) -> tuple[Array, Array]:
        """Returns ``(context [B, M], weights [B, S])`` for ``query [B, Q]`` over `prepared` with ``mask [B, S]``.

        `prepared` is `prepare`'s result, or a raw memory ``[B, S, M]`` (prepared at every call then). mask:
        True on real slots; None when every slot is real. Both results are in ``promote(dtype, float32)``.
        Dtypes, ranks and sizes are checked at trace time (under jit too), a real slot in every mask row only
        for a concrete mask (see the module docstring).
        """
        if not isinstance(prepared, AttentionMemory):
            prepared = self.prepare(params, prepared)
        weights = masked_softmax(self.score(params, query, prepared), mask)  # [B, S]
        return attend(weights, prepared.memory), weights

    __call__ = apply
