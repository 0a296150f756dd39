"""Every torchvision classification family, randomly initialised and small: layouts, layer
lists, renders below and at the natural size, channel objectives on the true channel axis,
the widget opening on each; the redirected gradient (no dead starts); timm by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models.convnext import CNBlockConfig
from torchvision.models.efficientnet import _efficientnet_conf
from torchvision.models.regnet import BlockParams

from featviz_widgets.engine import (
    Channel,
    Context,
    Renderer,
    TransformConfig,
    capture,
    layer_info,
    list_layers,
    load_model,
    main_layers,
)
from featviz_widgets.engine.layers import layers_by_name
from featviz_widgets.engine.models import FeatvizModel
from featviz_widgets.engine.objectives import ClassToken, parse_objective
from featviz_widgets.errors import InvalidSettingError, WeightsError

pytestmark = pytest.mark.usefixtures("comms")


def _vgg() -> nn.Module:
    features = tvm.vgg.make_layers([8, "M", 16, "M", 16, 16, "M"])
    with torch.device("meta"):  # the 100M-parameter classifier is replaced before any memory is used
        net = tvm.VGG(features, num_classes=10, init_weights=False)
    net.classifier = nn.Linear(16 * 49, 10)
    return net


def _efficientnet() -> nn.Module:
    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.25)
    return tvm.EfficientNet(setting, 0.2, last_channel=last, num_classes=10)


FAMILIES: dict[str, Callable[[], nn.Module]] = {
    "resnet": lambda: tvm.ResNet(tvm.resnet.BasicBlock, [1, 1, 1, 1], num_classes=10),
    "vgg": _vgg,
    "googlenet": lambda: tvm.GoogLeNet(num_classes=10, aux_logits=False, init_weights=False),
    "inception_v3": lambda: tvm.Inception3(num_classes=10, aux_logits=False, init_weights=False),
    "densenet": lambda: tvm.DenseNet(8, (2, 2, 2, 2), 16, num_classes=10),
    "mobilenet_v2": lambda: tvm.MobileNetV2(num_classes=10, width_mult=0.25),
    "mobilenet_v3": lambda: tvm.mobilenet_v3_small(num_classes=10, width_mult=0.25),
    "efficientnet": _efficientnet,
    "regnet": lambda: tvm.RegNet(BlockParams.from_init_params(6, 16, 8.0, 2.0, 8, 0.25), num_classes=10),
    "convnext": lambda: tvm.ConvNeXt(
        [CNBlockConfig(16, 32, 2), CNBlockConfig(32, 64, 2), CNBlockConfig(64, None, 2)], num_classes=10
    ),
    "swin": lambda: tvm.SwinTransformer([4, 4], 16, [2, 2], [1, 2], [4, 4], num_classes=10),
    "maxvit": lambda: tvm.MaxVit((224, 224), 16, 7, [16, 32], [1, 1], 8, 0.0, num_classes=10),
    "vit": lambda: tvm.VisionTransformer(224, 16, 2, 2, 64, 128, num_classes=10),
}
# Natural input sizes: small where the family takes any size, its own where it takes one.
SIZES = {"inception_v3": 96, "maxvit": 224, "vit": 224}
_MODELS: dict[str, FeatvizModel] = {}


def model_for(family: str) -> FeatvizModel:
    if family not in _MODELS:
        torch.manual_seed(0)
        _MODELS[family] = load_model(FAMILIES[family](), input_size=SIZES.get(family, 96), device="cpu")
    return _MODELS[family]


def true_channel_mean(model: FeatvizModel, image: torch.Tensor, layer: str, channel: int) -> float:
    """The channel's mean over positions, read from the raw output on the layout's own axis."""
    info = layer_info(model, layer)
    with torch.no_grad():
        raw = capture(model, image, [layer])[layer]
    if info.layout == "hwc":
        return float(raw[..., channel].mean())
    if info.layout == "tokens":
        return float(raw[:, info.prefix_tokens :, channel].mean())
    return float(raw[:, channel].mean())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_layers_renders_and_channels(family: str) -> None:
    model = model_for(family)
    chosen = [i for i in main_layers(model) if i.name != "logits"]
    assert 3 <= len(chosen) <= 48, [i.name for i in chosen]
    assert all(i.is_spatial for i in chosen)
    assert len(list_layers(model)) > len(chosen)  # every other layer is still there by name
    layer = chosen[len(chosen) // 3].name
    images = {}
    for c in (0, 1):  # the same start image: rendering channel 0 raises it more than rendering 1 does
        r = Renderer(model, Channel(layer, c), size=64, lr=0.1, seed=0, transform_strength=0)
        r.run(4)
        images[c] = r.image()
    own = true_channel_mean(model, images[0], layer, 0)
    other = true_channel_mean(model, images[1], layer, 0)
    assert own > other, (layer, own, other)
    r = Renderer(model, Channel(chosen[-1].name, 0), size=128, lr=0.1)
    r.step()  # runs at 128 px on every family
    assert r.image().shape == (1, 3, 128, 128)


def test_layouts_detected() -> None:
    swin = layers_by_name(model_for("swin"))
    assert swin["features.1"].layout == "hwc" and swin["features.1"].channels == 16
    assert swin["features.1.0.mlp.1"].channels == 64 and "features.1.0.mlp.1" in {
        i.name for i in main_layers(model_for("swin"))
    }
    vit = layers_by_name(model_for("vit"))
    block = vit["encoder.layers.encoder_layer_0"]
    assert (block.layout, block.prefix_tokens, block.channels, block.grid) == ("tokens", 1, 64, (14, 14))
    assert vit["encoder.layers.encoder_layer_0.mlp.1"].channels == 128
    assert vit["conv_proj"].layout == "chw"
    convnext = layers_by_name(model_for("convnext"))
    assert convnext["features.1.0"].layout == "chw" and convnext["features.1.0.block.4"].layout == "hwc"
    assert layers_by_name(model_for("resnet"))["layer1"].layout == "chw"


def test_layer_groups_follow_stages() -> None:
    infos = {i.name: i for i in main_layers(model_for("swin"))}
    assert infos["features.1.0"].group == infos["features.1"].group == "features.1"
    vit = [i.name for i in main_layers(model_for("vit"))]
    assert vit == [
        "encoder.layers.encoder_layer_0.mlp.1",
        "encoder.layers.encoder_layer_0",
        "encoder.layers.encoder_layer_1.mlp.1",
        "encoder.layers.encoder_layer_1",
        "logits",
    ]


def test_vit_below_its_size_and_class_token() -> None:
    model = model_for("vit")
    layer = "encoder.layers.encoder_layer_1"
    r = Renderer(model, ClassToken(layer, 3), size=96, lr=0.1)
    before = r.measure().item()
    r.run(4)
    assert r.measure().item() > before
    assert parse_objective(f"{layer}:3@cls") == ClassToken(layer, 3)
    with pytest.raises(InvalidSettingError, match="no class token"):
        Renderer(model, ClassToken("conv_proj", 0), size=64)
    x = torch.rand(2, 3, 128, 128)  # capture feeds the model its own size
    later = []
    handle = model.module_for("encoder.ln").register_forward_hook(lambda *a: later.append(1))
    try:
        assert capture(model, x, [layer])[layer].shape == (2, 197, 64)
        assert capture(model, x, ["encoder.layers.encoder_layer_0.mlp.1"])  # stops inside a block
    finally:
        handle.remove()
    assert later == []  # the truncated forward never ran past the target


def test_layout_override() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    model = load_model(net, input_size=16, layouts={"1": "vector"}, device="cpu")
    assert layer_info(model, "1").layout == "vector"
    with pytest.raises(InvalidSettingError, match="not one of"):
        load_model(net, input_size=16, layouts={"1": "nhwc"})


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_widget_opens_with_its_defaults(family: str) -> None:
    from featviz_widgets.view import Dreamer

    model = model_for(family)
    d = Dreamer(model, autostart=False)
    try:
        options = [value for _, value in d.controls.layer.options]
        assert options == [i.name for i in main_layers(model) if i.name != "logits"]
        assert d.controls.layer.value in options
    finally:
        d.close()


# --- no dead starts -------------------------------------------------------------------------


class DeadChannel(nn.Module):
    """Channel 1 of ``conv`` is -1 everywhere on any image in [0, 1]: its ReLU passes no gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.act = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[1] = 0.01  # at most 0.27 on [0, 1] pixels
            self.conv.bias.copy_(torch.tensor([0.0, -1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(self.act(self.conv(x)))


def _pixel_std(model: FeatvizModel, objective: str, size: int, steps: int, redirect: int, **settings: object) -> float:
    r = Renderer(model, objective, size=size, lr=0.05, redirect_steps=redirect, seed=0, **settings)
    start = r.image().std().item()
    r.run(steps)
    return r.image().std().item() - start


def test_dead_channel_moves_only_with_the_redirected_gradient() -> None:
    model = load_model(DeadChannel(), input_size=16, device="cpu")
    assert _pixel_std(model, "act:1", 16, 8, redirect=0) == 0.0  # no gradient: the image never moves
    assert _pixel_std(model, "act:1", 16, 8, redirect=16) > 0.01
    r = Renderer(model, "act:1", size=16, lr=0.05, redirect_steps=4)
    r.run(4)
    assert r.measure().item() > -1.0  # the channel's input rose
    # After the redirect steps the ordinary gradient applies again (here: still none).
    r2 = Renderer(model, "conv:0", size=16, lr=0.05, redirect_steps=0, seed=3)
    r3 = Renderer(model, "conv:0", size=16, lr=0.05, redirect_steps=16, seed=3)
    r2.run(3)
    r3.run(3)
    assert torch.equal(r2.image(), r3.image())  # a live channel's gradient is unchanged


@pytest.mark.slow
def test_lite0_head10_moves_off_grey() -> None:
    model = load_model(device="cpu")
    # With Lucid's 1/f spectrum and views that only zoom in (1-1.5) the channel is dead on the
    # grey start: only the redirected gradient moves it.
    old = {"transform": TransformConfig(scale=0.0), "decay": 1.0}
    flat = _pixel_std(model, "head:10", 224, 64, redirect=0, **old)
    moved = _pixel_std(model, "head:10", 224, 64, redirect=16, **old)
    assert moved > 0.02 and moved > 5 * max(flat, 1e-4), (flat, moved)
    # The default views (zoom 0.8-1.7) and spectrum (1/f^1.5) leave the image off grey as well.
    assert _pixel_std(model, "head:10", 224, 64, redirect=16) > 0.02


@pytest.mark.slow
def test_real_vit_b_16() -> None:
    torch.manual_seed(0)
    model = load_model(tvm.vit_b_16(), device="cpu")
    names = [i.name for i in main_layers(model)]
    assert 20 <= len(names) <= 30 and "encoder.layers.encoder_layer_5.mlp.1" in names
    r = Renderer(model, Channel("encoder.layers.encoder_layer_5.mlp.1", 7), size=128, lr=0.1)
    before = r.measure().item()
    r.run(3)
    assert r.measure().item() > before


# --- timm by name ---------------------------------------------------------------------------


def test_timm_by_name_from_a_file_and_missing_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    timm = pytest.importorskip("timm")
    import huggingface_hub.constants

    name = "test_vit.r160_in1k"
    if name.split(".")[0] not in timm.list_models():
        pytest.skip("timm has no test_vit")
    net = timm.create_model(name.split(".")[0], pretrained=False)
    path = tmp_path / "w.pth"
    torch.save(net.state_dict(), path)
    model = load_model(f"timm:{name.split('.')[0]}", weights=path, device="cpu")
    cfg = net.pretrained_cfg
    assert model.input_size == cfg["input_size"][-1]
    assert torch.allclose(model.preprocess.mean.flatten(), torch.tensor(cfg["mean"]))
    x = torch.rand(1, 3, model.input_size, model.input_size)
    net.eval()
    with torch.no_grad():
        expected = net((x - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1))
        assert torch.allclose(model(x), expected, atol=1e-5)
    block = layers_by_name(model)["blocks.0"]
    assert block.layout == "tokens" and block.prefix_tokens == net.num_prefix_tokens
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    with pytest.raises(WeightsError, match="never downloads"):
        load_model(f"timm:{name.split('.')[0]}")
    with pytest.raises(WeightsError, match="does not exist"):
        load_model(f"timm:{name.split('.')[0]}", weights=tmp_path / "missing.safetensors")


def test_context_spatial_is_a_view() -> None:
    model = model_for("swin")
    info = layers_by_name(model)["features.1"]
    act = torch.rand(2, *info.shape)
    view = Context({"features.1": act}, torch.rand(2, 3, 8, 8), layers_by_name(model)).spatial("features.1")
    assert view.shape == (2, 16, *info.shape[:2]) and view.data_ptr() == act.data_ptr()
