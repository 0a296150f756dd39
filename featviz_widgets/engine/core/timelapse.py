"""A time-lapse of a whole run in bounded memory, and its GIF.

``Timelapse`` keeps at most ``max_frames`` frames sampled evenly from the first step to now:
it takes a frame every ``interval`` steps, and when it is full it drops every other frame and
doubles the interval, so however long the run, the frames span it evenly (a ring buffer of the
last N frames would show only the last stretch). The newest frame offered is also kept, as the
last frame, so the film ends where the run is.

``to_gif`` encodes them with one adaptive palette for the whole film (computed from a montage of
the frames, so colours do not flicker from frame to frame and each frame needs no local palette)
and keeps the file under ``max_bytes`` by showing fewer of the frames (still evenly spread) and,
if that is not enough, smaller ones. Pure numpy and PIL: no threads, no torch.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image

from ...errors import FeatvizError, InvalidSettingError
from ..image.layout import grid
from .settings import check_int

MAX_BYTES = 1_000_000  # the GIF's default size bound
MIN_GIF_FRAMES = 40  # fewer frames make a jerky film: below this, shrink the frames instead
HOLD_LAST_MS = 1000  # the final picture stays on screen a moment before the loop restarts


class TimelapseError(FeatvizError, ValueError):
    """A time-lapse that cannot be made (no frames yet)."""


class Timelapse:
    """Frames of one run, sampled evenly from its first step to now, at most ``max_frames``
    (plus the newest frame offered). ``add`` them with their step number; a step below the last
    one (a restarted run) starts a new time-lapse."""

    def __init__(self, max_frames: int = 128, interval: int = 1) -> None:
        self.max_frames = check_int("max_frames", max_frames, 4, 100_000)
        self.start_interval = check_int("interval", interval, 1, 1_000_000)
        self.clear()

    def clear(self) -> None:
        """Forget every frame; sampling restarts at the first interval."""
        self.interval = self.start_interval
        self._frames: list[tuple[int, np.ndarray]] = []
        self._latest: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.frames())

    def due(self, step: int) -> bool:
        """Whether ``add(step, ...)`` would keep the frame as a sample: lets a caller skip making
        a thumbnail it would not keep (``add`` also keeps the newest frame for the end)."""
        return not self._frames or step >= self._frames[-1][0] + self.interval or step < self._frames[-1][0]

    def add(self, step: int, frame: np.ndarray) -> bool:
        """Offer the picture at ``step`` ((H, W, 3) uint8, copied). Returns whether it was kept
        as a sample; it is kept as the newest frame either way."""
        step = check_int("step", step, 0, 2**62)
        frame = _checked_frame(frame)
        last = self._latest[0] if self._latest is not None else -1
        if step < last:
            self.clear()  # a new run
        if self._latest is not None and step == self._latest[0]:
            self._latest = (step, frame.copy())
            return False
        if not self.due(step):
            self._latest = (step, frame.copy())
            return False
        self._frames.append((step, frame.copy()))
        self._latest = None
        if len(self._frames) > self.max_frames:
            # Keep both ends: the first frame and every other one after it, spaced twice as far.
            keep = self._frames[::2]
            if keep[-1] is not self._frames[-1]:
                self._latest = self._frames[-1]  # the newest stays as the end frame
            self._frames = keep
            self.interval *= 2
        return True

    def steps(self) -> list[int]:
        """The step of every frame ``frames()`` returns."""
        return [s for s, _ in self._entries()]

    def frames(self) -> list[np.ndarray]:
        """The frames, oldest first: the samples, then the newest frame if it is later."""
        return [f for _, f in self._entries()]

    def _entries(self) -> list[tuple[int, np.ndarray]]:
        entries = list(self._frames)
        if self._latest is not None and (not entries or self._latest[0] > entries[-1][0]):
            entries.append(self._latest)
        return entries

    @property
    def nbytes(self) -> int:
        """Memory held by the frames."""
        return sum(f.nbytes for _, f in self._entries())

    def to_gif(self, fps: float = 12.0, max_bytes: int = MAX_BYTES, max_frames: int | None = None) -> bytes:
        """An animated GIF of the run, looping, under ``max_bytes`` (all frames at the newest
        frame's size; at most ``max_frames`` of them, evenly spread, the first and last always)."""
        entries = self._entries()
        if not entries:
            raise TimelapseError("No frames recorded yet: let the optimization run for a few steps.")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0.5 <= fps <= 50:
            raise InvalidSettingError(f"fps must be a number from 0.5 to 50, got {fps!r}.")
        max_bytes = check_int("max_bytes", max_bytes, 10_000, 1_000_000_000)
        frames = [f for _, f in entries]
        if max_frames is not None:
            frames = _spread(frames, check_int("max_frames", max_frames, 1, 100_000))
        h, w = frames[-1].shape[:2]
        scale = 1.0
        while True:
            size = (max(16, round(w * scale)), max(16, round(h * scale)))
            data = encode_gif(frames, fps, size)
            if len(data) <= max_bytes:
                return data
            if len(frames) > MIN_GIF_FRAMES:
                # Size grows about linearly with the frame count: aim 5% under the bound.
                n = max(MIN_GIF_FRAMES, min(len(frames) - 1, int(len(frames) * max_bytes / len(data) * 0.95)))
                frames = _spread(frames, n)
            elif size[0] > 16 or size[1] > 16:
                scale *= max(0.5, min(0.9, math.sqrt(max_bytes / len(data)) * 0.95))
            else:
                raise TimelapseError(f"Even {len(frames)} frames of 16 px exceed max_bytes={max_bytes}.")


def encode_gif(frames: list[np.ndarray], fps: float, size: tuple[int, int]) -> bytes:
    """Frames resized to ``size`` (width, height), one adaptive 256-colour palette for all of them
    (from a montage of up to 16 frames), no dithering (noise costs LZW dearly), the last frame held
    ``HOLD_LAST_MS``."""
    images = [_resized(Image.fromarray(f, "RGB"), size) for f in frames]
    sample = _spread(images, 16)
    montage = Image.fromarray(grid(sample, 1, 0))
    palette = montage.quantize(256, method=Image.Quantize.MEDIANCUT)
    indexed = [img.quantize(palette=palette, dither=Image.Dither.NONE) for img in images]
    frame_ms = round(1000 / fps)
    durations = [frame_ms] * (len(indexed) - 1) + [max(frame_ms, HOLD_LAST_MS)]
    buf = io.BytesIO()
    options: dict[str, Any] = {"save_all": True, "append_images": indexed[1:], "duration": durations, "loop": 0}
    indexed[0].save(buf, format="GIF", optimize=False, **options)
    return buf.getvalue()


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.Resampling.BILINEAR)


def _spread(items: list[Any], n: int) -> list[Any]:
    """``n`` items evenly spread over ``items``, the first and the last included."""
    if n >= len(items):
        return list(items)
    if n == 1:
        return [items[-1]]
    picks = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in picks]


def _checked_frame(frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InvalidSettingError(f"A time-lapse frame must be an (H, W, 3) uint8 array, got {got}.")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InvalidSettingError(f"A time-lapse frame must not be empty, got shape {frame.shape}.")
    return frame


__all__ = ["MAX_BYTES", "Timelapse", "TimelapseError", "encode_gif"]
