"""CPU steps with and without the engine's process-wide tuning, side by side: every measurement
runs in a fresh process, the variants alternate, and the median of the rounds is reported.

- malloc (``featviz_widgets.tune()``, engine/core/runtime.py): tuned, or glibc's defaults (what
  load_model and render leave when nobody asks for the tuning);
- OpenMP (engine/core/runtime.py): for a render thread, the main thread releases its idle team before
  starting it (as the widget's runner does), or not.

    .venv/bin/python benchmarks/cpu_runtime.py [--rounds 3] [--size 224] [--batch 32] [--mixed 240]

Cases (embedded model, 224 px, all CPU threads): one image at blocks.2 and a batch of 32
channels of blocks.3, on the main thread (malloc) and on a render thread (OpenMP; the widget's
live loop and gallery run on one). Prints steps/s, page faults a step, peak RSS, and one ratio line each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, resource, sys, threading, time
from featviz_widgets.engine import BatchChannels, Renderer, load_model, tune
from featviz_widgets.engine.core.runtime import release_idle_openmp_threads
batch, threaded, release, size = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1", int(sys.argv[4])
malloc = sys.argv[5] == "1"
if malloc:
    tune()
model = load_model()
out = {}

def run():
    objective = BatchChannels("blocks.3", channels=tuple(range(batch))) if batch > 1 else "blocks.2:3"
    r = Renderer(model, objective, size=size, batch=batch)
    r.run(15 if batch == 1 else 5)  # the heap settles
    f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    steps = 30 if batch == 1 else 4
    r.run(steps)
    out["steps_s"] = steps / (time.perf_counter() - t0)
    out["faults"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps

if threaded:
    if release:
        release_idle_openmp_threads()
    t = threading.Thread(target=run)
    t.start()
    t.join()
else:
    run()
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

MIXED = """
import random, resource, sys
from featviz_widgets.engine import BatchChannels, Renderer, load_model, tune
jobs = int(sys.argv[1])
if sys.argv[2] == "1":
    tune()
model = load_model()
rng = random.Random(0)
rss = []
for i in range(1, jobs + 1):
    size, batch = rng.choice([64, 96, 128, 160, 224, 256]), rng.choice([1, 1, 4, 16])
    layer = rng.choice(["blocks.3", "blocks.8", "blocks.12"])
    Renderer(model, BatchChannels(layer, tuple(range(batch))), size=size, batch=batch).run(3)
    if i % max(1, jobs // 8) == 0:
        rss.append(int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20)
print(" ".join(f"{r:.0f}" for r in rss), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

MALLOC = {"tuned": (True, False), "default": (False, False)}  # variant: (malloc tuned, OpenMP released)
OPENMP = {"released": (True, True), "default": (True, False)}


def cases(batch: int) -> dict[str, tuple[int, bool, dict[str, tuple[bool, bool]]]]:
    """name: (batch, on a render thread, variants)"""
    return {
        "malloc, 1 image": (1, False, MALLOC),
        f"malloc, {batch} channels": (batch, False, MALLOC),
        "OpenMP, 1 image thread": (1, True, OPENMP),
        f"OpenMP, {batch} ch. thread": (batch, True, OPENMP),
    }


def mixed(jobs: int) -> None:
    print(f"\nresident MB every {max(1, jobs // 8)} of {jobs} mixed render jobs (sizes 64-256, batches 1-16):")
    for variant, malloc in (("tuned", True), ("default", False)):
        args = [sys.executable, "-c", MIXED, str(jobs), str(int(malloc))]
        done = subprocess.run(args, capture_output=True, text=True, check=True)
        *rss, peak = done.stdout.split()
        print(f"{variant:<8} {' '.join(rss)}   peak {float(peak):.0f}")


def measure(batch: int, threaded: bool, malloc: bool, release: bool, size: int) -> dict[str, float]:
    args = [sys.executable, "-c", CHILD, str(batch), str(int(threaded)), str(int(release)), str(size), str(int(malloc))]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32, help="channels of blocks.3 (at most 40) in the batch cases")
    ap.add_argument("--mixed", type=int, default=0, help="also this many mixed render jobs, for memory")
    args = ap.parse_args()
    print(f"{'case':<22} {'variant':<9} {'steps/s':>8} {'faults/step':>12} {'peak RSS MB':>12}")
    lines = []
    for name, (batch, threaded, variants) in cases(args.batch).items():
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant, (malloc, release) in variants.items():  # alternating: noise hits both alike
                runs[variant].append(measure(batch, threaded, malloc, release, args.size))
        speed = {}
        for variant, results in runs.items():
            med = {k: statistics.median(r[k] for r in results) for k in ("steps_s", "faults", "rss_mb")}
            speed[variant] = med["steps_s"]
            print(f"{name:<22} {variant:<9} {med['steps_s']:>8.2f} {med['faults']:>12.0f} {med['rss_mb']:>12.0f}")
        tuned, default = list(speed)
        lines.append(f"ratio {name}: {tuned} is {speed[tuned] / speed[default]:.2f}x {default}")
    print("\n".join(lines))
    if args.mixed:
        mixed(args.mixed)


if __name__ == "__main__":
    main()
