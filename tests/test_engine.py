"""The engine on a tiny convnet: truncated forward, transforms, parameterizations, renderer."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from featviz_widgets.engine import (
    Channel,
    ClassLogit,
    DeepDream,
    Direction,
    Diversity,
    ImageParam,
    Neuron,
    Renderer,
    RenderSettings,
    TransformConfig,
    capture,
    list_layers,
    random_affine,
    render,
)
from featviz_widgets.engine.image.param import PIVOT, FourierBasis, fourier_scale
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.errors import InvalidSettingError, UnknownLayerError


def test_list_layers_shapes_and_order(tiny: FeatvizModel) -> None:
    layers = {i.name: i for i in list_layers(tiny)}
    assert layers["conv1"].shape == (4, 32, 32)
    assert layers["conv2"].shape == (6, 16, 16) and layers["conv2"].channels == 6
    assert layers["fc"].shape == (5,)
    assert layers["logits"].shape == (5,)
    assert layers["conv1"].order < layers["relu1"].order < layers["conv2"].order < layers["fc"].order


def test_truncated_forward_matches_full_forward(tiny: FeatvizModel) -> None:
    x = torch.rand(2, 3, 32, 32)
    full: dict[str, torch.Tensor] = {}
    hooks = [
        tiny.net.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: full.__setitem__(n, o))
        for n in ("relu1", "conv2")
    ]
    logits = tiny(x)
    for h in hooks:
        h.remove()
    got = capture(tiny, x, ["relu1", "conv2"])
    assert torch.equal(got["relu1"], full["relu1"]) and torch.equal(got["conv2"], full["conv2"])
    assert torch.equal(capture(tiny, x, ["logits"])["logits"], logits)


def test_truncated_forward_stops_at_deepest_layer(tiny: FeatvizModel) -> None:
    list_layers(tiny)  # the one-off probe pass runs everything; do it before counting
    ran: list[str] = []
    hooks = [
        tiny.net.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: ran.append(n))
        for n in ("conv1", "conv2", "fc")
    ]
    capture(tiny, torch.rand(1, 3, 32, 32), ["conv1"])
    for h in hooks:
        h.remove()
    assert ran == ["conv1"]


def test_capture_unknown_layer_suggests(tiny: FeatvizModel) -> None:
    with pytest.raises(UnknownLayerError, match="conv2"):
        capture(tiny, torch.rand(1, 3, 32, 32), ["conv3"])


def test_gradient_reaches_only_the_image(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, "conv2:1", size=32)
    r.step()
    assert all(p.grad is None for p in tiny.parameters())
    assert all(p.grad is not None for p in r.param.parameters())


@pytest.mark.parametrize(
    "objective",
    [
        Channel("conv2", 1),
        Neuron("conv2", 2),
        DeepDream("conv1"),
        Direction("conv2", [1.0, -1.0, 0.5, 0.0, 0.0, 2.0]),
        ClassLogit(3),
    ],
    ids=repr,
)
@pytest.mark.parametrize("fourier", [True, False])
def test_every_objective_rises(tiny: FeatvizModel, objective: object, fourier: bool) -> None:
    r = Renderer(tiny, objective, size=32, seed=1, fourier=fourier, lr=0.1)  # type: ignore[arg-type]
    before = r.measure().mean().item()
    r.run(25)
    assert r.measure().mean().item() > before


def test_diversity_pushes_batch_apart(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, Channel("conv2", 1) + 5 * Diversity("conv2"), size=32, batch=3, seed=2, lr=0.1)
    div = Diversity("conv2")
    before = div(_ctx(r)).mean().item()
    r.run(25)
    assert div(_ctx(r)).mean().item() > before


def _ctx(r: Renderer) -> object:
    from featviz_widgets.engine.objectives import Context

    img = r.image()
    return Context(capture(r.model, img, ["conv2"]), img)


def test_same_seed_same_image(tiny: FeatvizModel) -> None:
    a = render(tiny, "conv2:1", steps=5, size=32, seed=3, progress=False)
    b = render(tiny, "conv2:1", steps=5, size=32, seed=3, progress=False)
    c = render(tiny, "conv2:1", steps=5, size=32, seed=4, progress=False)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.image.tobytes() != c.image.tobytes()


def test_render_returns_settings(tiny: FeatvizModel) -> None:
    result = render(tiny, "conv2:1", steps=3, size=32, seed=3, progress=False, lr=0.2, l1=0.1)
    assert result.image.size == (32, 32)
    assert result.settings["objective"] == "Channel('conv2', 1)"
    assert result.settings["lr"] == 0.2 and result.settings["l1"] == 0.1 and result.settings["steps"] == 3
    assert len(result.history) == 3


def test_live_updates_apply_without_restart(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, "conv2:1", size=32)
    r.run(3)
    param_before = r.param
    r.update(lr=0.3, l1=0.5, tv=0.1, blur=0.2, transform_strength=0.5)
    assert r.param is param_before and r.optimizer.param_groups[0]["lr"] == 0.3
    assert r.settings.transform.strength == 0.5 and r.step_count == 3
    r.step()
    assert r.step_count == 4


def test_objective_change_keeps_or_resets_image(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, "conv2:1", size=32, seed=5)
    r.run(5)
    image = r.image()
    r.set_objective("conv2:2", keep_image=True)
    assert torch.equal(r.image(), image)
    r.set_objective("conv2:3", keep_image=False)
    fresh = Renderer(tiny, "conv2:3", size=32, seed=5).image()
    assert torch.equal(r.image(), fresh)


def test_size_change_carries_picture_over(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, "conv2:1", size=32, seed=5, lr=0.2)
    r.run(10)
    small = torch.nn.functional.interpolate(r.image(), (48, 48), mode="bilinear")
    r.update(size=48)
    assert r.image().shape == (1, 3, 48, 48)
    assert (r.image() - small).abs().mean() < 0.05


def test_nan_image_is_restored(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, "conv2:1", size=32)
    r.run(10)
    good = r.image()
    with torch.no_grad():
        next(r.param.parameters()).fill_(float("nan"))
    info = r.step()
    assert info.warning is not None and "NaN" in info.warning
    assert torch.isfinite(r.image()).all()
    assert torch.allclose(r.image(), good)


def test_callback_runs_every_step(tiny: FeatvizModel) -> None:
    seen: list[int] = []
    render(tiny, "conv2:1", steps=4, size=32, progress=False, callback=lambda r, info: seen.append(info.step))
    assert seen == [1, 2, 3, 4]


def test_keyboard_interrupt_returns_current_image(tiny: FeatvizModel) -> None:
    def stop(r: Renderer, info: object) -> None:
        if r.step_count == 3:
            raise KeyboardInterrupt

    result = render(tiny, "conv2:1", steps=50, size=32, progress=False, callback=stop)
    assert result.interrupted and result.settings["steps"] == 3 and result.image.size == (32, 32)


# --- transforms ---------------------------------------------------------------------------------


def test_transforms_keep_shape_and_pass_gradients() -> None:
    x = torch.rand(3, 3, 40, 30, requires_grad=True)
    y = random_affine(x, TransformConfig(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert random_affine(x, TransformConfig(), None, (64, 64)).shape == (3, 3, 64, 64)


def test_identity_transform_is_exact() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert random_affine(x, TransformConfig(strength=0), None) is x


def test_pure_translation_moves_pixels_by_whole_pixels() -> None:
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1
    cfg = TransformConfig(pad=0, jitter=2, scale=0, rotate=0, crop=0)
    shifts = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        y = random_affine(x, cfg, g)
        assert y.shape == x.shape
        _cy, cx = (y[0, 0] > 0).nonzero().float().mean(0).tolist()
        shifts.add(round(4 - cx))
    assert min(shifts) < 0 < max(shifts)  # both directions (Lucent only shifts one way)


def test_pad_shows_grey_border_and_scale_keeps_aspect() -> None:
    x = torch.ones(1, 3, 20, 40)
    y = random_affine(x, TransformConfig(pad=10, jitter=0, scale=0, rotate=0, crop=0), None)
    assert torch.allclose(y[0, :, 0, 0], torch.full((3,), 0.5))  # corner is border grey
    assert torch.allclose(y[0, :, 10, 20], torch.ones(3))  # centre is the image


def test_crop_only_zooms_in_and_scale_both_ways() -> None:
    # A white square of half the canvas side, centred: its visible width measures the zoom.
    x = torch.zeros(1, 1, 40, 40)
    x[..., 10:30, 10:30] = 1
    g = torch.Generator().manual_seed(0)

    def widths(cfg: TransformConfig) -> list[float]:
        return [float((random_affine(x, cfg, g)[0, 0, 20] > 0.5).sum()) for _ in range(100)]

    cropped = widths(TransformConfig(pad=0, jitter=0, rotate=0, scale=0, crop=1.0, crop_anywhere=False))
    assert min(cropped) >= 19 and max(cropped) > 34  # zoom in [1, 2]: 20 px grow up to 40
    lucid = widths(TransformConfig(pad=0, jitter=0, rotate=0, scale=0.2, crop=0))
    assert min(lucid) <= 17 and max(lucid) >= 23  # zoom in [0.8, 1.2]: both ways


@pytest.mark.parametrize("anywhere", [True, False])
def test_zoomed_views_reach_every_part_of_the_canvas_only_with_crop_anywhere(anywhere: bool) -> None:
    from featviz_widgets.engine.image.transforms import affine_map

    cfg = TransformConfig(pad=12, jitter=0, rotate=0, scale=0, crop=0.5, crop_anywhere=anywhere)
    canvas = (224 + 2 * 12) / 224  # the padded canvas's half-width in normalized units
    for zoom_draw, zoom in ((0.0, 1.0), (0.5, 1.25), (1.0, 1.5)):
        for position in (0.0, 0.25, 0.5, 1.0):
            forward, _, _ = affine_map([zoom_draw, 0.5, position, position], cfg, 224, 224)
            (half, _, shift_x), (_, _, shift_y) = forward  # no rotation: the view is [shift +/- half]
            assert half == pytest.approx(canvas / zoom) and shift_x == shift_y
            if anywhere:  # the view stays on the canvas and, at the extreme draws, touches its edges
                assert -canvas - 1e-12 <= shift_x - half and shift_x + half <= canvas + 1e-12
                if position in (0.0, 1.0):
                    assert abs(shift_x) + half == pytest.approx(canvas)
            else:
                assert shift_x == 0  # jitter 0: always the centre


def test_old_settings_without_crop_load_as_they_were_made() -> None:
    old = RenderSettings().as_dict()
    del old["transform"]["crop"]  # PNGs saved before crops existed
    assert RenderSettings.from_dict(old).transform.crop == 0
    assert RenderSettings.from_dict(RenderSettings().as_dict()).transform.crop == 0.5


def test_lucid_preset_is_lucids_standard_transforms() -> None:
    # lucid.optvis.transform.standard_transforms: pad 12, jitter 8, scale 0.9-1.1, rotate +/-10, jitter 4.
    cfg = TransformConfig.lucid()
    assert (cfg.pad, cfg.jitter, cfg.scale, cfg.rotate, cfg.crop) == (12, 8, 0.1, 10.0, 0)
    assert cfg.crop_anywhere is False and cfg.exact_gradient is False and cfg.strength == 1.0


def test_transform_config_validates() -> None:
    with pytest.raises(InvalidSettingError, match="jitter"):
        TransformConfig(jitter=-1)
    with pytest.raises(InvalidSettingError, match="strength"):
        TransformConfig(strength=math.nan)
    with pytest.raises(InvalidSettingError, match="crop x strength must be at most 4"):
        TransformConfig(crop=3, strength=2)


# --- parameterizations -------------------------------------------------------------------------


def test_fourier_scale_matches_lucid_formula() -> None:
    s = fourier_scale(4, 4, 1.0)
    assert s.shape == (4, 3)
    assert s[0, 0].item() == pytest.approx(4 * 4)  # f clamped to 1/4, times sqrt(16)
    assert s[0, 1].item() == pytest.approx(4 * 4)  # f = 1/4
    assert s[0, 2].item() == pytest.approx(2 * 4)  # f = 1/2


@pytest.mark.parametrize("decay", [1.2, 1.5, 2.0])
def test_a_steeper_decay_tilts_the_spectrum_about_the_pivot(decay: float) -> None:
    # At 1/16 cycle per pixel a steeper spectrum keeps 1/f's scale; below it every frequency
    # gains, above it every frequency loses, each by (PIVOT / f)^(decay - 1).
    lucid, steep = fourier_scale(64, 64, 1.0), fourier_scale(64, 64, decay)
    assert steep[4, 0].item() == pytest.approx(lucid[4, 0].item())  # f = 4/64 = PIVOT
    freqs = torch.sqrt(torch.fft.fftfreq(64)[:, None] ** 2 + torch.fft.rfftfreq(64)[None, :] ** 2).clamp(min=1 / 64)
    assert torch.allclose(steep / lucid, (PIVOT / freqs) ** (decay - 1), rtol=1e-5)
    assert steep[0, 1] > lucid[0, 1] and steep[0, 32] < lucid[0, 32]
    # Below 1 nothing is tilted: 1/f^decay times sqrt(h w), as before.
    assert fourier_scale(64, 64, 0.5)[0, 2].item() == pytest.approx((64 / 2) ** 0.5 * 64)
    # The basis optimizes in exactly these coordinates (Lucid's 1/MAGIC folded in).
    basis = ImageParam(64, param="fourier", decay=decay).basis
    assert isinstance(basis, FourierBasis)
    assert torch.allclose(basis.scale[..., 0], steep / FourierBasis.MAGIC)


def test_image_param_and_render_settings_share_the_default_decay() -> None:
    assert inspect.signature(ImageParam).parameters["decay"].default == RenderSettings().decay == 1.5


@pytest.mark.parametrize(("fourier", "decorrelate"), [(True, True), (True, False), (False, True), (False, False)])
def test_image_param_starts_from_photo(fourier: bool, decorrelate: bool) -> None:
    photo = torch.rand(1, 3, 24, 24) * 0.8 + 0.1
    p = ImageParam(24, fourier=fourier, decorrelate=decorrelate, init=photo)
    assert torch.allclose(p(), photo, atol=1e-4)


def test_image_param_output_range_and_batch() -> None:
    img = ImageParam(32, batch=4, seed=0)()
    assert img.shape == (4, 3, 32, 32) and img.min() >= 0 and img.max() <= 1
    assert not torch.equal(img[0], img[1])


@pytest.mark.parametrize("size", [0, 1, 15, 4097, 100000, 32.0, "64"])
def test_bad_sizes(size: object) -> None:
    with pytest.raises(InvalidSettingError, match="16 to 4096"):
        RenderSettings(size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("lr", [math.nan, math.inf, 0.0, -0.1, 100.0])
def test_bad_learning_rates(lr: float) -> None:
    with pytest.raises(InvalidSettingError, match="learning rate"):
        RenderSettings(lr=lr)


@pytest.mark.parametrize("value", [math.nan, -1.0, 1e9, "big"])
def test_bad_penalty_weights(value: object) -> None:
    with pytest.raises(InvalidSettingError, match="l1 weight"):
        RenderSettings(l1=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1.5, "7", None, -1])
def test_bad_seeds(seed: object) -> None:
    with pytest.raises(InvalidSettingError, match="seed"):
        RenderSettings(seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("steps", [0, -3])
def test_bad_steps(tiny: FeatvizModel, steps: int) -> None:
    with pytest.raises(InvalidSettingError, match="steps"):
        render(tiny, "conv2:0", steps=steps, size=32, progress=False)


def test_unknown_setting_names_the_valid_ones(tiny: FeatvizModel) -> None:
    with pytest.raises(InvalidSettingError, match="Unknown setting"):
        Renderer(tiny, "conv2:0", learning_rate=0.1)


def test_refused_batch_change_leaves_settings_alone(tiny: FeatvizModel) -> None:
    from featviz_widgets.engine import BatchChannels

    r = Renderer(tiny, BatchChannels("conv2", (0, 1)), batch=2, size=32)
    with pytest.raises(InvalidSettingError, match="batch of 3"):
        r.update(batch=3)
    assert r.settings.batch == 2 and r.image().shape[0] == 2
    r.step()


def test_banded_sampling_equals_one_grid_sample() -> None:
    # The CPU speed-up cuts one image's output rows into bands: same values, same gradients.
    from featviz_widgets.engine.image.transforms import banded_grid_sample

    x = torch.rand(1, 3, 20, 30, requires_grad=True)
    theta = torch.tensor([[[0.8, -0.3, 0.1], [0.3, 0.9, -0.2]]])
    threads = torch.get_num_threads()
    for rows in (24, 23):  # bands of equal height, and a last band padded then cut
        grid = torch.nn.functional.affine_grid(theta, [1, 3, rows, 16], align_corners=False)
        weights = torch.rand(1, 3, rows, 16)
        try:
            torch.set_num_threads(4)
            banded = banded_grid_sample(x, grid)
            (gb,) = torch.autograd.grad((banded * weights).sum(), x)
        finally:
            torch.set_num_threads(threads)
        plain = torch.nn.functional.grid_sample(x, grid, align_corners=False)
        (gp,) = torch.autograd.grad((plain * weights).sum(), x)
        assert banded.shape == plain.shape
        assert torch.allclose(banded, plain, atol=1e-6)
        assert torch.allclose(gb, gp, atol=1e-5)


def _input_gradient(
    x: torch.Tensor, config: TransformConfig, seed: int, weights: torch.Tensor, out=None
) -> torch.Tensor:
    xi = x.clone().requires_grad_(True)
    y = random_affine(xi, config, torch.Generator().manual_seed(seed), out)
    (grad,) = torch.autograd.grad((y * weights).sum(), xi)
    return grad.flatten()


@pytest.mark.parametrize(
    ("scale", "crop", "rough_cos", "smooth_cos", "norms"),
    [
        # Zooming in only (the default before zoom-out): zoom 1 or 1-1.5.
        (0.0, 0.0, 0.96, 0.99, (0.8, 1.3)),
        (0.0, 0.5, 0.96, 0.99, (0.8, 1.3)),
        # The default, zoom 0.8-1.7: at its ends the gather and the scatter part most (measured on
        # seeds 0-7: rough 0.934 at 0.8 and 1.55, smooth 0.962; sizes 0.72-1.40 of the exact one).
        (0.2, 0.5, 0.92, 0.95, (0.68, 1.45)),
    ],
)
def test_inverse_map_gradient_is_close_to_the_exact_one(
    scale: float, crop: float, rough_cos: float, smooth_cos: float, norms: tuple[float, float]
) -> None:
    # Same forward values; the gradient sampled through the inverse map points the same way as
    # grid_sample's exact (scatter) gradient and has about its size, for rough and smooth gradients.
    x = torch.rand(1, 3, 224, 224)  # the default canvas: pad and zoom in their usual proportion
    fast = TransformConfig(scale=scale, crop=crop)
    exact = TransformConfig(scale=scale, crop=crop, exact_gradient=True)
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        assert torch.equal(random_affine(x, fast, g), random_affine(x, exact, torch.Generator().manual_seed(seed)))
        rough = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(10 + seed))
        smooth = torch.nn.functional.avg_pool2d(rough, 5, 1, 2)
        for weights, least in ((rough, rough_cos), (smooth, smooth_cos)):
            a, b = _input_gradient(x, fast, seed, weights), _input_gradient(x, exact, seed, weights)
            assert torch.nn.functional.cosine_similarity(a, b, dim=0) > least
            assert norms[0] < float(a.norm() / b.norm()) < norms[1]


def test_inverse_map_gradient_resizes_and_is_exact_for_whole_pixel_shifts() -> None:
    from featviz_widgets.engine.image.transforms import SampleWithInverseGradient, affine_grid

    x = torch.rand(1, 3, 16, 20, requires_grad=True)
    weights = torch.rand(1, 3, 16, 20)
    # A shift of 3 px right and 2 px down, in normalized coordinates; its inverse shifts back.
    theta = torch.tensor([[[1.0, 0.0, 2 * 3 / 20], [0.0, 1.0, 2 * 2 / 16]]])
    inverse = torch.tensor([[[1.0, 0.0, -2 * 3 / 20], [0.0, 1.0, -2 * 2 / 16]]])
    y = SampleWithInverseGradient.apply(x, affine_grid(theta, 16, 20), affine_grid(inverse, 16, 20), torch.ones(1))
    (fast,) = torch.autograd.grad((y * weights).sum(), x)
    plain = torch.nn.functional.grid_sample(x - 0.5, affine_grid(theta, 16, 20), align_corners=False) + 0.5
    assert torch.allclose(y, plain) and torch.equal(y[..., -3:], torch.full_like(y[..., -3:], 0.5))  # grey border
    (exact,) = torch.autograd.grad((plain * weights).sum(), x)
    assert torch.allclose(fast, exact, atol=1e-5)
    # A canvas shown at another size: the gradient scales with output pixels per input pixel.
    x = torch.rand(1, 3, 40, 40)
    weights = torch.ones(1, 3, 80, 80)
    cfg = TransformConfig(pad=0, jitter=0, rotate=0, crop=0)
    a = _input_gradient(x, cfg, 0, weights, (80, 80))
    b = _input_gradient(
        x, TransformConfig(pad=0, jitter=0, rotate=0, crop=0, exact_gradient=True), 0, weights, (80, 80)
    )
    assert torch.allclose(a.mean(), b.mean(), rtol=0.02) and abs(float(a.mean()) - 4) < 0.1


@pytest.mark.parametrize(
    "field, before, now",
    [("exact_gradient", True, False), ("crop_anywhere", False, True)],
    ids=["before the inverse-map gradient", "before crops anywhere"],
)
def test_settings_saved_before_a_transform_field_existed_load_as_they_were_made(
    field: str, before: bool, now: bool
) -> None:
    old = RenderSettings().as_dict()
    del old["transform"][field]
    assert getattr(RenderSettings.from_dict(old).transform, field) is before
    assert getattr(RenderSettings.from_dict(RenderSettings().as_dict()).transform, field) is now
    with pytest.raises(InvalidSettingError, match=f"{field} must be True or False"):
        TransformConfig(**{field: 1})


def test_views_average_the_objective_over_transformed_copies(tiny: FeatvizModel) -> None:
    # Two images (one channel each, a batch-aware objective) and three views: the loss is the
    # mean over views of what each view alone scores, with the views' own random draws.
    from featviz_widgets.engine import BatchChannels, capture
    from featviz_widgets.engine.objectives import Context

    objective = BatchChannels("conv2", (1, 4))
    r = Renderer(tiny, objective, size=32, batch=2, views=3, seed=4)
    g = torch.Generator().manual_seed(4)  # the renderer's generator starts from the seed
    image, values, loss = r.forward()
    x = random_affine(image.detach().repeat(3, 1, 1, 1), r.settings.transform, g)
    act = capture(tiny, x, ["conv2"])["conv2"]
    per_view = [objective(Context({"conv2": act[2 * v : 2 * v + 2]}, image)) for v in range(3)]
    expected = torch.stack(per_view).mean(0)
    assert values.shape == (2,)
    assert torch.allclose(values, expected, atol=1e-6)
    assert torch.isclose(loss, -expected.sum(), atol=1e-6)


def test_views_of_an_untransformed_image_change_nothing(tiny: FeatvizModel) -> None:
    one = Renderer(tiny, "conv2:1", size=32, transform_strength=0, seed=3)
    three = Renderer(tiny, "conv2:1", size=32, transform_strength=0, seed=3, views=3)
    one.run(3)
    three.run(3)
    assert torch.allclose(one.image(), three.image(), atol=1e-5)
    three.update(views=1)  # a live change: the image is kept
    assert three.step_count == 3 and torch.allclose(one.image(), three.image(), atol=1e-5)


def test_views_are_validated() -> None:
    with pytest.raises(InvalidSettingError, match="views must be an integer from 1 to 64"):
        RenderSettings(views=0)


def test_affine_grid_matches_torch() -> None:
    from featviz_widgets.engine.image.transforms import affine_grid

    theta = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(0))
    for oh, ow in ((7, 5), (224, 224), (16, 40)):
        expected = torch.nn.functional.affine_grid(theta, [3, 3, oh, ow], align_corners=False)
        assert torch.allclose(affine_grid(theta, oh, ow), expected, atol=1e-6)


def test_settings_side_is_the_longest_canvas_side() -> None:
    assert RenderSettings(size=96).side == 96
    assert RenderSettings(size=(60, 100)).side == 100


def test_render_threads_apply_to_that_render_only(tiny: FeatvizModel) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    render(
        tiny,
        "conv2:0",
        steps=2,
        size=32,
        progress=False,
        threads=1,
        callback=lambda r, i: seen.append(torch.get_num_threads()),
    )
    assert seen == [1, 1] and torch.get_num_threads() == before
    with pytest.raises(InvalidSettingError, match="threads"):
        render(tiny, "conv2:0", steps=2, size=32, progress=False, threads=0)
