"""A person's session, in a real browser: run the quickstart, drag the channel slider with the
mouse, watch the picture change and frames keep coming, pause, and check the status line."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ..conftest import wait
from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _frames(page: Any) -> int:
    return int(page.locator(".featviz-canvas").first.get_attribute("data-frames") or 0)


def _canvas_pixels(page: Any) -> np.ndarray:
    png = page.locator(".featviz-canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def _drag_slider(page: Any, label: str, fraction: float) -> int:
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile(f"^{label}$"))).first
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    track = slider.locator(".noUi-target").first.bounding_box()
    y = handle["y"] + handle["height"] / 2
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * fraction, y, steps=8)
    page.mouse.up()
    return int(slider.locator(".widget-readout").first.inner_text())


def _check_live_session(page: Any, shot: str) -> None:
    status = page.locator(".featviz-status").first
    status.wait_for()
    assert wait(lambda: "running" in status.inner_text() and "steps/s" in status.inner_text(), 120)
    assert wait(lambda: _frames(page) >= 3, 60), "no frames drawn"
    before = _canvas_pixels(page)
    page.screenshot(path=str(ARTIFACTS / f"start_{shot}"))
    channel = _drag_slider(page, "channel", 0.4)
    assert channel > 10
    assert wait(lambda: f"blocks.8 channel {channel} ·" in status.inner_text(), 20), status.inner_text()
    frames = _frames(page)
    assert wait(lambda: _frames(page) >= frames + 5, 30), "frames stopped after the slider moved"
    time.sleep(1.0)
    after = _canvas_pixels(page)
    assert np.abs(after - before).mean() > 5, "the picture did not change with the channel"
    page.locator(".featviz-live").first.locator("xpath=../..").screenshot(path=str(ARTIFACTS / shot))
    # Pause: the status says so and no more frames arrive (bar the one lossless PNG).
    page.get_by_role("button", name="Pause").click()
    assert wait(lambda: "paused" in status.inner_text(), 20)
    time.sleep(0.6)
    paused_at = _frames(page)
    time.sleep(1.5)
    assert _frames(page) == paused_at
    text = status.inner_text()
    assert re.search(r"step \d+ · objective [-\d.e+]+ · [\d.]+ steps/s · cpu · paused", text), text


def test_jupyterlab_session(page: Any, lab_url: str) -> None:
    _open_lab_notebook(page, lab_url)
    _check_live_session(page, "jupyterlab.png")


def test_voila_session(page: Any, voila_url: str) -> None:
    page.goto(voila_url)
    _check_live_session(page, "voila.png")


def _open_lab_notebook(page: Any, lab_url: str) -> Any:
    page.goto(f"{lab_url}/lab/tree/quickstart.ipynb")
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=120_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    status = page.locator(".featviz-status").first
    status.wait_for()
    assert wait(lambda: "running" in status.inner_text(), 120)
    return status


def test_gallery_tile_click_and_photo_upload(page: Any, lab_url: str) -> None:
    status = _open_lab_notebook(page, lab_url)
    layer = page.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile("^layer$"))).locator(
        "select"
    )
    options = layer.locator("option").all_text_contents()
    label = next((t for t in options if re.match(r"blocks\.1\s", t)), None)
    assert label is not None, options
    layer.select_option(label=label)
    assert wait(lambda: "blocks.1 channel" in status.inner_text(), 20), status.inner_text()
    # Explore tab: render the gallery of blocks.1 (24 channels) and click tile 5 (row 1, column 0).
    page.get_by_role("button", name="Explore", exact=True).click()
    page.get_by_role("button", name="Gallery of this layer").click()
    gallery = page.locator(".featviz-canvas").nth(1)
    assert wait(lambda: int(gallery.get_attribute("data-frames") or 0) >= 1, 120), "no gallery drawn"
    box = gallery.bounding_box()
    width = int(gallery.evaluate("c => c.width"))
    scale = box["width"] / width
    page.mouse.click(box["x"] + 32 * scale, box["y"] + (66 + 32) * scale)
    assert wait(lambda: "blocks.1 channel 5 ·" in status.inner_text(), 30), status.inner_text()
    page.locator(".featviz-live").nth(1).screenshot(path=str(ARTIFACTS / "gallery.png"))
    # Photo tab: upload a photo and dream on it.
    page.get_by_role("button", name="Photo", exact=True).click()
    photo = Path(__file__).resolve().parents[2] / "featviz_widgets" / "data" / "chelsea.jpg"
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("Upload photo")).click()
    chooser.value.set_files(str(photo))
    page.get_by_text("chelsea.jpg: 320x213").wait_for(timeout=30_000)
    page.get_by_role("button", name="Dream on photo").click()
    page.get_by_role("link", name=re.compile("dream.png")).wait_for(timeout=180_000)
    page.screenshot(path=str(ARTIFACTS / "photo_dream.png"))
