"""The in-process backend: the work items one after another on this machine's device (all CPU
cores by default: ``settings.threads``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..engine import FeatvizModel
from .exemplars import Photos
from .plan import AtlasSettings
from .work import WorkItem, WorkResult, run_item


def run_local(
    model: FeatvizModel, items: Iterable[WorkItem], settings: AtlasSettings, photos: Photos | None = None
) -> Iterator[WorkResult]:
    """Run ``items`` in order, yielding each result as it is done."""
    for item in items:
        yield run_item(model, item, settings, photos)
