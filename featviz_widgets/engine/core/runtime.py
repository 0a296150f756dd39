"""Process-wide CPU tuning, opt-in: nothing in the package calls ``tune()`` on import, on
``load_model()`` or in ``Renderer``; a user (``featviz_widgets.tune()``), ``render(...,
tuned=True)`` and the ``featviz`` command line ask for it.

**malloc** (``tune()``). glibc's malloc gives large freed blocks back to the kernel (blocks above a
threshold that moves between 128 KB and 32 MB are separate mappings, the top of the heap is
trimmed, and threads other than the main one get arenas of at most 64 MB), and maps them afresh on
the next allocation; every page of a fresh mapping faults on its first write. A step allocates and
frees the same activations every time, so with glibc's defaults every step faults its activations
in again: a large share of a one-image step and more than half of a batch's step. With one arena
for all threads, blocks up to 256 MB kept in the heap and the heap top trimmed only past 2 GB, the
same pages are reused: no faults once the heap has settled. The price: the process keeps its peak
heap after a large render instead of shrinking, for the rest of its life, whoever allocates; that
is why it is the user's choice. Threads that already own an arena keep it, so call ``tune()``
early, from the main thread, before any render thread starts. ``FEATVIZ_KEEP_FREED_MEMORY=0``
makes ``tune()`` leave malloc alone.

**OpenMP** (``release_idle_openmp_threads()``). PyTorch's CPU ops run their parallel loops on an
OpenMP team owned by the calling thread. Loading a model leaves the main thread with a team whose
workers then sit idle; when a render thread builds its own team, libgomp counts more threads than
CPUs and makes every worker sleep right after each parallel region, so the render thread keeps the
cores only partly busy. Releasing the main thread's idle team with OpenMP 5's
``omp_pause_resource_all`` (soft: the settings stay) before starting a render thread gives that
thread the CPU's full speed; the team comes back by itself the next time the main thread runs a
parallel op. It changes no setting, so the runner, which starts the render threads, does it.

What each buys, measured side by side: ``benchmarks/cpu_runtime.py``; figures in
docs/performance.md ("The CPU process") and the reasons in docs/decisions.md.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
from collections.abc import Callable

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

_OMP_PAUSE_SOFT = 1  # omp_pause_resource_t: free the threads, keep the settings
_OPENMP_RUNTIMES = ("libgomp", "libiomp5", "libomp")


def tune() -> bool:
    """Tune glibc's malloc as described above, once per process (later calls return the first
    answer). True when it is tuned; False when this is not glibc or ``FEATVIZ_KEEP_FREED_MEMORY=0``."""
    return _keep_freed_memory()


def is_tuned() -> bool:
    """Whether ``tune()`` has tuned malloc in this process (it never runs by itself)."""
    return _keep_freed_memory.cache_info().currsize > 0 and _keep_freed_memory()


@functools.cache  # once per process
def _keep_freed_memory() -> bool:
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
    settings = ((_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD), (_M_ARENA_MAX, 1))
    return all(mallopt(option, value) for option, value in settings)


def release_idle_openmp_threads() -> bool:
    """Free the calling thread's idle OpenMP team; call it on the thread that loaded the model
    (the main thread) just before starting a render thread. True when the runtime did it."""
    pause = _find_pause()
    return pause is not None and pause(_OMP_PAUSE_SOFT) == 0


@functools.cache  # the runtime is loaded once; look it up once
def _find_pause() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return None
    # The copy torch loaded (its wheel bundles its own libgomp), not another one on the system.
    for path in sorted(paths):
        if path.rsplit("/", 1)[-1].startswith(_OPENMP_RUNTIMES):
            try:
                function = ctypes.CDLL(path).omp_pause_resource_all
            except (OSError, AttributeError):
                continue
            function.argtypes = [ctypes.c_int]
            function.restype = ctypes.c_int
            return function
    return None
