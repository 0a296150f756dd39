"""Activation layouts: where a layer's channels, positions and prefix tokens are.

A layer's output for one image is one of:

- ``chw``: (C, H, W), a convnet feature map;
- ``hwc``: (H, W, C), channels last (Swin, ConvNeXt's MLP inside a block);
- ``tokens``: (L, C), a transformer's tokens: ``prefix_tokens`` class/register/distillation
  tokens first, then the patch tokens of a grid;
- ``vector``: (C,), logits or pooled features;
- ``other``: anything else (MaxViT's window partitions...): objectives refuse it.

The probe decides the layout once per layer (``detect``), from the output shapes at two input
sizes where the model takes both (the dims that change are spatial), else from what the model
says about itself (``prefix_token_count``) and the shape alone. ``to_nchw`` then gives every
objective the same (N, C, H, W) view, without a copy.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import InvalidSettingError

CHW, HWC, TOKENS, VECTOR, OTHER = "chw", "hwc", "tokens", "vector", "other"
LAYOUTS = (CHW, HWC, TOKENS, VECTOR, OTHER)
SPATIAL = frozenset({CHW, HWC, TOKENS})
_MAX_PREFIX = 16


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def guess_layout(shape: tuple[int, ...]) -> str:
    """The layout a shape alone suggests: (C, H, W) unless only the first two dims match."""
    if len(shape) == 1:
        return VECTOR
    if len(shape) == 2:
        return TOKENS
    if len(shape) == 3:
        return HWC if shape[0] == shape[1] != shape[2] else CHW
    return OTHER


def guess_prefix(length: int, fact: int | None = None) -> int:
    """Prefix tokens in front of a square grid of ``length - prefix`` patches. ``fact`` is what
    the model says (timm's ``num_prefix_tokens``), kept when the rest is a square grid; a square
    ``length`` has none (a patch embedding before the class token is added)."""
    if fact is not None and _is_square(length - fact):
        return fact
    if _is_square(length):
        return 0
    for prefix in range(1, min(_MAX_PREFIX, length - 1) + 1):
        if _is_square(length - prefix):
            return prefix
    return 0


def detect(shape: tuple[int, ...], other: tuple[int, ...] | None, fact: int | None) -> tuple[str, int]:
    """(layout, prefix tokens) of an output of ``shape`` at the natural input size, and ``other``
    at a second size (None when the model takes only one size)."""
    if other is None or len(other) != len(shape):
        layout = guess_layout(shape)
        return layout, guess_prefix(shape[0], fact) if layout == TOKENS else 0
    changed = {i for i, (a, b) in enumerate(zip(shape, other, strict=True)) if a != b}
    if len(shape) == 1:
        return VECTOR, 0
    if len(shape) == 3:
        if changed == {1, 2}:
            return CHW, 0
        if changed == {0, 1}:
            return HWC, 0
        return (guess_layout(shape), 0) if not changed else (OTHER, 0)
    if len(shape) == 2:
        if changed == {0}:
            for prefix in ([fact] if fact is not None else []) + list(range(_MAX_PREFIX + 1)):
                if _is_square(shape[0] - prefix) and _is_square(other[0] - prefix):
                    return TOKENS, prefix
            return TOKENS, 0
        return (TOKENS, guess_prefix(shape[0], fact)) if not changed else (OTHER, 0)
    return OTHER, 0


def prefix_token_count(net: nn.Module) -> int | None:
    """Class/register/distillation tokens the model puts before its patch tokens, when it says:
    timm's ``num_prefix_tokens``, torchvision VisionTransformer's ``class_token``."""
    for module in (net, *net.children()):
        count = getattr(module, "num_prefix_tokens", None)
        if isinstance(count, int):
            return count
    if isinstance(getattr(net, "class_token", None), torch.Tensor):
        return 1
    return None


def channels(shape: tuple[int, ...], layout: str) -> int:
    """The size of the channel axis of this layout."""
    if not shape:
        return 0
    if layout in (HWC, TOKENS):
        return shape[-1]
    return shape[0]


def grid(shape: tuple[int, ...], layout: str, prefix: int) -> tuple[int, int] | None:
    """(H, W) of the positions objectives see, or None for vectors and others."""
    if layout == CHW:
        return shape[1], shape[2]
    if layout == HWC:
        return shape[0], shape[1]
    if layout == TOKENS:
        patches = shape[0] - prefix
        side = math.isqrt(max(patches, 0))
        return (side, side) if side * side == patches and side else (patches, 1)
    return None


def to_nchw(act: torch.Tensor, layout: str, prefix: int = 0, name: str = "") -> torch.Tensor:
    """A batch of outputs in ``layout`` as (N, C, H, W), a view (no copy)."""
    if layout == CHW:
        return act
    if layout == HWC:
        return act.permute(0, 3, 1, 2)
    if layout == TOKENS:
        patches = act[:, prefix:]
        h, w = grid(tuple(patches.shape[1:]), TOKENS, 0) or (patches.shape[1], 1)
        return patches.transpose(1, 2).unflatten(2, (h, w))
    if layout == VECTOR:
        return act[:, :, None, None]
    raise InvalidSettingError(
        f"Layer {name!r} has outputs of shape {tuple(act.shape[1:])} with no channel axis featviz_widgets "
        "can tell; pick another layer, or give its layout: load_model(model, layouts={name: 'chw'}) "
        f"with one of {', '.join(LAYOUTS[:4])}."
    )


def check_override(name: str, value: object) -> str:
    """A layout given by the user, validated."""
    if value not in LAYOUTS[:4]:
        raise InvalidSettingError(f"Layout {value!r} for layer {name!r} is not one of {', '.join(LAYOUTS[:4])}.")
    return str(value)
