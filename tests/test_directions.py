"""Directions from photos: planted directions are recovered by every method; bad input is refused
with a clear error; the streaming pass keeps bounded state."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featviz_widgets.engine.explore import (
    ClippedActivationsWarning,
    DirectionsError,
    MissingExtraError,
    Reservoir,
    collect,
    crop_boxes,
    find_directions,
    fit_directions,
    load_directions,
    neuron_groups,
    probe_images,
)
from featviz_widgets.engine.image.photos import PhotoError
from featviz_widgets.engine.models import FeatvizModel, load_model, wrap_module
from featviz_widgets.errors import FeatvizError

U1 = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0.0]) / 3**0.5
U2 = torch.tensor([0, 0, 0, 1, 1, 0, 0, 0.0]) / 2**0.5


class Planted(nn.Module):
    """Layer ``mix`` outputs s1(x) * U1 + s2(x) * U2 with s1 = relu(red), s2 = relu(green):
    a known rank-2, non-negative mixture of two independent sparse sources."""

    def __init__(self) -> None:
        super().__init__()
        self.src = nn.Conv2d(3, 2, 1)
        self.relu = nn.ReLU()
        self.mix = nn.Conv2d(2, 8, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)
        with torch.no_grad():
            self.src.weight.zero_()
            self.src.bias.zero_()
            self.src.weight[0, 0] = 1
            self.src.weight[1, 1] = 1
            self.mix.weight.copy_(torch.stack([U1, U2], 1)[..., None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.mix(self.relu(self.src(x)))).flatten(1))


def planted_images(n: int = 12, seed: int = 0) -> list[Image.Image]:
    """32x32 images of 4x4 blocks: red on in 30% of blocks (0.5-1), green independently (0-0.4)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = (rng.random((8, 8)) < 0.3) * rng.uniform(0.5, 1, (8, 8))
        g = (rng.random((8, 8)) < 0.3) * rng.uniform(0, 0.4, (8, 8))
        arr = np.stack([r, g, np.zeros((8, 8))], -1).repeat(4, 0).repeat(4, 1)
        out.append(Image.fromarray((arr * 255).round().astype(np.uint8)))
    return out


@pytest.fixture
def planted() -> FeatvizModel:
    return wrap_module(Planted(), input_size=32, name="planted", mean=(0, 0, 0), std=(1, 1, 1))


@pytest.mark.parametrize("method", ["pca", "nmf", "ica", "kmeans"])
def test_planted_directions_are_recovered(planted: FeatvizModel, method: str) -> None:
    d = find_directions(planted, "mix", planted_images(), method, 2, scales=(1.0,), positions_per_crop=64)
    assert d.shape == (2, 8)
    assert torch.allclose(d.norm(dim=1), torch.ones(2), atol=1e-5)
    assert float((d @ U1).max()) > 0.95 and float((d @ U2).max()) > 0.95


def test_neuron_and_random_bases() -> None:
    n = fit_directions(np.zeros((0, 8)), "neuron", 3, seed=1)
    assert torch.equal(n.sum(dim=1), torch.ones(3)) and torch.equal(n.sum(dim=0).clamp_max(1), n.sum(dim=0))
    r0, r1 = (
        fit_directions(np.zeros((0, 8)), "random", 3, seed=0),
        fit_directions(np.zeros((0, 8)), "random", 3, seed=0),
    )
    assert torch.equal(r0, r1) and torch.allclose(r0.norm(dim=1), torch.ones(3))
    assert not torch.equal(r0, fit_directions(np.zeros((0, 8)), "random", 3, seed=2))


def test_pca_sign_points_at_the_tail() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros((2000, 4))
    x[:, 0] = rng.exponential(1.0, 2000)  # long positive tail along channel 0
    x[:, 1:] = rng.normal(0, 0.1, (2000, 3))
    d = fit_directions(x, "pca", 1)
    assert float(d[0, 0]) > 0.99


def test_neuron_groups_split_a_two_region_photo(planted: FeatvizModel) -> None:
    arr = np.zeros((32, 32, 3), np.uint8)
    arr[:, :16, 0] = 255  # left half red -> U1, right half green -> U2
    arr[:, 16:, 1] = 120
    groups = neuron_groups(planted, "mix", Image.fromarray(arr), k=2)
    assert groups.directions.shape == (2, 8) and groups.heatmaps.shape == (2, 32, 32)
    i1 = int(torch.argmax(groups.directions @ U1))
    assert float(groups.directions[i1] @ U1) > 0.99 and float(groups.directions[1 - i1] @ U2) > 0.99
    left, right = groups.heatmaps[i1, :, :16], groups.heatmaps[i1, :, 16:]
    assert float(left.min()) > 0.9 and float(right.max()) < 0.05
    overlays = groups.overlays()
    assert len(overlays) == 2 and overlays[0].size == (32, 32)


def test_crop_boxes_grid() -> None:
    assert crop_boxes(200, 100, (1.0,)) == [(50, 0, 150, 100)]
    boxes = crop_boxes(200, 100, (0.5,))
    assert boxes == [(0, 0, 50, 50), (150, 0, 200, 50), (0, 50, 50, 100), (150, 50, 200, 100)]


def test_collect_keeps_bounded_state(planted: FeatvizModel) -> None:
    got = collect(planted, ["mix"], planted_images(10), scales=(1.0, 0.5), positions_per_crop=16, max_samples=50)
    assert got.n_images == 10 and got.n_crops == 50 and got.pooled["mix"].shape == (50, 8)
    assert got.samples["mix"].shape == (50, 8)  # 800 sampled positions, 50 kept
    full = planted(torch.zeros(1, 3, 32, 32))  # the forward still works after the hooks are gone
    assert full.shape == (1, 3)


def test_reservoir_is_uniform() -> None:
    res = Reservoir(500, torch.Generator().manual_seed(0))
    for start in range(0, 20_000, 64):
        res.add(torch.arange(start, min(start + 64, 20_000), dtype=torch.float32)[:, None])
    assert res.rows is not None and res.rows.shape == (500, 1) and res.seen == 20_000
    assert abs(float(res.rows.mean()) - 10_000) < 1_000  # the mean of a uniform sample of 0..19999
    assert len(set(res.rows[:, 0].tolist())) > 480


def test_probe_images_load_offline() -> None:
    photos = probe_images()
    assert len(photos) >= 4 and all(img.mode == "RGB" for _, img in photos)


# --- bad input ----------------------------------------------------------------------------------


def test_empty_and_non_image_folders(planted: FeatvizModel, tmp_path: Path) -> None:
    with pytest.raises(DirectionsError, match="No readable images"):
        find_directions(planted, "mix", tmp_path, "pca", 2)
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(DirectionsError, match="No readable images"):
        find_directions(planted, "mix", str(tmp_path), "pca", 2)
    with pytest.raises(PhotoError, match="not an image"):
        find_directions(planted, "mix", [tmp_path / "notes.jpg"], "pca", 2)
    with pytest.raises(PhotoError, match="not a folder"):
        find_directions(planted, "mix", tmp_path / "missing", "pca", 2)


def test_k_and_method_are_checked(planted: FeatvizModel) -> None:
    with pytest.raises(DirectionsError, match="from 1 to 8"):
        find_directions(planted, "mix", planted_images(2), "pca", 9)
    with pytest.raises(DirectionsError, match="valid: neuron, random, pca, nmf, ica, kmeans"):
        find_directions(planted, "mix", planted_images(2), "svd", 2)


def test_nmf_on_negative_activations_clips_and_says_so(planted: FeatvizModel) -> None:
    planted.net.src.bias.data.fill_(-0.5)  # src outputs are now negative where a colour is off
    with pytest.warns(ClippedActivationsWarning, match=r"positive part.*% of the values were negative"):
        d = find_directions(planted, "src", planted_images(2), "nmf", 2)  # the default does what it can
    assert d.shape == (2, 2) and float(d.min()) >= 0
    with pytest.raises(DirectionsError, match=r"non-negative.*negative='clip'"):
        find_directions(planted, "src", planted_images(2), "nmf", 2, negative="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clip on request: silently
        quiet = find_directions(planted, "src", planted_images(2), "nmf", 2, negative="clip")
    assert torch.equal(quiet, d)
    with pytest.raises(DirectionsError, match="'auto', 'clip' or 'error'"):
        find_directions(planted, "src", planted_images(2), "nmf", 2, negative="drop")


@pytest.mark.slow
def test_readme_call_works_on_the_embedded_model() -> None:
    """Issue #23.4: the README's call, with its own default method, on the default model's own
    main layer (signed block outputs) gives directions and says it clipped."""
    model = load_model()
    with pytest.warns(ClippedActivationsWarning):
        d = find_directions(model, "blocks.8")
    assert d.shape == (8, 112) and torch.allclose(d.norm(dim=1), torch.ones(8))


def test_load_directions(tmp_path: Path) -> None:
    m = np.arange(16, dtype=np.float32).reshape(2, 8) + 1
    np.save(tmp_path / "d.npy", m)
    torch.save(torch.from_numpy(m), tmp_path / "d.pt")
    for source in (m, torch.from_numpy(m), tmp_path / "d.npy", str(tmp_path / "d.pt")):
        d = load_directions(source, 8)
        assert torch.allclose(d, torch.from_numpy(m / np.linalg.norm(m, axis=1, keepdims=True)))
    with pytest.raises(DirectionsError, match=r"shape \(2, 8\); expected k x 6"):
        load_directions(m, 6)
    with pytest.raises(DirectionsError, match="all-zero"):
        load_directions(np.zeros((1, 8)), 8)
    (tmp_path / "d.txt").write_text("1 2")
    with pytest.raises(DirectionsError, match=r"\.npy or \.pt"):
        load_directions(tmp_path / "d.txt", 8)
    with pytest.raises(FeatvizError, match="not a file"):
        load_directions(tmp_path / "none.npy", 8)


def test_missing_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in ("sklearn", "sklearn.cluster", "sklearn.decomposition"):
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'featviz-widgets\[directions\]'"):
        fit_directions(np.ones((10, 4)), "pca", 2)
