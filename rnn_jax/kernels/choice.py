"""Which kernel runs a recurrent layer: the one rule ``kernel='auto'`` follows, and the explicit choices.

``kernel`` (on `rnn_jax.unroll` and on the specs in `rnn_jax.rnn`) is one of:

* ``'scan'``: `rnn_jax.unroll`'s ``lax.scan``, the reference that defines the semantics: every cell,
  option, mask, regulariser, dtype and backend.
* ``'onednn'``: oneDNN's RNN primitive through an XLA FFI call (`rnn_jax.kernels.onednn`), on the CPU
  backend, for what `onednn_reason` accepts.
* ``'cudnn'``: cuDNN's LSTM through `jax.experimental.rnn` (`rnn_jax.kernels.cudnn`), on a CUDA GPU, for
  what `cudnn_reason` accepts (the LSTM without projection, peepholes or layer norm).
* ``'auto'`` (the default): the first of ``'onednn'`` (CPU backend) and ``'cudnn'`` (GPU backend) that
  computes the function the scan computes for these arguments, to float32 rounding (the tests hold every
  kernel to 1e-5 on outputs and 1e-4 on gradients of the scan and of PyTorch); else ``'scan'``. cuDNN
  calls are not partitioned over devices, so 'auto' takes cuDNN only in a process with one device (by
  name it runs anywhere: in a sharded jit XLA then gathers the batch onto every device).

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

from rnn_jax.checks import check_choice
from rnn_jax.kernels import cudnn, onednn_layer, onednn_library
from rnn_jax.kernels.onednn import cell_code
from rnn_jax.kernels.onednn_library import KernelUnavailable
from rnn_jax.kernels.served import unserved_arguments

KERNELS = ("auto", "scan", "onednn", "cudnn")
_AUTO = {"cpu": ("onednn",), "gpu": ("cudnn",)}  # the candidates of 'auto' per backend
_RUNNERS = {"onednn": onednn_layer.run_layer, "cudnn": cudnn.run_layer}  # a chosen kernel's layer
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
        return cudnn.unavailable_reason()
    return None


def onednn_reason(cell, params, *, mask: bool = False, checkpoint: bool = False) -> str | None:
    """Returns why the oneDNN kernel does not compute this layer exactly as the scan, or None if it does.

    Args: the (possibly wrapped) `cell` and its `params`; `mask`: a boolean mask was given (the kernel
    serves lengths, not arbitrary masks); `checkpoint`: rematerialisation was asked for (a scan feature).
    """
    code = cell_code(cell)
    if isinstance(code, str):
        return code
    return unserved_arguments(cell, params, mask=mask, checkpoint=checkpoint)


def cudnn_reason(cell, params, *, mask: bool = False, checkpoint: bool = False) -> str | None:
    """Returns why the cuDNN kernel does not compute this layer exactly as the scan, or None if it does.

    Args as `onednn_reason`'s.
    """
    reason = cudnn.cell_reason(cell)
    if reason is not None:
        return reason
    return unserved_arguments(cell, params, mask=mask, checkpoint=checkpoint)


def _reason(kernel: str, cell, params, mask: bool, checkpoint: bool) -> tuple[str | None, bool]:
    """Returns ``(reason or None, whether the kernel is missing from this process)``."""
    missing = _backend_reason(kernel)
    if missing is not None:
        return missing, True
    if kernel == "onednn":
        return onednn_reason(cell, params, mask=mask, checkpoint=checkpoint), False
    return cudnn_reason(cell, params, mask=mask, checkpoint=checkpoint), False


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
        if reason is None and name == "cudnn" and jax.device_count() > 1:
            reason = (f"cuDNN calls are not partitioned over devices ({jax.device_count()} here): in a sharded "
                      "jit XLA would gather the batch onto every device")
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


def run_layer(kernel: str, cell, params_dirs: list, x, lengths, carries: list, reverses: tuple):
    """Returns ``(finals, ys)`` per direction: one layer by `kernel` (``'onednn'`` or ``'cudnn'``, as chosen).

    Args and results as `rnn_jax.kernels.onednn_layer.run_layer`'s (time-major ``x [T, B, I]``).
    """
    return _RUNNERS[kernel](cell, params_dirs, x, lengths, carries, reverses)


def declined() -> dict:
    """Returns ``{(kernel, reason): times}``: every time 'auto' passed over a kernel in this process."""
    return dict(_DECLINED)
