"""Loads the compiled oneDNN kernel (``rnn_jax/kernels/_onednn_rnn*.so``) and registers its XLA FFI targets.

The shared library is built from ``onednn_rnn.cc`` by the package's install step (``pip install .`` or
``pip install -e .``; setup.py) against the ``onednn-cpu-gomp`` wheel's ``libdnnl.so.3`` (oneDNN 3.2, GNU
OpenMP threading: the OpenMP runtime torch's wheel uses too, so a process holding both has one OpenMP
thread pool). Where no compiler or no oneDNN wheel exists (another OS or architecture), the install still
succeeds without the library; `load` then raises `KernelUnavailable` saying why and how to get it.

`load` first loads ``libdnnl.so.3`` from the installed ``onednn-cpu-gomp`` distribution (found through its
file record, so an editable install, whose library sits in the source tree, finds it too; a wheel install
also has an RPATH to it), then the kernel library, checks its oneDNN version and registers
``rnn_jax_onednn_rnn_forward`` / ``rnn_jax_onednn_rnn_backward`` for the CPU platform. It runs once per
process; later calls return the same `Library` (or raise the same reason).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.metadata
import os
import sys
from typing import NamedTuple

import jax

TARGETS = ("rnn_jax_onednn_rnn_forward", "rnn_jax_onednn_rnn_backward")
DISTRIBUTION = "onednn-cpu-gomp"
HOW_TO_GET = ("reinstall rnn_jax on Linux x86_64 with a C++17 compiler (`pip install -e .`): the install "
              f"compiles rnn_jax/kernels/onednn_rnn.cc against the {DISTRIBUTION} wheel")


class KernelUnavailable(RuntimeError):
    """A kernel that cannot run in this process (no library, wrong backend); the message says why."""


class Library(NamedTuple):
    """The loaded kernel library: oneDNN's version and the workspace-size query."""

    version: str
    path: str
    workspace_bytes: object  # ctypes function (see onednn_rnn.cc)


def _dnnl_path() -> str | None:
    """Returns the path of libdnnl.so.3 from the installed oneDNN wheel, or None."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "libdnnl.so.3":
            return str(f.locate())
    return None


def _kernel_path() -> str | None:
    """Returns the path of the compiled kernel library inside this package, or None."""
    found = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "_onednn_rnn*.so")))
    return found[0] if found else None


@functools.lru_cache(maxsize=None)
def _load() -> Library | str:
    """Loads and registers the library once; returns it, or the reason it cannot be loaded (a string)."""
    if not sys.platform.startswith("linux"):
        return f"the oneDNN kernel is built on Linux only (this is {sys.platform})"
    kernel = _kernel_path()
    if kernel is None:
        return f"rnn_jax was installed without its compiled oneDNN kernel: {HOW_TO_GET}"
    dnnl = _dnnl_path()
    if dnnl is None:
        return f"the {DISTRIBUTION} wheel (libdnnl.so.3) is not installed: `pip install {DISTRIBUTION}==2023.2.0`"
    try:
        ctypes.CDLL(dnnl, mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(kernel)
    except OSError as e:
        return f"could not load the oneDNN kernel ({e}): {HOW_TO_GET}"
    lib.rnn_jax_onednn_version.restype = ctypes.c_char_p
    size = lib.rnn_jax_onednn_workspace_bytes
    size.restype = ctypes.c_int64
    size.argtypes = [ctypes.c_int32] * 2 + [ctypes.c_int64] * 5 + [ctypes.c_int32, ctypes.POINTER(ctypes.c_char_p)]
    for name in TARGETS:
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    return Library(lib.rnn_jax_onednn_version().decode(), kernel, size)


def load() -> Library:
    """Returns the loaded `Library`; raises `KernelUnavailable` (saying why and how to get it) otherwise."""
    got = _load()
    if isinstance(got, str):
        raise KernelUnavailable(got)
    return got


def unavailable_reason() -> str | None:
    """Returns why the library cannot be used in this process, or None when it can."""
    got = _load()
    return got if isinstance(got, str) else None


def workspace_bytes(cell: int, direction: int, T: int, N: int, SLC: int, DHC: int, DIC: int,
                    projected: bool) -> int:
    """Returns the bytes of workspace a training forward of this shape fills (oneDNN's own figure)."""
    error = ctypes.c_char_p()
    n = load().workspace_bytes(cell, direction, T, N, SLC, DHC, DIC, int(projected), ctypes.byref(error))
    if n < 0:
        raise ValueError(f"oneDNN refused the layer shape T={T} N={N} input={SLC} hidden={DHC} output={DIC}: "
                         f"{error.value.decode()}")
    return int(n)
