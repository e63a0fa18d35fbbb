"""Image captioning decoders: Show and Tell (Vinyals et al. 2015) and Show, Attend and Tell (Xu et al. 2015).

`Captioner` decodes a caption from image features: precomputed ones (``[B, D]`` a vector or ``[B, S, D]`` a
grid of S slots, e.g. one ``.npy`` per image from any pretrained encoder) or the grid of a jointly trained
`rnn_jax.models.image_encoder.ConvEncoder`. The decoder is one LSTM (``registry.make_cell('lstm', H)``):

* ``'show_tell'``: the image embedding ``x_{-1} = v W_I + b`` is the LSTM's **first input**, from a zero
  state (the image is seen only at t = -1); the carry after that step is the decoder's initial carry, and
  bos, y_1, ... are fed after it: input ``E y_{t-1}``, ``logits = h_t W_o + b``. A grid is mean-pooled to
  the vector v.
* ``'show_attend_tell'`` (needs a grid; no mask, every slot real): ``h_0, c_0 = tanh(f_init_h(mean_i a_i)),
  tanh(f_init_c(mean_i a_i))`` (Xu sec. 3.1.2, one tanh layer each: `seq2seq_layers.bridge_apply`); at
  step t additive attention (`rnn_jax.attention.Attention`, keys precomputed) from ``h_{t-1}`` gives
  ``alpha_t [B, S]``, the context ``z_t = beta_t sum_i alpha_ti a_i`` with the gating scalar
  ``beta_t = sigmoid(h_{t-1} W_beta + b_beta)`` (``gate``; 1 without), fed with the embedding
  (`rnn_jax.wrappers.feed_inputs`: input ``[E y_{t-1}; z_t]``); the deep output (eq. 7) is
  ``logits = L_o(E y_{t-1} + L_h h_t + L_z z_t)``.

Teacher forcing (`apply`) is one `lax.scan` over the caption of the step `decode_step` takes (the embedding
and its input projection hoisted before it, the output layer after it); evaluation decodes freely,
greedily (`greedy_caption`) or by beam search (`rnn_jax.models.caption_decoding.beam_caption`), never by
teacher forcing. `loss` adds Xu's doubly stochastic regulariser (eq. 14) ``lambda sum_i (1 - sum_t
alpha_ti)^2`` per caption over its real steps.

Dropout (``dropout`` rate, in training): the word embeddings, Show and Tell's image embedding, and before
the output layer (on h_t, or on SAT's deep-output sum); keys from `rnn_jax.dropout.split_named` and
`rnn_jax.models.common.embed_tokens`. Decoding: `step_fn` is `rnn_jax.decoding`'s ``(carry, tokens [B]) ->
(carry, logits [B, V])`` (``return_aux``: also alpha ``[B, S]``); every leaf of `CaptionMemory` is
batch-major, so `rnn_jax.models.seq2seq_layers.tile_memory` lays it out for a beam of K.

Checks, at trace time (so under jit too): ``features`` floating point (float16/bfloat16/float32/float64,
computed in float32; ints and complex numbers are refused) of shape ``[B, D]`` or ``[B, S >= 1, D]``; caption
ids integer ``[B, T]`` (decoding: ``[B]``); only when concrete: ids in ``[0, V)``. B = 0 and T = 0 give empty
logits.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnn_jax import dropout as dropout_lib
from rnn_jax import registry
from rnn_jax.attention import Attention, AttentionMemory
from rnn_jax.cells import carry_h
from rnn_jax.checks import check_choice, check_floating, check_ids, check_rate, check_size
from rnn_jax.decoding import greedy
from rnn_jax.models.common import check_targets, embed_tokens
from rnn_jax.models.seq2seq_layers import bridge_apply, bridge_init, linear_apply, linear_init, token_loss
from rnn_jax.wrappers import feed_inputs

DECODERS = ("show_tell", "show_attend_tell")
IMAGE_SITES = ("image", "caption")

__all__ = ["Captioner", "CaptionMemory", "attention_penalty"]


class CaptionMemory(NamedTuple):
    """What the decoder reads of the image, every leaf batch-major (`seq2seq_layers.tile_memory` tiles it).

    Attributes:
      carry: the decoder's initial `LSTMState` (``h, c [B, H]``).
      grid: ``[B, S, D]`` the annotation vectors attended over (None for Show and Tell).
      keys: ``[B, S, A]`` additive attention's precomputed ``grid W_m`` (None for Show and Tell).
    """

    carry: Any
    grid: jax.Array | None = None
    keys: jax.Array | None = None

    @property
    def batch_size(self) -> int:
        """B, the images this memory holds."""
        return carry_h(self.carry).shape[0]


def attention_penalty(alphas, mask):
    """Returns Xu's ``sum_b [row b has a real step] sum_i (1 - sum_{t real} alphas[b, t, i])^2`` (a scalar).

    ``alphas [B, T, S]`` the attention weights of each step, ``mask [B, T]`` 1.0 on real steps; a row with
    no real step (a padding row) adds nothing.
    """
    mask = jnp.asarray(mask).astype(alphas.dtype)
    coverage = jnp.einsum("bt,bts->bs", mask, alphas)  # [B, S]
    real = jnp.any(mask > 0, axis=1).astype(alphas.dtype)[:, None]  # [B, 1]
    return jnp.sum(real * (1.0 - coverage) ** 2)


@dataclasses.dataclass(frozen=True)
class Captioner:
    """Hyperparameters of a caption decoder (see the module docstring); hashable, a jit static argument.

    Attributes:
      vocab: V; embed_dim: E; hidden_size: H of the LSTM; feature_size: D of an image feature.
      decoder: ``'show_tell'`` or ``'show_attend_tell'``.
      attn_size: A of the additive attention (None: H); show_attend_tell only (show_tell ignores it).
      gate: Xu's gating scalar beta_t on the context; show_attend_tell only (show_tell ignores it).
      dropout: the rate at every dropout site.
      pad_id, bos_id, eos_id: caption ids (bos starts decoding; eos ends it; pad follows it).
      tie_embeddings: the output layer is the embedding's transpose (Show and Tell needs H == E).
    """

    vocab: int
    embed_dim: int
    hidden_size: int
    feature_size: int
    decoder: str = "show_attend_tell"
    attn_size: int | None = None
    gate: bool = True
    dropout: float = 0.0
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    tie_embeddings: bool = False

    def __post_init__(self):
        for name in ("vocab", "embed_dim", "hidden_size", "feature_size"):
            check_size(name, getattr(self, name))
        for name in ("pad_id", "bos_id", "eos_id"):
            if check_size(name, getattr(self, name), 0) >= self.vocab:
                raise ValueError(f"{name} must lie in [0, {self.vocab}) (vocab), got {getattr(self, name)}")
        check_choice("decoder", self.decoder, DECODERS)
        check_rate("dropout", self.dropout)
        if self.attn_size is not None:  # show_tell ignores it (and gate), so one config can switch decoders
            check_size("attn_size", self.attn_size)
        if self.tie_embeddings and not self.attends and self.hidden_size != self.embed_dim:
            raise ValueError(f"tie_embeddings with decoder='show_tell' needs hidden_size == embed_dim "
                             f"({self.embed_dim}), got {self.hidden_size}")

    # --- structure
    @property
    def attends(self) -> bool:
        """Whether the decoder attends over a grid (show_attend_tell)."""
        return self.decoder == "show_attend_tell"

    @property
    def attention_spec(self) -> Attention | None:
        """The additive `Attention` from h_{t-1} (Q = H) over the grid (M = D); None for Show and Tell."""
        if not self.attends:
            return None
        return Attention("additive", self.hidden_size, self.feature_size, self.attn_size or self.hidden_size)

    def _feed_init(self, key) -> dict:
        k_a, k_g = jax.random.split(key)
        feed = {"attention": self.attention_spec.init(k_a)}
        if self.gate:
            feed["gate"] = linear_init(k_g, self.hidden_size, 1)
        return feed

    def context(self, feed_params, memory: CaptionMemory, h_prev):
        """Returns ``(z_t [B, D], alpha_t [B, S])``: the gated context from ``h_prev [B, H]`` and its weights."""
        prepared = AttentionMemory(memory.grid, memory.keys)
        ctx, alpha = self.attention_spec.apply(feed_params["attention"], h_prev, prepared)  # [B, D], [B, S]
        if self.gate:
            ctx = jax.nn.sigmoid(linear_apply(feed_params["gate"], h_prev)) * ctx  # beta_t [B, 1]
        return ctx, alpha

    def decoder_cell(self, memory: CaptionMemory | None = None):
        """Returns the decoder `Cell`: the LSTM; for SAT fed ``z_t`` and emitting ``[h_t; z_t] [..., H + D]``.

        `memory` may be None for ``init`` and ``initial_carry``.
        """
        lstm = registry.make_cell("lstm", self.hidden_size)
        if not self.attends:
            return lstm

        def feed_fn(feed_params, carry):
            return self.context(feed_params, memory, carry_h(carry))[0]

        return feed_inputs(lstm, feed_fn, self.feature_size, feed_init=self._feed_init, emit_feed=True)

    def init(self, key) -> dict:
        """Returns the params (dense layers uniform in +-1/sqrt(fan_in), zero biases; embedding N(0, 0.1^2)).

        Both: ``'embed' [V, E]``; ``'decoder'``: the LSTM's ``w_ih [E (+ D), 4H]``, ``w_hh [H, 4H]``,
        ``b_ih, b_hh [4H]``; ``'out': {'w' [H or E, V] (untied only), 'b' [V]}``.
        Show and Tell: ``'image': {'w' [D, E], 'b' [E]}`` (W_I). Show, Attend and Tell: ``decoder['feed']``
        holds ``'attention': {'w_q' [H, A], 'w_m' [D, A], 'v' [A]}`` and ``'gate': {'w' [H, 1], 'b' [1]}``;
        ``'init_state': [[{'w' [D, H], 'b' [H]} (f_init_h), {'w' [D, H], 'b' [H]} (f_init_c)]]``;
        ``'deep': {'h': {'w' [H, E], 'b' [E]} (L_h), 'z': {'w' [D, E], 'b' [E]} (L_z)}``; ``out`` is L_o.
        """
        k_e, k_d, k_i, k_h, k_z, k_o = jax.random.split(key, 6)
        cell = self.decoder_cell()
        params = {"embed": 0.1 * jax.random.normal(k_e, (self.vocab, self.embed_dim)),
                  "decoder": cell.init(k_d, self.embed_dim),
                  "out": {"b": jnp.zeros((self.vocab,))}}
        if not self.tie_embeddings:
            params["out"] = linear_init(k_o, self.embed_dim if self.attends else self.hidden_size, self.vocab)
        if self.attends:
            params["init_state"] = bridge_init(k_i, self.feature_size, (cell.initial_carry(()),))
            params["deep"] = {"h": linear_init(k_h, self.hidden_size, self.embed_dim),
                              "z": linear_init(k_z, self.feature_size, self.embed_dim)}
        else:
            params["image"] = linear_init(k_i, self.feature_size, self.embed_dim)
        return params

    # --- encoding
    def _check_features(self, features):
        """Returns ``features`` (``[B, D]`` or ``[B, S, D]``) as a float array after checking its shape."""
        features = check_floating("features", features)
        D = self.feature_size
        if features.ndim not in (2, 3) or features.shape[-1] != D:
            raise ValueError(f"features must be floats of shape [batch, {D}] (a vector) or [batch, slots, {D}] "
                             f"(a grid; feature_size {D}), got {features.dtype} {features.shape}")
        if self.attends and features.ndim == 2:
            raise ValueError(f"decoder='show_attend_tell' attends over a grid: features must have shape "
                             f"[batch, slots, {D}], got a vector per image {features.shape}")
        if features.ndim == 3 and features.shape[1] == 0:
            raise ValueError(f"features must have at least one slot (a grid [batch, slots >= 1, {D}]; its mean "
                             f"and attention need one), got shape {features.shape}")
        return features

    def encode(self, params, features, *, dropout_key=None, deterministic: bool = True) -> CaptionMemory:
        """Returns the `CaptionMemory` of ``features [B, D]`` or ``[B, S, D]`` (SAT: a grid only).

        Show and Tell: the carry after the LSTM's step on ``x_{-1} = v W_I + b`` (v: the vector, or the
        grid's mean) from zeros, ``x_{-1}`` with dropout in training. SAT: ``h_0, c_0`` from the mean
        annotation, the grid and its attention keys.
        """
        features = self._check_features(features)
        cell, batch = self.decoder_cell(), features.shape[0]
        zeros = cell.initial_carry((batch,))
        if self.attends:
            mean = jnp.mean(features, axis=1)  # [B, D]
            carry = bridge_apply(params["init_state"], mean, (zeros,))[0]
            keys = self.attention_spec.prepare(params["decoder"]["feed"]["attention"], features).keys  # [B, S, A]
            return CaptionMemory(carry, features, keys)
        vector = features if features.ndim == 2 else jnp.mean(features, axis=1)  # [B, D]
        x = linear_apply(params["image"], vector)  # [B, E], x_{-1}
        if dropout_lib.is_active(self.dropout, deterministic):
            if dropout_key is None:
                raise ValueError("dropout_key is required when deterministic=False and dropout > 0")
            x = dropout_lib.dropout(dropout_key, self.dropout, x)
        carry, _ = cell.step(params["decoder"], zeros, cell.project_inputs(params["decoder"], x))
        return CaptionMemory(carry)

    # --- decoding
    def _advance(self, cell, params, memory: CaptionMemory, carry, proj_t):
        """Returns ``(carry, y_t, alpha_t or None)``: one LSTM step on the projected known input ``proj_t``.

        ``y_t`` is h_t (``[B, H]``), or ``[h_t; z_t]`` (``[B, H + D]``) for SAT, whose alpha is the one the
        feed computed (the same expression: under jit XLA computes it once).
        """
        new, y = cell.step(params["decoder"], carry, proj_t)
        alpha = None
        if self.attends:
            alpha = self.context(params["decoder"]["feed"], memory, carry_h(carry))[1]
        return new, y, alpha

    def _logits(self, params, emb, y, out_key=None):
        """Returns ``logits [..., V]`` from ``emb [..., E]`` and the step outputs ``y``, dropout by `out_key`."""
        if self.attends:
            h, z = y[..., :self.hidden_size], y[..., self.hidden_size:]
            y = emb + linear_apply(params["deep"]["h"], h) + linear_apply(params["deep"]["z"], z)  # [..., E]
        if out_key is not None:
            y = dropout_lib.dropout(out_key, self.dropout, y)
        w = params["embed"].T if self.tie_embeddings else params["out"]["w"]  # [E or H, V]
        return linear_apply({"w": w, "b": params["out"]["b"]}, y)

    def decode_step(self, params, memory: CaptionMemory, carry, tokens):
        """Returns ``(carry, logits [B, V], alpha [B, S] or None)`` after feeding ``tokens [B]`` (y_{t-1}).

        `carry` is the decoder's (``memory.carry`` at the first step); alpha: the weights of this step's
        context (SAT), None for Show and Tell.
        """
        tokens = check_ids("tokens", tokens, self.vocab, "[B]", shape=(memory.batch_size,))
        emb = jnp.take(params["embed"], tokens, axis=0)  # [B, E]
        cell = self.decoder_cell(memory)
        new, y, alpha = self._advance(cell, params, memory, carry, cell.project_inputs(params["decoder"], emb))
        return new, self._logits(params, emb, y), alpha

    def step_fn(self, params, memory: CaptionMemory, *, return_aux: bool = False):
        """Returns ``step(carry, tokens [B]) -> (carry, logits [B, V])`` over `memory` for `rnn_jax.decoding`
        (with `return_aux`: ``(carry, logits, alpha [B, S])``, the beam search's aux; SAT only)."""
        if return_aux and not self.attends:
            raise ValueError("return_aux gives the attention weights; decoder='show_tell' has none")

        def step(carry, tokens):
            carry, logits, alpha = self.decode_step(params, memory, carry, tokens)
            return (carry, logits, alpha) if return_aux else (carry, logits)

        return step

    def greedy_caption(self, params, features, max_len: int):
        """Returns ``tokens [B, max_len]``: greedy captions of `features`, `pad_id` after `eos_id`."""
        memory = self.encode(params, features)
        bos = jnp.full((memory.batch_size,), self.bos_id, jnp.int32)
        _, tokens = greedy(self.step_fn(params, memory), memory.carry, bos, max_len, eos_id=self.eos_id,
                           pad_id=self.pad_id)
        return tokens

    # --- training
    def apply(self, params, features, tokens_in, *, dropout_key=None, deterministic: bool = True):
        """Returns ``(logits [B, T, V], alphas [B, T, S] or None)`` of teacher forcing ``tokens_in [B, T]``.

        One `lax.scan` over T of `decode_step`'s step (step t equals `decode_step` fed ``tokens_in[:, t]``);
        the embedding and its input projection before it, the output layer after it. Dropout needs
        `dropout_key` when ``not deterministic`` and ``dropout > 0``. Shapes and dtypes are checked at trace time,
        id ranges only when concrete (module docstring).
        """
        train = dropout_lib.is_active(self.dropout, deterministic)
        if train and dropout_key is None:
            raise ValueError("dropout_key is required when deterministic=False and dropout > 0")
        keys = dropout_lib.split_named(dropout_key if train else None, IMAGE_SITES)
        memory = self.encode(params, features, dropout_key=keys["image"], deterministic=deterministic)
        tokens_in = check_ids("tokens_in", tokens_in, self.vocab, "[batch, time]")
        batch = memory.batch_size
        if tokens_in.shape[0] != batch:
            raise ValueError(f"tokens_in must be integer ids of shape [batch={batch}, time], got {tokens_in.dtype} "
                             f"{tokens_in.shape}")
        emb, _, out_key = embed_tokens(params["embed"], tokens_in, rate=self.dropout, dropout_key=keys["caption"],
                                       deterministic=deterministic, name="tokens_in")  # [B, T, E]
        cell = self.decoder_cell(memory)
        proj = jnp.swapaxes(cell.project_inputs(params["decoder"], emb), 0, 1)  # [T, B, 4H]

        def body(carry, proj_t):
            carry, y, alpha = self._advance(cell, params, memory, carry, proj_t)
            return carry, (y, alpha)

        _, (ys, alphas) = jax.lax.scan(body, memory.carry, proj)  # ys [T, B, H (+ D)], alphas [T, B, S]
        ys = jnp.swapaxes(ys, 0, 1)  # [B, T, H (+ D)]
        alphas = None if alphas is None else jnp.swapaxes(alphas, 0, 1)  # [B, T, S]
        return self._logits(params, emb, ys, out_key), alphas

    def loss(self, params, batch, *, dropout_key=None, deterministic: bool = True, label_smoothing: float = 0.0,
             attention_reg: float = 0.0):
        """Returns ``(loss_sum, count, aux)``: cross-entropy over real tokens plus the attention regulariser.

        `batch`: ``features`` (``[B, D]`` or ``[B, S, D]``), ``tgt_in [B, T]`` (bos + y), ``tgt_out [B, T]``
        (y + eos), ``tgt_mask [B, T]`` (1.0 on real tokens; a padding row is all 0). ``loss_sum`` is
        `seq2seq_layers.token_loss`'s sum plus ``attention_reg`` times `attention_penalty` (Xu eq. 14, per
        caption; SAT only); count: the real tokens. aux: ``nll``, ``correct``, ``predictions [B, T]``
        (token_loss's) and ``attention_penalty`` (the unweighted sum; 0 for Show and Tell).
        """
        if attention_reg and not self.attends:
            raise ValueError(f"attention_reg weighs the attention regulariser; decoder='show_tell' has no "
                             f"attention, so it takes 0, got {attention_reg!r}")
        tgt_in = check_ids("tgt_in", batch["tgt_in"], self.vocab, "[batch, time]")  # checked before computing
        check_targets(batch["tgt_out"], batch["tgt_mask"], tgt_in.shape, self.vocab, ("tgt_out", "tgt_mask"))
        logits, alphas = self.apply(params, batch["features"], batch["tgt_in"], dropout_key=dropout_key,
                                    deterministic=deterministic)  # [B, T, V], [B, T, S]
        total, count, aux = token_loss(logits, batch["tgt_out"], batch["tgt_mask"], label_smoothing=label_smoothing)
        penalty = jnp.zeros((), logits.dtype) if alphas is None else attention_penalty(alphas, batch["tgt_mask"])
        return total + attention_reg * penalty, count, {**aux, "attention_penalty": penalty}
