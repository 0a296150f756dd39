"""Reading a saved picture back: the settings, the target and the image, all or nothing.

A saved PNG's record (``export.save_png``) holds the render settings, the live target and a
few informative fields. Every field is checked here, where it enters, before anything changes:
a bad one raises a FeatvizError that names it and what is valid, and the caller applies nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import RenderSettings
from ..export import SavedSettingsError, read_png
from .target import Target

# atlas: the tile's key and chunk; photo_dream: how the Photo tab's dream.png was made from its photo
INFORMATIVE = ("model", "objective", "steps", "target", "atlas", "photo_dream")


def read_saved(source: str | Path | bytes) -> tuple[RenderSettings, Target, Image.Image]:
    """(settings, target, picture) from a PNG saved by featviz_widgets (path or bytes)."""
    data, image = read_png(source)
    target = Target.from_dict(data.get("target"))
    fields: dict[str, Any] = {k: v for k, v in data.items() if k not in INFORMATIVE}
    try:
        settings = RenderSettings.from_dict(fields)
    except TypeError as exc:  # e.g. an unknown transform field
        raise SavedSettingsError(f"The saved settings do not fit this version: {exc}.") from exc
    return settings, target, image
