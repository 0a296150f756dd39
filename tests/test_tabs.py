"""The Explore, Photo and Export tabs as a person uses them: pages picked and buttons clicked in
the displayed widget tree, results checked where they appear (next to their button)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from featviz_widgets.engine.image import grid_index
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.errors import FeatvizError
from featviz_widgets.export import SETTINGS_KEY, read_settings
from featviz_widgets.runner import labelled_grid
from featviz_widgets.view import Dreamer, LiveImage
from featviz_widgets.view.parts import GALLERY_WIDTH

from .conftest import FakeView, browser_says, displayed, shown, user_clicks, user_sets, user_uploads, wait

pytestmark = pytest.mark.usefixtures("comms")


@pytest.fixture
def live(tiny: FeatvizModel) -> Iterator[tuple[Dreamer, FakeView]]:
    d = Dreamer(tiny, layer="conv2", size=32, fps=30)
    view = FakeView(d.image_widget)
    yield d, view
    view.close()
    d.close()


def pause(d: Dreamer) -> None:
    """Press the Run/Pause button until the loop is paused (a settled loop's button says Run:
    the first press runs it, the second pauses)."""
    user_clicks(d.controls.run)
    if not d.runner.paused:
        assert wait(lambda: d.runner.snapshot().state != "settled")
        user_clicks(d.controls.run)
    assert d.runner.paused


def page(d: Dreamer, name: str) -> Any:
    user_sets(d.page_picker, name)
    return d.pages[name]


def decode(frame: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"), dtype=np.float32)


# --- Explore -------------------------------------------------------------------------------------


def test_gallery_tiles_are_labelled_and_a_click_opens_the_tiles_picture(live: tuple[Dreamer, FakeView]) -> None:
    d, view = live
    explore = page(d, "Explore")
    user_clicks(shown(explore, W.Button, description="Gallery of this layer"))
    d.job.wait()
    gallery = next(w for w in displayed(explore) if isinstance(w, LiveImage))
    # 6 tiles of 64 px with a 16 px caption each, 3 columns, 2 px gaps.
    assert (gallery.width, gallery.height) == (3 * 64 + 4, 2 * 80 + 2)
    assert gallery.display_size == gallery.width and not gallery.pixelated  # shown 1:1, smooth if squeezed
    sheet = decode(gallery.frame)
    assert sheet[64:80, :64].std() > 10  # a caption ("ch 0") under the first tile, not blank
    # Tile 4 is row 1, column 1; the live image then starts from that tile's own picture.
    pause(d)  # so the restart's step 0 stays on screen to be read
    browser_says(gallery, {"type": "click", "x": 66 + 30, "y": 82 + 10})
    assert wait(lambda: "conv2 channel 4 · step 0 ·" in d.status.value), d.status.value
    tile = np.asarray(Image.fromarray(sheet[82 : 82 + 64, 66 : 66 + 64].astype(np.uint8)).resize((32, 32)), np.float32)
    assert wait(lambda: view.image.mime == "image/png" and np.abs(view.picture() - tile).mean() < 25)  # the tile
    assert shown(page(d, "Controls"), W.IntSlider, description="channel").value == 4  # the controls follow
    browser_says(gallery, {"type": "click", "x": 65, "y": 10})  # the gap: nothing happens
    assert d.runner.target.unit == 4


def test_a_wide_layers_gallery_fits_its_width_and_is_never_shrunk() -> None:
    """Issue #23.3: 112 tiles of 64 px made an 11-column sheet of 724 px, shown at 640 px with
    pixel scaling ("ch 15" read "ch 1б"). Now as many columns as fit the panel, shown 1:1."""
    images = np.zeros((112, 64, 64, 3), np.uint8)
    grid, cell, cols = labelled_grid(images, [f"ch {i}" for i in range(112)], max_width=GALLERY_WIDTH)
    assert cols == 8 and grid.shape[1] == 8 * 64 + 7 * 2 <= GALLERY_WIDTH and cell == 80
    assert grid.shape[0] == 14 * 80 + 13 * 2  # 112 tiles in 14 rows
    # A click maps to the tile under it in that layout (tile 15: row 1, column 7).
    assert grid_index(7 * 66 + 30, 82 + 30, 112, cell, 64, cols=cols) == 15
    caption = grid[82 + 64 : 82 + 80, 7 * 66 : 7 * 66 + 64]
    assert caption.min() < 100  # the caption is drawn at its own pixels under the tile


def test_compare_and_interpolate_results_sit_under_their_buttons(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    explore = page(d, "Explore")
    user_clicks(shown(explore, W.Button, description="Neuron vs random directions"))
    d.job.wait()
    texts = [w.value for w in displayed(d.explore.compare_result) if isinstance(w, W.HTML)]
    assert len(texts) == 3 and "conv2 channel 0" in texts[0] and "random direction #0" in texts[1]
    user_clicks(shown(explore, W.Button, description="New random directions"))
    d.job.wait()
    texts = [w.value for w in displayed(d.explore.compare_result) if isinstance(w, W.HTML)]
    assert "random direction #2" in texts[1]
    user_sets(d.page_picker, "Controls")
    user_sets(shown(d, W.Dropdown, description="objective"), "mix")
    user_sets(shown(d, W.IntSlider, description="channel B"), 3)
    explore = page(d, "Explore")
    user_clicks(shown(explore, W.Button, description="Interpolate channel A → B"))
    d.job.wait()
    labels = [w.value for w in displayed(d.explore.interp_result) if isinstance(w, W.HTML)]
    assert len(labels) == 5 and "ch 0 → 3, α 0.00" in labels[0] and "ch 0 → 3, α 1.00" in labels[-1]
    # In Channel mode the Controls tab hides channel B; Explore shows the one it interpolates to.
    user_sets(d.page_picker, "Controls")
    user_sets(shown(d, W.Dropdown, description="objective"), "channel")
    assert not [w for w in displayed(d) if getattr(w, "description", "") == "channel B"]
    explore = page(d, "Explore")
    b = shown(explore, W.IntSlider, description="channel B")
    assert b.value == 3 and b.max == 5  # the value Mix mode left, in the layer's range, in view
    user_sets(b, 4)
    user_clicks(shown(explore, W.Button, description="Interpolate channel A → B"))
    d.job.wait()
    labels = [w.value for w in displayed(d.explore.interp_result) if isinstance(w, W.HTML)]
    assert "ch 0 → 4, α 0.00" in labels[0]


def test_exemplars_report_a_ratio(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    assert d.wait_for_steps(2)
    explore = page(d, "Explore")
    user_clicks(shown(explore, W.Button, description="Natural exemplars"))
    d.job.wait()
    assert "ratio" in d.explore.exemplars.children[0].value


def test_a_job_error_shows_in_its_own_tab(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    explore = page(d, "Explore")
    user_sets(shown(explore, W.Text, description="image folder"), "/no/such/folder")
    user_clicks(shown(explore, W.Button, description="Natural exemplars"))
    d.job.wait()
    assert "not a folder" in d.explore.message.value and "⚠" in d.explore.message.value
    assert wait(lambda: d.runner.snapshot().state == "running")  # the loop carried on after the job


# --- Photo ---------------------------------------------------------------------------------------


def test_upload_rejects_non_image_and_keeps_photo(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    photo = page(d, "Photo")
    user_sets(shown(photo, W.Dropdown, description="sample"), "coffee")
    before = d.photo.photo
    assert before is not None
    d.photo.accept_upload(b"%PDF-1.4 not an image", "paper.pdf")  # what the upload observer calls
    assert "not an image" in d.photo.message.value and d.photo.photo is before


def test_dream_on_photo_and_live_from_photo(live: tuple[Dreamer, FakeView]) -> None:
    d, view = live
    photo = page(d, "Photo")
    user_clicks(shown(photo, W.Button, description="Dream on photo"))  # no photo yet: a message, no job
    assert "Upload a photo" in d.photo.message.value and not d.job.busy
    user_sets(shown(photo, W.Dropdown, description="sample"), "chelsea")
    user_sets(shown(photo, W.IntSlider, description="octaves"), 1)
    distances = []
    for stay in (0.0, 0.5, 1.0):  # stay close: the result moves less and less from the photo
        user_sets(shown(photo, W.FloatSlider, description="stay close"), stay)
        user_clicks(shown(photo, W.Button, description="Dream on photo"))
        d.job.wait()
        text = shown(photo, W.HTML, text="dream.png").value
        distances.append(float(re.search(r"mean \|change\| ([\d.]+) of 255", text).group(1)))
    assert distances[0] > distances[1] > distances[2] and distances[2] <= 6.5, distances
    user_clicks(shown(photo, W.Button, description="Live from photo"))
    assert wait(lambda: (view.image.width, view.image.height) == (32, 21))  # the photo's aspect on screen


# --- Export --------------------------------------------------------------------------------------


def test_save_says_the_full_path_and_errors_stay_in_the_tab(
    live: tuple[Dreamer, FakeView], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, _ = live
    monkeypatch.chdir(tmp_path)
    assert d.wait_for_steps(3)
    export = page(d, "Export")
    name = shown(export, W.Text)
    user_sets(name, "notes.txt")
    user_clicks(shown(export, W.Button, description="Save PNG to file"))
    assert "does not end in .png" in d.export.message.value and list(tmp_path.iterdir()) == []
    user_sets(name, "x/y/picture.png")  # a folder that does not exist
    user_clicks(shown(export, W.Button, description="Save PNG to file"))
    assert "Could not save" in d.export.message.value and "⚠" not in d.status.value
    user_sets(name, "picture.png")
    user_clicks(shown(export, W.Button, description="Save PNG to file"))
    assert f"Saved {tmp_path / 'picture.png'} (" in d.export.message.value
    assert read_settings(tmp_path / "picture.png")["target"]["layer"] == "conv2"
    user_clicks(shown(export, W.Button, description="Save PNG to file"))  # a typed name: replaced, and said
    assert f"Saved {tmp_path / 'picture.png'}, replacing the file that was there" in d.export.message.value
    monkeypatch.setenv("HOME", str(tmp_path))  # the home folder's ~ too
    user_sets(name, "~/picture.png")
    user_clicks(shown(export, W.Button, description="Save PNG to file"))
    assert f"Saved {tmp_path / 'picture.png'}, replacing the file that was there" in d.export.message.value
    # With the box empty the name comes from the target, and a second save does not overwrite the first.
    user_sets(name, "")
    for expected in ("featviz_conv2_channel_0.png", "featviz_conv2_channel_0-2.png", "featviz_conv2_channel_0-3.png"):
        user_clicks(shown(export, W.Button, description="Save PNG to file"))
        assert f"Saved {tmp_path / expected} (" in d.export.message.value
    assert len(list(tmp_path.glob("featviz_conv2_channel_0*.png"))) == 3


def test_gif_spans_the_whole_run_and_stays_small(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    assert d.wait_for_steps(300, timeout=60)
    export = page(d, "Export")
    user_clicks(shown(export, W.Button, description="Time-lapse GIF"))
    assert "featviz_timelapse.gif" in d.export.links.value
    steps = d.runner.timelapse.steps()
    now = d.runner.snapshot().step
    assert steps[0] <= now / 20 and steps[-1] >= now * 0.9  # from the start to now...
    gaps = np.diff(steps[:-1])  # (the last frame is the newest one offered)
    assert gaps.max() == gaps.min()  # ...evenly spaced
    assert len(d.timelapse_gif()) < 1_000_000


def _png_with(text: str | bytes) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(SETTINGS_KEY, text if isinstance(text, str) else text.decode("latin-1"))
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _record(**changes: Any) -> bytes:
    record: dict[str, Any] = {
        "size": 32,
        "lr": 0.2,
        "seed": 3,
        "target": {"mode": "channel", "layer": "conv2", "unit": 5},
    }
    for key, value in changes.items():
        if key.startswith("target_"):
            record["target"][key[7:]] = value
        else:
            record[key] = value
    return _png_with(json.dumps(record))


CRAFTED = [
    (b"not a png at all", "not a readable PNG"),
    (_png_with("{not json"), "not valid JSON"),
    (_png_with("[1, 2]"), "not an object"),
    (_png_with("[" * 100_000 + "]" * 100_000), "not valid JSON"),
    (_record(lr=float("nan")), "learning rate"),
    (_record(lr="fast"), "learning rate"),
    (_record(size=0), "16 to 4096"),
    (_record(transform={"bogus": 1}), "do not fit"),
    (_record(transform=[1, 2]), "transform"),
    (_record(warp=1), "Unknown setting"),
    (_record(target_unit=99), "0 to 5"),
    (_record(target_unit="5"), "target unit"),
    (_record(target_layer="conv9"), "conv9"),
    (_record(target_mode="warp"), "target mode"),
    (_record(target_alpha=float("inf")), "target alpha"),
    (_record(target_bogus=1), "Unknown target field"),
    (_record(target=[1]), "must be an object"),
]


def control_values(d: Dreamer) -> dict[str, Any]:
    return {name: getattr(getattr(d.controls, name), "value", None) for name in d.controls.__dataclass_fields__}


@pytest.mark.parametrize(("data", "message"), CRAFTED)
def test_loading_a_crafted_file_changes_nothing(live: tuple[Dreamer, FakeView], data: bytes, message: str) -> None:
    d, _ = live
    assert d.wait_for_steps(3)
    before = (d.runner.settings, d.runner.target, control_values(d))
    with pytest.raises(FeatvizError, match=message):
        d.load(data)
    assert (d.runner.settings, d.runner.target, control_values(d)) == before
    # Through the Export tab, the same file gets the message there, and nothing changes either.
    user_uploads(shown(page(d, "Export"), W.FileUpload, description="Load settings"), "crafted.png", data)
    assert "Nothing was changed" in d.export.message.value and "crafted.png" in d.export.message.value
    assert d.runner.target == before[1]


def test_save_then_load_into_another_widget(live: tuple[Dreamer, FakeView], tiny: FeatvizModel, tmp_path: Path) -> None:
    d, _ = live
    user_sets(shown(d, W.IntSlider, description="channel"), 5)
    user_sets(shown(d, W.SelectionSlider, description="learning rate"), 0.2)
    user_sets(shown(d, W.FloatSlider, description="total variation"), 0.5)
    user_sets(shown(d, W.IntSlider, description="views / step"), 3)
    assert wait(lambda: d.runner.snapshot().settings.views == 3 and d.runner.snapshot().target.unit == 5)
    path = d.save(tmp_path / "x.png")
    other = Dreamer(tiny, layer="conv1", size=32)
    try:
        export = page(other, "Export")
        user_uploads(shown(export, W.FileUpload, description="Load settings"), "x.png", path.read_bytes())
        assert "Loaded the settings of x.png" in other.export.message.value
        controls = page(other, "Controls")
        assert shown(controls, W.Dropdown, description="layer").value == "conv2"
        assert shown(controls, W.IntSlider, description="channel").value == 5
        assert shown(controls, W.SelectionSlider, description="learning rate").value == 0.2
        assert shown(controls, W.FloatSlider, description="total variation").value == pytest.approx(0.5)
        assert wait(lambda: "conv2 channel 5" in other.status.value)
        assert export is other.pages["Export"]  # the tab the file was loaded in
    finally:
        other.close()


def test_an_atlas_tile_opens_live_from_its_picture(
    live: tuple[Dreamer, FakeView], tiny: FeatvizModel, tmp_path: Path
) -> None:
    from featviz_widgets.atlas import render_atlas

    d, view = live
    report = render_atlas(tiny, out=tmp_path / "atlas", layers=["conv1"], steps=3, size=32, threads=1, progress=False)
    tile = next((report.out / "tiles").rglob("2.png"))
    pause(d)  # so the restart's step 0 stays on screen to be read
    user_uploads(shown(page(d, "Export"), W.FileUpload, description="Load settings"), tile.name, tile.read_bytes())
    assert "Loaded the settings of 2.png" in d.export.message.value
    assert wait(lambda: "conv1 channel 2 · step 0 ·" in d.status.value), d.status.value
    picture = np.asarray(Image.open(tile).convert("RGB"), np.float32)
    assert wait(lambda: view.image.mime == "image/png" and np.abs(view.picture() - picture).mean() < 25)


def test_directions_from_photos_gallery_opens_a_direction_live(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    explore = page(d, "Explore")
    user_sets(shown(explore, W.Dropdown, description="method"), "pca")
    user_sets(shown(explore, W.IntSlider, description="directions"), 3)
    user_clicks(shown(explore, W.Button, description="Directions from photos"))
    d.job.wait(300)
    assert d.explore.message.value == "", d.explore.message.value
    gallery = d.explore.directions.gallery
    assert gallery.layout.display != "none" and (gallery.width, gallery.height) == (2 * 96 + 2, 2 * 112 + 2)
    browser_says(gallery, {"type": "click", "x": 96 + 2 + 10, "y": 10})  # tile 1
    assert wait(lambda: "conv2 direction ·" in d.status.value), d.status.value
    target = d.runner.snapshot().target
    assert target.mode == "direction" and len(target.vector) == 6
    assert np.allclose(target.vector, d.explore.directions.sheet.directions[1].numpy())
