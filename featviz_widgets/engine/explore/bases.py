"""Are neurons special? A table comparing neuron, random and learned bases at several layers on
the automatic measures of measures.py (definitions and sources: docs/directions.md), and the
answer it gives."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import InvalidSettingError
from ..core.renderer import Renderer
from ..core.settings import check_int
from ..layers.access import layer_info, main_layers
from ..models.loaders import LOGITS, FeatvizModel, ensure_model
from ..objectives import Direction
from .collect import ImagesArg, collect, embed
from .directions import fit_directions, load_directions
from .measures import MEASURES, chance_coherence, coherence, selectivity, two_afc
from .sheets import PerImage, Progress, Sheet, run_steps

DEFAULT_METHODS = ("neuron", "random", "pca", "nmf", "kmeans")
LEARNED = ("pca", "nmf", "ica", "kmeans")


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One cell of the comparison: a measure's mean and standard deviation over directions and seeds."""

    layer: str
    method: str
    measure: str
    mean: float
    std: float
    n: int

    @property
    def sem(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 1 else float("nan")


@dataclass
class BasesTable:
    """Rows for each layer x method x measure, with what they rest on."""

    rows: list[Row]
    n_photos: int
    n_crops: int
    chance: dict[str, float] = field(default_factory=dict)
    in_sample: bool = True

    def get(self, layer: str, method: str, measure: str) -> Row:
        for r in self.rows:
            if (r.layer, r.method, r.measure) == (layer, method, measure):
                return r
        raise KeyError((layer, method, measure))

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(r.layer for r in self.rows))

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.rows))

    def to_markdown(self) -> str:
        head = "| measure | layer | " + " | ".join(self.methods) + " |"
        lines = [head, "|" + "---|" * (len(self.methods) + 2)]
        for measure in MEASURES:
            for layer in self.layers:
                cells = [
                    f"{self.get(layer, m, measure).mean:.3f} ± {self.get(layer, m, measure).std:.3f}"
                    for m in self.methods
                ]
                lines.append(f"| {measure} | {layer} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        width = 15
        out = [
            f"{len(self.rows[0:1]) and self.rows[0].n} values a cell; {self.n_crops} crops of {self.n_photos} photos"
        ]
        for measure in MEASURES:
            chance = f" (chance {self.chance[measure]:.3f})" if measure in self.chance else ""
            out.append(f"\n{measure}{chance}: mean ± std")
            out.append(f"{'layer':<12}" + "".join(f"{m:>{width}}" for m in self.methods))
            for layer in self.layers:
                cells = "".join(
                    f"{f'{self.get(layer, m, measure).mean:.3f} ± {self.get(layer, m, measure).std:.3f}':>{width}}"
                    for m in self.methods
                )
                out.append(f"{layer:<12}" + cells)
        return "\n".join(out)


def _versus(table: BasesTable, layer: str, a: str, b: str, measure: str) -> float:
    """(mean a - mean b) in standard errors of the difference."""
    ra, rb = table.get(layer, a, measure), table.get(layer, b, measure)
    se = math.sqrt(ra.sem**2 + rb.sem**2) if ra.n > 1 and rb.n > 1 else float("nan")
    return (ra.mean - rb.mean) / se if se and math.isfinite(se) and se > 0 else float("nan")


def answer(table: BasesTable, threshold: float = 2.0) -> str:
    """Plain words from the table's numbers: neurons vs random, and the best learned basis vs
    neurons, per layer and measure, counting gaps larger than ``threshold`` standard errors."""
    methods = table.methods
    if "neuron" not in methods:
        return "No neuron directions in this table: nothing to say about whether neurons are special."
    with_random = "random" in methods
    learned = [m for m in methods if m not in ("neuron", "random")]
    lines, above, below, beaten, total = [], 0, 0, 0, 0
    for layer in table.layers:
        parts = []
        for measure in MEASURES:
            total += 1
            n = table.get(layer, "neuron", measure)
            part = f"{measure}: neurons {n.mean:.3f}"
            if with_random:
                z = _versus(table, layer, "neuron", "random", measure)
                verdict = "above" if z > threshold else "below" if z < -threshold else "level with"
                above += verdict == "above"
                below += verdict == "below"
                part += f" vs random {table.get(layer, 'random', measure).mean:.3f} ({verdict}, {z:+.1f} SE)"
            if learned:
                best = max(learned, key=lambda m: table.get(layer, m, measure).mean)
                zb = _versus(table, layer, best, "neuron", measure)
                beaten += zb > threshold
                part += f"; best learned {best} {table.get(layer, best, measure).mean:.3f} ({zb:+.1f} SE vs neurons)"
            parts.append(part)
        lines.append(f"- {layer}: " + "; ".join(parts) + ".")
    summary = ""
    if with_random:
        if above == 0 and below == 0:
            head = "Neurons are not distinguishable from random directions here"
        elif below == 0:
            head = (
                "Neurons are special compared with random directions here"
                if above > total / 2
                else ("Neurons are at most slightly special compared with random directions here")
            )
        elif above == 0:
            head = "Neurons score below random directions here"
        else:
            head = "The evidence on neurons vs random directions is mixed here"
        summary = (
            f"{head}: neurons score clearly above random directions in {above} of {total} layer x measure "
            f"comparisons and clearly below in {below} (gaps over {threshold:g} standard errors). "
        )
    if learned:
        summary += (
            f"A direction learned from the photos ({', '.join(learned)}) beats neurons clearly in {beaten} of {total}. "
        )
    fitted = (
        "found and scored on the same photos (in-sample)" if table.in_sample else "found on other photos than scored"
    )
    summary += (
        f"These rest on {table.n_crops} crops of {table.n_photos} photos and {table.rows[0].n} directions a cell, "
        f"{fitted}; a small probe set gives a rough answer: the same call on a folder of your own photos "
        "(e.g. ImageNet validation images) gives a firmer one."
    )
    return summary + "\n" + "\n".join(lines)


# --- rendering and comparing --------------------------------------------------------------------


def judge_layer(judge: FeatvizModel) -> str:
    """The judge's penultimate layer: the last main layer before the logits (``head`` for Lite2)."""
    names = [i.name for i in main_layers(judge) if i.name != LOGITS]
    if not names:
        raise InvalidSettingError("The judge model has no layer before its logits to embed images with.")
    return names[-1]


@dataclass
class Comparison:
    """``compare_bases``'s result: the table, and for the first seed one sheet per layer with every
    method's renders (labels ``method #i``) and the directions themselves."""

    table: BasesTable
    sheets: dict[str, Sheet]
    directions: dict[tuple[str, str, int], torch.Tensor]
    values: dict[tuple[str, str, str], list[float]]

    def answer(self) -> str:
        return answer(self.table)


def compare_bases(
    model: FeatvizModel | str | None,
    layers: Sequence[str],
    images: ImagesArg = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    k: int = 6,
    seeds: Sequence[int] = (0, 1),
    *,
    steps: int = 64,
    size: int = 80,
    user: Mapping[str, Any] | None = None,
    judge: FeatvizModel | str = "efficientnet_lite2",
    fit_images: ImagesArg = None,
    scales: Sequence[float] = (1.0, 0.6, 0.35),
    input_size: int = 160,
    positions_per_crop: int = 8,
    exemplars: int = 5,
    quantile: float = 0.2,
    cossim_power: float = 0.0,
    negative: str = "clip",
    batch_size: int = 16,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Comparison:
    """Score ``methods``' directions (k of each, per seed) at each of ``layers`` on the three
    measures. Directions are found from ``fit_images`` (default: the probe ``images`` themselves)
    and scored on ``images`` (None: ``probe_images()``); ``user`` maps a name to a k x C matrix per
    layer (``{layer: matrix}``) or to one matrix for every layer. One render batch per layer and
    seed holds every method's directions, with the same settings. Each seed draws its own neurons
    and random directions, starts NMF/ICA/k-means from its own state, fits on its own random 80% of
    the sampled positions and renders from its own initial image."""
    model = ensure_model(model)
    judge_model = ensure_model(judge)
    jl = judge_layer(judge_model)
    k = check_int("k", k, 1, 4096)
    seeds = [int(s) for s in seeds] or [0]
    probe = collect(
        model,
        layers,
        images,
        scales=scales,
        input_size=input_size,
        positions_per_crop=positions_per_crop,
        batch_size=batch_size,
        seed=seeds[0],
        judge=(judge_model, jl),
    )
    fit = probe
    if fit_images is not None:
        fit = collect(model, layers, fit_images, scales=scales, input_size=input_size, batch_size=batch_size)
    assert probe.embeddings is not None
    mean_emb = probe.embeddings.mean(0)
    emb = probe.embeddings - mean_emb
    all_methods = list(methods) + list(user or {})
    values: dict[tuple[str, str, str], list[float]] = {}
    sheets: dict[str, Sheet] = {}
    found: dict[tuple[str, str, int], torch.Tensor] = {}
    total, done = len(seeds) * len(layers) * steps, 0
    for seed in seeds:
        for layer in layers:
            channels = layer_info(model, layer).channels
            samples = fit.samples[layer]  # each seed fits on its own random 80% of the sampled positions
            keep = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))[
                : max(1, len(samples) * 4 // 5)
            ]
            blocks: list[tuple[str, torch.Tensor]] = []
            for method in all_methods:
                if user is not None and method in user:
                    mat = user[method][layer] if isinstance(user[method], Mapping) else user[method]
                    d = load_directions(mat, channels)
                else:
                    d = fit_directions(samples[keep], method, min(k, channels), seed=seed, negative=negative)
                found[(layer, method, seed)] = d
                blocks.append((method, d))
            stacked = torch.cat([d for _, d in blocks])
            objective = PerImage([Direction(layer, v, cossim_power=cossim_power) for v in stacked])
            r = Renderer(model, objective, batch=len(stacked), size=size, seed=seed)
            done = run_steps(r, steps, progress, cancel, done=done, total=total)
            viz = r.image().detach().cpu()
            viz_emb = _embed_images(judge_model, jl, viz, input_size) - mean_emb
            if seed == seeds[0]:
                labels = [f"{m} #{i}" for m, d in blocks for i in range(len(d))]
                sheets[layer] = Sheet(r.pil_images(), labels, r.record(), r.measure().tolist())
            start = 0
            for method, d in blocks:
                resp = probe.pooled[layer] @ d.T
                part = slice(start, start + len(d))
                start += len(d)
                for measure, vals in (
                    ("selectivity", selectivity(resp)),
                    ("coherence", coherence(resp, emb, probe.sources, exemplars)),
                    ("2afc", two_afc(viz_emb[part], resp, emb, quantile)),
                ):
                    values.setdefault((layer, method, measure), []).extend(vals.tolist())
    rows = [
        Row(layer, method, measure, float(np.nanmean(v)), float(np.nanstd(v)), len(v))
        for layer in layers
        for measure in MEASURES
        for method in all_methods
        for v in [values[(layer, method, measure)]]
    ]
    chance = {"selectivity": 0.0, "coherence": chance_coherence(emb, probe.sources), "2afc": 0.5}
    table = BasesTable(rows, probe.n_images, probe.n_crops, chance, in_sample=fit_images is None)
    return Comparison(table, sheets, found, values)


def _embed_images(judge: FeatvizModel, layer: str, images: torch.Tensor, size: int) -> torch.Tensor:
    x = F.interpolate(images, (size, size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        return embed(judge, layer, x)


__all__ = [
    "DEFAULT_METHODS",
    "LEARNED",
    "BasesTable",
    "Comparison",
    "Row",
    "answer",
    "compare_bases",
    "judge_layer",
]
