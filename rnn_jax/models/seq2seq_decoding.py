"""Translating with a `rnn_jax.models.seq2seq.Seq2Seq` by beam search (`rnn_jax.beam_search`)."""

from __future__ import annotations

import jax.numpy as jnp

from rnn_jax.beam_search import beam_search
from rnn_jax.models.seq2seq_layers import tile_memory


def beam_translate(model, params, src, src_lengths, max_len: int, *, beam_size: int, length_penalty: float = 1.0):
    """Returns ``(tokens [B, max_len], attention [B, max_len, S] or None)``: each source's best hypothesis.

    Beam search of width `beam_size` over ``src [B, S]`` with ``src_lengths [B]``, hypotheses ranked by
    ``log p / len**length_penalty``; a hypothesis that never emits eos competes at length `max_len`.
    After eos the tokens are `model.pad_id` and the attention rows zero. `attention` holds, for a model
    with attention, the weights over the source that made each emitted token (None without attention).
    jit it with `model`, `max_len`, `beam_size` static.
    """
    memory = model.encode(params, src, src_lengths)
    with_attention = model.attention is not None
    step = model.step_fn(params, tile_memory(memory, beam_size), return_aux=with_attention)
    bos = jnp.full((src.shape[0],), model.bos_id, jnp.int32)
    result = beam_search(step, memory.carry, bos, max_len, beam_size=beam_size, eos_id=model.eos_id,
                         pad_id=model.pad_id, length_penalty=length_penalty, return_aux=with_attention)
    return result.tokens[:, 0], None if result.aux is None else result.aux[:, 0]
