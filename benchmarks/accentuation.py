"""Feature accentuation's "stay close" over its range: how far the result is from the photo and
what EfficientNet-Lite0 sees in it, for DeepDream on a layer and for one channel, on the bundled
chelsea photo at the Photo tab's defaults (3 octaves x 20 steps, strength 0.05, 320 px).

    .venv/bin/python benchmarks/accentuation.py [--values 0,0.25,0.5,0.75,1] [--steps 20]
        [--objectives blocks.8,blocks.8:5] [--photo chelsea] [--max-side 320]

Columns: mean |result - photo| and the 99th percentile of |result - photo| (grey levels of 255),
Lite0's top-1 class on the result (the photo's own first), and whether it is the photo's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from featviz_widgets.engine import load_model
from featviz_widgets.engine.explore import deepdream_photo
from featviz_widgets.engine.image.accentuation import stay_close_radius
from featviz_widgets.engine.image.photos import pil_to_tensor, sample_photo
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.engine.objectives import as_objective


def top1(model: FeatvizModel, image: Image.Image) -> int:
    """Lite0's top-1 class of ``image`` resized to its input size."""
    x = F.interpolate(pil_to_tensor(image), (model.input_size,) * 2, mode="bilinear", antialias=True)
    with torch.no_grad():
        return int(model(x.to(model.device)).argmax(1).item())


def distance(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    """Mean and 99th percentile of |a - b| in grey levels (0..255)."""
    d = np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))
    return float(d.mean()), float(np.percentile(d, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--values", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--objectives", default="blocks.8,blocks.8:5", help="a layer alone is DeepDream on it")
    ap.add_argument("--photo", default="chelsea")
    ap.add_argument("--steps", type=int, default=20, help="steps per octave")
    ap.add_argument("--octaves", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model()
    names = model.class_names or []
    photo = sample_photo(args.photo)
    photo.thumbnail((args.max_side, args.max_side))
    own = top1(model, photo)
    print(f"{args.photo} {photo.width}x{photo.height}: Lite0 top-1 {own} {names[own] if names else ''}")
    print(f"{args.octaves} octaves x {args.steps} steps, strength 0.05")
    print("objective | stay_close | radius (/255) | mean abs diff | p99 abs diff | top-1 | kept")
    print("---|---|---|---|---|---|---")
    t0 = time.perf_counter()
    for text in args.objectives.split(","):
        objective = as_objective(text.strip())
        for value in (float(v) for v in args.values.split(",")):
            out = deepdream_photo(
                model, photo, objective, octaves=args.octaves, steps_per_octave=args.steps, stay_close=value
            )
            mean, p99 = distance(out, photo)
            k = top1(model, out)
            radius = stay_close_radius(value)
            r = "none" if radius is None else f"{radius * 255:.1f}"
            label = names[k] if names else ""
            print(
                f"{objective!r} | {value:g} | {r} | {mean:.1f} | {p99:.0f} | {k} {label} | {'yes' if k == own else 'no'}",
                flush=True,
            )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
