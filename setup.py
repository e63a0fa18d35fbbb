"""Installs rnn_jax; dependencies come from requirements.txt (runtime) and requirements-test.txt (extras).

The install also compiles the oneDNN kernel, ``rnn_jax/kernels/onednn_rnn.cc``, into
``rnn_jax/kernels/_onednn_rnn*.so`` against the oneDNN headers and library of the ``onednn-devel-cpu-gomp``
wheel and jaxlib's XLA FFI headers, all found in the build environment (pyproject.toml declares them).
Where it cannot be built (not Linux x86_64, no C++ compiler, no oneDNN or FFI headers, or
``RNN_JAX_SKIP_KERNEL=1``) the install succeeds without it and prints one line saying why (pip shows it with
``-v``); ``kernel='onednn'`` then raises ``KernelUnavailable``. A compile error on a machine that has all of
these fails the install: it is a bug in the source, not a missing platform.
"""

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
KERNEL = "rnn_jax.kernels._onednn_rnn"
SKIP_ENV = "RNN_JAX_SKIP_KERNEL"
# A wheel install puts the kernel in <prefix>/lib/pythonX.Y/site-packages/rnn_jax/kernels and the
# onednn-cpu-gomp wheel puts libdnnl.so.3 in <prefix>/lib: four levels up from the kernel.
RPATH = "$ORIGIN/../../../.."


def _requirements(name):
    lines = (HERE / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _dist_dir(dist, relative):
    """Returns the directory under which `dist`'s installed files hold `relative` (a/b/c.h), or None."""
    try:
        files = importlib.metadata.distribution(dist).files or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix() == relative or f.as_posix().endswith("/" + relative):
            return os.path.normpath(Path(f.locate()).parents[relative.count("/")])
    return None


def _jaxlib_include():
    """Returns jaxlib's header directory (holding xla/ffi/api/ffi.h) without importing jaxlib, or None."""
    spec = importlib.util.find_spec("jaxlib")
    for root in (spec.submodule_search_locations or ()) if spec else ():
        if (Path(root) / "include" / "xla" / "ffi" / "api" / "ffi.h").is_file():
            return str(Path(root) / "include")
    return None


def _compiler_missing(compiler):
    """Returns the C++ compiler's name when it is not on PATH, else None."""
    command = getattr(compiler, "compiler_so_cxx", None) or getattr(compiler, "compiler_cxx", None) or ["c++"]
    return None if shutil.which(command[0]) else command[0]


class BuildKernel(build_ext):
    """build_ext that locates the oneDNN and FFI headers, or skips the kernel saying why."""

    def build_extension(self, ext):
        if ext.name != KERNEL:
            return super().build_extension(ext)
        dirs = dict(dnnl_include=_dist_dir("onednn-devel-cpu-gomp", "oneapi/dnnl/dnnl.hpp"),
                    dnnl_lib=_dist_dir("onednn-cpu-gomp", "libdnnl.so"), ffi_include=_jaxlib_include())
        reason = self._skip_reason(dirs)
        if reason:
            print(f"rnn_jax: skipped the oneDNN kernel ({reason}); kernel='onednn' will be unavailable",
                  file=sys.stderr, flush=True)
            return None
        ext.include_dirs += [dirs["dnnl_include"], dirs["ffi_include"]]
        ext.library_dirs += [dirs["dnnl_lib"]]
        if getattr(self, "editable_mode", False) or self.inplace:
            # the kernel stays in the source tree: point at the installing environment's lib as well
            ext.runtime_library_dirs += [os.path.join(sys.prefix, "lib")]
        try:
            return super().build_extension(ext)
        except Exception as e:
            raise RuntimeError(f"compiling {ext.sources[0]} failed ({e}); set {SKIP_ENV}=1 to install "
                               "rnn_jax without its oneDNN kernel") from e

    def _skip_reason(self, dirs):
        """Returns why the kernel cannot be built here, or None."""
        if os.environ.get(SKIP_ENV, "0") not in ("", "0"):
            return f"{SKIP_ENV} is set"
        if not (sys.platform.startswith("linux") and platform.machine() == "x86_64"):
            return f"the onednn-cpu-gomp wheel is for Linux x86_64 only, this is {sys.platform} {platform.machine()}"
        missing = _compiler_missing(self.compiler)
        if missing:
            return f"no C++ compiler: {missing} is not on PATH"
        wheels = dict(dnnl_include="onednn-devel-cpu-gomp's oneapi/dnnl/dnnl.hpp",
                      dnnl_lib="onednn-cpu-gomp's libdnnl.so", ffi_include="jaxlib's xla/ffi/api/ffi.h")
        absent = [wheels[k] for k, v in dirs.items() if v is None]
        return f"not in the build environment: {', '.join(absent)}" if absent else None


_test = _requirements("requirements-test.txt")
_torch = [r for r in _test if r.startswith("torch")]

setup(
    name="rnn_jax",
    version="0.1.0",
    description="Recurrent neural networks as pure JAX functions, with PyTorch parity",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["rnn_jax", "rnn_jax.*", "experiments", "experiments.*"]),
    python_requires=">=3.10",
    install_requires=_requirements("requirements.txt"),
    extras_require={"test": _test, "torch": _torch},
    # -fPIC comes from Python's flags, -O2 and -g0 override its -O3 -g; no -fvisibility=hidden: the FFI handlers
    # must stay exported
    ext_modules=[Extension(KERNEL, sources=["rnn_jax/kernels/onednn_rnn.cc"], language="c++",
                           extra_compile_args=["-std=c++17", "-O2", "-g0"], libraries=["dnnl", "gomp"],
                           runtime_library_dirs=[RPATH])],
    cmdclass={"build_ext": BuildKernel},
)
