"""Exploration beyond one image: directions vs neurons, aligned interpolation, layer galleries,
DeepDream on a photo, and natural exemplars. Each is a headless function the widget calls."""

from __future__ import annotations

import heapq
import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ...errors import InvalidSettingError
from ..core.pictures import to_pil
from ..core.renderer import Renderer
from ..core.settings import check_int
from ..image.accentuation import check_stay_close, photo_bounds
from ..image.layout import grid
from ..image.photos import iter_photos, pil_to_tensor
from ..layers.access import LayerInfo, capture, layer_info, layers_by_name
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import (
    BatchChannels,
    Channel,
    Context,
    Direction,
    ImagePenalty,
    Objective,
    as_objective,
)

Progress = Callable[[int, int], None]


class PerImage(Objective):
    """Image i of the batch maximizes ``objectives[i]``: several targets rendered side by side
    with identical settings (same steps, schedule and parameterization)."""

    layers: frozenset[str]

    def __init__(self, objectives: Sequence[Objective]) -> None:
        if not objectives:
            raise InvalidSettingError("PerImage needs at least one objective.")
        self.objectives = tuple(objectives)
        self.layers = frozenset().union(*(o.layers for o in self.objectives))

    def __call__(self, ctx: Context) -> torch.Tensor:
        values = [o(ctx)[i] for i, o in enumerate(self.objectives)]
        return torch.stack(values)

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        if batch != len(self.objectives):
            raise InvalidSettingError(f"PerImage has {len(self.objectives)} objectives for a batch of {batch} images.")
        for o in self.objectives:
            o.check(layers, batch)

    def __repr__(self) -> str:
        return f"PerImage([{', '.join(map(repr, self.objectives))}])"


class StayClose(ImagePenalty):
    """Mean squared distance to a reference photo: subtracted, it keeps a feature-accentuated
    image close to the photo it started from."""

    def __init__(self, reference: torch.Tensor) -> None:
        # Compared and hashed by value, like every objective (``Direction`` compares its
        # vector): a copy, so the photo cannot change under a Sum that hashed it.
        self.reference = reference.detach().clone()

    def __call__(self, ctx: Context) -> torch.Tensor:
        ref = self.reference.to(ctx.image.device, ctx.image.dtype)
        if ref.shape[-2:] != ctx.image.shape[-2:]:
            ref = F.interpolate(ref, ctx.image.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        return (ctx.image - ref).pow(2).mean(dim=(1, 2, 3))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StayClose) and torch.equal(self.reference, other.reference)

    def __hash__(self) -> int:
        return hash(tuple(self.reference.shape))  # equal tensors have equal shapes

    def __repr__(self) -> str:
        return "StayClose(<photo>)"


@dataclass
class Sheet:
    """Images rendered together, their labels, and the settings that made them."""

    images: list[Image.Image]
    labels: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    values: list[float] = field(default_factory=list)

    def strip(self, gap: int = 4) -> Image.Image:
        """The images side by side on white."""
        return Image.fromarray(grid(self.images, len(self.images), gap))


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


def run_steps(
    r: Renderer,
    steps: int,
    progress: Progress | None,
    cancel: threading.Event | None,
    *,
    done: int = 0,
    total: int | None = None,
    weight: int = 1,
) -> int:
    """``steps`` steps of ``r``, calling ``progress(done, total)`` after each with ``done`` grown by
    ``weight`` (the gallery counts images); stops with InterruptedError as soon as ``cancel`` is
    set. Returns ``done``."""
    total = steps * weight if total is None else total
    for _ in range(steps):
        if cancel is not None and cancel.is_set():
            raise InterruptedError("cancelled")
        r.step()
        done += weight
        if progress is not None:
            progress(done, total)
    return done


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


def deepdream_photo(
    model: FeatvizModel | str | None,
    photo: Image.Image,
    objective: Objective | str,
    *,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps_per_octave: int = 20,
    strength: float = 0.05,
    stay_close: float = 0.0,
    max_side: int = 320,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Image.Image:
    """DeepDream (or feature accentuation, with ``stay_close`` > 0) on a photo: optimize the
    photo's pixels for ``objective`` from a small octave up to full size; ``strength`` is the
    learning rate. ``stay_close`` from 0 (plain DeepDream) to 1 bounds how far each pixel may
    move from the photo (``accentuation.stay_close_radius``: no bound at 0, 6 grey levels at 1);
    the distance from the photo falls steadily as it rises (docs/accentuation.md)."""
    model = ensure_model(model)
    octaves = check_int("octaves", octaves, 1, 8)
    steps_per_octave = check_int("steps_per_octave", steps_per_octave, 1, 10_000)
    if not 1.0 < octave_scale <= 3.0:
        raise InvalidSettingError(f"octave_scale must be in (1, 3], got {octave_scale!r}.")
    stay_close = check_stay_close(stay_close)
    photo = photo.convert("RGB")
    photo.thumbnail((max_side, max_side))
    ref = pil_to_tensor(photo)
    objective = as_objective(objective)
    bounds = photo_bounds(ref, stay_close)
    h, w = ref.shape[-2:]
    current = ref
    total, done = octaves * steps_per_octave, 0
    for k in reversed(range(octaves)):
        oh, ow = max(16, round(h / octave_scale**k)), max(16, round(w / octave_scale**k))
        r = Renderer(
            model,
            objective,
            size=(oh, ow),
            param="pixels",
            lr=strength,
            seed=seed,
            transform_strength=0.5,
            init_image=current,
        )
        if bounds is not None:
            r.set_bounds(*bounds)  # resized to the octave
        done = run_steps(r, steps_per_octave, progress, cancel, done=done, total=total)
        current = r.image().cpu()
    return to_pil(current)[0]


@dataclass(order=True)
class Exemplar:
    """A crop of a natural image and the objective's value on it."""

    score: float
    source: str = field(compare=False)
    box: tuple[int, int, int, int] = field(compare=False)
    crop: Image.Image = field(compare=False, repr=False)


def photo_crops(
    img: Image.Image, per_side: int = 3, frac: float = 0.6
) -> Iterable[tuple[tuple[int, int, int, int], Image.Image]]:
    """The whole photo, then a per_side x per_side grid of square crops of ``frac`` of its short
    side, each with its box: what top_exemplars and the atlas's layer exemplars score."""
    w, h = img.size
    side = int(min(w, h) * frac)
    yield (0, 0, w, h), img
    xs = [round(i * (w - side) / max(per_side - 1, 1)) for i in range(per_side)]
    ys = [round(i * (h - side) / max(per_side - 1, 1)) for i in range(per_side)]
    for x, y in itertools.product(xs, ys):
        box = (x, y, x + side, y + side)
        yield box, img.crop(box)


def top_exemplars(
    model: FeatvizModel | str | None,
    objective: Objective | str,
    photos: str | Iterable[tuple[str, Image.Image]] | None = None,
    *,
    k: int = 6,
    crops_per_side: int = 3,
    crop_fraction: float = 0.6,
    input_size: int = 160,
    batch: int = 16,
    cancel: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Exemplar]:
    """The ``k`` image crops (the best one per photo) that most activate ``objective``, best
    first. ``photos`` is a
    folder, an iterable of (name, PIL image), or None for the bundled samples. Streaming: one
    batch of crops and the current top-k are all that is held in memory."""
    model = ensure_model(model)
    objective = as_objective(objective)
    source = photos if not isinstance(photos, (str, type(None))) else iter_photos(photos)
    best: list[Exemplar] = []  # a min-heap of the k best so far
    pending: list[tuple[str, tuple[int, int, int, int], Image.Image]] = []

    def flush() -> None:
        if not pending:
            return
        x = torch.cat(
            [pil_to_tensor(c.resize((input_size, input_size), Image.Resampling.BILINEAR)) for _, _, c in pending]
        )
        x = x.to(model.device)
        with torch.no_grad():
            values = objective(Context(capture(model, x, objective.layers), x, layers_by_name(model))).tolist()
        for (name, box, crop), v in zip(pending, values, strict=True):
            item = Exemplar(float(v), name, box, crop.copy())
            same = next((i for i, e in enumerate(best) if e.source == name), None)
            if same is not None:  # one crop per photo: keep its best
                if item.score > best[same].score:
                    best[same] = item
                    heapq.heapify(best)
            elif len(best) < k:
                heapq.heappush(best, item)
            elif item.score > best[0].score:
                heapq.heapreplace(best, item)
        pending.clear()

    for seen, (name, img) in enumerate(source, start=1):
        if cancel is not None and cancel.is_set():
            break
        for box, crop in photo_crops(img, crops_per_side, crop_fraction):
            pending.append((name, box, crop))
            if len(pending) >= batch:
                flush()
        if progress is not None:
            progress(seen)
    flush()
    return sorted(best, reverse=True)


__all__ = [
    "Exemplar",
    "PerImage",
    "Sheet",
    "StayClose",
    "compare_directions",
    "deepdream_photo",
    "direction_from_photos",
    "interpolate",
    "layer_gallery",
    "top_exemplars",
]
