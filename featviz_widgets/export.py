"""Saving images with the settings that made them, and reading those settings back."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from .errors import FeatvizError

SETTINGS_KEY = "featviz-settings"
MAX_SETTINGS_BYTES = 1_000_000  # a record is a few KB; a direction vector of 4,096 floats ~80 KB


class SavedSettingsError(FeatvizError, ValueError):
    """A file that does not hold settings saved by featviz_widgets."""


def _info(settings: dict[str, Any]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(SETTINGS_KEY, json.dumps(settings, sort_keys=True))
    return info


def save_png(image: Image.Image, path: str | Path, settings: dict[str, Any]) -> Path:
    """Write ``image`` as PNG with ``settings`` as JSON in a text chunk; only to ``path``.
    Returns the absolute path written."""
    path = Path(path).expanduser().resolve()
    image.save(path, format="PNG", pnginfo=_info(settings))
    return path


def png_bytes(image: Image.Image, settings: dict[str, Any]) -> bytes:
    """The PNG file ``save_png`` writes, as bytes (for a browser download)."""
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=_info(settings), compress_level=1)
    return out.getvalue()


def read_png(source: str | Path | bytes) -> tuple[dict[str, Any], Image.Image]:
    """The settings stored by ``save_png`` and the picture, from a path or the file's bytes.
    Anything else (not a PNG, no settings, corrupt JSON) raises SavedSettingsError."""
    label = "the uploaded file" if isinstance(source, (bytes, bytearray)) else repr(str(source))
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as im:
            im.load()
            text = im.text.get(SETTINGS_KEY) if hasattr(im, "text") else None
            image = im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise SavedSettingsError(f"{label} is not a readable PNG image ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(text, str):
        raise SavedSettingsError(f"{label} holds no featviz settings: save one with the Export tab or Dreamer.save().")
    if len(text) > MAX_SETTINGS_BYTES:
        raise SavedSettingsError(f"{label}'s settings are {len(text)} bytes; at most {MAX_SETTINGS_BYTES} are read.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SavedSettingsError(f"{label}'s settings are not valid JSON ({type(exc).__name__}).") from exc
    if not isinstance(data, dict):
        raise SavedSettingsError(f"{label}'s settings are a JSON {type(data).__name__}, not an object.")
    return data, image


def read_settings(source: str | Path | bytes) -> dict[str, Any]:
    """The settings stored by ``save_png`` (SavedSettingsError when there are none)."""
    return read_png(source)[0]
