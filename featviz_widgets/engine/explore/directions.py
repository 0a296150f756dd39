"""Directions learned from activations: PCA, NMF, ICA or k-means (scikit-learn, the
``directions`` extra, as in Lucid's ``ChannelReducer``) of the samples ``collect`` kept, the
``neuron`` and ``random`` bases, and a user's own matrix (an SAE decoder, concept vectors).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import FeatvizError
from ..layers.access import layer_info
from ..models.loaders import FeatvizModel, ensure_model
from .collect import DirectionsError, ImagesArg, collect

METHODS = ("neuron", "random", "pca", "nmf", "ica", "kmeans")


class ClippedActivationsWarning(UserWarning):
    """NMF factorized the positive part of activations that were partly negative (the default,
    ``negative="auto"``, does so and says so; ``negative="clip"`` does so silently)."""


NEGATIVE = ("auto", "clip", "error")


class MissingExtraError(FeatvizError, ImportError):
    """An optional dependency (scikit-learn) that is not installed."""


def load_sklearn() -> Any:
    """scikit-learn's decomposition and clustering modules (the ``directions`` extra)."""
    try:
        import sklearn.cluster  # type: ignore[import-untyped]
        import sklearn.decomposition  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the test venv has it
        raise MissingExtraError(
            "PCA/NMF/ICA/k-means directions need scikit-learn: pip install 'featviz-widgets[directions]'."
        ) from exc
    return sklearn


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
    sk = load_sklearn()
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


__all__ = [
    "METHODS",
    "NEGATIVE",
    "ClippedActivationsWarning",
    "MissingExtraError",
    "find_directions",
    "fit_directions",
    "load_directions",
    "load_sklearn",
]
