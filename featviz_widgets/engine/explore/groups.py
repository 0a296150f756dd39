"""Neuron groups on one photo (Olah et al. 2018, "The Building Blocks of Interpretability"): NMF
of the photo's activations at a layer into groups of channels, each with its heatmap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..image.photos import pil_to_tensor, to_rgb
from ..layers.access import capture, layer_info
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import as_spatial
from .collect import DirectionsError
from .directions import load_sklearn


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
    nmf = load_sklearn().decomposition.NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=500)
    weights = nmf.fit_transform(x)  # (HW, k)
    norms = np.linalg.norm(nmf.components_, axis=1).clip(1e-12)
    directions = torch.as_tensor(nmf.components_ / norms[:, None], dtype=torch.float32)
    maps = torch.as_tensor((weights * norms).T.reshape(k, h, w), dtype=torch.float32)
    maps = maps / maps.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return NeuronGroups(layer, directions, maps, resized)


__all__ = ["NeuronGroups", "neuron_groups"]
