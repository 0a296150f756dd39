"""Reading a saved picture back: the settings, the target and the image, all or nothing.

A saved PNG's record (``export.save_png``) holds the render settings, the live target and a
few informative fields. Every field is checked here, where it enters, before anything changes:
a bad one raises a FeatvizError that names it and what is valid, and the caller applies nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import RenderSettings
from ..export import SavedSettingsError, read_png_picture, read_png_settings
from .target import Target

# atlas: the tile's key and chunk; photo_dream: how the Photo tab's dream.png was made from its photo
INFORMATIVE = ("model", "objective", "steps", "target", "atlas", "photo_dream")


def read_saved(
    source: str | Path | bytes, check: Callable[[RenderSettings, Target], None] | None = None
) -> tuple[RenderSettings, Target, Image.Image]:
    """(settings, target, picture) from a PNG saved by featviz_widgets (path or bytes).

    The settings are read and validated before any pixel is decoded: ``check`` (the caller's
    own test, e.g. that its device can hold them) runs on them first, and the picture is decoded
    only when it is no larger than the grid those settings make (a saved picture is that grid)."""
    data, (width, height) = read_png_settings(source)
    target = Target.from_dict(data.get("target"))
    fields: dict[str, Any] = {k: v for k, v in data.items() if k not in INFORMATIVE}
    try:
        settings = RenderSettings.from_dict(fields)
    except TypeError as exc:  # e.g. an unknown transform field
        raise SavedSettingsError(f"The saved settings do not fit this version: {exc}.") from exc
    if check is not None:
        check(settings, target)
    limit = _grid_pixels(settings)
    if width * height > limit:
        raise SavedSettingsError(
            f"The saved picture is {width}x{height} pixels, larger than the {limit:,} pixels its settings "
            f"make (batch {settings.batch} of {settings.size!r}): refused before decoding."
        )
    return settings, target, read_png_picture(source, max_pixels=limit)


def _grid_pixels(settings: RenderSettings, gap: int = 2) -> int:
    """Pixels of the grid ``engine.image.grid`` lays a batch out in (the picture ``save`` writes)."""
    h, w = settings.size if isinstance(settings.size, tuple) else (settings.size, settings.size)
    n = settings.batch
    cols = 1 if n == 1 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    return (rows * h + (rows - 1) * gap) * (cols * w + (cols - 1) * gap)
