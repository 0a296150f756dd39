"""Issue #24, classes 4 and 5: requests no machine can hold are refused before they allocate,
and the user's model is neither changed nor read wrong. Attacked with crafted inputs of our
own; the counts asserted at the end of each test are the inputs tried (docs/adversarial.md).
Classes 1 and 2 (markup, copied code) are in test_adversarial.py."""

from __future__ import annotations

import copy
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import ipywidgets as W
import pytest
import torch
from PIL import Image
from torch import nn

from featviz_widgets import load_model, render
from featviz_widgets.engine import Renderer, RenderSettings
from featviz_widgets.engine.core.memory import FIXED_BYTES, MemoryLimitError, check_fits, step_bytes
from featviz_widgets.engine.objectives import MAX_OBJECTIVE_CHARS, parse_objective
from featviz_widgets.errors import MAX_MESSAGE, FeatvizError, ModelInputError, unknown_layer
from featviz_widgets.export import SETTINGS_KEY, SavedSettingsError, read_settings
from featviz_widgets.runner import Target, read_saved

from .conftest import TinyNet, shown, user_sets, wait

# --- 4. requests no machine can hold are refused before they allocate ---------------------------


def test_huge_renders_are_refused_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    from featviz_widgets.engine.image import param

    model = load_model(TinyNet(), input_size=32)

    def no_allocation(*a: Any, **k: Any) -> None:
        raise AssertionError("the image was allocated before the refusal")

    tried = 0
    for settings in (
        {"size": 4096, "batch": 16},
        {"size": 4096, "batch": 4096},
        {"size": (4096, 16), "batch": 4096, "views": 64},
        {"size": 2048, "views": 64, "batch": 64},
    ):
        monkeypatch.setattr(param.ImageParam, "__init__", no_allocation)
        with pytest.raises(MemoryLimitError) as info:
            render(model, "conv2:0", steps=1, progress=False, **settings)
        assert "free" in str(info.value) and "GB" in str(info.value)
        tried += 1
    monkeypatch.undo()
    # the limit is the device's: what fits is not refused, the same request is with less memory
    s = RenderSettings(size=256, batch=4)
    need = check_fits(model, s, ["conv2"])
    check_fits(model, s, ["conv2"], available=need)
    with pytest.raises(MemoryLimitError, match="the limit is the device's free memory"):
        check_fits(model, s, ["conv2"], available=need - 1)
    assert step_bytes(model, s.replace(batch=8), ["conv2"]) > need  # grows with the batch
    assert step_bytes(model, s.replace(views=2), ["conv2"]) > need  # and the views
    assert step_bytes(model, s.replace(size=512), ["conv2"]) - FIXED_BYTES > 3 * (need - FIXED_BYTES)  # the pixels
    assert step_bytes(model, s, ["conv1"]) < need  # a shallower objective keeps less
    # a renderer refuses a live change the same way, and keeps what it had
    r = Renderer(model, "conv2:0", size=32)
    r.step()
    with pytest.raises(MemoryLimitError):
        r.update(size=4096, batch=4096)
    assert r.settings.size == 32 and r.settings.batch == 1
    r.step()
    assert tried == 4


@pytest.mark.usefixtures("comms")
def test_live_changes_and_loads_go_through_the_same_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from featviz_widgets.engine.core import memory
    from featviz_widgets.export import save_png
    from featviz_widgets.view import Dreamer

    d = Dreamer(load_model(TinyNet(), input_size=32), layer="conv2", size=64, fps=30)
    try:
        assert d.wait_for_steps(2, timeout=60)
        small = memory.step_bytes(d.model, d.runner.settings, ["conv2"])
        monkeypatch.setattr(memory, "available_bytes", lambda device: 2 * small)  # a small machine
        user_sets(shown(d, W.Dropdown, description="image size"), 512)
        assert wait(lambda: "free" in d.status.value)
        assert d.runner.settings.size == 64  # refused: nothing changed
        step = d.runner.snapshot().step
        assert d.wait_for_steps(step + 2)  # and the loop goes on
        # a saved PNG asking for what no machine holds: refused before its pixels are decoded
        decoded: list[Any] = []
        monkeypatch.setattr("featviz_widgets.runner.saved.read_png_picture", lambda *a, **k: decoded.append(a))
        for fields in ({"size": 4096, "batch": 4096, "views": 64}, {"size": 512, "batch": 64}):
            save_png(Image.new("RGB", (8, 8)), tmp_path / "big.png", {**fields, "target": {"layer": "conv2"}})
            with pytest.raises(MemoryLimitError):
                d.load(tmp_path / "big.png")
        assert not decoded and d.runner.settings.size == 64
    finally:
        d.close()


def _chunk(kind: bytes, data: bytes, length: int | None = None) -> bytes:
    n = len(data) if length is None else length
    return struct.pack(">I", n) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, *chunks: bytes) -> bytes:
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + _chunk(b"IEND", b"")


def test_crafted_pngs_are_refused_without_reading_pixels_or_oversized_chunks() -> None:
    settings = json.dumps({"size": 64, "target": {"layer": "conv2"}}).encode()
    text = _chunk(b"tEXt", SETTINGS_KEY.encode() + b"\0" + settings)
    idat = _chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    cases = {
        # 900 megapixels (under PIL's bomb limit of ~179M? no: far over; and 12,000 x 12,000 under it)
        "a huge picture": _png(30_000, 30_000, text, idat),
        "a large picture under PIL's bomb limit": _png(12_000, 12_000, text, idat),
        "a settings chunk claiming 2 GB": _png(64, 64, _chunk(b"tEXt", SETTINGS_KEY.encode() + b"\0", 2**31)),
        "a zTXt that inflates to 200 MB": _png(
            64, 64, _chunk(b"zTXt", SETTINGS_KEY.encode() + b"\0\0" + zlib.compress(b" " * 200_000_000, 9))
        ),
        "a 1 GB unknown chunk before the settings": _png(64, 64, _chunk(b"zzZz", b"", 2**30), text),
        "no signature": b"GIF89a" + b"\0" * 100,
        "a truncated header": b"\x89PNG\r\n\x1a\n\0\0",
        "settings that are a list": _png(64, 64, _chunk(b"tEXt", SETTINGS_KEY.encode() + b"\0[1, 2]")),
        "deeply nested JSON": _png(64, 64, _chunk(b"tEXt", SETTINGS_KEY.encode() + b"\0" + b"[" * 100_000)),
    }
    for name, data in cases.items():
        with pytest.raises(SavedSettingsError) as info:
            read_saved(data)
        assert len(str(info.value)) < 400, name
    # the settings themselves are read without the pixels
    assert read_settings(_png(30_000, 30_000, text, idat))["size"] == 64
    assert len(cases) == 9


def test_huge_objective_strings_and_names_are_refused_with_short_messages() -> None:
    model = load_model(TinyNet(), input_size=32)
    attacks = [
        "conv2:1 + " * 1_000_000 + "conv2:0",  # 10 MB, valid syntax
        "conv2:1+" * 200,  # short but too many terms
        "x" * 10_000_000,  # one 10 MB layer name
        "conv2:" + "9" * 3_000,  # a 3,000-digit channel
        "(" * 5_000,
        "conv2:0 " + "\0" * 3_000,
    ]
    for text in attacks:
        with pytest.raises(FeatvizError) as info:
            Renderer(model, text, size=32)
        assert len(str(info.value)) <= 600, str(info.value)[:200]
    assert len(str(unknown_layer("y" * 10_000_000, ["conv1"]))) < 400
    with pytest.raises(FeatvizError) as bad_target:
        Target.from_dict({"mode": "channel", "unit": "z" * 10_000_000})
    assert len(str(bad_target.value)) <= 300
    with pytest.raises(FeatvizError) as bad_size:
        RenderSettings(size="9" * 10_000_000)  # type: ignore[arg-type]
    assert len(str(bad_size.value)) <= MAX_MESSAGE  # (check_size quotes it whole: the backstop cuts it)
    with pytest.raises(FeatvizError) as any_message:
        raise FeatvizError("w" * 10_000_000)  # the backstop: no message carries a whole input
    assert len(str(any_message.value)) <= MAX_MESSAGE
    assert len(" + ".join(["conv2:1"] * 1000)) > MAX_OBJECTIVE_CHARS
    parse_objective(" + ".join(f"conv2:{i % 6}" for i in range(100)))  # a long honest sum still parses
    assert len(attacks) == 6


# --- 5. the user's model is neither changed nor read wrong ---------------------------------------


def _train_step(net: nn.Module, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(4, 3, 16, 16, generator=g), torch.randint(0, 5, (4,), generator=g)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.detach()


class BNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.relu(self.bn(self.conv(x)))).mean((2, 3)))


def test_load_model_leaves_the_callers_module_as_it_was() -> None:
    torch.manual_seed(0)
    net = BNNet().train()
    twin = copy.deepcopy(net)
    hooks = len(net.conv._forward_hooks)
    render(load_model(net, input_size=16), "conv:1 + bn:2", steps=3, size=16, progress=False)
    Renderer(load_model(net, input_size=16), "fc:1", size=16).run(2)
    assert net.training and all(m.training for m in net.modules())
    assert all(p.requires_grad and p.grad is None for p in net.parameters())
    assert len(net.conv._forward_hooks) == hooks
    for seed in range(3):  # a training loop that goes on gives what it would have given
        torch.manual_seed(seed)
        a = _train_step(net, seed)
        torch.manual_seed(seed)
        b = _train_step(twin, seed)
        assert torch.equal(a, b)
    for p, q in zip(net.state_dict().values(), twin.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    # weights are shared: what the caller trains in place is what the next render sees
    model = load_model(net, input_size=16)
    with torch.no_grad():
        net.conv.weight.mul_(0)
        net.conv.bias.fill_(0.25)
    acts = Renderer(model, "conv:0", size=16).measure()
    assert torch.allclose(acts, torch.full_like(acts, 0.25))


def _resnet(inplace: bool) -> nn.Module:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(num_classes=10)
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = inplace
    return net


@pytest.mark.slow
def test_in_place_activations_do_not_change_what_is_read() -> None:
    objectives = [
        "layer1.0.bn1:0 + layer1.0.conv2:1",  # bn1's output is overwritten by relu(inplace) before conv2
        "bn1:3 - layer1:2",
        "layer1.0.bn2:1 + layer1.1.conv1:0",  # bn2, then the residual add in place, then relu in place
        "layer2.0.bn1:0 + layer2.0.bn2:0 + layer2:0",
    ]
    a, b = load_model(_resnet(True), input_size=32), load_model(_resnet(False), input_size=32)
    for objective in objectives:
        for redirect in (0, 16):  # (the first steps' redirected ReLU is out of place anyway)
            ra = Renderer(a, objective, size=32, seed=1, redirect_steps=redirect)
            rb = Renderer(b, objective, size=32, seed=1, redirect_steps=redirect)
            for _ in range(3):
                ia, ib = ra.step(), rb.step()
                assert ia.objective == ib.objective, objective
            assert torch.equal(ra.image(), rb.image()), objective
    assert len(objectives) == 4


class NoGrad(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "no_grad":
            with torch.no_grad():
                x = self.conv1(x)
        elif self.how == "detach":
            x = self.conv1(x.detach())
        elif self.how == "data":
            x = self.conv1(x.data)
        else:
            x = self.conv1(torch.from_numpy(x.detach().numpy()))
        return self.conv2(x)


@pytest.mark.usefixtures("comms")
def test_a_forward_that_cuts_the_gradient_is_named_in_a_clear_error() -> None:
    hows = ("no_grad", "detach", "data", "numpy")
    for how in hows:
        model = load_model(NoGrad(how), input_size=16)
        with pytest.raises(ModelInputError, match=r"does not depend on the input image through autograd"):
            render(model, "conv2:0", steps=1, size=16, progress=False)
    from featviz_widgets.view import Dreamer

    d = Dreamer(load_model(NoGrad("detach"), input_size=16), layer="conv2", size=32, fps=30)
    try:
        assert wait(lambda: "through autograd" in d.status.value, 30)
        assert d.runner.is_running  # the loop keeps serving
    finally:
        d.close()
    assert len(hows) == 4
