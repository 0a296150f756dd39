"""Which input size a model is fed.

Convnets take any size; vision transformers and MaxViT take only their own (torchvision's ViT
asserts ``Wrong image height!``, MaxViT's window partition fails off multiples of its window).
``accepts`` asks ``model.info``, which finds out once per side with one forward pass; ``fed_size``
says what the model should see for a wanted size: that size when the model takes it, else its
natural ``input_size``. The renderer resamples its transformed canvas to that size inside the one
sampling pass; ``fit_input`` does it for every other forward (``capture``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from ..models.loaders import FeatvizModel


def natural_size(net: nn.Module) -> int | None:
    """The input side the network says it takes: torchvision's ``image_size`` (ViT), timm's
    ``pretrained_cfg``/``default_cfg`` ``input_size``, or None."""
    size = getattr(net, "image_size", None)
    if isinstance(size, int) and size > 0:
        return size
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(net, attr, None)
        if isinstance(cfg, dict) and isinstance(cfg.get("input_size"), (tuple, list)):
            return int(cfg["input_size"][-1])
    return None


def accepts(model: FeatvizModel, side: int) -> bool:
    """Whether the model runs on a side x side image (``model.info`` tries it once)."""
    return model.info.accepts(model, side)


def fed_size(model: FeatvizModel, size: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) to feed the model for a wanted (height, width)."""
    if size[0] == size[1] == model.input_size or accepts(model, max(size)):
        return size
    return (model.input_size, model.input_size)


def fit_input(model: FeatvizModel, x: torch.Tensor) -> torch.Tensor:
    """``x`` resampled to the size the model takes, when it does not take x's own."""
    size = (x.shape[-2], x.shape[-1])
    fed = fed_size(model, size)
    if fed == size:
        return x
    return F.interpolate(x, fed, mode="bilinear", align_corners=False, antialias=fed[0] < size[0])
