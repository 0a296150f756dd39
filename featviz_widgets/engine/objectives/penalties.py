"""Penalties on the untransformed image (``L1``, ``TotalVariation``, ``BlurPenalty``). They return
positive magnitudes, to be subtracted: ``Channel("blocks.8", 5) - 0.05 * L1()``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Context, Objective


class ImagePenalty(Objective):
    """A penalty on the untransformed image (needs no layer)."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class L1(ImagePenalty):
    """Mean |image - constant|: pulls pixels toward grey."""

    def __init__(self, constant: float = 0.5) -> None:
        self.constant = float(constant)

    def __call__(self, ctx: Context) -> torch.Tensor:
        return (ctx.image - self.constant).abs().mean(dim=(1, 2, 3))

    def __repr__(self) -> str:
        return "L1()" if self.constant == 0.5 else f"L1({self.constant:g})"


class TotalVariation(ImagePenalty):
    """Mean absolute difference between neighbouring pixels: penalizes high-frequency noise."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        img = ctx.image
        dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(dim=(1, 2, 3))
        dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(dim=(1, 2, 3))
        return dx + dy

    def __repr__(self) -> str:
        return "TotalVariation()"


class BlurPenalty(ImagePenalty):
    """Half the mean squared distance to a blurred copy of the image (held constant): the
    gradient nudges the image toward its blur, Lucid's ``blur_input_each_step``."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        img = ctx.image
        kernel = torch.tensor([1.0, 2.0, 1.0], device=img.device, dtype=img.dtype) / 4
        k2 = (kernel[:, None] * kernel[None, :]).expand(img.shape[1], 1, 3, 3)
        with torch.no_grad():
            blurred = F.conv2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), k2, groups=img.shape[1])
        return 0.5 * (img - blurred).pow(2).mean(dim=(1, 2, 3))

    def __repr__(self) -> str:
        return "BlurPenalty()"


# --- parsing -------------------------------------------------------------------------------------
