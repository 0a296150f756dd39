"""The Explore, Photo and Export tabs of the Dreamer, driven without a browser."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.export import read_settings
from featviz_widgets.view import Dreamer

from .conftest import browser_says, wait

pytestmark = pytest.mark.usefixtures("comms")


def test_gallery_click_opens_that_channel(dreamer: Dreamer) -> None:
    dreamer.explore.render_gallery()
    dreamer.job.wait()
    ex = dreamer.explore
    assert ex.gallery_channels == list(range(6)) and ex.gallery.seq == 1
    # 6 tiles of 64 px in a 3-column grid with 2 px gaps: tile 4 is row 1, column 1.
    browser_says(ex.gallery, {"type": "click", "x": 66 + 30, "y": 66 + 10})
    assert dreamer.controls.unit.value == 4 and dreamer.controls.mode.value == "channel"
    assert wait(lambda: dreamer.runner.target.unit == 4 and dreamer.runner.target.layer == "conv2")
    browser_says(ex.gallery, {"type": "click", "x": 65, "y": 10})  # the gap: nothing happens
    assert dreamer.controls.unit.value == 4


def test_gallery_pauses_live_loop_and_resumes(dreamer: Dreamer) -> None:
    assert dreamer.wait_for_steps(2)
    dreamer.explore.render_gallery()
    assert dreamer.runner.paused
    dreamer.job.wait()
    assert wait(lambda: not dreamer.runner.paused)


def test_compare_and_interpolate_show_sheets(dreamer: Dreamer) -> None:
    dreamer.explore.compare()
    dreamer.job.wait()
    assert len(dreamer.explore.output.children[0].children) == 3
    assert dreamer.explore.last_sheet.labels[0] == "conv2 channel 0"
    dreamer.explore.compare(new=True)  # new random directions
    dreamer.job.wait()
    assert dreamer.explore.last_sheet.labels[1] == "random direction #2"
    dreamer.controls.unit_b.value = 3
    dreamer.explore.interpolate()
    dreamer.job.wait()
    assert len(dreamer.explore.last_sheet.images) == 5


def test_exemplars_panel_reports_ratio(dreamer: Dreamer) -> None:
    assert dreamer.wait_for_steps(2)
    dreamer.explore.find_exemplars()
    dreamer.job.wait()
    assert "ratio" in dreamer.explore.exemplars.children[0].value


def test_upload_rejects_non_image_and_keeps_photo(dreamer: Dreamer) -> None:
    panel = dreamer.photo
    panel.sample.value = "coffee"
    assert panel.photo is not None
    before = panel.photo
    panel.accept_upload(b"%PDF-1.4 not an image", "paper.pdf")
    assert "not an image" in panel.message.value and panel.photo is before


def test_photo_dream_and_live_start(dreamer: Dreamer) -> None:
    panel = dreamer.photo
    panel.dream()  # no photo yet: a message, no job
    assert "Upload a photo" in panel.message.value and not dreamer.job.busy
    panel.sample.value = "chelsea"
    panel.octaves.value = 1
    panel.dream()
    dreamer.job.wait()
    assert panel.dreamed.size == panel.photo.size
    panel.live()
    assert wait(lambda: dreamer.runner.renderer is not None and dreamer.runner.settings.size == (21, 32))


def test_exported_code_reproduces_the_image(tmp_path: Path) -> None:
    d = Dreamer(size=32, fps=30)  # the embedded model: the code names it
    try:
        assert d.wait_for_steps(6, timeout=60)
        d.controls.run.value = False
        assert wait(lambda: d.runner.status["state"] == "paused")
        time.sleep(0.2)
        code = d.code()
        assert "Settings changed" not in code and "Channel('blocks.8', 0)" in code and "threads=" in code
        namespace: dict[str, object] = {}
        exec(code.replace("result.image", "image = result.image"), namespace)
        assert np.array_equal(np.asarray(namespace["image"]), np.asarray(d.image()))
        d.controls.lr.value = 0.1
        assert wait(lambda: d.runner.changed_since_reset)
        assert "Settings changed" in d.code()
    finally:
        d.close()


def test_save_then_load_settings_into_another_widget(dreamer: Dreamer, tiny: FeatvizModel, tmp_path: Path) -> None:
    c = dreamer.controls
    c.unit.value = 5
    c.lr.value = 0.2
    c.tv.value = 0.5
    c.views.value = 3
    assert wait(
        lambda: (
            dreamer.runner.renderer is not None
            and dreamer.runner.renderer.settings.tv == 500.0
            and dreamer.runner.renderer.settings.views == 3
        )
    )
    path = dreamer.save(tmp_path / "x.png")
    assert read_settings(path)["target"]["unit"] == 5
    other = Dreamer(tiny, layer="conv1", size=32)
    try:
        other.load(path)
        assert other.controls.layer.value == "conv2" and other.controls.unit.value == 5
        assert other.controls.lr.value == pytest.approx(0.2) and other.controls.tv.value == pytest.approx(0.5)
        assert other.controls.views.value == 3
        assert wait(lambda: other.runner.target.unit == 5)
    finally:
        other.close()


def test_views_slider_applies_live_without_a_restart(dreamer: Dreamer) -> None:
    assert dreamer.wait_for_steps(3)
    before = dreamer.runner.renderer.step_count
    dreamer.controls.views.value = 2
    assert wait(lambda: dreamer.runner.renderer.settings.views == 2)
    assert dreamer.runner.renderer.step_count >= before  # the image and step count carried on
    assert dreamer.wait_for_steps(before + 3)


def test_timelapse_gif(dreamer: Dreamer, tmp_path: Path) -> None:
    assert dreamer.wait_for_steps(12)
    data = dreamer.timelapse_gif(tmp_path / "t.gif")
    assert data[:6] == b"GIF89a" and (tmp_path / "t.gif").read_bytes() == data


def test_mix_mode_and_batch_with_diversity(dreamer: Dreamer) -> None:
    c = dreamer.controls
    c.mode.value = "mix"
    c.unit_b.value = 2
    c.alpha.value = 0.25
    assert wait(lambda: dreamer.runner.target.mode == "mix" and dreamer.runner.target.alpha == 0.25)
    c.batch.value = 4
    c.diversity.value = 0.5
    assert wait(lambda: dreamer.runner.renderer.settings.batch == 4 and dreamer.runner.target.diversity == 25.0)
    assert wait(lambda: dreamer.runner.image() is not None and dreamer.runner.image().shape[0] == 4)
    assert dreamer.image().size == (32 * 2 + 2, 32 * 2 + 2)  # a 2x2 grid


def test_loading_a_file_without_settings_is_a_message(dreamer: Dreamer, tmp_path: Path) -> None:
    from PIL import Image

    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    dreamer._guard(dreamer.load, plain)
    assert "no featviz settings" in dreamer.status.value
    dreamer._guard(dreamer.load, b"not a png at all")
    assert "⚠" in dreamer.status.value and dreamer.last_error is not None


def test_copy_as_code_failure_is_a_status_message(dreamer: Dreamer, monkeypatch: pytest.MonkeyPatch) -> None:
    from featviz_widgets.errors import FeatvizError

    def no_image() -> str:
        raise FeatvizError("No image yet: the optimization has not made a step.")

    monkeypatch.setattr(dreamer, "code", no_image)
    dreamer.export.code_button.click()  # a button callback must not raise into the notebook
    assert "No image yet" in dreamer.status.value
