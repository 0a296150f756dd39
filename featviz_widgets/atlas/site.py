"""The atlas as plain static files that open from disk (file://): no server, no scripts.

    DIR/index.html                    the model, the settings (once) and a link per layer
    DIR/layers/LAYER.html             a labelled grid of the layer's tiles
    DIR/units/LAYER/UNIT.html         one tile: image, settings, the code that reproduces it,
                                      and its top natural exemplars when a photo folder is given

``SiteWriter`` writes a layer's pages as soon as the layer is finished, and the index after
each layer, so the site is usable while a long run grows it. Paths are relative, so the folder
can be moved or zipped. Tiles not verified done (an unfinished run, a damaged file) show as
empty cells. Every text from the model, the layers or the photos goes through
``markup.escape`` (``html.escape(..., quote=True)``), the package's one escape; file names are ``plan.slug``s and numbers.
"""

from __future__ import annotations

import json
from typing import Any

from ..engine import Channel, ClassLogit
from ..markup import escape
from .plan import AtlasSettings, Chunk, slug
from .store import AtlasStore, write_text

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
a { color: #0645ad; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(112px, 1fr)); gap: 8px; }
.tile { display: block; text-align: center; text-decoration: none; font-size: 12px; }
.tile img, .tile .missing { width: 100%; aspect-ratio: 1; display: block; image-rendering: auto; background: #eee; }
img.main { width: 320px; max-width: 100%; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; }
.exemplars { display: flex; gap: 8px; flex-wrap: wrap; } .exemplars figure { margin: 0; font-size: 12px; }
.exemplars img { width: 128px; height: 128px; object-fit: cover; }
"""


def _page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><link rel='stylesheet' href='{up}atlas.css'></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _comment(text: str) -> str:
    """Text safe inside a one-line Python comment (no line breaks, printable)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def reproduce_code(manifest: dict[str, Any], chunk: Chunk, unit: int) -> str:
    """Python that renders this tile's pixels again: its whole chunk as one batch, with the
    atlas's thread count (a convolution's rounding depends on it)."""
    settings = AtlasSettings.from_dict(manifest["settings"])
    rs = settings.render_settings(len(chunk.units))
    source = manifest.get("model_source")
    options = "".join(f", {k}={v!r}" for k, v in dict(manifest.get("model_load_options") or {}).items())
    if source:
        load = f"model = load_model({source!r}{options}, device={settings.device!r})\n"
    else:
        cls = _comment(str(manifest.get("model_class") or "nn.Module"))
        load = (
            f"# my_module: your own nn.Module, the atlas's model {_comment(repr(manifest['model']))} with its weights\n"
            f"model = load_model(my_module{options}, device={settings.device!r})  # pass your own nn.Module (class {cls})\n"
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
        f"{load}"
        f"# Unit {unit} rendered in one batch with the rest of its chunk, units {chunk.start}..{chunk.stop - 1}.\n"
        f"renderer = Renderer(model, {objective}, {rs!r})\n"
        f"renderer.run({settings.steps})\n"
        f"image = renderer.pil_images()[{unit - chunk.start}]\n"
    )


def _chunks(manifest: dict[str, Any], layer: dict[str, Any]) -> list[Chunk]:
    size = manifest["settings"]["chunk"]
    units = layer["units"]
    return [Chunk(layer["name"], layer["kind"], s, min(s + size, units)) for s in range(0, units, size)]


class SiteWriter:
    """The pages of ``manifest``'s atlas (the tiles of its key) in ``store``; ``ex_key`` names
    the exemplars' folder when a photo folder was given."""

    def __init__(self, store: AtlasStore, manifest: dict[str, Any], ex_key: str | None = None) -> None:
        self.store, self.manifest, self.ex_key = store, manifest, ex_key
        self.key = manifest["key"]
        self.finished: set[str] = set()
        write_text(store.root / "atlas.css", CSS, durable=False)

    def _done_units(self, layer: dict[str, Any]) -> int:
        return sum(len(c.units) for c in _chunks(self.manifest, layer) if self.store.is_done(self.key, c))

    def write_index(self) -> None:
        m = self.manifest
        settings_rows = "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(json.dumps(v))}</td></tr>" for k, v in sorted(m["settings"].items())
        )
        rows = []
        for layer in m["layers"]:
            kind = "classes" if layer["kind"] == "class" else "channels"
            units = f"{layer['units']} {kind}"
            if layer.get("of", layer["units"]) != layer["units"]:
                units = f"{layer['units']} of {layer['of']} {kind}"
            state = "" if layer["name"] in self.finished else " (in progress)"
            link = f"<a class='layer' href='layers/{slug(layer['name'])}.html'>{escape(layer['name'])}</a>{state}"
            rows.append(f"<tr><td>{link}</td><td>{escape(units)}</td><td>{self._done_units(layer)} rendered</td></tr>")
        body = (
            f"<h1>Atlas of {escape(m['model'])}</h1>\n"
            f"<p>Every unit of {len(m['layers'])} layer{'s' if len(m['layers']) != 1 else ''}; key <code>{escape(self.key)}</code>. "
            f"{len(self.finished)} of {len(m['layers'])} layers finished.</p>\n"
            f"<table id='layers'><tr><th>layer</th><th>units</th><th>tiles</th></tr>{''.join(rows)}</table>\n"
            f"<h2>Settings</h2><table id='settings'>{settings_rows}</table>"
        )
        write_text(self.store.root / "index.html", _page(f"Atlas of {m['model']}", body, 0), durable=False)

    def write_layer(self, name: str, exemplars: dict[str, Any] | None = None, finished: bool = True) -> None:
        """The layer's page and, once it is ``finished``, its units' pages (``exemplars``: the
        layer's verified record). A unit whose chunk is not verified done is an empty cell,
        without a link."""
        m, store, key = self.manifest, self.store, self.key
        layer = next(x for x in m["layers"] if x["name"] == name)
        s, model = slug(name), m["model"]
        cells = []
        chunks = _chunks(m, layer)
        for chunk in chunks:
            done = store.is_done(key, chunk)
            for unit in chunk.units:
                if done and finished:
                    img = f"<img src='../tiles/{key}/{s}/{unit}.png' alt='{escape(name)}:{unit}' loading='lazy'>"
                    cells.append(f"<a class='tile' href='../units/{s}/{unit}.html'>{img}<span>{unit}</span></a>")
                elif done:
                    img = f"<img src='../tiles/{key}/{s}/{unit}.png' alt='{escape(name)}:{unit}' loading='lazy'>"
                    cells.append(f"<div class='tile'>{img}<span>{unit}</span></div>")
                else:
                    cells.append(f"<div class='tile'><div class='missing'></div><span>{unit}</span></div>")
        body = (
            f"<p><a href='../index.html'>atlas</a> / {escape(name)}</p>\n<h1>{escape(name)}</h1>\n"
            f"<div class='grid'>{''.join(cells)}</div>"
        )
        write_text(store.root / "layers" / f"{s}.html", _page(f"{name} - {model}", body, 1), durable=False)
        if not finished:
            return
        for chunk in chunks:
            record = store.chunk_record(key, chunk)
            for unit in chunk.units:
                self._write_unit(layer, chunk, unit, record, exemplars)
        self.finished.add(name)

    def _write_unit(
        self,
        layer: dict[str, Any],
        chunk: Chunk,
        unit: int,
        record: dict[str, Any] | None,
        exemplars: dict[str, Any] | None,
    ) -> None:
        m, key = self.manifest, self.key
        name, s, kind = layer["name"], slug(layer["name"]), layer["kind"]
        parts = [
            f"<p><a href='../../index.html'>atlas</a> / <a href='../../layers/{s}.html'>{escape(name)}</a> / {unit}</p>",
            f"<h1>{escape(name)} {'class' if kind == 'class' else 'channel'} {unit}</h1>",
        ]
        nav = []
        if unit > 0:
            nav.append(f"<a rel='prev' href='{unit - 1}.html'>&larr; {unit - 1}</a>")
        if unit + 1 < layer["units"]:
            nav.append(f"<a rel='next' href='{unit + 1}.html'>{unit + 1} &rarr;</a>")
        parts.append(f"<p>{' | '.join(nav)}</p>")
        if record is not None:
            parts.append(f"<img class='main' src='../../tiles/{key}/{s}/{unit}.png' alt='{escape(name)}:{unit}'>")
            parts.append(f"<p>objective value {escape(format(float(record['values'][unit - chunk.start]), '.4g'))}</p>")
        else:
            parts.append("<p class='missing'>Not rendered yet: run the same command again to finish.</p>")
        objective = repr(ClassLogit(unit, layer=name) if kind == "class" else Channel(name, unit))
        parts.append(f"<h2>Settings</h2><pre class='settings'>objective: {escape(objective)}\n")
        parts.append(escape(json.dumps(m["settings"], indent=1, sort_keys=True)) + "</pre>")
        parts.append(f"<h2>Code</h2><pre class='code'>{escape(reproduce_code(m, chunk, unit))}</pre>")
        if exemplars is not None and record is not None and self.ex_key:
            items = exemplars["units"][unit]
            figs = "".join(
                f"<figure><img src='../../exemplars/{self.ex_key}/{s}/{escape(it['file'])}' alt='{escape(it['source'])}'>"
                f"<figcaption>{escape(it['source'])} {escape(format(float(it['score']), '.3g'))}</figcaption></figure>"
                for it in items
            )
            parts.append(f"<h2>Top natural exemplars</h2><div class='exemplars'>{figs}</div>")
        body = "\n".join(parts)
        write_text(
            self.store.root / "units" / s / f"{unit}.html",
            _page(f"{name}:{unit} - {m['model']}", body, 2),
            durable=False,
        )
