"""Transformation robustness: random pad, jitter, scale and rotation in one differentiable step.

Lucid applies pad -> jitter -> scale -> rotate -> jitter as five resampling passes. Here the
whole chain is one affine map per image, sampled once with ``grid_sample``: cheaper, with a
single interpolation, and batched (every image in the batch gets its own random draw). Jitter
moves both ways (Lucent's only shifts right/down); scale keeps the aspect ratio (torch-dreams'
does not); the border shows constant 0.5 grey, as Lucid's pad does. The same map also resizes
the canvas to the model's input size when they differ.

The default zoom differs from Lucid's (0.9-1.1): it is drawn from 0.8-1.7. Above 1 it is a random
crop of the canvas shown at the model's size (the augmentation MACO and Horama rely on): it raised
the class renders another network recognizes. A zoomed-in view may lie anywhere on the canvas
(``crop_anywhere``), not only within the jitter of its centre, so the edges are seen close up as
often as the middle, which raised them again. Below 1 the whole canvas is shown smaller, inside
the grey border (dreamlens and torch-dreams zoom out to 0.5): with zoom 0.8-1.7 instead of 1-1.5
the class renders Lite1 and Lite2 recognize after 64 steps rose from 90 % / 87 % to 95 % / 97 %
(30 classes x 2 seeds; figures: docs/decisions.md, ``benchmarks/quality.py``, ``benchmarks/peers.py``).

The gradient goes back through the inverse map by default (``exact_gradient=False``): the exact
adjoint of bilinear sampling is a scatter (``grid_sample``'s backward, several times its forward
on a CPU; docs/decisions.md), while sampling the gradient image at the inverse-mapped
positions is a gather at the forward's cost. The two are identical for whole-pixel shifts and
close for the small rotations and zooms used here: at 224 px, cosine similarity >= 0.96 on
white-noise gradients and >= 0.99 on smooth ones while zooming in up to 1.5, and >= 0.93 / 0.96
at the default range's ends (0.8 and 1.7), where the gather's gradient is 0.7-1.4 times the
exact one's size (tests/test_engine.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...errors import InvalidSettingError


@dataclass(frozen=True)
class TransformConfig:
    """Ranges at strength 1; ``strength`` scales them all. ``TransformConfig.lucid()`` gives
    Lucid's ``standard_transforms``."""

    pad: int = 12  # px of 0.5 grey border
    jitter: int = 8  # max shift in px, either direction
    scale: float = 0.2  # zoom out/in: the zoom is drawn from [1 - scale, 1 + scale + crop]
    rotate: float = 10.0  # degrees, drawn from [-rotate, rotate]
    strength: float = 1.0
    crop: float = 0.5  # extra zoom-in: the model sees a random crop down to 1/(1 + crop) of the canvas
    exact_gradient: bool = False  # True: grid_sample's own backward (a scatter; slower, exact)
    crop_anywhere: bool = True  # a zoomed-in view may lie anywhere on the canvas (False: near its centre)
    # Pixel noise added to every view: Gaussian with this std plus uniform +/- noise/2, in [0, 1]
    # units (MaCo's robustness noise; 0: none). Drawn from the renderer's CPU generator.
    noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("pad", "jitter", "scale", "rotate", "strength", "crop", "noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InvalidSettingError(f"Transform {name} must be a finite number >= 0, got {value!r}.")
        for name in ("exact_gradient", "crop_anywhere"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidSettingError(f"Transform {name} must be True or False, got {getattr(self, name)!r}.")
        if self.scale * self.strength >= 0.9:
            raise InvalidSettingError(
                f"Transform scale x strength must stay below 0.9 (got {self.scale * self.strength:.3g}): "
                "the zoom range is 1 +/- scale*strength."
            )
        if self.noise > 1:
            raise InvalidSettingError(f"Transform noise must be at most 1 (the whole pixel range), got {self.noise!r}.")
        if self.crop * self.strength > 4:
            raise InvalidSettingError(
                f"Transform crop x strength must be at most 4 (got {self.crop * self.strength:.3g}): "
                "beyond that the model sees a fifth of the canvas or less."
            )

    @classmethod
    def lucid(cls) -> TransformConfig:
        """Lucid's (and Lucent's) ``standard_transforms``: grey pad 12, jitter 8, zoom 0.9-1.1,
        rotation +/-10 degrees, no crops."""
        return cls(scale=0.1, crop=0, crop_anywhere=False)

    @property
    def is_identity(self) -> bool:
        return self.moves_nothing and (self.strength == 0 or self.noise == 0)

    @property
    def moves_nothing(self) -> bool:
        """No geometric change (noise aside)."""
        return self.strength == 0 or (self.pad == self.jitter == 0 and self.scale == self.rotate == self.crop == 0)


def random_affine(
    x: torch.Tensor,
    config: TransformConfig,
    generator: torch.Generator | None = None,
    out_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Apply one random pad/jitter/scale/rotate map per image of ``x`` (N, C, H, W).

    Returns (N, C, *out_size); differentiable in ``x``."""
    out = _affine(x, config, generator, out_size)
    noise = config.noise * config.strength
    if noise > 0:
        # Drawn on the generator's device (the renderer's is the CPU: the same noise everywhere).
        device = generator.device if generator is not None else out.device
        shape = out.shape
        gauss = torch.randn(shape, generator=generator, device=device)
        uniform = torch.rand(shape, generator=generator, device=device) - 0.5
        out = out + (noise * (gauss + uniform)).to(out.device, out.dtype)
    return out


def _affine(
    x: torch.Tensor,
    config: TransformConfig,
    generator: torch.Generator | None,
    out_size: tuple[int, int] | None,
) -> torch.Tensor:
    n, _, h, w = x.shape
    oh, ow = out_size or (h, w)
    if config.moves_nothing:
        if (oh, ow) == (h, w):
            return x
        return F.interpolate(x, (oh, ow), mode="bilinear", align_corners=False)
    # Four numbers per image: Python floats cost a tenth of the dozens of tiny tensor ops (with a
    # generator on a GPU, reading them back waits for the device: the Renderer's is on the CPU).
    device = generator.device if generator is not None else x.device
    maps = [affine_map(u, config, h, w) for u in torch.rand((n, 4), generator=generator, device=device).tolist()]
    theta = torch.tensor([forward for forward, _, _ in maps], dtype=x.dtype, device=x.device)
    grid = affine_grid(theta, oh, ow)
    # Sampling (x - 0.5) with zero padding and adding 0.5 back gives a grey border.
    if config.exact_gradient:
        return banded_grid_sample(x - 0.5, grid) + 0.5
    inverse = torch.tensor([inverse for _, inverse, _ in maps], dtype=x.dtype, device=x.device)
    # Output pixels per input pixel: the gradient an input pixel collects is its density times
    # the gradient at its inverse-mapped position.
    density = torch.tensor([oh * ow / (h * w * det) for _, _, det in maps], dtype=x.dtype, device=x.device)
    return SampleWithInverseGradient.apply(x, grid, affine_grid(inverse, h, w), density)


def affine_map(
    draws: list[float], config: TransformConfig, h: int, w: int
) -> tuple[list[list[float]], list[list[float]], float]:
    """One image's map from four uniform [0, 1) draws: the (2, 3) matrix taking normalized
    output coordinates to input ones, its inverse, and the determinant of its 2x2 part."""
    k = config.strength
    low, high = 1 - config.scale * k, 1 + (config.scale + config.crop) * k
    zoom = low + draws[0] * (high - low)
    angle = (2 * draws[1] - 1) * math.radians(config.rotate * k)
    # Map output pixel offsets (from the centre) to input pixel offsets, then normalize.
    # The padded canvas is (h + 2 pad) tall: showing all of it shrinks the image by h/(h + 2 pad).
    pad = config.pad * k
    canvas_x, canvas_y = (w + 2 * pad) / w, (h + 2 * pad) / h  # the padded canvas's half-sides
    spread_x = canvas_x / zoom
    spread_y = canvas_y / zoom
    # Jitter in normalized units (2 per side), plus, for a view smaller than the canvas, the room
    # it has to move while staying on the canvas: every part of the image is then seen close up.
    room_x = max(canvas_x - spread_x, 0.0) if config.crop_anywhere else 0.0
    room_y = max(canvas_y - spread_y, 0.0) if config.crop_anywhere else 0.0
    shift_x = (2 * draws[2] - 1) * (config.jitter * k * 2 / w + room_x)
    shift_y = (2 * draws[3] - 1) * (config.jitter * k * 2 / h + room_y)
    cos, sin = math.cos(angle), math.sin(angle)
    # Pixel-space rotation expressed in normalized coordinates (aspect ratio w/h kept); with
    # them, the 2x2 part's determinant is exactly spread_x * spread_y.
    a, b, c, d = cos * spread_x, -sin * spread_y * h / w, sin * spread_x * w / h, cos * spread_y
    det = spread_x * spread_y
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    forward = [[a, b, shift_x], [c, d, shift_y]]
    inverse = [[ia, ib, -(ia * shift_x + ib * shift_y)], [ic, id_, -(ic * shift_x + id_ * shift_y)]]
    return forward, inverse, det


class SampleWithInverseGradient(torch.autograd.Function):
    """Bilinear sampling with a grey (0.5) border, whose backward samples the gradient through
    the inverse map."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, grid: torch.Tensor, inverse_grid: torch.Tensor, density: torch.Tensor):
        ctx.save_for_backward(inverse_grid, density)
        return banded_grid_sample(x - 0.5, grid).add_(0.5)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        inverse_grid, density = ctx.saved_tensors
        return banded_grid_sample(grad, inverse_grid) * density[:, None, None, None], None, None, None


def affine_grid(theta: torch.Tensor, oh: int, ow: int) -> torch.Tensor:
    """``F.affine_grid(theta, (n, c, oh, ow), align_corners=False)`` as two broadcast sums:
    the same values at a fraction of the cost (it builds a (n, h*w, 3) base grid and a bmm)."""
    xs = (torch.arange(ow, device=theta.device, dtype=theta.dtype) * 2 + 1) / ow - 1
    ys = (torch.arange(oh, device=theta.device, dtype=theta.dtype) * 2 + 1) / oh - 1
    t = theta[:, :, :, None, None]  # (n, 2, 3, 1, 1)
    grid = t[:, :, 0] * xs[None, :] + (t[:, :, 1] * ys[:, None] + t[:, :, 2])  # (n, 2, oh, ow)
    return grid.permute(0, 2, 3, 1).contiguous()


def banded_grid_sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``grid_sample``, made to use every CPU thread for a single image.

    PyTorch's CPU kernel (and its backward, the costlier half) parallelizes over the batch only,
    so one image runs on one core. Cutting the output rows into bands, one per thread, and
    sampling the same image (an expanded view, no copy) once per band gives exactly the same
    values and gradients on all cores."""
    n, c, _, _ = x.shape
    oh, ow = grid.shape[1:3]
    bands = min(torch.get_num_threads(), oh) if x.device.type == "cpu" and n == 1 else 1
    if bands < 2:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    rows = -(-oh // bands)
    extra = rows * bands - oh  # repeat the last row so the bands are equal; cut off below
    if extra:
        grid = torch.cat([grid, grid[:, -1:].expand(1, extra, ow, 2)], dim=1)
    out = F.grid_sample(
        x.expand(bands, -1, -1, -1),
        grid.reshape(bands, rows, ow, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out.transpose(0, 1).reshape(1, c, rows * bands, ow)[:, :, :oh]


__all__ = [
    "SampleWithInverseGradient",
    "TransformConfig",
    "affine_grid",
    "affine_map",
    "banded_grid_sample",
    "random_affine",
]
