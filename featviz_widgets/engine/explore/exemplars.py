"""Natural exemplars: the crops of real photos that most activate an objective, streamed in
batches with only the current top k held."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from PIL import Image

from ..image.photos import iter_photos, pil_to_tensor
from ..layers.access import capture, layers_by_name
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import Context, Objective, as_objective


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


__all__ = ["Exemplar", "photo_crops", "top_exemplars"]
