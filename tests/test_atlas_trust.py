"""The atlas trusts no file it did not check (issue #24 part 3): each class of fault attacked with
many inputs of our own, and none gets through.

- damaged tiles (truncated, empty, garbage, another tile's bytes, deleted...): the chunk is
  rendered again, its pixels equal an undamaged run's, the site links only intact tiles;
- damaged records (chunk records and exemplar listings: truncated, empty, not JSON, not UTF-8,
  wrong shape, wrong fields, altered hashes...): the run never crashes and re-renders;
- layer names that differ only in punctuation or case map to distinct files;
- the fingerprint sees a changed computation with the same weights;
- stale ``.*.tmp`` files are swept; two runs at once are refused by a lock;
- every text in the site's HTML is escaped; the code for a user's own module says to pass it
  and compiles.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featviz_widgets.atlas import AtlasBusyError, render_atlas, reproduce_code
from featviz_widgets.atlas.plan import Chunk, model_fingerprint, slug
from featviz_widgets.atlas.store import AtlasStore
from featviz_widgets.engine.models import FeatvizModel, wrap_module

from .conftest import TinyNet, interruptible
from .test_atlas import FAST, ROOT, leftovers, tiles

PHOTOS = ROOT / "featviz_widgets" / "data"


def png_ok(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:
        return False


# --- damaged tiles ---------------------------------------------------------------------------------


def _truncate(p: Path, other: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _empty(p: Path, other: Path) -> None:
    p.write_bytes(b"")


def _garbage(p: Path, other: Path) -> None:
    p.write_bytes(bytes(random.Random(1).randrange(256) for _ in range(500)))


def _other_tile(p: Path, other: Path) -> None:
    p.write_bytes(other.read_bytes())  # a valid PNG, the wrong picture


def _flip_byte(p: Path, other: Path) -> None:
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))


def _deleted(p: Path, other: Path) -> None:
    p.unlink()


def _appended(p: Path, other: Path) -> None:
    p.write_bytes(p.read_bytes() + b"trailing bytes")  # still decodes: only the hash tells


def _black_png(p: Path, other: Path) -> None:
    Image.new("RGB", (32, 32)).save(p)


def _png_header_only(p: Path, other: Path) -> None:
    p.write_bytes(p.read_bytes()[:33])


DAMAGE = [_truncate, _empty, _garbage, _other_tile, _flip_byte, _deleted, _appended, _black_png, _png_header_only]


def test_damaged_tiles_are_rendered_again(tiny: FeatvizModel, tmp_path: Path) -> None:
    """9 kinds of damage, one tile each (each in its own chunk of 1): the rerun renders exactly
    those chunks, with the undamaged pixels, and the site links only PNGs that decode."""
    ref = render_atlas(tiny, out=tmp_path / "ref", layers=["conv1", "conv2"], chunk=1, **FAST)
    out = tmp_path / "atlas"
    first = render_atlas(tiny, out=out, layers=["conv1", "conv2"], chunk=1, **FAST)
    targets = [("conv1", u) for u in range(4)] + [("conv2", u) for u in range(5)]
    assert len(targets) == len(DAMAGE)
    for (layer, unit), damage in zip(targets, DAMAGE, strict=True):
        path = out / "tiles" / first.key / layer / f"{unit}.png"
        other = out / "tiles" / first.key / "conv2" / "5.png"
        damage(path, other)
    again = render_atlas(tiny, out=out, layers=["conv1", "conv2"], chunk=1, **FAST)
    assert sorted(again.rendered) == sorted(targets)
    assert again.tiles_rendered == len(DAMAGE) and again.skipped == 10 - len(DAMAGE)
    for layer in ("conv1", "conv2"):
        a, b = tiles(out, again.key, layer), tiles(ref.out, ref.key, layer)
        assert sorted(a) == sorted(b)
        for u in a:
            np.testing.assert_array_equal(a[u], b[u], err_msg=f"{layer}:{u}")
    assert render_atlas(tiny, out=out, layers=["conv1", "conv2"], chunk=1, **FAST).rendered == []
    for page in (out / "layers").glob("*.html"):
        for src in re.findall(r"<img src='([^']+)'", page.read_text()):
            assert png_ok((page.parent / src).resolve()), src


def test_site_never_links_a_damaged_tile(tiny: FeatvizModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tile damaged after its run, and the next run interrupted before it renders anything:
    the pages written at its start show that cell as missing (no link, no image)."""
    from featviz_widgets.atlas import build as build_module

    r = render_atlas(tiny, out=tmp_path, layers=["conv1", "conv2"], chunk=2, **FAST)
    (tmp_path / "tiles" / r.key / "conv2" / "3.png").write_bytes(b"\x89PNG\r\n")

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(build_module, "run_local", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_atlas(tiny, out=tmp_path, layers=["conv1", "conv2"], chunk=2, **FAST)
    html = (tmp_path / "layers" / "conv2.html").read_text()
    assert re.findall(r"<img src='[^']+/(\d+)\.png'", html) == ["0", "1", "4", "5"]
    assert "../units/" not in html  # unit pages come when the layer is finished
    index = (tmp_path / "index.html").read_text()
    assert "href='layers/conv1.html'" in index and "href='layers/conv2.html'" in index
    assert "1 of 2 layers finished" in index


# --- damaged records -------------------------------------------------------------------------------

RECORD_DAMAGE: list[Any] = [
    lambda b: b[: len(b) // 2],  # truncated
    lambda b: b"",  # empty
    lambda b: b"\x00\xff\xfe garbage",  # not UTF-8
    lambda b: b"not json at all",
    lambda b: b"[1, 2, 3]",  # JSON, not an object
    lambda b: b"null",
    lambda b: b"[" * 100_000,  # deeply nested: RecursionError in the parser
    lambda b: json.dumps({**json.loads(b), "start": 99}).encode(),  # another chunk's record
    lambda b: json.dumps({**json.loads(b), "files": {}}).encode(),  # vouches for no tile
    lambda b: json.dumps({**json.loads(b), "files": dict.fromkeys(json.loads(b)["files"], "0" * 64)}).encode(),
    lambda b: json.dumps({**json.loads(b), "values": []}).encode(),  # values missing
    lambda b: json.dumps({k: v for k, v in json.loads(b).items() if k != "files"}).encode(),
]


def test_damaged_chunk_records_never_crash_and_are_rendered_again(tiny: FeatvizModel, tmp_path: Path) -> None:
    """12 kinds of damaged chunk record, one chunk each: no exception, exactly those chunks again."""
    layers = ["conv1", "relu1", "conv2", "relu2"]  # 4 + 4 + 6 + 6 = 20 units in chunks of 1
    r = render_atlas(tiny, out=tmp_path, layers=layers, chunk=1, **FAST)
    records = sorted((tmp_path / "chunks" / r.key).rglob("*.json"))
    assert len(records) == 20
    hit = records[:: len(records) // len(RECORD_DAMAGE)][: len(RECORD_DAMAGE)]
    for path, damage in zip(hit, RECORD_DAMAGE, strict=True):
        path.write_bytes(damage(path.read_bytes()))
    again = render_atlas(tiny, out=tmp_path, layers=layers, chunk=1, **FAST)
    assert again.tiles_rendered == len(RECORD_DAMAGE)
    assert sorted(f"{c[0]}/{c[1]:05d}" for c in again.rendered) == sorted(
        f"{p.parent.name}/{p.stem.split('-')[0]}" for p in hit
    )
    assert render_atlas(tiny, out=tmp_path, layers=layers, chunk=1, **FAST).rendered == []


def test_damaged_exemplars_are_computed_again(tiny: FeatvizModel, tmp_path: Path) -> None:
    """An exemplar crop or listing damaged (6 ways): that layer's exemplars are computed again."""
    kw: dict[str, Any] = {"layers": ["conv2"], "chunk": 6, "photos": PHOTOS, "exemplars": 2, **FAST}
    assert render_atlas(tiny, out=tmp_path, **kw).exemplar_layers == ["conv2"]
    listing = next((tmp_path / "exemplars").glob("*/conv2.json"))
    crop = listing.parent / "conv2" / "0-0.jpg"
    good_listing, good_crop = listing.read_bytes(), crop.read_bytes()
    attacks = [
        lambda: crop.write_bytes(good_crop[:100]),
        lambda: crop.unlink(),
        lambda: listing.write_bytes(b""),
        lambda: listing.write_bytes(good_listing[:50]),
        lambda: listing.write_text(json.dumps({**json.loads(good_listing), "units": []})),
        lambda: listing.write_text(json.dumps({**json.loads(good_listing), "k": 3})),
    ]
    for attack in attacks:
        attack()
        again = render_atlas(tiny, out=tmp_path, **kw)
        assert again.exemplar_layers == ["conv2"] and again.rendered == []
        assert crop.read_bytes() == good_crop
    assert render_atlas(tiny, out=tmp_path, **kw).exemplar_layers == []


# --- names -> files, injectively -------------------------------------------------------------------

NAMES = ['q"', "q'", "q_22", "q_27", "Q", "q", "q_51", "_", "-", ".q", "q.", "a b", "a/b", "<b>", "a&b", "ü", "u\u0308"]


def test_slug_is_injective_and_safe() -> None:
    """Hand-picked near-collisions, 20,000 random draws over a small alphabet (12,699 distinct
    names in all) and long names."""
    rng = random.Random(0)
    alphabet = "aAqQ_._-'\"/ \\<>&é\u0308%"
    names = set(NAMES) | {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(20_000)}
    names |= {"x" * n for n in (119, 120, 121, 300)} | {"X" * 300, "x" * 299 + "y"}
    slugs = {n: slug(n) for n in names}
    assert len(set(slugs.values())) == len(names)
    assert len({s.lower() for s in slugs.values()}) == len(names)  # case-insensitive disks too
    for s in slugs.values():
        assert re.fullmatch(r"[a-z0-9_][a-z0-9._~-]*", s) and len(s) <= 120, s


class Branches(nn.Module):
    """Parallel 1x1 convolutions whose names differ only in punctuation or case."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        for i, n in enumerate(names):
            conv = nn.Conv2d(3, 2, 1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) + i)
            self.add_module(n, conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).mean(dim=(1, 2, 3)) for m in self.children()], dim=1)


def test_layers_differing_in_punctuation_keep_their_own_files(tmp_path: Path) -> None:
    names = [n for n in NAMES if "." not in n and "/" not in n]  # torch forbids "." in a child's name
    model = wrap_module(Branches(names), input_size=32, name="branches")
    r = render_atlas(model, out=tmp_path, layers=names, chunk=2, **FAST)
    assert r.tiles_rendered == r.total == 2 * len(names)
    folders = {p.name for p in (tmp_path / "tiles" / r.key).iterdir()}
    assert len(folders) == len(names)
    from featviz_widgets.export import read_settings

    for n in names:
        for u in (0, 1):
            assert read_settings(tmp_path / "tiles" / r.key / slug(n) / f"{u}.png")["target"]["layer"] == n
        assert f"<h1>{__import__('html').escape(n)}</h1>" in (tmp_path / "layers" / f"{slug(n)}.html").read_text()
    assert render_atlas(model, out=tmp_path, layers=names, chunk=2, **FAST).rendered == []


# --- the fingerprint covers the computation --------------------------------------------------------


class ReluNet(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class FunctionalRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def _tanh_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(self.conv(x))


def _helper_a(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=0)


def _helper_b(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=-1)


def _helper_net(helper: Any) -> nn.Module:
    """The same class source, calling a helper by a global name that changes."""
    src = "def forward(self, x):\n    return act(self.conv(x))\n"
    scope: dict[str, Any] = {"act": helper}
    exec(src, scope)
    cls = type("HelperNet", (nn.Module,), {"forward": scope["forward"]})
    net = cls()
    torch.manual_seed(0)
    net.conv = nn.Conv2d(3, 4, 3, padding=1)
    return net


def variants() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    out: dict[str, nn.Module] = {
        "relu": ReluNet(nn.ReLU()),
        "gelu": ReluNet(nn.GELU()),
        "gelu-tanh": ReluNet(nn.GELU(approximate="tanh")),
        "leaky-0.1": ReluNet(nn.LeakyReLU(0.1)),
        "leaky-0.2": ReluNet(nn.LeakyReLU(0.2)),
        "elu": ReluNet(nn.ELU()),
        "relu6": ReluNet(nn.ReLU6()),
        "hardswish": ReluNet(nn.Hardswish()),
        "tanh": ReluNet(nn.Tanh()),
        "functional-relu": FunctionalRelu(),
        "functional-tanh": type("FunctionalRelu", (FunctionalRelu,), {"forward": _tanh_forward})(),
        "helper-a": _helper_net(_helper_a),
        "helper-b": _helper_net(_helper_b),
    }
    strided = ReluNet(nn.ReLU())
    strided.conv.stride = (2, 2)  # same weights, another convolution
    out["stride-2"] = strided
    padded = ReluNet(nn.ReLU())
    padded.conv.padding = (0, 0)
    out["padding-0"] = padded
    return out


def test_fingerprint_sees_the_computation_not_only_the_weights(tmp_path: Path) -> None:
    """15 networks with identical state_dicts: 15 fingerprints; each stable across builds and use;
    and the atlas renders anew (8 tiles) instead of reusing another activation's tiles."""
    nets = variants()
    sd = [n.state_dict() for n in nets.values()]
    assert all(torch.equal(sd[0]["conv.weight"], s["conv.weight"]) for s in sd)
    prints = {k: model_fingerprint(wrap_module(n, input_size=32, name="net")) for k, n in nets.items()}
    assert len(set(prints.values())) == len(prints), prints
    again = {k: model_fingerprint(wrap_module(n, input_size=32, name="net")) for k, n in variants().items()}
    assert again == prints  # deterministic
    m = wrap_module(ReluNet(nn.ReLU()), input_size=32, name="net")
    before = model_fingerprint(m)
    render_atlas(m, out=tmp_path / "a", layers=["conv"], chunk=4, site=False, **FAST)  # fills the model's caches
    assert model_fingerprint(m) == before
    first = render_atlas(m, out=tmp_path / "b", layers=["act"], chunk=4, site=False, **FAST)
    gelu = wrap_module(ReluNet(nn.GELU()), input_size=32, name="net")
    second = render_atlas(gelu, out=tmp_path / "b", layers=["act"], chunk=4, site=False, **FAST)
    assert second.key != first.key and second.tiles_rendered == 4


# --- stale temp files, concurrent runs -------------------------------------------------------------


def test_stale_temp_files_are_swept(tiny: FeatvizModel, tmp_path: Path) -> None:
    r = render_atlas(tiny, out=tmp_path, layers=["conv1"], chunk=2, **FAST)
    stale = [
        tmp_path / ".atlas.json.abc.tmp",
        tmp_path / "tiles" / r.key / "conv1" / ".0.png.x1y2.tmp",
        tmp_path / "chunks" / r.key / "conv1" / ".00000-00002.json.zz.tmp",
        tmp_path / "layers" / ".conv1.html.q.tmp",
        tmp_path / "units" / "conv1" / ".3.html.q.tmp",
        tmp_path / "tiles" / "OLDKEY" / "x" / ".9.png.k.tmp",
    ]
    keep = [tmp_path / "notes.tmp", tmp_path / ".hidden", tmp_path / "tiles" / r.key / "conv1" / "keep.tmp"]
    for p in stale + keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
    again = render_atlas(tiny, out=tmp_path, layers=["conv1"], chunk=2, **FAST)
    assert again.swept == len(stale) and again.rendered == []
    assert sorted(leftovers(tmp_path)) == sorted([keep[0], keep[2]])
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_second_run_on_a_locked_folder_is_refused(tiny: FeatvizModel, tmp_path: Path) -> None:
    store = AtlasStore(tmp_path)
    store.check()
    with store.lock(), pytest.raises(AtlasBusyError, match=r"Another featviz atlas run \(pid \d+\) is writing"):
        render_atlas(tiny, out=tmp_path, layers=["conv1"], **FAST)
    assert not (tmp_path / "tiles").exists()  # refused before anything was written
    assert render_atlas(tiny, out=tmp_path, layers=["conv1"], **FAST).tiles_rendered == 4


@pytest.mark.slow
def test_two_cli_runs_at_once_one_is_refused(tmp_path: Path) -> None:
    """Two `featviz atlas` processes on one folder: the second, started once the first has
    written a chunk (so it is mid-run, holding the lock), exits 2 with a message; the first,
    then interrupted (Ctrl-C), exits 130 with its finished chunks intact."""
    import os
    import signal

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "featviz_widgets.cli", "atlas", "--layers", "blocks.0", "--chunk", "1"]
    # 6000 steps a chunk: the first run is still rendering when the second (importing torch and
    # loading the model first) is refused and SIGINT follows; it is interrupted, not awaited.
    # interruptible: SIGINT at its default in the child, as in a terminal, even when this test runs
    # under a shell that started it in the background (SIGINT ignored, inherited through exec).
    args += ["--steps", "6000", "--size", "32", "--threads", "1", "--quiet", "--out", str(tmp_path)]
    first = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible
    )
    deadline = time.monotonic() + 1800  # a guard against a hang only
    chunks = tmp_path / "chunks"
    while time.monotonic() < deadline and first.poll() is None:
        if chunks.exists() and any(chunks.rglob("*.json")):
            break
        time.sleep(0.1)
    second = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    still_running = first.poll() is None
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=600)
    assert still_running, "the first run ended before the second was refused"
    assert second.returncode == 2 and "Another featviz atlas run" in second.stderr, second.stderr[-2000:]
    assert first.returncode == 130, err[-2000:]
    store = AtlasStore(tmp_path)
    key = json.loads((tmp_path / "atlas.json").read_text())["key"]
    done = [c for c in range(16) if store.is_done(key, Chunk("blocks.0", "channel", c, c + 1))]
    assert len(done) == len(list(chunks.rglob("*.json"))) >= 1  # every record vouches for an intact tile
    assert leftovers(tmp_path) == []


# --- HTML and code ---------------------------------------------------------------------------------

ALLOWED_TAGS = {"html", "head", "meta", "title", "link", "body", "p", "a", "h1", "h2", "table", "tr", "th", "td"}
ALLOWED_TAGS |= {"code", "div", "img", "span", "pre", "figure", "figcaption"}
ALLOWED_ATTRS = {"lang", "charset", "rel", "href", "class", "id", "src", "alt", "loading"}


class Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.bad.append(f"<{tag}>")
        self.bad += [f"{tag}[{a}]" for a, _ in attrs if a not in ALLOWED_ATTRS]
        self.bad += [f"{tag}[{a}={v}]" for a, v in attrs if a in ("href", "src") and v and re.search(r"[\"'<> ]", v)]
        self.text += [v for a, v in attrs if a in ("alt",) and v]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


EVIL = ["<script>alert(1)</script>", "q\"onmouseover='x'", "a&amp;b", "</pre><b>", "x'y"]


def test_every_text_in_the_site_is_escaped(tmp_path: Path) -> None:
    """Hostile layer, model, class and photo-file names: every page parses to the site's own
    tags and attributes only, and shows each name as text."""
    cls = type("<i>Net\"'&", (Branches,), {})
    model = wrap_module(cls(EVIL), input_size=32, name="<img src=x onerror=alert(1)>'\"")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["<img onerror=1>'.jpg", 'a"b&c.jpg']):
        Image.open(PHOTOS / sorted(p.name for p in PHOTOS.glob("*.jpg"))[i]).save(photos / name)
    r = render_atlas(model, out=tmp_path / "atlas", layers=EVIL, chunk=2, photos=photos, exemplars=2, **FAST)
    pages = sorted((tmp_path / "atlas").rglob("*.html"))
    assert len(pages) == 1 + len(EVIL) * 3  # index, layer pages, 2 unit pages each
    seen = ""
    for page in pages:
        p = Structure()
        p.feed(page.read_text())
        assert p.bad == [], (page, p.bad)
        seen += "\n".join(p.text)
    for text in [*EVIL, "<img src=x onerror=alert(1)>'\"", "<img onerror=1>'.jpg", 'a"b&c.jpg']:
        assert text in seen, text
    assert r.index is not None


def test_code_for_a_users_own_module_says_to_pass_it_and_compiles(tiny: FeatvizModel, tmp_path: Path) -> None:
    r = render_atlas(tiny, out=tmp_path, layers=["conv1"], chunk=4, **FAST)
    manifest = json.loads((tmp_path / "atlas.json").read_text())
    odd = ["tiny", "a\nb = 1", "x'''\"\"\"", "\x00\u2028", "#"]
    for name in odd:
        for cls in ("tests.conftest.TinyNet", "Net\nimport os", "<i>"):
            code = reproduce_code({**manifest, "model": name, "model_class": cls}, Chunk("conv1", "channel", 0, 4), 2)
            compile(code, "<atlas>", "exec")
            line = next(x for x in code.splitlines() if x.startswith("model = "))
            assert line.startswith("model = load_model(my_module") and "pass your own nn.Module (class " in line
            assert not any(x.startswith(("import os", "b = 1")) for x in code.splitlines())
    page = (tmp_path / "units" / "conv1" / "2.html").read_text()
    assert "pass your own nn.Module (class tests.conftest.TinyNet)" in page
    scope: dict[str, Any] = {"my_module": TinyNet()}
    exec(reproduce_code(manifest, Chunk("conv1", "channel", 0, 4), 2), scope)  # runs with the module passed
    assert np.asarray(scope["image"]).shape == (32, 32, 3)
    assert r.tiles_rendered == 4


def test_code_for_a_wrapped_module_loads_it_with_the_same_options(tmp_path: Path) -> None:
    """A user's module loaded with its own input size and normalization: the tile's code passes
    the same options, so run with the module it gives the tile's pixels (without them, other ones)."""
    from featviz_widgets import load_model

    net = TinyNet()
    model = load_model(net, input_size=40, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3], device="cpu")
    r = render_atlas(model, out=tmp_path, layers=["conv1"], chunk=4, **FAST)
    manifest = json.loads((tmp_path / "atlas.json").read_text())
    code = reproduce_code(manifest, Chunk("conv1", "channel", 0, 4), 2)
    assert "load_model(my_module, input_size=40, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3]" in code
    scope: dict[str, Any] = {"my_module": net}
    exec(code, scope)
    np.testing.assert_array_equal(np.asarray(scope["image"]), tiles(tmp_path, r.key, "conv1")[2])
    bare = code.replace(", input_size=40, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3]", "")
    scope = {"my_module": net}
    exec(bare, scope)
    assert not np.array_equal(np.asarray(scope["image"]), tiles(tmp_path, r.key, "conv1")[2])
