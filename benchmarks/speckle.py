"""Speckle and saturation of renders at the widget's 128 px, per parameterization, against natural
photos; and what a live switch of parameterization does to the picture (#21).

For each parameterization (and with reference alignment), class logits of EfficientNet-Lite0 are
rendered with the widget's settings for ``--steps`` steps, side by side in one run, and measured
as natural photos are (the probe photos, 128 px crops):

- high-frequency energy: the share of the grey image's spectral energy (mean removed) above half
  the Nyquist frequency (0.25 cycles/px); speckle is energy there;
- clipped pixels: the share of pixels with a colour channel at 0-2 or 253-255 (over-saturated);
- colour saturation: the mean HSV saturation;
- seconds per step (after the first, which reads the reference photos when aligning).

Each is printed beside the photos' value, and as a ratio to it (1.0 = like a photo).

The switch: a render runs ``--steps`` steps in the default parameterization, then switches
(``Renderer.update(param=...)``, what the widget does); printed are the mean absolute pixel change
the switch makes (0-255), against the change one ordinary step makes and against a restart from
noise, and the switch's time as a ratio to one step's (a frame follows the next step).

    PYTHONPATH=. .venv/bin/python benchmarks/speckle.py [--steps 32] [--classes 6] [--size 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from featviz_widgets.engine import Renderer, load_model, maco_recipe
from featviz_widgets.engine.core import to_uint8
from featviz_widgets.engine.image.photos import iter_photos, pil_to_tensor
from featviz_widgets.lab import clipped_share, high_frequency_share, hsv_saturation

# The first classes of benchmarks/quality.py's fixed set (chosen there before any run).
CLASSES = [1, 9, 130, 145, 291, 309, 340, 388, 417, 430, 779, 933, 949, 954, 980]
VARIANTS: dict[str, dict[str, object]] = {
    "pixels": {"param": "pixels"},
    "fourier": {"param": "fourier"},
    "decorrelated (default)": {"param": "decorrelated"},
    "maco": {"param": "maco"},
    "maco recipe": maco_recipe(),
    "decorrelated + align 5": {"param": "decorrelated", "align": 5.0},
    "maco + align 5": {"param": "maco", "align": 5.0},
}


def _mean(fn):
    def over(images: np.ndarray) -> float:
        return float(np.mean([fn(Image.fromarray(a)) for a in images]))

    return over


METRICS = {
    "high-freq energy": _mean(high_frequency_share),
    "clipped px": _mean(clipped_share),
    "saturation": _mean(hsv_saturation),
}


def photo_crops(size: int) -> np.ndarray:
    crops = []
    for _, img in iter_photos(None):
        t = pil_to_tensor(img)
        h, w = t.shape[-2:]
        for y in (0, (h - size) // 2, h - size):
            for x in (0, (w - size) // 2, w - size):
                crops.append(t[..., y : y + size, x : x + size])
    return to_uint8(torch.cat(crops))


def render(model, klass: int, steps: int, size: int, settings: dict[str, object]) -> tuple[np.ndarray, float]:
    r = Renderer(model, f"logits:{klass}", size=size, **settings)
    r.step()  # not timed: it reads the reference photos when aligning (once per run)
    t0 = time.perf_counter()
    if steps > 1:
        r.run(steps - 1)
    return to_uint8(r.image())[0], (time.perf_counter() - t0) / max(steps - 1, 1)


def switches(model, klasses: list[int], steps: int, size: int) -> None:
    print(f"\nlive switch after {steps} steps in 'decorrelated' (mean |pixel change|, 0-255; time as steps)")
    for target in ("pixels", "fourier", "maco"):
        jump, step_change, restart, ratio = [], [], [], []
        for klass in klasses:
            r = Renderer(model, f"logits:{klass}", size=size)
            r.run(steps)
            before = r.image()
            t0 = time.perf_counter()
            r.step()
            step_time = time.perf_counter() - t0
            step_change.append(float((r.image() - before).abs().mean()) * 255)
            before = r.image()
            t0 = time.perf_counter()
            r.update(param=target)
            ratio.append((time.perf_counter() - t0) / step_time)
            jump.append(float((r.image() - before).abs().mean()) * 255)
            fresh = Renderer(model, f"logits:{klass}", size=size, param=target).image()
            restart.append(float((fresh - before).abs().mean()) * 255)
        print(
            f"  -> {target:<7} switch {np.mean(jump):6.2f}   one step {np.mean(step_change):6.2f}   "
            f"restart from noise {np.mean(restart):6.2f}   ratio: switch time = {np.mean(ratio):.2f} steps"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("efficientnet_lite0")
    klasses = CLASSES[: args.classes]
    natural = photo_crops(args.size)
    reference = {name: fn(natural) for name, fn in METRICS.items()}
    print(f"Lite0 class logits {klasses}, {args.steps} steps at {args.size} px, {args.threads} threads")
    print(f"{'':<26}" + "".join(f"{name:>24}" for name in METRICS) + f"{'s/step':>10}")
    print(f"{'photos (' + str(len(natural)) + ' crops)':<26}" + "".join(f"{v:>24.4f}" for v in reference.values()))
    for label, settings in VARIANTS.items():
        images, seconds = [], []
        for klass in klasses:
            img, sec = render(model, klass, args.steps, args.size, settings)
            images.append(img)
            seconds.append(sec)
        arr = np.stack(images)
        cells = "".join(
            f"{fn(arr):>14.4f} ({fn(arr) / max(reference[name], 1e-12):>5.2f}x)" for name, fn in METRICS.items()
        )
        print(f"{label:<26}{cells}{np.mean(seconds):>10.3f}")
    print("ratio: (Nx) = the variant's value / the photos' (1.00x: like a photo)")
    switches(model, klasses, args.steps, args.size)


if __name__ == "__main__":
    main()
