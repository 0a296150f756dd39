"""Keep freed CPU memory in the process for the next step instead of handing it back to the OS.

glibc's malloc gives large freed blocks back to the kernel (blocks above a threshold that it moves
between 128 KB and 32 MB are separate mappings, and the top of the heap is trimmed), and maps them
afresh on the next allocation; every page of a fresh mapping faults on its first write. A step
allocates and frees the same few MB of activations every time, so with glibc's defaults a 224 px
step at ``blocks.2`` took 1,800-3,500 page faults on the 2-core CI machine: about 3 ms of a 10 ms
step, and it varied with whatever the heap held before (the main source of run-to-run noise in
the benchmarks). Fixing the mmap threshold at 32 MB and trimming the heap only past 2 GB keeps those pages
mapped for reuse: no faults after the first step.

The price: the process keeps its peak heap after a large render instead of shrinking (blocks over
32 MB are still mapped and unmapped as before). Only glibc (Linux) is changed, once per process,
when the first CPU ``Renderer`` is built; set ``FEATVIZ_KEEP_FREED_MEMORY=0`` to leave malloc alone.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

# mallopt() parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's own dynamic maximum on 64-bit
TOP_PAD = 256 * 1024 * 1024
TRIM_THRESHOLD = 2**31 - 1  # the largest int mallopt takes: trim only past 2 GB of free heap top
OPT_OUT = "FEATVIZ_KEEP_FREED_MEMORY"

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above (once per process). Returns True when it is
    tuned, False when this is not glibc or the environment variable opts out."""
    global _applied
    if _applied is None:
        _applied = _tune()
    return _applied


def _tune() -> bool:
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
    if not mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD):
        return False
    return bool(mallopt(_M_TOP_PAD, TOP_PAD))
