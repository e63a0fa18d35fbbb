"""Host memory settings that decide how fast XLA:CPU runs a train step.

XLA:CPU allocates an executable's temporary buffers (and each output) with the C allocator at every
call. glibc's malloc serves blocks larger than its mmap threshold (at most 32 MiB) with fresh `mmap`
pages and unmaps them at free, so each call page-faults its whole temporary space back in: for the word
LM of `experiments/char_lm.py` (two [400, 10,000] float32 logits buffers and their neighbours) that is
22% of the step (73 -> 56 ms per step, BUILD_NOTES.md, issue 4). Raising the threshold cannot help
blocks above 32 MiB; turning mmap off for malloc (``M_MMAP_MAX = 0``) and never trimming the heap
(``M_TRIM_THRESHOLD``) keeps the pages resident and reused, as a caching allocator would. That is not
enough for threads: a thread other than the main one mallocs from its own arena, whose heaps are at most
64 MiB, and glibc serves a larger block there with `mmap` whatever ``M_MMAP_MAX`` says (and unmaps it at
free). XLA:CPU runs an executable from its own threads, and the char LM's temporary block is 553 MB:
141k page faults and 0.27 s of kernel time per 1.1 s step. One arena for the whole process
(``M_ARENA_MAX = 1``) puts every block on the main heap: 1.11 -> 0.97-1.01 s per step (BUILD_NOTES.md,
issue 4). The price: the process's resident size stays at its peak, and threads share one malloc lock
(no measurable cost in the experiments). Threads that already have an arena keep it, so call this early.

The library never calls this itself (it changes the whole process): experiments call it from ``main()``
behind a flag.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

from absl import logging

# mallopt parameters (glibc <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def keep_host_memory() -> bool:
    """Returns True once glibc's malloc keeps freed memory for reuse (no mmap, no trim, one arena).

    A no-op returning False on platforms without glibc (macOS, musl) or where `mallopt` refuses.
    """
    if platform.system() != "Linux":
        logging.info("keep_host_memory: %s has no glibc malloc; allocator left as is", platform.system())
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logging.info("keep_host_memory: no mallopt in this C library; allocator left as is")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success and 0 on error
    ok = (mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
          and mallopt(_M_ARENA_MAX, 1) == 1)
    logging.info("keep_host_memory: glibc malloc %s", "keeps freed memory" if ok else "refused the settings")
    return ok
