"""Reading a model's layers, and the truncated forward pass.

``list_layers``, ``layer_info`` and ``main_layers`` read what ``model.info`` (model_info.py)
found by probing: each module's output shape in execution order, with its layout and, for the
layers a person would choose first, a group. ``capture`` runs the
model only as far as the deepest layer an objective needs: a hook on that layer stores its
output and raises ``_TargetReached``, so the rest of the network is never computed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import torch

from ...errors import ModelInputError, unknown_layer
from ..models.loaders import FeatvizModel
from .input_size import fit_input
from .model_info import LayerInfo


class _TargetReached(Exception):
    """Raised from a hook to stop the forward pass once every needed layer has run."""


def list_layers(model: FeatvizModel, size: int | None = None) -> list[LayerInfo]:
    """Every named layer whose output is a tensor, in execution order, plus ``logits``.

    Layouts and groups are decided at the model's input size; other sizes give the shapes
    there. Found once per probe size by ``model.info``. Raises ModelInputError when the model
    fails on a 3-channel image."""
    return model.info.layers(model, size)


def layers_by_name(model: FeatvizModel) -> dict[str, LayerInfo]:
    """``list_layers`` as a name -> LayerInfo mapping (built once per model, not per step)."""
    return model.info.index(model)


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
