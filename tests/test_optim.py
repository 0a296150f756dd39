"""The engine's Adam against torch.optim's: the same kernel, so the same bits."""

from __future__ import annotations

import pytest
import torch

from featviz_widgets.engine.optim import FusedAdam, adam


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
        if step == 2:  # a step where one tensor gets no gradient: torch.optim skips it too
            loss = (params[0].sin() * (step + 1)).sum()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in params]


def test_fused_adam_matches_torch_optim_adam_bitwise() -> None:
    lrs = [0.1, 0.1, 0.05, 0.3, 0.15, 0.15]
    ours = _run(lambda ps: FusedAdam(ps, lr=0.1, betas=(0.5, 0.999)), lrs)
    reference = _run(lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.999), fused=True), lrs)
    for a, b in zip(ours, reference, strict=True):
        assert torch.equal(a, b)
    unfused = _run(lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.999)), lrs)
    for a, b in zip(ours, unfused, strict=True):
        torch.testing.assert_close(a, b)


def test_adam_picks_the_fused_kernel_on_cpu_and_keeps_zero_grad_semantics() -> None:
    p = torch.ones(3, requires_grad=True)
    opt = adam([p], 0.1, (0.5, 0.999))
    assert isinstance(opt, FusedAdam)
    p.sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and torch.equal(p.grad, torch.zeros(3))
    opt.step()  # a zero gradient moves nothing
    assert torch.equal(p.detach(), torch.ones(3))
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no gradient at all: nothing to do
    assert torch.equal(p.detach(), torch.ones(3))


def test_adam_falls_back_to_torch_optim_where_the_fused_kernel_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from featviz_widgets.engine import optim

    def missing(*args, **kwargs):
        raise NotImplementedError("Could not run 'aten::_fused_adam_' with arguments from the 'CPU' backend")

    optim._fused_kernel_runs.cache_clear()
    monkeypatch.setattr(torch, "_fused_adam_", missing)
    try:
        opt = adam([torch.ones(3, requires_grad=True)], 0.1, (0.5, 0.999))
        assert isinstance(opt, torch.optim.Adam)
    finally:
        optim._fused_kernel_runs.cache_clear()  # the real kernel again for later tests
