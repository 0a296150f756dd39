"""The quickstart in every other notebook host README names, in a real browser: Notebook 7 and
Voila served by a Jupyter server (JupyterLab and standalone Voila are in test_live_widget.py).
Each runs the notebook, drags the channel slider with the mouse, and checks that the live
loop follows the slider and the picture changes."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ..conftest import wait
from .conftest import ARTIFACTS
from .ui import canvas_pixels, drag_slider, frames

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _slider_changes_the_picture(page: Any, shot: str) -> None:
    status = page.locator(".featviz-status").first
    status.wait_for(timeout=180_000)
    assert wait(lambda: "running" in status.inner_text() and "steps/s" in status.inner_text(), 120), status.inner_text()
    assert wait(lambda: frames(page) >= 3, 60), "no frames drawn"
    before = canvas_pixels(page)
    channel = drag_slider(page, "channel", 0.4)
    assert channel > 10
    assert wait(lambda: f"blocks.8 channel {channel} ·" in status.inner_text(), 20), status.inner_text()
    drawn = frames(page)
    assert wait(lambda: frames(page) >= drawn + 5, 30), "frames stopped after the slider moved"
    time.sleep(1.0)
    assert np.abs(canvas_pixels(page) - before).mean() > 5, "the picture did not change with the channel"
    page.screenshot(path=str(ARTIFACTS / shot))


def _end_sessions(server: str, folder: str) -> None:
    """Shut down the kernels of the notebooks under ``folder`` (they would idle until the end)."""
    with urllib.request.urlopen(f"{server}/api/sessions", timeout=10) as r:
        sessions = json.load(r)
    for s in sessions:
        if s.get("path", "").startswith(f"{folder}/"):
            request = urllib.request.Request(f"{server}/api/sessions/{s['id']}", method="DELETE")
            with contextlib.suppress(OSError):  # already gone
                urllib.request.urlopen(request, timeout=30).close()


@pytest.fixture
def notebook7(jupyter_server: str, notebook7_url: str) -> Iterator[str]:
    yield notebook7_url
    _end_sessions(jupyter_server, "notebook7")


def test_notebook7_runs_the_quickstart_and_follows_a_slider(page: Any, notebook7: str) -> None:
    page.goto(notebook7)
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=120_000,
    )
    assert "/notebooks/" in page.url  # Notebook 7's own page, not JupyterLab's
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    _slider_changes_the_picture(page, "notebook7.png")


def test_voila_extension_renders_the_quickstart_and_follows_a_slider(page: Any, voila_extension_url: str) -> None:
    page.goto(voila_extension_url)
    _slider_changes_the_picture(page, "voila_extension.png")
