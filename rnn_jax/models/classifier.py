"""A many-to-one sequence classifier: embedding -> (bi)directional recurrent stack -> pooling -> softmax.

Pooling (over each sequence's own length, never over padding):
* ``'final'``: the final state of each direction of the last layer, concatenated (the backward
  direction's final state is the state after the sequence's first token);
* ``'mean'`` / ``'max'``: masked mean / max of the last layer's outputs over valid steps.

A length-0 row (a batch padded with empty rows) pools to zero features under every pooling (the final
states are the zero initial state; mean and max over no step are 0), so its logits are the output bias,
never NaN. Checks (`rnn_jax.models.common`): tokens integer ids ``[B, T]``, lengths integers ``[B]``, labels
``[B]`` and weights ``[B]``, at trace time; ids in ``[0, V)``, labels in ``[0, C)`` and lengths in ``[0, T]``
only when concrete.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rnn_jax import dropout as dropout_lib
from rnn_jax import rnn as rnn_lib
from rnn_jax.cells import carry_h
from rnn_jax.checks import check_choice, check_ids, check_rate
from rnn_jax.models.common import check_targets, embed_tokens, freeze_cell
from rnn_jax.sequence import check_lengths, lengths_to_mask

POOLINGS = ("final", "mean", "max")


@dataclasses.dataclass(frozen=True)
class Classifier:
    """Hyperparameters; `init` makes parameters, `apply` gives logits, `loss` masked sums.

    Attributes:
      vocab_size, embed_dim, hidden_size, num_classes: V, E, H, C.
      num_layers: recurrent layers.
      cell: a name in `rnn_jax.registry.CELLS` (``'lstm'``, ``'gru'``, ...) or a cell factory.
      cell_options: the cell's own options (pairs or a mapping, frozen to sorted pairs), e.g.
        ``(('proj_size', 64),)``.
      bidirectional: two directions per layer (each within its own length).
      pooling: ``'final'``, ``'mean'`` or ``'max'``.
      dropout: rate on the embeddings, between layers and on the pooled features.
      word_dropout: in training, the rate at which input tokens are replaced by `unk_id` (whole words
        dropped, as Flax's SST-2 example and Iyyer et al. 2015).
      unk_id: the id that dropped words become (required when word_dropout > 0).
    """

    vocab_size: int
    embed_dim: int
    hidden_size: int
    num_classes: int
    num_layers: int = 1
    cell: Any = "lstm"
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.0
    dtype: Any = None
    word_dropout: float = 0.0
    unk_id: int | None = None
    cell_options: Any = ()

    def __post_init__(self):
        freeze_cell(self)
        check_rate("dropout", self.dropout)
        check_rate("word_dropout", self.word_dropout)
        if self.word_dropout > 0 and self.unk_id is None:
            raise ValueError("word_dropout > 0 needs unk_id, the id dropped words become")
        check_choice("pooling", self.pooling, POOLINGS)

    @property
    def rnn(self) -> rnn_lib.Stack:
        """The recurrent stack's spec (batch-first)."""
        return rnn_lib.Stack(self.embed_dim, self.hidden_size, self.num_layers, cell_factory=self.cell,
                             cell_options=self.cell_options, batch_first=True, dropout=self.dropout,
                             bidirectional=self.bidirectional, dtype=self.dtype)

    @property
    def features(self) -> int:
        """D * H_out: the size of the pooled features."""
        return self.rnn.output_size * (2 if self.bidirectional else 1)

    def init(self, key) -> dict:
        """Returns ``{'embed': [V, E], 'rnn': [...], 'out': {'w': [D*H, C], 'b': [C]}}``."""
        k_e, k_r, k_o = jax.random.split(key, 3)
        bound = 1.0 / math.sqrt(self.features)
        return {"embed": jax.random.normal(k_e, (self.vocab_size, self.embed_dim)) * 0.1,
                "rnn": self.rnn.init(k_r),
                "out": {"w": jax.random.uniform(k_o, (self.features, self.num_classes), minval=-bound, maxval=bound),
                        "b": jnp.zeros((self.num_classes,))}}

    def apply(self, params, tokens, lengths, *, dropout_key=None, deterministic: bool = True):
        """Returns logits ``[B, C]`` for ``tokens [B, T]`` with ``lengths [B]`` (each in ``[0, T]``; see the
        module docstring for length 0). Shapes and dtypes are checked at trace time, id and length ranges only
        when concrete."""
        tokens = check_ids("tokens", tokens, self.vocab_size, "[batch, time]")
        lengths = check_lengths(lengths, tokens.shape[0], tokens.shape[1])
        if not deterministic and self.word_dropout > 0:
            word_key, dropout_key = jax.random.split(dropout_key)
            dropped = jax.random.bernoulli(word_key, self.word_dropout, tokens.shape)  # [B, T]
            tokens = jnp.where(dropped, jnp.asarray(self.unk_id, tokens.dtype), tokens)
        x, rnn_key, out_key = embed_tokens(params["embed"], tokens, rate=self.dropout, dropout_key=dropout_key,
                                           deterministic=deterministic)  # x [B, T, E]
        ys, final = self.rnn.apply(params["rnn"], x, lengths, dropout_key=rnn_key, deterministic=deterministic)
        ys = ys.astype(jnp.float32)  # [B, T, D*H], zero past each length
        if self.pooling == "final":
            h_n = carry_h(final)  # [L*D, B, H]
            D = 2 if self.bidirectional else 1
            feats = jnp.concatenate(list(h_n[-D:]), axis=-1).astype(jnp.float32)  # [B, D*H]
        else:
            mask = lengths_to_mask(lengths, tokens.shape[1])[:, :, None]  # [B, T, 1]
            if self.pooling == "mean":
                feats = jnp.sum(ys, axis=1) / jnp.maximum(lengths, 1)[:, None].astype(ys.dtype)  # [B, D*H]
            else:  # a row with no step (length 0, or T = 0) pools to 0, not -inf
                feats = jnp.max(jnp.where(mask, ys, -jnp.inf), axis=1, initial=-jnp.inf)  # [B, D*H]
                feats = jnp.where(lengths[:, None] > 0, feats, 0.0)
        if out_key is not None:
            feats = dropout_lib.dropout(out_key, self.dropout, feats)
        return feats @ params["out"]["w"] + params["out"]["b"][None, :]  # [B, C]

    def loss(self, params, tokens, lengths, labels, weights, *, dropout_key=None, deterministic=True):
        """Returns ``(loss_sum, count, aux)``: weighted cross-entropy sum, sum of ``weights [B]``, and
        ``aux = {'correct': weighted count of right answers, 'predictions': [B] argmax classes}``."""
        tokens = check_ids("tokens", tokens, self.vocab_size, "[batch, time]")  # all checked before computing
        labels, weights = check_targets(labels, weights, tokens.shape[:1], self.num_classes, ("labels", "weights"))
        logits = self.apply(params, tokens, lengths, dropout_key=dropout_key, deterministic=deterministic)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)  # [B]
        predictions = jnp.argmax(logits, -1)  # [B]
        correct = jnp.sum((predictions == labels).astype(jnp.float32) * weights)
        return jnp.sum(nll * weights), jnp.sum(weights), {"correct": correct, "predictions": predictions}
