"""The view layer: ipywidgets controls and the LiveImage anywidget."""

from .dreamer import Dreamer, stop_all
from .live_image import LiveImage

__all__ = ["Dreamer", "LiveImage", "stop_all"]
