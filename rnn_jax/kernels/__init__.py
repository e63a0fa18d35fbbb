"""Platform kernels for recurrent layers, chosen by ``kernel=`` (`rnn_jax.kernels.choice` has the rule).

The pure-JAX scan (`rnn_jax.unroll`) defines what every kernel computes; `onednn` runs oneDNN's RNN
primitives on the CPU through the XLA FFI (compiled by the package's install step, `onednn_library`).
"""

from rnn_jax.kernels.choice import KERNELS, choose, declined, onednn_reason
from rnn_jax.kernels.onednn_library import KernelUnavailable

__all__ = ["KERNELS", "KernelUnavailable", "choose", "declined", "onednn_reason"]
