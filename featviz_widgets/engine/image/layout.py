"""Pictures laid out together: the one grid maker (tiles in rows and columns on white, with a gap)
and the one captioning helper (lines of text in the caption style), used by every sheet, strip,
gallery and montage of the package.

Not torchvision's ``make_grid``: it takes tiles of one size only (a group's heatmap has the
photo's shape, not the render's) and frames the whole grid in the gap; here a row is as high as
its highest tile, a column as wide as its widest, and there is no outer border unless asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Tile = np.ndarray | Image.Image


def grid_columns(n: int, width: int, gap: int = 2, max_width: int | None = None) -> int:
    """Columns of a near-square grid of ``n`` tiles ``width`` wide, fewer when the grid would be
    wider than ``max_width`` pixels (then it is shown 1:1, never shrunk: captions stay legible)."""
    cols = 1 if n <= 1 else math.ceil(math.sqrt(n))
    if max_width is not None:
        cols = min(cols, max(1, (max_width + gap) // (width + gap)))
    return cols


def grid(
    tiles: Sequence[Tile | None] | np.ndarray,
    cols: int | None = None,
    gap: int = 2,
    *,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> np.ndarray:
    """(H, W, 3) uint8 tiles (arrays or PIL images; None leaves its cell empty) in rows of
    ``cols`` (near square when None) on white, ``gap`` pixels apart: each row as high as its
    highest tile, each column as wide as its widest, a tile at its cell's top left. ``pad`` adds
    white (left, top, right, bottom) around the whole. An (N, H, W, 3) array works as N tiles."""
    arrays = [None if t is None else np.asarray(t) for t in tiles]
    shown = [a for a in arrays if a is not None]
    if not shown:
        raise ValueError("A grid needs at least one tile.")
    cols = cols or grid_columns(len(arrays), shown[0].shape[1], gap)
    rows = math.ceil(len(arrays) / cols)
    heights, widths = [0] * rows, [0] * cols
    for i, a in enumerate(arrays):
        if a is not None:
            r, c = divmod(i, cols)
            heights[r], widths[c] = max(heights[r], a.shape[0]), max(widths[c], a.shape[1])
    left, top, right, bottom = pad
    ys = np.cumsum([top] + [h + gap for h in heights])
    xs = np.cumsum([left] + [w + gap for w in widths])
    height, width = int(ys[-1]) - gap + bottom, int(xs[-1]) - gap + right
    out = np.full((height, width, shown[0].shape[2]), 255, np.uint8)
    for i, a in enumerate(arrays):
        if a is not None:
            r, c = divmod(i, cols)
            out[ys[r] : ys[r] + a.shape[0], xs[c] : xs[c] + a.shape[1]] = a
    return out


def grid_index(x: int, y: int, n: int, height: int, width: int, gap: int = 2, cols: int | None = None) -> int | None:
    """Which tile of a ``grid`` of ``n`` (height x width) tiles in ``cols`` columns (near square
    when None) contains pixel (x, y); None for the gaps and outside."""
    if n <= 0 or x < 0 or y < 0:
        return None
    cols = cols or grid_columns(n, width, gap)
    col, cx = divmod(x, width + gap)
    row, cy = divmod(y, height + gap)
    if col >= cols or cx >= width or cy >= height:
        return None
    index = row * cols + col
    return index if index < n else None


def caption(
    canvas: Image.Image,
    xy: tuple[int, int],
    lines: Sequence[str],
    *,
    line_height: int = 12,
    fill: str | tuple[int, int, int] = "black",
    first_fill: str | tuple[int, int, int] | None = None,
) -> None:
    """Write ``lines`` on ``canvas`` from ``xy`` down, ``line_height`` apart, in PIL's default
    font, the first line in ``first_fill`` when given. The canvas bounds the text: a caption
    strip of its own clips a long label at the tile's edge."""
    draw = ImageDraw.Draw(canvas)
    x, y = xy
    for k, line in enumerate(lines):
        colour = first_fill if k == 0 and first_fill is not None else fill
        draw.text((x, y + line_height * k), line, fill=colour)


__all__ = ["caption", "grid", "grid_columns", "grid_index"]
