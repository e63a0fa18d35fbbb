"""An autoregressive language model: embedding -> stacked recurrent layers -> softmax over the vocabulary.

Graves (2013) for characters, Zaremba et al. (2014) for words. Training uses teacher forcing on chunks of
consecutive text with the recurrent state carried from one chunk to the next (truncated BPTT: the carried
state enters as data, so no gradient crosses a chunk boundary); sampling feeds each drawn token back.
Dropout as Zaremba et al.: on the embeddings, between layers and before the output layer.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rnn_jax import rnn as rnn_lib
from rnn_jax.models.common import embed_tokens
from rnn_jax.unroll import _dropout_mask

CELLS = ("lstm", "peephole", "gru")


@dataclasses.dataclass(frozen=True)
class LanguageModel:
    """Hyperparameters of the model; `init` makes parameters, `apply`/`loss`/`step` use them.

    Attributes:
      vocab_size: V.
      embed_dim: E, the embedding size (== hidden_size when tie_embeddings).
      hidden_size: H of every recurrent layer.
      num_layers: L.
      cell: ``'lstm'`` (PyTorch's), ``'peephole'`` (Graves 2013) or ``'gru'``.
      dropout: rate on embeddings, between layers and before the output (0 disables).
      tie_embeddings: the output layer reuses the embedding matrix (Press & Wolf 2017).
      initializer: ``'pytorch'`` or ``'jax'`` for the recurrent layers (see `rnn_jax.cells`).
      dtype: compute dtype of the recurrent layers (None: float32).
    """

    vocab_size: int
    embed_dim: int
    hidden_size: int
    num_layers: int = 2
    cell: str = "lstm"
    dropout: float = 0.0
    tie_embeddings: bool = False
    initializer: str = "pytorch"
    dtype: Any = None

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.tie_embeddings and self.embed_dim != self.hidden_size:
            raise ValueError(f"tie_embeddings needs embed_dim == hidden_size, got {self.embed_dim} and "
                             f"{self.hidden_size}")

    @property
    def rnn(self) -> rnn_lib._RNNBase:
        """The recurrent stack's spec (batch-first)."""
        common = dict(batch_first=True, dropout=self.dropout, initializer=self.initializer, dtype=self.dtype)
        if self.cell == "gru":
            return rnn_lib.GRU(self.embed_dim, self.hidden_size, self.num_layers, **common)
        return rnn_lib.LSTM(self.embed_dim, self.hidden_size, self.num_layers, peephole=self.cell == "peephole",
                            **common)

    def init(self, key) -> dict:
        """Returns ``{'embed': [V, E], 'rnn': [...], 'out': {'w': [H, V] (untied), 'b': [V]}}``."""
        k_e, k_r, k_o = jax.random.split(key, 3)
        bound = 1.0 / math.sqrt(self.hidden_size)
        out = {"b": jnp.zeros((self.vocab_size,))}
        if not self.tie_embeddings:
            out["w"] = jax.random.uniform(k_o, (self.hidden_size, self.vocab_size), minval=-bound, maxval=bound)
        # N(0, 1) as torch.nn.Embedding; with a 0.1 scale the first ~100 steps of a char LM sat at the
        # unigram loss (BUILD_NOTES.md, issue 4)
        return {"embed": jax.random.normal(k_e, (self.vocab_size, self.embed_dim)),
                "rnn": self.rnn.init(k_r), "out": out}

    def initial_state(self, batch_size: int):
        """Returns the zero state in the spec's layout: ``h [L, B, H]`` (LSTM: ``LSTMState(h, c)``)."""
        return self.rnn.cell().initial_carry((self.num_layers, batch_size))

    def apply(self, params, tokens, state=None, *, dropout_key=None, deterministic: bool = True):
        """Returns ``(logits [B, T, V], state)`` for ``tokens [B, T]`` starting from `state`."""
        x, rnn_key, out_key = embed_tokens(params["embed"], tokens, rate=self.dropout, dropout_key=dropout_key,
                                           deterministic=deterministic)  # x [B, T, E]
        state = self.initial_state(tokens.shape[0]) if state is None else state
        ys, state = self.rnn.apply(params["rnn"], x, None, state, dropout_key=rnn_key, deterministic=deterministic)
        ys = ys.astype(jnp.float32)  # [B, T, H]
        if out_key is not None:
            ys = ys * _dropout_mask(out_key, self.dropout, ys.shape, ys.dtype)
        w = params["embed"].T if self.tie_embeddings else params["out"]["w"]  # [H, V]
        logits = ys @ w + params["out"]["b"][None, None, :]  # [B, T, V]
        return logits, state

    def loss(self, params, tokens, targets, mask, state=None, *, dropout_key=None, deterministic=True):
        """Returns ``(loss_sum, count, state)``: summed cross-entropy (nats) over ``mask [B, T]``."""
        logits, state = self.apply(params, tokens, state, dropout_key=dropout_key, deterministic=deterministic)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # [B, T]
        nll = jnp.where(mask, nll, 0.0)
        return jnp.sum(nll), jnp.sum(mask.astype(jnp.int32)), state

    def step(self, params, state, tokens):
        """Returns ``(state, logits [B, V])`` after feeding one token ``[B]`` (for `rnn_jax.decoding`)."""
        logits, state = self.apply(params, tokens[:, None], state)
        return state, logits[:, 0]
