"""The in-process backend: the chunks one after another on this machine's device (all CPU
cores by default: ``settings.threads``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..engine import FeatvizModel
from .plan import AtlasSettings, Chunk
from .work import ChunkResult, render_chunk


def run_local(model: FeatvizModel, chunks: Iterable[Chunk], settings: AtlasSettings) -> Iterator[ChunkResult]:
    """Render ``chunks`` in order, yielding each result as it is done."""
    for chunk in chunks:
        yield render_chunk(model, chunk, settings)
