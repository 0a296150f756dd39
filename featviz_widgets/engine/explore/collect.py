"""Activations from photos, for finding directions: the probe photos that install offline, the
crops of each photo, and one streaming pass that keeps, per crop, its mean activation and a few
sampled positions (and a judge model's embedding).

Memory is bounded: a crop is reduced, as soon as its batch has run, to its mean activation (one
C-vector, exactly what a ``Direction`` objective with ``cossim_power=0`` reads) and a few sampled
positions; the sampled positions are kept in a reservoir of at most ``max_samples`` rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ...errors import FeatvizError, InvalidSettingError
from ..core.settings import check_int
from ..image.photos import SAMPLES, iter_photos, load_photo, pil_to_tensor, sample_photo, to_rgb
from ..layers.access import capture, layer_info
from ..models.loaders import FeatvizModel
from ..objectives import as_spatial

ImagesArg = str | Path | Sequence[Image.Image | str | Path] | None

# scikit-image's bundled photos that load offline (no pooch download), with their licences
# (from skimage/data/_fetchers.py); grey ones are converted to RGB.
SKIMAGE_PROBES = {
    "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "coffee.png": "CC0 (Rachel Michetti)",
    "rocket.jpg": "public domain (SpaceX)",
    "hubble_deep_field.jpg": "public domain (NASA)",
    "ihc.png": "no known copyright restrictions",
    "retina.jpg": "CC0 (Häggström)",
    "camera.png": "CC0 (Lav Varshney)",
    "brick.png": "CC0 (CC0Textures)",
    "grass.png": "CC0 (CC0Textures)",
    "gravel.png": "CC0 (CC0Textures)",
    "coins.png": "no known copyright restrictions",
    "clock_motion.png": "public domain (Stefan van der Walt)",
    "cell.png": "CC0 (Müller et al. 2018)",
    "text.png": "public domain",
}


class DirectionsError(FeatvizError, ValueError):
    """Bad input to direction finding: no images, a wrong method or k, a matrix of the wrong width,
    negative activations for NMF."""


def probe_images() -> list[tuple[str, Image.Image]]:
    """The probe photos that install offline: scikit-image's bundled photos (``SKIMAGE_PROBES``,
    15 with the ``directions`` extra), else the package's 4 samples."""
    try:
        import skimage.data

        root = Path(skimage.data.__file__).parent
    except ImportError:
        root = None
    found = []
    if root is not None:
        for name in SKIMAGE_PROBES:
            if (root / name).is_file():
                found.append((f"skimage:{name}", load_photo(root / name, max_side=512)))
    if len(found) < len(SAMPLES):
        found = [(name, sample_photo(name)) for name in SAMPLES]
    return found


def iter_images(images: ImagesArg) -> Iterator[tuple[str, Image.Image]]:
    """(name, RGB image) from a folder, a list of PIL images or paths, or the probe set (None).
    A folder or list without one readable image raises DirectionsError."""
    if images is None:
        source: Iterable[tuple[str, Image.Image]] = probe_images()
    elif isinstance(images, (str, Path)):
        source = iter_photos(images)
    else:
        source = (
            (f"image {i}", to_rgb(img)) if isinstance(img, Image.Image) else (str(img), load_photo(img))
            for i, img in enumerate(images)
        )
    count = 0
    for item in source:
        count += 1
        yield item
    if count == 0:
        where = f"folder {str(images)!r}" if isinstance(images, (str, Path)) else "the list given"
        raise DirectionsError(f"No readable images in {where}; give JPEG/PNG/WebP/BMP/TIFF photos.")


def crop_boxes(width: int, height: int, scales: Sequence[float]) -> list[tuple[int, int, int, int]]:
    """Square crops at each scale (side = scale x the short side) on an evenly spaced grid of
    ceil(1/scale) per side: scale 1 is the centre square, 0.5 a 2x2 grid, 0.35 a 3x3 grid."""
    boxes = []
    short = min(width, height)
    for s in scales:
        side = max(1, round(short * s))
        n = max(1, math.ceil(1 / s - 1e-9))
        xs = [round(i * (width - side) / max(n - 1, 1)) for i in range(n)] if n > 1 else [(width - side) // 2]
        ys = [round(i * (height - side) / max(n - 1, 1)) for i in range(n)] if n > 1 else [(height - side) // 2]
        boxes += [(x, y, x + side, y + side) for y in ys for x in xs]
    return boxes


def _check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(s) for s in scales)
    if not out or any(not 0.05 <= s <= 1.0 for s in out):
        raise InvalidSettingError(f"scales must be fractions of the short side in [0.05, 1], got {scales!r}.")
    return out


# --- collecting activations ---------------------------------------------------------------------


@dataclass
class Collection:
    """What one streaming pass kept, per crop: ``pooled[layer]`` (crops x C, the mean activation),
    ``samples[layer]`` (at most ``max_samples`` sampled positions x C), the crop's source photo and
    box, optionally a judge model's embedding (crops x E) and a small thumbnail."""

    pooled: dict[str, torch.Tensor]
    samples: dict[str, torch.Tensor]
    sources: list[str]
    boxes: list[tuple[int, int, int, int]]
    n_images: int
    seconds: float
    embeddings: torch.Tensor | None = None
    thumbnails: list[Image.Image] = field(default_factory=list)

    @property
    def n_crops(self) -> int:
        return len(self.sources)


class Reservoir:
    """A uniform sample of at most ``cap`` rows of a stream (Vitter's algorithm R, per batch)."""

    def __init__(self, cap: int, generator: torch.Generator) -> None:
        self.cap, self.g, self.seen = cap, generator, 0
        self.rows: torch.Tensor | None = None

    def add(self, rows: torch.Tensor) -> None:
        if self.rows is None:
            self.rows = torch.empty(0, rows.shape[1])
        room = min(self.cap - self.rows.shape[0], rows.shape[0])
        if room > 0:
            self.rows = torch.cat([self.rows, rows[:room]])
        rest = rows[max(room, 0) :]
        if rest.shape[0]:
            idx = torch.arange(self.seen + room, self.seen + rows.shape[0])
            j = (torch.rand(rest.shape[0], generator=self.g) * (idx + 1)).long()
            keep = j < self.cap
            self.rows[j[keep]] = rest[keep]
        self.seen += rows.shape[0]


def embed(judge: FeatvizModel, layer: str, x: torch.Tensor) -> torch.Tensor:
    """A judge model's pooled features of images ``x`` (N x E, on the CPU)."""
    return as_spatial(capture(judge, x.to(judge.device), [layer])[layer]).mean(dim=(2, 3)).float().cpu()


def collect(
    model: FeatvizModel,
    layers: Sequence[str],
    images: ImagesArg = None,
    *,
    scales: Sequence[float] = (1.0, 0.5),
    positions_per_crop: int = 8,
    input_size: int | None = None,
    batch_size: int = 16,
    max_images: int | None = None,
    max_samples: int = 20_000,
    seed: int = 0,
    judge: tuple[FeatvizModel, str] | None = None,
    thumbnail: int = 0,
) -> Collection:
    """One streaming pass over ``images``: crops at ``scales``, resized to ``input_size`` (the
    model's by default), ``batch_size`` at a time through the truncated forward to the deepest of
    ``layers`` (and through ``judge``'s model to its layer, pooled, when given)."""
    scales = _check_scales(scales)
    positions_per_crop = check_int("positions_per_crop", positions_per_crop, 1, 4096)
    batch_size = check_int("batch_size", batch_size, 1, 1024)
    max_samples = check_int("max_samples", max_samples, 1, 10_000_000)
    size = check_int("input_size", input_size or model.input_size, 16, 1024)
    for name in layers:
        layer_info(model, name)  # unknown layers fail before any image is read
    g = torch.Generator().manual_seed(int(seed))
    pooled: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    reservoirs = {n: Reservoir(max_samples, g) for n in layers}
    sources: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    embeddings: list[torch.Tensor] = []
    thumbs: list[Image.Image] = []
    pending: list[Image.Image] = []
    t0, n_images = time.perf_counter(), 0

    def flush() -> None:
        if not pending:
            return
        x = torch.cat([pil_to_tensor(c.resize((size, size), Image.Resampling.BILINEAR)) for c in pending])
        with torch.no_grad():
            acts = capture(model, x.to(model.device), layers)
            for name in layers:
                a = as_spatial(acts[name]).float()
                pooled[name].append(a.mean(dim=(2, 3)).cpu())
                flat = a.flatten(2).transpose(1, 2).cpu()  # (B, HW, C)
                p = min(positions_per_crop, flat.shape[1])
                idx = torch.rand(flat.shape[0], flat.shape[1], generator=g).argsort(dim=1)[:, :p]
                reservoirs[name].add(torch.gather(flat, 1, idx[..., None].expand(-1, -1, flat.shape[2])).flatten(0, 1))
            if judge is not None:
                embeddings.append(embed(judge[0], judge[1], x))
        if thumbnail:
            thumbs.extend(c.resize((thumbnail, thumbnail), Image.Resampling.BILINEAR) for c in pending)
        pending.clear()

    for name, img in iter_images(images):
        if max_images is not None and n_images >= max_images:
            break
        n_images += 1
        for box in crop_boxes(img.width, img.height, scales):
            pending.append(img.crop(box))
            sources.append(name)
            boxes.append(box)
            if len(pending) >= batch_size:
                flush()
    flush()
    return Collection(
        pooled={n: torch.cat(v) for n, v in pooled.items()},
        samples={n: r.rows if r.rows is not None else torch.empty(0) for n, r in reservoirs.items()},
        sources=sources,
        boxes=boxes,
        n_images=n_images,
        seconds=time.perf_counter() - t0,
        embeddings=torch.cat(embeddings) if embeddings else None,
        thumbnails=thumbs,
    )


__all__ = [
    "SKIMAGE_PROBES",
    "Collection",
    "DirectionsError",
    "ImagesArg",
    "Reservoir",
    "collect",
    "crop_boxes",
    "embed",
    "iter_images",
    "probe_images",
]
