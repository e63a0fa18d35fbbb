"""Encoder-decoder translation models: Cho et al. (2014), Bahdanau et al. (2015), Luong et al. (2015) scores.

One `Seq2Seq` spec covers the three by its fields (`cho2014`, `bahdanau2015` and `luong2015` set them):

* **encoder**: source embedding -> a `rnn_jax.rnn.Stack` of ``encoder_layers`` (bidirectional if asked, each
  direction within the source's own length); its top layer's outputs are the memory ``states [B, S, M]``
  (M = D * H) and its final states (forward after the last token, backward after the first) the summary c.
* **bridge** (the decoder's initial state, every layer, every carry leaf): ``'final'`` ``tanh(W c + b)``
  with c = ``[h->_N; h<-_1]`` (Cho's ``tanh(W c)`` when unidirectional); ``'backward'`` ``tanh(W_s h<-_1)``
  (Bahdanau eq. A.2); ``'mean'`` tanh of W times the mean of the states over real positions; ``'zeros'``.
* **decoder**: ``decoder_layers`` cells in one step (`rnn_jax.models.seq2seq_layers.stacked_cell`), input
  ``[embed(y_{t-1}); context_t]``:

  - ``attention=None`` (Cho 2014): context_t = c at every step, so ``s_t = f(y_{t-1}, s_{t-1}, c)``; c is
    part of the known input, its projection hoisted with the embedding's.
  - ``'additive'`` (Bahdanau), ``'dot'``, ``'general'`` (Luong's scores): context_t attends from the top
    layer's previous state ``s_{t-1}`` over the masked memory (`rnn_jax.attention.Attention`), fed in by
    `rnn_jax.wrappers.feed_inputs`, so the decoder is one library cell and teacher forcing one scan. With
    'dot'/'general' this keeps **Bahdanau's ordering** (attend before the step, from ``s_{t-1}``) with
    Luong's multiplicative scores; Luong's own scheme (attend after the step from ``s_t``, input feeding
    of ``tanh(W_c [c_t; s_t])``) is not implemented.
* **output**: a readout over ``[s_t; context_t; embed(y_{t-1})]`` (``readout``: ``'maxout'`` as both
  papers, ``'tanh'`` or ``'linear'``; size R = ``readout_size``), dropout, then ``logits = r W_o + b``
  ``[..., V_tgt]``; with ``tie_embeddings`` ``W_o`` is the target embedding's transpose (R == embed_dim).

Checks, at trace time (so under jit too): ``src``, ``tgt_in``, ``tgt_out`` and decoding ``tokens`` are integer
ids of their documented shapes, ``src_lengths`` integers ``[B]``; only when concrete: ids in ``[0, V)`` of
their vocabulary and ``src_lengths`` in ``[1, S]``. B = 0 and a target of T = 0 give empty logits.

Padding: source positions past ``src_lengths`` never reach an output (the stack masks them, attention
gives them weight exactly 0, the mean bridge divides by the length). A length-0 source is a ValueError
when the lengths are concrete; under jit it gets zero attention weights, a zero context and the bridge
of zero vectors. Targets: `loss` sums over ``tgt_mask``; positions past a target's end are decoded but
never counted. Dropout (``dropout`` rate, in training): source and target embeddings, between encoder
layers (the stack's), between decoder layers (one mask per sequence, reused at every step) and on the
readout before the output layer; keys from `rnn_jax.dropout.split_named` (source / target) and
`rnn_jax.models.common.embed_tokens`.

Decoding: `step_fn` is `rnn_jax.decoding`'s ``(carry, tokens [B]) -> (carry, logits [B, V])`` (with
``return_aux`` also the attention weights ``[B, S]``); the carry is ``memory.carry`` (a tuple of per-layer
carries, batch axis 0). A beam search of width K takes the untiled carry and tiles it itself; the memory
the step closes over must be tiled to match::

    memory = model.encode(params, src, src_lengths)
    result = beam_search(model.step_fn(params, tile_memory(memory, K)), memory.carry, bos, max_len,
                         beam_size=K, eos_id=model.eos_id, pad_id=model.pad_id)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import dropout as dropout_lib
from rnn_jax import registry
from rnn_jax import rnn as rnn_lib
from rnn_jax.attention import Attention, AttentionMemory
from rnn_jax.cells import carry_h
from rnn_jax.checks import check_choice, check_ids, check_rate, check_size, concrete
from rnn_jax.decoding import greedy
from rnn_jax.models.common import check_targets, embed_tokens, freeze_cell
from rnn_jax.models.seq2seq_layers import (READOUTS, Memory, bridge_apply, bridge_init, linear_apply, readout_apply,
                                           readout_init, stacked_cell, tile_memory, token_loss)
from rnn_jax.precision import acc_dtype
from rnn_jax.sequence import check_lengths, lengths_to_mask
from rnn_jax.unroll import unroll
from rnn_jax.wrappers import feed_inputs

CELLS = ("gru", "lstm")
ATTENTIONS = (None, "additive", "dot", "general")
BRIDGES = ("final", "backward", "mean", "zeros")

__all__ = ["Seq2Seq", "Memory", "tile_memory", "cho2014", "bahdanau2015", "luong2015"]


@dataclasses.dataclass(frozen=True)
class Seq2Seq:
    """Hyperparameters of an encoder-decoder (see the module docstring); hashable, a jit static argument.

    Attributes:
      src_vocab, tgt_vocab: source and target vocabulary sizes.
      embed_dim: E of both embeddings.
      hidden_size: H of every encoder direction and decoder layer.
      encoder_layers, decoder_layers: layers of each side.
      cell: ``'gru'`` or ``'lstm'`` (both sides); cell_options: its options, e.g. ``{'variant': 'cho'}``.
      attention: None (Cho 2014), ``'additive'``, ``'dot'`` (needs M == H: a unidirectional encoder) or
        ``'general'``.
      attn_size: A of additive attention (None: H); None for the others.
      bidirectional: a bidirectional encoder (M = 2H).
      bridge: ``'final'``, ``'backward'`` (bidirectional only), ``'mean'`` or ``'zeros'``.
      readout: ``'maxout'``, ``'tanh'`` or ``'linear'``; readout_size: R (None: H, or E when tied).
      dropout: the rate at every dropout site.
      tie_embeddings: the output layer is the target embedding's transpose (needs R == embed_dim).
      pad_id, bos_id, eos_id: target ids (bos starts decoding; eos ends it; pad follows it).
      dtype: compute dtype of the recurrent layers and attention (None: float32).
    """

    src_vocab: int
    tgt_vocab: int
    embed_dim: int
    hidden_size: int
    encoder_layers: int = 1
    decoder_layers: int = 1
    cell: str = "gru"
    cell_options: Any = ()
    attention: str | None = None
    attn_size: int | None = None
    bidirectional: bool = False
    bridge: str = "final"
    readout: str = "tanh"
    readout_size: int | None = None
    dropout: float = 0.0
    tie_embeddings: bool = False
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    dtype: Any = None

    def __post_init__(self):
        check_choice("cell", self.cell, CELLS)
        freeze_cell(self)
        for name in ("src_vocab", "tgt_vocab", "embed_dim", "hidden_size", "encoder_layers", "decoder_layers"):
            check_size(name, getattr(self, name))
        for name in ("pad_id", "bos_id", "eos_id"):
            if check_size(name, getattr(self, name), 0) >= self.tgt_vocab:
                raise ValueError(f"{name} must lie in [0, {self.tgt_vocab}) (tgt_vocab), got {getattr(self, name)}")
        check_choice("attention", self.attention, ATTENTIONS)
        check_choice("bridge", self.bridge, BRIDGES)
        check_choice("readout", self.readout, READOUTS)
        check_rate("dropout", self.dropout)
        if self.readout_size is not None:
            check_size("readout_size", self.readout_size)
        if self.bridge == "backward" and not self.bidirectional:
            raise ValueError("bridge='backward' (tanh(W h<-_1)) needs bidirectional=True")
        if self.attention == "dot" and self.memory_size != self.hidden_size:
            raise ValueError(f"attention='dot' needs the encoder states' size {self.memory_size} (D * H) to equal "
                             f"hidden_size {self.hidden_size}: use bidirectional=False, or 'general'/'additive'")
        if self.attn_size is not None and self.attention != "additive":
            raise ValueError(f"attn_size is additive attention's; attention={self.attention!r} takes None, "
                             f"got {self.attn_size!r}")
        if self.tie_embeddings and self.pre_output_size != self.embed_dim:
            raise ValueError(f"tie_embeddings needs readout_size == embed_dim ({self.embed_dim}), got "
                             f"{self.pre_output_size}")
        self.attention_spec  # noqa: B018 (builds the Attention spec now, so its size checks run here)

    # --- structure
    @property
    def encoder(self) -> rnn_lib.Stack:
        """The encoder's stack spec (batch-first)."""
        return rnn_lib.Stack(self.embed_dim, self.hidden_size, self.encoder_layers, cell_factory=self.cell,
                             cell_options=self.cell_options, batch_first=True, dropout=self.dropout,
                             bidirectional=self.bidirectional, dtype=self.dtype)

    @property
    def memory_size(self) -> int:
        """M = D * H: the size of an encoder state, of the summary c and of a context."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    @property
    def pre_output_size(self) -> int:
        """R: the readout's size (``readout_size``; None: E when tied, else H)."""
        if self.readout_size is not None:
            return self.readout_size
        return self.embed_dim if self.tie_embeddings else self.hidden_size

    @property
    def attention_spec(self) -> Attention | None:
        """The `rnn_jax.attention.Attention` from the decoder's state (Q = H) over the states (M); or None."""
        if self.attention is None:
            return None
        attn_size = (self.attn_size or self.hidden_size) if self.attention == "additive" else None
        return Attention(self.attention, self.hidden_size, self.memory_size, attn_size, dtype=self.dtype)

    @property
    def decoder_input_size(self) -> int:
        """The decoder's known input size: E, plus M for the summary c without attention."""
        return self.embed_dim + (self.memory_size if self.attention is None else 0)

    def decoder_cell(self, memory: Memory | None = None, masks=None):
        """Returns the decoder as one `Cell` (carry: a tuple of L layer carries) attending over `memory`.

        With attention the cell is `rnn_jax.wrappers.feed_inputs` of the stack, fed the context
        ``[B, M]`` from the top layer's previous h, emitting ``[s_t; context_t]`` ``[..., H + M]``;
        without, the stack itself (``[..., H]``). `memory` may be None for ``init`` and ``initial_carry``.
        `masks`: optional dropout masks between decoder layers (`stacked_cell`).
        """
        layer = registry.make_cell(self.cell, self.hidden_size, self.cell_options, dtype=self.dtype)
        cell = stacked_cell([layer] * self.decoder_layers, masks=masks)
        att = self.attention_spec
        if att is None:
            return cell

        def feed_fn(feed_params, carry):
            prepared = AttentionMemory(memory.states, memory.keys)
            return att.apply(feed_params, carry_h(carry[-1]), prepared, memory.mask)[0]  # [B, M]

        return feed_inputs(cell, feed_fn, self.memory_size, feed_init=att.init, emit_feed=True)

    def init(self, key) -> dict:
        """Returns ``{'src_embed' [Vs, E], 'tgt_embed' [Vt, E], 'encoder', 'decoder', 'bridge' (unless
        zeros), 'readout': {w [H + M + E, R (2R maxout)], b}, 'out': {'w' [R, Vt] (untied), 'b' [Vt]}}``.

        Embeddings N(0, 0.1^2); the stacks as their cells; the attention under ``decoder['feed']``.
        """
        k_s, k_t, k_e, k_d, k_b, k_r, k_o = jax.random.split(key, 7)
        cell = self.decoder_cell()
        params = {"src_embed": 0.1 * jax.random.normal(k_s, (self.src_vocab, self.embed_dim)),
                  "tgt_embed": 0.1 * jax.random.normal(k_t, (self.tgt_vocab, self.embed_dim)),
                  "encoder": self.encoder.init(k_e),
                  "decoder": cell.init(k_d, self.decoder_input_size),
                  "readout": readout_init(k_r, self.readout, self.hidden_size + self.memory_size + self.embed_dim,
                                          self.pre_output_size),
                  "out": {"b": jnp.zeros((self.tgt_vocab,))}}
        if not self.tie_embeddings:
            params["out"] = readout_init(k_o, "linear", self.pre_output_size, self.tgt_vocab)
        if self.bridge != "zeros":
            source_size = self.hidden_size if self.bridge == "backward" else self.memory_size
            params["bridge"] = bridge_init(k_b, source_size, cell.initial_carry(()))
        return params

    # --- encoding
    def _check_source(self, src, src_lengths):
        """Returns ``(src [B, S], src_lengths [B] int32)`` after checking shapes, range and (concrete) >= 1."""
        src = check_ids("src", src, self.src_vocab, "[batch, src_len]")
        lengths = check_lengths(src_lengths, src.shape[0], src.shape[1], name="src_lengths")
        value = concrete(src_lengths)
        if value is not None:
            empty = np.flatnonzero(value == 0).tolist()
            if empty:
                raise ValueError(f"src_lengths must be >= 1 (a source needs a token to encode); rows {empty} have "
                                 f"length 0")
        return src, lengths

    def _bridge(self, params, final, states, lengths, batch: int):
        """Returns the decoder's initial carry from the encoder's final states and ``states [B, S, M]``."""
        template = self.decoder_cell().initial_carry((batch,))
        if self.bridge == "zeros":
            return template
        h_n = carry_h(final).astype(states.dtype)  # [L*D, B, H]
        D = 2 if self.bidirectional else 1
        if self.bridge == "final":
            source = jnp.concatenate(list(h_n[-D:]), axis=-1)  # [B, D*H]
        elif self.bridge == "backward":
            source = h_n[-1]  # [B, H], the backward direction after the first token
        else:
            count = jnp.maximum(lengths, 1).astype(states.dtype)[:, None]  # [B, 1]
            source = jnp.sum(states, axis=1) / count  # [B, M]; states are zero past each length
        return bridge_apply(params["bridge"], source, template)

    def encode(self, params, src, src_lengths, *, dropout_key=None, deterministic: bool = True) -> Memory:
        """Returns the `Memory` of ``src [B, S]`` (int) with ``src_lengths [B]`` (each in [1, S]).

        Memory: ``states [B, S, M]``, ``mask [B, S]``, the decoder's initial ``carry``, additive attention's
        ``keys [B, S, A]`` and (no attention) the ``summary [B, M]``; all batch-major.
        """
        src, lengths = self._check_source(src, src_lengths)
        x, enc_key, _ = embed_tokens(params["src_embed"], src, rate=self.dropout, dropout_key=dropout_key,
                                     deterministic=deterministic, name="src")  # [B, S, E]
        states, final = self.encoder.apply(params["encoder"], x, lengths, dropout_key=enc_key,
                                           deterministic=deterministic)  # [B, S, M]
        states = states.astype(acc_dtype(states.dtype))
        D = 2 if self.bidirectional else 1
        summary = jnp.concatenate(list(carry_h(final)[-D:]), axis=-1).astype(states.dtype)  # [B, M]
        carry = self._bridge(params, final, states, lengths, src.shape[0])
        keys = None
        if self.attention == "additive":
            keys = self.attention_spec.prepare(params["decoder"]["feed"], states).keys  # [B, S, A]
        return Memory(states, lengths_to_mask(lengths, src.shape[1]), carry, keys,
                      summary if self.attention is None else None)

    # --- decoding
    def _context(self, memory: Memory, y):
        """Returns ``(s [..., H], context [..., M])`` from the decoder cell's output ``y``."""
        if self.attention is not None:
            return y[..., :self.hidden_size], y[..., self.hidden_size:]
        c = memory.summary  # [B, M], the same at every step
        c = jnp.expand_dims(c, tuple(range(1, y.ndim - 1)))  # [B, 1.., M]
        return y, jnp.broadcast_to(c, y.shape[:-1] + c.shape[-1:])

    def _inputs(self, memory: Memory, emb):
        """Returns the decoder's known inputs: ``emb [B, (T,) E]``, with the summary c without attention."""
        if self.attention is not None:
            return emb
        return jnp.concatenate([emb, self._context(memory, emb)[1].astype(emb.dtype)], axis=-1)  # [.., E + M]

    def _logits(self, params, memory: Memory, y, emb, out_key=None):
        """Returns ``logits [..., V]`` of the readout over ``[s; context; emb]``, dropout by `out_key`."""
        s, ctx = self._context(memory, y)
        dt = jnp.result_type(s, ctx, emb, jnp.float32)
        r = readout_apply(params["readout"], self.readout,
                          jnp.concatenate([s.astype(dt), ctx.astype(dt), emb.astype(dt)], axis=-1))  # [..., R]
        if out_key is not None:
            r = dropout_lib.dropout(out_key, self.dropout, r)
        w = params["tgt_embed"].T if self.tie_embeddings else params["out"]["w"]  # [R, V]
        return linear_apply({"w": w, "b": params["out"]["b"]}, r)

    def decode_step(self, params, memory: Memory, carry, tokens):
        """Returns ``(carry, logits [B, V], attn_weights [B, S])`` after feeding ``tokens [B]`` (y_{t-1}).

        `carry` is the decoder's (``memory.carry`` at the first step, batch axis 0); the weights are those
        that made this step's context (exactly 0 on padding; None without attention).
        """
        tokens = check_ids("tokens", tokens, self.tgt_vocab, "[B]", shape=memory.mask.shape[:1])
        emb = jnp.take(params["tgt_embed"], tokens, axis=0)  # [B, E]
        cell, p = self.decoder_cell(memory), params["decoder"]
        new, y = cell.step(p, carry, cell.project_inputs(p, self._inputs(memory, emb)))  # y [B, H (+ M)]
        weights = None
        if self.attention is not None:  # the feed's own computation: under jit XLA computes it once
            prepared = AttentionMemory(memory.states, memory.keys)
            weights = self.attention_spec.apply(p["feed"], carry_h(carry[-1]), prepared, memory.mask)[1]
        return new, self._logits(params, memory, y, emb), weights

    def step_fn(self, params, memory: Memory, *, return_aux: bool = False):
        """Returns ``step(carry, tokens [B]) -> (carry, logits [B, V])`` over `memory` for `rnn_jax.decoding`
        (with `return_aux`: ``(carry, logits, attn_weights [B, S])``, the beam search's aux)."""

        def step(carry, tokens):
            carry, logits, weights = self.decode_step(params, memory, carry, tokens)
            return (carry, logits, weights) if return_aux else (carry, logits)

        return step

    def greedy_translate(self, params, src, src_lengths, max_len: int):
        """Returns ``tokens [B, max_len]``: greedy translations of ``src [B, S]``, `pad_id` after `eos_id`."""
        memory = self.encode(params, src, src_lengths)
        bos = jnp.full((memory.mask.shape[0],), self.bos_id, jnp.int32)
        _, tokens = greedy(self.step_fn(params, memory), memory.carry, bos, max_len, eos_id=self.eos_id,
                           pad_id=self.pad_id)
        return tokens

    # --- training
    def _between_masks(self, key, batch: int):
        """Returns the decoder's between-layer dropout masks ``[B, H]`` (one per pair of layers) or None."""
        if key is None or self.decoder_layers == 1:
            return None
        return [dropout_lib.dropout_mask(k, self.dropout, (batch, self.hidden_size), jnp.float32)
                for k in jax.random.split(key, self.decoder_layers - 1)]

    def _check_tgt_in(self, tgt_in, batch: int):
        """Returns ``tgt_in`` after checking it holds target ids ``[batch, tgt_len]``."""
        tgt_in = check_ids("tgt_in", tgt_in, self.tgt_vocab, "[batch, tgt_len]")
        if tgt_in.shape[0] != batch:
            raise ValueError(f"tgt_in must have shape [batch={batch}, tgt_len], got {tgt_in.shape}")
        return tgt_in

    def apply(self, params, src, src_lengths, tgt_in, *, dropout_key=None, deterministic: bool = True):
        """Returns ``logits [B, T, V]`` of teacher forcing ``tgt_in [B, T]`` (bos + y) on ``src [B, S]``.

        One scan over the target (`rnn_jax.unroll` of `decoder_cell`); step t equals `decode_step` fed
        ``tgt_in[:, t]``. Dropout needs `dropout_key` when ``not deterministic`` and ``dropout > 0``.
        Shapes and dtypes are checked at trace time, id and length ranges only when concrete (module docstring).
        """
        train = dropout_lib.is_active(self.dropout, deterministic)
        if train and dropout_key is None:
            raise ValueError("dropout_key is required when deterministic=False and dropout > 0")
        keys = dropout_lib.split_named(dropout_key if train else None, ("source", "target"))
        memory = self.encode(params, src, src_lengths, dropout_key=keys["source"], deterministic=deterministic)
        tgt_in = self._check_tgt_in(tgt_in, memory.mask.shape[0])
        emb, dec_key, out_key = embed_tokens(params["tgt_embed"], tgt_in, rate=self.dropout, dropout_key=keys["target"],
                                             deterministic=deterministic, name="tgt_in")  # [B, T, E]
        cell = self.decoder_cell(memory, self._between_masks(dec_key, tgt_in.shape[0]))
        _, ys = unroll(cell, params["decoder"], self._inputs(memory, emb), carry=memory.carry)  # [B, T, H (+ M)]
        return self._logits(params, memory, ys, emb, out_key)

    def loss(self, params, batch, *, dropout_key=None, deterministic: bool = True, label_smoothing: float = 0.0):
        """Returns ``(loss_sum, count, aux)``: cross-entropy summed over real target tokens and their count.

        `batch`: ``src [B, S]``, ``src_lengths [B]``, ``tgt_in [B, T]`` (bos + y), ``tgt_out [B, T]``
        (y + eos), ``tgt_mask [B, T]`` (1.0 on real tokens). With `label_smoothing` alpha the target is
        ``(1 - alpha) one_hot + alpha / V``. aux: ``nll`` (the unsmoothed sum), ``correct`` (masked count of
        argmax hits) and ``predictions [B, T]``.
        """
        src = check_ids("src", batch["src"], self.src_vocab, "[batch, src_len]")  # all checked before computing
        tgt_in = self._check_tgt_in(batch["tgt_in"], src.shape[0])
        check_targets(batch["tgt_out"], batch["tgt_mask"], tgt_in.shape, self.tgt_vocab, ("tgt_out", "tgt_mask"))
        logits = self.apply(params, batch["src"], batch["src_lengths"], batch["tgt_in"], dropout_key=dropout_key,
                            deterministic=deterministic)  # [B, T, V]
        return token_loss(logits, batch["tgt_out"], batch["tgt_mask"], label_smoothing=label_smoothing)


# --------------------------------------------------------------------------- the papers' settings


def cho2014(src_vocab: int, tgt_vocab: int, embed_dim: int = 100, hidden_size: int = 1000, **overrides) -> Seq2Seq:
    """Returns Cho et al. (2014)'s RNN encoder-decoder: Cho-form GRUs, no attention (c fed to every step and
    to the readout), ``tanh(W c)`` bridge, maxout readout (sizes from the paper; any field overridable)."""
    fields = dict(cell="gru", cell_options={"variant": "cho"}, attention=None, bidirectional=False, bridge="final",
                  readout="maxout", readout_size=500)
    return Seq2Seq(src_vocab, tgt_vocab, embed_dim, hidden_size, **{**fields, **overrides})


def bahdanau2015(src_vocab: int, tgt_vocab: int, embed_dim: int = 620, hidden_size: int = 1000,
                 **overrides) -> Seq2Seq:
    """Returns Bahdanau et al. (2015)'s RNNsearch: bidirectional Cho-form GRU encoder, additive attention from
    ``s_{t-1}``, ``tanh(W_s h<-_1)`` bridge, maxout readout of 500 (sizes from the paper)."""
    fields = dict(cell="gru", cell_options={"variant": "cho"}, attention="additive", bidirectional=True,
                  bridge="backward", readout="maxout", readout_size=500)
    return Seq2Seq(src_vocab, tgt_vocab, embed_dim, hidden_size, **{**fields, **overrides})


def luong2015(src_vocab: int, tgt_vocab: int, embed_dim: int = 1000, hidden_size: int = 1000,
              **overrides) -> Seq2Seq:
    """Returns Luong et al. (2015)'s stacked LSTMs (4 layers each) with 'general' scores, in Bahdanau's
    ordering (see the module docstring), final-state bridge and a tanh readout (their ``h~_t = tanh(W_c [c_t;
    h_t])``, here with the previous target's embedding in the readout's input too)."""
    fields = dict(cell="lstm", attention="general", encoder_layers=4, decoder_layers=4, bidirectional=False,
                  bridge="final", readout="tanh")
    return Seq2Seq(src_vocab, tgt_vocab, embed_dim, hidden_size, **{**fields, **overrides})
