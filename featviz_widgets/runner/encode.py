"""Frames: uint8 images -> JPEG/PNG bytes, and a batch laid out as one grid image."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

JPEG_QUALITY = 85


def tile(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """(N, H, W, 3) -> one (rows*H, cols*W, 3) grid, near-square, with a white gap."""
    n, h, w, c = images.shape
    if n == 1:
        return images[0]
    cols = math.ceil(math.sqrt(n))
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
