"""Side-by-side renders for teaching: one setting changes per image, everything else is equal."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw

from .engine import FeatvizModel, Objective, render


def compare(
    model: FeatvizModel | str | None,
    objective: Objective | str,
    variants: dict[str, dict[str, Any]],
    *,
    steps: int = 64,
    size: int = 128,
    seed: int = 0,
    **common: Any,
) -> Image.Image:
    """Render ``objective`` once per variant (same seed and steps) and lay the results out in a
    row, each captioned with its name and final objective value."""
    tiles = []
    for name, settings in variants.items():
        result = render(model, objective, steps=steps, size=size, seed=seed, progress=False, **{**common, **settings})
        tiles.append((name, result.image, result.history[-1]))
    caption = 28
    sheet = Image.new("RGB", (len(tiles) * (size + 8), size + caption), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, image, value) in enumerate(tiles):
        x = i * (size + 8)
        sheet.paste(image, (x, 0))
        draw.text((x + 2, size + 2), name, fill="black")
        draw.text((x + 2, size + 14), f"objective {value:.3g}", fill="dimgray")
    return sheet
