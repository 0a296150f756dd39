"""The parameterization control in JupyterLab, in Chromium (#21): switch the parameterization of a
running image and compare the frames on screen before and after; the transparency overlay."""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pytest

from ..conftest import wait
from .conftest import ARTIFACTS
from .test_live_widget import open_lab_notebook
from .ui import canvas_pixels, drag_slider_readout, frames, run_button

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _select(page: Any, label: str) -> Any:
    return page.locator(".widget-dropdown", has=page.locator("label", has_text=re.compile(f"^{label}$"))).locator(
        "select"
    )


def test_switching_parameterization_keeps_the_picture_in_jupyterlab(page: Any, lab_url: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    status = open_lab_notebook(page, lab_url)
    assert wait(lambda: frames(page) >= 8, 120), "no frames drawn"
    step = int(re.search(r"step (\d+)", status.inner_text()).group(1))  # type: ignore[union-attr]
    assert wait(lambda: int(re.search(r"step (\d+)", status.inner_text()).group(1)) >= step + 10, 120)  # type: ignore[union-attr]
    run_button(page, "Pause").click()
    assert wait(lambda: "paused" in status.inner_text(), 20)
    time.sleep(1.0)  # the lossless frame of the paused picture
    param = _select(page, "parametrization")
    assert [t.replace("\xa0", " ") for t in param.locator("option").all_text_contents()] == [
        "pixels",
        "Fourier 1/f",
        "Fourier 1/f + decorrelated colour",
        "MaCo (phase only)",
    ]
    assert page.locator(".widget-label", has_text=re.compile("^1/f decay$")).first.is_visible()
    # The decay slider starts at the default spectrum, 1/f^1.5; dragged to Lucid's 1/f, the paused
    # picture is carried over into the new basis (exactly: at most a redraw, no jump).
    decay = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile("^1/f decay$")))
    assert decay.first.locator(".widget-readout").first.inner_text() == "1.50"
    before, drawn = canvas_pixels(page), frames(page)
    assert float(drag_slider_readout(page, "1/f decay", 0.5)) == pytest.approx(1.0, abs=0.15)
    wait(lambda: frames(page) > drawn, 5)
    time.sleep(0.5)
    assert float(np.abs(canvas_pixels(page) - before).mean()) < 3
    assert "paused" in status.inner_text()
    page.locator(".featviz-live").first.locator("xpath=../..").screenshot(path=str(ARTIFACTS / "param_before.png"))
    cut = page.evaluate(
        """() => [...document.querySelectorAll('.widget-label, .widget-checkbox label, select')]
             .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
             .map(e => e.textContent)"""
    )
    assert not [c for c in cut if "param" in c or "MaCo" in c or "align" in c or "transparency" in c], cut
    gaps = {}
    options = {"MaCo (phase only)": 3, "pixels": 0, "Fourier 1/f + decorrelated colour": 2}
    for label, index in options.items():
        before, drawn = canvas_pixels(page), frames(page)
        param.select_option(index=index)
        # A frame follows unless the picture is bitwise the same (an exact switch: nothing to draw).
        wait(lambda drawn=drawn: frames(page) > drawn, 5)
        time.sleep(0.5)
        after = canvas_pixels(page)
        gaps[label] = float(np.abs(after - before).mean())
        shot = "param_maco.png" if label.startswith("MaCo") else f"param_{label.split()[0].lower()}.png"
        page.locator(".featviz-live").first.locator("xpath=../..").screenshot(path=str(ARTIFACTS / shot))
        assert "paused" in status.inner_text()  # the switch neither restarted nor ran the loop
    # MaCo swaps in the natural magnitude (a visible but small change); the others are exact.
    assert gaps["MaCo (phase only)"] < 25, gaps
    assert gaps["pixels"] < 3 and gaps["Fourier 1/f + decorrelated colour"] < 3, gaps
    assert not page.locator(".widget-label", has_text=re.compile("^1/f decay$")).first.is_hidden()
    # Run again: frames keep coming in the new parameterization.
    run_button(page, "Run").click()
    drawn = frames(page)
    assert wait(lambda: frames(page) >= drawn + 5, 60), "frames stopped after the switch"
    # The transparency overlay: the frame fades to white where the gradient was small.
    run_button(page, "Pause").click()
    assert wait(lambda: "paused" in status.inner_text(), 20)
    time.sleep(1.0)
    plain, drawn = canvas_pixels(page), frames(page)
    page.locator(".widget-checkbox", has_text="show transparency").locator("input").check()
    assert wait(lambda: frames(page) > drawn, 30)
    time.sleep(0.5)
    assert canvas_pixels(page).mean() > plain.mean() + 3
    page.locator(".featviz-live").first.locator("xpath=../..").screenshot(
        path=str(ARTIFACTS / "param_transparency.png")
    )
