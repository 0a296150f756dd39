"""Keep freed CPU memory in the process for the next step instead of handing it back to the OS.

glibc's malloc gives large freed blocks back to the kernel (blocks above a threshold that moves
between 128 KB and 32 MB are separate mappings, the top of the heap is trimmed, and threads other
than the main one get arenas of at most 64 MB), and maps them afresh on the next allocation;
every page of a fresh mapping faults on its first write. A step allocates and frees the same
activations every time, so with glibc's defaults every step faults its activations in again: a
large share of a one-image step, varying with what the heap held before (the main source of
run-to-run noise in the benchmarks), and more than half of a batch's step. With one arena for
all threads, blocks up to 256 MB kept in the heap and the heap top trimmed only past 2 GB, the
same pages are reused: no faults once the heap has settled, and batch renders on CPU run much
faster. The figures (benchmarks/cpu_runtime.py) are in docs/performance.md, "The CPU process";
the measurements behind this design in docs/decisions.md.

The price: the process keeps its peak heap after a large render instead of shrinking, and threads
share one malloc arena (a lock; negligible next to a step). Only glibc (Linux) is changed, once per
process, when a model is loaded for the CPU or a CPU ``Renderer`` is built; a thread that has
allocated before keeps its own arena, so the first call should come from the main thread, before
any render thread starts (``load_model`` does it). Set ``FEATVIZ_KEEP_FREED_MEMORY=0`` to leave
malloc alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys

# mallopt() parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Blocks above 256 MB are still mapped and unmapped each time: a batch of 32 at 224 px needs
# 154 MB tensors, and a user's own big arrays in the same kernel still go back to the OS.
MMAP_THRESHOLD = 256 * 1024 * 1024
TOP_PAD = 256 * 1024 * 1024
TRIM_THRESHOLD = 2**31 - 1  # the largest int mallopt takes: trim only past 2 GB of free heap top
OPT_OUT = "FEATVIZ_KEEP_FREED_MEMORY"


@functools.cache  # once per process
def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above (once per process). Returns True when it is
    tuned, False when this is not glibc or the environment variable opts out."""
    if os.environ.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Setting either one switches off glibc's dynamic adjustment of both, so both are set; the
    # mmap threshold first, so a refused trim setting cannot leave every tensor mmapped.
    if not mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        return False
    # Threads that already own an arena keep it: hence tuning early, in load_model.
    settings = ((_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD), (_M_ARENA_MAX, 1))
    return all(mallopt(option, value) for option, value in settings)
