"""The unit of work: render one chunk, the same way in-process and on a Ray worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine import FeatvizModel, Renderer
from ..engine.core.renderer import to_uint8
from .plan import AtlasSettings, Chunk


@dataclass
class ChunkResult:
    """The tiles of one chunk: ``images[i]`` (H, W, 3 uint8) is unit ``chunk.start + i``."""

    chunk: Chunk
    images: np.ndarray
    values: list[float]
    record: dict[str, Any]
    seconds: float


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
