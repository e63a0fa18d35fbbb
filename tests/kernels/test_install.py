"""The install step's oneDNN kernel: built by `pip install`, linked so that libdnnl.so.3 resolves, and absent cleanly.

setup.py compiles ``rnn_jax/kernels/onednn_rnn.cc`` on Linux x86_64 (unless ``RNN_JAX_SKIP_KERNEL`` is set);
a wheel install finds ``libdnnl.so.3`` through the RUNPATH ``$ORIGIN/../../../..``, an editable one
through an absolute entry for the installing environment's lib (and the loader's preload either way).
"""

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys

import pytest

from rnn_jax.kernels import onednn_library

BUILT_HERE = sys.platform.startswith("linux") and platform.machine() == "x86_64"
built = pytest.mark.skipif(not BUILT_HERE or bool(os.environ.get("RNN_JAX_SKIP_KERNEL")),
                           reason="the install builds the oneDNN kernel on Linux x86_64 only, unless skipped")
RPATH = "$ORIGIN/../../../.."


def _dynamic(path):
    """Returns (NEEDED libraries, RUNPATH/RPATH entries) from `readelf -d`."""
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    paths = re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[(.+?)\]", out)
    return needed, [entry for p in paths for entry in p.split(":")]


@built
def test_install_built_the_kernel_and_it_loads():
    path = onednn_library._kernel_path()
    assert path is not None, "no rnn_jax/kernels/_onednn_rnn*.so: the install did not build the kernel"
    library = onednn_library.load()
    assert library.version.startswith("3.2"), library.version
    assert library.path == path


@built
@pytest.mark.skipif(shutil.which("readelf") is None or shutil.which("ldd") is None, reason="needs readelf and ldd")
def test_kernel_links_libdnnl_through_its_runpath():
    path = onednn_library._kernel_path()
    dnnl = onednn_library._dnnl_path()
    assert path is not None and dnnl is not None
    needed, runpath = _dynamic(path)
    assert "libdnnl.so.3" in needed, needed
    assert RPATH in runpath, runpath
    # in a wheel install the kernel sits in <site-packages>/rnn_jax/kernels: the RUNPATH must reach libdnnl.so.3
    site = importlib.metadata.distribution(onednn_library.DISTRIBUTION).locate_file("")
    wheel_dir = os.path.join(site, "rnn_jax", "kernels", RPATH.replace("$ORIGIN/", ""))
    assert os.path.realpath(wheel_dir) == os.path.dirname(os.path.realpath(dnnl))
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True, check=True, env=env).stdout
    resolved = re.search(r"libdnnl\.so\.3 => (\S+)", ldd)
    assert resolved and resolved.group(1) != "not", ldd
    assert os.path.realpath(resolved.group(1)) == os.path.realpath(dnnl)


def test_without_the_library_load_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(onednn_library, "_kernel_path", lambda: None)
    onednn_library._load.cache_clear()
    try:
        with pytest.raises(onednn_library.KernelUnavailable) as raised:
            onednn_library.load()
        assert onednn_library.unavailable_reason() == str(raised.value)
        if sys.platform.startswith("linux"):  # elsewhere the reason is the platform itself
            assert "without its compiled oneDNN kernel" in str(raised.value)
            assert onednn_library.HOW_TO_GET in str(raised.value)
    finally:
        onednn_library._load.cache_clear()
