"""Steps/s of this engine and of Lucent (torch-lucent 0.1.8) on the same model object, same
objective, image size, step count and Lucid-standard transforms, measured side by side in one
process, plus the floor: a bare forward+backward of the network truncated at the target.

Lucent is not a dependency; install it next to the project for this benchmark only:

    .venv/bin/pip install --no-deps torch-lucent==0.1.8 kornia==0.4.1 decorator
    .venv/bin/python benchmarks/engine_vs_lucent.py [--size 224] [--steps 30] [--rounds 3]

(or `pip install --target DIR ...` and PYTHONPATH=DIR). Prints a table and one ratio line per
target: engine/Lucent speed (targets: >= 3x early, >= 2x mid, >= 1.3x logits) and engine step
time / floor step time (target <= 1.25).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from lucent_run import render_vis

from featviz_widgets.engine import Renderer, TransformConfig, capture, load_model

TARGETS = {"early": ("blocks.2", 3), "mid": ("blocks.8", 5), "logits": ("logits", 309)}


def time_engine(model, objective: str, size: int, steps: int) -> float:
    # Lucid's standard ranges (zoom 0.9-1.1, no crops), the transforms Lucent runs.
    r = Renderer(model, objective, size=size, transform=TransformConfig.lucid())
    r.run(2)  # warm-up (first-call allocations)
    t0 = time.perf_counter()
    r.run(steps)
    return (time.perf_counter() - t0) / steps


def time_lucent(model, objective: str, size: int, steps: int) -> float:
    from lucent.optvis import param, transform

    def run(n: int) -> float:
        t0 = time.perf_counter()
        render_vis(
            model,
            objective,
            param_f=lambda: param.image(size),
            transforms=transform.standard_transforms,
            thresholds=(n,),
            show_image=False,
            progress=False,
            preprocess=False,
            fixed_image_size=size,
        )
        return time.perf_counter() - t0

    short = run(2)  # setup + hooking cost, subtracted below
    return (run(steps + 2) - short) / steps


def time_floor(model, layer: str, size: int, steps: int) -> float:
    x = torch.rand(1, 3, size, size, device=model.device)

    def once() -> None:
        xi = x.detach().requires_grad_(True)
        capture(model, xi, [layer])[layer].mean().backward()

    once()
    t0 = time.perf_counter()
    for _ in range(steps):
        once()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    try:
        import lucent  # noqa: F401
    except ImportError:
        lucent_installed = False
        print("Lucent is not installed: measuring the engine and the floor only (see the docstring).")
    else:
        lucent_installed = True
    model = load_model()
    print(
        f"device={model.device} threads={torch.get_num_threads()} size={args.size} steps={args.steps} rounds={args.rounds}"
    )
    print(
        f"{'target':<7} {'objective':<13} {'engine/s':>9} {'lucent/s':>9} {'floor/s':>8} {'engine/lucent':>14} {'engine/floor time':>18}"
    )
    lines = []
    for name, (layer, unit) in TARGETS.items():
        ours = f"{layer}:{unit}"
        lucent_layer = f"net_{layer.replace('.', '_')}:{unit}"
        e, lu, f = [], [], []
        for _ in range(args.rounds):  # interleaved, so machine noise hits all three alike
            e.append(time_engine(model, ours, args.size, args.steps))
            lu.append(time_lucent(model, lucent_layer, args.size, args.steps) if lucent_installed else float("nan"))
            f.append(time_floor(model, layer, args.size, args.steps))
        e_s, l_s, f_s = (statistics.median(v) for v in (e, lu, f))
        print(
            f"{name:<7} {ours:<13} {1 / e_s:>9.1f} {1 / l_s:>9.1f} {1 / f_s:>8.1f} {l_s / e_s:>13.2f}x {e_s / f_s:>18.2f}"
        )
        lines.append(f"ratio {name}: engine is {l_s / e_s:.2f}x Lucent; engine step = {e_s / f_s:.2f}x the floor")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
