"""Process-wide CPU tuning, checked in fresh processes (it is once-only or changes the process):
the malloc settings of ``tune()`` (page faults a step; opt-in: loading a model or rendering
leaves malloc alone) and the OpenMP release (the main thread's idle workers go, and come back
when needed), both in engine/core/runtime.py."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from featviz_widgets.engine.core import runtime

HANG = 1800  # seconds: a subprocess that takes longer hangs (a guard, not a speed limit: tests pass on loaded machines)
glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc only"
)

# A 64-channel conv at 224 px, batch 8: 103 MB activations, allocated and freed every step in a
# render thread (as the widget's loop and gallery jobs run), the model loaded in the main thread.
FAULTS_PER_STEP = """
import resource, threading, torch
from torch import nn
from featviz_widgets.engine import Renderer, load_model, tune
torch.set_num_threads(1)
tuned = tune()
net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 8, 3, padding=1))
model = load_model(net, input_size=224, name="wide")
windows = []

def render():
    r = Renderer(model, "2:0", size=224, batch=8)
    r.run(6)  # the heap settles within ~15 steps, now and then later: the best window counts
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        r.run(2)
        windows.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 2)

thread = threading.Thread(target=render)
thread.start()
thread.join()
print(tuned, min(windows))
"""


def faults_per_step(opt_out: bool) -> tuple[bool, float]:
    env = dict(os.environ)
    env.pop(runtime.OPT_OUT, None)
    if opt_out:
        env[runtime.OPT_OUT] = "0"
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_STEP], env=env, capture_output=True, text=True, timeout=HANG, check=True
    )
    tuned, faults = out.stdout.split()
    return tuned == "True", float(faults)


@pytest.mark.slow
@glibc_only
def test_cpu_steps_stop_page_faulting_once_the_heap_settles() -> None:
    tuned, faults = faults_per_step(opt_out=False)
    default_tuned, default_faults = faults_per_step(opt_out=True)
    assert tuned and not default_tuned
    assert faults < 50, f"{faults} page faults a step with the tuned allocator"
    # glibc's defaults hand the activations back to the kernel and fault them in again each step.
    assert default_faults > 20 * max(faults, 50)


# What load_model, a Renderer and render leave behind, read from glibc's behaviour: a freed 64 MB
# tensor goes back to the kernel under glibc's defaults (its mmap threshold tops out at 32 MB)
# and stays in the process's resident memory once tune() has raised the threshold to 256 MB.
FREED_MEMORY = """
import sys, torch
from torch import nn
import featviz_widgets
from featviz_widgets.engine import Renderer, load_model, render

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

def kept_after_free():
    t = torch.ones(16 * 2**20)  # 64 MB, every page written
    before = rss_mb()
    del t
    return before - rss_mb() < 32  # True: the freed pages stayed in the process

model = load_model(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), input_size=32)
Renderer(model, "1:0", size=32).run(2)
render(model, "1:0", size=32, steps=2, progress=False)
plain = kept_after_free()
first = featviz_widgets.tune()
print(plain, first, featviz_widgets.tune() is first, kept_after_free())
"""


@glibc_only
def test_malloc_is_tuned_only_when_asked_and_once() -> None:
    env = dict(os.environ)
    env.pop(runtime.OPT_OUT, None)
    out = subprocess.run([sys.executable, "-c", FREED_MEMORY], env=env, capture_output=True, text=True, check=True)
    plain, tuned, once, kept = out.stdout.split()
    assert plain == "False", "loading a model or rendering changed glibc's malloc"
    assert (tuned, once, kept) == ("True", "True", "True")
    env[runtime.OPT_OUT] = "0"
    out = subprocess.run([sys.executable, "-c", FREED_MEMORY], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True", "False"]  # the opt-out leaves malloc alone


# Thread counts of this process: the main thread's OpenMP team (1 worker with 2 threads) goes when
# released and comes back with the next parallel op on the main thread.
OPENMP_TEAM = """
import os, time, torch
from featviz_widgets.engine.core.runtime import release_idle_openmp_threads
torch.set_num_threads(2)
a = torch.randn(256, 256)

def count():
    return len(os.listdir("/proc/self/task"))

a @ a  # the team is made during the op: there when it returns
busy = count()
released = release_idle_openmp_threads()
deadline = time.monotonic() + 600  # the released workers exit on their own: awaited, however loaded the machine
while count() >= busy and time.monotonic() < deadline:
    time.sleep(0.01)
idle = count()
a @ a
print(released, busy, idle, count())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the OpenMP runtime in /proc/self/maps")
def test_main_thread_releases_its_idle_openmp_workers() -> None:
    out = subprocess.run([sys.executable, "-c", OPENMP_TEAM], capture_output=True, text=True, timeout=HANG, check=True)
    released, busy, idle, again = out.stdout.split()
    assert released == "True"
    assert int(idle) == int(busy) - 1
    assert int(again) == int(busy)
