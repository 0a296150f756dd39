"""Reference-aligned rendering: VITAL's distribution matching (Görgün, Schiele, Fischer, ICCV 2025,
arXiv 2503.22399; their ``sort_matching`` in ``class_fvis/utils/opt_utils.py``).

Besides maximizing the objective, the image's activations at a few layers should be
*distributed* like those of real photos: for every channel, the image's activations sorted by
value should match the reference photos' sorted activations (the quantiles at the same ranks).
Sorting makes the comparison independent of where things are, so the penalty asks for natural
statistics without copying the photos. It is the squared difference, averaged over channels and
positions, divided by the references' variance at that layer (so every layer counts alike), and
averaged over the layers.

Differences from VITAL (docs/parameterizations.md): the references are a folder of photos (the
package's probe photos by default; VITAL takes 50 ImageNet images of the class), up to
``MAX_PHOTOS`` of them, pooled; the layers are up to three "main" layers spread up to the
objective's; no LRP relevance filter. Cost per step: a sort of each aligned layer's activations
(no extra forward: the layers lie at or before the objective's).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ...errors import InvalidSettingError
from ..image.photos import iter_photos, pil_to_tensor
from ..layers.access import LayerInfo, capture
from ..models.loaders import FeatvizModel

MAX_PHOTOS = 32  # reference photos read from a folder (their activations are held in memory)
LAYERS = 3  # aligned layers


def align_layers(layers: Mapping[str, LayerInfo], objective_layers: frozenset[str] | set[str]) -> list[str]:
    """Up to ``LAYERS`` main layers with positions (maps or tokens), spread evenly from the first
    to the deepest that runs no later than the objective's deepest layer."""
    if not objective_layers:
        return []
    deepest = max(layers[n].order for n in objective_layers)
    spatial = [
        i for i in sorted(layers.values(), key=lambda i: i.order) if i.main and i.order <= deepest and has_positions(i)
    ]
    if len(spatial) <= LAYERS:
        return [i.name for i in spatial]
    picks = {round(k * (len(spatial) - 1) / (LAYERS - 1)) for k in range(LAYERS)}
    return [spatial[k].name for k in sorted(picks)]


def has_positions(info: LayerInfo) -> bool:
    """A map or token sequence with at least 4 positions (a 1x1 pool has nothing to sort)."""
    if info.layout == "chw" and len(info.shape) == 3:
        return info.shape[1] * info.shape[2] >= 4
    if info.layout == "hwc" and len(info.shape) == 3:
        return info.shape[0] * info.shape[1] >= 4
    return info.layout == "tokens" and len(info.shape) == 2 and info.shape[0] >= 4


def channel_values(act: torch.Tensor, info: LayerInfo | None) -> torch.Tensor:
    """A layer's output as (N, C, positions)."""
    layout = info.layout if info is not None else ("chw" if act.dim() == 4 else "tokens")
    if layout == "chw":
        return act.flatten(2)
    if layout == "hwc":
        return act.flatten(1, 2).transpose(1, 2)
    if layout == "tokens":
        return act.transpose(1, 2)
    raise InvalidSettingError(f"Layer output of shape {tuple(act.shape)} has no positions to align.")


class Reference:
    """The reference photos' pooled, sorted activations per channel at the aligned layers."""

    def __init__(self, sorted_values: dict[str, torch.Tensor], layers: Mapping[str, LayerInfo]) -> None:
        self.sorted = sorted_values  # layer -> (C, M), ascending
        self.layers = layers
        self.variance = {k: v.var().clamp_min(1e-8) for k, v in sorted_values.items()}
        self._targets: dict[tuple[str, int], torch.Tensor] = {}

    def target(self, layer: str, positions: int) -> torch.Tensor:
        """The references' quantiles at ``positions`` evenly spaced ranks, (C, positions)."""
        key = (layer, positions)
        if key not in self._targets:
            values = self.sorted[layer]
            m = values.shape[1]
            where = ((torch.arange(positions, device=values.device) + 0.5) * m / positions - 0.5).clamp(0, m - 1)
            low = where.floor().long()
            high = (low + 1).clamp(max=m - 1)
            frac = (where - low).to(values.dtype)
            self._targets[key] = values[:, low] * (1 - frac) + values[:, high] * frac
        return self._targets[key]

    def penalty(self, activations: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N,) the sort-matching distance of every image to the references (0: same statistics)."""
        total: torch.Tensor | None = None
        for layer in self.sorted:
            values = channel_values(activations[layer], self.layers.get(layer)).float()
            ordered = values.sort(dim=-1).values
            gap = (ordered - self.target(layer, ordered.shape[-1])) ** 2
            term = gap.mean((1, 2)) / self.variance[layer]
            total = term if total is None else total + term
        if total is None:
            raise InvalidSettingError("Reference alignment found no layer with positions to align.")
        return total / len(self.sorted)


@torch.no_grad()
def reference_activations(
    model: FeatvizModel,
    layers: Mapping[str, LayerInfo],
    names: list[str],
    size: tuple[int, int],
    folder: str | None = None,
    images: torch.Tensor | None = None,
) -> Reference:
    """The ``Reference`` for ``names`` from the photos in ``folder`` (None: the probe photos),
    or from ``images`` ((N, 3, H, W) in [0, 1]), each scaled to cover ``size`` and centre-cropped
    to it (the size the rendered image is fed at)."""
    if not names:
        raise InvalidSettingError("Reference alignment needs at least one layer with positions.")
    if images is None:
        tensors = [_cover(pil_to_tensor(img), size) for _, img in itertools.islice(iter_photos(folder), MAX_PHOTOS)]
        if not tensors:
            raise InvalidSettingError(f"No readable photos in {folder!r} to align to.")
        images = torch.cat(tensors)
    else:
        images = torch.cat([_cover(img[None], size) for img in images])
    acts = capture(model, images.to(model.device), names)
    pooled = {}
    for name in names:
        values = channel_values(acts[name], layers.get(name)).float()  # (N, C, P)
        pooled[name] = values.transpose(0, 1).flatten(1).sort(dim=-1).values  # (C, N*P)
    return Reference(pooled, layers)


def _cover(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = image.shape[-2:]
    scale = max(size[0] / h, size[1] / w)
    if (h, w) != size:
        image = F.interpolate(
            image, (max(size[0], round(h * scale)), max(size[1], round(w * scale))), mode="bilinear", antialias=True
        )
    h, w = image.shape[-2:]
    y, x = (h - size[0]) // 2, (w - size[1]) // 2
    return image[..., y : y + size[0], x : x + size[1]]
