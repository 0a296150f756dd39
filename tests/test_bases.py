"""The measures order a planted selective, coherent direction above noise; compare_bases and the
directions gallery run end to end on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from featviz_widgets.engine.explore import (
    MEASURES,
    BasesTable,
    DirectionsError,
    Row,
    answer,
    chance_coherence,
    coherence,
    compare_bases,
    directions_gallery,
    grid,
    groups_sheet,
    judge_layer,
    selectivity,
    top_per_source,
    two_afc,
)
from featviz_widgets.engine.models import FeatvizModel, wrap_module
from featviz_widgets.engine.objectives import Direction
from tests.test_directions import U1, Planted, planted_images


def synthetic(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str], torch.Tensor]:
    """Crops whose embeddings are noise except 5% that share a concept vector; direction 0
    responds strongly to exactly those, direction 1 is Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    concept = torch.zeros(32)
    concept[0] = 1.0
    hits = torch.zeros(n, dtype=torch.bool)
    hits[torch.randperm(n, generator=g)[: n // 20]] = True
    emb = torch.randn(n, 32, generator=g) * 0.3 + hits[:, None] * 2.0 * concept
    responses = torch.stack([torch.randn(n, generator=g) * 0.1 + 5.0 * hits, torch.randn(n, generator=g)], dim=1)
    sources = [f"photo {i}" for i in range(n)]
    return responses, emb - emb.mean(0), sources, concept


def test_selectivity_is_kurtosis() -> None:
    r = torch.tensor([[0.0], [0.0], [0.0], [4.0]])
    # deviations -1,-1,-1,3: m2 = 3, m4 = 21, kurtosis 21/9 - 3
    assert math.isclose(float(selectivity(r)[0]), 21 / 9 - 3, rel_tol=1e-6)
    assert float(selectivity(torch.ones(5, 1))[0]) == 0.0
    responses, *_ = synthetic()
    s = selectivity(responses)
    assert float(s[0]) > 10 and abs(float(s[1])) < 1


def test_coherence_orders_planted_above_noise() -> None:
    responses, emb, sources, _ = synthetic()
    c = coherence(responses, emb, sources, m=5)
    assert float(c[0]) > 0.45 and abs(float(c[1])) < 0.2  # concept share of each embedding: cos ~ 0.58
    assert abs(chance_coherence(emb, sources)) < 0.05
    assert math.isnan(chance_coherence(emb, ["one photo"] * len(sources)))


def test_top_per_source_takes_one_crop_a_photo() -> None:
    scores = torch.tensor([5.0, 4.0, 3.0, 2.0])
    assert top_per_source(scores, ["a", "a", "b", "c"], 2) == [0, 2]


def test_two_afc() -> None:
    responses, emb, _, concept = synthetic()
    viz = torch.stack([concept, -concept])  # a visualization of the concept; one of its opposite
    acc = two_afc(viz, responses, emb, quantile=0.05)
    assert float(acc[0]) > 0.95  # tells the top 5% (the concept crops) from the bottom 5%
    assert float(acc[1]) < 0.7  # noise direction: its top and bottom crops look alike
    same = two_afc(torch.zeros(1, 32), responses[:, :1], emb)
    assert float(same[0]) == 0.5  # every pair tied
    with pytest.raises(ValueError, match="quantile"):
        two_afc(viz, responses, emb, quantile=0.9)


def test_answer_is_written_from_the_numbers() -> None:
    rows = []
    for measure in MEASURES:
        rows += [Row("l", "neuron", measure, 1.0, 0.1, 16), Row("l", "random", measure, 0.0, 0.1, 16)]
        rows += [Row("l", "pca", measure, 1.0, 0.1, 16)]
    text = answer(BasesTable(rows, 15, 210))
    assert text.startswith("Neurons are special compared with random directions here")
    assert "in 3 of 3" in text and "beats neurons clearly in 0 of 3" in text and "210 crops of 15 photos" in text
    flipped = [Row(r.layer, r.method, r.measure, -r.mean if r.method == "neuron" else r.mean, r.std, r.n) for r in rows]
    assert "clearly below in 3" in answer(BasesTable(flipped, 15, 210))
    assert answer(BasesTable(flipped, 15, 210)).startswith("Neurons score below random directions here")
    no_random = [r for r in rows if r.method != "random"]
    assert answer(BasesTable(no_random, 15, 210, in_sample=False)).startswith("A direction learned")
    assert "found on other photos" in answer(BasesTable(no_random, 15, 210, in_sample=False))
    assert answer(BasesTable([r for r in rows if r.method == "pca"], 15, 210)).startswith("No neuron directions")


@pytest.fixture
def planted() -> FeatvizModel:
    return wrap_module(Planted(), input_size=32, name="planted", mean=(0, 0, 0), std=(1, 1, 1))


@pytest.mark.slow  # scikit-learn's import alone takes seconds on a loaded machine
def test_compare_bases_end_to_end(planted: FeatvizModel, tiny: FeatvizModel) -> None:
    user = {"mine": np.stack([U1.numpy(), np.ones(8, np.float32)])}
    result = compare_bases(
        planted,
        ["mix"],
        planted_images(8),
        methods=("neuron", "random", "pca", "nmf"),
        k=2,
        seeds=(0, 1),
        steps=3,
        size=32,
        user=user,
        judge=tiny,
        input_size=32,
        scales=(1.0, 0.5),
    )
    table = result.table
    assert judge_layer(tiny) == "pool"  # the last main layer before the logits
    assert table.methods == ["neuron", "random", "pca", "nmf", "mine"] and table.layers == ["mix"]
    assert len(table.rows) == 5 * 3 and all(r.n == 4 for r in table.rows)
    assert table.n_photos == 8 and table.n_crops == 40
    # the directions found at seed 0 are those fit_directions gives, and the user's are unit rows
    assert torch.allclose(result.directions[("mix", "mine", 0)][0], U1)
    assert float((result.directions[("mix", "nmf", 0)] @ U1).max()) > 0.95
    sel = table.get("mix", "neuron", "selectivity")
    assert math.isclose(sel.mean, float(np.mean(result.values[("mix", "neuron", "selectivity")])))
    assert len(result.sheets["mix"].images) == 10 and result.sheets["mix"].labels[0] == "neuron #0"
    assert "selectivity" in str(table) and "| 2afc | mix |" in table.to_markdown()
    assert "40 crops of 8 photos" in result.answer()


def test_directions_gallery(planted: FeatvizModel) -> None:
    d = torch.stack([U1, torch.ones(8)])
    sheet = directions_gallery(planted, "mix", d, scores={"selectivity": [1.5, 0.25]}, steps=2, size=32, batch=1)
    assert len(sheet.images) == 2 and sheet.images[0].size == (32, 32)
    assert sheet.labels == ["mix direction 0 · selectivity 1.5", "mix direction 1 · selectivity 0.25"]
    assert len(sheet.values) == 2 and sheet.settings["steps"] == 2
    live = sheet.objective(0)
    assert isinstance(live, Direction) and live.layer == "mix" and torch.allclose(live.vector, U1)
    with pytest.raises(DirectionsError, match="expected k x 8"):
        directions_gallery(planted, "mix", torch.ones(2, 5), steps=1, size=32)


def test_directions_from_photos_and_views(planted: FeatvizModel) -> None:
    from featviz_widgets.engine.explore import Sheet, directions_from_photos, neuron_groups

    sheet = directions_from_photos(planted, "mix", planted_images(6), "nmf", 2, steps=2, size=32)
    assert [label.split(" · ")[0] for label in sheet.labels] == ["nmf #0", "nmf #1"]
    assert all("selectivity" in label for label in sheet.labels) and sheet.settings["method"] == "nmf"
    assert float((sheet.directions @ U1).max()) > 0.95
    img = grid(Sheet(sheet.images * 2, ["a #0", "a #1", "b #0", "b #1"]), gap=4, label_width=10)
    assert img.size == (10 + 2 * 36, 2 * 36 - 4)
    arr = np.zeros((32, 32, 3), np.uint8)
    arr[:, :16, 0] = 255
    arr[:, 16:, 1] = 120
    groups = neuron_groups(planted, "mix", Image.fromarray(arr), k=2)
    tiles = groups_sheet(planted, groups, steps=1, size=32)
    assert len(tiles.images) == 2 and tiles.images[0].size == (32, 66)


@pytest.mark.slow
def test_bases_benchmark_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    args = ["--layers", "blocks.2", "--methods", "neuron,pca", "--k", "1", "--seeds", "0", "--steps", "1"]
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bases.py"), *args, "--size", "32", "--max-images", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "crops of 2 photos" in done.stdout and "| 2afc | blocks.2 |" in done.stdout and "ratio:" in done.stdout
