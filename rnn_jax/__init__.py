"""rnn_jax: recurrent neural networks as pure JAX functions, with PyTorch parity.

The public API, re-exported:

* cells (`rnn_jax.cells`): `elman`, `lstm`, `gru`, the `Cell` tuple and the `LSTMState` carry;
* `unroll` (`rnn_jax.unroll`): a cell over a padded batch with lengths, masks and reverse-within-length;
* sequence utilities (`rnn_jax.sequence`): padding, masks, reversal, bucketing, vmap auto-batching;
* PyTorch-like stacked/bidirectional specs (`rnn_jax.rnn`): `RNN`, `LSTM`, `GRU`.

`rnn_jax.interop.torch` (needs torch), `rnn_jax.linen` and `rnn_jax.nnx` (Flax adapters) are imported
on demand.
"""

from rnn_jax.cells import Cell, LSTMState, elman, gru, lstm
from rnn_jax.rnn import GRU, LSTM, RNN
from rnn_jax.sequence import (bucket_by_length, check_lengths, lengths_to_mask, mask_to_lengths, pad_sequences,
                              reverse_padded, vmap_sequences)
from rnn_jax.unroll import unroll

__version__ = "0.1.0"

__all__ = [
    "Cell", "LSTMState", "elman", "gru", "lstm", "unroll", "RNN", "LSTM", "GRU", "bucket_by_length",
    "check_lengths", "lengths_to_mask", "mask_to_lengths", "pad_sequences", "reverse_padded",
    "vmap_sequences",
]
