"""Exploration modes headless: directions, interpolation, gallery, photos, exemplars, export."""

from __future__ import annotations

import gc
import io
import os
import struct
import weakref
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featviz_widgets.engine import Channel, Renderer, load_model
from featviz_widgets.engine.explore import (
    GALLERY_CACHE_SIZE,
    PerImage,
    StayClose,
    compare_directions,
    deepdream_photo,
    direction_from_photos,
    interpolate,
    layer_gallery,
    top_exemplars,
)
from featviz_widgets.engine.image.photos import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    PhotoError,
    has_photo,
    iter_photos,
    load_photo,
    sample_photo,
)
from featviz_widgets.engine.models import FeatvizModel, wrap_module
from featviz_widgets.engine.objectives import Context, Direction
from featviz_widgets.errors import InvalidSettingError

from .conftest import TinyNet


def test_compare_renders_channel_and_random_directions_with_identical_settings(tiny: FeatvizModel) -> None:
    sheet = compare_directions(tiny, "conv2", 2, n_random=2, direction_seed=7, steps=5, size=32, lr=0.1)
    assert len(sheet.images) == 3 and sheet.labels[0] == "conv2 channel 2"
    assert sheet.labels[1:] == ["random direction #7", "random direction #8"]
    assert sheet.settings["batch"] == 3 and sheet.settings["lr"] == 0.1 and sheet.settings["steps"] == 5
    assert "Channel('conv2', 2)" in sheet.settings["objective"] and sheet.settings["objective"].count("Direction(") == 2


def test_per_image_objective_rises_for_every_image(tiny: FeatvizModel) -> None:
    objectives = [Channel("conv2", 0), Direction.random("conv2", 6, seed=1)]
    r = Renderer(tiny, PerImage(objectives), batch=2, size=32, lr=0.1, seed=3)
    before = r.measure()
    r.run(25)
    assert (r.measure() > before).all()
    with pytest.raises(InvalidSettingError, match="batch of 3"):
        Renderer(tiny, PerImage(objectives), batch=3, size=32)


def test_interpolation_frames_share_a_component(tiny: FeatvizModel) -> None:
    sheet = interpolate(tiny, "conv2:0", "conv2:1", frames=4, steps=3, size=32)
    assert sheet.labels == ["alpha=0.00", "alpha=0.33", "alpha=0.67", "alpha=1.00"]
    assert sheet.settings["shared"] is True and sheet.strip().size == (4 * 32 + 3 * 4, 32)


def test_random_direction_is_seeded_unit_vector() -> None:
    a, b, c = (Direction.random("x", 10, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.vector, b.vector) and not torch.equal(a.vector, c.vector)
    assert a.vector.norm().item() == pytest.approx(1.0)


def test_direction_from_photos_is_difference_of_means(tiny: FeatvizModel) -> None:
    dark, bright = Image.new("RGB", (32, 32), (20, 20, 20)), Image.new("RGB", (32, 32), (230, 230, 230))
    v = direction_from_photos(tiny, "conv2", dark, bright)
    assert v.shape == (6,)
    with torch.no_grad():
        from featviz_widgets.engine.image.photos import pil_to_tensor
        from featviz_widgets.engine.layers import capture

        acts = capture(tiny, torch.cat([pil_to_tensor(dark), pil_to_tensor(bright)]), ["conv2"])["conv2"].mean((2, 3))
    assert torch.allclose(v, acts[1] - acts[0])


def test_gallery_renders_every_channel_and_caches(tiny: FeatvizModel) -> None:
    calls: list[tuple[int, int]] = []
    sheet = layer_gallery(tiny, "conv2", batch=4, steps=2, size=24, progress=lambda d, t: calls.append((d, t)))
    assert sheet.labels == [f"conv2:{c}" for c in range(6)] and len(sheet.images) == 6
    assert calls[-1] == (12, 12)
    again = layer_gallery(tiny, "conv2", batch=4, steps=2, size=24)
    assert again is sheet  # cached: instant on a second visit
    assert layer_gallery(tiny, "conv2", batch=4, steps=3, size=24) is not sheet  # other settings


def test_gallery_cache_keeps_the_latest_few_and_dies_with_its_model() -> None:
    """The cache is bounded (least recently used out first) and held per model object: a freed
    model's galleries go with it (a cache keyed on ``id(model)`` kept them, and could hand them
    to a new model that got the same id)."""
    torch.manual_seed(0)
    model = wrap_module(TinyNet(), input_size=32, name="tiny")
    sheets = [layer_gallery(model, "conv2", channels=[0], steps=1, size=16, seed=s) for s in range(GALLERY_CACHE_SIZE)]
    assert layer_gallery(model, "conv2", channels=[0], steps=1, size=16, seed=0) is sheets[0]  # now the latest
    layer_gallery(model, "conv2", channels=[0], steps=1, size=16, seed=GALLERY_CACHE_SIZE)  # one more: seed 1 goes
    assert layer_gallery(model, "conv2", channels=[0], steps=1, size=16, seed=0) is sheets[0]
    assert layer_gallery(model, "conv2", channels=[0], steps=1, size=16, seed=1) is not sheets[1]
    kept, gone = weakref.ref(model), weakref.ref(sheets[0])
    del model, sheets
    gc.collect()
    assert kept() is None and gone() is None


def test_deepdream_photo_keeps_size_and_changes_pixels(tiny: FeatvizModel) -> None:
    photo = Image.fromarray((np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8))
    out = deepdream_photo(tiny, photo, "conv2", octaves=2, steps_per_octave=3)
    assert out.size == (60, 40)
    assert np.abs(np.asarray(out, np.float32) - np.asarray(photo, np.float32)).mean() > 1


def test_stay_close_penalty_is_mean_squared_distance() -> None:
    ref = torch.zeros(1, 3, 4, 4)
    img = torch.full((1, 3, 4, 4), 0.5)
    assert StayClose(ref)(Context({}, img)).item() == pytest.approx(0.25)
    # Compared and hashed by value, like every objective: equal photos are one objective.
    same, other = StayClose(ref.clone()), StayClose(ref + 0.1)
    assert StayClose(ref) == same and hash(StayClose(ref)) == hash(same) and StayClose(ref) != other
    assert len({StayClose(ref), same, other}) == 2
    given = StayClose(ref)
    ref += 1  # the objective keeps the photo as it was given
    assert given == same


def test_exemplars_ranked_by_activation() -> None:
    brightness = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        brightness.weight.fill_(1 / 3)
        brightness.bias.zero_()
    model = load_model(nn.Sequential(brightness), input_size=32)
    levels = [30, 200, 120, 250, 90]
    photos = [(f"grey{v}", Image.new("RGB", (40, 40), (v, v, v))) for v in levels]
    found = top_exemplars(model, "0:0", photos, k=3, crops_per_side=1, input_size=16, batch=2)
    assert [e.source for e in found] == ["grey250", "grey200", "grey120"]
    assert found[0].score == pytest.approx(250 / 255, abs=1e-3)
    assert [e.score for e in found] == sorted((e.score for e in found), reverse=True)


def test_exemplars_default_to_bundled_samples(tiny: FeatvizModel) -> None:
    found = top_exemplars(tiny, "conv2:1", k=2, input_size=32)
    assert len(found) == 2 and found[0].source in ("chelsea", "coffee", "astronaut", "rocket")


def test_a_folder_of_photos_is_walked_in_name_order_and_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Folders and files interleave by name at every level, as sorted(rglob) orders them; files
    # that are not images, or do not decode, are skipped; a symlinked folder is not entered.
    tree = ["a.png", "a/b.png", "a/c/d.jpg", "a-b.png", "B.png", "z/notes.txt", "z/broken.png", "z/ok.PNG"]
    for name in tree:
        path = tmp_path / "photos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("notes.txt") or name.endswith("broken.png"):
            path.write_bytes(b"not an image")
        else:
            Image.new("RGB", (8, 8), (10, 20, 30)).save(path, format="PNG")
    (tmp_path / "photos" / "link").symlink_to(tmp_path / "photos" / "a")
    root = tmp_path / "photos"
    names = [str(Path(n).relative_to(root)) for n, _ in iter_photos(root)]
    expected = [
        str(p.relative_to(root))
        for p in sorted(root.rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.name != "broken.png"
    ]
    assert names == expected == ["B.png", "a/b.png", "a/c/d.jpg", "a-b.png", "a.png", "z/ok.PNG"]
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("no photo")
    (tmp_path / "none" / "broken.jpg").write_bytes(b"not a jpeg")
    assert not has_photo(tmp_path / "none")
    # The first photo of a large tree comes without listing the rest of it.
    listed: list[str] = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: (listed.append(str(p)), scandir(p))[1])
    assert has_photo(root)
    assert listed == [str(root)]  # B.png is at the top: no folder below it was read


# --- photos: every kind of bad upload --------------------------------------------------------


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_upload_not_an_image() -> None:
    with pytest.raises(PhotoError, match="not an image"):
        load_photo(b"hello, I am text", name="notes.txt")


def test_upload_truncated() -> None:
    data = _png_bytes(Image.new("RGB", (64, 64), "red"))
    buf = io.BytesIO()
    Image.effect_noise((200, 200), 50).convert("RGB").save(buf, format="JPEG")
    with pytest.raises(PhotoError, match=r"truncated|not an image"):
        load_photo(buf.getvalue()[:600], name="cut.jpg")
    with pytest.raises(PhotoError):
        load_photo(data[: len(data) // 2], name="cut.png")


def test_upload_decompression_bomb() -> None:
    # A valid PNG header claiming 30000 x 30000 pixels (900 megapixels) and almost no data.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(PhotoError, match="megapixels"):
        load_photo(bomb, name="bomb.png")
    assert MAX_PIXELS < 30000 * 30000


def test_upload_too_many_bytes() -> None:
    with pytest.raises(PhotoError, match="MB"):
        load_photo(b"\x00" * (26 * 1024 * 1024), name="huge.bin")


@pytest.mark.parametrize("mode", ["I;16", "RGBA", "CMYK", "P", "L", "LA"])
def test_upload_modes_become_rgb(mode: str) -> None:
    if mode == "I;16":
        img = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    else:
        img = Image.new("RGB", (64, 64), (200, 30, 30)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="TIFF" if mode in ("CMYK", "I;16") else "PNG")
    out = load_photo(buf.getvalue(), name=f"{mode}.img")
    assert out.mode == "RGB" and out.size == (64, 64)


def test_large_photo_is_downscaled() -> None:
    out = load_photo(_png_bytes(Image.new("RGB", (3000, 1500), "blue")), max_side=512)
    assert out.size == (512, 256)


def test_sample_photos() -> None:
    assert sample_photo("chelsea").mode == "RGB"
    with pytest.raises(PhotoError, match="valid: chelsea"):
        sample_photo("dog")


def test_missing_photo_path(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="not a file"):
        load_photo(tmp_path / "none.jpg")


@pytest.mark.parametrize("job", ["compare", "interpolate", "gallery", "deepdream"])
def test_long_jobs_stop_when_cancelled(tiny: FeatvizModel, job: str) -> None:
    """Every batch job checks the widget's cancel event before each step: closing the widget (or
    starting over) does not wait for the rest of the steps."""
    import threading

    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 3:
            cancel.set()

    run = {
        "compare": lambda: compare_directions(tiny, "conv2", 0, steps=50, size=24, progress=progress, cancel=cancel),
        "interpolate": lambda: interpolate(
            tiny, "conv2:0", "conv2:1", frames=2, steps=50, size=24, progress=progress, cancel=cancel
        ),
        "gallery": lambda: layer_gallery(tiny, "conv2", steps=50, size=24, progress=progress, cancel=cancel),
        "deepdream": lambda: deepdream_photo(
            tiny, Image.new("RGB", (32, 32), "gray"), "conv2:0", octaves=2, progress=progress, cancel=cancel
        ),
    }[job]
    with pytest.raises(InterruptedError):
        run()
    assert len(seen) == 3  # the fourth step never ran
