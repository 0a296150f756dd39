"""Directions found from photos: a layer's activations over crops of many images, streamed in
batches, factorized by PCA, NMF, ICA or k-means (scikit-learn, the ``directions`` extra, as in
Lucid's ``ChannelReducer``); a user's own matrix (an SAE decoder, concept vectors); and neuron
groups on one photo (Olah et al. 2018, "The Building Blocks of Interpretability").

Memory is bounded: a crop is reduced, as soon as its batch has run, to its mean activation (one
C-vector, exactly what a ``Direction`` objective with ``cossim_power=0`` reads) and a few sampled
positions; the sampled positions are kept in a reservoir of at most ``max_samples`` rows.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...errors import FeatvizError, InvalidSettingError
from ..core.settings import check_int
from ..image.photos import SAMPLES, iter_photos, load_photo, pil_to_tensor, sample_photo, to_rgb
from ..layers.access import capture, layer_info
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import as_spatial

METHODS = ("neuron", "random", "pca", "nmf", "ica", "kmeans")
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


class ClippedActivationsWarning(UserWarning):
    """NMF factorized the positive part of activations that were partly negative (the default,
    ``negative="auto"``, does so and says so; ``negative="clip"`` does so silently)."""


NEGATIVE = ("auto", "clip", "error")


class MissingExtraError(FeatvizError, ImportError):
    """An optional dependency (scikit-learn) that is not installed."""


def _sklearn() -> Any:
    try:
        import sklearn.cluster  # type: ignore[import-untyped]
        import sklearn.decomposition  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the test venv has it
        raise MissingExtraError(
            "PCA/NMF/ICA/k-means directions need scikit-learn: pip install 'featviz-widgets[directions]'."
        ) from exc
    return sklearn


# --- images -------------------------------------------------------------------------------------


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


class _Reservoir:
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
    reservoirs = {n: _Reservoir(max_samples, g) for n in layers}
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


# --- finding directions -------------------------------------------------------------------------


def _unit_rows(m: torch.Tensor) -> torch.Tensor:
    return m / m.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _orient(d: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Flip sign-ambiguous rows so that their projections have a heavier positive tail."""
    proj = (x - x.mean(0)) @ d.T
    skew = (proj**3).mean(0)
    return d * np.where(skew < 0, -1.0, 1.0)[:, None]


def fit_directions(
    samples: torch.Tensor | np.ndarray,
    method: str = "nmf",
    k: int = 8,
    *,
    seed: int = 0,
    negative: str = "auto",
) -> torch.Tensor:
    """k unit directions (k x C) from activation samples (M x C).

    - ``pca``: principal axes of the centred samples (``sklearn.decomposition.PCA``);
    - ``nmf``: NMF components (``NMF(init="nndsvda")``) of non-negative samples. Samples with
      negative values (EfficientNet's linear bottlenecks: about half of them) are factorized by
      their positive part max(a, 0): with ``negative="auto"`` (the default) a
      ``ClippedActivationsWarning`` says so and how much was clipped, ``"clip"`` does it
      silently, ``"error"`` refuses with a DirectionsError;
    - ``ica``: FastICA unmixing rows (the filters that read out each independent component);
    - ``kmeans``: centres of k-means on the samples scaled to unit length (Klindt et al. 2023);
    - ``neuron``: k distinct basis vectors (channels) drawn with ``seed``; ``random``: k Gaussian
      unit vectors drawn with ``seed``.
    PCA and ICA rows, whose sign is arbitrary, are oriented so their positive side is the tail.
    """
    if method not in METHODS:
        raise DirectionsError(f"Unknown method {method!r}; valid: {', '.join(METHODS)}.")
    if negative not in NEGATIVE:
        raise DirectionsError(f"negative must be 'auto', 'clip' or 'error', got {negative!r}.")
    x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    x = x.astype(np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise DirectionsError(f"samples must be a 2-D (positions x channels) array, got shape {x.shape}.")
    c = x.shape[1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= c:
        raise DirectionsError(f"k must be an integer from 1 to the layer's {c} channels, got {k!r}.")
    if method == "neuron":
        chans = torch.randperm(c, generator=torch.Generator().manual_seed(int(seed)))[:k]
        return torch.eye(c)[chans]
    if method == "random":
        g = torch.Generator().manual_seed(int(seed))
        return _unit_rows(torch.randn(k, c, generator=g))
    if x.shape[0] < max(2, k):
        raise DirectionsError(f"{method} needs at least {max(2, k)} activation samples, got {x.shape[0]}.")
    sk = _sklearn()
    if method == "pca":
        d = _orient(sk.decomposition.PCA(n_components=k, random_state=seed).fit(x).components_, x)
    elif method == "ica":
        ica = sk.decomposition.FastICA(n_components=k, whiten="unit-variance", random_state=seed, max_iter=400)
        with warnings.catch_warnings():  # rank-deficient samples divide by zero singular values it then drops
            warnings.simplefilter("ignore", RuntimeWarning)
            d = _orient(ica.fit(x).components_, x)
    elif method == "nmf":
        low = float(x.min())
        share = float((x < 0).mean())
        if low < 0 and negative == "error":
            raise DirectionsError(
                f"NMF needs non-negative activations, but {share:.0%} of this layer's values are negative "
                f"(min {low:.3g}): pick a layer after a ReLU, use method 'pca', 'ica' or 'kmeans', or pass "
                "negative='clip' to factorize the positive part."
            )
        if low < 0 and negative == "auto":
            warnings.warn(
                f"NMF factorized the positive part of the activations: {share:.0%} of the values were negative "
                f"(min {low:.3g}) and were set to 0. Pass negative='clip' to do this silently, negative='error' "
                "to refuse such a layer, or use method 'pca', 'ica' or 'kmeans'.",
                ClippedActivationsWarning,
                stacklevel=3,
            )
        nmf = sk.decomposition.NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=400)
        d = nmf.fit(np.maximum(x, 0)).components_
    else:  # kmeans
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        xs = x[norms[:, 0] > 1e-8] / norms[norms[:, 0] > 1e-8]
        if xs.shape[0] < k:
            raise DirectionsError(f"kmeans needs at least {k} non-zero activation samples, got {xs.shape[0]}.")
        d = sk.cluster.KMeans(n_clusters=k, n_init=4, random_state=seed).fit(xs).cluster_centers_
    return _unit_rows(torch.as_tensor(np.asarray(d), dtype=torch.float32))


def find_directions(
    model: FeatvizModel | str | None,
    layer: str,
    images: ImagesArg = None,
    method: str = "nmf",
    k: int = 8,
    *,
    scales: Sequence[float] = (1.0, 0.5),
    positions_per_crop: int = 8,
    max_images: int | None = None,
    batch_size: int = 16,
    max_samples: int = 20_000,
    seed: int = 0,
    negative: str = "auto",
) -> torch.Tensor:
    """k unit directions (k x C) of ``layer`` found by ``method`` from the activations of
    ``images`` (a folder, a list of PIL images or paths, or None for ``probe_images()``).
    Render one with ``Direction(layer, d[i])`` (add ``cossim_power=1`` for Lucid's dot x cos).
    NMF on a layer with negative values factorizes their positive part and, with
    ``negative="auto"``, says so in a ``ClippedActivationsWarning`` (see ``fit_directions``)."""
    model = ensure_model(model)
    channels = layer_info(model, layer).channels
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= channels:
        raise DirectionsError(f"k must be an integer from 1 to {channels} (the channels of {layer!r}), got {k!r}.")
    if method in ("neuron", "random"):
        return fit_directions(np.zeros((0, channels)), method, k, seed=seed)
    if method not in METHODS:
        raise DirectionsError(f"Unknown method {method!r}; valid: {', '.join(METHODS)}.")
    got = collect(
        model,
        [layer],
        images,
        scales=scales,
        positions_per_crop=positions_per_crop,
        batch_size=batch_size,
        max_images=max_images,
        max_samples=max_samples,
        seed=seed,
    )
    return fit_directions(got.samples[layer], method, k, seed=seed, negative=negative)


def load_directions(source: torch.Tensor | np.ndarray | str | Path, channels: int) -> torch.Tensor:
    """A user's k x C matrix (an SAE decoder, concept vectors) from a tensor, an array or a
    ``.npy`` / ``.pt`` file, as unit rows; a width other than ``channels`` is refused."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DirectionsError(f"{str(path)!r} is not a file; give a .npy or .pt file of a k x C matrix.")
        if path.suffix == ".npy":
            data: Any = np.load(path, allow_pickle=False)
        elif path.suffix in (".pt", ".pth"):
            data = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise DirectionsError(f"{path.name!r}: directions load from .npy or .pt files.")
    else:
        data = source
    try:
        m = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data).float()
    except (TypeError, ValueError) as exc:
        raise DirectionsError(f"Directions must be a numeric k x C matrix, got {type(data).__name__}.") from exc
    if m.dim() == 1:
        m = m[None]
    if m.dim() != 2 or m.shape[1] != channels:
        raise DirectionsError(
            f"Directions have shape {tuple(m.shape)}; expected k x {channels} (the layer's channels)."
        )
    if not torch.isfinite(m).all() or bool((m.norm(dim=1) == 0).any()):
        raise DirectionsError("Directions must be finite, with no all-zero row.")
    return _unit_rows(m)


# --- neuron groups on one photo -----------------------------------------------------------------


@dataclass
class NeuronGroups:
    """NMF of one photo's activations (positions x channels): ``directions`` (k x C, unit rows)
    and ``heatmaps`` (k x H x W, each scaled to a maximum of 1) over ``photo``."""

    layer: str
    directions: torch.Tensor
    heatmaps: torch.Tensor
    photo: Image.Image

    def overlays(self, size: int | None = None) -> list[Image.Image]:
        """The photo darkened where each group is absent: one PIL image per group."""
        photo = self.photo if size is None else self.photo.resize((size, size * self.photo.height // self.photo.width))
        base = pil_to_tensor(photo)
        out = []
        for h in self.heatmaps:
            m = F.interpolate(h[None, None], base.shape[-2:], mode="bilinear", align_corners=False)
            img = base * (0.15 + 0.85 * m.clamp(0, 1))
            arr = (img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            out.append(Image.fromarray(arr, "RGB"))
        return out


def neuron_groups(
    model: FeatvizModel | str | None,
    layer: str,
    photo: Image.Image,
    k: int = 6,
    *,
    input_size: int | None = None,
    seed: int = 0,
) -> NeuronGroups:
    """Olah et al.'s neuron groups: NMF of ``photo``'s activations at ``layer`` into ``k``
    groups. Negative activations (linear bottlenecks) are clipped: the groups factorize the
    positive part."""
    model = ensure_model(model)
    channels = layer_info(model, layer).channels
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= channels:
        raise DirectionsError(f"k must be an integer from 1 to {channels} (the channels of {layer!r}), got {k!r}.")
    photo = to_rgb(photo)
    side = input_size or model.input_size
    scale = side / min(photo.size)
    resized = photo.resize(
        (max(16, round(photo.width * scale)), max(16, round(photo.height * scale))), Image.Resampling.BILINEAR
    )
    with torch.no_grad():
        act = as_spatial(capture(model, pil_to_tensor(resized).to(model.device), [layer])[layer])[0].float().cpu()
    _, h, w = act.shape
    x = act.flatten(1).T.clamp_min(0).numpy().astype(np.float64)  # (HW, C)
    if h * w < k:
        raise DirectionsError(f"Layer {layer!r} has {h * w} positions on this photo; k must be at most that.")
    nmf = _sklearn().decomposition.NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=500)
    weights = nmf.fit_transform(x)  # (HW, k)
    norms = np.linalg.norm(nmf.components_, axis=1).clip(1e-12)
    directions = torch.as_tensor(nmf.components_ / norms[:, None], dtype=torch.float32)
    maps = torch.as_tensor((weights * norms).T.reshape(k, h, w), dtype=torch.float32)
    maps = maps / maps.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return NeuronGroups(layer, directions, maps, resized)


__all__ = [
    "METHODS",
    "SKIMAGE_PROBES",
    "ClippedActivationsWarning",
    "Collection",
    "DirectionsError",
    "MissingExtraError",
    "NeuronGroups",
    "collect",
    "crop_boxes",
    "embed",
    "find_directions",
    "fit_directions",
    "iter_images",
    "load_directions",
    "neuron_groups",
    "probe_images",
]
