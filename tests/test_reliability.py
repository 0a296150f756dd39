"""Reliability: bad input everywhere, odd models, memory faults, lifecycle, security."""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from featviz_widgets.cli import main as cli
from featviz_widgets.engine import Channel, Renderer, RenderSettings, list_layers, load_model, render
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.errors import (
    ChannelRangeError,
    InvalidSettingError,
    ObjectiveSyntaxError,
    UnknownLayerError,
)
from featviz_widgets.runner.live import LiveRunner
from featviz_widgets.runner.target import Target
from featviz_widgets.view import Dreamer

from .conftest import wait

ROOT = Path(__file__).resolve().parents[1]
HANG = 1800  # seconds: a subprocess that takes longer hangs (a guard, not a speed limit)


# --- bad input in the widget (the headless API and CLI are covered in test_engine/test_cli) ----


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("lr", math.nan), "learning rate"),
        (("lr", math.inf), "learning rate"),
        (("lr", 0.0), "learning rate"),
        (("lr", -0.5), "learning rate"),
        (("l1", math.nan), "l1 weight"),
        (("tv", math.inf), "tv weight"),  # (a slider position: its weight is 300 * position**2)
        (("blur", 1e12), "blur weight"),
        (("size", 0), "16 to 4096"),
        (("size", 1), "16 to 4096"),
        (("size", 100000), "16 to 4096"),
        (("batch", 0), "batch"),
        (("transform", -1.0), "strength"),
    ],
)
def test_widget_bad_settings_show_message_and_loop_keeps_running(
    dreamer: Dreamer, change: tuple[str, Any], message: str
) -> None:
    assert dreamer.wait_for_steps(2)
    assert not dreamer.apply(*change)  # what the control's observer does with the value
    assert message in dreamer.status.value
    step = dreamer.runner.snapshot().step
    assert wait(lambda: dreamer.runner.snapshot().step > step + 2)
    assert dreamer.runner.settings.lr == 0.05 and dreamer.runner.settings.size == 32


@pytest.mark.parametrize(
    ("target", "error"),
    [
        (Target(layer="nope"), UnknownLayerError),
        (Target(layer="conv2", unit=6), ChannelRangeError),
        (Target(mode="class", unit=5), ChannelRangeError),
        (Target(mode="custom", expression="conv2:1 +"), ObjectiveSyntaxError),
        (Target(mode="custom", expression="__import__('os').system('echo hi')"), ObjectiveSyntaxError),
        (Target(mode="mix", layer="conv2", alpha=2.0), InvalidSettingError),
        (Target(mode="warp"), InvalidSettingError),
    ],
)
def test_widget_bad_targets_are_refused(dreamer: Dreamer, target: Target, error: type[Exception]) -> None:
    with pytest.raises(error):
        dreamer.runner.set_target(target)
    assert not dreamer.apply_target(target)  # what the target controls' observer does with it
    assert "⚠" in dreamer.status.value
    assert dreamer.runner.target.layer == "conv2" and dreamer.runner.target.unit == 0


def test_widget_bad_seed(dreamer: Dreamer) -> None:
    with pytest.raises(InvalidSettingError, match="seed"):
        dreamer.runner.reset(seed="7")  # type: ignore[arg-type]


def test_widget_unknown_start_layer_and_backend(tiny: FeatvizModel, comms: None) -> None:
    with pytest.raises(UnknownLayerError, match="conv2"):
        Dreamer(tiny, layer="conv9")
    with pytest.raises(ValueError, match="backend"):
        Dreamer(tiny, backend="svg")


@pytest.mark.parametrize(
    "flags", [["--size", "0"], ["--size", "100000"], ["--lr", "inf"], ["--lr", "0"], ["--l1", "-2"], ["--tv", "nan"]]
)
def test_cli_more_bad_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    assert cli(["render", *flags, "-o", str(tmp_path / "x.png"), "--quiet"]) == 2
    assert "featviz: error:" in capsys.readouterr().err


def test_cli_seed_must_be_integer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(["render", "--seed", "1.5", "-o", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2 and "invalid int value" in capsys.readouterr().err


# --- odd models -----------------------------------------------------------------------------------


class Tokens(nn.Module):
    """A toy vision transformer: 4x4 patches -> tokens (N, 1 + 16, 8), a class token first."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1)
        t = self.mix(t)
        return self.head(t[:, 0])


def test_token_layer_is_reshaped_to_a_grid() -> None:
    torch.manual_seed(0)
    model = load_model(Tokens(), input_size=16)
    info = {i.name: i for i in list_layers(model)}
    assert info["mix"].shape == (17, 8) and info["mix"].channels == 8
    r = Renderer(model, Channel("mix", 3), size=16, lr=0.1)
    before = r.measure().item()
    r.run(20)
    assert r.measure().item() > before
    with pytest.raises(ChannelRangeError, match="0 to 7"):
        Renderer(model, Channel("mix", 8), size=16)


def test_model_raising_mid_run_is_reported_by_the_loop(tiny: FeatvizModel) -> None:
    class Sink:
        def ready(self) -> bool:
            return True

        def publish(self, frame: Any, snapshot: Any) -> None:
            pass

        def abandoned(self) -> bool:
            return False

        def revive(self) -> None:
            pass

    runner = LiveRunner(tiny, Target(layer="conv2"), RenderSettings(size=32), Sink())
    runner.start()
    try:
        assert runner.wait_for_steps(2)
        calls = {"n": 0}

        def hook(*_: Any) -> None:
            calls["n"] += 1
            if calls["n"] <= 3:
                raise ValueError("bad batch norm state")

        handle = tiny.net.conv1.register_forward_hook(hook)
        assert wait(lambda: "bad batch norm state" in runner.snapshot().error)
        handle.remove()
        step = runner.snapshot().step
        assert wait(lambda: runner.snapshot().step > step + 2)
    finally:
        runner.close()


def test_model_on_missing_device_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InvalidSettingError, match="CUDA is not available"):
        load_model(nn.Sequential(nn.Conv2d(3, 2, 3)), device="cuda")
    with pytest.raises(InvalidSettingError, match="Unknown device"):
        load_model(nn.Sequential(nn.Conv2d(3, 2, 3)), device="tpu9")


def test_render_out_of_memory_halves_the_size(tiny: FeatvizModel, monkeypatch: pytest.MonkeyPatch) -> None:
    real_step = Renderer.step
    calls = {"n": 0}

    def step(self: Renderer) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self)

    monkeypatch.setattr(Renderer, "step", step)
    with pytest.warns(RuntimeWarning, match="continuing at 32 px"):
        result = render(tiny, "conv2:1", steps=4, size=64, progress=False)
    assert result.image.size == (32, 32) and result.settings["steps"] == 4


def test_live_out_of_memory_falls_back_and_says_so(dreamer: Dreamer, monkeypatch: pytest.MonkeyPatch) -> None:
    dreamer.runner.set(size=64)
    assert wait(lambda: dreamer.runner.snapshot().settings.size == 64)
    real_step = Renderer.step
    calls = {"n": 0}

    def step(self: Renderer) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real_step(self)

    monkeypatch.setattr(Renderer, "step", step)
    assert wait(lambda: dreamer.runner.snapshot().settings.size == 32 and dreamer.runner.settings.size == 32)
    assert wait(lambda: "continuing at 32 px" in dreamer.status.value)
    step_now = dreamer.runner.snapshot().step
    assert wait(lambda: dreamer.runner.snapshot().step > step_now + 2)


# --- lifecycle ------------------------------------------------------------------------------------


def test_close_in_the_middle_of_a_step(tiny: FeatvizModel, comms: None, monkeypatch: pytest.MonkeyPatch) -> None:
    d = Dreamer(tiny, layer="conv2", size=32)
    assert d.wait_for_steps(2)
    real_step = Renderer.step
    in_step = threading.Event()

    def slow_step(self: Renderer) -> Any:
        in_step.set()
        time.sleep(0.3)
        return real_step(self)

    monkeypatch.setattr(Renderer, "step", slow_step)
    assert in_step.wait(5)
    d.close()  # while the worker sleeps inside a step
    assert not d.runner.is_running and d.runner.last_error is None


def test_rerunning_a_cell_closes_its_previous_widget(
    tiny: FeatvizModel, comms: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featviz_widgets.view import cells

    monkeypatch.setattr(cells, "current_cell_id", lambda: "cell-42")
    first = Dreamer(tiny, layer="conv2", size=32)
    second = Dreamer(tiny, layer="conv2", size=32)
    try:
        assert first.closed and not first.runner.is_running
        assert second.runner.is_running
        monkeypatch.setattr(cells, "current_cell_id", lambda: "cell-43")
        third = Dreamer(tiny, layer="conv2", size=32)
        assert second.runner.is_running and third.runner.is_running  # other cells keep theirs
        third.close()
    finally:
        second.close()


def test_two_widgets_share_one_model(tiny: FeatvizModel, comms: None) -> None:
    a = Dreamer(tiny, layer="conv2", channel=1, size=32)
    b = Dreamer(tiny, layer="conv1", channel=2, size=32)
    try:
        assert a.wait_for_steps(30) and b.wait_for_steps(30)
        assert not a.runner.snapshot().error and not b.runner.snapshot().error
        # each loop saw its own layer (hooks belong to the thread that runs the forward pass)
        assert a.runner.snapshot().objective > 0 and b.runner.snapshot().objective > 0
    finally:
        a.close()
        b.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _featviz_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("featviz-")]


@pytest.mark.slow
def test_fifty_create_close_cycles_free_threads_and_memory(tiny: FeatvizModel, comms: None) -> None:
    def cycle() -> weakref.ref[Dreamer]:
        d = Dreamer(tiny, layer="conv2", size=32)
        d.wait_for_steps(1)
        d.close()
        return weakref.ref(d)

    for _ in range(5):  # warm-up: allocator pools, caches
        cycle()
    gc.collect()
    start = _rss_mb()
    refs = [cycle() for _ in range(50)]
    gc.collect()
    assert not _featviz_threads()
    assert sum(r() is not None for r in refs) == 0, "closed widgets are still referenced"
    assert _rss_mb() - start < 50


@pytest.mark.slow
def test_soak_random_control_changes(comms: None) -> None:
    """2,000 random control changes on a running widget (embedded model, 64 px), 20 ms apart: a
    count, not a time window (a loaded machine takes longer, and must still pass)."""
    import random

    d = Dreamer(size=64, fps=15)
    w = d.image_widget
    from .conftest import browser_says

    browser_says(w, {"type": "visibility", "view": "soak", "visible": True})
    c = d.controls
    rng = random.Random(1)
    actions = [
        lambda: setattr(c.unit, "value", rng.randrange(c.unit.max + 1)),
        lambda: setattr(c.layer, "value", rng.choice([o[1] for o in c.layer.options[:12]])),
        lambda: setattr(c.mode, "value", rng.choice(["channel", "neuron", "deepdream", "class", "direction", "mix"])),
        lambda: setattr(c.lr, "value", rng.choice(c.lr.options)),
        lambda: setattr(c.l1, "value", rng.random()),
        lambda: setattr(c.tv, "value", rng.random()),
        lambda: setattr(c.blur, "value", rng.random()),
        lambda: setattr(c.transform, "value", rng.uniform(0, 2)),
        lambda: setattr(c.size, "value", rng.choice([64, 96])),
        lambda: setattr(c.seed, "value", rng.randrange(1000)),
        lambda: setattr(c.alpha, "value", round(rng.random(), 2)),
        lambda: setattr(c.batch, "value", rng.choice([1, 2])),
        lambda: c.run.click() if rng.random() < 0.3 else None,
        lambda: d.apply("lr", rng.choice([math.nan, -1.0, math.inf])),  # bad values too
        lambda: browser_says(w, {"type": "ack", "seq": w.seq}),
    ]
    try:
        assert d.wait_for_steps(3, timeout=60)
        gc.collect()
        start_rss, start_threads = _rss_mb(), len(threading.enumerate())
        frames_before = d.frames_shown
        for _ in range(2000):
            rng.choice(actions)()
            time.sleep(0.02)
        assert d.frames_shown > frames_before  # frames went out during the changes...
        if d.runner.paused:
            c.run.click()
        browser_says(w, {"type": "ack", "seq": w.seq})
        shown = d.frames_shown
        assert wait(lambda: d.frames_shown > shown, 120), d.runner.snapshot()  # ...and keep coming after
        assert d.runner.last_error is None, d.runner.last_error
        assert d.runner.is_running and len(threading.enumerate()) <= start_threads
        gc.collect()
        assert _rss_mb() - start_rss < 100
    finally:
        d.close()
    assert not _featviz_threads()


# --- security -------------------------------------------------------------------------------------

NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise RuntimeError("network access attempted")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
import featviz_widgets
from featviz_widgets import load_model, render
model = load_model()
result = render(model, "blocks.3:2", steps=2, size=32, progress=False)
assert result.image.size == (32, 32)
print("OK")
"""


def test_no_network_at_import_or_with_the_embedded_model(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", NO_NETWORK], capture_output=True, text=True, cwd=tmp_path, timeout=HANG)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr
    assert list(tmp_path.iterdir()) == []  # and nothing written where nobody asked


def test_widget_writes_no_files_unless_asked(
    tiny: FeatvizModel, comms: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    d = Dreamer(tiny, layer="conv2", size=32)
    try:
        assert d.wait_for_steps(10)
        d.download()
        d.timelapse_gif()
        d.export.path.value = "notes.txt"
        d.export.save()  # not a .png name: refuses
        assert "does not end in .png" in d.export.message.value
    finally:
        d.close()
    assert list(tmp_path.iterdir()) == []
