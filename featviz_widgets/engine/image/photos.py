"""Reading photos safely: uploads and sample images become RGB PIL images of bounded size.

Limits are checked before decoding (bytes) and while opening (pixels, PIL's decompression-bomb
guard), every mode (16-bit, RGBA, CMYK, palette, grayscale) is converted to RGB, truncated
files are refused, and large photos are downscaled.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ...errors import FeatvizError

MAX_BYTES = 25 * 1024 * 1024  # 25 MB upload
MAX_PIXELS = 40_000_000  # refuse to decode more (a 4000x10000 photo); bombs are far larger
MAX_SIDE = 1024  # photos are downscaled to this longest side
SAMPLES = ("chelsea", "coffee", "astronaut", "rocket")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class PhotoError(FeatvizError, ValueError):
    """A file that is not a usable image (not an image, truncated, too large)."""


def load_photo(
    data: bytes | bytearray | memoryview | str | Path, max_side: int = MAX_SIDE, name: str = ""
) -> Image.Image:
    """Decode an uploaded file (bytes) or a path into an RGB image no larger than ``max_side``."""
    label = name or (str(data) if isinstance(data, (str, Path)) else "upload")
    if isinstance(data, (str, Path)):
        raw = _read_file(Path(data), label)
    else:
        size = memoryview(data).nbytes
        if size > MAX_BYTES:
            raise PhotoError(_too_big(label, size))
        raw = bytes(data)
    if not raw:
        raise PhotoError(f"{label!r} is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
            try:
                img = Image.open(io.BytesIO(raw))
                if img.width * img.height > MAX_PIXELS:
                    raise PhotoError(
                        f"{label!r} is {img.width}x{img.height} pixels; at most {MAX_PIXELS / 1e6:.0f} megapixels are accepted."
                    )
                img.load()  # decode now: truncated files fail here, not later in the loop
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(
            f"{label!r} is too large to decode safely ({exc}); at most {MAX_PIXELS / 1e6:.0f} megapixels."
        ) from exc
    except UnidentifiedImageError as exc:
        raise PhotoError(f"{label!r} is not an image PIL can read; use JPEG, PNG, WebP, GIF, BMP or TIFF.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"{label!r} could not be decoded (truncated or corrupt?): {exc}") from exc
    return to_rgb(img, max_side)


def _too_big(label: str, size: int) -> str:
    return f"{label!r} is {size / 1e6:.0f} MB; photos up to {MAX_BYTES / 1e6:.0f} MB are accepted."


def _read_file(path: Path, label: str) -> bytes:
    """The bytes of a photo file, refused before reading when it is too large (and never more
    than the limit read, should it grow meanwhile); a file that cannot be read is a PhotoError
    (a folder walk skips it) rather than an OSError."""
    try:
        if not path.is_file():
            raise PhotoError(f"{label!r} is not a file.")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise PhotoError(_too_big(label, size))
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PhotoError(f"{label!r} could not be read: {exc.strerror or exc}.") from exc
    if len(raw) > MAX_BYTES:
        raise PhotoError(_too_big(label, len(raw)))
    return raw


def to_rgb(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (alpha composited on grey, EXIF rotation applied), downscaled."""
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", img.size, (128, 128, 128, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    img = img.convert("RGB")
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def sample_photo(name: str) -> Image.Image:
    """One of the bundled sample photos (see ``SAMPLES``)."""
    if name not in SAMPLES:
        raise PhotoError(f"Unknown sample photo {name!r}; valid: {', '.join(SAMPLES)}.")
    data = resources.files("featviz_widgets").joinpath("data").joinpath(f"{name}.jpg").read_bytes()
    return load_photo(data, name=name)


def iter_photos(folder: str | Path | None = None) -> Iterator[tuple[str, Image.Image]]:
    """Stream (name, RGB image) from a folder, one at a time (unreadable files are skipped);
    with no folder, the bundled samples."""
    if folder is None:
        for name in SAMPLES:
            yield name, sample_photo(name)
        return
    root = Path(folder)
    if not root.is_dir():
        raise PhotoError(f"{str(root)!r} is not a folder of images.")
    for path in _image_files(root):
        try:
            yield str(path), load_photo(path)
        except PhotoError:
            continue


def has_photo(folder: str | Path) -> bool:
    """Whether ``folder`` (or a folder under it) holds at least one image that decodes. It stops
    at the first one, so a large tree costs no more than its first photo."""
    return next(iter_photos(folder), None) is not None


def _image_files(root: Path) -> Iterator[Path]:
    """The image files under ``root`` in the order of ``sorted(root.rglob("*"))``, but walked
    lazily, one folder at a time: taking the first few from a huge tree (a home folder typed
    into the widget) does not list all of it first. Symlinked folders are not entered (as
    ``rglob``); unreadable folders are skipped."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                yield from _image_files(Path(entry.path))
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                yield Path(entry.path)
        except OSError:
            continue


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> 1x3xHxW float tensor in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()
