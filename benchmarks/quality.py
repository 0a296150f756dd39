"""Quality per step: render ImageNet class logits on EfficientNet-Lite0 and ask a different
network, EfficientNet-Lite2, what it sees. Top-1 hits at 32, 64 and 128 steps for this engine's
defaults and for Lucent's recipe (Fourier, decorrelated colour, its standard transforms, Adam
0.05), side by side in one run, with the seconds per step of each.

    .venv/bin/pip install --no-deps torch-lucent==0.1.8 kornia==0.4.1 decorator   # for the Lucent column
    .venv/bin/python benchmarks/quality.py [--size 224] [--no-lucent] [--held-out] [--views 1] [--seed 0]
        [--exact-gradient] [--crops-near-centre] [--tv 0] [--seeds 0,1,2,3,4]
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from lucent_run import render_vis

from featviz_widgets.engine import Renderer, TransformConfig, load_model
from featviz_widgets.engine.core import to_uint8

# 15 everyday classes spread over ImageNet (animals, food, objects, scenes); chosen before any run.
CLASSES = [1, 9, 130, 145, 291, 309, 340, 388, 417, 430, 779, 933, 949, 954, 980]
# A second set drawn at random (numpy seed 1), to check that defaults tuned on the
# first set carry over: `--held-out`.
HELD_OUT = sorted(np.random.RandomState(1).choice(1000, 15, replace=False).tolist())
CHECKPOINTS = (32, 64, 128)


def judge(judge_model, images: dict[int, np.ndarray]) -> int:
    """How many images the judge classifies as their intended class (top-1)."""
    hits = 0
    for klass, arr in images.items():
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, (judge_model.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        with torch.no_grad():
            hits += int(judge_model(x.to(judge_model.device)).argmax(1).item() == klass)
    return hits


def ours(
    model,
    klass: int,
    size: int,
    views: int = 1,
    seed: int = 0,
    exact_gradient: bool = False,
    crop_anywhere: bool = True,
    tv: float = 0.0,
) -> tuple[dict[int, np.ndarray], float]:
    transform = TransformConfig(exact_gradient=exact_gradient, crop_anywhere=crop_anywhere)
    r = Renderer(model, f"logits:{klass}", size=size, views=views, seed=seed, transform=transform, tv=tv)
    snaps, t0 = {}, time.perf_counter()
    for step in range(1, max(CHECKPOINTS) + 1):
        r.step()
        if step in CHECKPOINTS:
            snaps[step] = to_uint8(r.image())[0]
    return snaps, (time.perf_counter() - t0) / max(CHECKPOINTS)


def lucent(model, klass: int, size: int, seed: int = 0) -> tuple[dict[int, np.ndarray], float]:
    from lucent.optvis import param, transform

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    images = render_vis(
        model,
        f"net_logits:{klass}",
        param_f=lambda: param.image(size),
        transforms=transform.standard_transforms,
        thresholds=CHECKPOINTS,
        show_image=False,
        progress=False,
        preprocess=False,
        fixed_image_size=size,
    )
    seconds = (time.perf_counter() - t0) / max(CHECKPOINTS)
    return {s: (img[0] * 255).round().astype(np.uint8) for s, img in zip(CHECKPOINTS, images, strict=True)}, seconds


def score(method, model, judge_model, classes: list[int], size: int) -> tuple[dict[int, int], float]:
    """Render every class with ``method``; the judge's hits at each checkpoint and the median
    seconds per step."""
    per_step: dict[int, dict[int, np.ndarray]] = {s: {} for s in CHECKPOINTS}
    seconds = []
    for klass in classes:
        snaps, sec = method(model, klass, size)
        seconds.append(sec)
        for s, img in snaps.items():
            per_step[s][klass] = img
    return {s: judge(judge_model, imgs) for s, imgs in per_step.items()}, float(np.median(seconds))


def sweep(model, judge_model, seeds: list[int], size: int, **settings) -> None:
    """Hits over both class sets for every seed, then their mean: the figure to compare settings by."""
    classes = CLASSES + HELD_OUT
    totals = {s: [] for s in CHECKPOINTS}
    print(f"{'seed':<8} " + " ".join(f"{f'{s} steps':>9}" for s in CHECKPOINTS))
    for seed in seeds:
        hits, _ = score(functools.partial(ours, seed=seed, **settings), model, judge_model, classes, size)
        for s in CHECKPOINTS:
            totals[s].append(hits[s])
        print(f"{seed:<8} " + " ".join(f"{f'{hits[s]}/{len(classes)}':>9}" for s in CHECKPOINTS), flush=True)
    means = {s: float(np.mean(v)) for s, v in totals.items()}
    print(f"{'mean':<8} " + " ".join(f"{means[s]:>9.1f}" for s in CHECKPOINTS))
    print(
        "ratio: featviz recognized "
        + ", ".join(f"{means[s] / len(classes):.0%} at {s} steps" for s in CHECKPOINTS)
        + f" (mean of {len(seeds)} seeds; targets 80% at 32, 100% at 64)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--no-lucent", action="store_true")
    ap.add_argument("--held-out", action="store_true", help="the random class set instead of the fixed one")
    ap.add_argument("--views", type=int, default=1, help="this engine's transformed copies per step")
    ap.add_argument("--seed", type=int, default=0, help="seed of every render (both methods)")
    ap.add_argument(
        "--exact-gradient", action="store_true", help="grid_sample's own backward instead of the inverse map's"
    )
    ap.add_argument(
        "--crops-near-centre",
        action="store_true",
        help="crops within the jitter of the canvas centre (before 2026-11-27)",
    )
    ap.add_argument("--tv", type=float, default=0.0, help="total-variation weight of this engine's renders")
    ap.add_argument(
        "--seeds",
        help="comma-separated seeds: this engine only, both class sets, the mean over seeds (one seed moves ±3 per 15)",
    )
    args = ap.parse_args()
    classes = HELD_OUT if args.held_out else CLASSES
    warnings.filterwarnings("ignore")
    model, judge_model = load_model(), load_model("efficientnet_lite2")
    settings = {
        "views": args.views,
        "exact_gradient": args.exact_gradient,
        "crop_anywhere": not args.crops_near_centre,
        "tv": args.tv,
    }
    if args.seeds:
        seeds = [int(seed) for seed in args.seeds.split(",")]
        sweep(model, judge_model, seeds, args.size, **settings)
        return
    featviz = functools.partial(ours, seed=args.seed, **settings)
    methods = {"featviz": featviz}
    if not args.no_lucent:
        methods["lucent"] = functools.partial(lucent, seed=args.seed)
    results = {name: score(fn, model, judge_model, classes, args.size) for name, fn in methods.items()}
    n = len(classes)
    print(f"{'method':<8} " + " ".join(f"{f'{s} steps':>9}" for s in CHECKPOINTS) + f" {'s/step':>7}")
    for name, (hits, sec) in results.items():
        print(f"{name:<8} " + " ".join(f"{f'{hits[s]}/{n}':>9}" for s in CHECKPOINTS) + f" {sec:>7.3f}")
    if "lucent" in results:
        (h1, s1), (h2, s2) = results["featviz"], results["lucent"]
        print(
            f"ratio: featviz {h1[32]}/{n} vs lucent {h2[32]}/{n} at 32 steps; featviz step time / lucent = {s1 / s2:.2f}"
        )


if __name__ == "__main__":
    main()
