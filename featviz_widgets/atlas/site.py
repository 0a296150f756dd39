"""The atlas as plain static files that open from disk (file://): no server, no scripts.

    DIR/index.html                    the model, the settings (once) and a link per layer
    DIR/layers/LAYER.html             a labelled grid of the layer's tiles
    DIR/units/LAYER/UNIT.html         one tile: image, settings, the code that reproduces it,
                                      and its top natural exemplars when a photo folder is given
    DIR/exemplars/KEY/LAYER/UNIT-I.jpg  those exemplar crops (UNIT.json lists them)

Paths are relative, so the folder can be moved or zipped. Missing tiles (an unfinished run)
show as empty cells.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import Channel, ClassLogit, FeatvizModel, Objective
from ..engine.explore import top_exemplars
from ..engine.image.photos import iter_photos
from .plan import AtlasSettings, Chunk, slug
from .store import AtlasStore, atomic_write, write_text

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
a { color: #0645ad; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(112px, 1fr)); gap: 8px; }
.tile { display: block; text-align: center; text-decoration: none; font-size: 12px; }
.tile img, .tile .missing { width: 100%; aspect-ratio: 1; display: block; image-rendering: auto; background: #eee; }
.unit img.main { width: 320px; max-width: 100%; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; }
.exemplars { display: flex; gap: 8px; flex-wrap: wrap; } .exemplars figure { margin: 0; font-size: 12px; }
.exemplars img { width: 128px; height: 128px; object-fit: cover; }
"""


def _page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><link rel='stylesheet' href='{up}atlas.css'></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _objective(kind: str, layer: str, unit: int) -> Objective:
    return ClassLogit(unit, layer=layer) if kind == "class" else Channel(layer, unit)


def reproduce_code(manifest: dict[str, Any], chunk: Chunk, unit: int) -> str:
    """Python that renders this tile's pixels again: its whole chunk as one batch, with the
    atlas's thread count (a convolution's rounding depends on it)."""
    settings = AtlasSettings(
        **{**manifest["settings"], "render": tuple(sorted(manifest["settings"]["render"].items()))}
    )
    rs = settings.render_settings(len(chunk.units))
    source = manifest.get("model_source")
    load = (
        f"model = load_model({source!r}, device={settings.device!r})"
        if source
        else f"model = load_model(my_module, device={settings.device!r})  # the nn.Module {manifest['model']!r}"
    )
    if chunk.kind == "class":
        imports = "from featviz_widgets.engine.explore import PerImage\n"
        objective = f"PerImage([ClassLogit(u, layer={chunk.layer!r}) for u in range({chunk.start}, {chunk.stop})])"
    else:
        imports = ""
        objective = f"BatchChannels({chunk.layer!r}, tuple(range({chunk.start}, {chunk.stop})))"
    return (
        "import torch\n"
        "from featviz_widgets import BatchChannels, ClassLogit, Renderer, RenderSettings, load_model\n"
        f"from featviz_widgets.engine import TransformConfig\n{imports}\n"
        f"torch.set_num_threads({settings.threads})  # the atlas's threads: the same arithmetic, the same pixels\n"
        f"{load}\n"
        f"# Unit {unit} rendered in one batch with the rest of its chunk, units {chunk.start}..{chunk.stop - 1}.\n"
        f"renderer = Renderer(model, {objective}, {rs!r})\n"
        f"renderer.run({settings.steps})\n"
        f"image = renderer.pil_images()[{unit - chunk.start}]\n"
    )


def _photo_list(folder: str | Path) -> list[tuple[str, Image.Image]]:
    out = []
    for name, img in iter_photos(folder):
        img.thumbnail((512, 512))
        out.append((name, img))
    return out


def _photos_key(photos: list[tuple[str, Image.Image]], k: int) -> str:
    h = hashlib.sha256(str(k).encode())
    for name, img in photos:
        h.update(name.encode())
        h.update(img.tobytes())
    return h.hexdigest()[:12]


def _save_jpeg(image: Image.Image, path: Path) -> None:
    image.save(path, format="JPEG", quality=88)


def _exemplars(
    store: AtlasStore,
    model: FeatvizModel,
    key: str,
    kind: str,
    layer: str,
    unit: int,
    photos: list[tuple[str, Image.Image]],
    k: int,
) -> list[dict[str, Any]]:
    """The unit's top crops, computed once (resumable like the tiles)."""
    folder = store.root / "exemplars" / key / slug(layer)
    listing = folder / f"{unit}.json"
    if listing.is_file():
        return list(json.loads(listing.read_text(encoding="utf-8")))
    found = top_exemplars(model, _objective(kind, layer, unit), photos, k=k)
    items = []
    for i, ex in enumerate(found):
        path = folder / f"{unit}-{i}.jpg"
        crop = ex.crop.convert("RGB")
        crop.thumbnail((256, 256))
        atomic_write(path, functools.partial(_save_jpeg, crop))
        items.append({"file": path.name, "source": Path(ex.source).name, "score": ex.score, "box": list(ex.box)})
    write_text(listing, json.dumps(items))
    return items


def _units(manifest: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Chunk, int]]:
    size = manifest["settings"]["chunk"]
    for layer in manifest["layers"]:
        for start in range(0, layer["units"], size):
            chunk = Chunk(layer["name"], layer["kind"], start, min(start + size, layer["units"]))
            for unit in chunk.units:
                yield layer, chunk, unit


def build_site(
    store: AtlasStore,
    manifest: dict[str, Any],
    model: FeatvizModel,
    *,
    photos: str | Path | None = None,
    exemplars: int = 4,
    progress: bool = False,
) -> Path:
    """Write the pages for ``manifest`` (the tiles of its key); returns ``index.html``."""
    root, key = store.root, manifest["key"]
    write_text(root / "atlas.css", CSS, durable=False)
    photo_list = _photo_list(photos) if photos is not None else None
    ex_key = f"{key}-{_photos_key(photo_list, exemplars)}" if photo_list else ""
    settings_rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(json.dumps(v))}</td></tr>" for k, v in sorted(manifest["settings"].items())
    )
    # index
    rows = []
    for layer in manifest["layers"]:
        done = sum(store.tile_path(key, layer["name"], u).is_file() for u in range(layer["units"]))
        rows.append(
            f"<tr><td><a class='layer' href='layers/{_e(slug(layer['name']))}.html'>{_e(layer['name'])}</a></td>"
            f"<td>{layer['units']} {'classes' if layer['kind'] == 'class' else 'channels'}</td>"
            f"<td>{done} rendered</td></tr>"
        )
    body = (
        f"<h1>Atlas of {_e(manifest['model'])}</h1>\n"
        f"<p>Every unit of {len(manifest['layers'])} layers; key <code>{_e(key)}</code>.</p>\n"
        f"<table id='layers'><tr><th>layer</th><th>units</th><th>tiles</th></tr>{''.join(rows)}</table>\n"
        f"<h2>Settings</h2><table id='settings'>{settings_rows}</table>"
    )
    write_text(root / "index.html", _page(f"Atlas of {manifest['model']}", body, 0), durable=False)
    # layer pages
    by_layer: dict[str, list[tuple[Chunk, int]]] = {}
    for layer, chunk, unit in _units(manifest):
        by_layer.setdefault(layer["name"], []).append((chunk, unit))
    for layer in manifest["layers"]:
        name, s = layer["name"], slug(layer["name"])
        cells = []
        for _, unit in by_layer.get(name, []):
            tile = store.tile_path(key, name, unit)
            img = (
                f"<img src='../tiles/{key}/{s}/{unit}.png' alt='{_e(name)}:{unit}' loading='lazy'>"
                if tile.is_file()
                else "<div class='missing'></div>"
            )
            cells.append(f"<a class='tile' href='../units/{s}/{unit}.html'>{img}<span>{unit}</span></a>")
        body = (
            f"<p><a href='../index.html'>atlas</a> / {_e(name)}</p>\n<h1>{_e(name)}</h1>\n"
            f"<div class='grid'>{''.join(cells)}</div>"
        )
        write_text(root / "layers" / f"{s}.html", _page(f"{name} - {manifest['model']}", body, 1), durable=False)
    # unit pages
    for layer, chunk, unit in _units(manifest):
        name, s, kind = layer["name"], slug(layer["name"]), layer["kind"]
        tile = store.tile_path(key, name, unit)
        parts = [
            f"<p><a href='../../index.html'>atlas</a> / <a href='../../layers/{s}.html'>{_e(name)}</a> / {unit}</p>",
            f"<h1>{_e(name)} {'class' if kind == 'class' else 'channel'} {unit}</h1>",
        ]
        nav = []
        if unit > 0:
            nav.append(f"<a rel='prev' href='{unit - 1}.html'>&larr; {unit - 1}</a>")
        if unit + 1 < layer["units"]:
            nav.append(f"<a rel='next' href='{unit + 1}.html'>{unit + 1} &rarr;</a>")
        parts.append(f"<p>{' | '.join(nav)}</p>")
        if tile.is_file():
            parts.append(f"<img class='main' src='../../tiles/{key}/{s}/{unit}.png' alt='{_e(name)}:{unit}'>")
            record = store.chunk_record(key, chunk) if store.is_done(key, chunk) else None
            if record is not None:
                parts.append(f"<p>objective value {record['values'][unit - chunk.start]:.4g}</p>")
        else:
            parts.append("<p class='missing'>Not rendered yet: run the same command again to finish.</p>")
        objective = repr(_objective(kind, name, unit))
        parts.append(f"<h2>Settings</h2><pre class='settings'>objective: {_e(objective)}\n")
        parts.append(_e(json.dumps(manifest["settings"], indent=1, sort_keys=True)) + "</pre>")
        parts.append(f"<h2>Code</h2><pre class='code'>{_e(reproduce_code(manifest, chunk, unit))}</pre>")
        if photo_list and tile.is_file():
            items = _exemplars(store, model, ex_key, kind, name, unit, photo_list, exemplars)
            figs = "".join(
                f"<figure><img src='../../exemplars/{ex_key}/{s}/{_e(it['file'])}' alt='{_e(it['source'])}'>"
                f"<figcaption>{_e(it['source'])} {it['score']:.3g}</figcaption></figure>"
                for it in items
            )
            parts.append(f"<h2>Top natural exemplars</h2><div class='exemplars'>{figs}</div>")
        body = "\n".join(parts)
        write_text(
            root / "units" / s / f"{unit}.html", _page(f"{name}:{unit} - {manifest['model']}", body, 2), durable=False
        )
    return root / "index.html"
