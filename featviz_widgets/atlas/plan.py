"""What an atlas renders: the units of each layer cut into fixed chunks, and the key that
names a tile's settings.

A chunk is a fixed range of one layer's units (``[start, stop)`` with ``start`` a multiple of
the chunk size), so a unit always renders in the same batch: image i of a batch draws its own
noise and transforms from the batch's seed, so the same unit in another batch composition
would give other pixels. A chunk is the unit of work (one task on Ray) and of completion (its
tiles are written, then the chunk is recorded as done).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine import BatchChannels, ClassLogit, FeatvizModel, Objective, RenderSettings, layer_info, main_layers
from ..engine.core.settings import check_int
from ..engine.explore import PerImage
from ..engine.models import LOGITS
from ..errors import InvalidSettingError

FORMAT = 1  # bump when a change to the rendering makes old tiles stale


@dataclass(frozen=True)
class AtlasSettings:
    """Everything that decides a tile's pixels apart from the model and the unit.

    ``render`` holds further :class:`RenderSettings` fields (``lr``, ``tv``, ``transform_strength``...)
    as sorted (name, value) pairs. ``threads`` is the CPU thread count every chunk renders with:
    a convolution's rounding depends on it, so it is part of the key."""

    steps: int = 128
    size: int = 128
    seed: int = 0
    chunk: int = 16
    threads: int = 1
    device: str = "cpu"
    render: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1, 100_000)
        check_int("chunk", self.chunk, 1, 1024)
        check_int("threads", self.threads, 1, 4096)
        extra = dict(self.render)
        for name in ("size", "seed", "batch"):
            if name in extra:
                raise InvalidSettingError(f"{name!r} is an atlas setting of its own, not a render setting.")
        self.render_settings(1)  # validates size, seed and the render fields once, here

    def render_settings(self, batch: int) -> RenderSettings:
        return RenderSettings().replace(size=self.size, seed=self.seed, batch=batch, **dict(self.render))

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["render"] = dict(self.render)
        return d


@dataclass(frozen=True)
class Chunk:
    """Units ``[start, stop)`` of ``layer``; ``kind`` is "channel" or "class" (logits)."""

    layer: str
    kind: str
    start: int
    stop: int

    @property
    def units(self) -> range:
        return range(self.start, self.stop)

    @property
    def name(self) -> str:
        return f"{self.start:05d}-{self.stop:05d}"

    def objective(self) -> Objective:
        if self.kind == "class":
            return PerImage([ClassLogit(u, layer=self.layer) for u in self.units])
        return BatchChannels(self.layer, tuple(self.units))


@dataclass(frozen=True)
class LayerPlan:
    name: str
    kind: str
    units: int
    chunks: tuple[Chunk, ...] = field(default=())


def default_layers(model: FeatvizModel, logits: bool = False) -> list[str]:
    """The model's main layers (the logits only when asked: they are classes, not channels)."""
    return [i.name for i in main_layers(model) if i.name != LOGITS or logits]


def plan_layers(model: FeatvizModel, layers: Sequence[str], chunk: int) -> list[LayerPlan]:
    """One LayerPlan per layer (validated: UnknownLayerError names the valid ones)."""
    if not layers:
        raise InvalidSettingError("An atlas needs at least one layer.")
    if len(set(layers)) != len(layers):
        raise InvalidSettingError(f"Layers listed twice: {sorted({x for x in layers if list(layers).count(x) > 1})}.")
    plans = []
    for name in layers:
        info = layer_info(model, name)
        kind = "class" if name == LOGITS or not info.is_spatial else "channel"
        units = info.channels if kind == "channel" else int(torch.Size(info.shape).numel())
        chunks = tuple(Chunk(name, kind, s, min(s + chunk, units)) for s in range(0, units, chunk))
        plans.append(LayerPlan(name, kind, units, chunks))
    return plans


def model_fingerprint(model: FeatvizModel) -> str:
    """A short hash of the model's name, input size and weights: two models that share a name
    (a random-init and a trained resnet50) never share tiles."""
    h = hashlib.sha256(f"{model.name}|{model.input_size}".encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def settings_key(fingerprint: str, settings: AtlasSettings) -> str:
    """The folder name of a tile's (model, settings): a changed setting renders anew."""
    # The resolved render settings, not the keywords given: lr=0.15 (the default) or none is one key.
    fields = settings.as_dict()
    fields["render"] = settings.render_settings(1).as_dict()
    blob = json.dumps({"format": FORMAT, "model": fingerprint, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def slug(layer: str) -> str:
    """A layer name as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", layer)
