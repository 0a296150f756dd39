"""Adam for the image parameters, without ``torch.optim``'s per-step Python bookkeeping.

The engine optimizes one or two small tensors (a few hundred KB) with one learning rate. For
them ``torch.optim.Adam(fused=True)`` spends more time sorting its tensors by device and dtype,
checking graph-capture state and building per-group lists than in its fused kernel (a few
percent of a step at an early layer on a CPU; docs/decisions.md). ``FusedAdam`` keeps the state
tensors itself and calls the same kernel (``torch._fused_adam_``) directly, so its updates are
bitwise those of ``torch.optim.Adam(fused=True)`` (tests/test_optim.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Protocol

import torch


class ImageOptimizer(Protocol):
    """What the renderer needs of an optimizer: a learning rate to change live, and steps."""

    param_groups: list[dict[str, Any]]

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def step(self) -> Any: ...


class FusedAdam:
    """Adam (no weight decay, no amsgrad) on tensors of one CPU or CUDA device."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float], eps: float = 1e-8):
        self.params = list(params)
        self.param_groups = [{"lr": float(lr)}]  # the field torch.optim users change live
        self.betas, self.eps = betas, eps
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        # The fused kernel counts steps in float32 tensors on the parameters' device, as torch.optim does.
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params if p.grad is not None]  # all of them: params are the live ones
        steps = [self.steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            grads,
            [self.exp_avgs[i] for i in live],
            [self.exp_avg_sqs[i] for i in live],
            [],
            steps,
            lr=self.param_groups[0]["lr"],
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )


def adam(params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float]) -> ImageOptimizer:
    """``FusedAdam`` where PyTorch has the fused kernel for the parameters' device (CUDA; CPU
    from torch 2.4), ``torch.optim.Adam`` elsewhere."""
    params = list(params)
    devices = {p.device for p in params}
    if len(devices) == 1 and _fused_kernel_runs(next(iter(devices))):
        return FusedAdam(params, lr, betas)
    return torch.optim.Adam(params, lr=lr, betas=betas)


@functools.cache
def _fused_kernel_runs(device: torch.device) -> bool:
    # One step on a one-element tensor: older torch releases (and MPS, XPU...) lack the kernel.
    if device.type not in ("cpu", "cuda") or not hasattr(torch, "_fused_adam_"):
        return False
    p = torch.zeros(1, device=device, requires_grad=True)
    p.grad = torch.ones(1, device=device)
    try:
        FusedAdam([p], lr=0.1, betas=(0.9, 0.999)).step()
    except (RuntimeError, NotImplementedError, TypeError):
        return False
    return bool(torch.isfinite(p).all())
