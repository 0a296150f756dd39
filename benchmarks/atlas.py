"""The atlas's throughput in-process vs on Ray with two local workers, Ray's per-task overhead,
and a projection of a whole ResNet-50 atlas on N GPUs from the measured per-tile cost.

    .venv/bin/python benchmarks/atlas.py [--layer blocks.0] [--steps 16] [--size 64] [--chunk 8]
        [--target-steps 128] [--target-size 128] [--gpu-speedup 30] [--gpus 1 8 32]

1. In-process: the chunks of ``--layer`` of the embedded model one after another, all CPU threads.
2. Ray (``ray.init(num_cpus=2)``): the same chunks, one task each, 1 thread per task, two
   workers at once. Worker start-up and the model's shipping are timed apart (a warm-up task
   per worker), so the tiles/s compare rendering only; the ratio shows Ray's cost on one machine.
3. Per-task overhead: tasks of one 1-step 16 px tile, one at a time, minus the same in-process.
4. Projection: ResNet-50 (randomly initialised torchvision model: only the cost matters) cost per
   tile and step measured at the end of each stage (conv1, layer1..layer4; a layer inside a stage
   costs less, so this is an upper bound) at --probe-size, times the target steps, scaled by area
   to the target size,
   divided by an ASSUMED speed ratio of one GPU to one CPU core here (no GPU was measured) and
   by N GPUs, plus Ray's measured per-task overhead times the tasks over N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featviz_widgets import BatchChannels, Renderer, load_model
from featviz_widgets.atlas.local import run_local
from featviz_widgets.atlas.plan import AtlasSettings, Chunk, default_layers, plan_layers


def consume(results: object) -> tuple[float, int]:
    t0, n = time.perf_counter(), 0
    for r in results:  # type: ignore[attr-defined]
        n += len(r.chunk.units)
    return time.perf_counter() - t0, n


def stage_of(layer: str) -> str:
    return layer.split(".", 1)[0] if layer.startswith("layer") else "conv1"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layer", default="blocks.0")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--chunk", type=int, default=8)
    p.add_argument("--tasks", type=int, default=8, help="tasks timed for the per-task overhead")
    p.add_argument("--probe-size", type=int, default=64, help="ResNet-50 cost measured at this size")
    p.add_argument("--probe-steps", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="in-process and Ray runs, alternating; medians")
    p.add_argument("--target-steps", type=int, default=128)
    p.add_argument("--target-size", type=int, default=128)
    p.add_argument("--gpu-speedup", type=float, default=100.0, help="ASSUMED GPU speed / one CPU core here")
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--no-ray", action="store_true")
    a = p.parse_args()
    cores = os.cpu_count() or 1
    all_threads = torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cores} CPUs, torch {torch.__version__}, {all_threads} torch threads, load average {load:.1f}")

    model = load_model(None, device="cpu")
    (plan,) = plan_layers(model, [a.layer], a.chunk)
    base = {"steps": a.steps, "size": a.size, "chunk": a.chunk}
    here = AtlasSettings(threads=all_threads, **base)
    run_local(model, plan.chunks[:1], here).__next__()  # warm-up (allocator, kernels)
    local_times = []
    for _ in range(a.rounds):
        t, n = consume(run_local(model, plan.chunks, here))
        local_times.append(t)
    t_local = statistics.median(local_times)
    local_rate = n / t_local
    print(
        f"in-process: {n} tiles of {a.layer} ({len(plan.chunks)} chunks of {a.chunk}, {a.steps} steps, "
        f"{a.size} px, {all_threads} threads) in {t_local:.2f} s = {local_rate:.2f} tiles/s, "
        f"{t_local / n * 1000:.0f} ms/tile (median of {a.rounds})"
    )

    one_thread = AtlasSettings(threads=1, **base)
    t1 = statistics.median(consume(run_local(model, plan.chunks, one_thread))[0] for _ in range(a.rounds))
    print(f"in-process, 1 thread: {n / t1:.2f} tiles/s, {t1 / n * 1000:.0f} ms/tile (median of {a.rounds})")

    overhead = 0.0
    if not a.no_ray:
        import ray

        from featviz_widgets.atlas import ray_backend

        t0 = time.perf_counter()
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # an overloaded machine: Ray's node start-up times out
            print(f"ray: could not start a local instance ({str(exc).splitlines()[0]}); run again with less load")
            a.no_ray = True
        t_init = time.perf_counter() - t0
    if not a.no_ray:
        warm = AtlasSettings(steps=1, size=16, chunk=1, threads=1)
        t0 = time.perf_counter()
        consume(ray_backend.run_ray(model, [Chunk(a.layer, "channel", i, i + 1) for i in range(2)], warm))
        t_warm = time.perf_counter() - t0
        print(f"ray: init {t_init:.1f} s; first task on each of 2 workers (start-up, model shipped) {t_warm:.1f} s")
        there = AtlasSettings(threads=1, **base)
        ray_times = []
        for _ in range(a.rounds):
            t, n = consume(ray_backend.run_ray(model, plan.chunks, there))
            ray_times.append(t)
        t_ray = statistics.median(ray_times)
        ray_rate = n / t_ray
        print(f"ray, 2 workers x 1 thread: {n} tiles in {t_ray:.2f} s = {ray_rate:.2f} tiles/s (median of {a.rounds})")
        print(
            f"ratio ray / in-process tiles/s = {ray_rate / local_rate:.2f} ({all_threads} threads), "
            f"{ray_rate / (n / t1):.2f} (1 thread)"
        )
        one = [Chunk(a.layer, "channel", 0, 1)]
        lat_ray, lat_local = [], []
        for _ in range(a.tasks):
            lat_ray.append(consume(ray_backend.run_ray(model, one, warm))[0])
            lat_local.append(consume(run_local(model, one, warm))[0])
        overhead = statistics.median(lat_ray) - statistics.median(lat_local)
        print(
            f"per-task overhead: median task {statistics.median(lat_ray) * 1000:.1f} ms on Ray vs "
            f"{statistics.median(lat_local) * 1000:.1f} ms in-process = {overhead * 1000:.1f} ms a task"
        )
        ray.shutdown()

    # --- projection ---------------------------------------------------------------------------
    import torchvision

    r50 = load_model(torchvision.models.resnet50(weights=None), name="resnet50", device="cpu")
    layers = default_layers(r50)
    plans = plan_layers(r50, layers, a.chunk)
    cost: dict[str, float] = {}  # seconds per tile and step at --probe-size, one thread
    torch.set_num_threads(1)  # one core's cost: the CPU figure is core-seconds
    for probe in ("conv1", "layer1", "layer2", "layer3", "layer4"):
        r = Renderer(r50, BatchChannels(probe, tuple(range(a.chunk))), batch=a.chunk, size=a.probe_size)
        r.step()  # warm-up
        t0 = time.perf_counter()
        r.run(a.probe_steps)
        cost[probe] = (time.perf_counter() - t0) / a.probe_steps / a.chunk
    units = {st: 0 for st in cost}
    for lp in plans:
        units[stage_of(lp.name)] += lp.units
    total_units = sum(units.values())
    blocks = sum(lp.units for lp in plans if lp.name == "conv1" or lp.name.count(".") == 1)
    scale = a.target_steps * (a.target_size / a.probe_size) ** 2
    cpu_s = sum(units[st] * cost[st] for st in cost) * scale
    tasks = sum(len(lp.chunks) for lp in plans)
    print(
        f"resnet50 main layers: {len(plans)} layers, {total_units} channels ({blocks} in conv1 + the 16 "
        f"bottleneck outputs); {tasks} chunks of {a.chunk}"
    )
    print(
        "per tile and step at the end of each stage ("
        + ", ".join(f"{st} {cost[st] * 1000:.1f} ms" for st in cost)
        + f") at {a.probe_size} px in batches of {a.chunk}; channels per stage: "
        + ", ".join(f"{st} {units[st]}" for st in units)
    )
    print(
        f"one CPU core here: sum(channels x cost) x {a.target_steps} steps x ({a.target_size}/{a.probe_size})^2 px "
        f"= {cpu_s:.0f} s = {cpu_s / 3600:.1f} h at {a.target_steps} steps {a.target_size} px"
    )
    for g in a.gpus:
        wall = cpu_s / a.gpu_speedup / g + tasks * overhead / g
        print(
            f"  {g} GPU(s), ASSUMED {a.gpu_speedup:g}x one core: {cpu_s:.0f} / {a.gpu_speedup:g} / {g} "
            f"+ {tasks} tasks x {overhead * 1000:.0f} ms / {g} = {wall:.0f} s = {wall / 3600:.2f} h"
        )
    scale_blocks = blocks / total_units
    print(f"  (the conv1 + bottleneck-output atlas only: about {scale_blocks:.2f} of these figures)")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
