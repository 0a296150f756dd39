"""The widget layers without a browser: a recording comm stands in for the front end."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from featviz_widgets.engine import RenderSettings
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.errors import ChannelRangeError, InvalidSettingError
from featviz_widgets.export import read_settings
from featviz_widgets.runner.live import Frame, LiveRunner, stop_all
from featviz_widgets.runner.target import Target
from featviz_widgets.view import Dreamer, LiveImage

from .conftest import browser_says, updates, wait

pytestmark = pytest.mark.usefixtures("comms")


def frame(step: int = 1) -> Frame:
    return Frame(b"\xff\xd8jpeg", "image/jpeg", 8, 8, step)


# --- LiveImage ---------------------------------------------------------------------------------


def test_one_frame_is_one_message_with_a_binary_buffer() -> None:
    w = LiveImage()
    before = len(updates(w))
    w.show(frame())
    msgs = updates(w)[before:]
    assert len(msgs) == 1  # hold_sync batches frame, mime, size and seq
    assert msgs[0]["buffer_paths"] == [["frame"]]
    assert msgs[0]["state"]["seq"] == 1 and msgs[0]["state"]["width"] == 8  # unchanged traits are not resent


def test_acks_and_visibility_gate_frames() -> None:
    w = LiveImage(max_in_flight=2)
    assert not w.ready()  # no view has said it is visible
    browser_says(w, {"type": "visibility", "view": "v1", "visible": True})
    assert w.ready()
    w.show(frame())
    w.show(frame())
    assert w.in_flight == 2 and not w.ready()
    browser_says(w, {"type": "ack", "seq": 1})
    assert w.in_flight == 1 and w.ready()
    browser_says(w, {"type": "visibility", "view": "v1", "visible": False})
    assert not w.ready()
    browser_says(w, {"type": "visibility", "view": "v1", "visible": True})
    browser_says(w, {"type": "closed", "view": "v1"})
    assert not w.ready() and w.view_count == 0


def test_lost_acks_time_out() -> None:
    w = LiveImage(max_in_flight=1, ack_timeout=0.05)
    browser_says(w, {"type": "visibility", "view": "v", "visible": True})
    w.show(frame())
    assert not w.ready()
    time.sleep(0.08)
    assert w.ready() and w.in_flight == 0


def test_download_sends_png_to_the_browser() -> None:
    w = LiveImage()
    w.download(b"\x89PNG...", "x.png")
    custom = [(d, b) for t, d, b in w.comm.sent if t == "comm_msg" and d.get("method") == "custom"]
    assert custom[-1][0]["content"] == {"type": "download", "filename": "x.png"}
    assert bytes(custom[-1][1][0]) == b"\x89PNG..."


def test_esm_and_css_are_strings_from_package_data() -> None:
    assert isinstance(LiveImage._esm, str) and "export default" in LiveImage._esm
    assert isinstance(LiveImage._css, str) and ".featviz-canvas" in LiveImage._css


# --- LiveRunner with a fake sink ---------------------------------------------------------------


class FakeSink:
    def __init__(self, ready: bool = True) -> None:
        self.frames: list[Frame] = []
        self.statuses: list[dict[str, Any]] = []
        self.is_ready = ready
        self.gone = False

    def ready(self) -> bool:
        return self.is_ready

    def abandoned(self) -> bool:
        return self.gone

    def publish(self, frame: Frame | None, status: dict[str, Any]) -> None:
        if frame is not None:
            self.frames.append(frame)
        self.statuses.append(status)


@pytest.fixture
def runner(tiny: FeatvizModel) -> Any:
    sink = FakeSink()
    r = LiveRunner(tiny, Target(layer="conv2", unit=1), RenderSettings(size=32), sink, fps=20)
    r.start()
    yield r, sink
    r.close()


def test_runner_steps_and_caps_frame_rate(runner: Any) -> None:
    r, sink = runner
    assert wait(lambda: r.status["step"] >= 30)
    time.sleep(0.5)
    r.pause()
    steps, frames = r.status["step"], len(sink.frames)
    assert frames >= 3
    assert frames <= steps  # at most one frame per step, and the fps cap keeps it far below
    assert all(f.width == 32 and f.height == 32 for f in sink.frames)


def test_runner_applies_changes_without_restart(runner: Any) -> None:
    r, _ = runner
    assert wait(lambda: r.status["step"] >= 5)
    gen = r.generation
    r.set(lr=0.2, l1=3.0, transform_strength=0.5)
    assert r.generation == gen + 1
    assert wait(lambda: r.renderer.settings.lr == 0.2)
    assert r.renderer.settings.l1 == 3.0 and r.renderer.settings.transform.strength == 0.5
    assert r.renderer.step_count > 5  # kept going, no restart


def test_runner_target_change_warm_or_cold(runner: Any) -> None:
    r, _ = runner
    assert wait(lambda: r.status["step"] >= 5)
    r.set_target(Target(layer="conv2", unit=3), keep_image=True)
    assert wait(lambda: r.target.unit == 3)
    assert r.renderer.step_count > 5
    r.pause()  # changes still apply while paused, so the restart is observable
    r.set_target(Target(layer="conv1", unit=2), keep_image=False)
    assert wait(lambda: r.target.layer == "conv1" and r.renderer.step_count == 0)


def test_runner_rejects_bad_values_and_keeps_going(runner: Any) -> None:
    r, _ = runner
    with pytest.raises(InvalidSettingError, match="learning rate"):
        r.set(lr=float("nan"))
    with pytest.raises(ChannelRangeError, match="0 to 5"):
        r.set_target(Target(layer="conv2", unit=99))
    with pytest.raises(InvalidSettingError, match="16 to 4096"):
        r.set(size=100000)
    step = r.status["step"]
    assert wait(lambda: r.status["step"] > step + 3)
    assert r.renderer.settings.lr == 0.15 and r.target.unit == 1


def test_exception_in_step_is_reported_and_loop_survives(runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r, _ = runner
    assert wait(lambda: r.renderer is not None and r.status["step"] >= 2)
    real_step = r.renderer.step
    calls = {"n": 0}

    def flaky() -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated CUDA hiccup")
        return real_step()

    monkeypatch.setattr(r.renderer, "step", flaky)
    assert wait(lambda: "simulated CUDA hiccup" in r.status["error"])
    assert "Traceback" in r.last_error and "flaky" in r.last_error
    step = r.status["step"]
    assert wait(lambda: r.status["step"] > step + 2)  # still serving


def test_pause_sends_one_lossless_png(runner: Any) -> None:
    r, sink = runner
    assert wait(lambda: len(sink.frames) >= 1)
    r.pause()
    assert wait(lambda: sink.frames[-1].mime == "image/png")
    n = len(sink.frames)
    time.sleep(0.4)
    assert len(sink.frames) == n  # paused: nothing more
    r.resume()
    assert wait(lambda: len(sink.frames) > n)


def test_no_frames_while_sink_not_ready_but_status_flows(tiny: FeatvizModel) -> None:
    sink = FakeSink(ready=False)
    r = LiveRunner(tiny, Target(layer="conv2", unit=1), RenderSettings(size=32), sink, fps=30)
    r.start()
    try:
        assert wait(lambda: len(sink.statuses) >= 3)
        assert sink.frames == []
    finally:
        r.close()


def test_close_stops_thread_and_stop_all(tiny: FeatvizModel) -> None:
    runners = [LiveRunner(tiny, Target(layer="conv2"), RenderSettings(size=32), FakeSink()) for _ in range(3)]
    for r in runners:
        r.start()
    assert stop_all() == 3
    assert not any(r.is_running for r in runners)
    assert not [t for t in threading.enumerate() if t.name.startswith("featviz-live")]


# --- Dreamer ------------------------------------------------------------------------------------


def test_dreamer_sliders_drive_the_runner(dreamer: Dreamer) -> None:
    c = dreamer.controls
    assert c.unit.max == 5  # conv2 has 6 channels
    c.unit.value = 4
    assert wait(lambda: dreamer.runner.target.unit == 4)
    c.layer.value = "conv1"
    assert c.unit.max == 3
    c.lr.value = 0.3
    c.l1.value = 0.5
    assert wait(lambda: dreamer.runner.renderer is not None and dreamer.runner.renderer.settings.lr == 0.3)
    assert wait(lambda: dreamer.runner.renderer.settings.l1 == 250.0)


def test_dreamer_class_mode_shows_class_name(tiny: FeatvizModel) -> None:
    tiny.class_names = ["apple", "bee", "cat", "dog", "eel"]
    d = Dreamer(tiny, layer="conv2", size=32)
    try:
        d.controls.mode.value = "class"
        assert d.controls.unit.max == 4 and d.controls.layer.disabled
        d.controls.unit.value = 2
        assert "cat" in d.controls.unit_name.value
        assert wait(lambda: d.runner.target.mode == "class" and d.runner.target.unit == 2)
    finally:
        d.close()


def test_dreamer_status_line_and_frames(dreamer: Dreamer) -> None:
    # Pretend a browser view is on screen and acknowledges frames.
    browser_says(dreamer.image_widget, {"type": "visibility", "view": "v", "visible": True})
    assert wait(lambda: dreamer.frames_shown >= 2)
    browser_says(dreamer.image_widget, {"type": "ack", "seq": dreamer.image_widget.seq})
    assert wait(lambda: "steps/s" in dreamer.status.value and "cpu" in dreamer.status.value)
    assert "<svg" in dreamer.plot.value


def test_dreamer_bad_value_shows_in_status(dreamer: Dreamer) -> None:
    dreamer._set(lr=-1.0)
    assert "learning rate" in dreamer.status.value
    assert dreamer.runner.settings.lr == 0.05


def test_dreamer_save_png_with_settings(dreamer: Dreamer, tmp_path: Path) -> None:
    assert dreamer.wait_for_steps(3)
    path = dreamer.save(tmp_path / "d.png")
    settings = read_settings(path)
    assert settings["objective"] == "Channel('conv2', 0)" and settings["size"] == 32
    dreamer.controls.save.click()
    assert "data:image/png;base64" in dreamer.download_link.value


def test_dreamer_pause_button_stops_steps(dreamer: Dreamer) -> None:
    assert dreamer.wait_for_steps(3)
    dreamer.controls.run.value = False
    time.sleep(0.3)
    step = dreamer.runner.status["step"]
    time.sleep(0.3)
    assert dreamer.runner.status["step"] == step and dreamer.controls.run.description == "Run"


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


def test_loop_pauses_itself_when_its_views_are_gone(tiny: FeatvizModel) -> None:
    d = Dreamer(tiny, layer="conv2", size=32)
    try:
        w = d.image_widget
        browser_says(w, {"type": "visibility", "view": "v", "visible": True})
        assert d.wait_for_steps(3)
        w._abandoned_since = None
        browser_says(w, {"type": "closed", "view": "v"})  # the cell was re-run: its output is gone
        assert not w.abandoned()  # a grace period first
        w._abandoned_since -= 10
        assert wait(lambda: d.runner.paused and d.controls.run.value is False)
        assert "no view" in d.runner.status["warning"]
    finally:
        d.close()


def test_never_displayed_widget_pauses_after_grace() -> None:
    w = LiveImage()
    assert not w.abandoned(never_shown_grace=60)
    w._created -= 61
    assert w.abandoned(never_shown_grace=60)
    browser_says(w, {"type": "visibility", "view": "v", "visible": False})  # a view exists, off-screen
    assert not w.abandoned(never_shown_grace=60)


def test_hiding_mode_specific_controls_hides_only_them(dreamer: Dreamer) -> None:
    c = dreamer.controls
    assert c.unit_b.layout.display == "none" and c.alpha.layout.display == "none"  # channel mode
    layouts = [w.layout for w in c.all()]
    assert len({id(layout) for layout in layouts}) == len(layouts)  # none shared
    assert c.mode.layout.display != "none" and c.layer.layout.display != "none" and c.lr.layout.display != "none"
    c.mode.value = "mix"
    assert c.unit_b.layout.display != "none" and c.direction_seed.layout.display == "none"


def test_view_that_stops_acknowledging_counts_as_gone() -> None:
    w = LiveImage()
    browser_says(w, {"type": "visibility", "view": "v", "visible": True})
    w.show(frame())
    assert not w.abandoned()
    w.silent_view_timeout = 10.0
    assert not w.abandoned(grace=5.0)
    w._unanswered_since -= 30  # the tab was closed without a goodbye 30 s ago
    assert w.ready()  # the ack timeout lets frames go out again...
    w.show(frame())
    assert w.abandoned(grace=5.0) and w.view_count == 0  # ...but silence this long means nobody is there
    browser_says(w, {"type": "visibility", "view": "v2", "visible": True})
    assert not w.abandoned(grace=5.0)


def test_quiet_detection() -> None:
    from featviz_widgets.runner.live import is_quiet

    assert not is_quiet([1.0] * 10)  # too short to tell
    assert is_quiet([10.0 + 0.001 * (i % 2) for i in range(40)])
    assert not is_quiet([10.0 + 0.1 * i for i in range(40)])
