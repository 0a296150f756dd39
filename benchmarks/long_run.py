"""A default live run left for 20 minutes: does it still look like its first minute?

Issue #14 saw a default run (Lite0, blocks.8 channel 0, 128 px, lr 0.05: the Dreamer's
defaults) turn dark, saturated and gridded after ~14,000 steps of a 20-minute session. This
runs the same Renderer for that many steps and prints, at step 720 (the first minute at the
slowest rate seen, 12 steps/s), at the step where the runner's ``Settle`` says "settled" (where
the live loop stops stepping, so the picture stays however long it is left), and at the end
(what an unsettled loop showed): the objective, the mean saturation (HSV S), the
share of pixels clipped to black or white, and the high-frequency energy (mean |pixel -
its 3x3 blur|, the "pixel grid"). Usage: python benchmarks/long_run.py [--steps 14000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from featviz_widgets.engine import Renderer, RenderSettings, load_model
from featviz_widgets.runner.settle import Settle


def measures(image: torch.Tensor) -> dict[str, float]:
    img = image[:1].clamp(0, 1)
    arr = (img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    hsv = np.asarray(Image.fromarray(arr).convert("HSV"), dtype=np.float32)
    blurred = F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    clipped = ((img <= 1 / 255) | (img >= 254 / 255)).float().mean()
    return {
        "saturation": float(hsv[..., 1].mean() / 255),
        "clipped": float(clipped),
        "high_freq": float((img - blurred).abs().mean() * 255),
        "mean_brightness": float(img.mean() * 255),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=14_000, help="where issue #14 saw the picture degrade")
    ap.add_argument("--objective", default="blocks.8:0")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the live loop's thread count on this 2-core machine
    model = load_model()
    r = Renderer(model, args.objective, RenderSettings(size=128, lr=0.05, seed=0))
    settle = Settle()
    marks: dict[str, tuple[int, float, dict[str, float]]] = {}
    window: list[float] = []
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        info = r.step()
        window = [*window[-99:], info.objective]
        if settle.update(info.objective) and "settled" not in marks:
            marks["settled"] = (step, float(np.mean(window)), measures(r.image()))
        if step == 720:
            marks["first minute"] = (step, float(np.mean(window)), measures(r.image()))
    marks["unsettled end"] = (args.steps, float(np.mean(window)), measures(r.image()))
    print(f"{args.steps} steps in {time.perf_counter() - t0:.0f} s ({args.objective}, 128 px, lr 0.05)")
    print(
        f"{'when':>14} {'step':>6} {'objective':>10} {'saturation':>11} {'clipped':>8} {'high-freq':>10} {'brightness':>11}"
    )
    for name in ("first minute", "settled", "unsettled end"):
        if name in marks:
            step, obj, m = marks[name]
            print(
                f"{name:>14} {step:>6} {obj:>10.2f} {m['saturation']:>11.3f} {m['clipped']:>8.3f} "
                f"{m['high_freq']:>10.2f} {m['mean_brightness']:>11.1f}"
            )
    print("The live loop stops at 'settled': what stays on screen, however long it is left, is that row.")


if __name__ == "__main__":
    main()
