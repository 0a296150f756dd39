"""No dead starts: Lucid's redirected ReLU gradient (lucid issue #68), for ReLU, ReLU6, GELU
and Hardswish, module or functional call alike.

A channel that is negative everywhere on the starting image sends no gradient back through
its ReLU: the image never moves. Lucid's fix (lucid/misc/redirected_relu_grad.py): where an
image's whole gradient through a ReLU is zero, let the gradient through anyway, except where it
would push an inactive input further into the flat region. Here, inside ``redirected()``, every
``F.relu``/``F.relu6``/``F.hardtanh``/``F.gelu``/``F.hardswish`` call (``nn.ReLU`` and friends call
these; torchvision's GoogLeNet and Inception call ``F.relu`` directly) becomes a function with
that gradient, per image of the batch. The renderer uses it for its first steps only
(``RenderSettings.redirect_steps``), so later steps cost what they did.

GELU and Hardswish are almost never exactly flat, so "zero" is read as "under 1e-3 of the
redirected gradient's norm": a vanishing gradient is redirected too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_TINY = 1e-3


def _normal_grad(kind: str, x: torch.Tensor, grad: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor:
    if kind == "relu":
        return grad * (x > 0)
    if kind == "hardtanh":
        low, high = args
        return grad * ((x > low) & (x < high))
    if kind == "gelu":
        return torch.ops.aten.gelu_backward(grad, x, approximate=args[0])
    return torch.ops.aten.hardswish_backward(grad, x)


def _flat_low(kind: str, x: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor:
    """Where the input lies in the low flat (or vanishing) region."""
    if kind == "hardtanh":
        return x <= args[0]
    if kind == "hardswish":
        return x <= -3
    return x <= 0


class _Redirected(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, args: tuple[Any, ...]) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind, ctx.args = kind, args
        if kind == "relu":
            return torch.relu(x)
        if kind == "hardtanh":
            return torch.clamp(x, *args)
        if kind == "gelu":
            return F.gelu(x, approximate=args[0])
        return F.hardswish(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        normal = _normal_grad(ctx.kind, x, grad, ctx.args)
        # grad > 0 asks to lower the input (the loss is minimized): refused where it is already low.
        deeper = _flat_low(ctx.kind, x, ctx.args) & (grad > 0)
        if ctx.kind == "hardtanh":
            deeper = deeper | ((x >= ctx.args[1]) & (grad < 0))
        redirected = torch.where(deeper, torch.zeros_like(grad), grad)
        if ctx.kind in ("gelu", "hardswish"):  # pass-through only in the flat region
            redirected = torch.where(_flat_low(ctx.kind, x, ctx.args), redirected, normal)
        n = x.shape[0] if x.dim() > 1 else 1
        normal_mag = normal.reshape(n, -1).norm(dim=1)
        redirected_mag = redirected.reshape(n, -1).norm(dim=1)
        use_normal = (normal_mag > _TINY * redirected_mag).view(n, *([1] * (x.dim() - 1)))
        return torch.where(use_normal, normal, redirected), None, None


def _relu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return _Redirected.apply(x, "relu", ())


def _relu6(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return _Redirected.apply(x, "hardtanh", (0.0, 6.0))


def _hardtanh(x: torch.Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> torch.Tensor:
    return _Redirected.apply(x, "hardtanh", (float(min_val), float(max_val)))


def _gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    return _Redirected.apply(x, "gelu", (approximate,))


def _hardswish(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return _Redirected.apply(x, "hardswish", ())


_REPLACEMENTS: dict[Callable[..., Any], Callable[..., torch.Tensor]] = {
    F.relu: _relu,
    torch.relu: _relu,
    torch.Tensor.relu: _relu,
    F.relu6: _relu6,
    F.hardtanh: _hardtanh,
    F.gelu: _gelu,
    F.hardswish: _hardswish,
}


class redirected(TorchFunctionMode):
    """Within this context, ReLU-like calls on tensors that need a gradient get the redirected
    gradient. Returns new tensors (an ``inplace=True`` call does not modify its input)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        replacement = _REPLACEMENTS.get(func)
        if replacement is not None and args and isinstance(args[0], torch.Tensor) and args[0].requires_grad:
            return replacement(*args, **kwargs)
        return func(*args, **kwargs)
