"""Tests of rnn_jax.training.host: keep_host_memory stops glibc malloc from mapping large blocks (in a
subprocess, as it changes the process's allocator)."""

import os
import subprocess
import sys

import pytest

from tests.training.conftest import REPO


_MALLOC_PROBE = """
import ctypes, sys, threading
import numpy as np
from rnn_jax.training import keep_host_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                              "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mapped_while_holding(nbytes):
    block = np.ones(nbytes, np.uint8)  # numpy takes large blocks from malloc
    mapped = libc.mallinfo2().hblkhd
    del block
    return mapped

def mapped_while_a_thread_holds(nbytes):
    out = []
    thread = threading.Thread(target=lambda: out.append(mapped_while_holding(nbytes)))
    thread.start()
    thread.join()
    return out[0]

n = 64 << 20
before = mapped_while_holding(n)
ok = keep_host_memory()
# a thread's own arena (heaps of at most 64 MiB) would mmap a 128 MiB block whatever M_MMAP_MAX says
print(before >= n, ok, mapped_while_holding(n) < n, mapped_while_a_thread_holds(2 * n) < n)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc malloc only")
def test_keep_host_memory_stops_malloc_from_mapping_large_blocks():
    """Before: glibc serves a 64 MiB block with mmap; after keep_host_memory, from the heap it keeps, also
    for a block larger than a thread arena's heap, allocated on another thread."""
    out = subprocess.run([sys.executable, "-c", _MALLOC_PROBE], capture_output=True, text=True, cwd=REPO,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.split()
    assert out == ["True", "True", "True", "True"]
