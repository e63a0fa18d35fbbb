"""Multi-layer, bidirectional RNN / LSTM / GRU specs that mirror PyTorch's modules.

A spec is a frozen dataclass holding hyperparameters (PyTorch's constructor arguments plus ours) with
``init(key) -> params`` and ``apply(params, inputs, lengths=None, initial_state=None, *, dropout_key=None,
deterministic=True) -> (outputs, final_state)``. Shapes and layouts are PyTorch's:

* inputs ``[T, B, I]`` (``[B, T, I]`` if ``batch_first``), or unbatched ``[T, I]``;
* outputs ``[T, B, D * H_out]`` (D = 2 if bidirectional), the two directions concatenated on features
  (forward first), zero at padded steps (as ``pad_packed_sequence`` gives);
* ``h_n [num_layers * D, B, H_out]`` ordered layer-major (``l0``, ``l0_reverse``, ``l1``, ...); LSTM returns
  ``LSTMState(h_n, c_n)`` with ``c_n [num_layers * D, B, H]``, which unpacks like PyTorch's ``(h_n, c_n)``.
  H_out is ``proj_size`` for a projected LSTM, else ``hidden_size``.

Params are a list with one dict per layer, ``{'forward': cell_params, 'backward': cell_params}`` (no
'backward' unless bidirectional); ``cell_params`` are described in `rnn_jax.cells`. Layers are a plain
Python loop; dropout between layers (not after the last) as PyTorch does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax import cells as cells_lib
from rnn_jax.sequence import check_lengths
from rnn_jax.unroll import _dropout_mask, unroll

DIRECTIONS = ("forward", "backward")


@dataclasses.dataclass(frozen=True)
class _RNNBase:
    """Fields shared by `RNN`, `LSTM` and `GRU` (keyword-only after num_layers)."""

    input_size: int
    hidden_size: int
    num_layers: int = 1
    _: dataclasses.KW_ONLY
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    initializer: str = "pytorch"
    dtype: Any = None
    param_dtype: Any = jnp.float32
    input_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    unroll: int = 1
    checkpoint: bool = False
    hoist_inputs: bool | None = None  # None: by backend (see rnn_jax.unroll)
    fused_backward: bool = True

    def __post_init__(self):
        for name in ("input_size", "hidden_size", "num_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("dropout", "input_dropout", "recurrent_dropout", "zoneout"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {v}")
        # one canonical form per dtype, so equal specs hash equally (specs are jit static arguments)
        object.__setattr__(self, "param_dtype", jnp.dtype(self.param_dtype))
        if self.dtype is not None:
            object.__setattr__(self, "dtype", jnp.dtype(self.dtype))
        self.cell(0)  # validates the cell's own arguments now rather than at init

    # --- to be provided by subclasses
    def _make_cell(self) -> cells_lib.Cell:
        raise NotImplementedError

    # --- structure
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def has_dropout(self) -> bool:
        """Whether any dropout or zoneout rate is > 0 (apply then needs a key unless deterministic)."""
        return any(r > 0 for r in (self.dropout, self.input_dropout, self.recurrent_dropout, self.zoneout))

    def cell(self, layer: int = 0) -> cells_lib.Cell:
        """Returns the `Cell` of every direction of `layer` (all layers share hyperparameters)."""
        del layer
        return self._make_cell()

    @property
    def output_size(self) -> int:
        """H_out: the size of each direction's output and of h_n."""
        return self.cell().output_size

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_size * self.num_directions

    def init_layer(self, key, layer: int) -> dict:
        """Returns one layer's parameters, ``{'forward': cell_params[, 'backward': cell_params]}``."""
        cell = self.cell(layer)
        ks = jax.random.split(key, self.num_directions)
        return {d: cell.init(kd, self.layer_input_size(layer)) for d, kd in zip(DIRECTIONS, ks)}

    def init(self, key) -> list:
        """Returns the parameters: a list (one per layer) of ``{'forward': ..., 'backward': ...}`` dicts."""
        return [self.init_layer(k, layer) for layer, k in enumerate(jax.random.split(key, self.num_layers))]

    # --- running
    def _split_state(self, initial_state, batch_shape):
        """Returns a list (layer-major, then direction) of carries from PyTorch-layout initial_state."""
        cell = self.cell()
        LD = self.num_layers * self.num_directions
        if initial_state is None:
            return [None] * LD
        expected = cell.initial_carry((LD,) + batch_shape)
        leaves, tree = jax.tree.flatten(initial_state)
        exp_leaves, exp_tree = jax.tree.flatten(expected)
        what = "(h_0, c_0)" if cell.kind == "lstm" else "h_0"
        if len(leaves) != len(exp_leaves):
            raise ValueError(f"initial_state must be {what}, got {len(leaves)} array(s)")
        leaves = [jnp.asarray(x) for x in leaves]
        for name, got, want in zip(("h_0", "c_0"), leaves, exp_leaves):
            if got.shape != want.shape:
                raise ValueError(f"initial_state {name} must have shape {tuple(want.shape)} "
                                 f"[num_layers * num_directions, batch, size], got {tuple(got.shape)}")
        state = jax.tree.unflatten(exp_tree, leaves)
        return [jax.tree.map(lambda s: s[i], state) for i in range(LD)]

    def apply(self, params, inputs, lengths=None, initial_state=None, *, dropout_key=None,
              deterministic: bool = True):
        """Returns ``(outputs, final_state)`` with PyTorch's shapes (see the module docstring).

        Args:
          params: from `init` (or `rnn_jax.interop.torch.from_torch`).
          inputs: ``[T, B, I]`` (``[B, T, I]`` if batch_first) or unbatched ``[T, I]``.
          lengths: optional ``[B]`` integers in ``[0, T]``: steps past a sequence's length are padding.
          initial_state: optional ``h_0 [L*D, B, H_out]`` (LSTM: ``(h_0, c_0)``); unbatched: no B axis.
          dropout_key: PRNG key for the dropouts; required when deterministic=False and a rate is > 0.
          deterministic: disables dropout.
        """
        x = jnp.asarray(inputs)
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None] if not self.batch_first else x[None]
            if lengths is not None:
                lengths = jnp.reshape(jnp.asarray(lengths), (1,))
            if initial_state is not None:
                initial_state = jax.tree.map(lambda s: jnp.asarray(s)[:, None], initial_state)
        if x.ndim != 3:
            layout = "[batch, time, input_size]" if self.batch_first else "[time, batch, input_size]"
            raise ValueError(f"inputs must have shape {layout} (batch_first={self.batch_first}) or "
                             f"[time, input_size], got {tuple(jnp.shape(inputs))}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"inputs must have input_size={self.input_size} features on the last axis, "
                             f"got shape {tuple(x.shape)}")
        x = jnp.swapaxes(x, 0, 1) if self.batch_first else x  # [T, B, I]
        T, B = x.shape[:2]
        if lengths is not None:
            lengths_arr = jnp.asarray(lengths)
            if lengths_arr.ndim == 1 and lengths_arr.shape[0] != B and lengths_arr.shape[0] == T:
                raise ValueError(f"lengths has shape {lengths_arr.shape} but the batch has {B} sequences of "
                                 f"{T} steps: is batch_first={self.batch_first} right?")
            lengths = check_lengths(lengths, B, T)
        if len(params) != self.num_layers:
            raise ValueError(f"params must hold {self.num_layers} layers, got {len(params)}")
        if not deterministic and self.has_dropout and dropout_key is None:
            raise ValueError("dropout_key is required when deterministic=False and a dropout rate is > 0")

        carries = self._split_state(initial_state, (B,))
        layer_keys = (jax.random.split(dropout_key, self.num_layers * 3)
                      if dropout_key is not None else [None] * (self.num_layers * 3))
        finals = []
        for layer in range(self.num_layers):
            cell = self.cell(layer)
            outs = []
            for d in range(self.num_directions):
                k = layer_keys[3 * layer + d]
                final, ys = unroll(
                    cell, params[layer][DIRECTIONS[d]], x, lengths, carries[layer * self.num_directions + d],
                    reverse=d == 1, time_major=True, unroll=self.unroll, checkpoint=self.checkpoint,
                    hoist_inputs=self.hoist_inputs, input_dropout=self.input_dropout,
                    recurrent_dropout=self.recurrent_dropout, zoneout=self.zoneout, dropout_key=k,
                    deterministic=deterministic, fused_backward=self.fused_backward)
                outs.append(ys)  # [T, B, H_out]
                finals.append(final)
            x = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=-1)  # [T, B, D*H_out]
            if layer < self.num_layers - 1 and self.dropout > 0 and not deterministic:
                x = x * _dropout_mask(layer_keys[3 * layer + 2], self.dropout, x.shape, x.dtype)
        final_state = jax.tree.map(lambda *s: jnp.stack(s), *finals)  # [L*D, B, ...]
        outputs = jnp.swapaxes(x, 0, 1) if self.batch_first else x
        if unbatched:
            outputs = outputs[0] if self.batch_first else outputs[:, 0]
            final_state = jax.tree.map(lambda s: s[:, 0], final_state)
        return outputs, final_state


@dataclasses.dataclass(frozen=True)
class RNN(_RNNBase):
    """Elman RNN stack, like ``torch.nn.RNN``; ``nonlinearity`` is ``'tanh'`` or ``'relu'``."""

    nonlinearity: str = "tanh"

    def _make_cell(self):
        return cells_lib.elman(self.hidden_size, nonlinearity=self.nonlinearity, bias=self.bias,
                               initializer=self.initializer, dtype=self.dtype, param_dtype=self.param_dtype)


@dataclasses.dataclass(frozen=True)
class LSTM(_RNNBase):
    """LSTM stack, like ``torch.nn.LSTM`` (with ``proj_size``), plus ``peephole`` and ``layer_norm``."""

    proj_size: int = 0
    peephole: bool = False
    layer_norm: bool = False

    def _make_cell(self):
        return cells_lib.lstm(self.hidden_size, proj_size=self.proj_size, peephole=self.peephole,
                              layer_norm=self.layer_norm, bias=self.bias, initializer=self.initializer,
                              dtype=self.dtype, param_dtype=self.param_dtype)


@dataclasses.dataclass(frozen=True)
class GRU(_RNNBase):
    """GRU stack, like ``torch.nn.GRU``; ``variant='cho'`` applies the reset gate before the matmul."""

    variant: str = "pytorch"

    def _make_cell(self):
        return cells_lib.gru(self.hidden_size, variant=self.variant, bias=self.bias,
                             initializer=self.initializer, dtype=self.dtype, param_dtype=self.param_dtype)

