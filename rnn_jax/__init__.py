"""rnn_jax: recurrent neural networks as pure JAX functions, with PyTorch parity.

The public API, re-exported:

* cells (`rnn_jax.cells`): `elman`, `lstm`, `gru`, the `Cell` tuple, the `LSTMState` carry, `carry_h` /
  `replace_h` (h of any carry) and `freeze_options` (a cell's hashable option record); minGRU/minLSTM
  in `rnn_jax.minimal`; cells by name in `rnn_jax.registry`;
* cell wrappers (`rnn_jax.wrappers`): `feed_inputs` (a step fed from its previous state, for attention
  decoders), `recurrent_dropout`, `zoneout`;
* `unroll` (`rnn_jax.unroll`): a cell over a padded batch with lengths, masks and reverse-within-length;
* dropout masks and key plans (`rnn_jax.dropout`); argument checks (`rnn_jax.checks`) and precision
  helpers (`rnn_jax.precision`);
* sequence utilities (`rnn_jax.sequence`): padding, masks, reversal, bucketing, vmap auto-batching;
* stacked/bidirectional specs (`rnn_jax.rnn`): `Stack` of any cell, and the PyTorch-like `RNN`, `LSTM`, `GRU`.

`rnn_jax.interop.torch` (needs torch), `rnn_jax.linen` and `rnn_jax.nnx` (Flax adapters) are imported
on demand.
"""

from rnn_jax.cells import Cell, LSTMState, carry_h, elman, freeze_options, gru, lstm, replace_h
from rnn_jax.rnn import GRU, LSTM, RNN, Stack
from rnn_jax.sequence import (bucket_by_length, check_lengths, lengths_to_mask, mask_to_lengths, pad_sequences,
                              reverse_padded, vmap_sequences)
from rnn_jax.unroll import unroll
from rnn_jax.wrappers import feed_inputs

__version__ = "0.1.0"

__all__ = [
    "Cell", "LSTMState", "carry_h", "replace_h", "freeze_options", "elman", "gru", "lstm", "feed_inputs",
    "unroll", "Stack", "RNN", "LSTM", "GRU", "bucket_by_length", "check_lengths", "lengths_to_mask",
    "mask_to_lengths", "pad_sequences", "reverse_padded", "vmap_sequences",
]
