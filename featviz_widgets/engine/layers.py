"""Layer discovery and the truncated forward pass.

``list_layers`` runs one probe forward pass with a hook on every module and records each
module's output shape in execution order. ``capture`` runs the model only as far as the deepest
layer an objective needs: a hook on that layer stores its output and raises ``_TargetReached``,
so the rest of the network is never computed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..errors import ModelInputError, unknown_layer
from .models import LOGITS, FeatvizModel


@dataclass(frozen=True)
class LayerInfo:
    """One layer: dotted name, output shape for one image at the probe size, execution order."""

    name: str
    shape: tuple[int, ...]
    order: int

    @property
    def channels(self) -> int:
        """Channels: C of (C, H, W) or (C,); the feature size of token outputs (L, C)."""
        if len(self.shape) == 2:
            return self.shape[1]
        return self.shape[0] if self.shape else 0

    @property
    def is_spatial(self) -> bool:
        """A (C, H, W) output: channel and neuron objectives apply directly."""
        return len(self.shape) == 3

    def __str__(self) -> str:
        return f"{self.name} {'x'.join(map(str, self.shape))}"


class _TargetReached(Exception):
    """Raised from a hook to stop the forward pass once every needed layer has run."""


def list_layers(model: FeatvizModel, size: int | None = None) -> list[LayerInfo]:
    """Every named layer whose output is a tensor, in execution order, plus ``logits``.

    Cached per probe size. Raises ModelInputError when the model fails on a 3-channel image."""
    size = int(size or model.input_size)
    if size in model._layer_cache:
        return model._layer_cache[size]
    records: dict[str, tuple[tuple[int, ...], int]] = {}
    handles = []
    for name, module in model.net.named_modules():
        if not name:
            continue

        def hook(_m: torch.nn.Module, _inp: object, out: object, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and name not in records:
                records[name] = (tuple(out.shape[1:]), len(records))

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(torch.full((1, 3, size, size), 0.5, device=model.device))
    except Exception as exc:
        raise ModelInputError(
            f"The model raised {type(exc).__name__} on a 1x3x{size}x{size} RGB image: {exc}. "
            "featviz_widgets feeds models RGB images in [0, 1] (normalized inside the wrapper); "
            "check load_model's input_size, mean/std and in_channels."
        ) from exc
    finally:
        for h in handles:
            h.remove()
    layers = [LayerInfo(n, shape, order) for n, (shape, order) in records.items()]
    if LOGITS not in records and isinstance(out, torch.Tensor):
        layers.append(LayerInfo(LOGITS, tuple(out.shape[1:]), len(layers)))
    layers.sort(key=lambda info: info.order)
    model._layer_cache[size] = layers
    return layers


def layers_by_name(model: FeatvizModel) -> dict[str, LayerInfo]:
    """``list_layers`` as a name -> LayerInfo mapping (built once per model, not per step)."""
    index = model._layer_index
    if index is None:
        index = model._layer_index = {info.name: info for info in list_layers(model)}
    return index


def layer_info(model: FeatvizModel, name: str) -> LayerInfo:
    """The LayerInfo of ``name``; UnknownLayerError with close suggestions otherwise."""
    infos = layers_by_name(model)
    if name not in infos:
        raise unknown_layer(name, list(infos))
    return infos[name]


def main_layers(model: FeatvizModel) -> list[LayerInfo]:
    """The layers to offer first: the model's curated list, else every layer with a (C, H, W)
    output and the logits."""
    infos = list_layers(model)
    if model.main_layers is not None:
        wanted = set(model.main_layers)
        return [i for i in infos if i.name in wanted]
    return [i for i in infos if i.is_spatial or i.name == LOGITS]


def capture(model: FeatvizModel, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` until every layer in ``layers`` has produced its output, and
    return those outputs. Layers after the deepest one are never computed."""
    wanted = set(layers)
    if not wanted:
        return {}
    infos = layers_by_name(model)
    for name in wanted:
        if name not in infos:
            raise unknown_layer(name, list(infos))
    deepest = max(wanted, key=lambda n: infos[n].order)
    outputs: dict[str, torch.Tensor] = {}
    owner = threading.get_ident()  # hooks fire only for this thread's forward pass

    handles = []
    for name in wanted:
        module = model.module_for(name)
        if module is model.net:
            continue  # the final output: nothing to stop early

        def hook(_m: torch.nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
            if threading.get_ident() != owner or name in outputs:
                return
            outputs[name] = out
            if len(outputs) == len(wanted):
                raise _TargetReached

        handles.append(module.register_forward_hook(hook))
    try:
        final = model(x)
        if deepest in wanted and deepest not in outputs:
            outputs[deepest] = final
    except _TargetReached:
        pass
    finally:
        for h in handles:
            h.remove()
    missing = wanted - outputs.keys()
    if missing:  # e.g. a module defined but never called in forward
        raise ModelInputError(f"Layer(s) {sorted(missing)} never ran in the model's forward pass.")
    return outputs
