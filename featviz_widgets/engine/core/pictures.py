"""Tensors and pictures: the engine's (N, 3, H, W) images in [0, 1] to PIL images and uint8
arrays, and a picture (PIL or tensor) to such a batch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...errors import InvalidSettingError
from ..image.photos import pil_to_tensor


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [0, 1] -> list of RGB PIL images."""
    return [Image.fromarray(np.ascontiguousarray(a), "RGB") for a in to_uint8(images)]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8 array on the CPU."""
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) at (height, width) ``size``, antialiased when it shrinks; as it is when it fits."""
    if image.shape[-2:] == size:
        return image
    return F.interpolate(image, size, mode="bilinear", align_corners=False, antialias=True)


def image_batch(image: torch.Tensor | Image.Image) -> torch.Tensor:
    """A PIL image or a (3, H, W) / (N, 3, H, W) tensor in [0, 1] as an (N, 3, H, W) batch."""
    if isinstance(image, Image.Image):
        return pil_to_tensor(image)
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise InvalidSettingError("init_image must be a PIL image or a 3xHxW / Nx3xHxW tensor in [0, 1].")
    return image if image.dim() == 4 else image[None]


__all__ = ["image_batch", "resized", "to_pil", "to_uint8"]
