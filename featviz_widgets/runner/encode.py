"""Frames: uint8 images -> JPEG/PNG bytes, and a batch laid out as one grid image."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

JPEG_QUALITY = 85


def columns(n: int, width: int, gap: int = 2, max_width: int | None = None) -> int:
    """Columns of a near-square grid of ``n`` images ``width`` wide, fewer when the grid would
    be wider than ``max_width`` pixels (then it is shown 1:1, never shrunk: captions stay legible)."""
    cols = 1 if n <= 1 else math.ceil(math.sqrt(n))
    if max_width is not None:
        cols = min(cols, max(1, (max_width + gap) // (width + gap)))
    return cols


def tile(images: np.ndarray, gap: int = 2, cols: int | None = None) -> np.ndarray:
    """(N, H, W, 3) -> one (rows*H, cols*W, 3) grid, near-square unless ``cols`` is given, with
    a white gap."""
    n, h, w, c = images.shape
    if n == 1:
        return images[0]
    cols = cols or columns(n, w, gap)
    rows = math.ceil(n / cols)
    grid = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), 255, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = images[i]
    return grid


def encode(image: np.ndarray, fmt: str = "jpeg", quality: int = JPEG_QUALITY) -> bytes:
    """Encode an (H, W, 3) uint8 array. JPEG for live frames (small, ~1 ms), PNG when lossless."""
    buf = io.BytesIO()
    pil = Image.fromarray(image, "RGB")
    if fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=quality)
    elif fmt == "png":
        pil.save(buf, format="PNG", compress_level=3)
    else:
        raise ValueError(f"Unknown frame format {fmt!r}; valid: 'jpeg', 'png'.")
    return buf.getvalue()


def tile_index(x: int, y: int, n: int, height: int, width: int, gap: int = 2, cols: int | None = None) -> int | None:
    """Which image of a ``tile`` grid of ``n`` (height x width) images in ``cols`` columns (near
    square when None) contains pixel (x, y); None for the gaps and outside."""
    if n <= 0 or x < 0 or y < 0:
        return None
    cols = cols or columns(n, width, gap)
    col, cx = divmod(x, width + gap)
    row, cy = divmod(y, height + gap)
    if col >= cols or cx >= width or cy >= height:
        return None
    index = row * cols + col
    return index if index < n else None


def gif(frames: list[np.ndarray], fps: float = 12.0) -> bytes:
    """An animated GIF of (H, W, 3) uint8 frames (all resized to the last frame's size)."""
    if not frames:
        raise ValueError("No frames recorded yet: let the optimization run for a few steps.")
    size = (frames[-1].shape[1], frames[-1].shape[0])
    images = [Image.fromarray(f, "RGB").resize(size) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return buf.getvalue()


def labelled_grid(
    images: np.ndarray, labels: list[str], gap: int = 2, strip: int = 16, max_width: int | None = None
) -> tuple[np.ndarray, int, int]:
    """A ``tile`` grid with a caption strip of ``strip`` pixels under each image, at most
    ``max_width`` pixels wide when given; returns the grid, the cell height (image + strip) and
    the columns, for ``tile_index``."""
    from PIL import ImageDraw

    n, h, w, c = images.shape
    cells = np.full((n, h + strip, w, c), 255, np.uint8)
    cells[:, :h] = images
    for i, label in enumerate(labels):
        caption = Image.new("RGB", (w, strip), "white")
        ImageDraw.Draw(caption).text((2, 1), label, fill=(40, 40, 40))  # whole glyphs: 2..13 px
        cells[i, h:] = np.asarray(caption)
    cols = columns(n, w, gap, max_width)
    if n == 1:  # tile() shows one image as it is: keep the caption
        return cells[0], h + strip, 1
    return tile(cells, gap, cols), h + strip, cols
