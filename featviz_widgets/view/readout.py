"""What the live loop's snapshots show (runner -> widgets, on the worker thread): the frame in the
image widget, the status line with the last control error in it, the objective's sparkline,
and the Run/Pause button."""

from __future__ import annotations

import threading
from collections.abc import Callable

import ipywidgets as W

from ..engine import FeatvizModel
from ..runner import Frame, Snapshot
from .live_image import LiveImage
from .sink import show_frame
from .status import sparkline, status_html


class Readout:
    """The status line (``status``) and the sparkline (``plot``) of a Dreamer, written from its
    snapshots; it also draws their frames in ``image`` and names the ``run`` button's action."""

    def __init__(self, image: LiveImage | W.Image, run: W.Button, model: FeatvizModel) -> None:
        self.plot = W.HTML(sparkline([]))
        self.status = W.HTML("starting...")
        self.frames = 0  # frames shown so far
        self._image = image
        self._run = run
        self._model = model
        self._control_error = ""
        self._stepping_shown: bool | None = None
        self._status_lock = threading.Lock()

    def show(self, frame: Frame | None, snap: Snapshot) -> None:
        if frame is not None:
            self.frames += 1
            show_frame(self._image, frame)
        with self._status_lock:
            self.status.value = status_html(snap, self._model.class_names, self._control_error)
            self.plot.value = sparkline(snap.history[-200:])
        self.show_stepping(snap.stepping)

    def show_control_error(self, message: str, snapshot: Callable[[], Snapshot]) -> None:
        """Show ``message`` (or no error, with "") in the status line of the current snapshot."""
        self._control_error = message
        with self._status_lock:
            self.status.value = status_html(snapshot(), self._model.class_names, message)

    def show_stepping(self, stepping: bool) -> None:
        """The run button offers Pause while the loop steps, else Run."""
        if stepping == self._stepping_shown:
            return
        self._stepping_shown = stepping
        self._run.description, self._run.icon = ("Pause", "pause") if stepping else ("Run", "play")
