"""The live loop's way into the widgets: ``ViewSink`` is the runner's ``FrameSink`` for a Dreamer
(flow control from its ``LiveImage``, frames and snapshots to the Dreamer's ``show``), and
``show_frame`` draws a frame in either image widget; ``check_ipykernel`` warns where the kernel would drop the updates the worker thread sends."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable

import ipywidgets as W

from ..runner import Frame, Snapshot
from .live_image import LiveImage


def check_ipykernel() -> None:
    """ipykernel 7.0.0 and 7.0.1 drop comm messages sent from threads (fixed in 7.1.0)."""
    try:
        import ipykernel
    except ImportError:
        return
    if ipykernel.__version__ in ("7.0.0", "7.0.1"):
        warnings.warn(
            f"ipykernel {ipykernel.__version__} rejects widget updates from background threads, so the live "
            "image would never update. Install ipykernel>=7.1 (or 6.x): pip install -U ipykernel",
            RuntimeWarning,
            stacklevel=3,
        )


def show_frame(image: LiveImage | W.Image, frame: Frame) -> None:
    """Draw ``frame`` in the live image (or, with the Image backend, set its bytes at once)."""
    if isinstance(image, LiveImage):
        image.show(frame)
    else:
        with image.hold_sync():
            image.format = frame.mime.split("/")[1]
            image.value = frame.data


class ViewSink:
    """Connects the worker to a widget: ``show(frame, snapshot)`` (a bound method of the widget)
    draws them; ``image``, when a ``LiveImage``, says whether a frame may go and whether anyone
    still sees it. Both are held weakly: the worker must not keep a closed widget alive."""

    def __init__(self, show: Callable[[Frame | None, Snapshot], None], image: LiveImage | W.Image) -> None:
        self._show = weakref.WeakMethod(show)
        self._image = weakref.ref(image)

    def _live_image(self) -> LiveImage | None:
        image = self._image() if self._show() is not None else None
        return image if isinstance(image, LiveImage) else None

    def ready(self) -> bool:
        if self._show() is None:
            return False
        image = self._live_image()
        return image.ready() if image is not None else True

    def publish(self, frame: Frame | None, snapshot: Snapshot) -> None:
        show = self._show()
        if show is not None:
            show(frame, snapshot)

    def abandoned(self) -> bool:
        if self._show() is None:
            return True
        image = self._live_image()
        return image is not None and image.abandoned()

    def revive(self) -> None:
        image = self._live_image()
        if image is not None:
            image.revive()
