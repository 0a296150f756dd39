"""Automatic measures of a set of directions (definitions and sources: docs/directions.md).

- **selectivity**: excess kurtosis of a direction's response over the probe crops (0 for a
  Gaussian response; large when a few crops respond far more than the rest).
- **coherence**: mean pairwise cosine, in an independent judge model's embedding (centred over the
  probe crops), of the direction's top exemplars, one per photo (Klindt et al. 2023's index /
  SemanticLens's clarity, with the judge's features as the perceptual space).
- **2afc**: how often the direction's visualization is closer, in that embedding, to a
  top-quantile crop than to a bottom-quantile one, over every (top, bottom) pair (a
  visualization-as-explanation two-alternative choice in the spirit of Borowski et al. 2021 and
  Zimmermann et al.'s MIS). Chance is 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ...errors import InvalidSettingError

MEASURES = ("selectivity", "coherence", "2afc")


def selectivity(responses: torch.Tensor) -> torch.Tensor:
    """Excess kurtosis of each column of ``responses`` (crops x directions)."""
    r = responses.double()
    dev = r - r.mean(0)
    var = dev.pow(2).mean(0)
    kurt = dev.pow(4).mean(0) / var.pow(2).clamp_min(1e-300) - 3.0
    return torch.where(var > 1e-20, kurt, torch.zeros_like(kurt)).float()


def top_per_source(scores: torch.Tensor, sources: Sequence[str], m: int) -> list[int]:
    """Indices of the ``m`` best-scoring crops, at most one per source photo."""
    seen: set[str] = set()
    out: list[int] = []
    for i in torch.argsort(scores, descending=True).tolist():
        if sources[i] not in seen:
            seen.add(sources[i])
            out.append(i)
            if len(out) == m:
                break
    return out


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.double(), dim=-1) @ F.normalize(b.double(), dim=-1).T


def coherence(responses: torch.Tensor, embeddings: torch.Tensor, sources: Sequence[str], m: int = 5) -> torch.Tensor:
    """Mean pairwise cosine of the embeddings (centred) of each direction's top ``m`` exemplars,
    one per photo."""
    out = []
    for j in range(responses.shape[1]):
        idx = top_per_source(responses[:, j], sources, m)
        if len(idx) < 2:
            out.append(float("nan"))
            continue
        sim = _cos(embeddings[idx], embeddings[idx])
        n = len(idx)
        out.append(float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1))))
    return torch.tensor(out)


def chance_coherence(embeddings: torch.Tensor, sources: Sequence[str], limit: int = 2000) -> float:
    """The coherence of crops drawn at random from distinct photos: the mean cosine over every pair
    of crops from different photos (of at most ``limit`` crops), the floor a direction is read against."""
    idx = torch.randperm(len(sources), generator=torch.Generator().manual_seed(0))[:limit]
    ids = {name: i for i, name in enumerate(dict.fromkeys(sources))}
    src = torch.tensor([ids[sources[i]] for i in idx.tolist()])
    other = src[:, None] != src[None, :]
    if not bool(other.any()):
        return float("nan")
    return float(_cos(embeddings[idx], embeddings[idx])[other].mean())


def two_afc(
    viz: torch.Tensor, responses: torch.Tensor, embeddings: torch.Tensor, quantile: float = 0.2
) -> torch.Tensor:
    """Per direction j: the fraction of (top, bottom) crop pairs, taken from the top and bottom
    ``quantile`` of its responses, for which visualization ``viz[j]`` is closer (cosine, in the
    embedding) to the top crop; ties count half."""
    if not 0 < quantile <= 0.5:
        raise InvalidSettingError(f"quantile must be in (0, 0.5], got {quantile!r}.")
    n = responses.shape[0]
    q = max(1, round(n * quantile))
    out = []
    for j in range(responses.shape[1]):
        order = torch.argsort(responses[:, j], descending=True)
        top, bottom = order[:q], order[-q:]
        s = _cos(viz[j : j + 1], embeddings)[0]
        diff = s[top][:, None] - s[bottom][None, :]
        out.append(float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean()))
    return torch.tensor(out)


__all__ = ["MEASURES", "chance_coherence", "coherence", "selectivity", "top_per_source", "two_afc"]
