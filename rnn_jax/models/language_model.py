"""An autoregressive language model: embedding -> stacked recurrent layers -> softmax over the vocabulary.

Graves (2013) for characters, Zaremba et al. (2014) for words. Training uses teacher forcing on chunks of
consecutive text with the recurrent state carried from one chunk to the next (truncated BPTT: the carried
state enters as data, so no gradient crosses a chunk boundary); sampling feeds each drawn token back.
Dropout as Zaremba et al.: on the embeddings, between layers and before the output layer.

Checks (`rnn_jax.models.common`): tokens and targets integer ids (``[B, T]``; ``[B]`` for `step`), the state
in the stack's layout, the loss mask ``[B, T]``, at trace time; ids in ``[0, V)`` only when concrete.
B = 0 and T = 0 give empty logits (T = 0: the state unchanged).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rnn_jax import dropout as dropout_lib
from rnn_jax import registry
from rnn_jax import rnn as rnn_lib
from rnn_jax.checks import check_ids, check_rate
from rnn_jax.models.common import check_targets, embed_tokens, freeze_cell

CELLS = tuple(registry.CELLS)


@dataclasses.dataclass(frozen=True)
class LanguageModel:
    """Hyperparameters of the model; `init` makes parameters, `apply`/`loss`/`step` use them.

    Attributes:
      vocab_size: V.
      embed_dim: E, the embedding size (== hidden_size when tie_embeddings).
      hidden_size: H of every recurrent layer.
      num_layers: L.
      cell: the recurrent cell, a name in `rnn_jax.registry.CELLS` (``'lstm'``, ``'gru'``, ``'elman'``,
        ``'min_gru'``, ``'min_lstm'``: Feng et al. 2024, run by their parallel scan) or a factory.
      cell_options: the cell's own options, e.g. ``(('peephole', True),)`` for Graves (2013)'s LSTM (a
        dict, FrozenDict or ConfigDict is frozen to sorted pairs, so equal models hash alike).
      dropout: rate between layers (0 disables), and on the embeddings and before the output layer unless
        `embed_dropout` / `output_dropout` are set.
      embed_dropout: rate on the embeddings (None: `dropout`, as Zaremba et al.).
      output_dropout: rate on the last layer's outputs before the output layer (None: `dropout`).
      init_scale: if set, every parameter starts uniform in ``[-init_scale, init_scale]`` (Zaremba et al.);
        None: N(0, 1) embeddings, the recurrent layers' `initializer`, uniform +-1/sqrt(H) output weights.
      tie_embeddings: the output layer reuses the embedding matrix (Press & Wolf 2017).
      initializer: ``'pytorch'`` or ``'jax'`` for the recurrent layers (see `rnn_jax.cells`).
      dtype: compute dtype of the recurrent layers (None: float32).
      head_dtype: compute dtype of the output layer's matmul, accumulated in float32 (None: float32;
        bfloat16 runs it about 1.7x faster on CPUs with AVX512_BF16 and on accelerators).
      hoist_inputs: the recurrent layers' input projection outside the time loop (None: by backend,
        see `rnn_jax.unroll`; at small batches True pays on CPU too).
    """

    vocab_size: int
    embed_dim: int
    hidden_size: int
    num_layers: int = 2
    cell: Any = "lstm"
    dropout: float = 0.0
    tie_embeddings: bool = False
    initializer: str = "pytorch"
    dtype: Any = None
    head_dtype: Any = None
    hoist_inputs: bool | None = None
    embed_dropout: float | None = None
    output_dropout: float | None = None
    init_scale: float | None = None
    cell_options: Any = ()

    def __post_init__(self):
        freeze_cell(self)
        for name in ("dropout", "embed_dropout", "output_dropout"):
            check_rate(name, getattr(self, name), allow_none=name != "dropout")
        if self.init_scale is not None and not self.init_scale > 0:
            raise ValueError(f"init_scale must be None or > 0, got {self.init_scale}")
        if self.tie_embeddings and self.embed_dim != self.hidden_size:
            raise ValueError(f"tie_embeddings needs embed_dim == hidden_size, got {self.embed_dim} and "
                             f"{self.hidden_size}")

    @property
    def rnn(self) -> rnn_lib.Stack:
        """The recurrent stack's spec (batch-first)."""
        return rnn_lib.Stack(self.embed_dim, self.hidden_size, self.num_layers, cell_factory=self.cell,
                             cell_options=self.cell_options, batch_first=True, dropout=self.dropout,
                             initializer=self.initializer, dtype=self.dtype, hoist_inputs=self.hoist_inputs)

    def init(self, key) -> dict:
        """Returns ``{'embed': [V, E], 'rnn': [...], 'out': {'w': [H, V] (untied), 'b': [V]}}``."""
        k_e, k_r, k_o = jax.random.split(key, 3)
        bound = 1.0 / math.sqrt(self.hidden_size)
        out = {"b": jnp.zeros((self.vocab_size,))}
        if not self.tie_embeddings:
            out["w"] = jax.random.uniform(k_o, (self.hidden_size, self.vocab_size), minval=-bound, maxval=bound)
        # N(0, 1) as torch.nn.Embedding; with a 0.1 scale the first ~100 steps of a char LM sat at the
        # unigram loss (BUILD_NOTES.md, issue 4)
        params = {"embed": jax.random.normal(k_e, (self.vocab_size, self.embed_dim)),
                  "rnn": self.rnn.init(k_r), "out": out}
        if self.init_scale is None:
            return params
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
        return jax.tree.unflatten(treedef, [
            jax.random.uniform(k, x.shape, x.dtype, -self.init_scale, self.init_scale) for k, x in zip(keys, leaves)])

    def initial_state(self, batch_size: int):
        """Returns the zero state in the stack's layout: ``h [L, B, H]`` (LSTM: ``LSTMState(h, c)``)."""
        return self.rnn.cell().initial_carry((self.num_layers, batch_size))

    def apply(self, params, tokens, state=None, *, dropout_key=None, deterministic: bool = True):
        """Returns ``(logits [B, T, V], state)`` for ``tokens [B, T]`` starting from `state`.

        Shapes and dtypes are checked at trace time, id and length ranges only when concrete (module docstring).
        """
        embed_rate = self.dropout if self.embed_dropout is None else self.embed_dropout
        out_rate = self.dropout if self.output_dropout is None else self.output_dropout
        x, rnn_key, out_key = embed_tokens(params["embed"], tokens, rate=max(self.dropout, out_rate),
                                           dropout_key=dropout_key, deterministic=deterministic,
                                           embed_rate=embed_rate)  # x [B, T, E]
        state = self.initial_state(x.shape[0]) if state is None else state
        ys, state = self.rnn.apply(params["rnn"], x, None, state, dropout_key=rnn_key, deterministic=deterministic)
        ys = ys.astype(jnp.float32)  # [B, T, H]
        if out_key is not None and out_rate > 0:
            ys = dropout_lib.dropout(out_key, out_rate, ys)
        w = params["embed"].T if self.tie_embeddings else params["out"]["w"]  # [H, V]
        if self.head_dtype is None:
            logits = ys @ w  # [B, T, V]
        else:
            logits = jnp.matmul(ys.astype(self.head_dtype), w.astype(self.head_dtype),
                                preferred_element_type=jnp.float32)
        return logits + params["out"]["b"][None, None, :], state

    def loss(self, params, tokens, targets, mask, state=None, *, dropout_key=None, deterministic=True):
        """Returns ``(loss_sum, count, state)``: summed cross-entropy (nats) over ``mask [B, T]``."""
        tokens = check_ids("tokens", tokens, self.vocab_size, "[batch, time]")  # all checked before computing
        targets, mask = check_targets(targets, mask, tokens.shape, self.vocab_size)
        logits, state = self.apply(params, tokens, state, dropout_key=dropout_key, deterministic=deterministic)
        mask = mask.astype(bool)  # a nonzero entry counts, once
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # [B, T]
        nll = jnp.where(mask, nll, 0.0)
        return jnp.sum(nll), jnp.sum(mask.astype(jnp.int32)), state

    def step(self, params, state, tokens):
        """Returns ``(state, logits [B, V])`` after feeding one token ``[B]`` (for `rnn_jax.decoding`)."""
        tokens = check_ids("tokens", tokens, self.vocab_size, "[B]")
        logits, state = self.apply(params, tokens[:, None], state)
        return state, logits[:, 0]
