"""The Dreamer as a person uses it: controls found in the displayed widget tree, changed the way
the browser changes them (comm messages), and the picture or text on screen checked."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from typing import Any

import ipywidgets as W
import numpy as np
import pytest

from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.runner import read_saved
from featviz_widgets.runner.settle import Settle
from featviz_widgets.view import Dreamer, LiveImage

from .conftest import FakeClock, FakeView, browser_says, displayed, shown, user_clicks, user_sets, user_uploads, wait

pytestmark = pytest.mark.usefixtures("comms")

# What each mode must put on screen (descriptions), beyond the settings controls.
MODE_CONTROLS = {
    "channel": {"layer", "channel"},
    "neuron": {"layer", "channel"},
    "deepdream": {"layer"},
    "class": {"class"},
    "direction": {"layer", "direction seed", "New direction"},
    "mix": {"layer", "channel A", "channel B", "alpha (A vs B)"},
}
TARGET_CONTROLS = {"layer", "channel", "class", "direction seed", "New direction", "channel A", "channel B"}
TARGET_CONTROLS |= {"alpha (A vs B)"}
SETTINGS_CONTROLS = {"images", "learning rate", "L1", "total variation", "blur", "transforms", "views / step"}
SETTINGS_CONTROLS |= {"image size", "seed", "warm start", "Pause", "Reset", "Save PNG"}


@pytest.fixture
def live(tiny: FeatvizModel) -> Iterator[tuple[Dreamer, FakeView]]:
    tiny.class_names = ["apple", "bee", "cat", "dog", "eel"]
    d = Dreamer(tiny, layer="conv2", size=32, fps=30)
    view = FakeView(d.image_widget)
    yield d, view
    view.close()
    d.close()


def descriptions(root: Any) -> set[str]:
    return {w.description for w in displayed(root) if getattr(w, "description", "")}


@pytest.mark.parametrize("mode", list(MODE_CONTROLS))
def test_each_mode_shows_exactly_its_controls(live: tuple[Dreamer, FakeView], mode: str) -> None:
    d, _ = live
    user_sets(shown(d, W.Dropdown, description="objective"), mode)
    on_screen = descriptions(d)
    assert MODE_CONTROLS[mode] <= on_screen
    assert not (TARGET_CONTROLS - MODE_CONTROLS[mode]) & on_screen  # nothing another mode needs
    assert on_screen >= SETTINGS_CONTROLS
    assert wait(lambda: d.runner.snapshot().target.mode == mode)


def test_mix_controls_drive_the_objective_on_screen(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    user_sets(shown(d, W.Dropdown, description="objective"), "mix")
    user_sets(shown(d, W.IntSlider, description="channel B"), 4)
    user_sets(shown(d, W.FloatSlider, description="alpha (A vs B)"), 0.25)
    assert wait(lambda: "mix 0/4 alpha 0.25" in d.status.value), d.status.value
    target = d.runner.snapshot().target
    assert target.unit_b == 4 and target.alpha == 0.25


def test_images_and_diversity_are_on_screen_and_make_a_grid(live: tuple[Dreamer, FakeView]) -> None:
    d, view = live
    assert "diversity" not in descriptions(d)  # one image: nothing to diversify
    user_sets(shown(d, W.IntSlider, description="images"), 4)
    user_sets(shown(d, W.FloatSlider, description="diversity"), 0.5)
    assert wait(lambda: view.image.width == 66 and view.image.height == 66)  # a 2x2 grid on screen
    assert d.runner.snapshot().target.diversity == 25.0


def test_channel_slider_changes_the_picture(live: tuple[Dreamer, FakeView]) -> None:
    d, view = live
    user_clicks(shown(d, W.Checkbox, description="warm start"))  # a cold start shows the new target at once
    assert d.wait_for_steps(20)
    before = view.picture()
    user_sets(shown(d, W.IntSlider, description="channel"), 5)
    assert wait(lambda: "conv2 channel 5 ·" in d.status.value)
    assert wait(lambda: np.abs(view.picture() - before).mean() > 5)


def test_class_picker_by_name(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    user_sets(shown(d, W.Dropdown, description="objective"), "class")
    picker = shown(d, W.Combobox, description="class")
    assert "2 cat" in picker.options
    user_sets(picker, "2 cat")
    assert wait(lambda: "class 2 (cat)" in d.status.value), d.status.value
    user_sets(picker, "DO")  # part of a name picks that class, and the box shows its whole name
    assert wait(lambda: "class 3 (dog)" in d.status.value) and picker.value == "3 dog"
    user_sets(picker, "zzzz")  # nothing matches: said so, nothing changes
    assert "No class matches 'zzzz'" in html.unescape(d.status.value) and d.runner.target.unit == 3


@pytest.mark.parametrize(
    ("typed", "picked"),
    [
        ("bee", "4 bee"),
        ("BEE ", "4 bee"),
        ("beet", "2 tiger beetle"),
        ("4", "4 bee"),
        ("gold", "0 goldfish"),
        ("eater", "1 bee eater"),
        ("hart", "3 hartebeest"),
        ("ebee", "3 hartebeest"),
    ],
)
def test_class_box_takes_a_name_a_part_or_a_number(tiny: FeatvizModel, typed: str, picked: str) -> None:
    """What the browser sends on Enter is the typed text (issue #23.2): the exact name wins over
    a longer one containing it, then a name or word starting with it, then any containing it."""
    tiny.class_names = ["goldfish", "bee eater", "tiger beetle", "hartebeest", "bee"]
    d = Dreamer(tiny, layer="conv2", size=32)
    try:
        user_sets(shown(d, W.Dropdown, description="objective"), "class")
        picker = shown(d, W.Combobox, description="class")
        assert not picker.ensure_option and not picker.continuous_update  # typed text arrives on Enter
        user_sets(picker, typed)
        number, name = picked.split(" ", 1)
        assert wait(lambda: f"class {number} ({name})" in d.status.value), d.status.value
        assert picker.value == picked
        user_sets(picker, "5")  # not a class: said so, nothing changes
        assert "No class matches '5'" in html.unescape(d.status.value) and d.runner.target.unit == int(number)
    finally:
        d.close()


def test_run_button_tells_the_truth_after_a_job(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    run = shown(d, W.Button, description="Pause")
    user_sets(d.page_picker, "Explore")
    user_clicks(shown(d, W.Button, description="Gallery of this layer"))
    assert wait(lambda: d.runner.snapshot().state == "busy")
    assert run.description == "Pause"  # held for the job, not paused by the user
    d.job.wait()
    assert wait(lambda: d.runner.snapshot().state == "running" and "running" in d.status.value)
    assert run.description == "Pause"
    user_clicks(run)  # the first click pauses
    assert wait(
        lambda: "paused" in d.status.value and run.description == "Run"
    )  # the worker writes the status, then the button
    step = d.runner.snapshot().step
    user_sets(d.page_picker, "Controls")
    lr = shown(d, W.SelectionSlider, description="learning rate")
    for rate in (0.1, 0.2):  # each change wakes the paused loop for a round, published as it applies...
        user_sets(lr, rate)
        assert wait(lambda rate=rate: d.runner.snapshot().settings.lr == rate)
        assert d.runner.snapshot().state == "paused" and d.runner.snapshot().step == step  # ...with no step
    user_clicks(run)
    assert wait(lambda: d.runner.snapshot().step > step and run.description == "Pause")


def test_bad_value_shows_in_status_and_changes_nothing(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    user_sets(shown(d, W.Dropdown, description="image size"), 64)
    assert wait(lambda: d.runner.snapshot().settings.size == 64)
    assert not d.apply("lr", -1.0)  # what the slider's observer does with a value the runner refuses
    assert "learning rate" in d.status.value
    assert d.runner.settings.lr == 0.05


def test_save_png_button_offers_a_download_named_for_the_target(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    assert d.wait_for_steps(3)
    user_clicks(shown(d, W.Button, description="Save PNG"))
    assert "featviz_conv2_channel_0.png" in d.download_link.value and "data:image/png;base64" in d.download_link.value
    user_sets(shown(d, W.Dropdown, description="objective"), "deepdream")
    assert wait(lambda: d.runner.snapshot().target.mode == "deepdream")
    user_clicks(shown(d, W.Button, description="Save PNG"))
    assert "featviz_conv2_DeepDream.png" in d.download_link.value  # no channel number in DeepDream mode


def test_save_png_download_carries_its_settings_and_loads_back(live: tuple[Dreamer, FakeView]) -> None:
    """Issue #23.3: the PNG the Save PNG button hands the browser has the settings inside, so
    Export's Load settings reads it back (all of it: target and settings)."""
    d, _ = live
    user_sets(shown(d, W.IntSlider, description="channel"), 4)
    user_sets(shown(d, W.Dropdown, description="image size"), 64)
    assert wait(lambda: d.runner.snapshot().target.unit == 4 and d.runner.snapshot().settings.size == 64)
    user_clicks(shown(d, W.Button, description="Save PNG"))
    sent = [(c, b) for t, c, b in d.image_widget.comm.sent if t == "comm_msg" and c.get("method") == "custom"]
    message, buffers = sent[-1]
    assert message["content"]["filename"] == "featviz_conv2_channel_4.png"
    png = bytes(buffers[0])
    settings, target, picture = read_saved(png)
    assert target.unit == 4 and settings.size == 64 and picture.size == (64, 64)
    user_sets(shown(d, W.IntSlider, description="channel"), 1)
    user_sets(shown(d, W.Dropdown, description="image size"), 32)
    assert wait(lambda: d.runner.snapshot().target.unit == 1)
    user_sets(d.page_picker, "Export")
    user_uploads(shown(d, W.FileUpload, description="Load settings"), message["content"]["filename"], png)
    assert wait(lambda: "conv2 channel 4 ·" in d.status.value and d.runner.snapshot().settings.side == 64)


def test_layout_puts_panels_beside_the_image(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    left, right = d.children
    assert d.layout.flex_flow == "row wrap"  # stacks on narrow screens
    assert left.layout.flex == "0 0 auto" and right.layout.flex.startswith("1 1")
    assert int(left.layout.width.rstrip("px")) + int(right.layout.min_width.rstrip("px")) <= 1000 - 150


def test_image_backend_fallback(tiny: FeatvizModel) -> None:
    d = Dreamer(tiny, layer="conv2", size=32, backend="image", fps=30)
    try:
        assert wait(lambda: d.frames_shown >= 2)
        assert bytes(d.image_widget.value)[:2] == b"\xff\xd8"  # JPEG while running
    finally:
        d.close()


def test_close_leaves_no_thread(tiny: FeatvizModel) -> None:
    for _ in range(5):
        d = Dreamer(tiny, layer="conv2", size=32)
        d.wait_for_steps(1)
        d.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("featviz-live")]


def sent_states(w: LiveImage) -> list[dict[str, Any]]:
    """The trait updates the kernel sent to the front end, with the traits each carried."""
    return [d["state"] for t, d, _ in w.comm.sent if t == "comm_msg" and d.get("method") == "update"]


def test_a_settled_loop_that_starts_a_job_stays_on_screen_and_runs(tiny: FeatvizModel) -> None:
    """Issue #23.1: settle, start an Explore job, leave the page alone for a minute: the widget
    on screen never pauses itself, and Run runs."""
    clock = FakeClock()
    d = Dreamer(tiny, layer="conv2", size=32, autostart=False, clock=clock)
    d.runner.settle = Settle(window=15)  # settles in ~30 steps on the tiny net
    view = FakeView(d.image_widget)
    try:
        w = d.image_widget
        user_clicks(shown(d, W.Button, description="Run"))
        assert wait(lambda: d.runner.snapshot().state == "settled", 60)
        seq = w.seq
        user_sets(d.page_picker, "Explore")
        user_clicks(shown(d, W.Button, description="Gallery of this layer"))
        assert wait(lambda: d.runner.snapshot().state == "busy" and w.seq > seq)
        # The frame sent as the job starts is the settled picture again: its bytes are not
        # resent, but its seq is, and that is what the front end draws and answers.
        assert "frame" not in sent_states(w)[-1] and sent_states(w)[-1]["seq"] == w.seq
        for _ in range(12):  # a minute passes while the job runs and the page is left alone
            clock.advance(5.0)
            browser_says(w, {"type": "alive", "view": "test", "visible": True})
        d.job.wait()
        assert wait(lambda: d.runner.snapshot().state == "settled")
        assert not d.runner.paused and "no view" not in d.status.value
        step = d.runner.snapshot().step
        user_clicks(shown(d, W.Button, description="Run"))  # settled: Run makes more steps
        assert wait(lambda: d.runner.snapshot().step > step), d.status.value
    finally:
        view.close()
        d.close()


def test_a_silent_view_pauses_the_loop_and_run_or_its_return_resumes_it(tiny: FeatvizModel) -> None:
    clock = FakeClock()
    d = Dreamer(tiny, layer="conv2", size=32, clock=clock)
    try:
        w = d.image_widget
        browser_says(w, {"type": "visibility", "view": "v", "visible": True})
        assert wait(lambda: w.seq >= 1)  # a frame went out and nobody answers it: the tab was closed
        clock.advance(w.silent_view_timeout + 1)
        assert wait(lambda: d.runner.paused and "no view" in d.status.value)
        assert shown(d, W.Button, description="Run")
        browser_says(w, {"type": "alive", "view": "v", "visible": True})  # it was only slow: it runs again
        assert wait(lambda: not d.runner.paused and "no view" not in d.status.value), d.status.value
        assert "· paused" not in d.status.value
        step = d.runner.snapshot().step
        clock.advance(w.silent_view_timeout + 1)  # silent again (a frame is unanswered since the ack)
        assert wait(lambda: d.runner.paused and "no view" in d.status.value)
        user_clicks(shown(d, W.Button, description="Reset"))  # still paused: the note stays true
        assert wait(lambda: d.runner.snapshot().step == 0) and "no view" in d.status.value
        user_clicks(shown(d, W.Button, description="Run"))  # Run always runs, and the note goes
        assert wait(lambda: d.runner.snapshot().step > 2 and "no view" not in d.status.value), d.status.value
        assert not d.runner.paused and "· paused" not in d.status.value and step > 0
    finally:
        d.close()


def test_loop_pauses_itself_when_its_views_are_gone(tiny: FeatvizModel) -> None:
    clock = FakeClock()
    d = Dreamer(tiny, layer="conv2", size=32, clock=clock)
    try:
        w = d.image_widget
        browser_says(w, {"type": "visibility", "view": "v", "visible": True})
        assert wait(lambda: w.seq >= 1)  # running, a frame on screen (the frozen clock paces no more)
        browser_says(w, {"type": "closed", "view": "v"})  # the cell was re-run: its output is gone
        assert not w.abandoned()  # a grace period first
        clock.advance(10)  # the grace period has passed
        # the status as well: a loop that had settled already shows "Run", and the worker sets its
        # pause before it publishes it (read at once, the status could still say "settled")
        assert wait(lambda: d.runner.paused and d.controls.run.description == "Run" and "no view" in d.status.value)
    finally:
        d.close()


def test_never_displayed_widget_pauses_after_grace() -> None:
    clock = FakeClock()
    w = LiveImage(clock=clock)
    assert not w.abandoned(never_shown_grace=60)
    clock.advance(61)
    assert w.abandoned(never_shown_grace=60)
    browser_says(w, {"type": "visibility", "view": "v", "visible": False})  # a view exists, off-screen
    assert not w.abandoned(never_shown_grace=60)


def test_view_that_stops_answering_counts_as_gone_until_it_speaks() -> None:
    from .test_widget import frame

    clock = FakeClock()
    w = LiveImage(clock=clock, silent_view_timeout=10.0)
    browser_says(w, {"type": "visibility", "view": "v", "visible": True})
    w.show(frame())
    clock.advance(9)
    assert not w.abandoned(grace=5.0) and w.view_count == 1
    clock.advance(2)  # the tab was closed without a goodbye 11 s ago
    assert w.abandoned(grace=5.0) and w.view_count == 0
    browser_says(w, {"type": "alive", "view": "v", "visible": True})
    assert not w.abandoned(grace=5.0) and w.view_count == 1


def test_a_view_that_says_it_is_alive_is_never_given_up() -> None:
    from .test_widget import frame

    clock = FakeClock()
    w = LiveImage(clock=clock, silent_view_timeout=15.0)
    browser_says(w, {"type": "visibility", "view": "v", "visible": True})
    for _ in range(60):  # five minutes of frames it never answers (none redrawn), but it is alive
        w.show(frame())
        clock.advance(5.0)
        browser_says(w, {"type": "alive", "view": "v", "visible": True})
        assert not w.abandoned()


def test_revive_gives_a_fresh_grace() -> None:
    from .test_widget import frame

    clock = FakeClock()
    w = LiveImage(clock=clock, silent_view_timeout=15.0)
    browser_says(w, {"type": "visibility", "view": "v", "visible": True})
    w.show(frame())
    clock.advance(16)
    assert w.abandoned()
    w.revive()  # the user pressed Run
    assert not w.abandoned()
    w.show(frame())
    clock.advance(16)
    assert w.abandoned()  # really gone: found gone again after the grace


@pytest.mark.slow
def test_a_vision_transformer_offers_its_class_token(comms: None) -> None:
    import torch
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    net = VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
    d = Dreamer(net, size=32, fps=30)
    try:
        view = FakeView(d.image_widget)
        layer = shown(d, W.Dropdown, description="layer")
        labels = [label for label, _ in layer.options]
        assert any("(32 ch, 4x4, +1 class token)" in label for label in labels), labels
        token_layer = next(value for label, value in layer.options if "class token" in label)
        user_sets(layer, token_layer)
        user_sets(shown(d, W.Dropdown, description="objective"), "token")
        user_sets(shown(d, W.IntSlider, description="channel"), 3)
        assert wait(lambda: f"{token_layer} token 3 ·" in d.status.value, 30), d.status.value
        assert wait(lambda: view.image.width == 32)  # a canvas below the model's 64 px input works
        view.close()
    finally:
        d.close()


def test_layer_list_names_every_layer_one_way() -> None:
    """Issue #23.3: the embedded model's list read blocks.1, blocks › blocks.2, blocks.3,
    blocks › blocks.4: a group is said only where the name does not say it already."""
    from featviz_widgets.engine import load_model, main_layers
    from featviz_widgets.view.controls import layer_options

    labels = [label for label, _ in layer_options(main_layers(load_model()))]
    assert [label.split("  ")[0] for label in labels[1:5]] == ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]
    assert not [label for label in labels if "›" in label]


def test_status_sits_under_the_buttons(live: tuple[Dreamer, FakeView]) -> None:
    d, _ = live
    left = d.children[0]
    order = [w for w in left.children if w in (d.status, d.plot)]
    assert order == [d.status, d.plot]  # the status and its warning come before the plot


def test_penalties_that_wipe_the_picture_out_say_so(live: tuple[Dreamer, FakeView]) -> None:
    """Issue #23.3: penalties together can leave an almost black or flat picture; the status says
    what to lower (and says nothing of the kind without penalties)."""
    d, _ = live
    assert d.wait_for_steps(60) and "wiping" not in d.status.value
    for name in ("L1", "total variation", "blur"):
        user_sets(shown(d, W.FloatSlider, description=name), 1.0)
    assert wait(lambda: "The penalties are wiping the picture out" in d.status.value), d.status.value
    for name in ("L1", "total variation", "blur"):
        user_sets(shown(d, W.FloatSlider, description=name), 0.0)
    user_clicks(shown(d, W.Button, description="Reset"))
    assert wait(lambda: d.runner.snapshot().step > 60 and "wiping" not in d.status.value), d.status.value


def test_penalty_hint_reads_the_picture() -> None:
    from featviz_widgets.engine import RenderSettings
    from featviz_widgets.runner import Snapshot, Target
    from featviz_widgets.view.status import status_html

    def status(picture: np.ndarray, **penalties: float) -> str:
        snap = Snapshot(picture[None], 100, RenderSettings(**penalties), Target(), "running", 1.0, 5.0, "cpu")
        return status_html(snap, None)

    rng = np.random.default_rng(0)
    dark = rng.integers(0, 30, (32, 32, 3), dtype=np.uint8)
    grey = np.full((32, 32, 3), 128, np.uint8)
    lively = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    assert "almost black" in status(dark, l1=18.0, tv=75.0)
    assert "one flat colour" in status(grey, blur=4800.0)
    assert "wiping" not in status(lively, l1=18.0) and "wiping" not in status(dark)  # lively, or no penalty


def test_live_image_is_smooth_unless_crisp_is_asked(tiny: FeatvizModel) -> None:
    smooth = Dreamer(tiny, layer="conv2", size=32, autostart=False)
    crisp = Dreamer(tiny, layer="conv2", size=32, autostart=False, pixelated=True)
    try:
        assert not smooth.image_widget.pixelated and crisp.image_widget.pixelated
        assert ".featviz-canvas.pixelated" in LiveImage._css and "image-rendering: pixelated" in LiveImage._css
    finally:
        smooth.close()
        crisp.close()
