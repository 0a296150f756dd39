"""Saving images with the settings that made them, and reading those settings back."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PICTURE_PIXELS = 40_000_000  # a saved picture larger than this is refused before decoding
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _settings_text(f: BinaryIO, label: str) -> tuple[str | None, tuple[int, int]]:
    """Walk the PNG's chunks without reading any but IHDR and featviz's own text chunk: the
    pixels (IDAT) and other chunks are skipped by seeking, and an oversized settings chunk is
    refused from its length alone. Returns (settings text or None, (width, height))."""
    if f.read(8) != PNG_SIGNATURE:
        raise SavedSettingsError(f"{label} is not a readable PNG image (no PNG signature).")
    size: tuple[int, int] | None = None
    text: str | None = None
    key = SETTINGS_KEY.encode("latin-1") + b"\0"
    while True:
        head = f.read(8)
        if len(head) < 8:
            break  # truncated after the last whole chunk: the decoder says more if the pixels are needed
        length, kind = struct.unpack(">I4s", head)
        start = f.tell()
        if kind == b"IHDR" and length >= 8:
            size = struct.unpack(">II", f.read(8))
        elif kind in _TEXT_CHUNKS and text is None:
            if f.read(len(key)) == key:
                if length > MAX_SETTINGS_BYTES:
                    raise SavedSettingsError(
                        f"{label}'s settings chunk is {length:,} bytes; at most {MAX_SETTINGS_BYTES:,} are read."
                    )
                text = _decode_text(kind, f.read(length - len(key)), label)
        elif kind == b"IEND":
            break
        f.seek(start + length + 4)  # the chunk's data and CRC
    if size is None:
        raise SavedSettingsError(f"{label} is not a readable PNG image (no IHDR chunk).")
    return text, size


def _decode_text(kind: bytes, body: bytes, label: str) -> str:
    """A tEXt/zTXt/iTXt chunk's text after its keyword; compressed text inflated with a cap."""
    try:
        if kind == b"tEXt":
            return body.decode("latin-1")
        if kind == b"zTXt":
            return _inflate(body[1:], label).decode("latin-1")
        flag, _method = body[0], body[1]
        _lang, _, rest = body[2:].partition(b"\0")
        _translated, _, rest = rest.partition(b"\0")
        return (_inflate(rest, label) if flag else rest).decode("utf-8")
    except (IndexError, UnicodeDecodeError, zlib.error) as exc:
        raise SavedSettingsError(f"{label}'s settings chunk is corrupt ({type(exc).__name__}).") from exc


def _inflate(data: bytes, label: str) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_SETTINGS_BYTES + 1)
    if len(out) > MAX_SETTINGS_BYTES:
        raise SavedSettingsError(f"{label}'s settings inflate to more than {MAX_SETTINGS_BYTES:,} bytes; refused.")
    return out


def _open(source: str | Path | bytes) -> BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    try:
        return open(Path(source).expanduser(), "rb")
    except OSError as exc:
        raise SavedSettingsError(f"{str(source)!r} could not be opened ({type(exc).__name__}: {exc}).") from exc


def read_png_settings(source: str | Path | bytes) -> tuple[dict[str, Any], tuple[int, int]]:
    """The settings stored by ``save_png`` and the picture's (width, height), read without
    decoding the pixels. Anything else (not a PNG, no settings, corrupt JSON, a settings chunk
    over ``MAX_SETTINGS_BYTES``) raises SavedSettingsError."""
    label = "the uploaded file" if isinstance(source, (bytes, bytearray, memoryview)) else repr(str(source))
    with _open(source) as f:
        try:
            text, size = _settings_text(f, label)
        except (OSError, struct.error) as exc:
            raise SavedSettingsError(f"{label} is not a readable PNG image ({type(exc).__name__}).") from exc
    if text is None:
        raise SavedSettingsError(f"{label} holds no featviz settings: save one with the Export tab or Dreamer.save().")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SavedSettingsError(f"{label}'s settings are not valid JSON ({type(exc).__name__}).") from exc
    if not isinstance(data, dict):
        raise SavedSettingsError(f"{label}'s settings are a JSON {type(data).__name__}, not an object.")
    return data, size


def read_png_picture(source: str | Path | bytes, max_pixels: int = MAX_PICTURE_PIXELS) -> Image.Image:
    """The picture of a PNG as RGB, refused before decoding when it has more than ``max_pixels``."""
    label = "the uploaded file" if isinstance(source, (bytes, bytearray, memoryview)) else repr(str(source))
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source) as im:
            if im.width * im.height > max_pixels:
                raise SavedSettingsError(
                    f"{label}'s picture is {im.width}x{im.height} pixels; at most {max_pixels:,} are decoded here."
                )
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, SavedSettingsError):
            raise
        raise SavedSettingsError(f"{label} is not a readable PNG image ({type(exc).__name__}: {exc}).") from exc


def read_png(source: str | Path | bytes) -> tuple[dict[str, Any], Image.Image]:
    """The settings stored by ``save_png`` and the picture, from a path or the file's bytes.
    The settings are read first, without the pixels; a picture over ``MAX_PICTURE_PIXELS`` is
    refused before it is decoded. Anything else raises SavedSettingsError."""
    data, _size = read_png_settings(source)
    return data, read_png_picture(source)


def read_settings(source: str | Path | bytes) -> dict[str, Any]:
    """The settings stored by ``save_png`` (SavedSettingsError when there are none); the
    pixels are not decoded."""
    return read_png_settings(source)[0]
