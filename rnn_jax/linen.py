"""A `flax.linen` adapter: an `rnn_jax` spec (`RNN`, `LSTM`, `GRU`, any `Stack`) as a Flax module.

Usage::

    spec = rnn_jax.LSTM(input_size=32, hidden_size=64, num_layers=2, batch_first=True, bidirectional=True)
    rnn = rnn_jax.linen.Recurrent(spec)
    variables = rnn.init(jax.random.key(0), x)                 # x [B, T, 32]
    ys, (h_n, c_n) = rnn.apply(variables, x, lengths)          # ys [B, T, 128], h_n [4, B, 64]
    ys, _ = rnn.apply(variables, x, lengths, deterministic=False, rngs={'dropout': key})

The module is a thin wrapper: `Recurrent.__call__` is ``spec.apply`` with parameters from the Flax
variable tree and dropout keys from a Flax rng stream, so shapes, padding semantics and PyTorch layouts
are the spec's (see `rnn_jax.rnn`). Parameters live under ``'params'`` as one entry per layer,
``layer_{k}: {'forward': cell_params, 'backward': cell_params}`` (cell parameter names in `rnn_jax.cells`),
e.g. ``params['layer_0']['backward']['w_hh']``. `to_spec_params` / `from_spec_params` convert between this
dict and the spec's list of layers, e.g. to load weights from `rnn_jax.interop.torch.from_torch`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from rnn_jax.rnn import Stack

Spec = Stack  # any spec of rnn_jax.rnn: RNN, LSTM, GRU or a Stack of any cell


def _layer_name(layer: int) -> str:
    return f"layer_{layer}"


def to_spec_params(params) -> list:
    """Returns the spec's parameter list from a `Recurrent` module's ``params`` (``{'layer_0': ..., ...}``)."""
    num_layers = len(params)
    missing = [_layer_name(k) for k in range(num_layers) if _layer_name(k) not in params]
    if missing:
        raise ValueError(f"params must hold entries {[_layer_name(k) for k in range(num_layers)]}, "
                         f"got keys {sorted(params)}")
    return [params[_layer_name(k)] for k in range(num_layers)]


def from_spec_params(params: list) -> dict:
    """Returns a `Recurrent` module's ``params`` (``{'layer_0': ..., ...}``) from the spec's parameter list."""
    return {_layer_name(k): jax.tree.map(jnp.asarray, layer) for k, layer in enumerate(params)}


class Recurrent(nn.Module):
    """Runs an `rnn_jax` spec (`RNN`, `LSTM`, `GRU` or any `Stack`) with parameters in the Flax variable tree.

    Attributes:
      spec: the spec; its ``input_size`` fixes the parameter shapes (no shape inference).
      rng_collection: the rng stream dropout keys come from (as ``flax.linen.Dropout``).
    """

    spec: Spec
    rng_collection: str = "dropout"

    @nn.compact
    def __call__(self, inputs, lengths=None, initial_state=None, *, deterministic: bool = True):
        """Returns ``(outputs, final_state)``, those of ``spec.apply``.

        Args:
          inputs: ``[T, B, I]`` (``[B, T, I]`` if ``spec.batch_first``) or unbatched ``[T, I]``.
          lengths: optional ``[B]`` integers in ``[0, T]``; steps past a sequence's length are padding
            (zero outputs; the final state is taken at each sequence's own last step).
          initial_state: optional ``h_0 [L*D, B, H_out]`` (LSTM: ``(h_0, c_0)``); zeros if None.
          deterministic: disables dropout. When False and the spec has a dropout rate > 0, a key is drawn
            from the ``rng_collection`` stream (``apply(..., rngs={'dropout': key})``).

        Returns:
          outputs ``[T, B, D*H_out]`` (``[B, T, D*H_out]`` if batch_first) and ``h_n [L*D, B, H_out]``
          (LSTM: ``LSTMState(h_n, c_n)``), D = 2 if bidirectional.
        """
        params = [self.param(_layer_name(k), lambda key, k=k: self.spec.init_layer(key, k))
                  for k in range(self.spec.num_layers)]  # the spec's list of layers
        key = None
        if not deterministic and self.spec.has_dropout:
            key = self.make_rng(self.rng_collection)
        return self.spec.apply(params, inputs, lengths, initial_state, dropout_key=key,
                               deterministic=deterministic)

