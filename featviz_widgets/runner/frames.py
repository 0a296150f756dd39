"""Frames: uint8 images -> JPEG/PNG bytes, and a batch laid out as one captioned grid image
with the engine's grid maker (``engine.image.grid``; ``grid_index`` maps a click back)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..engine.image import caption, grid, grid_columns

JPEG_QUALITY = 85


def encode(image: np.ndarray, fmt: str = "jpeg", quality: int = JPEG_QUALITY) -> bytes:
    """Encode an (H, W, 3) uint8 array. JPEG for live frames (small and quick to make), PNG when lossless."""
    buf = io.BytesIO()
    pil = Image.fromarray(image, "RGB")
    if fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=quality)
    elif fmt == "png":
        pil.save(buf, format="PNG", compress_level=3)
    else:
        raise ValueError(f"Unknown frame format {fmt!r}; valid: 'jpeg', 'png'.")
    return buf.getvalue()


def labelled_grid(
    images: np.ndarray, labels: list[str], gap: int = 2, strip: int = 16, max_width: int | None = None
) -> tuple[np.ndarray, int, int]:
    """A grid with a caption strip of ``strip`` pixels under each image, at most
    ``max_width`` pixels wide when given; returns the grid, the cell height (image + strip) and
    the columns, for ``engine.image.grid_index``."""
    n, h, w, c = images.shape
    cells = np.full((n, h + strip, w, c), 255, np.uint8)
    cells[:, :h] = images
    for i, label in enumerate(labels):
        below = Image.new("RGB", (w, strip), "white")  # its own strip: a long label ends at the tile's edge
        caption(below, (2, 1), [label], fill=(40, 40, 40))  # whole glyphs: 2..13 px
        cells[i, h:] = np.asarray(below)
    cols = grid_columns(n, w, gap, max_width)
    return grid(cells, cols, gap), h + strip, cols


__all__ = ["JPEG_QUALITY", "encode", "labelled_grid"]
