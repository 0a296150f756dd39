"""LiveImage: the one custom widget, a canvas that shows frames from a LiveRunner.

Developer notes on flow control: frames are a ``frame`` trait (so a new view, or saved widget
state, shows the current picture) and travel as binary buffers. ``seq`` counts the frames sent;
the front end draws on every new ``seq`` (even when the bytes equal the last frame's, which
traitlets then does not resend) and acknowledges it with a custom message. ``ready()`` is true
only while fewer than ``max_in_flight`` frames are unacknowledged and some view reports itself
visible; acknowledgements lost for ``ack_timeout`` seconds are written off. Each view also says
it is alive every few seconds. A view that leaves frames unanswered for
``silent_view_timeout`` seconds (its tab was closed without a goodbye) counts as gone until it
speaks again. Every time here comes from ``clock`` (``time.monotonic`` unless a test injects
one). The worker thread is the only writer of ``frame``/``mime``/``seq``; the front end writes
nothing (it sends messages).
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

from ..runner import Frame, encode


def _static(name: str) -> str:
    return resources.files("featviz_widgets.view").joinpath("static").joinpath(name).read_text(encoding="utf-8")


class LiveImage(anywidget.AnyWidget):
    """A canvas showing the latest frame. Traits: ``frame`` (bytes), ``mime``, ``seq``,
    ``width``/``height`` (frame pixels), ``display_size`` (CSS pixels, 0 = natural),
    ``pixelated`` (nearest-neighbour upscaling; smooth otherwise)."""

    _esm = _static("live_image.js")
    _css = _static("live_image.css")

    frame = traitlets.Bytes(b"").tag(sync=True)
    mime = traitlets.Unicode("image/jpeg").tag(sync=True)
    seq = traitlets.Int(0).tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)
    display_size = traitlets.Int(384).tag(sync=True)
    pixelated = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        max_in_flight: int = 2,
        ack_timeout: float = 2.0,
        *,
        silent_view_timeout: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_in_flight = max_in_flight
        self.ack_timeout = ack_timeout
        self.silent_view_timeout = silent_view_timeout
        self.clock = clock
        self.acked = 0
        self.views_seen = False
        self._unanswered_since: float | None = None  # first frame sent since a view last spoke
        self._last_ack_time = clock()
        self._views: dict[str, bool] = {}  # view id -> visible
        self._gone_since: float | None = None  # when the last view closed
        self._created = clock()
        self._click_callbacks: list[Callable[[int, int], None]] = []
        self._state_lock = threading.Lock()
        self.on_msg(self._handle_message)

    # --- messages from the browser (kernel main thread) ---------------------------------------
    def _handle_message(self, _widget: object, content: dict[str, Any], _buffers: list[bytes]) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "click":  # outside the lock: callbacks may read this widget's state
            self._unanswered_since = None
            x, y = int(content.get("x", -1)), int(content.get("y", -1))
            for callback in list(self._click_callbacks):
                callback(x, y)
            return
        with self._state_lock:
            self._unanswered_since = None  # a view is alive
            view = str(content.get("view"))
            if kind == "ack":
                self.acked = min(max(self.acked, int(content.get("seq", 0))), self.seq)
                self._last_ack_time = self.clock()
            elif kind in ("visibility", "alive"):
                self._views[view] = bool(content.get("visible"))
                self.views_seen = True
                self._gone_since = None
            elif kind == "closed":
                self._views.pop(view, None)
                if not self._views:
                    self._gone_since = self.clock()

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
        """Views that are open and not silent (see ``silent_view_timeout``)."""
        with self._state_lock:
            return 0 if self._silent(self.clock()) else len(self._views)

    def _silent(self, now: float) -> bool:
        since = self._unanswered_since
        return since is not None and now - since > self.silent_view_timeout

    def abandoned(self, grace: float = 5.0, never_shown_grace: float = 120.0) -> bool:
        """True when nobody can see the loop any more: every view that showed this widget has
        been gone for ``grace`` seconds (its cell was re-run or cleared), the views have left
        frames unanswered for ``silent_view_timeout`` seconds (the tab was closed without a
        goodbye), or no view at all has appeared within ``never_shown_grace`` seconds of its
        creation (a server-side run that no browser ever opened). A view that speaks again
        (an acknowledgement, its periodic "alive", a scroll) undoes it."""
        now = self.clock()
        with self._state_lock:
            if self._views:
                return self._silent(now)
            if not self.views_seen:
                return now - self._created > never_shown_grace
            since = self._gone_since
            return since is not None and now - since > grace

    def revive(self) -> None:
        """The user asked the loop to run again: forget the silence and give the views a fresh
        grace period (a view that is really gone is found gone again after it)."""
        now = self.clock()
        with self._state_lock:
            self._unanswered_since = None
            self._last_ack_time = now
            self._created = now
            if self._gone_since is not None:
                self._gone_since = now

    @property
    def in_flight(self) -> int:
        return self.seq - self.acked

    def ready(self) -> bool:
        """True when a frame may be sent: some view visible and fewer than max_in_flight unacked."""
        if not self.visible:
            return False
        if self.in_flight < self.max_in_flight:
            return True
        if self.clock() - self._last_ack_time > self.ack_timeout:
            self.acked = self.seq  # acks lost (view closed mid-frame): start counting afresh
            return True
        return False

    # --- frames from the worker thread ---------------------------------------------------------
    def show(self, frame: Frame) -> None:
        now = self.clock()
        if self._unanswered_since is None:
            self._unanswered_since = now
        if self.in_flight == 0:
            self._last_ack_time = now  # measure the ack timeout from the first unacked frame
        with self.hold_sync():
            self.mime = frame.mime
            self.width = frame.width
            self.height = frame.height
            self.frame = frame.data  # equal bytes are not resent; the new seq still is, and is drawn
            self.seq = self.seq + 1

    def copy(self, text: str) -> None:
        """Ask the browser to put ``text`` on the clipboard (navigator.clipboard)."""
        self.send({"type": "copy", "text": text})

    def download(self, png: bytes, filename: str) -> None:
        """Ask every view to save ``png`` as a file in the browser's downloads."""
        self.send({"type": "download", "filename": filename}, [png])
