"""The units of work: render one chunk, or find one layer's natural exemplars, the same way
in-process and on a Ray worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine import FeatvizModel, Renderer
from ..engine.core import to_uint8
from .exemplars import ExemplarJob, ExemplarResult, Photos, layer_exemplars
from .plan import AtlasSettings, Chunk


@dataclass
class ChunkResult:
    """The tiles of one chunk: ``images[i]`` (H, W, 3 uint8) is unit ``chunk.start + i``."""

    chunk: Chunk
    images: np.ndarray
    values: list[float]
    record: dict[str, Any]
    seconds: float


WorkItem = Chunk | ExemplarJob
WorkResult = ChunkResult | ExemplarResult


def render_chunk(model: FeatvizModel, chunk: Chunk, settings: AtlasSettings) -> ChunkResult:
    """Optimize the chunk's units as one batch with ``settings.threads`` CPU threads."""
    import time

    t0 = time.perf_counter()
    batch = len(chunk.units)
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        r = Renderer(model, chunk.objective(), settings.render_settings(batch))
        r.run(settings.steps)
        images = to_uint8(r.image())
        values = [float(v) for v in r.measure().tolist()]
    finally:
        torch.set_num_threads(previous)
    return ChunkResult(chunk, images, values, r.record(), time.perf_counter() - t0)


def run_item(model: FeatvizModel, item: WorkItem, settings: AtlasSettings, photos: Photos | None) -> WorkResult:
    if isinstance(item, Chunk):
        return render_chunk(model, item, settings)
    if photos is None:
        raise ValueError("an exemplar job needs the photos")
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return layer_exemplars(model, item, photos)
    finally:
        torch.set_num_threads(previous)
