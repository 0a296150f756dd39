"""The image's optimizer is torch.optim.Adam, fused where the kernel runs (the pictures depend
on its rounding)."""

from __future__ import annotations

import pytest
import torch

from featviz_widgets.engine.core import optim


def _run(make, lrs: list[float]) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    params = [
        torch.randn(3, 8, 5, 2, generator=gen).requires_grad_(True),
        torch.randn(4, generator=gen).requires_grad_(True),
    ]
    opt = make(params)
    for step, lr in enumerate(lrs):
        opt.param_groups[0]["lr"] = lr  # changed live, as Renderer.update does
        opt.zero_grad(set_to_none=True)
        loss = (params[0].sin() * (step + 1)).sum() + (params[1] ** 3).sum()
        if step == 2:  # a step where one tensor gets no gradient
            loss = (params[0].sin() * (step + 1)).sum()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in params]


def test_adam_is_torch_optims_fused_adam_on_cpu() -> None:
    lrs = [0.1, 0.1, 0.05, 0.3, 0.15, 0.15]
    ours = _run(lambda ps: optim.adam(ps, 0.1, (0.5, 0.999)), lrs)
    fused = _run(lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.999), fused=True), lrs)
    for a, b in zip(ours, fused, strict=True):
        assert torch.equal(a, b)
    opt = optim.adam([torch.ones(3, requires_grad=True)], 0.1, (0.5, 0.999))
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["fused"]


def test_adam_falls_back_to_the_unfused_kernel_where_the_fused_one_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_step = torch.optim.Adam.step

    def step(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        if self.defaults.get("fused"):
            raise NotImplementedError("Could not run 'aten::_fused_adam_' with arguments from the 'CPU' backend")
        return real_step(self, *args, **kwargs)

    optim.fused_kernel_runs.cache_clear()
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    try:
        p = torch.ones(3, requires_grad=True)
        opt = optim.adam([p], 0.1, (0.5, 0.999))
        assert not opt.defaults["fused"]
        p.sum().backward()
        opt.step()
        assert bool((p.detach() < 1).all())
    finally:
        optim.fused_kernel_runs.cache_clear()  # the real kernel again for later tests
