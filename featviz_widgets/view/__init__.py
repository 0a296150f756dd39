"""The view layer: ipywidgets controls and the LiveImage anywidget."""

from .cells import stop_all
from .dreamer import Dreamer
from .live_image import LiveImage

__all__ = ["Dreamer", "LiveImage", "stop_all"]
