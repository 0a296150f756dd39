"""Image parameterizations: how the optimized tensor becomes an RGB image in [0, 1].

``ImageParam`` chains a spatial basis (pixels, a Fourier spectrum scaled by 1/f^decay so that
a step moves low frequencies more than high ones, or MaCo's phase with a fixed natural
magnitude: maco.py), optional colour decorrelation (the ImageNet 3x3 "SVD square root" of Lucid)
and a sigmoid. Each step is invertible (MaCo's up to its fixed magnitude), so an image can start
from a photo or from the picture of another parameterization (a live switch).

The parameterization is one name (``PARAMS``): ``"pixels"``, ``"fourier"`` (1/f^decay Fourier;
decay 1.5 by default, Lucid's is 1), ``"decorrelated"`` (the same + decorrelated colour, the
default), ``"maco"`` (phase only, decorrelated colour) and ``"decorrelated-pixels"`` (pixels in
decorrelated colour, what the old ``fourier=False`` alone meant). ``param_from_flags``
translates the old booleans.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import InvalidSettingError
from .colour import COLOR_MATRIX as COLOR_MATRIX  # re-exported: the matrix has lived here
from .maco import MacoBasis

# name -> (basis, colour decorrelation)
PARAMS: dict[str, tuple[str, bool]] = {
    "pixels": ("pixels", False),
    "fourier": ("fourier", False),
    "decorrelated": ("fourier", True),
    "maco": ("maco", True),
    "decorrelated-pixels": ("pixels", True),
}


def check_param(name: object) -> str:
    if not isinstance(name, str) or name not in PARAMS:
        raise InvalidSettingError(f"param must be one of {', '.join(map(repr, PARAMS))}; got {name!r}.")
    return name


def param_from_flags(fourier: bool | None, decorrelate: bool | None, current: str = "decorrelated") -> str:
    """The parameterization the old ``fourier=`` / ``decorrelate=`` booleans name (a flag left
    None keeps ``current``'s)."""
    basis, colour = PARAMS[check_param(current)]
    for name, flag in (("fourier", fourier), ("decorrelate", decorrelate)):
        if flag is not None and not isinstance(flag, bool):
            raise InvalidSettingError(f"{name} must be True or False, got {flag!r}.")
    if fourier is not None:
        basis = "fourier" if fourier else "pixels"
    if decorrelate is not None:
        colour = decorrelate
    if basis == "maco" and not colour:
        raise InvalidSettingError("MaCo works in decorrelated colour: decorrelate=False does not combine with it.")
    return next(k for k, v in PARAMS.items() if v == (basis, colour))


# A decay above 1 tilts the spectrum about this frequency (cycles per pixel) instead of raising
# every frequency below 1 cycle per pixel: see fourier_scale.
PIVOT = 1.0 / 16
# The default exponent (ImageParam, RenderSettings): 1.5 rather than Lucid's 1 gives photo-like
# spectra instead of pixel-scale speckle, and more class renders recognized at the widget's
# 128 px (docs/decisions.md, "A steeper spectrum").
DEFAULT_DECAY = 1.5


def fourier_scale(height: int, width: int, decay: float) -> torch.Tensor:
    """1 / max(f, 1/max(h, w))^decay for every rfft2 frequency, shape (h, w//2 + 1),
    times sqrt(h*w): with the unnormalized inverse FFT this is Lucid's exact scaling at decay 1.

    Above decay 1 the scale is also multiplied by PIVOT^(decay - 1), so the spectrum turns about
    1/16 cycle per pixel: the mid frequencies keep the step size they have under 1/f, the lower
    ones get more and the higher ones less. Without it a steeper decay mostly makes every step
    larger (decay 1.5 at the default learning rate clips half the pixels of a class render;
    tilted, it takes the steps of 1/f^1.5 at a quarter of the learning rate: docs/decisions.md,
    "A steeper spectrum")."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    tilt = PIVOT ** (decay - 1) if decay > 1 else 1.0
    return (tilt / freqs.clamp(min=1.0 / max(height, width)) ** decay) * math.sqrt(height * width)


class PixelBasis(nn.Module):
    """The image values themselves are the parameters."""

    def __init__(self, batch: int, height: int, width: int, sd: float, generator: torch.Generator) -> None:
        super().__init__()
        self.shape = (batch, 3, height, width)
        self.coeffs = nn.Parameter(torch.randn(self.shape, generator=generator) * sd)

    def forward(self) -> torch.Tensor:
        return self.coeffs

    def set_image(self, pre: torch.Tensor) -> None:
        with torch.no_grad():
            self.coeffs.copy_(pre.expand(self.shape))


class FourierBasis(nn.Module):
    """A spectrum scaled by 1/f^decay: optimizing it is preconditioned gradient descent that
    favours low frequencies, which removes most high-frequency adversarial noise."""

    scale: torch.Tensor  # (h, w//2+1, 2) buffer: 1/f^decay per real pair

    # Lucid divides the image by this constant so the default sd gives a grey start.
    MAGIC = 4.0

    def __init__(
        self, batch: int, height: int, width: int, sd: float, decay: float, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.size = (height, width)
        # The 1/MAGIC factor is folded into the scale: one multiplication fewer per step. Stored
        # once per real pair, (h, w//2 + 1, 2) contiguous: broadcasting a trailing size-1 axis
        # over the pairs takes PyTorch's slow strided path (see docs/decisions.md, "Speed: what
        # was kept").
        scale = fourier_scale(height, width, decay) / self.MAGIC
        self.register_buffer("scale", scale[..., None].expand(*scale.shape, 2).contiguous())
        spectrum = torch.randn((batch, 3, height, width // 2 + 1, 2), generator=generator) * sd
        self.coeffs = nn.Parameter(spectrum)

    def forward(self) -> torch.Tensor:
        # Scaled as real pairs: a complex tensor times a real one would first copy the scale
        # into a complex tensor, forward and backward, every step.
        spec = torch.view_as_complex(self.coeffs * self.scale)
        return torch.fft.irfft2(spec, s=self.size)

    def set_image(self, pre: torch.Tensor) -> None:
        spec = torch.view_as_real(torch.fft.rfft2(pre, s=self.size)) / self.scale
        with torch.no_grad():
            self.coeffs.copy_(spec.expand_as(self.coeffs))


class ImageParam(nn.Module):
    """A batch of images: basis -> optional colour decorrelation -> sigmoid -> RGB in [0, 1]."""

    color: torch.Tensor  # 3x3 buffer: the colour decorrelation matrix

    def __init__(
        self,
        size: int | tuple[int, int] = 224,
        *,
        batch: int = 1,
        param: str = "decorrelated",
        fourier: bool | None = None,
        decorrelate: bool | None = None,
        decay: float = DEFAULT_DECAY,
        sd: float = 0.01,
        seed: int = 0,
        init: torch.Tensor | None = None,
        shared: bool = False,
        spectrum: torch.Tensor | None = None,
    ) -> None:
        """``param`` names the parameterization (``PARAMS``); ``fourier``/``decorrelate``, when
        given, are the old booleans translated onto it. ``spectrum``: MaCo's magnitude, a
        (3, h, w//2+1) amplitude spectrum (``spectrum_from_photos``; default the shipped one)."""
        super().__init__()
        param = param_from_flags(fourier, decorrelate, param)
        height, width = (size, size) if isinstance(size, int) else size
        check_size(height)
        check_size(width)
        if batch < 1:
            raise InvalidSettingError(f"batch must be at least 1, got {batch}.")
        if not math.isfinite(decay) or decay < 0:
            raise InvalidSettingError(f"Fourier decay must be a finite number >= 0, got {decay}.")
        gen = torch.Generator().manual_seed(int(seed))
        self.batch, self.height, self.width = batch, height, width
        basis, self.decorrelate = PARAMS[param]
        self.param_name, self.fourier, self.decay = param, basis == "fourier", decay
        if basis == "maco" and shared:
            raise InvalidSettingError("MaCo's magnitude is fixed per image: shared=True does not combine with it.")
        self.basis: FourierBasis | PixelBasis | MacoBasis = (
            MacoBasis(batch, height, width, spectrum, gen)
            if basis == "maco"
            else FourierBasis(batch, height, width, sd, decay, gen)
            if self.fourier
            else PixelBasis(batch, height, width, sd, gen)
        )
        # A component common to every image of the batch: images that differ only in their
        # objective then line up (Distill's aligned interpolation).
        self.shared: FourierBasis | PixelBasis | None = None
        if shared:
            self.shared = (
                FourierBasis(1, height, width, sd, decay, gen)
                if self.fourier
                else PixelBasis(1, height, width, sd, gen)
            )
        self.register_buffer("color", COLOR_MATRIX.clone())
        if init is not None:
            self.set_image(init)

    def forward(self) -> torch.Tensor:
        x = self.basis()
        if self.shared is not None:
            x = x + self.shared()
        if self.decorrelate:
            # Mix the colours of every pixel with one (3x3) @ (3, H*W) matmul per image: on CPU
            # its backward is several times cheaper than a 1x1 convolution's.
            x = (self.color @ x.flatten(2)).view_as(x)
        return torch.sigmoid(x)

    @torch.no_grad()
    def project(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """Clamp every pixel of the image into [low, high] (tensors in [0, 1] broadcastable to
        (N, 3, H, W)), in place. The clamp acts before the sigmoid, where it is exact: the pixel
        basis's values themselves, or the spectrum re-encoded from the clamped values (a
        round trip exact to float rounding); pixels already inside are left as they were."""
        pre = self.basis()
        if self.shared is not None:
            pre = pre + self.shared()
        mixed = (self.color @ pre.flatten(2)).view_as(pre) if self.decorrelate else pre
        lo = torch.logit(low.to(mixed.device, mixed.dtype).clamp(0.0, 1.0))  # 0 -> -inf: no bound
        hi = torch.logit(high.to(mixed.device, mixed.dtype).clamp(0.0, 1.0))
        clamped = torch.maximum(torch.minimum(mixed, hi), lo)
        if self.decorrelate:
            clamped = torch.einsum("bchw,dc->bdhw", clamped, torch.linalg.inv(self.color))
        if self.shared is not None:
            clamped = clamped - self.shared()
        self.basis.set_image(clamped)

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        """Start from ``image`` (3xHxW or Nx3xHxW in [0, 1], resized to this size)."""
        img = image if image.dim() == 4 else image[None]
        img = img.to(self.color.device, torch.float32)
        if img.shape[-2:] != (self.height, self.width):
            img = nn.functional.interpolate(
                img, (self.height, self.width), mode="bilinear", align_corners=False, antialias=True
            )
        self.set_pre(torch.logit(img.clamp(0.02, 0.98)))

    @torch.no_grad()
    def pre(self) -> torch.Tensor:
        """The image before the sigmoid, (N, 3, H, W): what another parameterization takes over
        exactly in a live switch (``set_pre``), saturated pixels included."""
        x = self.basis()
        if self.shared is not None:
            x = x + self.shared()
        return (self.color @ x.flatten(2)).view_as(x) if self.decorrelate else x

    @torch.no_grad()
    def set_pre(self, pre: torch.Tensor) -> None:
        """Make the image sigmoid(``pre``) ((N or 1, 3, H, W), this size): each basis maps it
        into its own coordinates (the colour matrix's inverse, an FFT, MaCo's phase)."""
        pre = pre.to(self.color.device, torch.float32)
        if self.decorrelate:
            pre = torch.einsum("bchw,dc->bdhw", pre, torch.linalg.inv(self.color))
        if self.shared is not None:
            self.shared.set_image(torch.zeros_like(pre[:1]))
        if isinstance(self.basis, MacoBasis):
            self.basis.fit_image(pre)  # its phase, and the magnitude scaled to its contrast
        else:
            self.basis.set_image(pre)


def check_size(size: int) -> int:
    """Image sides must be integers in [16, 4096]."""
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 4096:
        raise InvalidSettingError(f"Image size must be an integer from 16 to 4096 pixels, got {size!r}.")
    return size
