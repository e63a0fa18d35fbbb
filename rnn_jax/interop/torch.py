"""Weight conversion between rnn_jax specs and ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (torch is optional).

``from_torch(module) -> (spec, params)`` and ``to_torch(spec, params) -> module``; `load_torch_state` reads a
saved state dict with ``torch.load(..., weights_only=True)`` only (no pickled object is ever built). PyTorch stores
``weight_ih_l{k}[_reverse]`` as ``[G*H, I]`` (``x @ W.T``); rnn_jax stores ``w_ih [I, G*H]``, so each
matrix is transposed and gate order (i,f,g,o / r,z,n) is kept. `to_torch` takes any `rnn_jax.rnn.Stack`
and decides from its cell's record (``kind`` and ``options``, `rnn_jax.cells.Cell`) whether PyTorch has
the same function: peephole and layer-norm LSTMs, the Cho GRU and the minimal cells have no PyTorch
counterpart and raise ``ValueError``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from rnn_jax.rnn import DIRECTIONS, GRU, LSTM, RNN, Stack

_NAMES = (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh"),
          ("w_hr", "weight_hr"))


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("rnn_jax.interop.torch needs PyTorch: pip install 'rnn_jax[torch]'") from e
    return torch


def load_torch_state(path: str | os.PathLike) -> dict:
    """Returns the state dict (`str` -> ``torch.Tensor``, on the CPU) that ``torch.save(module.state_dict(), path)``
    wrote, for ``module.load_state_dict`` and then `from_torch`.

    Read with ``torch.load(path, weights_only=True)``: tensors and plain containers only; a file holding any
    other pickled object is refused before that object is built (nothing in the file is run).

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: the file is not a PyTorch file of weights only, or holds something other than a mapping of
        names to tensors (names the file).
    """
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no PyTorch weights at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an UnpicklingError (a refused object) or a RuntimeError (not a torch file)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: refused by torch.load(weights_only=True), so not loaded: {first}") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise ValueError(f"{path}: expected a state dict (parameter names -> tensors), got {type(state).__name__}")
    return dict(state)


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def from_torch(module, *, dtype=None, param_dtype=None):
    """Returns ``(spec, params)`` equal to a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` module.

    Args:
      module: the torch module (any of its options: layers, bias, batch_first, dropout, bidirectional,
        nonlinearity, proj_size).
      dtype: compute dtype for the spec (default None: the parameters').
      param_dtype: dtype of the returned parameters (default: the module's).
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        raise TypeError(f"module must be a torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
    common = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                  dropout=float(module.dropout), bidirectional=module.bidirectional)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    pdt = param_dtype or next(iter(state.values())).dtype
    common.update(dtype=dtype, param_dtype=pdt)
    if isinstance(module, nn.LSTM):
        spec = LSTM(module.input_size, module.hidden_size, proj_size=module.proj_size, **common)
    elif isinstance(module, nn.GRU):
        spec = GRU(module.input_size, module.hidden_size, **common)
    else:
        spec = RNN(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity, **common)
    params = []
    for layer in range(spec.num_layers):
        layer_params = {}
        for d in range(spec.num_directions):
            p = {}
            for ours, theirs in _NAMES:
                key = theirs + _suffix(layer, d)
                if key in state:
                    w = state[key]
                    p[ours] = np.asarray(w.T if w.ndim == 2 else w, dtype=pdt)
            layer_params[DIRECTIONS[d]] = p
        params.append(layer_params)
    return spec, params


def _torch_module(nn, spec: Stack):
    """Returns the empty ``torch.nn`` module computing `spec`'s function, from its cell's record."""
    common = dict(num_layers=spec.num_layers, bias=spec.bias, batch_first=spec.batch_first,
                  dropout=spec.dropout, bidirectional=spec.bidirectional)
    cell = spec.cell()
    options = dict(cell.options)
    if cell.kind == "lstm":
        if options["peephole"] or options["layer_norm"]:
            raise ValueError("to_torch: torch.nn.LSTM has no peephole or layer_norm option; "
                             f"got peephole={options['peephole']}, layer_norm={options['layer_norm']}")
        return nn.LSTM(spec.input_size, spec.hidden_size, proj_size=options["proj_size"], **common)
    if cell.kind == "gru":
        if options["variant"] != "pytorch":
            raise ValueError(f"to_torch: torch.nn.GRU implements variant='pytorch' only, got {options['variant']!r}")
        return nn.GRU(spec.input_size, spec.hidden_size, **common)
    if cell.kind == "elman":
        return nn.RNN(spec.input_size, spec.hidden_size, nonlinearity=options["nonlinearity"], **common)
    raise ValueError(f"to_torch: torch.nn has no {cell.kind!r} cell")


def to_torch(spec, params):
    """Returns a ``torch.nn.RNN``/``LSTM``/``GRU`` module holding `params` (float32 or the params' dtype).

    Args:
      spec: a `rnn_jax.rnn.Stack` (`RNN`, `LSTM`, `GRU`, or a Stack of those cells).
      params: the spec's parameters.

    Raises:
      ValueError: for options PyTorch does not have (peephole, layer_norm, the Cho GRU, other cells).
    """
    torch = _torch()
    if not isinstance(spec, Stack):
        raise TypeError(f"spec must be an rnn_jax Stack (RNN, LSTM, GRU), got {type(spec).__name__}")
    module = _torch_module(torch.nn, spec)
    if len(params) != spec.num_layers:
        raise ValueError(f"params must hold {spec.num_layers} layers, got {len(params)}")
    state = {}
    for layer in range(spec.num_layers):
        for d in range(spec.num_directions):
            p = params[layer][DIRECTIONS[d]]
            for ours, theirs in _NAMES:
                if ours in p:
                    w = np.asarray(p[ours])
                    state[theirs + _suffix(layer, d)] = torch.tensor(np.array(w.T if w.ndim == 2 else w))
    first = next(iter(state.values()))
    module = module.to(first.dtype)
    module.load_state_dict(state, strict=True)
    return module
