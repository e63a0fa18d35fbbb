"""A `flax.nnx` adapter: an `rnn_jax` spec (`RNN`, `LSTM`, `GRU`, any `Stack`) as an NNX module.

Usage::

    spec = rnn_jax.LSTM(input_size=32, hidden_size=64, num_layers=2, batch_first=True, dropout=0.1)
    rnn = rnn_jax.nnx.Recurrent(spec, rngs=nnx.Rngs(0))          # params, plus a 'dropout' stream
    ys, (h_n, c_n) = rnn(x, lengths)                              # x [B, T, 32] -> ys [B, T, 64]
    rnn.eval()                                                    # no dropout (rnn.train() turns it on)
    optimizer = nnx.Optimizer(rnn, optax.adam(1e-3), wrt=nnx.Param)

The module is a thin wrapper: `Recurrent.__call__` is ``spec.apply`` with the parameters held as
`nnx.Param` leaves and dropout keys drawn from an `nnx.RngStream` kept in the module, so shapes, padding
semantics and PyTorch layouts are the spec's (see `rnn_jax.rnn`). ``rnn.layers`` is the spec's parameter
list with one `nnx.Param` per array, so state paths read ``('layers', 0, 'backward', 'w_hh')`` and
`nnx.split`, `nnx.state`, `nnx.grad` and `nnx.Optimizer` see every array. The ``deterministic`` attribute
follows `nnx.Dropout`: set by ``eval()`` / ``train()`` / `nnx.view`, overridden by the call argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from rnn_jax.rnn import Stack

Spec = Stack  # any spec of rnn_jax.rnn: RNN, LSTM, GRU or a Stack of any cell



def _is_param(x) -> bool:
    return isinstance(x, nnx.Variable)


class Recurrent(nnx.Module):
    """Runs an `rnn_jax` spec (`RNN`, `LSTM`, `GRU` or any `Stack`) with its parameters as `nnx.Param` s.

    Args:
      spec: the spec; its ``input_size`` fixes the parameter shapes.
      rngs: ``rngs.params()`` initialises the parameters (unless `params` is given); when the spec has a
        dropout rate > 0 the module keeps a fork of the ``rng_collection`` stream (``'default'`` if
        `rngs` has none of that name) for dropout keys.
      params: optional spec parameters to start from (e.g. from `rnn_jax.interop.torch.from_torch`),
        in place of a fresh ``spec.init``.
      deterministic: the initial mode, as `nnx.Dropout` (False: dropout on, where the spec has any).
      rng_collection: the name of the dropout stream.
    """

    def __init__(self, spec: Spec, *, rngs: nnx.Rngs, params: list | None = None,
                 deterministic: bool | None = False, rng_collection: str = "dropout"):
        self.spec = spec
        if params is None:
            params = spec.init(rngs.params())
        # the spec's list of {'forward': {name: Param}, 'backward': ...}; nnx.data: a pytree holding Variables
        self.layers = nnx.data(jax.tree.map(lambda a: nnx.Param(jnp.asarray(a)), params))
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        self.rngs = rngs[rng_collection].fork() if spec.has_dropout else nnx.data(None)

    def spec_params(self) -> list:
        """Returns the parameters as the spec's plain pytree (a list of per-layer dicts of arrays)."""
        return jax.tree.map(lambda p: p[...], self.layers, is_leaf=_is_param)

    def __call__(self, inputs, lengths=None, initial_state=None, *, deterministic: bool | None = None,
                 rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None):
        """Returns ``(outputs, final_state)``, those of ``spec.apply``.

        Args:
          inputs: ``[T, B, I]`` (``[B, T, I]`` if ``spec.batch_first``) or unbatched ``[T, I]``.
          lengths: optional ``[B]`` integers in ``[0, T]``; steps past a sequence's length are padding
            (zero outputs; the final state is taken at each sequence's own last step).
          initial_state: optional ``h_0 [L*D, B, H_out]`` (LSTM: ``(h_0, c_0)``); zeros if None.
          deterministic: disables dropout; None: the module's ``deterministic`` attribute.
          rngs: optional source of the dropout key (Rngs, RngStream or key), in place of the module's.

        Returns:
          outputs ``[T, B, D*H_out]`` (``[B, T, D*H_out]`` if batch_first) and ``h_n [L*D, B, H_out]``
          (LSTM: ``LSTMState(h_n, c_n)``), D = 2 if bidirectional.
        """
        if deterministic is None:
            deterministic = self.deterministic
        if deterministic is None:
            raise ValueError("Recurrent needs `deterministic`: pass it to the call or the constructor, or use "
                             "model.eval() / model.train()")
        key = None
        if not deterministic and self.spec.has_dropout:
            source = rngs if rngs is not None else self.rngs
            if isinstance(source, nnx.Rngs):
                key = source[self.rng_collection]()
            elif isinstance(source, nnx.RngStream):
                key = source()
            else:
                key = source  # a key, or None: spec.apply then says a dropout key is required
        return self.spec.apply(self.spec_params(), inputs, lengths, initial_state, dropout_key=key,
                               deterministic=deterministic)

    def set_view(self, deterministic: bool | None = None):
        """Sets ``deterministic`` for `nnx.view` (as `nnx.Dropout.set_view`)."""
        if deterministic is not None:
            self.deterministic = deterministic
