"""Galleries of directions, ready to show: each direction rendered with identical settings and
labelled with its scores (the widget's Explore -> "Directions from photos"), a method x direction
grid of a comparison, and neuron groups beside their heatmaps over the photo."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..core.renderer import Renderer
from ..core.settings import check_int
from ..image.layout import caption
from ..image.layout import grid as lay_out
from ..layers.access import layer_info
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import Direction
from .collect import ImagesArg, collect
from .directions import fit_directions, load_directions
from .groups import NeuronGroups
from .measures import selectivity
from .sheets import PerImage, Progress, Sheet, run_steps


@dataclass
class DirectionSheet(Sheet):
    """A gallery of directions of one layer; ``objective(i)`` opens tile i as a live objective."""

    layer: str = ""
    directions: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    cossim_power: float = 0.0

    def objective(self, i: int) -> Direction:
        return Direction(self.layer, self.directions[i], cossim_power=self.cossim_power)


def directions_gallery(
    model: FeatvizModel | str | None,
    layer: str,
    directions: torch.Tensor | np.ndarray | str,
    *,
    labels: Sequence[str] | None = None,
    scores: Mapping[str, Sequence[float]] | None = None,
    steps: int = 64,
    size: int = 96,
    seed: int = 0,
    cossim_power: float = 0.0,
    batch: int = 32,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    **settings: Any,
) -> DirectionSheet:
    """Render each row of ``directions`` (k x C; a tensor, array or .npy/.pt path) with
    ``Direction(layer, d, cossim_power=...)``, ``batch`` at a time with identical settings. Labels
    carry ``scores`` (measure -> one value a direction); ``values`` are the objective values."""
    model = ensure_model(model)
    d = load_directions(directions, layer_info(model, layer).channels)
    steps, batch = check_int("steps", steps, 1, 100_000), check_int("batch", batch, 1, 1024)
    names = list(labels) if labels is not None else [f"{layer} direction {i}" for i in range(len(d))]
    for measure, vals in (scores or {}).items():
        names = [f"{n} · {measure} {float(v):.3g}" for n, v in zip(names, vals, strict=True)]
    images: list[Image.Image] = []
    values: list[float] = []
    done = 0
    for start in range(0, len(d), batch):
        chunk = d[start : start + batch]
        objective = PerImage([Direction(layer, v, cossim_power=cossim_power) for v in chunk])
        r = Renderer(model, objective, batch=len(chunk), size=size, seed=seed, **settings)
        done = run_steps(r, steps, progress, cancel, done=done, total=steps * len(d), weight=len(chunk))
        images += r.pil_images()
        values += r.measure().tolist()
    return DirectionSheet(
        images,
        names,
        {"layer": layer, "steps": steps, "size": size, "seed": seed, "cossim_power": cossim_power, **settings},
        values,
        layer=layer,
        directions=d,
        cossim_power=cossim_power,
    )


def directions_from_photos(
    model: FeatvizModel | str | None,
    layer: str,
    images: ImagesArg = None,
    method: str = "nmf",
    k: int = 8,
    *,
    steps: int = 64,
    size: int = 96,
    seed: int = 0,
    negative: str = "clip",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    **settings: Any,
) -> DirectionSheet:
    """The widget's "Directions from photos": ``k`` directions of ``layer`` found by ``method``
    from ``images`` (a folder; None for the probe photos), rendered in one gallery, each labelled
    with its selectivity (excess kurtosis over the photos' crops, see docs/directions.md)."""
    model = ensure_model(model)
    channels = layer_info(model, layer).channels
    got = collect(model, [layer], images, seed=seed)
    if method in ("neuron", "random"):
        d = fit_directions(np.zeros((0, channels)), method, k, seed=seed)
    else:
        d = fit_directions(got.samples[layer], method, k, seed=seed, negative=negative)
    sel = selectivity(got.pooled[layer] @ d.T).tolist()
    labels = [f"{method} #{i}" for i in range(len(d))]
    sheet = directions_gallery(
        model,
        layer,
        d,
        labels=labels,
        scores={"selectivity": sel},
        steps=steps,
        size=size,
        seed=seed,
        progress=progress,
        cancel=cancel,
        **settings,
    )
    sheet.settings.update(method=method, k=k, images=str(images) if images is not None else "probe photos")
    return sheet


def grid(sheet: Sheet, gap: int = 4, label_width: int = 64) -> Image.Image:
    """A sheet labelled ``"method #i"`` as a grid: one row per method, its name on the left."""
    rows: dict[str, list[Image.Image]] = {}
    for img, label in zip(sheet.images, sheet.labels, strict=True):
        rows.setdefault(label.split(" #")[0], []).append(img)
    h = sheet.images[0].height
    cols = max(len(v) for v in rows.values())
    cells = [row[c] if c < len(row) else None for row in rows.values() for c in range(cols)]
    out = Image.fromarray(lay_out(cells, cols, gap, pad=(label_width, 0, gap, 0)))
    for r, name in enumerate(rows):
        strip = Image.new("RGB", (label_width, h), "white")  # the name ends where the tiles begin
        caption(strip, (4, h // 2 - 6), [name])
        out.paste(strip, (0, r * (h + gap)))
    return out


def groups_sheet(
    model: FeatvizModel | str | None,
    groups: NeuronGroups,
    *,
    steps: int = 64,
    size: int = 96,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    **settings: Any,
) -> DirectionSheet:
    """Each neuron group's visualization above its heatmap over the photo, one tile a group."""
    sheet = directions_gallery(
        model,
        groups.layer,
        groups.directions,
        labels=[f"group {i}" for i in range(len(groups.directions))],
        steps=steps,
        size=size,
        seed=seed,
        progress=progress,
        cancel=cancel,
        **settings,
    )
    pairs = zip(sheet.images, groups.overlays(size), strict=True)
    sheet.images = [Image.fromarray(lay_out([viz, overlay], 1, 2)) for viz, overlay in pairs]
    return sheet


__all__ = ["DirectionSheet", "directions_from_photos", "directions_gallery", "grid", "groups_sheet"]
