"""Copy as code: the code the widget gives, run headless, makes the same pixels as the live image
— fresh, after settings and targets changed during the run, and after a photo start."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets as W
import numpy as np
import pytest

from featviz_widgets.view import Dreamer

from .conftest import FakeView, browser_says, shown, user_clicks, user_sets, wait

pytestmark = [pytest.mark.usefixtures("comms"), pytest.mark.slow]


@pytest.fixture
def live() -> Iterator[tuple[Dreamer, FakeView]]:
    d = Dreamer(size=32, fps=30)  # the embedded model: the code loads it by name
    view = FakeView(d.image_widget)
    yield d, view
    view.close()
    d.close()


def run_copied_code(d: Dreamer) -> tuple[str, np.ndarray]:
    """Pause, click Copy as code in the Export tab, run what it copied, return (code, pixels)."""
    run = shown(d, W.Button, description="Pause")
    user_clicks(run)
    assert wait(lambda: d.runner.snapshot().state == "paused")
    user_sets(d.page_picker, "Export")
    user_clicks(shown(d.pages["Export"], W.Button, description="Copy as code"))
    code = d.export.code.value
    sent = [data for t, data, _ in d.image_widget.comm.sent if t == "comm_msg" and data.get("method") == "custom"]
    assert sent[-1]["content"] == {"type": "copy", "text": code}  # to the clipboard, via the browser
    namespace: dict[str, Any] = {}
    lines = code.splitlines()
    exec("\n".join([*lines[:-1], f"image = {lines[-1]}"]), namespace)
    user_sets(d.page_picker, "Controls")
    return code, np.asarray(namespace["image"])


def test_fresh_widget_code_is_a_plain_render_call(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    assert d.wait_for_steps(8, timeout=60)
    code, pixels = run_copied_code(d)
    assert code.count("\n") == 3 and "render(load_model('efficientnet_lite0'), Channel('blocks.8', 0)" in code
    assert "lr=0.05," in code or "lr=0.05)" in code  # the value the widget was given, not a slider's rounding
    assert "threads=" in code
    assert np.array_equal(pixels, np.asarray(d.image()))


def test_code_replays_changes_made_during_the_run(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    assert d.wait_for_steps(5, timeout=60)
    user_sets(shown(d, W.FloatSlider, description="total variation"), 0.05)
    assert d.wait_for_steps(9)
    user_sets(shown(d, W.IntSlider, description="channel"), 7)
    assert wait(lambda: d.runner.snapshot().target.unit == 7)
    user_sets(shown(d, W.Dropdown, description="image size"), 64)  # a rebuild that carries the picture
    step = d.runner.snapshot().step
    assert d.wait_for_steps(step + 4)
    code, pixels = run_copied_code(d)
    assert "renderer.apply(" in code and "renderer.set_objective(Channel('blocks.8', 7)" in code
    assert np.array_equal(pixels, np.asarray(d.image()))


def test_code_after_a_photo_start(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    user_sets(d.page_picker, "Photo")
    user_sets(shown(d.pages["Photo"], W.Dropdown, description="sample"), "chelsea")
    user_clicks(shown(d.pages["Photo"], W.Button, description="Live from photo"))
    assert wait(lambda: d.runner.snapshot().settings.size == (21, 32) and d.runner.snapshot().step >= 6, 60)
    user_sets(d.page_picker, "Controls")
    code, pixels = run_copied_code(d)
    assert "init_image=sample_photo('chelsea')" in code
    assert np.array_equal(pixels, np.asarray(d.image()))


def test_code_after_opening_a_gallery_tile(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    user_sets(shown(d, W.Dropdown, description="layer"), "blocks.0")
    user_sets(d.page_picker, "Explore")
    user_clicks(shown(d.pages["Explore"], W.Button, description="Gallery of this layer"))
    d.job.wait(300)
    browser_says(d.explore.gallery, {"type": "click", "x": 66 + 10, "y": 10})  # tile 1
    assert wait(lambda: d.runner.snapshot().target.unit == 1 and d.runner.snapshot().step >= 5, 60)
    user_sets(d.page_picker, "Controls")
    code, pixels = run_copied_code(d)
    assert "init_image=layer_gallery(model, 'blocks.0', steps=48, size=64, seed=0).images[1]" in code
    assert np.array_equal(pixels, np.asarray(d.image()))
