"""Small widget helpers shared by the panels: images, download links, uploads, messages."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
from PIL import Image

from ..markup import data_link, escape
from ..runner import encode

__all__ = [
    "data_link",
    "error_html",
    "note_html",
    "png_widget",
    "progress_bar",
    "section",
    "tiles_box",
    "uploaded_file",
]

GALLERY_WIDTH = 540  # galleries get as many columns as fit, shown 1:1 (a shrunk caption is illegible):
# the panel beside the image is about 560 px wide at 1400 px with the file browser open


def png_widget(image: Image.Image, width: int | None = None) -> W.Image:
    layout = W.Layout(width=f"{width}px") if width else W.Layout()
    return W.Image(value=encode(np.asarray(image.convert("RGB")), "png"), format="png", layout=layout)


def uploaded_file(change: dict[str, Any]) -> tuple[str, bytes] | None:
    """(name, bytes) of the file a FileUpload's value change carries (ipywidgets 7 or 8)."""
    files = change["new"]
    if not files:
        return None
    item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
    get = item.get if isinstance(item, dict) else lambda key, default: getattr(item, key, default)
    return str(get("name", "upload")), bytes(get("content", b""))


def error_html(message: str) -> str:
    return f'<span class="featviz-error" style="color:#c62828">⚠ {escape(message)}</span>'


def note_html(message: str) -> str:
    return f'<span class="featviz-note">{escape(message)}</span>'


def section(title: str, text: str) -> W.HTML:
    return W.HTML(f"<b>{escape(title)}</b> {escape(text)}", layout=W.Layout(margin="10px 0 2px 0"))


def progress_bar() -> W.IntProgress:
    return W.IntProgress(0, min=0, max=1, layout=W.Layout(width="340px", display="none"))


def tiles_box(children: list[W.Widget]) -> W.Box:
    return W.Box(children, layout=W.Layout(display="flex", flex_flow="row wrap", width="100%"))


def close_tree(widget: W.Widget) -> None:
    """Close ``widget`` and every widget under it."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()
