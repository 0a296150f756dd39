"""Images rendered together: ``PerImage`` (image i of a batch maximizes objective i, one
optimization for all), the ``Sheet`` they make, and ``run_steps``, the cancellable, reporting
step loop every study, gallery and comparison shares."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from ...errors import InvalidSettingError
from ..core.renderer import Renderer
from ..image.layout import grid
from ..layers.access import LayerInfo
from ..objectives import Context, Objective

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


__all__ = ["PerImage", "Progress", "Sheet", "run_steps"]
