"""Natural exemplars for a whole layer in one pass over the photos: every crop of every photo
goes through the model once and is scored for all the layer's units together (the channel's
mean activation, or the class logit), keeping per unit the best crop of each photo and the top
``k`` photos. The same crops, scores and choice as ``engine.explore.top_exemplars`` run once
per unit, at the cost of one of those runs for the whole layer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..engine import Context, FeatvizModel, capture
from ..engine.explore import photo_crops
from ..engine.image import iter_photos, pil_to_tensor
from ..engine.layers import layers_by_name

Box = tuple[int, int, int, int]
Photos = list[tuple[str, Image.Image]]


@dataclass(frozen=True)
class ExemplarJob:
    """The top ``k`` natural exemplars of every unit of ``layer`` (``kind`` "channel"/"class")."""

    layer: str
    kind: str
    units: int
    k: int

    @property
    def name(self) -> str:
        return "exemplars"


@dataclass
class ExemplarResult:
    """``photo[i, u]``, ``box[i, u]`` and ``score[i, u]``: unit u's i-th best photo (best first),
    ``photo`` -1 where fewer than i+1 photos were given."""

    job: ExemplarJob
    photo: np.ndarray  # (k, units) int
    box: np.ndarray  # (k, units, 4) int
    score: np.ndarray  # (k, units) float
    seconds: float

    def items(self, unit: int) -> Iterator[tuple[int, Box, float]]:
        for i in range(self.photo.shape[0]):
            p = int(self.photo[i, unit])
            if p >= 0:
                b = self.box[i, unit]
                yield p, (int(b[0]), int(b[1]), int(b[2]), int(b[3])), float(self.score[i, unit])


def load_photos(folder: str | object) -> Photos:
    """The photos of a folder as RGB thumbnails (at most 512 px a side), sorted by path."""
    out = []
    for name, img in iter_photos(folder):  # type: ignore[arg-type]
        img.thumbnail((512, 512))
        out.append((name, img))
    return out


def photos_key(photos: Photos, k: int) -> str:
    h = hashlib.sha256(str(k).encode())
    for name, img in photos:
        h.update(name.encode())
        h.update(img.tobytes())
    return h.hexdigest()[:12]


def layer_exemplars(
    model: FeatvizModel,
    job: ExemplarJob,
    photos: Sequence[tuple[str, Image.Image]],
    *,
    input_size: int = 160,
    batch: int = 16,
) -> ExemplarResult:
    """One pass over ``photos`` for every unit of ``job.layer``."""
    import time

    t0 = time.perf_counter()
    names = layers_by_name(model)
    best = torch.full((len(photos), job.units), -torch.inf, dtype=torch.float64)
    best_box = torch.zeros((len(photos), job.units), dtype=torch.long)
    boxes: list[list[Box]] = [[] for _ in photos]
    pending: list[tuple[int, int, Image.Image]] = []

    def flush() -> None:
        if not pending:
            return
        x = torch.cat(
            [pil_to_tensor(c.resize((input_size, input_size), Image.Resampling.BILINEAR)) for _, _, c in pending]
        ).to(model.device)
        with torch.no_grad():
            ctx = Context(capture(model, x, frozenset([job.layer])), x, names)
            if job.kind == "class":
                scores = ctx.activations[job.layer].flatten(1)[:, : job.units]
            else:
                scores = ctx.spatial(job.layer).mean(dim=(2, 3))[:, : job.units]  # the planned units
        scores = scores.double().cpu()
        for row, (p, c, _) in enumerate(pending):
            better = scores[row] > best[p]  # the first best crop of a photo wins ties (as top_exemplars)
            best[p] = torch.where(better, scores[row], best[p])
            best_box[p] = torch.where(better, torch.full_like(best_box[p], c), best_box[p])
        pending.clear()

    for p, (_, img) in enumerate(photos):
        for c, (box, crop) in enumerate(photo_crops(img)):
            boxes[p].append(box)
            pending.append((p, c, crop))
            if len(pending) >= batch:
                flush()
    flush()
    k = min(job.k, len(photos))
    photo = np.full((job.k, job.units), -1, dtype=np.int64)
    boxes_out = np.zeros((job.k, job.units, 4), dtype=np.int64)
    score = np.zeros((job.k, job.units), dtype=np.float64)
    if k:
        top = torch.topk(best, k, dim=0)  # (k, units), best first
        photo[:k] = top.indices.numpy()
        score[:k] = top.values.numpy()
        for i in range(k):
            for u in range(job.units):
                p = int(photo[i, u])
                boxes_out[i, u] = boxes[p][int(best_box[p, u])]
    return ExemplarResult(job, photo, boxes_out, score, time.perf_counter() - t0)
