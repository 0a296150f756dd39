"""MaCo: optimize only the phase of the image's spectrum; its magnitude is a natural image's.

Fel et al., "Unlocking Feature Visualization for Deeper Networks with MAgnitude Constrained
Optimization" (NeurIPS 2023, arXiv 2306.06805); reference implementations: Horama's
``maco_fv.py`` (serre-lab, PyPI ``horama`` 0.3.0) and Xplique's ``features_visualizations/maco.py``.
Written here from the paper and those sources, with three differences (docs/parameterizations.md):

- The magnitude spectrum is built offline from photos (``spectrum_from_photos``); the package
  ships one made from its four probe photos (``data/maco_spectrum.npz``,
  ``python -m featviz_widgets.engine.image.maco`` rebuilds it). Nothing is downloaded.
- No standardization of the phase or of the spatial image (Horama standardizes both): the map
  phase -> image is then exactly invertible, so a running image switches to MaCo keeping its
  phase (``MacoBasis.set_image``) and the widget can switch back and forth.
- The spectrum keeps the per-channel contrast of the picture it started from (a scale per
  channel; its shape is the natural one), and the mean colour (DC) of that picture; from noise
  the contrast is the photos' own and the mean is grey.

The spectrum is that of the *decorrelated* colour channels in the sigmoid's pre-image (logit)
space, the coordinates ``ImageParam`` optimizes in, so image = sigmoid(colour @ irfft2(M e^{i phase})).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ...errors import InvalidSettingError
from .colour import COLOR_MATRIX
from .photos import iter_photos, pil_to_tensor
from .transforms import TransformConfig

SPECTRUM_FILE = "maco_spectrum.npz"
SPECTRUM_SIDE = 224  # side of the shipped spectrum (resized to any canvas, see resize_spectrum)


def _color_matrix() -> torch.Tensor:
    return COLOR_MATRIX


def _decorrelated_logits(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> the decorrelated pre-sigmoid values ImageParam would hold."""
    pre = torch.logit(image.clamp(0.02, 0.98))
    return torch.einsum("bchw,dc->bdhw", pre, torch.linalg.inv(_color_matrix()))


def _square_crops(photo: torch.Tensor, side: int) -> list[torch.Tensor]:
    """Five square crops (centre and corners) of ``photo`` scaled so its short side is 1.25
    ``side``, and their mirror images: ten views per photo, so four photos give a smooth mean."""
    h, w = photo.shape[-2:]
    scale = 1.25 * side / min(h, w)
    photo = F.interpolate(
        photo, (max(side, round(h * scale)), max(side, round(w * scale))), mode="bilinear", antialias=True
    )
    h, w = photo.shape[-2:]
    spots = [((h - side) // 2, (w - side) // 2), (0, 0), (0, w - side), (h - side, 0), (h - side, w - side)]
    crops = [photo[..., y : y + side, x : x + side] for y, x in spots]
    return crops + [c.flip(-1) for c in crops]


def _windowed_amplitude(pre: torch.Tensor) -> torch.Tensor:
    """|rfft2| of (3, H, W) values through a Hann window (rescaled to keep the energy): a crop's
    borders do not wrap around, and without the window their jump puts a bright cross on the
    frequency axes, which MaCo then paints as horizontal and vertical streaks. The mean (DC)
    is the crop's own."""
    h, w = pre.shape[-2:]
    window = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    window = window / window.pow(2).mean().sqrt()
    mean = pre.mean((-2, -1), keepdim=True)
    amplitude = torch.fft.rfft2((pre - mean) * window, norm="ortho").abs()
    amplitude[:, 0, 0] = (mean[:, 0, 0] * math.sqrt(h * w)).abs()
    return amplitude


def spectrum_from_photos(
    folder_or_images: str | Path | Iterable[Image.Image | torch.Tensor] | None, size: int | tuple[int, int] = 224
) -> torch.Tensor:
    """The mean amplitude spectrum of natural photos, MaCo's fixed magnitude: (3, H, W//2 + 1).

    ``folder_or_images``: a folder of photos, an iterable of PIL images or (3, H, W) / (1, 3, H, W)
    tensors in [0, 1], or None for the probe photos the package installs. Every photo gives ten
    square crops (centre, corners, mirrored) of side ``size`` (or H x W crops scaled from a square
    of the longer side); each crop's colours are decorrelated (the inverse of ImageParam's colour
    matrix) in the sigmoid's pre-image space and its ``rfft2`` amplitude (``norm="ortho"``,
    so the contrast does not depend on the size; through a Hann window, so the crop's borders
    add no cross of false energy on the frequency axes) is averaged over all crops. This answers
    xplique #168: the same recipe builds the spectrum for one's own data.
    """
    height, width = (size, size) if isinstance(size, int) else size
    side = max(height, width)
    total: torch.Tensor | None = None
    count = 0
    photos: Iterable[Any] = (
        (img for _, img in iter_photos(folder_or_images))
        if folder_or_images is None or isinstance(folder_or_images, (str, Path))
        else folder_or_images
    )
    for photo in photos:
        t = pil_to_tensor(photo) if isinstance(photo, Image.Image) else photo
        if not isinstance(t, torch.Tensor) or t.dim() not in (3, 4) or t.shape[-3] != 3:
            raise InvalidSettingError("spectrum_from_photos takes PIL images or 3xHxW tensors in [0, 1].")
        t = (t if t.dim() == 4 else t[None]).float()
        for crop in _square_crops(t, side):
            if (height, width) != (side, side):
                crop = F.interpolate(crop, (height, width), mode="bilinear", antialias=True)
            amplitude = _windowed_amplitude(_decorrelated_logits(crop)[0])
            total = amplitude if total is None else total + amplitude
            count += 1
    if total is None:
        raise InvalidSettingError("spectrum_from_photos found no photos to build a spectrum from.")
    return total / count


def shipped_spectrum() -> torch.Tensor:
    """The spectrum built from the package's probe photos (data/README.md: which, licence)."""
    return _shipped().clone()


@functools.lru_cache(maxsize=1)
def _shipped() -> torch.Tensor:
    data = resources.files("featviz_widgets").joinpath("data").joinpath(SPECTRUM_FILE).read_bytes()
    with np.load(io.BytesIO(data)) as npz:
        return torch.from_numpy(npz["amplitude"].astype(np.float32))


def _mirror_mask(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows k -> -k (mod H), and the rfft bins whose value is the conjugate of another bin's
    (columns 0 and, for an even width, W/2, in their lower half)."""
    rows = (-torch.arange(height)) % height
    mask = torch.zeros(height, width // 2 + 1, dtype=torch.bool)
    cols = [0] + ([width // 2] if width % 2 == 0 else [])
    for c in cols:
        mask[height // 2 + 1 :, c] = True
    return rows, mask


def real_bins(height: int, width: int) -> torch.Tensor:
    """The rfft bins equal to their own conjugate (real-valued): DC and the Nyquist ones."""
    mask = torch.zeros(height, width // 2 + 1, dtype=torch.bool)
    for r in [0] + ([height // 2] if height % 2 == 0 else []):
        for c in [0] + ([width // 2] if width % 2 == 0 else []):
            mask[r, c] = True
    return mask


def resize_spectrum(spectrum: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A (3, h, w//2+1) amplitude spectrum at another size, by relative frequency (the rows
    put in frequency order first, unlike Horama's direct resize), Hermitian-consistent."""
    if spectrum.shape[-2:] != (height, width // 2 + 1):
        shifted = torch.fft.fftshift(spectrum, dim=-2)[None]
        shifted = F.interpolate(shifted, (height, width // 2 + 1), mode="bilinear", align_corners=False)[0]
        spectrum = torch.fft.ifftshift(shifted, dim=-2)
    rows, mask = _mirror_mask(height, width)
    return torch.where(mask, spectrum[:, rows], spectrum).contiguous()


class MacoBasis(nn.Module):
    """Image (before colour mixing and sigmoid) = irfft2(magnitude * e^{i phase}); only the
    phase is a parameter. The magnitude is a buffer: fixed while the image optimizes."""

    magnitude: torch.Tensor  # (batch, 3, h, w//2+1)
    template: torch.Tensor  # (3, h, w//2+1): the natural spectrum at this size
    rows: torch.Tensor
    mirrored: torch.Tensor

    def __init__(
        self, batch: int, height: int, width: int, spectrum: torch.Tensor | None, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.size = (height, width)
        template = resize_spectrum(spectrum if spectrum is not None else shipped_spectrum(), height, width)
        template = template.clone()
        template[:, 0, 0] = 0.0  # from noise: a grey mean (Horama standardizes the mean away)
        self.register_buffer("template", template)
        self.register_buffer("magnitude", template[None].repeat(batch, 1, 1, 1))
        rows, mirrored = _mirror_mask(height, width)
        self.register_buffer("rows", rows)
        self.register_buffer("mirrored", mirrored)
        phase = (torch.rand((batch, 3, height, width // 2 + 1), generator=generator) * 2 - 1) * math.pi
        self.phase = nn.Parameter(phase)

    def forward(self) -> torch.Tensor:
        # The conjugate-mirrored bins take minus their mirror's phase: a real image's spectrum,
        # so irfft2 keeps every magnitude exactly (it would average the two otherwise).
        phase = torch.where(self.mirrored, -self.phase[..., self.rows, :], self.phase)
        real, imag = self.magnitude * torch.cos(phase), self.magnitude * torch.sin(phase)
        return torch.fft.irfft2(torch.complex(real, imag), s=self.size, norm="ortho")

    @torch.no_grad()
    def set_image(self, pre: torch.Tensor) -> None:
        """Take the phase of ``pre`` (the magnitude stays as it is)."""
        spec = torch.fft.rfft2(pre, s=self.size, norm="ortho").expand(self.phase.shape[0], -1, -1, -1)
        self.phase.copy_(torch.angle(spec))

    @torch.no_grad()
    def fit_image(self, pre: torch.Tensor) -> None:
        """Start from ``pre``: its phase, the natural spectrum's shape scaled to its per-channel
        contrast, its mean colour (and exact real-valued Nyquist bins)."""
        spec = torch.fft.rfft2(pre, s=self.size, norm="ortho").expand(self.phase.shape[0], -1, -1, -1)
        amplitude = spec.abs()
        real = real_bins(*self.size).to(amplitude.device)
        template = self.template[None]
        weights = (~real).to(amplitude.dtype)
        gain = ((amplitude**2 * weights).sum((-2, -1)) / (template**2 * weights).sum((-2, -1)).clamp_min(1e-12)).sqrt()
        magnitude = template * gain[..., None, None]
        self.magnitude.copy_(torch.where(real, amplitude, magnitude))
        self.phase.copy_(torch.angle(spec))


def maco_recipe(views: int = 1) -> dict[str, Any]:
    """MaCo's own recipe as ``render()`` / ``RenderSettings`` keywords:
    ``render(model, obj, **maco_recipe())`` (or ``Renderer(model, obj, **maco_recipe())``).

    - ``param="maco"``: phase optimized, natural magnitude fixed;
    - crops instead of Lucid's pad/jitter/rotation: no grey border, no rotation; the model sees
      square crops drawn anywhere on the canvas, from the whole canvas down to half its side
      (Horama: boxes of 25-30 % of a 1280 px canvas; Xplique: 50 % down to 5 % of 512 px; on the
      widget's 128-512 px canvases crops that small are blown up past the model's input and
      scored lower: docs/parameterizations.md);
    - pixel noise on every view: Gaussian, std 0.04 of the [0, 1] range, plus uniform +/- 0.02
      (Xplique's 0.08 on its [-1, 1] range);
    - ``lr=0.3``: Horama and Xplique use NAdam at 1.0 on a standardized phase; our Adam (beta1
      0.5) at 1.0 moves every phase by about a radian a step and the image never settles (a
      Lite0 class logit after 32 steps at 128 px: 0.9 at 1.0, 27 at 0.3 with these crops);
    - ``views`` crops per step, their objectives averaged (Horama 6, Xplique 32): k views cost
      k times a step, so 1 by default (equal cost against the other parameterizations).
    """
    return {
        "param": "maco",
        "lr": 0.3,
        "transform": TransformConfig(pad=0, jitter=0, scale=0.0, rotate=0.0, crop=1.0, crop_anywhere=True, noise=0.04),
        "views": views,
    }


def write_shipped_spectrum(path: Path) -> None:
    """Build the shipped spectrum from the probe photos at ``SPECTRUM_SIDE`` (float16 .npz);
    ``python scripts/build_maco_spectrum.py`` writes it into featviz_widgets/data/."""
    spectrum = spectrum_from_photos(None, SPECTRUM_SIDE)
    np.savez_compressed(path, amplitude=spectrum.numpy().astype(np.float16))


def transparency_overlay(images: torch.Tensor, transparency: torch.Tensor, quantile: float = 0.99) -> torch.Tensor:
    """MaCo's transparency as an alpha: (N, 3, H, W) images shown over white where the
    accumulated gradient (``Renderer.transparency()``, any parameterization) was small. The
    per-pixel gradient (mean over colours) is divided by its ``quantile`` per image, so the
    pixels the objective leaned on most are opaque."""
    alpha = transparency.mean(1, keepdim=True)
    top = torch.quantile(alpha.flatten(1).float(), quantile, dim=1).clamp_min(1e-12)
    alpha = (alpha / top[:, None, None, None]).clamp(0, 1).to(images.dtype)
    return images * alpha + (1 - alpha)
