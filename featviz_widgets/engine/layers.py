"""Layer discovery and the truncated forward pass.

``list_layers`` probes the model (probe.py) and records each module's output shape in execution
order, with its layout (layouts.py: which axis holds the channels, how many prefix tokens) and,
for the layers a person would choose first (layer_choice.py), a group. ``capture`` runs the
model only as far as the deepest layer an objective needs: a hook on that layer stores its
output and raises ``_TargetReached``, so the rest of the network is never computed.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..errors import ModelInputError, unknown_layer
from . import layouts as L
from .input_size import fit_input, natural_size
from .layer_choice import choose
from .models import LOGITS, FeatvizModel
from .probe import ProbeRecord, probe


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


class _TargetReached(Exception):
    """Raised from a hook to stop the forward pass once every needed layer has run."""


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


def _second_shapes(model: FeatvizModel, size: int) -> dict[str, tuple[int, ...] | None] | None:
    """Output shapes at another input size (the dims that change are spatial), or None when the
    model takes only its own size."""
    for other in (size + 32, 2 * size):
        try:
            records, _ = probe(model, other)
        except torch.OutOfMemoryError:
            raise
        except Exception:
            model._accepts[other] = False
            continue
        model._accepts[other] = True
        return {n: r.shape for n, r in records.items()}
    return None


def _natural_layers(model: FeatvizModel) -> list[LayerInfo]:
    records, out = _probe_natural(model)
    second = _second_shapes(model, model.input_size)
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


def list_layers(model: FeatvizModel, size: int | None = None) -> list[LayerInfo]:
    """Every named layer whose output is a tensor, in execution order, plus ``logits``.

    Layouts and groups are decided at the model's input size; other sizes give the shapes
    there. Cached per probe size. Raises ModelInputError when the model fails on a 3-channel
    image."""
    if model.input_size not in model._layer_cache:
        natural = _natural_layers(model)
        model._layer_cache[model.input_size] = natural
    size = int(size or model.input_size)
    if size in model._layer_cache:
        return model._layer_cache[size]
    base = {i.name: i for i in model._layer_cache[model.input_size]}
    try:
        records, out = probe(model, size)
    except Exception as exc:
        raise _input_error(exc, size) from exc
    layers = [dataclasses.replace(base[n], shape=r.shape) for n, r in records.items() if n in base and r.shape]
    if LOGITS in base and LOGITS not in records and isinstance(out, torch.Tensor):
        layers.append(dataclasses.replace(base[LOGITS], shape=tuple(out.shape[1:])))
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
    """The layers to offer first, in execution order: the model's curated list, else the stages
    and blocks layer_choice.py picks (each with its ``group``), and the logits."""
    infos = list_layers(model)
    if model.main_layers is not None:
        wanted = set(model.main_layers)
        return [i for i in infos if i.name in wanted]
    return [i for i in infos if i.main]


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
    x = fit_input(model, x)  # before the hooks: a model that takes one size only sees that size
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
            if len(outputs) + 1 == len(wanted):  # the last one: the pass stops here, nothing can overwrite it
                outputs[name] = out
                raise _TargetReached
            # The pass goes on: a later in-place op (ReLU(inplace=True), x += ...) would overwrite
            # this tensor, so the objective gets its own copy (the gradient flows through clone).
            outputs[name] = out.clone() if isinstance(out, torch.Tensor) else out

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
    if x.requires_grad and torch.is_grad_enabled():
        cut = sorted(n for n, out in outputs.items() if isinstance(out, torch.Tensor) and not out.requires_grad)
        if cut:
            raise ModelInputError(
                f"The model's output at layer(s) {cut} does not depend on the input image through autograd: "
                "its forward cuts the gradient before there (torch.no_grad(), .detach(), .data, or a trip "
                "through NumPy). Feature visualization follows the gradient from the layer back to the image; "
                "remove that from the model's forward (or visualize an earlier layer)."
            )
    return outputs
