"""The atlas in-process: every unit once, exact resume, the site's pages, clear errors."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from featviz_widgets import InvalidSettingError, UnknownLayerError
from featviz_widgets.atlas import AtlasStorageError, render_atlas, reproduce_code
from featviz_widgets.atlas import build as build_module
from featviz_widgets.atlas import store as store_module
from featviz_widgets.atlas.plan import FORMAT, Chunk
from featviz_widgets.engine import maco_recipe
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.export import read_settings

ROOT = Path(__file__).resolve().parents[1]
FAST = {"steps": 3, "size": 32, "threads": 1, "progress": False}


def tiles(out: Path, key: str, layer: str) -> dict[int, np.ndarray]:
    folder = out / "tiles" / key / layer
    return {int(p.stem): np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def lite_atlas(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The embedded model's ``stem`` (32 channels) in chunks of 8, tiny steps."""
    out = tmp_path_factory.mktemp("lite") / "atlas"
    return render_atlas(None, out=out, layers=["stem"], chunk=8, **FAST)


def test_embedded_layer_every_channel_once(lite_atlas: Any) -> None:
    r = lite_atlas
    assert (r.total, r.skipped, r.tiles_rendered) == (32, 0, 32)
    assert r.rendered == [("stem", 0), ("stem", 8), ("stem", 16), ("stem", 24)]
    got = tiles(r.out, r.key, "stem")
    assert sorted(got) == list(range(32))
    assert all(a.shape == (32, 32, 3) for a in got.values())
    assert len({a.tobytes() for a in got.values()}) == 32  # 32 different pictures
    # The PNG carries what Dreamer.load reads, and the atlas's own record.
    s = read_settings(r.out / "tiles" / r.key / "stem" / "5.png")
    assert s["target"] == {"mode": "channel", "layer": "stem", "unit": 5}
    assert (s["size"], s["seed"], s["steps"], s["lr"]) == (32, 0, 3, 0.15)
    assert s["atlas"] == {"key": r.key, "chunk": [0, 8], "threads": 1}
    assert s["objective"] == "Channel('stem', 5)"
    manifest = json.loads((r.out / "atlas.json").read_text())
    assert manifest["settings"]["threads"] == 1 and manifest["settings"]["chunk"] == 8
    assert manifest["format"] == FORMAT == 3  # the format the tiles are keyed with
    assert manifest["layers"] == [{"name": "stem", "kind": "channel", "units": 32, "of": 32}]
    assert leftovers(r.out) == []


def test_site_pages_present_and_linked(lite_atlas: Any) -> None:
    out = lite_atlas.out
    index = (out / "index.html").read_text()
    links = re.findall(r"href='([^']+)'", index)
    assert "layers/stem.html" in links
    layer_page = out / "layers" / "stem.html"
    html = layer_page.read_text()
    imgs = re.findall(r"<img src='([^']+)'", html)
    units = re.findall(r"href='(\.\./units/stem/\d+\.html)'", html)
    assert len(imgs) == len(units) == 32
    for src, href in zip(imgs, units, strict=True):
        assert (layer_page.parent / src).resolve().is_file()
        unit_page = (layer_page.parent / href).resolve()
        assert unit_page.is_file()
    page = (out / "units" / "stem" / "7.html").read_text()
    assert "../../tiles/" in page and "../../layers/stem.html" in page and "../../index.html" in page
    assert "BatchChannels(&#x27;stem&#x27;, tuple(range(0, 8)))" in page  # the code, escaped
    assert "rel='next' href='8.html'" in page and "rel='prev' href='6.html'" in page


def test_reproduce_code_gives_the_tile(lite_atlas: Any) -> None:
    r = lite_atlas
    manifest = json.loads((r.out / "atlas.json").read_text())
    code = reproduce_code(manifest, Chunk("stem", "channel", 8, 16), 11)
    scope: dict[str, Any] = {}
    exec(code, scope)
    np.testing.assert_array_equal(np.asarray(scope["image"]), tiles(r.out, r.key, "stem")[11])


def test_maco_recipe_atlas_writes_its_manifest_and_reproduces(tmp_path: Path) -> None:
    # A transform among the render settings (MaCo's recipe has one) stopped the run at the
    # manifest with a TypeError: a TransformConfig is not JSON. Now it is written as plain data,
    # and the tile's own reproduce code reads it back into the same pixels.
    r = render_atlas(None, out=tmp_path, layers=["stem"], chunk=4, max_units=4, **FAST, **maco_recipe())
    manifest = json.loads((tmp_path / "atlas.json").read_text())
    render = manifest["settings"]["render"]
    assert render["param"] == "maco" and render["transform"]["noise"] == maco_recipe()["transform"].noise
    code = reproduce_code(manifest, Chunk("stem", "channel", 0, 4), 2)
    scope: dict[str, Any] = {}
    exec(code, scope)
    np.testing.assert_array_equal(np.asarray(scope["image"]), tiles(tmp_path, r.key, "stem")[2])
    assert read_settings(tmp_path / "tiles" / r.key / "stem" / "2.png")["param"] == "maco"


@pytest.mark.parametrize(
    "damage",
    [
        {"render": "abc"},
        {"render": [1, 2]},
        {"render": {"transform": {"zoom": 2}}},
        {"render": {"transform": "strong"}},
        {"colour": "red"},
        {"steps": None},
    ],
)
def test_reproduce_code_refuses_damaged_settings(lite_atlas: Any, damage: dict[str, Any]) -> None:
    # reproduce_code is public: a manifest edited by hand gets a clear refusal, not a TypeError
    # from deep inside, nor code that renders something else.
    manifest = json.loads((lite_atlas.out / "atlas.json").read_text())
    settings = {**manifest["settings"], **damage}
    if damage.get("steps", 0) is None:
        del settings["steps"]
    with pytest.raises(InvalidSettingError):
        reproduce_code({**manifest, "settings": settings}, Chunk("stem", "channel", 0, 8), 1)


def test_resume_after_interrupt_renders_only_the_rest(
    tiny: FeatvizModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = render_atlas(tiny, out=tmp_path / "whole", layers=["conv2"], chunk=2, **FAST)
    assert whole.rendered == [("conv2", 0), ("conv2", 2), ("conv2", 4)]

    real = build_module.run_local

    def dies_after_first(*args: Any, **kwargs: Any) -> Any:
        it = real(*args, **kwargs)
        yield next(it)
        raise KeyboardInterrupt  # the run is killed after its first chunk

    monkeypatch.setattr(build_module, "run_local", dies_after_first)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        render_atlas(tiny, out=out, layers=["conv2"], chunk=2, **FAST)
    first = {p: p.stat().st_mtime_ns for p in (out / "tiles").rglob("*.png")}
    assert len(first) == 2
    monkeypatch.setattr(build_module, "run_local", real)
    again = render_atlas(tiny, out=out, layers=["conv2"], chunk=2, **FAST)
    assert (again.skipped, again.tiles_rendered, again.rendered) == (2, 4, [("conv2", 2), ("conv2", 4)])
    assert {p: p.stat().st_mtime_ns for p in first} == first  # finished tiles never rewritten
    assert again.key == whole.key
    a, b = tiles(out, again.key, "conv2"), tiles(whole.out, whole.key, "conv2")
    assert sorted(a) == sorted(b) == list(range(6))
    for u in a:
        np.testing.assert_array_equal(a[u], b[u])
    # Run once more: nothing left to do.
    assert render_atlas(tiny, out=out, layers=["conv2"], chunk=2, **FAST).rendered == []


def test_changed_setting_renders_anew(tiny: FeatvizModel, tmp_path: Path) -> None:
    a = render_atlas(tiny, out=tmp_path, layers=["conv1"], chunk=4, **FAST)
    b = render_atlas(tiny, out=tmp_path, layers=["conv1"], chunk=4, **{**FAST, "steps": 4})
    c = render_atlas(tiny, out=tmp_path, layers=["conv1"], chunk=4, tv=0.5, **FAST)
    assert len({a.key, b.key, c.key}) == 3
    assert [r.tiles_rendered for r in (a, b, c)] == [4, 4, 4]
    assert sorted(tiles(tmp_path, a.key, "conv1")) == list(range(4))  # the old tiles stay
    assert json.loads((tmp_path / "atlas.json").read_text())["key"] == c.key  # the site shows the latest
    same = render_atlas(tiny, out=tmp_path, layers=["conv1"], chunk=4, lr=0.15, tv=0.0, **FAST)  # the defaults
    assert (same.key, same.tiles_rendered) == (a.key, 0)


def test_logits_are_classes(tiny: FeatvizModel, tmp_path: Path) -> None:
    r = render_atlas(tiny, out=tmp_path, layers=["conv1"], logits=True, chunk=4, **FAST)
    assert r.total == 4 + 5 and sorted(tiles(tmp_path, r.key, "logits")) == list(range(5))
    s = read_settings(tmp_path / "tiles" / r.key / "logits" / "3.png")
    assert s["target"] == {"mode": "class", "layer": "logits", "unit": 3}
    assert "PerImage([ClassLogit(u, layer=" in (tmp_path / "units" / "logits" / "3.html").read_text()


def test_full_disk_keeps_finished_tiles(tiny: FeatvizModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store_module.save_png
    calls = {"n": 0}

    def fills_up(image: Any, path: Any, settings: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # the second tile of the second chunk
            Path(path).write_bytes(b"half a PNG")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(image, path, settings)

    monkeypatch.setattr(store_module, "save_png", fills_up)
    with pytest.raises(AtlasStorageError, match=r"the disk is full.*resume"):
        render_atlas(tiny, out=tmp_path, layers=["conv2"], chunk=2, **FAST)
    assert leftovers(tmp_path) == []
    key = json.loads((tmp_path / "atlas.json").read_text())["key"]
    assert sorted(tiles(tmp_path, key, "conv2")) == [0, 1, 2]  # tile 3 never half-written
    monkeypatch.setattr(store_module, "save_png", real)
    again = render_atlas(tiny, out=tmp_path, layers=["conv2"], chunk=2, **FAST)
    assert again.rendered == [("conv2", 2), ("conv2", 4)] and sorted(tiles(tmp_path, key, "conv2")) == list(range(6))


def test_unwritable_folder(tiny: FeatvizModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:  # root writes anywhere: refuse the write the way a read-only folder does
        real = store_module.tempfile.mkstemp

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(store_module.tempfile, "mkstemp", refuse)
    else:
        tmp_path.chmod(0o500)
    try:
        with pytest.raises(AtlasStorageError, match="is not writable"):
            render_atlas(tiny, out=tmp_path, layers=["conv1"], **FAST)
    finally:
        tmp_path.chmod(0o700)
        if os.geteuid() == 0:
            monkeypatch.setattr(store_module.tempfile, "mkstemp", real)


def test_out_is_a_file(tiny: FeatvizModel, tmp_path: Path) -> None:
    f = tmp_path / "atlas.html"
    f.write_text("x")
    with pytest.raises(AtlasStorageError, match="is a file; give a folder"):
        render_atlas(tiny, out=f, **FAST)


def test_unknown_layer(tiny: FeatvizModel, tmp_path: Path) -> None:
    with pytest.raises(
        UnknownLayerError, match=r"Unknown layer 'conv3'.*Did you mean 'conv2', 'conv1'.*Valid layers: conv1"
    ):
        render_atlas(tiny, out=tmp_path, layers=["conv1", "conv3"], **FAST)
    assert not (tmp_path / "tiles").exists()


UNREACHABLE = """
import http.server, socket, sys, threading, time
import ray  # imported before the clock starts: only the connection is timed
from featviz_widgets.atlas.ray_backend import connect
from featviz_widgets.atlas import RayUnavailableError
silent = socket.socket(); silent.bind(("127.0.0.1", 0)); silent.listen(8)  # accepts, never answers
closed = socket.socket(); closed.bind(("127.0.0.1", 0)); port = closed.getsockname()[1]; closed.close()
web = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers, not Ray
threading.Thread(target=web.serve_forever, daemon=True).start()
for address in (f"127.0.0.1:{port}", f"127.0.0.1:{silent.getsockname()[1]}", "not an address",
                f"127.0.0.1:{web.server_address[1]}"):
    t0 = time.monotonic()
    try:
        connect(address, timeout=2)
        print("connected?!")
    except RayUnavailableError as exc:
        print(round(time.monotonic() - t0, 1), exc)
sys.stdout.flush()
import os; os._exit(0)
"""


@pytest.mark.slow  # imports Ray in a fresh process (~7 s)
@pytest.mark.xdist_group("ray")
def test_unreachable_ray_address_errors_within_seconds() -> None:
    pytest.importorskip("ray")
    done = subprocess.run([sys.executable, "-c", UNREACHABLE], capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4, done.stdout + done.stderr[-2000:]
    refused, silent, bad, web = (line.split(" ", 1) for line in lines)
    # Bounded, not hung: the messages tell the paths apart; the times only guard against a hang
    # (a loaded machine may take seconds to run anything).
    assert "does not answer" in refused[1] and "--ray local" in refused[1] and float(refused[0]) < 60
    assert "did not connect" in silent[1] and 2 <= float(silent[0]) < 60  # the 2 s timeout, then the error
    assert "is not an address" in bad[1]
    assert "does not speak gRPC" in web[1] and "Ray head node" in web[1] and float(web[0]) < 60


CLI = [sys.executable, "-m", "featviz_widgets.cli", "atlas", "--layers", "blocks.0", "--chunk", "4"]


@pytest.mark.slow
def test_cli_killed_run_resumes(tmp_path: Path) -> None:
    """``featviz atlas`` killed (SIGKILL) after some chunks: the same command renders only the rest."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [*CLI, "--out", str(tmp_path), "--steps", "12", "--size", "48", "--threads", "1", "--quiet"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 1200  # a loaded machine: generous, only a guard against a hang
    records: list[Path] = []
    while time.monotonic() < deadline and len(records) < 1 and proc.poll() is None:
        time.sleep(0.05)
        records = list((tmp_path / "chunks").rglob("*.json")) if (tmp_path / "chunks").exists() else []
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(list((tmp_path / "chunks").rglob("*.json")))
    assert 1 <= before < 4
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["tiles"] == 16 and summary["resumed"] == 4 * before and summary["rendered"] == 16 - 4 * before
    key = json.loads((tmp_path / "atlas.json").read_text())["key"]
    assert sorted(tiles(tmp_path, key, "blocks.0")) == list(range(16))
    assert leftovers(tmp_path) == []


def test_cli_picture_flags_reach_the_tiles_from_a_fresh_process(tmp_path: Path) -> None:
    # featviz atlas took only --lr and --tv: the parameterization, views, transforms and the
    # other penalties of featviz render were out of reach from the command line.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    base = [*CLI, "--steps", "2", "--size", "32", "--threads", "1", "--max-units", "4", "--quiet"]

    def featviz(out: str, *flags: str) -> subprocess.CompletedProcess[str]:
        args = [*base, "--out", str(tmp_path / out), *flags]
        return subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    flags = ["--maco-recipe", "--views", "2", "--l1", "0.5", "--blur", "0.25", "--transform-strength", "0.5"]
    done = featviz("maco", *flags)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["tiles"] == 4
    key = json.loads((tmp_path / "maco" / "atlas.json").read_text())["key"]
    saved = read_settings(tmp_path / "maco" / "tiles" / key / "blocks.0" / "3.png")
    assert (saved["param"], saved["views"], saved["l1"], saved["blur"]) == ("maco", 2, 0.5, 0.25)
    assert saved["transform"]["strength"] == 0.5 and saved["transform"]["noise"] == 0.04
    done = featviz("fourier", "--param", "fourier", "--decay", "1.0")
    assert done.returncode == 0, done.stderr[-2000:]
    key = json.loads((tmp_path / "fourier" / "atlas.json").read_text())["key"]
    saved = read_settings(tmp_path / "fourier" / "tiles" / key / "blocks.0" / "0.png")
    assert (saved["param"], saved["decay"]) == ("fourier", 1.0)
    # An explicit --lr wins over the recipe's 0.3, even at the default's value.
    done = featviz("maco-lr", "--maco-recipe", "--lr", "0.15")
    assert done.returncode == 0, done.stderr[-2000:]
    key = json.loads((tmp_path / "maco-lr" / "atlas.json").read_text())["key"]
    assert read_settings(tmp_path / "maco-lr" / "tiles" / key / "blocks.0" / "0.png")["lr"] == 0.15
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photo here")
    for bad, message in [
        (["--views", "0"], "views must be an integer from 1 to 64, got 0"),
        (["--param", "fft"], "invalid choice: 'fft'"),
        (["--align", "1", "--align-photos", str(tmp_path / "nowhere")], "is not a folder; valid: a folder holding"),
        (["--align", "1", "--align-photos", str(tmp_path / "empty")], "No readable photos in"),
        (["--param", "maco", "--pixel"], "use --param alone"),
    ]:
        refused = featviz("bad", *bad)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr[-2000:]
        assert not (tmp_path / "bad").exists()  # refused before the folder is made


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from featviz_widgets.cli import main

    (tmp_path / "f").write_text("x")
    assert main(["atlas", "--out", str(tmp_path / "f"), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["atlas", "--layers", "stemm", "--out", str(tmp_path / "d"), "--quiet"]) == 2
    assert "Unknown layer 'stemm'" in capsys.readouterr().err


def test_progress_bar_counts_resumed_tiles(
    tiny: FeatvizModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    render_atlas(tiny, out=tmp_path, layers=["conv2"], chunk=2, **{**FAST, "progress": True})
    first = capsys.readouterr().err
    assert "6/6" in first and "tile/s" in first
    render_atlas(tiny, out=tmp_path, layers=["conv1", "conv2"], chunk=2, **{**FAST, "progress": True})
    second = capsys.readouterr().err
    assert "6/10" in second and "10/10" in second  # starts at the 6 tiles done before


class FakeRay:
    """Stands in for the ``ray`` module in ``run_ray``: tasks finish in submission order, one per
    ``wait``; counts what is in flight."""

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus
        self.in_flight: list[int] = []
        self.max_in_flight = 0
        self.cancelled: list[int] = []
        self.submitted = 0

    def put(self, value: Any) -> Any:
        return value

    def nodes(self) -> list[dict[str, Any]]:
        return [{"Alive": True, "Resources": {"CPU": self.cpus}}]

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus}

    def remote(self, **options: Any) -> Any:
        fake = self

        class Task:
            def options(self, **kw: Any) -> Any:
                return self

            def remote(self, model_box: Any, photos_box: Any, item: Any, settings: Any) -> int:
                fake.submitted += 1
                fake.in_flight.append(item.start)
                fake.max_in_flight = max(fake.max_in_flight, len(fake.in_flight))
                return item.start

        return lambda fn: Task()

    def wait(self, pending: list[int], num_returns: int, timeout: float) -> tuple[list[int], list[int]]:
        done = pending[0]
        self.in_flight.remove(done)
        return [done], pending[1:]

    def get(self, ref: int) -> int:
        return ref

    def cancel(self, ref: int, force: bool = False) -> None:
        self.cancelled.append(ref)


def test_ray_tasks_in_flight_are_bounded_and_closing_cancels(tiny: FeatvizModel) -> None:
    """1,000 chunks on a 2-CPU cluster, 1 thread a task: at most 4 (2 x slots) submitted at a
    time; leaving after 10 results cancels the few in flight, and nothing more is submitted."""
    from featviz_widgets.atlas import ray_backend
    from featviz_widgets.atlas.plan import AtlasSettings

    fake = FakeRay(cpus=2)
    chunks = [Chunk("conv1", "channel", i, i + 1) for i in range(1000)]
    it = ray_backend.run_ray(tiny, chunks, AtlasSettings(threads=1), ray=fake)
    got = [next(it) for _ in range(10)]
    assert got == list(range(10)) and fake.max_in_flight == 4 and fake.submitted <= 14
    it.close()  # an error while writing, or Ctrl-C
    assert fake.cancelled == fake.in_flight and len(fake.cancelled) == 3  # refilled to 4, one taken
    assert fake.submitted == 13
    fake2 = FakeRay(cpus=8)
    assert len(list(ray_backend.run_ray(tiny, chunks[:50], AtlasSettings(threads=2), ray=fake2))) == 50
    assert fake2.max_in_flight == 8  # 8 CPUs / 2 threads = 4 slots, twice that
    fake3 = FakeRay(cpus=8)
    assert len(list(ray_backend.run_ray(tiny, chunks[:50], AtlasSettings(threads=1), in_flight=3, ray=fake3))) == 50
    assert fake3.max_in_flight == 3


def test_layer_exemplars_match_top_exemplars_per_unit(tiny: FeatvizModel) -> None:
    """One pass per layer gives each unit the same crops as top_exemplars run per unit."""
    from featviz_widgets.atlas.exemplars import ExemplarJob, layer_exemplars, load_photos
    from featviz_widgets.engine import Channel, ClassLogit
    from featviz_widgets.engine.explore import top_exemplars

    photos = load_photos(ROOT / "featviz_widgets" / "data")
    for layer, kind, units, make in (("conv2", "channel", 6, Channel), ("logits", "class", 5, None)):
        result = layer_exemplars(tiny, ExemplarJob(layer, kind, units, 3), photos)
        for u in range(units):
            objective = Channel(layer, u) if make else ClassLogit(u, layer=layer)
            want = top_exemplars(tiny, objective, photos, k=3)
            got = list(result.items(u))
            assert [photos[p][0] for p, _, _ in got] == [e.source for e in want], (layer, u)
            assert [b for _, b, _ in got] == [e.box for e in want], (layer, u)
            np.testing.assert_allclose([s for _, _, s in got], [e.score for e in want], rtol=1e-4, atol=1e-5)


def test_pages_of_a_finished_layer_come_before_the_run_ends(
    tiny: FeatvizModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is cut once conv1's chunks are written: conv1's pages and an index linking them
    are on disk, conv2 shows as in progress."""
    real = build_module.run_local

    def cut_after_two(*args: Any, **kwargs: Any) -> Any:
        it = real(*args, **kwargs)
        yield next(it)
        yield next(it)
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "run_local", cut_after_two)
    with pytest.raises(KeyboardInterrupt):
        render_atlas(tiny, out=tmp_path, layers=["conv1", "conv2"], chunk=2, **FAST)
    assert sorted(p.name for p in (tmp_path / "units" / "conv1").iterdir()) == [f"{u}.html" for u in range(4)]
    assert not (tmp_path / "units" / "conv2").exists()
    index = (tmp_path / "index.html").read_text()
    assert "1 of 2 layers finished" in index and "conv2</a> (in progress)" in index
    assert len(re.findall(r"<img src=", (tmp_path / "layers" / "conv1.html").read_text())) == 4


def test_preview_with_photos(tiny: FeatvizModel, tmp_path: Path) -> None:
    """``max_units`` with photos: the exemplars cover the planned units only; the full run later
    keeps the preview's tiles and computes the layer's exemplars for every unit."""
    photos = ROOT / "featviz_widgets" / "data"
    r = render_atlas(tiny, out=tmp_path, layers=["conv2"], chunk=2, max_units=3, photos=photos, exemplars=2, **FAST)
    assert (r.total, r.exemplar_layers) == (4, ["conv2"])  # 3 rounded up to whole chunks
    index = (tmp_path / "index.html").read_text()
    assert "4 of 6 channels" in index
    full = render_atlas(tiny, out=tmp_path, layers=["conv2"], chunk=2, photos=photos, exemplars=2, **FAST)
    assert (full.key, full.skipped, full.rendered) == (r.key, 4, [("conv2", 4)])
    assert (tmp_path / "units" / "conv2" / "5.html").read_text().count("<figure>") == 2
