"""A person's session in JupyterLab, in a real browser: run the quickstart, drag a slider and
watch the picture change, pick a class by name, use every tab (a gallery tile, a photo dream,
Run/Pause after a job, Copy as code run headless for the same pixels), at a 1400 px screen."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ..conftest import wait
from .conftest import ARTIFACTS
from .ui import canvas_pixels, drag_slider, frames, run_button

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def check_live_session(page: Any, shot: str) -> None:
    """The quickstart's widget is running: drag the channel slider, the picture changes, pause."""
    status = page.locator(".featviz-status").first
    status.wait_for()
    assert wait(lambda: "running" in status.inner_text() and "steps/s" in status.inner_text(), 120)
    assert wait(lambda: frames(page) >= 3, 60), "no frames drawn"
    before = canvas_pixels(page)
    page.screenshot(path=str(ARTIFACTS / f"start_{shot}"))
    channel = drag_slider(page, "channel", 0.4)
    assert channel > 10
    assert wait(lambda: f"blocks.8 channel {channel} ·" in status.inner_text(), 20), status.inner_text()
    drawn = frames(page)
    assert wait(lambda: frames(page) >= drawn + 5, 30), "frames stopped after the slider moved"
    time.sleep(1.0)
    after = canvas_pixels(page)
    assert np.abs(after - before).mean() > 5, "the picture did not change with the channel"
    page.locator(".featviz-live").first.locator("xpath=../..").screenshot(path=str(ARTIFACTS / shot))
    # Pause: the button and the status say so and no more frames arrive (bar the one lossless PNG).
    run_button(page, "Pause").click()
    assert wait(lambda: "paused" in status.inner_text(), 20)
    run_button(page, "Run").wait_for(timeout=10_000)
    time.sleep(0.6)
    paused_at = frames(page)
    time.sleep(1.5)
    assert frames(page) == paused_at
    text = status.inner_text()
    assert re.search(r"step \d+ · objective [-\d.e+]+ · [\d.]+ steps/s · cpu · paused", text), text


def open_lab_notebook(page: Any, lab_url: str) -> Any:
    # ?reset: this notebook alone, not the tabs that earlier tests left in the shared workspace
    page.goto(f"{lab_url}/lab/tree/quickstart.ipynb?reset")
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=120_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    status = page.locator(".featviz-status").first
    status.wait_for()
    assert wait(lambda: "running" in status.inner_text(), 120)
    return status


def test_jupyterlab_session(page: Any, lab_url: str) -> None:
    open_lab_notebook(page, lab_url)
    check_live_session(page, "jupyterlab.png")


def test_layout_labels_every_mode_and_class_by_name(page: Any, lab_url: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    status = open_lab_notebook(page, lab_url)
    canvas = page.locator(".featviz-canvas").first.bounding_box()
    picker = page.get_by_role("button", name="Explore", exact=True).bounding_box()
    assert picker["x"] > canvas["x"] + canvas["width"], "the panels wrapped below the image"
    assert picker["y"] < canvas["y"] + canvas["height"]
    # No label or button text is cut off, on any page.
    for name in ("Controls", "Explore", "Photo", "Export"):
        page.get_by_role("button", name=name, exact=True).click()
        cut = page.evaluate(
            """() => [...document.querySelectorAll('.widget-label, .widget-button, .widget-checkbox label')]
                 .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
                 .map(e => e.textContent)"""
        )
        assert cut == [], f"cut on {name}: {cut}"
    page.get_by_role("button", name="Controls", exact=True).click()
    page.screenshot(path=str(ARTIFACTS / "layout_1400.png"))
    # Every mode: its own controls on screen, and the status names what is being optimized.
    objective = page.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile("^objective$")))
    modes = [
        ("Neuron (centre)", "blocks.8 neuron 0", "channel"),
        ("DeepDream (whole layer)", "blocks.8 DeepDream", "layer"),
        ("Random direction", "blocks.8 direction #0", "direction seed"),
        ("Mix two channels (alpha)", "blocks.8 mix 0/1 alpha 0.5", "channel B"),
    ]
    for label, described, control in modes:
        objective.locator("select").select_option(label=label)
        assert wait(lambda described=described: described in status.inner_text(), 30), status.inner_text()
        assert page.locator(".widget-label", has_text=re.compile(f"^{control}$")).first.is_visible()
        drawn = frames(page)
        assert wait(lambda drawn=drawn: frames(page) > drawn + 2, 30), f"no frames in {label}"
    page.screenshot(path=str(ARTIFACTS / "mix_mode.png"))
    # A class chosen by typing its name.
    objective.locator("select").select_option(label="Class logit")
    box = page.locator(".widget-text input[list]").first
    box.fill("285 Egyptian cat")
    box.press("Enter")
    assert wait(lambda: "class 285 (Egyptian cat)" in status.inner_text(), 30), status.inner_text()


def test_every_tab_in_jupyterlab(page: Any, lab_url: str, notebook_dir: Path) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab_url)
    status = open_lab_notebook(page, lab_url)
    layer = page.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile("^layer$"))).locator(
        "select"
    )
    options = layer.locator("option").all_text_contents()
    label = next((t for t in options if re.match(r"blocks\.1\s", t)), None)
    assert label is not None, options
    layer.select_option(label=label)
    assert wait(lambda: "blocks.1 channel" in status.inner_text(), 20), status.inner_text()
    # Explore: the gallery of blocks.1 (24 channels, labelled), then a click on tile 5 (row 1, column 0).
    page.get_by_role("button", name="Explore", exact=True).click()
    page.get_by_role("button", name="Gallery of this layer").click()
    assert wait(lambda: "busy" in status.inner_text(), 30), status.inner_text()
    gallery = page.locator(".featviz-canvas").nth(1)
    assert wait(lambda: int(gallery.get_attribute("data-frames") or 0) >= 1, 180), "no gallery drawn"
    # After the job the loop runs again and the button says Pause; one click pauses.
    assert wait(lambda: "running" in status.inner_text(), 30), status.inner_text()
    run_button(page, "Pause").click()
    assert wait(lambda: "paused" in status.inner_text(), 20), status.inner_text()
    run_button(page, "Run").click()
    assert wait(lambda: "running" in status.inner_text(), 20), status.inner_text()
    gallery.evaluate("c => c.scrollIntoView({block: 'center'})")  # the whole tile in the window, as a person would
    box = gallery.bounding_box()
    scale = box["width"] / int(gallery.evaluate("c => c.width"))
    page.mouse.click(box["x"] + 32 * scale, box["y"] + (82 + 32) * scale)
    assert wait(lambda: "blocks.1 channel 5 ·" in status.inner_text(), 30), status.inner_text()
    gallery.screenshot(path=str(ARTIFACTS / "gallery.png"))
    # Photo: upload a photo and dream on it; the result appears in the tab.
    page.get_by_role("button", name="Photo", exact=True).click()
    photo = Path(__file__).resolve().parents[2] / "featviz_widgets" / "data" / "chelsea.jpg"
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("Upload photo")).click()
    chooser.value.set_files(str(photo))
    page.get_by_text("chelsea.jpg: 320x213").wait_for(timeout=30_000)
    page.get_by_role("button", name="Dream on photo").click()
    page.get_by_role("link", name=re.compile("dream.png")).wait_for(timeout=240_000)
    page.screenshot(path=str(ARTIFACTS / "photo_dream.png"))
    # Export: pause, save the picture, copy as code; the copied code run headless gives its pixels.
    run_button(page, "Pause").click()
    assert wait(lambda: "paused" in status.inner_text(), 20)
    page.get_by_role("button", name="Export", exact=True).click()
    name = page.get_by_placeholder(re.compile("file.png"))
    name.fill("saved.png")
    name.press("Enter")
    page.get_by_role("button", name="Save PNG to file").click()
    page.get_by_text(re.compile("Saved .*saved.png")).wait_for(timeout=30_000)
    page.get_by_role("button", name="Copy as code").click()
    page.get_by_text("Copied to the clipboard").wait_for(timeout=30_000)
    code = page.evaluate("() => navigator.clipboard.readText()")
    assert "Renderer(model, Channel('blocks.1', 5)" in code and "init_image=layer_gallery(model, 'blocks.1'" in code, (
        code
    )
    page.screenshot(path=str(ARTIFACTS / "export.png"))
    lines = code.splitlines()
    script = "\n".join([*lines[:-1], f"({lines[-1]}).save('replayed.png')"])
    out = subprocess.run([sys.executable, "-c", script], cwd=notebook_dir, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    saved = np.asarray(Image.open(notebook_dir / "saved.png").convert("RGB"))
    replayed = np.asarray(Image.open(notebook_dir / "replayed.png").convert("RGB"))
    assert np.array_equal(saved, replayed)
