"""The widget layers without a browser: a recording comm stands in for the front end."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from featviz_widgets.engine import Renderer, RenderSettings
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.errors import ChannelRangeError, InvalidSettingError
from featviz_widgets.runner import Frame, LiveRunner, Snapshot, Target, stop_all
from featviz_widgets.runner.settle import Settle
from featviz_widgets.view import LiveImage

from .conftest import FakeClock, browser_says, updates, wait

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
    clock = FakeClock()
    w = LiveImage(max_in_flight=1, ack_timeout=2.0, clock=clock)
    browser_says(w, {"type": "visibility", "view": "v", "visible": True})
    w.show(frame())
    clock.advance(1.9)
    assert not w.ready()
    clock.advance(0.2)
    assert w.ready() and w.in_flight == 0


def test_a_repeated_frame_still_sends_its_seq() -> None:
    """A frame whose bytes equal the last one's (the settled picture sent again as a job starts)
    is not resent, but its seq is: the front end draws and acknowledges every seq."""
    w = LiveImage()
    w.show(frame())
    before = len(updates(w))
    w.show(frame())
    (msg,) = updates(w)[before:]
    assert msg["state"] == {"seq": 2} and msg["buffer_paths"] == []
    assert "change:seq" in LiveImage._esm and "ack" in LiveImage._esm


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
        self.snapshots: list[Snapshot] = []
        self.is_ready = ready
        self.gone = False
        self.looks = 0  # the worker asks abandoned() once a round of its loop: rounds counted
        self.revived = 0

    def ready(self) -> bool:
        return self.is_ready

    def abandoned(self) -> bool:
        self.looks += 1
        return self.gone

    def revive(self) -> None:
        self.revived += 1

    def publish(self, frame: Frame | None, snapshot: Snapshot) -> None:
        if frame is not None:
            self.frames.append(frame)
        self.snapshots.append(snapshot)


@pytest.fixture
def runner(tiny: FeatvizModel) -> Any:
    sink = FakeSink()
    r = LiveRunner(tiny, Target(layer="conv2", unit=1), RenderSettings(size=32), sink, fps=20)
    r.start()
    yield r, sink
    r.close()


def test_runner_caps_frame_rate_by_its_clock(tiny: FeatvizModel) -> None:
    clock = FakeClock()
    sink = FakeSink()
    never = Settle(window=10**6)  # keeps stepping
    r = LiveRunner(
        tiny, Target(layer="conv2", unit=1), RenderSettings(size=32), sink, fps=20, clock=clock, settle=never
    )
    r.start()
    try:
        assert wait(lambda: sink.looks >= 30)  # 30 rounds of the loop, each a step...
        assert len(sink.frames) == 1  # ...and one frame: the clock has not moved since the first
        clock.advance(0.06)  # just over 1/fps later: the next step sends one more
        assert wait(lambda: len(sink.frames) == 2)
        looks = sink.looks
        assert wait(lambda: sink.looks >= looks + 30)
        assert len(sink.frames) == 2 and all(f.width == 32 and f.height == 32 for f in sink.frames)
    finally:
        r.close()


def test_runner_applies_changes_without_restart(runner: Any) -> None:
    r, _ = runner
    assert r.wait_for_steps(5)
    r.set(lr=0.2, l1=3.0, transform_strength=0.5)
    assert r.settings.lr == 0.2  # the truth at once; the image follows on the next step
    assert wait(lambda: r.snapshot().settings.lr == 0.2)
    snap = r.snapshot()
    assert snap.settings.l1 == 3.0 and snap.settings.transform.strength == 0.5
    assert snap.step > 5  # kept going, no restart


def test_runner_target_change_warm_or_cold(runner: Any) -> None:
    r, _ = runner
    assert r.wait_for_steps(5)
    r.set_target(Target(layer="conv2", unit=3), keep_image=True)
    assert wait(lambda: r.snapshot().target.unit == 3)
    assert r.snapshot().step > 5
    r.pause()  # changes still apply while paused, so the restart is observable
    r.set_target(Target(layer="conv1", unit=2), keep_image=False)
    assert wait(lambda: r.snapshot().target.layer == "conv1" and r.snapshot().step == 0)


def test_runner_rejects_bad_values_and_keeps_going(runner: Any) -> None:
    r, _ = runner
    with pytest.raises(InvalidSettingError, match="learning rate"):
        r.set(lr=float("nan"))
    with pytest.raises(ChannelRangeError, match="0 to 5"):
        r.set_target(Target(layer="conv2", unit=99))
    with pytest.raises(InvalidSettingError, match="16 to 4096"):
        r.set(size=100000)
    step = r.snapshot().step
    assert wait(lambda: r.snapshot().step > step + 3)
    assert r.snapshot().settings.lr == 0.15 and r.snapshot().target.unit == 1


def test_no_op_changes_are_not_changes(runner: Any) -> None:
    r, _ = runner
    assert r.wait_for_steps(3)
    r.set(lr=0.15, transform_strength=1.0)  # the values it has: nothing to record
    r.set_target(Target(layer="conv2", unit=1))
    assert not r.recording.changed and "render(" in r.code()
    r.set(lr=0.1)  # a real change, queued after them: once it is applied, they were too
    assert wait(lambda: r.snapshot().settings.lr == 0.1)
    assert [(kind, value.lr) for _, kind, value in r.recording.events] == [("settings", 0.1)]


def test_exception_in_step_is_reported_and_loop_survives(runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r, _ = runner
    assert r.wait_for_steps(2)
    real_step = Renderer.step
    calls = {"n": 0}

    def flaky(self: Renderer) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated CUDA hiccup")
        return real_step(self)

    monkeypatch.setattr(Renderer, "step", flaky)
    assert wait(lambda: "simulated CUDA hiccup" in r.snapshot().error)
    assert "Traceback" in r.last_error and "flaky" in r.last_error
    step = r.snapshot().step
    assert wait(lambda: r.snapshot().step > step + 2)  # still serving


def test_pause_sends_one_lossless_png(runner: Any) -> None:
    r, sink = runner
    assert wait(lambda: len(sink.frames) >= 1)
    r.pause()
    assert wait(lambda: sink.frames[-1].mime == "image/png" and r.snapshot().state == "paused")
    n, looks = len(sink.frames), sink.looks
    assert wait(lambda: sink.looks >= looks + 2)  # two more rounds of the paused loop...
    assert len(sink.frames) == n  # ...and nothing more sent
    r.resume()
    assert wait(lambda: len(sink.frames) > n)


def test_no_frames_while_sink_not_ready_but_status_flows(tiny: FeatvizModel) -> None:
    sink = FakeSink(ready=False)
    r = LiveRunner(tiny, Target(layer="conv2", unit=1), RenderSettings(size=32), sink, fps=30)
    r.start()
    try:
        assert wait(lambda: len(sink.snapshots) >= 3)
        assert sink.frames == []
        assert r.image() is not None  # the snapshot still follows the image
    finally:
        r.close()


def test_close_stops_thread_and_stop_all(tiny: FeatvizModel) -> None:
    runners = [LiveRunner(tiny, Target(layer="conv2"), RenderSettings(size=32), FakeSink()) for _ in range(3)]
    for r in runners:
        r.start()
    assert stop_all() == 3
    assert not any(r.is_running for r in runners)
    assert not [t for t in threading.enumerate() if t.name.startswith("featviz-live")]


def test_loop_settles_idles_and_wakes_on_any_change(tiny: FeatvizModel) -> None:
    sink = FakeSink()
    r = LiveRunner(tiny, Target(layer="conv2", unit=1), RenderSettings(size=32), sink, settle=Settle(window=15))
    r.start()
    try:
        # (the snapshot is published just before its frame goes out)
        assert wait(lambda: r.snapshot().state == "settled" and sink.frames[-1].mime == "image/png")
        step = r.snapshot().step  # what stays on screen is lossless
        frames, looks = len(sink.frames), sink.looks
        assert wait(lambda: sink.looks >= looks + 3)  # the worker woke three times (its 1 s idle wait)...
        assert r.snapshot().step == step and len(sink.frames) == frames  # ...and neither stepped nor sent
        assert sink.looks < looks + 10  # it waits between rounds (no busy loop)
        assert not r.snapshot().stepping  # the Run button offers Run
        r.set(lr=0.1)  # any control wakes it
        assert wait(lambda: r.snapshot().step > step and r.snapshot().state == "running")
    finally:
        r.close()


def test_settle_detector() -> None:
    s = Settle(window=10, tolerance=0.02)
    rising = [float(i) for i in range(40)]
    assert not any(s.update(v) for v in rising)  # still rising: never settled
    s.reset()
    flat = [10.0 + (0.3 if i % 2 else -0.3) for i in range(19)]
    assert not any(s.update(v) for v in flat)  # fewer than two windows: undecided
    assert s.update(10.3)  # twenty values, no rise: settled
