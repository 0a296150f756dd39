"""Studies beyond one image: directions vs neurons, aligned interpolation between two
objectives, and layer galleries (cached per model). Each is a headless function the widget
calls; they render with ``PerImage`` and ``run_steps`` (sheets.py)."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from ..core.renderer import Renderer
from ..core.settings import check_int
from ..image.photos import pil_to_tensor
from ..layers.access import capture, layer_info, layers_by_name
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import BatchChannels, Channel, Context, Direction, Objective, as_objective
from .sheets import PerImage, Progress, Sheet, run_steps


def _run_batch(
    model: FeatvizModel,
    objective: Objective,
    batch: int,
    steps: int,
    progress: Progress | None,
    cancel: threading.Event | None,
    **settings: Any,
) -> Renderer:
    steps = check_int("steps", steps, 1, 100_000)
    r = Renderer(model, objective, batch=batch, **settings)
    run_steps(r, steps, progress, cancel)
    return r


def direction_from_photos(model: FeatvizModel, layer: str, photo_a: Image.Image, photo_b: Image.Image) -> torch.Tensor:
    """Mean activation of ``photo_b`` minus that of ``photo_a`` at ``layer``: a direction that
    turns A into B (normalized by ``Direction``)."""
    size = model.input_size
    x = torch.cat([pil_to_tensor(p.resize((size, size))) for p in (photo_a, photo_b)]).to(model.device)
    with torch.no_grad():
        act = Context(capture(model, x, [layer]), x, layers_by_name(model)).spatial(layer).mean(dim=(2, 3))
    return (act[1] - act[0]).cpu()


def compare_directions(
    model: FeatvizModel | str | None,
    layer: str,
    channel: int,
    *,
    n_random: int = 2,
    direction_seed: int = 0,
    steps: int = 128,
    size: int = 128,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    **settings: Any,
) -> Sheet:
    """Render the basis direction of ``channel`` next to ``n_random`` random unit directions of
    the same layer, in one batch with identical settings: are neurons special?"""
    model = ensure_model(model)
    channels = layer_info(model, layer).channels
    objectives: list[Objective] = [Channel(layer, channel)]
    objectives += [Direction.random(layer, channels, seed=direction_seed + i) for i in range(n_random)]
    r = _run_batch(
        model, PerImage(objectives), len(objectives), steps, progress, cancel, size=size, seed=seed, **settings
    )
    labels = [f"{layer} channel {channel}"] + [f"random direction #{direction_seed + i}" for i in range(n_random)]
    return Sheet(r.pil_images(), labels, r.record(), r.measure().tolist())


def interpolate(
    model: FeatvizModel | str | None,
    a: Objective | str,
    b: Objective | str,
    *,
    frames: int = 5,
    steps: int = 128,
    size: int = 96,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    **settings: Any,
) -> Sheet:
    """Frames for alpha = 0..1 of alpha*B + (1 - alpha)*A, sharing a common image component so
    neighbouring frames line up (Distill's "interaction between neurons")."""
    model = ensure_model(model)
    frames = check_int("frames", frames, 2, 64)
    oa, ob = as_objective(a), as_objective(b)
    alphas = [i / (frames - 1) for i in range(frames)]
    objectives = [(1 - t) * oa + t * ob for t in alphas]
    r = _run_batch(
        model, PerImage(objectives), frames, steps, progress, cancel, size=size, seed=seed, shared=True, **settings
    )
    return Sheet(r.pil_images(), [f"alpha={t:.2f}" for t in alphas], r.record(), r.measure().tolist())


GALLERY_CACHE_SIZE = 4  # galleries kept per model, the least recently used dropped first

# Per model object, held weakly: a model's galleries go when it does (a key of ``id(model)``
# could hand a freed model's galleries to a new model that got its id).
_GALLERIES: weakref.WeakKeyDictionary[FeatvizModel, OrderedDict[tuple[Any, ...], Sheet]] = weakref.WeakKeyDictionary()
_GALLERY_LOCK = threading.Lock()


def _cached_gallery(model: FeatvizModel, key: tuple[Any, ...]) -> Sheet | None:
    with _GALLERY_LOCK:
        sheets = _GALLERIES.get(model)
        if sheets is None or key not in sheets:
            return None
        sheets.move_to_end(key)
        return sheets[key]


def _keep_gallery(model: FeatvizModel, key: tuple[Any, ...], sheet: Sheet) -> None:
    with _GALLERY_LOCK:
        sheets = _GALLERIES.setdefault(model, OrderedDict())
        sheets[key] = sheet
        while len(sheets) > GALLERY_CACHE_SIZE:
            sheets.popitem(last=False)


def layer_gallery(
    model: FeatvizModel | str | None,
    layer: str,
    *,
    channels: Sequence[int] | None = None,
    batch: int = 16,
    steps: int = 48,
    size: int = 64,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    **settings: Any,
) -> Sheet:
    """Render channels of ``layer`` (all by default), ``batch`` at a time on the model's device.
    Cached per model, layer, channels and settings (the last ``GALLERY_CACHE_SIZE`` of each
    model, while the model lives): a second call returns at once."""
    model = ensure_model(model)
    info = layer_info(model, layer)
    chans = list(range(info.channels)) if channels is None else [int(c) for c in channels]
    batch = check_int("batch", batch, 1, 1024)
    key = (layer, tuple(chans), steps, size, seed, tuple(sorted(settings.items())))
    cached = _cached_gallery(model, key)
    if cached is not None:
        return cached
    images: list[Image.Image] = []
    values: list[float] = []
    total = len(chans) * steps
    done = 0
    for start in range(0, len(chans), batch):
        chunk = chans[start : start + batch]
        objective = BatchChannels(layer, tuple(chunk))
        r = Renderer(model, objective, batch=len(chunk), size=size, seed=seed, **settings)
        done = run_steps(r, steps, progress, cancel, done=done, total=total, weight=len(chunk))
        images += r.pil_images()
        values += r.measure().tolist()
    sheet = Sheet(
        images,
        [f"{layer}:{c}" for c in chans],
        {"layer": layer, "steps": steps, "size": size, "seed": seed, **settings},
        values,
    )
    _keep_gallery(model, key, sheet)
    return sheet


__all__ = [
    "GALLERY_CACHE_SIZE",
    "compare_directions",
    "direction_from_photos",
    "interpolate",
    "layer_gallery",
]
