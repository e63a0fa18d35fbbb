"""Translating with a `rnn_jax.models.seq2seq.Seq2Seq` by beam search (`rnn_jax.beam_search`)."""

from __future__ import annotations

from rnn_jax.models.beam_decoding import beam_decode


def beam_translate(model, params, src, src_lengths, max_len: int, *, beam_size: int, length_penalty: float = 1.0):
    """Returns ``(tokens [B, max_len], attention [B, max_len, S] or None)``: each source's best hypothesis.

    Beam search of width `beam_size` over ``src [B, S]`` with ``src_lengths [B]``, hypotheses ranked by
    ``log p / len**length_penalty``; a hypothesis that never emits eos competes at length `max_len`.
    After eos the tokens are `model.pad_id` and the attention rows zero. `attention` holds, for a model
    with attention, the weights over the source that made each emitted token (None without attention).
    jit it with `model`, `max_len`, `beam_size` static.
    """
    return beam_decode(model, params, model.encode(params, src, src_lengths), max_len, beam_size=beam_size,
                       length_penalty=length_penalty, return_aux=model.attention is not None)
