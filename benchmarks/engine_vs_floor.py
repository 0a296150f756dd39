"""Engine step time against the floor: a bare forward+backward of the network truncated at the
target, on the same model object, measured side by side (interleaved) in one process.

    .venv/bin/python benchmarks/engine_vs_floor.py [--size 224] [--steps 30]

Prints steps/s for each and the ratio floor/engine (1.0 = no overhead; the target is <= 1.25).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from featviz_widgets.engine import Renderer, capture, load_model

TARGETS = {"early": "blocks.2:3", "mid": "blocks.8:5", "logits": "logits:309"}


def floor_step(model, x: torch.Tensor, layer: str) -> None:
    x = x.detach().requires_grad_(True)
    act = capture(model, x, [layer])[layer]
    act.mean().backward()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model = load_model()
    print(f"device={model.device} threads={torch.get_num_threads()} size={args.size}")
    print(f"{'target':<8} {'objective':<12} {'engine steps/s':>15} {'floor steps/s':>14} {'engine/floor time':>18}")
    for name, objective in TARGETS.items():
        layer = objective.split(":")[0]
        renderer = Renderer(model, objective, size=args.size)
        x = torch.rand(1, 3, args.size, args.size, device=model.device)
        renderer.run(3)
        floor_step(model, x, layer)
        engine_times, floor_times = [], []
        for _ in range(args.rounds):  # interleave so machine noise hits both alike
            t0 = time.perf_counter()
            renderer.run(args.steps)
            engine_times.append((time.perf_counter() - t0) / args.steps)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                floor_step(model, x, layer)
            floor_times.append((time.perf_counter() - t0) / args.steps)
        e, f = statistics.median(engine_times), statistics.median(floor_times)
        print(f"{name:<8} {objective:<12} {1 / e:>15.1f} {1 / f:>14.1f} {e / f:>18.2f}")


if __name__ == "__main__":
    main()
