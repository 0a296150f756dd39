"""The probe: one forward pass with hooks on every module, recording what each one did.

For each module that ran: its output shape for one image (None when the output is not a
tensor), when its call started and ended, and which tensor went in and came out. A tensor is
named by its storage address, shape and version counter (bumped by in-place ops), so a block
that adds its input back in place does not look like the last layer it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ..models.loaders import FeatvizModel

TensorKey = tuple[int, tuple[int, ...], int]


@dataclass(frozen=True)
class ProbeRecord:
    """What one module did on the probe image."""

    shape: tuple[int, ...] | None  # output shape for one image; None: not a tensor
    start: int  # call order
    order: int  # order in which the outputs came out (the deepest layer has the largest)
    in_key: TensorKey | None
    out_key: TensorKey | None


def _key(value: object) -> TensorKey | None:
    if not isinstance(value, torch.Tensor):
        return None
    return (value.data_ptr(), tuple(value.shape), value._version)


def probe(model: FeatvizModel, size: int) -> tuple[dict[str, ProbeRecord], object]:
    """Run ``model`` on a grey size x size image; the records by module name ("" is the whole
    net) and the model's output. Exceptions from the model propagate."""
    starts: dict[str, tuple[int, TensorKey | None]] = {}
    records: dict[str, ProbeRecord] = {}
    outputs: list[torch.Tensor] = []  # kept alive so no two tensors share an address
    handles = []

    def pre(name: str) -> Callable[[nn.Module, tuple[object, ...]], None]:
        def hook(_m: nn.Module, args: tuple[object, ...]) -> None:
            if name not in starts:
                starts[name] = (len(starts), _key(args[0]) if args else None)

        return hook

    def post(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_m: nn.Module, _args: object, out: object) -> None:
            if name in records or name not in starts:
                return
            start, in_key = starts[name]
            tensor = isinstance(out, torch.Tensor)
            if tensor:
                outputs.append(out)  # type: ignore[arg-type]
            shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None
            records[name] = ProbeRecord(shape, start, len(records), in_key, _key(out))

        return hook

    for name, module in model.net.named_modules():
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post(name)))
    try:
        with torch.no_grad():
            out = model(torch.full((1, 3, size, size), 0.5, device=model.device))
    finally:
        for h in handles:
            h.remove()
    return records, out
