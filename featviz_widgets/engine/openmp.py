"""Give a render thread the CPU's full speed: release the main thread's idle OpenMP workers first.

PyTorch's CPU ops run their parallel loops on an OpenMP team owned by the calling thread. Loading
a model leaves the main thread with a team whose workers then sit idle; when a render thread
builds its own team, libgomp counts more threads than CPUs and makes every worker sleep right
after each parallel region (a spin of 100 iterations instead of 300,000), so each of the hundreds
of parallel regions in a step waits for a futex wake-up, and the render thread keeps the cores
only partly busy. Once the main thread has released its idle team with OpenMP 5's
``omp_pause_resource_all``, the render thread runs as fast as the main thread did (figures:
docs/decisions.md, "The CPU process"). The team comes back by itself the next time the main
thread runs a parallel op.

Linux only (the runtime is found among the loaded libraries); elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable

_OMP_PAUSE_SOFT = 1  # omp_pause_resource_t: free the threads, keep the settings
_RUNTIMES = ("libgomp", "libiomp5", "libomp")


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
        if path.rsplit("/", 1)[-1].startswith(_RUNTIMES):
            try:
                function = ctypes.CDLL(path).omp_pause_resource_all
            except (OSError, AttributeError):
                continue
            function.argtypes = [ctypes.c_int]
            function.restype = ctypes.c_int
            return function
    return None
