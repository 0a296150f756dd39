"""Side-by-side renders for teaching: one setting changes per image, everything else is equal."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .engine import FeatvizModel, Objective, render
from .engine.image import caption, grid


def high_frequency_share(image: Image.Image) -> float:
    """The share of the grey image's spectral energy (mean removed, Hann-windowed) above half the
    Nyquist frequency (0.25 cycles/px): speckle lives there. Natural photos: about 0.01-0.1."""
    grey = np.asarray(image.convert("RGB"), dtype=np.float64).mean(-1)
    grey -= grey.mean()
    h, w = grey.shape
    power = np.abs(np.fft.fft2(grey * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    f = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
    return float(power[f > 0.25].sum() / max(power.sum(), 1e-12))


def clipped_share(image: Image.Image) -> float:
    """The share of pixels with a colour channel at 0-2 or 253-255 (over-saturated)."""
    arr = np.asarray(image.convert("RGB"))
    return float(((arr <= 2) | (arr >= 253)).any(-1).mean())


def hsv_saturation(image: Image.Image) -> float:
    """The mean HSV saturation (0 grey, 1 pure colour)."""
    x = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    top, low = x.max(-1), x.min(-1)
    return float(np.where(top > 0, (top - low) / np.maximum(top, 1e-12), 0).mean())


def compare(
    model: FeatvizModel | str | None,
    objective: Objective | str,
    variants: dict[str, dict[str, Any]],
    *,
    steps: int = 64,
    size: int = 128,
    seed: int = 0,
    stats: bool = False,
    **common: Any,
) -> Image.Image:
    """Render ``objective`` once per variant (same seed and steps) and lay the results out in a
    row, each captioned with its name and final objective value; ``stats`` adds its
    high-frequency energy share, clipped pixels and colour saturation (``high_frequency_share``,
    ``clipped_share``, ``hsv_saturation``; benchmarks/speckle.py compares them with photos)."""
    tiles = []
    for name, settings in variants.items():
        result = render(model, objective, steps=steps, size=size, seed=seed, progress=False, **{**common, **settings})
        lines = [name, f"objective {result.history[-1]:.3g}"]
        if stats:
            image = result.image
            lines += [
                f"high-freq {high_frequency_share(image):.3f}",
                f"clipped {clipped_share(image):.2f} sat {hsv_saturation(image):.2f}",
            ]
        tiles.append((lines, result.image))
    below = 12 * (len(tiles[0][0]) if tiles else 2) + 4
    width = max(size, 140 if stats else size)
    if not tiles:
        return Image.new("RGB", (0, size + below), "white")
    gap = width + 8 - size  # each render in a column ``width`` wide, 8 px apart
    sheet = Image.fromarray(grid([image for _, image in tiles], len(tiles), gap, pad=(0, 0, gap, below)))
    for i, (lines, _) in enumerate(tiles):  # on the sheet: a long line runs on under the next render
        caption(sheet, (i * (width + 8) + 2, size + 2), lines, fill="dimgray", first_fill="black")
    return sheet
