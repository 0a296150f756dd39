"""A sanity read-out for a visualization (Geirhos et al., ICML 2024, "Don't trust your eyes: on
the (un)reliability of feature visualizations"): does the network treat the picture like the
natural images that excite the same unit?

Two numbers beside the natural exemplars: the objective on the visualization relative to the
best exemplar's (how strongly it drives the unit, compared with a real photo), and, at one or
two earlier layers, the cosine similarity between the visualization's activations and the
exemplars' (channel vectors averaged over positions). The exemplars' similarity among
themselves is given as the yardstick: a visualization processed like natural images scores
near it; one that reaches the unit by another path scores far below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ..core.align import channel_values, has_positions
from ..image.photos import pil_to_tensor
from ..layers.access import LayerInfo, capture, layers_by_name
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import Context, Objective, as_objective


@dataclass(frozen=True)
class SanityReadout:
    """``value``: the objective on the visualization; ``best_natural``: on the best exemplar;
    ``similarity``/``natural_similarity``: layer -> mean cosine of the visualization's pooled
    activations to the exemplars', and of the exemplars' among themselves."""

    value: float
    best_natural: float
    similarity: dict[str, float]
    natural_similarity: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.value / self.best_natural if self.best_natural else float("inf")


def earlier_layers(layers: dict[str, LayerInfo], objective_layers: frozenset[str], count: int = 2) -> list[str]:
    """Up to ``count`` main layers with positions, at about 1/3 and 2/3 of the way to the
    objective's first layer (strictly before it)."""
    first = min(layers[n].order for n in objective_layers)
    before = [i for i in sorted(layers.values(), key=lambda i: i.order) if i.main and i.order < first]
    before = [i for i in before if has_positions(i)] or before
    if not before:
        return []
    picks = sorted({min(len(before) - 1, (k + 1) * len(before) // (count + 1)) for k in range(count)})
    return [before[k].name for k in picks]


def _batch(images: Any, size: int) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.dtype == torch.uint8:
        x = x.permute(0, 3, 1, 2).float() / 255
    return F.interpolate(x.float(), (size, size), mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def sanity_readout(
    model: FeatvizModel | str | None,
    objective: Objective | str,
    images: Any,
    exemplars: Sequence[Image.Image],
    size: int = 160,
    layers: list[str] | None = None,
) -> SanityReadout:
    """The read-out for ``images`` ((N, H, W, 3) uint8 or (N, 3, H, W) in [0, 1]; their mean
    is reported) against ``exemplars`` (natural crops, e.g. ``top_exemplars``), all fed at
    ``size`` px; ``layers`` default to ``earlier_layers``."""
    model = ensure_model(model)
    objective = as_objective(objective)
    if not exemplars:
        raise ValueError("sanity_readout needs at least one natural exemplar.")
    infos = layers_by_name(model)
    names = layers if layers is not None else earlier_layers(infos, objective.layers)
    viz = _batch(images, size).to(model.device)
    nat = torch.cat([_batch(pil_to_tensor(e.convert("RGB")), size) for e in exemplars]).to(model.device)
    wanted = set(objective.layers) | set(names)
    acts_v, acts_n = capture(model, viz, wanted), capture(model, nat, wanted)
    value = float(objective(Context(acts_v, viz, infos)).mean())
    best = float(objective(Context(acts_n, nat, infos)).max())
    similarity, natural = {}, {}
    for name in names:
        pv = F.normalize(channel_values(acts_v[name], infos.get(name)).float().mean(-1), dim=1)
        pn = F.normalize(channel_values(acts_n[name], infos.get(name)).float().mean(-1), dim=1)
        similarity[name] = float((pv @ pn.T).mean())
        k = pn.shape[0]
        gram = pn @ pn.T
        natural[name] = float((gram.sum() - gram.diagonal().sum()) / (k * (k - 1))) if k > 1 else 1.0
    return SanityReadout(value, best, similarity, natural)
