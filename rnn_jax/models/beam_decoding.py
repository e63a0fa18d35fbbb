"""The best beam-search hypothesis of any encoder-decoder model of this package (`rnn_jax.beam_search`).

A model qualifies when its ``encode`` returns a batch-major memory NamedTuple with a ``carry`` (the
decoder's initial carry, batch axis 0) and its ``step_fn(params, memory, return_aux=...)`` is
`rnn_jax.decoding`'s step over that memory: `rnn_jax.models.seq2seq.Seq2Seq` (translation) and
`rnn_jax.models.captioner.Captioner` (captioning) do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnn_jax.beam_search import beam_search
from rnn_jax.models.seq2seq_layers import tile_memory


def beam_decode(model, params, memory, max_len: int, *, beam_size: int, length_penalty: float = 1.0,
                return_aux: bool = False):
    """Returns ``(tokens [B, max_len], aux [B, max_len, ...] or None)``: the best hypothesis of each row.

    Beam search of width `beam_size` from ``model.bos_id`` over the encoded `memory` (its rows tiled K
    times, as the search tiles the carry), hypotheses ranked by ``log p / len**length_penalty``; one that
    never emits eos competes at length `max_len`. After eos the tokens are ``model.pad_id`` and the aux
    rows zero. With `return_aux` the step's aux (attention weights) behind each emitted token.
    """
    batch = jax.tree.leaves(memory.carry)[0].shape[0]
    step = model.step_fn(params, tile_memory(memory, beam_size), return_aux=return_aux)
    bos = jnp.full((batch,), model.bos_id, jnp.int32)
    result = beam_search(step, memory.carry, bos, max_len, beam_size=beam_size, eos_id=model.eos_id,
                         pad_id=model.pad_id, length_penalty=length_penalty, return_aux=return_aux)
    return result.tokens[:, 0], None if result.aux is None else result.aux[:, 0]
