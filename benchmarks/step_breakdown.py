"""Where an engine step's time goes beyond the floor: the same step with one piece switched off at
a time, measured interleaved in one process (the profiler's per-op times miss the cache effects
that decide it on a CPU).

    .venv/bin/python benchmarks/step_breakdown.py [--layer blocks.2] [--size 224] [--rounds 7]

Rows: the full step (Lucid-standard transforms, as in engine_vs_lucent.py); the same with
grid_sample's exact (scatter) backward instead of the inverse map's; without transforms;
with a pixel instead of a Fourier basis; without colour decorrelation; with none of the three
(what is left: sigmoid, Adam, NaN check, bookkeeping); the floor (a bare forward+backward of the
network truncated at the layer, the same channel objective). Prints ms per step, each row's cost
over the floor, and the ratio line engine step / floor.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from featviz_widgets.engine import Renderer, TransformConfig, capture, load_model

LUCID = TransformConfig.lucid()
VARIANTS = {
    "full step": {"transform": LUCID},
    "exact transform grad": {"transform": replace(LUCID, exact_gradient=True)},
    "no transforms": {"transform": TransformConfig(strength=0)},
    "pixel basis": {"transform": LUCID, "fourier": False},
    "no decorrelation": {"transform": LUCID, "decorrelate": False},
    "none of the three": {"transform": TransformConfig(strength=0), "fourier": False, "decorrelate": False},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", default="blocks.2")
    ap.add_argument("--channel", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=15)
    args = ap.parse_args()
    model = load_model()
    objective = f"{args.layer}:{args.channel}"
    renderers = {name: Renderer(model, objective, size=args.size, **kw) for name, kw in VARIANTS.items()}
    x = torch.rand(1, 3, args.size, args.size, device=model.device)

    def floor() -> None:
        xi = x.detach().requires_grad_(True)
        capture(model, xi, [args.layer])[args.layer][:, args.channel].mean().backward()

    steps = {name: r.step for name, r in renderers.items()} | {"floor": floor}
    for r in renderers.values():
        r.run(15)  # the heap settles (engine/core/runtime.py)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):  # interleaved, so machine noise hits every row alike
        for name, step in steps.items():
            step()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t0) / args.steps * 1000)
    ms = {name: statistics.median(v) for name, v in times.items()}
    print(f"device={model.device} threads={torch.get_num_threads()} size={args.size} objective={objective}")
    print(f"{'variant':<21} {'ms/step':>8} {'over floor':>11}")
    for name, value in ms.items():
        print(f"{name:<21} {value:>8.2f} {value - ms['floor']:>+11.2f}")
    print(f"ratio: engine step = {ms['full step'] / ms['floor']:.2f}x the floor")


if __name__ == "__main__":
    main()
