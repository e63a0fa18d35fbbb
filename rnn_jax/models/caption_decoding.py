"""Captioning with a `rnn_jax.models.captioner.Captioner` by beam search (`rnn_jax.beam_search`)."""

from __future__ import annotations

from rnn_jax.models.beam_decoding import beam_decode


def beam_caption(model, params, features, max_len: int, *, beam_size: int, length_penalty: float = 1.0):
    """Returns ``(tokens [B, max_len], alphas [B, max_len, S] or None)``: each image's best caption.

    Beam search of width `beam_size` over ``features`` (``[B, D]`` or ``[B, S, D]``), hypotheses ranked by
    ``log p / len**length_penalty``; one that never emits eos competes at length `max_len`. After eos the
    tokens are `model.pad_id` and the alpha rows zero. `alphas` (Show, Attend and Tell) are the weights over
    the grid that made each emitted token; None for Show and Tell. jit it with `model`, `max_len`,
    `beam_size` static.
    """
    return beam_decode(model, params, model.encode(params, features), max_len, beam_size=beam_size,
                       length_penalty=length_penalty, return_aux=model.attends)
