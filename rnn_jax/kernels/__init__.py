"""Platform kernels for recurrent layers, chosen by ``kernel=`` (`rnn_jax.kernels.choice` has the rule).

The pure-JAX scan (`rnn_jax.unroll`) defines what every kernel computes; `onednn` runs oneDNN's RNN
primitives on the CPU through the XLA FFI (compiled by the package's install step, `onednn_library`);
`cudnn` runs cuDNN's LSTM on a CUDA GPU through `jax.experimental.rnn`.
"""

from rnn_jax.kernels.choice import KERNELS, choose, cudnn_reason, declined, onednn_reason
from rnn_jax.kernels.onednn_library import KernelUnavailable

__all__ = ["KERNELS", "KernelUnavailable", "choose", "cudnn_reason", "declined", "onednn_reason"]
