"""What the engine knows about a model, found by running it, in one owner: ``ModelInfo``.

Every ``FeatvizModel`` carries one as ``model.info`` (as timm keeps ``FeatureInfo`` beside a
network). It finds out, once and on first use, the model's layers at each probed input size
(output shapes in execution order, layouts, groups; probe.py, layouts.py, layer_choice.py), the
index of the layers by name at the model's input size, and which input sides the model runs on.
Everyone else reads these facts through it (``layers.list_layers``, ``input_size.fed_size``...);
nothing else stores them. When the model refuses the input size it was declared with, the probe
corrects ``model.input_size`` to the size the network says it takes, once, before any layer is
recorded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...errors import ModelInputError, unknown_layer
from . import layouts as L
from .input_size import natural_size
from .layer_choice import choose
from .probe import ProbeRecord, probe

if TYPE_CHECKING:
    from ..models.loaders import FeatvizModel

LOGITS = "logits"  # the name of the network's output, a layer like the others


@dataclass(frozen=True)
class LayerInfo:
    """One layer: dotted name, output shape for one image at the probe size, execution order,
    and where its channels are.

    ``layout`` is ``chw`` (C, H, W), ``hwc`` (H, W, C), ``tokens`` (L, C) with
    ``prefix_tokens`` class/register tokens before the patch tokens, ``vector`` (C,) or
    ``other``; left empty, it is guessed from the shape. ``main`` marks the layers
    ``main_layers`` offers, ``group`` the dropdown group they belong to."""

    name: str
    shape: tuple[int, ...]
    order: int
    layout: str = ""
    prefix_tokens: int = 0
    group: str = ""
    main: bool = False

    def __post_init__(self) -> None:
        if not self.layout:
            layout, prefix = L.detect(self.shape, None, None)
            object.__setattr__(self, "layout", layout)
            object.__setattr__(self, "prefix_tokens", prefix)

    @property
    def channels(self) -> int:
        """The size of the channel axis: C of (C, H, W), (H, W, C), tokens (L, C) or (C,)."""
        return L.channels(self.shape, self.layout)

    @property
    def grid(self) -> tuple[int, int] | None:
        """(H, W) of the positions neuron objectives index (patch tokens: their grid)."""
        return L.grid(self.shape, self.layout, self.prefix_tokens)

    @property
    def is_spatial(self) -> bool:
        """A feature map or tokens: channel and neuron objectives apply directly."""
        return self.layout in L.SPATIAL

    def __str__(self) -> str:
        return f"{self.name} {'x'.join(map(str, self.shape))}"


def _input_error(exc: Exception, size: int) -> ModelInputError:
    return ModelInputError(
        f"The model raised {type(exc).__name__} on a 1x3x{size}x{size} RGB image: {exc}. "
        "featviz_widgets feeds models RGB images in [0, 1] (normalized inside the wrapper); "
        "check load_model's input_size, mean/std and in_channels."
    )


def _probe_natural(model: FeatvizModel) -> tuple[dict[str, ProbeRecord], object]:
    """Probe at the model's input size; when the model refuses it, at the size it says it takes
    (then kept as its input size)."""
    first = model.input_size
    tried = [first] + [s for s in (natural_size(model.net),) if s is not None and s != first]
    for size in tried:
        try:
            records, out = probe(model, size)
        except Exception as exc:
            if size == tried[-1]:
                raise _input_error(exc, first) from exc
            continue
        model.input_size = size
        return records, out
    raise AssertionError("unreachable")


def _second_shapes(
    model: FeatvizModel, size: int, accepts: dict[int, bool]
) -> dict[str, tuple[int, ...] | None] | None:
    """Output shapes at another input size (the dims that change are spatial), or None when the
    model takes only its own size."""
    for other in (size + 32, 2 * size):
        try:
            records, _ = probe(model, other)
        except torch.OutOfMemoryError:
            raise
        except Exception:
            accepts[other] = False
            continue
        accepts[other] = True
        return {n: r.shape for n, r in records.items()}
    return None


def _natural_layers(model: FeatvizModel, accepts: dict[int, bool]) -> list[LayerInfo]:
    records, out = _probe_natural(model)
    second = _second_shapes(model, model.input_size, accepts)
    fact = model.prefix_tokens if model.prefix_tokens is not None else L.prefix_token_count(model.net)
    overrides = dict(model.layouts)
    for name in overrides:
        if name not in records and name != LOGITS:
            raise unknown_layer(name, [n for n in records if n])
    found: dict[str, tuple[str, int]] = {}
    for name, rec in records.items():
        if rec.shape is None or not name:
            continue
        if name in overrides:
            layout = overrides[name]
            prefix = L.guess_prefix(rec.shape[0], fact) if layout == L.TOKENS else 0
        else:
            layout, prefix = L.detect(rec.shape, second.get(name) if second else None, fact)
        found[name] = (layout, prefix)
    chosen = choose(
        model.net, records, {n: (lay, L.channels(records[n].shape or (), lay)) for n, (lay, _) in found.items()}
    )
    layers = [
        LayerInfo(n, records[n].shape or (), records[n].order, lay, pre, chosen.get(n, ""), n in chosen)
        for n, (lay, pre) in found.items()
    ]
    if LOGITS not in records and isinstance(out, torch.Tensor):
        layers.append(LayerInfo(LOGITS, tuple(out.shape[1:]), len(records), L.VECTOR, main=True))
    return sorted(layers, key=lambda info: info.order)


class ModelInfo:
    """The facts of one model (see the module's notes). Methods take the model they describe:
    the info holds no reference to it, so a model is copied or pickled (Ray) with its facts."""

    def __init__(self) -> None:
        self._layers: dict[int, list[LayerInfo]] = {}  # probe size -> layers there
        self._index: dict[str, LayerInfo] | None = None  # the layers at the input size, by name
        self._accepts: dict[int, bool] = {}  # input side -> whether the model runs on it

    def layers(self, model: FeatvizModel, size: int | None = None) -> list[LayerInfo]:
        """Every named layer whose output is a tensor, in execution order, plus ``logits``;
        layouts and groups as decided at the model's input size, shapes at ``size``."""
        if model.input_size not in self._layers:
            natural = _natural_layers(model, self._accepts)
            self._layers[model.input_size] = natural
        size = int(size or model.input_size)
        if size in self._layers:
            return self._layers[size]
        base = {i.name: i for i in self._layers[model.input_size]}
        try:
            records, out = probe(model, size)
        except Exception as exc:
            raise _input_error(exc, size) from exc
        layers = [dataclasses.replace(base[n], shape=r.shape) for n, r in records.items() if n in base and r.shape]
        if LOGITS in base and LOGITS not in records and isinstance(out, torch.Tensor):
            layers.append(dataclasses.replace(base[LOGITS], shape=tuple(out.shape[1:])))
        layers.sort(key=lambda info: info.order)
        self._layers[size] = layers
        return layers

    def index(self, model: FeatvizModel) -> dict[str, LayerInfo]:
        """``layers`` at the input size as a name -> LayerInfo mapping (built once)."""
        if self._index is None:
            self._index = {info.name: info for info in self.layers(model)}
        return self._index

    def accepts(self, model: FeatvizModel, side: int) -> bool:
        """Whether the model runs on a side x side image (one no-grad forward, then known)."""
        side = int(side)
        if side == model.input_size:
            return True
        known = self._accepts.get(side)
        if known is None:
            try:
                with torch.no_grad():
                    model(torch.full((1, 3, side, side), 0.5, device=model.device))
                known = True
            except torch.OutOfMemoryError:
                raise
            except Exception:  # AssertionError (ViT), RuntimeError (MaxViT, too small for the pools)...
                known = False
            self._accepts[side] = known
        return known
