"""Running torch-lucent 0.1.8 on a model the engine also uses, without leaving hooks behind.

Lucent's ``render_vis`` registers a forward hook on every module of the model and never removes
them. The benchmarks hand Lucent the engine's own model object (same network, side by side), so
each Lucent run would leave ~400 more hooks that every later pass of the engine, the floor and
Lucent itself runs through, slowing every column (figures: docs/decisions.md, "Benchmarking against
Lucent without its hooks"). ``render_vis`` below restores the model's hooks as they were before the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn


@contextmanager
def hooks_restored(model: nn.Module) -> Iterator[None]:
    """Whatever forward hooks the body adds to ``model``'s modules are gone afterwards."""
    saved = {m: dict(m._forward_hooks) for m in model.modules()}
    try:
        yield
    finally:
        for module, hooks in saved.items():
            module._forward_hooks.clear()
            module._forward_hooks.update(hooks)


def render_vis(model: nn.Module, objective: str, **kwargs: Any) -> Any:
    """``lucent.optvis.render.render_vis`` that leaves ``model`` as it found it."""
    from lucent.optvis import render

    with hooks_restored(model):
        return render.render_vis(model, objective, **kwargs)
