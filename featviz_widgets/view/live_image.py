"""LiveImage: the one custom widget, a canvas that shows frames from a LiveRunner.

Developer notes on flow control: frames are a ``frame`` trait (so a new view, or saved widget
state, shows the current picture) and travel as binary buffers. The front end acknowledges
each frame it draws with a custom message; ``ready()`` is true only while fewer than
``max_in_flight`` frames are unacknowledged and some view reports itself visible. A view that
never acknowledges (closed tab) is forgotten after ``ack_timeout`` seconds. The worker thread is
the only writer of ``frame``/``mime``/``seq``; the front end writes nothing (it sends messages).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import anywidget
import numpy as np
import traitlets

from ..runner.encode import encode
from ..runner.live import Frame


def _static(name: str) -> str:
    return resources.files("featviz_widgets.view").joinpath("static").joinpath(name).read_text(encoding="utf-8")


class LiveImage(anywidget.AnyWidget):
    """A canvas showing the latest frame. Traits: ``frame`` (bytes), ``mime``, ``seq``,
    ``width``/``height`` (frame pixels), ``display_size`` (CSS pixels, 0 = natural),
    ``pixelated`` (nearest-neighbour upscaling)."""

    _esm = _static("live_image.js")
    _css = _static("live_image.css")

    frame = traitlets.Bytes(b"").tag(sync=True)
    mime = traitlets.Unicode("image/jpeg").tag(sync=True)
    seq = traitlets.Int(0).tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)
    display_size = traitlets.Int(384).tag(sync=True)
    pixelated = traitlets.Bool(False).tag(sync=True)

    def __init__(self, max_in_flight: int = 2, ack_timeout: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_in_flight = max_in_flight
        self.ack_timeout = ack_timeout
        self.silent_view_timeout = 15.0
        self._unanswered_since: float | None = None  # first frame sent since the browser last spoke
        self.acked = 0
        self._last_ack_time = time.monotonic()
        self._views: dict[str, bool] = {}  # view id -> visible
        self.views_seen = False
        self._abandoned_since: float | None = None
        self._created = time.monotonic()
        self._click_callbacks: list[Callable[[int, int], None]] = []
        self._state_lock = threading.Lock()
        self.on_msg(self._handle_message)

    # --- messages from the browser (kernel main thread) ---------------------------------------
    def _handle_message(self, _widget: object, content: dict[str, Any], _buffers: list[bytes]) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        self._unanswered_since = None  # the browser is alive
        if kind == "click":  # outside the lock: callbacks may read this widget's state
            x, y = int(content.get("x", -1)), int(content.get("y", -1))
            for callback in list(self._click_callbacks):
                callback(x, y)
            return
        with self._state_lock:
            if kind == "ack":
                self.acked = max(self.acked, int(content.get("seq", 0)))
                self._last_ack_time = time.monotonic()
            elif kind == "visibility":
                self._views[str(content.get("view"))] = bool(content.get("visible"))
                self.views_seen = True
                self._abandoned_since = None
            elif kind == "closed":
                self._views.pop(str(content.get("view")), None)
                if not self._views:
                    self._abandoned_since = time.monotonic()

    def on_click(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(x, y)`` (frame pixels) when a view of this image is clicked."""
        self._click_callbacks.append(callback)

    def show_image(self, image: np.ndarray, fmt: str = "png") -> None:
        """Show a still (H, W, 3) uint8 image, e.g. a gallery sheet."""
        self.show(Frame(encode(image, fmt), f"image/{fmt}", image.shape[1], image.shape[0], 0))

    @property
    def visible(self) -> bool:
        with self._state_lock:
            return any(self._views.values())

    @property
    def view_count(self) -> int:
        with self._state_lock:
            return len(self._views)

    def abandoned(self, grace: float = 5.0, never_shown_grace: float = 120.0) -> bool:
        """True when nobody can see the loop any more: every view that showed this widget has
        been gone for ``grace`` seconds (its cell was re-run or cleared; a view that leaves
        frames unacknowledged for ``silent_view_timeout`` seconds counts as gone: its tab was
        closed), or no view at all has appeared within ``never_shown_grace`` seconds of its
        creation (a server-side run that no browser ever opened)."""
        now = time.monotonic()
        with self._state_lock:
            silent_since = self._unanswered_since
            if self._views and silent_since is not None and now - silent_since > self.silent_view_timeout:
                self._views.clear()  # frames unanswered this long: the tab was closed or crashed
                self._abandoned_since = silent_since
            if self._views:
                return False
            if not self.views_seen:
                return now - self._created > never_shown_grace
            since = self._abandoned_since
            return since is not None and now - since > grace

    @property
    def in_flight(self) -> int:
        return self.seq - self.acked

    def ready(self) -> bool:
        """True when a frame may be sent: some view visible and fewer than max_in_flight unacked."""
        if not self.visible:
            return False
        if self.in_flight < self.max_in_flight:
            return True
        if time.monotonic() - self._last_ack_time > self.ack_timeout:
            self.acked = self.seq  # acks lost (view closed mid-frame): start counting afresh
            return True
        return False

    # --- frames from the worker thread ---------------------------------------------------------
    def show(self, frame: Frame) -> None:
        if self._unanswered_since is None:
            self._unanswered_since = time.monotonic()
        if self.in_flight == 0:
            self._last_ack_time = time.monotonic()  # measure the ack timeout from the first unacked frame
        with self.hold_sync():
            self.mime = frame.mime
            self.width = frame.width
            self.height = frame.height
            self.frame = frame.data
            self.seq = self.seq + 1

    def copy(self, text: str) -> None:
        """Ask the browser to put ``text`` on the clipboard (navigator.clipboard)."""
        self.send({"type": "copy", "text": text})

    def download(self, png: bytes, filename: str) -> None:
        """Ask every view to save ``png`` as a file in the browser's downloads."""
        self.send({"type": "download", "filename": filename}, [png])
