"""Is there a picture left? The l1, tv and blur penalties at engine weights on a log grid, at the live
widget's defaults (EfficientNet-Lite0, 128 px, lr 0.05, RenderSettings defaults otherwise), for two
channels and a few class logits, side by side in one run.

    .venv/bin/python benchmarks/slider_ranges.py [--steps 200] [--size 128] [--penalties l1,tv,blur]
        [--objectives blocks.8:5,blocks.2:3,logits:309,logits:1] [--threads 2] [--weights 100,300] [--out DIR]

Per render: S = mean HSV saturation (0..1), sd = pixel standard deviation (0..0.5; a flat grey or
black image is near 0), |0.5| = mean |image - 0.5|, mean = mean brightness (0.5 grey; a picture wiped
to black reads low). Class renders also get the judge's reading:
EfficientNet-Lite2 (a different network) ranks the intended class (1 = its top-1), as in
benchmarks/quality.py. Weight 0 is the same baseline for every penalty.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from featviz_widgets.engine import L1, BlurPenalty, Renderer, TotalVariation, load_model
from featviz_widgets.engine.core import to_uint8
from featviz_widgets.engine.explore import PerImage
from featviz_widgets.engine.objectives import as_objective

PENALTIES = {"l1": L1(), "tv": TotalVariation(), "blur": BlurPenalty()}

GRIDS = {
    "l1": (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
    "tv": (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
    "blur": (300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0),
}


def picture_stats(arr: np.ndarray) -> tuple[float, float, float, float]:
    """(mean HSV saturation, pixel sd, mean |x - 0.5|, mean brightness) of an HxWx3 uint8 image,
    all in 0..1 units."""
    sat = np.asarray(Image.fromarray(arr).convert("HSV"), np.float32)[..., 1].mean() / 255
    x = arr.astype(np.float32) / 255
    return float(sat), float(x.std()), float(np.abs(x - 0.5).mean()), float(x.mean())


def judge_rank(judge, arr: np.ndarray, klass: int) -> int:
    """The judge's rank of ``klass`` on the image (1 = top-1)."""
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, (judge.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        logits = judge(x.to(judge.device))[0]
    return int((logits > logits[klass]).sum().item()) + 1


def render_grid(model, objective: str, penalty: str, weights: list[float], steps: int, size: int) -> np.ndarray:
    """Image i maximizes ``objective - weights[i] * penalty``, all in one batch: the same loss as
    a Renderer with that penalty weight (the penalties are per image), at a fraction of the time
    on a CPU. Returns (N, H, W, 3) uint8."""
    base = as_objective(objective)
    objectives = [base - w * PENALTIES[penalty] if w else base for w in weights]
    r = Renderer(model, PerImage(objectives), batch=len(weights), size=size, lr=0.05, seed=0)
    for _ in range(steps):
        r.step()
    return to_uint8(r.image())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--objectives", default="blocks.8:5,blocks.2:3,logits:309,logits:1")
    ap.add_argument("--penalties", default="l1,tv,blur")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default="", help="override the grid, e.g. 100,300,1000")
    ap.add_argument("--out", default="", help="folder for one PNG strip per penalty and objective")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, judge = load_model(), load_model("efficientnet_lite2")
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    print(
        f"{args.steps} steps, {args.size} px, lr 0.05, Lite0; S/sd/|0.5|/mean per objective; classes: r = Lite2's rank"
    )
    print(" | ".join(["penalty", "weight", *objectives]))
    print("|".join(["---"] * (2 + len(objectives))))
    t0 = time.perf_counter()
    for i, name in enumerate(args.penalties.split(",")):
        grid = [float(w) for w in args.weights.split(",")] if args.weights else GRIDS[name]
        weights = [0.0, *grid]
        cells: list[list[str]] = [[] for _ in weights]
        for objective in objectives:
            arrays = render_grid(model, objective, name, weights, args.steps, args.size)
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                strip = np.concatenate(list(arrays), axis=1)
                Image.fromarray(strip).save(Path(args.out, f"{name}_{objective.replace(':', '_')}.png"))
            for cell, arr in zip(cells, arrays, strict=True):
                sat, sd, dev, mean = picture_stats(arr)
                text = f"{sat:.2f}/{sd:.3f}/{dev:.3f}/{mean:.2f}"
                if objective.startswith("logits:"):
                    text += f" r{judge_rank(judge, arr, int(objective.split(':')[1]))}"
                cell.append(text)
        for weight, cell in zip(weights, cells, strict=True):
            if weight or i == 0:  # the baseline (weight 0) once
                print(" | ".join([name if weight else "none", f"{weight:g}", *cell]), flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
