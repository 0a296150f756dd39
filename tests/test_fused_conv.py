"""Convolution + ReLU6 in one oneDNN primitive (engine/fused_conv.py) and the cached SAME kernel,
checked against the two-pass modules on tiny layers built here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from featviz_widgets.engine import fused_conv
from featviz_widgets.engine.efficientnet_lite import ConvBNAct

needs_onednn = pytest.mark.skipif(not fused_conv._fused_kernel_runs(), reason="no oneDNN fused convolution here")


def folded_layer(cin: int, cout: int, kernel: int, stride: int, groups: int, channels_last: bool) -> ConvBNAct:
    """A ConvBNAct as load_model leaves it: BatchNorm folded into a bias, weights frozen."""
    gen = torch.Generator().manual_seed(0)
    layer = ConvBNAct(cin, cout, kernel, stride, groups)
    layer.conv.weight = nn.Parameter(torch.randn(layer.conv.weight.shape, generator=gen), requires_grad=False)
    layer.conv.bias = nn.Parameter(torch.randn(cout, generator=gen), requires_grad=False)
    layer.bn = nn.Identity()
    layer.eval()
    return layer.to(memory_format=torch.channels_last) if channels_last else layer


def two_passes(layer: ConvBNAct, x: torch.Tensor) -> torch.Tensor:
    # What nn.Sequential would run: the convolution, then ReLU6 as its own op.
    return layer.act(layer.bn(layer.conv(x)))


def input_and_grad(fn, x: torch.Tensor, grad_seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_seed)))
    return y.detach(), x.grad


@needs_onednn
@pytest.mark.parametrize(
    "cin, cout, kernel, stride, groups",
    [(3, 8, 3, 2, 1), (8, 16, 1, 1, 1), (16, 16, 3, 1, 16), (16, 16, 5, 2, 16)],
    ids=["stem-like", "expand 1x1", "depthwise", "depthwise stride 2"],
)
@pytest.mark.parametrize("channels_last", [True, False], ids=["NHWC", "NCHW"])
def test_fused_values_and_input_gradients_are_bitwise_the_two_pass_ones(
    cin: int, cout: int, kernel: int, stride: int, groups: int, channels_last: bool
) -> None:
    layer = folded_layer(cin, cout, kernel, stride, groups, channels_last)
    # Scaled so that many outputs fall below 0 and above 6: both edges of the mask are exercised.
    x = torch.randn(2, cin, 15, 16, generator=torch.Generator().manual_seed(2)) * 3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    calls = []
    original = fused_conv._ConvReLU6.forward

    def counting(ctx, *args):
        calls.append(1)
        return original(ctx, *args)

    fused_conv._ConvReLU6.forward = staticmethod(counting)
    try:
        y_fused, g_fused = input_and_grad(layer, x)
    finally:
        fused_conv._ConvReLU6.forward = staticmethod(original)
    y_plain, g_plain = input_and_grad(lambda t: two_passes(layer, t), x)
    assert calls == [1]  # the fused path ran
    assert ((y_plain == 0) | (y_plain == 6)).float().mean() > 0.2
    assert torch.equal(y_fused, y_plain)
    assert torch.equal(g_fused, g_plain)


@pytest.mark.parametrize("where", ["conv", "act"])
def test_a_hook_on_a_sub_layer_sees_its_own_output(where: str) -> None:
    layer = folded_layer(4, 6, 3, 1, 1, True)
    seen = []
    getattr(layer, where).register_forward_hook(lambda _m, _i, out: seen.append(out))
    x = torch.randn(1, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    y = layer(x)
    conv_out = F.conv2d(x, layer.conv.weight, layer.conv.bias, 1, 1)
    assert len(seen) == 1
    assert torch.equal(seen[0], conv_out if where == "conv" else conv_out.clamp(0, 6))
    assert torch.equal(y, conv_out.clamp(0, 6))


def test_trainable_weights_get_their_gradients() -> None:
    layer = folded_layer(4, 6, 3, 2, 1, True)
    layer.conv.weight.requires_grad_(True)
    x = torch.randn(1, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    layer(x).sum().backward()
    assert layer.conv.weight.grad is not None and layer.conv.weight.grad.abs().sum() > 0


def test_autocast_takes_the_two_pass_path() -> None:
    x = torch.randn(1, 4, 8, 8)
    w = torch.randn(6, 4, 3, 3)
    assert fused_conv.conv_relu6_fusable(x, w) == fused_conv._fused_kernel_runs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused_conv.conv_relu6_fusable(x, w)
    assert not fused_conv.conv_relu6_fusable(x.double(), w.double())


def test_without_onednn_the_probe_says_no(monkeypatch: pytest.MonkeyPatch) -> None:
    fused_conv._fused_kernel_runs.cache_clear()
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    try:
        assert not fused_conv._fused_kernel_runs()
        layer = folded_layer(4, 6, 3, 1, 1, False)
        x = torch.randn(1, 4, 8, 8)
        assert torch.equal(layer(x), two_passes(layer, x))
    finally:
        fused_conv._fused_kernel_runs.cache_clear()


def test_the_cached_same_kernel_follows_in_place_weight_changes() -> None:
    layer = folded_layer(4, 4, 3, 2, 4, True)
    x = torch.randn(1, 4, 16, 16).contiguous(memory_format=torch.channels_last)
    first = layer.conv(x)
    weight, _ = layer.conv.weight_and_padding(x)
    assert layer.conv.weight_and_padding(x)[0] is weight  # kept between calls
    with torch.no_grad():
        layer.conv.weight.mul_(2)  # as fold_batchnorm does
    assert layer.conv.weight_and_padding(x)[0] is not weight
    torch.testing.assert_close(
        layer.conv(x) - layer.conv.bias[:, None, None], 2 * (first - layer.conv.bias[:, None, None])
    )
    # A NCHW input gets its own (not channels-last) padded kernel.
    nchw = x.contiguous()
    assert torch.equal(layer.conv(nchw), layer.conv(x))
