"""The pieces of `rnn_jax.models.seq2seq`: the encoder's memory, the decoder's stacked cell, the bridge and
the readout.

* `Memory`: what the encoder hands the decoder, every leaf batch-major (``[B, ...]``), so `tile_memory`
  (``jnp.repeat(x, K, axis=0)`` on every leaf) lays it out as a beam search tiles a carry (row ``b * K + k``).
* `stacked_cell`: L cells run bottom to top within one step, as one `rnn_jax.cells.Cell` whose carry is the
  tuple of the layers' carries; so `rnn_jax.wrappers.feed_inputs` can feed the bottom layer a context
  computed from the top layer's previous state, and `rnn_jax.unroll` runs the whole decoder in one scan.
* the bridge (`bridge_init`, `bridge_apply`): each leaf of each decoder layer's initial carry is
  ``tanh(v W + b)`` of one encoder vector ``v`` (Cho et al. 2014's ``tanh(W c)``, Bahdanau et al. 2015's
  ``tanh(W_s h<-_1)``);
* the readout (`readout_init`, `readout_apply`): ``[s_t; context_t; embed(y_{t-1})] -> [..., R]`` by a
  linear layer, a tanh layer, or maxout (Goodfellow et al. 2013, pools of 2 as in both papers);
* `token_loss`: cross-entropy (optionally label-smoothed) summed over the real target tokens.

Dense layers are initialised uniform in ``+-1/sqrt(fan_in)`` (``torch.nn.Linear``) with zero biases.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from rnn_jax.cells import Cell, freeze_options
from rnn_jax.checks import check_rate, check_size
from rnn_jax.models.common import check_targets
from rnn_jax.precision import bcast

Array = jax.Array

READOUTS = ("linear", "tanh", "maxout")


class Memory(NamedTuple):
    """The encoded source, every leaf batch-major (tile it for a beam search with `tile_memory`).

    Attributes:
      states: ``[B, S, M]`` the top encoder layer's outputs (both directions concatenated), zero past each
        source's length.
      mask: ``[B, S]`` bool, True on real source positions.
      carry: the decoder's initial carry, a tuple of L per-layer carries (``[B, H]``, or an `LSTMState` of
        them); batch axis 0.
      keys: ``[B, S, A]`` additive attention's precomputed ``states W_m`` (None for other attention).
      summary: ``[B, M]`` the summary vector c of a model without attention (Cho et al. 2014: the top
        encoder layer's final states), fed to every decoder step; None with attention.
    """

    states: Array
    mask: Array
    carry: Any
    keys: Array | None = None
    summary: Array | None = None


def tile_memory(memory, beam_size: int):
    """Returns `memory` (a `Memory`, or any pytree of batch-major arrays such as a captioner's) with each row
    repeated `beam_size` times (row b -> rows ``b*K .. b*K+K-1``), as a beam search tiles the carry."""
    check_size("beam_size", beam_size)
    return jax.tree.map(lambda x: jnp.repeat(x, beam_size, axis=0), memory)


# --------------------------------------------------------------------------- dense layers


def linear_init(key, in_size: int, out_size: int, *, bias: bool = True) -> dict:
    """Returns ``{'w': [in, out], 'b': [out]}`` (no 'b' without bias), w uniform in ``+-1/sqrt(in)``."""
    bound = 1.0 / math.sqrt(in_size)
    params = {"w": jax.random.uniform(key, (in_size, out_size), minval=-bound, maxval=bound)}
    if bias:
        params["b"] = jnp.zeros((out_size,))
    return params


def linear_apply(params: dict, x: Array) -> Array:
    """Returns ``x [..., in] @ w + b -> [..., out]`` in x's dtype (at least float32)."""
    dt = jnp.promote_types(x.dtype, jnp.float32)
    y = x.astype(dt) @ params["w"].astype(dt)
    return y + bcast(params["b"], y) if "b" in params else y


# --------------------------------------------------------------------------- the decoder's stack


def stacked_cell(layers: Sequence[Cell], *, masks: Sequence[Array] | None = None) -> Cell:
    """Returns one `Cell` that runs `layers` bottom to top at each step; carry: the tuple of their carries.

    Params are the bottom layer's with the others' under ``'upper'`` (a list), so the stack's ``w_ih`` is
    the bottom layer's and `rnn_jax.wrappers.feed_inputs` can wrap it. ``project_inputs`` is the bottom
    layer's (hoistable); the step's output is the top layer's. `masks`: optional ``L - 1`` arrays
    ``[B, H_out]`` multiplying the output of each layer but the top one before the next (variational
    dropout between layers: one mask per sequence, reused at every step).
    """
    first, upper = layers[0], tuple(layers[1:])
    if masks is not None and len(masks) != len(upper):
        raise ValueError(f"masks must hold {len(upper)} arrays (one between each pair of layers), got {len(masks)}")

    def init(key, input_size: int) -> dict:
        ks = jax.random.split(key, len(layers))
        sizes = [c.output_size for c in layers[:-1]]
        return {**first.init(ks[0], input_size), "upper": [c.init(k, n) for c, k, n in zip(upper, ks[1:], sizes)]}

    def initial_carry(batch_shape=(), carry_dtype=None):
        return tuple(c.initial_carry(batch_shape, carry_dtype) for c in layers)

    def step(params, carry, proj_t):
        new, y = first.step(params, carry[0], proj_t)
        news = [new]
        for i, (cell, p, c) in enumerate(zip(upper, params["upper"], carry[1:])):
            if masks is not None:
                y = y * masks[i].astype(y.dtype)
            new, y = cell.step(p, c, cell.project_inputs(p, y))  # y [..., H_out]
            news.append(new)
        return tuple(news), y

    return Cell(init, initial_carry, first.project_inputs, step, first.kind, first.hidden_size,
                layers[-1].output_size, first.num_gates, first.dtype,
                options=freeze_options(first.options, stacked_layers=len(layers)), affine_inputs=first.affine_inputs)


# --------------------------------------------------------------------------- bridge


def bridge_init(key, in_size: int, carry_template) -> list:
    """Returns one ``{'w': [in, F], 'b': [F]}`` per leaf ``[..., F]`` of each layer of `carry_template`.

    `carry_template` is the decoder's initial carry (a tuple of per-layer carries); the result is a list
    (one per layer) of lists (one per leaf, in `jax.tree.leaves` order: an LSTM's h then c).
    """
    layers = []
    for layer in carry_template:
        leaves = jax.tree.leaves(layer)
        ks = jax.random.split(jax.random.fold_in(key, len(layers)), len(leaves))
        layers.append([linear_init(k, in_size, leaf.shape[-1]) for k, leaf in zip(ks, leaves)])
    return layers


def bridge_apply(params: list, source: Array, carry_template):
    """Returns the decoder's initial carry: each leaf ``tanh(source W + b)`` in the template's dtype.

    ``source [B, in]``; `carry_template` is the decoder's zero carry for batch ``[B]``.
    """
    out = []
    for layer_params, layer in zip(params, carry_template):
        leaves, tree = jax.tree.flatten(layer)
        new = [jnp.tanh(linear_apply(p, source)).astype(leaf.dtype) for p, leaf in zip(layer_params, leaves)]
        out.append(jax.tree.unflatten(tree, new))
    return tuple(out)


# --------------------------------------------------------------------------- readout


def readout_init(key, kind: str, in_size: int, size: int) -> dict:
    """Returns the readout's ``{'w': [in, R], 'b': [R]}`` (maxout: ``[in, 2R]``, two pieces per unit)."""
    return linear_init(key, in_size, 2 * size if kind == "maxout" else size)


def readout_apply(params: dict, kind: str, x: Array) -> Array:
    """Returns the readout of ``x [..., in]``: ``[..., R]`` by a linear layer, tanh of it, or maxout."""
    y = linear_apply(params, x)
    if kind == "tanh":
        return jnp.tanh(y)
    if kind == "maxout":  # unit j is the max of pieces 2j and 2j+1
        return jnp.max(y.reshape(y.shape[:-1] + (y.shape[-1] // 2, 2)), axis=-1)  # [..., R]
    return y


# --------------------------------------------------------------------------- loss


def token_loss(logits, targets, mask, *, label_smoothing: float = 0.0):
    """Returns ``(loss_sum, count, aux)`` of ``logits [..., V]`` against ``targets [...]`` over ``mask [...]``.

    loss_sum: the cross-entropy summed where mask is 1 (with `label_smoothing` alpha, against
    ``(1 - alpha) one_hot + alpha / V``); count: ``sum(mask)``; aux: ``nll`` (the unsmoothed sum),
    ``correct`` (masked count of argmax hits), ``predictions [...]`` (argmax ids).
    """
    check_rate("label_smoothing", label_smoothing)
    targets, mask = check_targets(targets, mask, logits.shape[:-1], logits.shape[-1], ("tgt_out", "tgt_mask"))
    mask = mask.astype(logits.dtype)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # [...]
    smoothed = nll
    if label_smoothing > 0:
        labels = optax.smooth_labels(jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype), label_smoothing)
        smoothed = optax.softmax_cross_entropy(logits, labels)
    predictions = jnp.argmax(logits, axis=-1)
    correct = jnp.sum((predictions == targets).astype(logits.dtype) * mask)
    return jnp.sum(smoothed * mask), jnp.sum(mask), {"nll": jnp.sum(nll * mask), "correct": correct,
                                                      "predictions": predictions}
