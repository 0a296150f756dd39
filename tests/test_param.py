"""Parameterizations as one setting (#21): round trips, live switches, MaCo's fixed magnitude and
its transparency map, the shipped spectrum, reference-aligned rendering, the old booleans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from featviz_widgets import maco_recipe, spectrum_from_photos
from featviz_widgets.engine import (
    Channel,
    ImageParam,
    Renderer,
    RenderSettings,
    TransformConfig,
    random_affine,
    render,
    sanity_readout,
)
from featviz_widgets.engine.core.align import reference_activations
from featviz_widgets.engine.image.maco import MacoBasis, real_bins, shipped_spectrum
from featviz_widgets.engine.image.param import PARAMS
from featviz_widgets.engine.image.photos import PhotoError, has_photo, load_photo, pil_to_tensor, sample_photo
from featviz_widgets.engine.layers import capture, layers_by_name
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.errors import InvalidSettingError
from featviz_widgets.export import read_settings
from featviz_widgets.lab import clipped_share, compare, high_frequency_share, hsv_saturation

from .conftest import featviz_render

FOUR = ("pixels", "fourier", "decorrelated", "maco")
FIELDS = set(RenderSettings().as_dict())


def _photo(size: int = 48) -> torch.Tensor:
    img = pil_to_tensor(sample_photo("chelsea"))
    return torch.nn.functional.interpolate(img, (size, size), mode="bilinear", antialias=True).clamp(0.02, 0.98)


@pytest.mark.parametrize("name", list(PARAMS))
def test_every_parameterization_round_trips_its_own_images(name: str) -> None:
    image = ImageParam(40, param=name, seed=1, sd=0.5)().detach()  # an image this basis can make
    other = ImageParam(40, param=name, seed=7)
    other.set_image(image)
    assert torch.allclose(other(), image, atol=1e-5)


@pytest.mark.parametrize("name", ["pixels", "fourier", "decorrelated", "decorrelated-pixels"])
def test_invertible_parameterizations_round_trip_a_photo(name: str) -> None:
    photo = _photo()
    p = ImageParam(48, param=name, seed=3)
    p.set_image(photo)
    assert torch.allclose(p(), photo, atol=1e-5)


def test_maco_keeps_a_photo_recognizable_and_replaces_only_its_magnitude() -> None:
    photo = _photo(64)
    p = ImageParam(64, param="maco", seed=3)
    fresh = p().detach()
    p.set_image(photo)
    kept = p().detach()
    # The phase carries the structure: far closer to the photo than a fresh MaCo image is.
    assert (kept - photo).abs().mean() < 0.5 * (fresh - photo).abs().mean()
    corr = torch.corrcoef(torch.stack([kept.flatten(), photo.flatten()]))[0, 1]
    assert corr > 0.8


def _pre(r: Renderer) -> torch.Tensor:
    basis = r.param.basis
    assert isinstance(basis, MacoBasis)
    with torch.no_grad():
        return torch.fft.rfft2(basis(), norm="ortho").abs()


def test_maco_magnitude_stays_fixed_while_the_image_changes(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, Channel("conv2", 1), size=32, seed=2, param="maco", lr=0.5)
    before, image = _pre(r), r.image()
    r.run(5)
    after = _pre(r)
    assert (r.image() - image).abs().max() > 0.05  # the picture moved
    # Its amplitude spectrum did not, at every frequency but the real-valued DC/Nyquist bins
    # (there a real image's value is M cos(phase): maco.py).
    free = ~real_bins(32, 32)
    assert torch.allclose(after[..., free], before[..., free], rtol=1e-4, atol=1e-4)
    assert r.param.basis.magnitude.requires_grad is False
    assert [n for n, _ in r.param.named_parameters()] == ["basis.phase"]


def test_transparency_map_accumulates_the_gradient(tiny: FeatvizModel) -> None:
    r = Renderer(tiny, Channel("conv2", 1), size=(32, 24), seed=2, param="maco", batch=2)
    assert float(r.transparency().sum()) == 0
    r.run(1)
    one = r.transparency()
    r.run(2)
    three = r.transparency()
    assert three.shape == r.image().shape == (2, 3, 32, 24)
    assert bool((three >= 0).all()) and bool((three >= one).all()) and float(three.sum()) > float(one.sum()) > 0
    result = render(tiny, Channel("conv2", 1), steps=2, size=32, progress=False, param="maco")
    assert result.transparency is not None
    assert result.transparency.shape == (1, 3, 32, 32) and bool((result.transparency >= 0).all())


@pytest.mark.parametrize("start", FOUR)
@pytest.mark.parametrize("end", FOUR)
def test_switching_parameterization_mid_run_keeps_the_picture(tiny: FeatvizModel, start: str, end: str) -> None:
    r = Renderer(tiny, Channel("conv2", 1), size=32, seed=2, param=start, lr=0.1)
    r.run(4)
    before = r.image()
    r.update(param=end)
    assert r.settings.param == end and r.param.param_name == end
    gap = (r.image() - before).abs().mean()
    if end == "maco" and start != "maco":
        fresh = Renderer(tiny, Channel("conv2", 1), size=32, seed=2, param="maco").image()
        assert gap < 0.5 * (fresh - before).abs().mean()  # its magnitude is replaced, not its picture
    else:
        assert gap < 1e-4
    r.run(2)  # and it keeps optimizing
    assert r.step_count == 6


def test_old_booleans_translate_to_param() -> None:
    assert RenderSettings().param == "decorrelated"
    assert RenderSettings().replace(fourier=False).param == "decorrelated-pixels"
    assert RenderSettings().replace(fourier=False, decorrelate=False).param == "pixels"
    assert RenderSettings().replace(decorrelate=False).param == "fourier"
    assert RenderSettings(param="pixels").replace(fourier=True, decorrelate=True).param == "decorrelated"
    s = RenderSettings(param="maco")
    assert s.decorrelate and not s.fourier
    # A setting saved before #21 (booleans, no param, no noise/align) loads as what it meant.
    old = RenderSettings().as_dict()
    for key in ("param", "align", "align_photos"):
        old.pop(key)
    old["transform"].pop("noise")
    old.update(fourier=True, decorrelate=False)
    assert RenderSettings.from_dict(old).param == "fourier"
    assert RenderSettings.from_dict(RenderSettings(param="maco", align=2.0).as_dict()) == RenderSettings(
        param="maco", align=2.0
    )
    assert ImageParam(16, fourier=False, decorrelate=False).param_name == "pixels"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"param": "wavelets"}, "param must be one of"),
        ({"param": "maco", "decorrelate": False}, "decorrelated colour"),
        ({"param": "maco", "shared": True}, "shared=True"),
        ({"fourier": "yes"}, "True or False"),
        ({"align": -1.0}, "align weight"),
        ({"align_photos": "/no/such/folder"}, r"reference folder \(align_photos\) '/no/such/folder' is not a folder"),
        ({"align_photos": 3}, r"reference folder \(align_photos\) 3 is not a folder; valid: a folder holding"),
    ],
)
def test_bad_parameterization_settings_are_refused_by_name(changes: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidSettingError, match=words):
        RenderSettings().replace(**changes)


def test_align_photos_is_one_absolute_folder_however_it_is_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As typed, a relative folder meant another one wherever the render ran (a Ray worker's own
    # working folder) and one folder spelled three ways gave three atlas keys.
    (tmp_path / "refs").mkdir()
    sample_photo("chelsea").save(tmp_path / "refs" / "cat.png")
    monkeypatch.chdir(tmp_path)
    spellings = ["refs", "./refs/", str(tmp_path / "refs") + "/"]
    folders = {RenderSettings(align=1.0, align_photos=name).align_photos for name in spellings}
    assert folders == {str(tmp_path / "refs")}


def test_a_reference_folder_is_checked_for_photos_when_it_enters(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    (refs / "2024").mkdir(parents=True)
    with pytest.raises(InvalidSettingError, match="No readable photos in the reference folder"):
        RenderSettings(align=1.0, align_photos=str(refs))
    # A photo added in a folder below: taken now (nothing about the refusal is remembered).
    sample_photo("coffee").save(refs / "2024" / "cup.png")
    settings = RenderSettings(align=1.0, align_photos=str(refs))
    # The folder in use emptied meanwhile: other changes still apply (its photos were checked
    # when it entered; the renderer keeps the statistics it computed from them)...
    (refs / "2024" / "cup.png").unlink()
    assert settings.replace(tv=5.0).tv == 5.0
    # ...but it cannot enter again.
    with pytest.raises(InvalidSettingError, match="No readable photos"):
        RenderSettings().replace(align_photos=str(refs))
    # A file that cannot be read is skipped like one that does not decode, never an OSError.
    (refs / "mem.png").symlink_to("/proc/self/mem")
    assert not has_photo(refs)
    with pytest.raises(InvalidSettingError, match="No readable photos"):
        RenderSettings(align_photos=str(refs))
    with pytest.raises(PhotoError, match="could not be read"):
        load_photo(refs / "mem.png")


def test_spectrum_from_photos_folder_images_and_default(tmp_path: Path) -> None:
    for name in ("chelsea", "coffee"):
        sample_photo(name).save(tmp_path / f"{name}.png")
    from_folder = spectrum_from_photos(tmp_path, 32)
    from_images = spectrum_from_photos([sample_photo("chelsea"), pil_to_tensor(sample_photo("coffee"))[0]], 32)
    assert from_folder.shape == (3, 32, 17)
    assert torch.allclose(from_folder, from_images, rtol=1e-3, atol=1e-3)
    assert spectrum_from_photos(None, (24, 40)).shape == (3, 24, 21)
    assert bool((from_folder >= 0).all())
    with pytest.raises(InvalidSettingError, match="no photos"):
        spectrum_from_photos([], 32)
    # A spectrum of one's own data drives MaCo.
    p = ImageParam(32, param="maco", spectrum=from_folder)
    assert p().shape == (1, 3, 32, 32)


def test_shipped_spectrum_is_the_probe_photos_one() -> None:
    shipped = shipped_spectrum()
    assert shipped.shape == (3, 224, 113)
    rebuilt = spectrum_from_photos(None, 224)
    assert torch.allclose(shipped, rebuilt, rtol=2e-3, atol=0.05)  # stored as float16
    # Natural images: most of the energy in the low frequencies.
    low = shipped[:, 1:8, 1:8].pow(2).mean()
    high = shipped[:, 100:124, 90:].pow(2).mean()
    assert low > 100 * high


def test_noise_transform_is_seeded_and_scaled() -> None:
    x = torch.full((1, 3, 16, 16), 0.5)
    cfg = TransformConfig(pad=0, jitter=0, rotate=0, crop=0, noise=0.1)
    a = random_affine(x, cfg, torch.Generator().manual_seed(1))
    b = random_affine(x, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and 0.05 < float((a - x).std()) < 0.2
    assert torch.equal(random_affine(x, TransformConfig(pad=0, jitter=0, rotate=0, crop=0)), x)
    with pytest.raises(InvalidSettingError, match="noise"):
        TransformConfig(noise=2.0)


def test_maco_recipe_renders(tiny: FeatvizModel) -> None:
    recipe = maco_recipe(views=2)
    assert recipe["param"] == "maco" and recipe["transform"].noise > 0
    result = render(tiny, Channel("conv2", 1), steps=3, size=32, progress=False, **recipe)
    assert result.settings["param"] == "maco" and result.settings["views"] == 2
    assert len(result.history) == 3


def _save(tensor: torch.Tensor, path: Path) -> torch.Tensor:
    arr = (tensor[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(path)
    return pil_to_tensor(Image.open(path))


def test_aligned_penalty_is_zero_at_the_references_statistics(tiny: FeatvizModel, tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    photo = _save(0.2 + 0.6 * torch.rand((1, 3, 32, 32), generator=g), tmp_path / "ref.png")
    r = Renderer(
        tiny, Channel("conv2", 1), size=32, param="pixels", align=1.0, align_photos=str(tmp_path), init_image=photo
    )
    assert r.align_penalty() < 1e-8
    # The same pixels moved around (a flip): the sorted statistics barely change.
    r.set_init_image(photo.flip(-1))
    r.reset()
    flipped = r.align_penalty()
    r.set_init_image(torch.full_like(photo, 0.5))
    r.reset()
    grey = r.align_penalty()
    assert grey > 0.01 and flipped < 0.25 * grey, (grey, flipped)
    # Steps with a strong penalty lower it from grey.
    r.update(transform=TransformConfig(strength=0), lr=0.05, align=100.0)
    r.run(10)
    assert r.align_penalty() < 0.5 * grey


def test_reference_activations_match_themselves(tiny: FeatvizModel) -> None:
    layers = layers_by_name(tiny)
    photo = _photo(32)
    ref = reference_activations(tiny, layers, ["conv1", "conv2"], (32, 32), images=photo)
    assert float(ref.penalty(capture(tiny, photo, ["conv1", "conv2"]))[0]) < 1e-10
    other = ref.penalty(capture(tiny, photo.flip(-2) * 0.5, ["conv1", "conv2"]))
    assert float(other[0]) > 1e-3


def test_sanity_readout_of_an_exemplar_against_the_exemplars(tiny: FeatvizModel) -> None:
    crops = [sample_photo(name).resize((48, 40)) for name in ("chelsea", "coffee", "rocket")]
    readout = sanity_readout(tiny, "conv2:1", pil_to_tensor(crops[0]), crops, size=32)
    assert readout.similarity.keys() == readout.natural_similarity.keys() == {"conv1", "relu1"}
    assert readout.value <= readout.best_natural and readout.ratio == readout.value / readout.best_natural
    # The exemplars themselves as the images: their mean cosine to the exemplars is that of all
    # pairs, the self-pairs (1) included.
    same = sanity_readout(tiny, "conv2:1", torch.cat([pil_to_tensor(c) for c in crops]), crops, size=32)
    for k, natural in same.natural_similarity.items():
        assert same.similarity[k] == pytest.approx((2 * natural + 1) / 3, abs=1e-5)
    assert same.value <= same.best_natural
    assert all(-1 <= v <= 1 for v in [*readout.similarity.values(), *readout.natural_similarity.values()])


def test_lab_compare_prints_the_numbers_under_each_image(tiny: FeatvizModel) -> None:
    sheet = compare(
        tiny, "conv2:1", {"pixels": {"param": "pixels"}, "MaCo": {"param": "maco"}}, steps=2, size=32, stats=True
    )
    assert sheet.size == (2 * (140 + 8), 32 + 12 * 4 + 4)
    flat = Image.new("RGB", (64, 64), (128, 128, 128))
    noise = Image.fromarray(np.random.RandomState(0).randint(0, 256, (64, 64, 3), dtype=np.uint8))
    assert high_frequency_share(noise) > 0.5 > 0.2 > high_frequency_share(sample_photo("chelsea").resize((64, 64)))
    assert high_frequency_share(flat) == 0 and clipped_share(flat) == 0 and hsv_saturation(flat) == 0
    assert (
        clipped_share(Image.new("RGB", (4, 4), (255, 0, 0))) == 1
        and hsv_saturation(Image.new("RGB", (4, 4), (255, 0, 0))) == 1
    )


@pytest.mark.slow
def test_speckle_benchmark_runs() -> None:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [
            sys.executable,
            str(root / "benchmarks" / "speckle.py"),
            "--steps",
            "2",
            "--classes",
            "1",
            "--size",
            "32",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "photos (" in done.stdout and "maco recipe" in done.stdout and done.stdout.count("ratio") == 5


@pytest.mark.slow
def test_cli_renders_with_a_parameterization_and_its_png_carries_it(tmp_path: Path) -> None:
    def featviz(*args: str) -> subprocess.CompletedProcess[str]:
        return featviz_render(tmp_path, *args)

    assert featviz("--param", "maco", "--align", "2", "-o", "maco.png").returncode == 0
    saved = RenderSettings.from_dict({k: v for k, v in read_settings(tmp_path / "maco.png").items() if k in FIELDS})
    assert saved.param == "maco" and saved.align == 2.0
    assert featviz("--maco-recipe", "-o", "recipe.png").returncode == 0
    recipe = read_settings(tmp_path / "recipe.png")
    assert recipe["param"] == "maco" and recipe["lr"] == 0.3 and recipe["transform"]["noise"] == 0.04
    assert featviz("--pixel", "-o", "old.png").returncode == 0  # the old flag, translated
    assert read_settings(tmp_path / "old.png")["param"] == "decorrelated-pixels"
    # The old flags are another spelling of --param: beside it (or the recipe) they are refused
    # by name, not left to override it.
    for flags in (
        ["--param", "maco", "--no-decorrelate"],
        ["--param", "maco", "--pixel"],
        ["--maco-recipe", "--pixel"],
    ):
        bad = featviz(*flags, "-o", "bad.png")
        assert bad.returncode == 2 and "use --param alone" in bad.stderr and not (tmp_path / "bad.png").exists()


def test_cache_keys_of_old_style_settings_do_not_change() -> None:
    # The atlas keys its tiles by these dicts: one made before #21 must be made again.
    old_fields = {
        "size", "batch", "lr", "l1", "tv", "blur", "transform", "fourier", "decorrelate", "decay", "seed",
        "input_size", "shared", "views", "redirect_steps",
    }  # fmt: skip
    for settings in (RenderSettings(), RenderSettings(param="pixels", tv=3.0), RenderSettings(size=96, lr=0.05)):
        key = settings.key_dict()
        assert set(key) == old_fields and "noise" not in key["transform"]
        assert RenderSettings.from_dict(key) == settings
    assert RenderSettings().key_dict()["fourier"] is True and RenderSettings().key_dict()["decorrelate"] is True
    assert RenderSettings(param="maco").key_dict()["param"] == "maco"
    assert RenderSettings(align=1.0).key_dict()["align"] == 1.0
    assert RenderSettings(transform=TransformConfig(noise=0.1)).key_dict()["transform"]["noise"] == 0.1
