"""The time-lapse: even coverage of a whole run in bounded memory, and a GIF under its size bound."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from featviz_widgets.engine.core.timelapse import Timelapse, TimelapseError
from featviz_widgets.errors import FeatvizError, InvalidSettingError


def frame(step: int, side: int = 8) -> np.ndarray:
    """A frame that carries its step in its pixels (red = step % 256, green = step // 256)."""
    f = np.zeros((side, side, 3), np.uint8)
    f[..., 0], f[..., 1] = step % 256, (step // 256) % 256
    return f


def test_frames_span_the_whole_run_evenly_after_many_adds() -> None:
    t = Timelapse(max_frames=16)
    for step in range(1, 10_001):
        t.add(step, frame(step))
    steps = t.steps()
    assert steps[0] == 1  # the first frame of the run survives every thinning
    assert steps[-1] == 10_000  # the newest frame ends the film
    samples = steps[:-1] if steps[-1] - steps[-2] != steps[1] - steps[0] else steps
    gaps = np.diff(samples)
    assert len(set(gaps.tolist())) == 1  # evenly spaced
    assert gaps[0] == 1024 and t.interval == 1024
    assert 8 <= len(samples) <= 16
    assert steps[-1] - samples[-1] < t.interval
    # the frames are the pictures of those steps, oldest first
    assert [int(f[0, 0, 0]) + 256 * int(f[0, 0, 1]) for f in t.frames()] == steps


def test_memory_stays_bounded_however_long_the_run() -> None:
    t = Timelapse(max_frames=32)
    sizes = []
    for step in range(50_000):
        t.add(step, frame(step, side=4))
        if step % 5000 == 4999:
            sizes.append((len(t), t.nbytes))
    assert max(n for n, _ in sizes) <= 33  # max_frames + the newest
    assert max(b for _, b in sizes) <= 33 * 4 * 4 * 3


def test_due_skips_frames_between_samples_and_add_copies() -> None:
    t = Timelapse(max_frames=4, interval=4)
    assert t.due(0) and t.add(0, frame(0))
    assert not t.due(3) and not t.add(3, frame(3))  # kept only as the newest frame
    assert t.steps() == [0, 3]
    f = frame(4)
    assert t.add(4, f)
    f[:] = 255  # the caller's array may be reused
    assert t.frames()[-1][0, 0, 0] == 4 and t.steps() == [0, 4]


def test_a_restarted_run_and_clear_start_over() -> None:
    t = Timelapse(max_frames=4)
    for step in range(100):
        t.add(step, frame(step))
    assert t.interval > 1
    t.add(2, frame(2))  # the step went back: a new run
    assert t.steps() == [2] and t.interval == 1
    t.clear()
    assert len(t) == 0 and t.frames() == []


def test_gif_spans_the_run_and_stays_under_its_size_bound() -> None:
    rng = np.random.default_rng(0)
    t = Timelapse(max_frames=64)
    for step in range(400):
        t.add(step, rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))  # noise: the worst case for LZW
    data = t.to_gif(fps=10, max_bytes=200_000)
    assert len(data) <= 200_000
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.n_frames >= 8
    gif.seek(gif.n_frames - 1)
    assert gif.info["duration"] == 1000  # the last picture is held
    gif.seek(0)
    assert gif.info["duration"] == 100 and gif.info.get("loop") == 0
    # A small film fits whole, at full size.
    small = Timelapse()
    for step in range(5):
        small.add(step, frame(step * 50, side=32))  # colours far apart: the palette keeps them apart
    img = Image.open(io.BytesIO(small.to_gif()))
    assert img.n_frames == 5 and img.size == (32, 32)


def test_gif_shrinks_frames_when_few_frames_still_exceed_the_bound() -> None:
    rng = np.random.default_rng(1)
    t = Timelapse(max_frames=8)
    for step in range(8):
        t.add(step, rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))
    data = t.to_gif(max_bytes=50_000)
    assert len(data) <= 50_000
    assert Image.open(io.BytesIO(data)).size[0] < 200


def test_empty_timelapse_and_bad_input_get_clear_errors() -> None:
    t = Timelapse()
    with pytest.raises(TimelapseError, match="No frames recorded yet"):
        t.to_gif()
    assert issubclass(TimelapseError, FeatvizError)
    with pytest.raises(InvalidSettingError, match=r"\(H, W, 3\) uint8"):
        t.add(0, np.zeros((4, 4), np.uint8))
    with pytest.raises(InvalidSettingError, match=r"\(H, W, 3\) uint8"):
        t.add(0, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InvalidSettingError, match="step"):
        t.add(-1, frame(0))
    with pytest.raises(InvalidSettingError, match="max_frames"):
        Timelapse(max_frames=1)
    t.add(0, frame(0))
    with pytest.raises(InvalidSettingError, match="fps"):
        t.to_gif(fps=0)
