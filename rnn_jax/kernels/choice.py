"""Which kernel runs a recurrent layer: the one rule ``kernel='auto'`` follows, and the explicit choices.

``kernel`` (on `rnn_jax.unroll` and on the specs in `rnn_jax.rnn`) is one of:

* ``'scan'``: `rnn_jax.unroll`'s ``lax.scan``, the reference that defines the semantics: every cell,
  option, mask, regulariser, dtype and backend.
* ``'onednn'``: oneDNN's RNN primitive through an XLA FFI call (`rnn_jax.kernels.onednn`), on the CPU
  backend, for what `onednn_reason` accepts.
* ``'cudnn'``: cuDNN on a GPU backend. Not in this version yet: asking for it raises, and ``'auto'``
  passes over it with that reason.
* ``'auto'`` (the default): the first of ``'onednn'`` (CPU backend) and ``'cudnn'`` (GPU backend) that
  computes the function the scan computes for these arguments, to float32 rounding (the tests hold every
  kernel to 1e-5 on outputs and 1e-4 on gradients of the scan and of PyTorch); else ``'scan'``.

A kernel asked for by name that cannot serve the arguments raises (`KernelUnavailable` when it is not in
this process, e.g. not built or the wrong backend; ValueError when it does not serve the arguments), with
the reason. When ``'auto'`` passes over a kernel, the reason is logged once per process (logger
``rnn_jax.kernels``, WARNING) and counted in `declined()`, which the benchmark records. The performance
knobs of the scan (``unroll``, ``hoist_inputs``, ``fused_backward``) do not apply to a kernel.
"""

from __future__ import annotations

import collections
import logging

import jax
import jax.numpy as jnp

from rnn_jax.checks import check_choice
from rnn_jax.kernels import onednn_library
from rnn_jax.kernels.onednn import cell_code
from rnn_jax.kernels.onednn_library import KernelUnavailable

KERNELS = ("auto", "scan", "onednn", "cudnn")
_AUTO = {"cpu": ("onednn",), "gpu": ("cudnn",)}  # the candidates of 'auto' per backend
_LOG = logging.getLogger("rnn_jax.kernels")
_DECLINED = collections.Counter()


def _backend_reason(kernel: str) -> str | None:
    """Returns why `kernel` cannot run in this process at all (backend, library), or None."""
    backend = jax.default_backend()
    if kernel == "onednn":
        if backend != "cpu":
            return f"oneDNN runs on the CPU backend; the default backend is {backend!r}"
        return onednn_library.unavailable_reason()
    if kernel == "cudnn":
        if backend != "gpu":
            return f"cuDNN runs on a GPU backend; the default backend is {backend!r}"
        return "the cuDNN kernel is not in this version of rnn_jax yet"
    return None


def onednn_reason(cell, params, *, mask: bool = False, checkpoint: bool = False) -> str | None:
    """Returns why the oneDNN kernel does not compute this layer exactly as the scan, or None if it does.

    Args: the (possibly wrapped) `cell` and its `params`; `mask`: a boolean mask was given (the kernel
    serves lengths, not arbitrary masks); `checkpoint`: rematerialisation was asked for (a scan feature).
    """
    code = cell_code(cell)
    if isinstance(code, str):
        return code
    if cell.compute_dtype(params) != jnp.float32:
        return f"it computes in float32, not {jnp.dtype(cell.compute_dtype(params)).name}"
    dtypes = sorted({jnp.dtype(leaf.dtype).name for leaf in jax.tree.leaves(params)} - {"float32"})
    if dtypes:
        return f"it takes float32 parameters, not {dtypes}"
    if mask:
        return "a boolean mask was given (it serves lengths, i.e. masks that are a prefix of each sequence)"
    if checkpoint:
        return "checkpoint=True asks for the scan's rematerialisation"
    return None


def _reason(kernel: str, cell, params, mask: bool, checkpoint: bool) -> tuple[str | None, bool]:
    """Returns ``(reason or None, whether the kernel is missing from this process)``."""
    missing = _backend_reason(kernel)
    if missing is not None:
        return missing, True
    if kernel == "onednn":
        return onednn_reason(cell, params, mask=mask, checkpoint=checkpoint), False
    return None, False


def choose(kernel: str, cell, params, *, mask: bool = False, checkpoint: bool = False) -> str:
    """Returns the kernel that runs this layer: ``'scan'``, ``'onednn'`` or ``'cudnn'`` (module docstring).

    Raises `KernelUnavailable` or ValueError when a kernel asked for by name cannot serve the arguments.
    """
    check_choice("kernel", kernel, KERNELS)
    if kernel == "scan":
        return "scan"
    if kernel != "auto":
        reason, missing = _reason(kernel, cell, params, mask, checkpoint)
        if reason is not None:
            raise (KernelUnavailable if missing else ValueError)(f"kernel={kernel!r} cannot run this layer: {reason}")
        return kernel
    for name in _AUTO.get(jax.default_backend(), ()):
        reason, _ = _reason(name, cell, params, mask, checkpoint)
        if reason is None:
            return name
        _note_declined(name, reason)
    return "scan"


def _note_declined(kernel: str, reason: str) -> None:
    """Logs, once per process and reason, that 'auto' passed over `kernel`, and counts it."""
    key = (kernel, reason)
    if key not in _DECLINED:
        _LOG.warning("kernel='auto' uses the scan, not %r: %s", kernel, reason)
    _DECLINED[key] += 1


def declined() -> dict:
    """Returns ``{(kernel, reason): times}``: every time 'auto' passed over a kernel in this process."""
    return dict(_DECLINED)
