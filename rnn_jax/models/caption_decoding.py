"""Captioning with a `rnn_jax.models.captioner.Captioner` by beam search (`rnn_jax.beam_search`)."""

from __future__ import annotations

import jax.numpy as jnp

from rnn_jax.beam_search import beam_search
from rnn_jax.models.seq2seq_layers import tile_memory


def beam_caption(model, params, features, max_len: int, *, beam_size: int, length_penalty: float = 1.0):
    """Returns ``(tokens [B, max_len], alphas [B, max_len, S] or None)``: each image's best caption.

    Beam search of width `beam_size` over ``features`` (``[B, D]`` or ``[B, S, D]``), hypotheses ranked by
    ``log p / len**length_penalty``; one that never emits eos competes at length `max_len`. After eos the
    tokens are `model.pad_id` and the alpha rows zero. `alphas` (Show, Attend and Tell) are the weights over
    the grid that made each emitted token; None for Show and Tell. jit it with `model`, `max_len`,
    `beam_size` static.
    """
    memory = model.encode(params, features)
    step = model.step_fn(params, tile_memory(memory, beam_size), return_aux=model.attends)
    bos = jnp.full((memory.batch_size,), model.bos_id, jnp.int32)
    result = beam_search(step, memory.carry, bos, max_len, beam_size=beam_size, eos_id=model.eos_id,
                         pad_id=model.pad_id, length_penalty=length_penalty, return_aux=model.attends)
    return result.tokens[:, 0], None if result.aux is None else result.aux[:, 0]
