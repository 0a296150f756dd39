"""Feature accentuation's "stay close": the distance from the photo falls steadily over its
range, every pixel stays within its bound, the class survives at the top, bad values are refused."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from featviz_widgets.engine import Renderer, load_model
from featviz_widgets.engine.explore import deepdream_photo
from featviz_widgets.engine.image.accentuation import (
    RADIUS_AT_ONE,
    RADIUS_AT_ZERO,
    check_stay_close,
    photo_bounds,
    stay_close_radius,
)
from featviz_widgets.engine.image.param import ImageParam
from featviz_widgets.engine.image.photos import pil_to_tensor, sample_photo
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.errors import InvalidSettingError

VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)


def small_photo() -> Image.Image:
    rng = np.random.default_rng(0)
    smooth = rng.random((6, 6, 3)) * 0.6 + 0.2  # mid-grey colours, upsampled: a soft picture
    return Image.fromarray((smooth * 255).astype(np.uint8)).resize((40, 32), Image.BILINEAR)


def distance(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))


def test_radius_falls_geometrically_from_no_bound_to_a_few_grey_levels() -> None:
    assert stay_close_radius(0) is None
    assert stay_close_radius(1e-9) == pytest.approx(RADIUS_AT_ZERO)
    assert stay_close_radius(1.0) == pytest.approx(RADIUS_AT_ONE) == pytest.approx(6 / 255)
    radii = [stay_close_radius(v) for v in VALUES[1:]]
    ratios = [b / a for a, b in itertools.pairwise(radii)]  # type: ignore[operator]
    assert ratios == pytest.approx([(RADIUS_AT_ONE / RADIUS_AT_ZERO) ** 0.25] * 3)
    low, high = photo_bounds(torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1), 1.0)  # type: ignore[misc]
    assert low.flatten().tolist() == pytest.approx([0.0, 0.5 - 6 / 255, 1 - 6 / 255])
    assert high.flatten().tolist() == pytest.approx([6 / 255, 0.5 + 6 / 255, 1.0])


def test_distance_from_the_photo_falls_steadily_and_each_pixel_keeps_its_bound(tiny: FeatvizModel) -> None:
    photo = small_photo()
    means = []
    for value in VALUES:
        out = deepdream_photo(tiny, photo, "conv2:1", octaves=1, steps_per_octave=8, strength=0.3, stay_close=value)
        d = distance(out, photo)
        means.append(float(d.mean()))
        radius = stay_close_radius(value)
        if radius is not None:
            assert d.max() <= radius * 255 + 0.51  # the bound, up to the uint8 rounding
    assert all(b < a * 0.9 for a, b in itertools.pairwise(means)), means  # each step at least 10% closer
    assert means[-1] > 1.0  # still changed at the top


def test_bounds_hold_across_octaves(tiny: FeatvizModel) -> None:
    photo = small_photo()
    out = deepdream_photo(tiny, photo, "conv2", octaves=3, steps_per_octave=4, strength=0.3, stay_close=0.5)
    assert distance(out, photo).max() <= stay_close_radius(0.5) * 255 + 0.51  # type: ignore[operator]


@pytest.mark.parametrize("bad", [-0.1, 1.5, 20.0, float("nan"), float("inf"), "0.5", None, True])
def test_bad_stay_close_values_are_refused_where_they_enter(tiny: FeatvizModel, bad: object) -> None:
    with pytest.raises(InvalidSettingError, match="stay_close must be"):
        check_stay_close(bad)
    with pytest.raises(InvalidSettingError, match="stay_close must be"):
        deepdream_photo(tiny, small_photo(), "conv2", stay_close=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("fourier,decorrelate", [(False, False), (True, True), (False, True)])
def test_projection_clamps_exactly_and_leaves_inner_pixels(fourier: bool, decorrelate: bool) -> None:
    param = ImageParam((20, 16), fourier=fourier, decorrelate=decorrelate, sd=1.0, seed=3)
    before = param().detach()
    low, high = torch.full_like(before, 0.4), torch.full_like(before, 0.6)
    param.project(low, high)
    after = param().detach()
    assert after.min() >= 0.4 - 1e-5 and after.max() <= 0.6 + 1e-5
    inside = (before > 0.4) & (before < 0.6)
    assert inside.any() and (~inside).any()
    assert torch.allclose(after[inside], before[inside], atol=1e-5)
    assert torch.allclose(after, before.clamp(0.4, 0.6), atol=1e-5)


def test_renderer_bounds_apply_every_step_resize_and_lift(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, "conv2:0", size=16, lr=0.5)
    centre = torch.full((1, 3, 8, 8), 0.5)
    r.set_bounds(centre - 0.05, centre + 0.05)  # resized to the 16 px canvas
    for _ in range(5):
        r.step()
        assert (r.image() - 0.5).abs().max() <= 0.05 + 1e-5
    r.update(size=24)  # a rebuilt canvas keeps the bound
    r.step()
    assert r.image().shape[-1] == 24 and (r.image() - 0.5).abs().max() <= 0.05 + 1e-5
    r.set_bounds(None)
    for _ in range(10):
        r.step()
    assert (r.image() - 0.5).abs().max() > 0.05
    with pytest.raises(InvalidSettingError, match="low <= high"):
        r.set_bounds(centre + 0.1, centre)
    with pytest.raises(InvalidSettingError, match="one shape"):
        r.set_bounds(centre, torch.ones(1, 3, 4, 4))


def lite0_top1(model: FeatvizModel, image: Image.Image) -> int:
    x = F.interpolate(pil_to_tensor(image), (model.input_size,) * 2, mode="bilinear", antialias=True)
    with torch.no_grad():
        return int(model(x).argmax(1).item())


@pytest.mark.slow
def test_top_of_the_range_keeps_lite0s_class_of_the_photo() -> None:
    model = load_model()
    photo = sample_photo("chelsea")
    photo.thumbnail((224, 224))
    own = lite0_top1(model, photo)
    for objective in ("blocks.8", "blocks.8:5"):
        free = deepdream_photo(model, photo, objective, octaves=2, steps_per_octave=10, max_side=224)
        kept = deepdream_photo(model, photo, objective, octaves=2, steps_per_octave=10, max_side=224, stay_close=1.0)
        assert lite0_top1(model, free) != own  # plain DeepDream does change what Lite0 sees...
        assert lite0_top1(model, kept) == own, objective  # ...the top of stay close keeps it
        assert 1.0 < distance(kept, photo).mean() < distance(free, photo).mean() / 2
