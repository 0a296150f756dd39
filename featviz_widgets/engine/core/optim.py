"""The image's optimizer: ``torch.optim.Adam``, with its fused kernel where PyTorch has one for
the parameters' device (CUDA; CPU from torch 2.4).

A hand-written Adam calling ``torch._fused_adam_`` directly used to skip torch.optim's per-step
bookkeeping; measured side by side the saving was within the noise, so the plain optimizer is
used (see docs/decisions.md, "The optimizer: torch.optim's Adam again"). The fused kernel stays because the pictures
depend on it: its rounding differs from the unfused one in the last bits, and Adam magnifies such
differences within a few steps.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch


def adam(params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam on the image parameters, fused where the kernel runs on their device."""
    params = list(params)
    devices = {p.device for p in params}
    fused = len(devices) == 1 and fused_kernel_runs(next(iter(devices)))
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


@functools.cache
def fused_kernel_runs(device: torch.device) -> bool:
    """Whether torch.optim's fused Adam kernel runs on ``device``, tried once per device (one step
    on a one-element tensor: older torch releases, MPS, XPU... lack it); ``cache_clear()`` tries
    again."""
    if device.type not in ("cpu", "cuda"):
        return False
    p = torch.zeros(1, device=device, requires_grad=True)
    p.grad = torch.ones(1, device=device)
    try:
        torch.optim.Adam([p], lr=0.1, fused=True).step()
    except (RuntimeError, NotImplementedError, TypeError):
        return False
    return bool(torch.isfinite(p).all())


__all__ = ["adam", "fused_kernel_runs"]
