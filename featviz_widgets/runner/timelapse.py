"""The time-lapse of a run: thumbnails sampled evenly over the whole run, in bounded memory.

Frames are kept every ``interval`` steps; when ``capacity`` is reached every other frame is
dropped and the interval doubles, so the kept frames always span the run from its first steps
to now at an even spacing (a ring buffer would keep only the last stretch). The GIF uses one
shared palette and is shrunk until it fits ``max_bytes``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import FeatvizError


class Timelapse:
    def __init__(self, capacity: int = 64, interval: int = 2) -> None:
        self.capacity = int(capacity)
        self.start_interval = int(interval)
        self.interval = self.start_interval
        self.frames: list[tuple[int, np.ndarray]] = []

    def clear(self) -> None:
        self.frames = []
        self.interval = self.start_interval

    def due(self, step: int) -> bool:
        """True when ``step`` is one to keep (call ``add`` then)."""
        return step % self.interval == 0

    def add(self, step: int, frame: np.ndarray) -> None:
        self.frames.append((step, frame))
        if len(self.frames) >= self.capacity:
            self.interval *= 2
            self.frames = [(s, f) for s, f in self.frames if s % self.interval == 0]

    def to_gif(self, fps: float = 12.0, max_bytes: int = 1_000_000) -> bytes:
        """An animated GIF of the kept frames, all at the last frame's size, at most ``max_bytes``
        (frames are shrunk until it fits)."""
        if not self.frames:
            raise FeatvizError("No frames recorded yet: let the optimization run for a few steps.")
        last = self.frames[-1][1]
        size = (last.shape[1], last.shape[0])
        while True:
            data = _gif([f for _, f in self.frames], size, fps)
            if len(data) <= max_bytes or max(size) <= 32:
                return data
            size = (max(1, size[0] * 3 // 4), max(1, size[1] * 3 // 4))


def _gif(frames: list[np.ndarray], size: tuple[int, int], fps: float) -> bytes:
    images = [Image.fromarray(f, "RGB").resize(size, Image.Resampling.BILINEAR) for f in frames]
    # One adaptive palette from a strip of every frame: no per-frame palette flicker, smaller file.
    strip = Image.fromarray(np.concatenate([np.asarray(i) for i in images[:: max(1, len(images) // 16)]], axis=0))
    palette = strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    quantized = [i.quantize(palette=palette, dither=Image.Dither.NONE) for i in images]
    buf = io.BytesIO()
    quantized[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=quantized[1:],
        duration=round(1000 / fps),
        loop=0,
        optimize=True,
    )
    return buf.getvalue()
