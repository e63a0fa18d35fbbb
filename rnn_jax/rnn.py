"""Stacked, bidirectional recurrent layers of any cell (`Stack`), and the RNN / LSTM / GRU specs that mirror
PyTorch's modules.

A spec is a frozen dataclass holding hyperparameters (PyTorch's constructor arguments plus ours) with
``init(key) -> params`` and ``apply(params, inputs, lengths=None, initial_state=None, *, dropout_key=None,
deterministic=True) -> (outputs, final_state)``. `Stack` runs any cell: ``cell_factory`` is a name in
`rnn_jax.registry.CELLS` (``'lstm'``, ``'gru'``, ``'elman'``, ``'min_gru'``, ``'min_lstm'``) or a factory,
``cell_options`` the cell's own options (``(('peephole', True),)``, a dict or a FrozenDict; stored as
sorted pairs so equal specs hash equally). `RNN`, `LSTM` and `GRU` are Stacks of the Elman, LSTM and GRU
cells whose options are fields, as in PyTorch. Shapes and layouts are PyTorch's:

* inputs ``[T, B, I]`` (``[B, T, I]`` if ``batch_first``), or unbatched ``[T, I]``;
* outputs ``[T, B, D * H_out]`` (D = 2 if bidirectional), the two directions concatenated on features
  (forward first), zero at padded steps (as ``pad_packed_sequence`` gives);
* ``h_n [num_layers * D, B, H_out]`` ordered layer-major (``l0``, ``l0_reverse``, ``l1``, ...); LSTM returns
  ``LSTMState(h_n, c_n)`` with ``c_n [num_layers * D, B, H]``, which unpacks like PyTorch's ``(h_n, c_n)``.
  H_out is ``proj_size`` for a projected LSTM, else ``hidden_size``.

Params are a list with one dict per layer, ``{'forward': cell_params, 'backward': cell_params}`` (no
'backward' unless bidirectional); ``cell_params`` are described in `rnn_jax.cells`. Layers are a plain
Python loop; dropout between layers (not after the last) as PyTorch does, keys by
`rnn_jax.dropout.layer_keys`. Each direction runs by `rnn_jax.unroll`, or by the cell's own ``parallel``
unroll (minGRU/minLSTM's associative scan) when it has one and the spec asks for no per-step regulariser
(input or recurrent dropout, zoneout), which need the sequential scan.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from rnn_jax import dropout as dropout_lib
from rnn_jax import registry
from rnn_jax.cells import Cell, LSTMState, freeze_options
from rnn_jax.checks import check_choice, check_floating, check_rate, check_real, check_size
from rnn_jax.kernels.choice import KERNELS, choose, run_layer
from rnn_jax.sequence import batch_of_one, check_lengths
from rnn_jax.unroll import kernel_lengths, unroll

DIRECTIONS = ("forward", "backward")
RATES = ("dropout", "input_dropout", "recurrent_dropout", "zoneout")


@dataclasses.dataclass(frozen=True)
class Stack:
    """Layers of one cell, PyTorch's layout (keyword-only after num_layers); see the module docstring.

    Attributes:
      input_size, hidden_size, num_layers: I, H, L.
      cell_factory: a name in `rnn_jax.registry.CELLS` or a factory ``(hidden_size, **options) -> Cell``.
      cell_options: the cell's own options (a mapping or pairs; not bias/initializer/dtype/param_dtype,
        which are fields here).
      bias, batch_first, dropout, bidirectional: as PyTorch's (dropout between layers).
      initializer: ``'pytorch'`` or ``'jax'`` (`rnn_jax.cells`).
      dtype, param_dtype: compute and parameter dtypes.
      input_dropout, recurrent_dropout, zoneout: `rnn_jax.unroll`'s regularisers, in every layer.
      unroll, checkpoint, hoist_inputs, fused_backward: `rnn_jax.unroll`'s performance knobs.
      kernel: what runs each layer: ``'auto'`` (default), ``'scan'``, ``'onednn'`` or ``'cudnn'``
        (`rnn_jax.kernels.choice`). A layer without per-step regularisers runs both directions in one
        kernel call; with them each direction goes through `rnn_jax.unroll` with this kernel.
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    _: dataclasses.KW_ONLY
    cell_factory: Any = "lstm"
    cell_options: Any = ()
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
    kernel: str = "auto"

    def __post_init__(self):
        for name in ("input_size", "hidden_size", "num_layers"):
            check_size(name, getattr(self, name))
        for name in RATES:
            check_rate(name, getattr(self, name))
        check_choice("kernel", self.kernel, KERNELS)
        # one canonical form per dtype and per option set, so equal specs hash equally (jit static arguments)
        object.__setattr__(self, "param_dtype", jnp.dtype(self.param_dtype))
        if self.dtype is not None:
            object.__setattr__(self, "dtype", jnp.dtype(self.dtype))
        object.__setattr__(self, "cell_options", freeze_options(self._own_options()))
        self.cell(0)  # validates the cell's own arguments now rather than at init

    def _own_options(self):
        """The cell's own options: `cell_options` here, the option fields in the specialisations."""
        return self.cell_options

    # --- structure
    @property
    def num_directions(self) -> int:
        """D: 2 if bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def has_dropout(self) -> bool:
        """Whether any dropout or zoneout rate is > 0 (apply then needs a key unless deterministic)."""
        return any(getattr(self, name) > 0 for name in RATES)

    def cell(self, layer: int = 0) -> Cell:
        """Returns the `Cell` of every direction of `layer` (all layers share hyperparameters)."""
        del layer
        return registry.make_cell(self.cell_factory, self.hidden_size, self.cell_options, bias=self.bias,
                                  initializer=self.initializer, dtype=self.dtype, param_dtype=self.param_dtype)

    @property
    def output_size(self) -> int:
        """H_out: the size of each direction's output and of h_n."""
        return self.cell().output_size

    def layer_input_size(self, layer: int) -> int:
        """Returns the size of `layer`'s inputs: I for the first, ``D * H_out`` above it."""
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
        LD = self.num_layers * self.num_directions
        if initial_state is None:
            return [None] * LD
        expected = self.cell().initial_carry((LD,) + batch_shape)
        leaves = [check_real("initial_state", x) for x in jax.tree.leaves(initial_state)]
        exp_leaves, exp_tree = jax.tree.flatten(expected)
        what = "(h_0, c_0)" if isinstance(expected, LSTMState) else "h_0"
        if len(leaves) != len(exp_leaves):
            raise ValueError(f"initial_state must be {what}, got {len(leaves)} array(s)")
        for name, got, want in zip(("h_0", "c_0"), leaves, exp_leaves):
            if got.shape != want.shape:
                raise ValueError(f"initial_state {name} must have shape {tuple(want.shape)} "
                                 f"[num_layers * num_directions, batch, size], got {tuple(got.shape)}")
        state = jax.tree.unflatten(exp_tree, leaves)
        return [jax.tree.map(lambda s: s[i], state) for i in range(LD)]

    def _check_inputs(self, inputs, lengths, initial_state):
        """Returns ``(x [T, B, I], lengths [B] or None, initial_state, unbatched)`` after checking them."""
        x = check_floating("inputs", inputs)
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None] if not self.batch_first else x[None]
            lengths, _, _ = batch_of_one(lengths, None, None)  # a scalar -> [1]
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
        return x, lengths, initial_state, unbatched

    @property
    def runs_parallel(self) -> bool:
        """Whether directions run by the cell's ``parallel`` unroll (it has one; no per-step regulariser)."""
        per_step = any(getattr(self, name) > 0 for name in ("input_dropout", "recurrent_dropout", "zoneout"))
        return self.cell().parallel is not None and not per_step

    def _unroll(self, cell, params, x, lengths, carry, reverse, key, deterministic, kernel):
        """Returns ``(final_carry, ys [T, B, H_out])`` of one direction over time-major ``x [T, B, I]``."""
        if self.runs_parallel:
            return cell.parallel(params, x, lengths, carry, reverse, True)
        return unroll(cell, params, x, lengths, carry, reverse=reverse, time_major=True, unroll=self.unroll,
                      checkpoint=self.checkpoint, hoist_inputs=self.hoist_inputs, input_dropout=self.input_dropout,
                      recurrent_dropout=self.recurrent_dropout, zoneout=self.zoneout, dropout_key=key,
                      deterministic=deterministic, fused_backward=self.fused_backward, kernel=kernel)

    def _layer_kernel(self, cell, params, deterministic: bool) -> str:
        """Returns the kernel of a whole layer, or ``'per_direction'`` (through `rnn_jax.unroll`)."""
        rates = ("input_dropout", "recurrent_dropout") if not deterministic else ()
        if self.runs_parallel and self.kernel not in ("auto", "scan"):
            choose(self.kernel, cell, params["forward"])  # raises: no kernel serves the parallel cells
        if self.runs_parallel or self.zoneout > 0 or any(getattr(self, r) > 0 for r in rates):
            return "per_direction"
        return choose(self.kernel, cell, params["forward"], checkpoint=self.checkpoint)

    def _apply_layer(self, layer, params, x, lengths, carries, keys, deterministic):
        """Returns ``(x [T, B, D*H_out], finals)``: one layer's directions and the dropout after it."""
        cell = self.cell(layer)
        D = self.num_directions
        chosen = self._layer_kernel(cell, params, deterministic)
        if chosen in ("onednn", "cudnn"):
            B = x.shape[1]
            layer_carries = [c if c is not None else cell.initial_carry((B,))
                             for c in carries[layer * D:(layer + 1) * D]]
            finals, outs = run_layer(chosen, cell, [params[d] for d in DIRECTIONS[:D]], x,
                                     kernel_lengths(lengths, x.shape[0]), layer_carries, (False, True)[:D])
            return self._between_layers(layer, outs, keys, deterministic), finals
        outs, finals = [], []
        for d in range(D):
            final, ys = self._unroll(cell, params[DIRECTIONS[d]], x, lengths, carries[layer * D + d], d == 1,
                                     keys.directions[d], deterministic,
                                     self.kernel if chosen == "per_direction" else chosen)
            outs.append(ys)  # [T, B, H_out]
            finals.append(final)
        return self._between_layers(layer, outs, keys, deterministic), finals

    def _between_layers(self, layer, outs, keys, deterministic):
        """Returns the directions' outputs concatenated ``[T, B, D*H_out]``, with dropout before the next layer."""
        x = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=-1)  # [T, B, D*H_out]
        if layer < self.num_layers - 1 and dropout_lib.is_active(self.dropout, deterministic):
            x = x * dropout_lib.dropout_mask(keys.between, self.dropout, x.shape, x.dtype)
        return x

    def apply(self, params, inputs, lengths=None, initial_state=None, *, dropout_key=None,
              deterministic: bool = True):
        """Returns ``(outputs, final_state)`` with PyTorch's shapes (see the module docstring).

        Args:
          params: from `init` (or `rnn_jax.interop.torch.from_torch`).
          inputs: floating ``[T, B, I]`` (``[B, T, I]`` if batch_first) or unbatched ``[T, I]``.
          lengths: optional ``[B]`` integers in ``[0, T]`` (a scalar if unbatched): steps past a sequence's
            length are padding; a length-0 sequence gives zero outputs and its initial state.
          initial_state: optional ``h_0 [L*D, B, H_out]`` (LSTM: ``(h_0, c_0)``); unbatched: no B axis.
          dropout_key: PRNG key for the dropouts; required when deterministic=False and a rate is > 0.
          deterministic: disables dropout.

        Checks, at trace time (so under jit too): inputs of a floating dtype (any precision, computed in the
        spec's compute dtype; integers, bools and complex numbers are a TypeError naming `inputs`), integer
        lengths, a real initial_state, and every rank and size (ValueErrors naming the argument). The
        lengths' range ``[0, T]`` only when they are concrete: under jit a length outside it acts as if
        clipped. B = 0 and T = 0 give empty outputs (T = 0: the initial state as final state).
        """
        x, lengths, initial_state, unbatched = self._check_inputs(inputs, lengths, initial_state)
        if len(params) != self.num_layers:
            raise ValueError(f"params must hold {self.num_layers} layers, got {len(params)}")
        if not deterministic and self.has_dropout and dropout_key is None:
            raise ValueError("dropout_key is required when deterministic=False and a dropout rate is > 0")
        carries = self._split_state(initial_state, (x.shape[1],))
        finals = []
        for layer, keys in enumerate(dropout_lib.layer_keys(dropout_key, self.num_layers)):
            x, layer_finals = self._apply_layer(layer, params[layer], x, lengths, carries, keys, deterministic)
            finals += layer_finals
        final_state = jax.tree.map(lambda *s: jnp.stack(s), *finals)  # [L*D, B, ...]
        outputs = jnp.swapaxes(x, 0, 1) if self.batch_first else x
        if unbatched:
            outputs = outputs[0] if self.batch_first else outputs[:, 0]
            final_state = jax.tree.map(lambda s: s[:, 0], final_state)
        return outputs, final_state


def _fixed(value):
    """A Stack field that a specialisation fixes (not an argument of its constructor)."""
    return dataclasses.field(default=value, init=False)


@dataclasses.dataclass(frozen=True)
class RNN(Stack):
    """Elman RNN stack, like ``torch.nn.RNN``; ``nonlinearity`` is ``'tanh'`` or ``'relu'``."""

    cell_factory: Any = _fixed("elman")
    cell_options: Any = _fixed(())  # set from the option fields
    nonlinearity: str = "tanh"

    def _own_options(self):
        return {"nonlinearity": self.nonlinearity}


@dataclasses.dataclass(frozen=True)
class LSTM(Stack):
    """LSTM stack, like ``torch.nn.LSTM`` (with ``proj_size``), plus ``peephole`` and ``layer_norm``."""

    cell_factory: Any = _fixed("lstm")
    cell_options: Any = _fixed(())  # set from the option fields
    proj_size: int = 0
    peephole: bool = False
    layer_norm: bool = False

    def _own_options(self):
        return {"proj_size": self.proj_size, "peephole": self.peephole, "layer_norm": self.layer_norm}


@dataclasses.dataclass(frozen=True)
class GRU(Stack):
    """GRU stack, like ``torch.nn.GRU``; ``variant='cho'`` applies the reset gate before the matmul."""

    cell_factory: Any = _fixed("gru")
    cell_options: Any = _fixed(())  # set from the option fields
    variant: str = "pytorch"

    def _own_options(self):
        return {"variant": self.variant}
