"""Convolution + ReLU6 as one oneDNN primitive on CPU, forward and backward.

PyTorch runs a convolution and its ReLU6 (``hardtanh``) as two passes over the activation
forward, and ``hardtanh_backward`` reads the convolution's output back in the backward pass.
oneDNN can clip inside the convolution (a post-op), so the activation is written once; the
backward masks the gradient with the clipped output itself (0 < y < 6 exactly where
0 < x < 6) and runs the input half of the convolution's backward only (the weights are frozen).
Values and gradients are bitwise those of ``relu6(conv2d(x))`` (tests/test_fused_conv.py).

``conv_relu6_fusable`` says when the fused path applies: a CPU float32 tensor outside autocast
and compilation, frozen weights, and oneDNN present. Callers also check that no hook watches
the convolution or the activation on their own (a hook must see the separate outputs).
"""

from __future__ import annotations

import functools

import torch

_RELU6 = ("hardtanh", [0.0, 6.0], "")


def conv_relu6_fusable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not weight.requires_grad
        and not _autocast_on_cpu()
        and not _compiling()
        and _fused_kernel_runs()
    )


def _autocast_on_cpu() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 takes no device argument
        return torch.is_autocast_cpu_enabled()


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(is_compiling and is_compiling())


def conv_relu6(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: list[int],
    padding: list[int],
    groups: int,
) -> torch.Tensor:
    """``relu6(conv2d(x, weight, bias, stride, padding, groups=groups))`` in one primitive."""
    return _ConvReLU6.apply(x, weight, bias, list(stride), list(padding), groups)


def _forward(x, weight, bias, stride, padding, groups) -> torch.Tensor:
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, stride, [1, 1], groups, *_RELU6)


class _ConvReLU6(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, groups):  # type: ignore[override]
        y = _forward(x, weight, bias, stride, padding, groups)
        ctx.save_for_backward(x, weight, y)
        ctx.conv = (stride, padding, groups)
        return y

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight, y = ctx.saved_tensors
        stride, padding, groups = ctx.conv
        grad = torch.ops.aten.hardtanh_backward(grad, y, 0.0, 6.0)
        grad_x, _, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, stride, padding, [1, 1], False, [0, 0], groups, [True, False, False]
        )
        return grad_x, None, None, None, None, None


@functools.cache
def _fused_kernel_runs() -> bool:
    """Whether this torch build has oneDNN's fused convolution and it matches the two-pass result
    (checked once per process)."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")):
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(1, 4, 6, 6, generator=gen) * 4
        w = torch.randn(4, 4, 3, 3, generator=gen)
        b = torch.randn(4, generator=gen)
        fused = _forward(x, w, b, [1, 1], [1, 1], 1)
        plain = torch.nn.functional.conv2d(x, w, b, 1, 1).clamp(0, 6)
        return bool(torch.allclose(fused, plain, atol=1e-5))
    except RuntimeError:
        return False
