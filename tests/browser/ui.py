"""What a person does on the page, shared by the browser tests: count the frames a canvas drew,
read its pixels, drag a slider with the mouse, find the widget's Run/Pause button."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
from PIL import Image


def frames(page: Any, n: int = 0) -> int:
    """Frames the ``n``-th featviz canvas has drawn (the front end counts them)."""
    return int(page.locator(".featviz-canvas").nth(n).get_attribute("data-frames") or 0)


def canvas_pixels(page: Any) -> np.ndarray:
    png = page.locator(".featviz-canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def drag_slider(page: Any, label: str, fraction: float) -> int:
    """Drag the handle of the integer slider labelled ``label`` to ``fraction`` of its track, as a
    mouse does; returns the value the slider then reads."""
    return int(drag_slider_readout(page, label, fraction))


def drag_slider_readout(page: Any, label: str, fraction: float) -> str:
    """Drag the handle of the slider labelled ``label`` to ``fraction`` of its track, as a mouse
    does; returns the slider's readout text (``"1.00"`` for a float slider)."""
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile(f"^{label}$"))).first
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    track = slider.locator(".noUi-target").first.bounding_box()
    y = handle["y"] + handle["height"] / 2
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * fraction, y, steps=8)
    page.mouse.up()
    return str(slider.locator(".widget-readout").first.inner_text())


def run_button(page: Any, label: str) -> Any:
    """The widget's Run/Pause button showing ``label`` (JupyterLab has Run buttons of its own)."""
    return page.locator("button.widget-button").filter(has_text=re.compile(rf"^\W*{label}\s*$")).first
