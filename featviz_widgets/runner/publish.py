"""What the worker publishes: ``Snapshot`` (the state the view reads), ``Frame`` (encoded bytes for
the browser), the ``FrameSink`` that receives both, the ``Publisher`` that sends them (paced, and
only when the sink can take a frame), and the pictures made from a Renderer for them (the frame,
with MaCo's transparency when asked; the time-lapse thumbnail)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..engine import Renderer, RenderSettings
from ..engine.core import to_uint8
from ..engine.image import grid, transparency_overlay
from .changes import fit
from .frames import encode
from .target import Target

UNSEEN = "Paused: no view of this widget is left on screen (it runs again when one is back, or on Run)."
STATES = ("starting", "running", "settled", "paused", "busy", "error", "stopped")


@dataclass
class Frame:
    data: bytes
    mime: str  # "image/jpeg" or "image/png"
    width: int
    height: int
    step: int


@dataclass(frozen=True)
class Snapshot:
    """What the live image is now, as the worker last published it (read-only for the view)."""

    images: np.ndarray | None  # (N, H, W, 3) uint8, None before the first step
    step: int
    settings: RenderSettings
    target: Target
    state: str  # one of STATES
    objective: float | None
    steps_per_s: float
    device: str
    error: str = ""
    warning: str = ""
    history: tuple[float, ...] = ()
    paused: bool = False  # the user paused it (Run shows then)

    @property
    def stepping(self) -> bool:
        """True unless the user paused the loop or it settled: the Run button then offers Pause
        (while a job holds the loop it still does: the loop resumes after the job)."""
        return not self.paused and self.state not in ("settled", "stopped")


class FrameSink(Protocol):
    def ready(self) -> bool:
        """True when a new frame may be sent now (back-pressure and visibility)."""

    def publish(self, frame: Frame | None, snapshot: Snapshot) -> None:
        """Show ``frame`` (None: status only). Called from the worker thread."""

    def abandoned(self) -> bool:
        """True when no one can see the output any more: the loop pauses itself."""

    def revive(self) -> None:
        """The user asked to run: whatever made ``abandoned()`` true is forgiven for now."""


def make_frame(images: np.ndarray, r: Renderer | None, kind: str, step: int, transparency: bool) -> Frame:
    """``images`` (the snapshot's) as one ``kind`` ("jpeg"/"png") frame of a grid; with
    ``transparency`` the frame (only: saves keep the true picture) fades what the gradient
    touched least."""
    if transparency and r is not None:
        images = to_uint8(transparency_overlay(r.image(), r.transparency()))
    picture = grid(images)
    return Frame(encode(picture, kind), f"image/{kind}", picture.shape[1], picture.shape[0], step)


def thumbnail(renderer: Renderer, side: int = 160) -> np.ndarray:
    """The current image (or grid) shrunk to at most ``side`` pixels, as uint8 HxWx3."""
    img = renderer.image()
    if max(img.shape[-2:]) > side:
        img = torch.nn.functional.interpolate(
            img, fit(img.shape[-2:], side), mode="bilinear", align_corners=False, antialias=True
        )
    return grid(to_uint8(img))


class Publisher:
    """The worker's side of the sink: holds the last ``Snapshot``, sends it with a frame when the
    sink can take one, paces running frames to ``fps`` by ``clock``, and remembers the lossless
    frame it sent last (an idle loop sends one per state and change)."""

    def __init__(
        self,
        sink: FrameSink,
        snapshot: Snapshot,
        fps: float,
        clock: Callable[[], float],
        on_error: Callable[[str], None],
    ) -> None:
        self.sink = sink
        self.snapshot = snapshot
        self.fps = fps
        self.clock = clock
        self.transparency = False  # frames show MaCo's transparency map as an alpha
        self._on_error = on_error  # a failed send (a closed view) must not kill the worker
        self._png_sent_for: tuple[int, str, int] | None = None
        self._last_push = 0.0

    def due(self, now_anyway: bool) -> bool:
        """After a step: True when its frame goes out (at most ``fps`` a second, or ``now_anyway``)."""
        now = self.clock()
        if now_anyway or now - self._last_push >= 1.0 / self.fps:
            self._last_push = now
            return True
        return False

    def png_sent(self, state: str, generation: int) -> bool:
        """Whether the lossless frame of this step, state and change was sent already."""
        return self._png_sent_for == (self.snapshot.step, state, generation)

    def resend_png(self) -> None:
        self._png_sent_for = None

    def publish(self, snapshot: Snapshot, r: Renderer | None, frame: str, generation: int) -> None:
        """Make ``snapshot`` the published one and send it, with a ``frame`` ("jpeg", "png";
        "status": none) when the sink can take one."""
        self.snapshot = snapshot
        if frame == "status" or snapshot.images is None or not self.sink.ready():
            self.send(None)
            return
        if frame == "png":
            self._png_sent_for = (snapshot.step, snapshot.state, generation)
        self.send(make_frame(snapshot.images, r, frame, snapshot.step, self.transparency))

    def send(self, frame: Frame | None) -> None:
        try:
            self.sink.publish(frame, self.snapshot)
        except Exception:  # a closed view must not kill the worker
            self._on_error(traceback.format_exc())
