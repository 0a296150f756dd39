"""Saving images with the settings that made them, and reading those settings back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

SETTINGS_KEY = "featviz-settings"


def save_png(image: Image.Image, path: str | Path, settings: dict[str, Any]) -> Path:
    """Write ``image`` as PNG with ``settings`` as JSON in a text chunk; only to ``path``."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text(SETTINGS_KEY, json.dumps(settings, sort_keys=True))
    image.save(path, format="PNG", pnginfo=info)
    return path


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings stored by ``save_png`` (KeyError when the PNG has none)."""
    with Image.open(path) as im:
        text = im.text.get(SETTINGS_KEY) if hasattr(im, "text") else None
    if text is None:
        raise KeyError(f"{str(path)!r} holds no featviz settings.")
    return dict(json.loads(text))
