"""Objectives: what the optimization maximizes — the base class, the context it reads and the
algebra.

Each objective is a small immutable class. Called with a :class:`Context` (the captured layer
outputs and the current image) it returns one value per image in the batch, shape (N,); the
renderer maximizes their sum. ``layers`` names the layer outputs it needs, so the forward pass
can stop at the deepest of them.

Algebra: ``a + b``, ``a - b``, ``k * a``, ``a / k``, ``-a`` and ``sum([...])`` build a flat
:class:`Sum` of (weight, objective) terms. Weights multiply only their own term (Xplique and
dreamlens compound them across terms), and no operation changes its operands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...errors import InvalidSettingError, unknown_layer
from ..layers.access import LayerInfo
from ..layers.layouts import to_nchw


@dataclass
class Context:
    """What an objective sees: captured outputs by layer name, the untransformed image and,
    from the renderer, the layers' LayerInfo (their layouts)."""

    activations: Mapping[str, torch.Tensor]
    image: torch.Tensor
    layers: Mapping[str, LayerInfo] | None = None

    @property
    def batch(self) -> int:
        return self.image.shape[0]

    def spatial(self, layer: str) -> torch.Tensor:
        """The layer's output as (N, C, H, W) on its true channel axis (a view): patch tokens
        as their grid, channels-last maps permuted, vectors 1x1. Without LayerInfo, guessed
        from the shape (``as_spatial``)."""
        act = self.activations[layer]
        info = self.layers.get(layer) if self.layers is not None else None
        if info is None:
            return as_spatial(act)
        return to_nchw(act, info.layout, info.prefix_tokens, layer)

    def prefix(self, layer: str) -> torch.Tensor:
        """The class/register tokens of a token layer, (N, P, C)."""
        act = self.activations[layer]
        info = self.layers.get(layer) if self.layers is not None else None
        prefix = info.prefix_tokens if info is not None else (1 if act.dim() == 3 else 0)
        return act[:, :prefix]


def as_spatial(act: torch.Tensor) -> torch.Tensor:
    """Any layer output as (N, C, H, W): (N, C) becomes 1x1; transformer tokens (N, L, C)
    become a grid (dropping a class token when L - 1 is a square), else a column of L."""
    if act.dim() == 4:
        return act
    if act.dim() == 2:
        return act[:, :, None, None]
    if act.dim() == 3:
        n, length, c = act.shape
        for drop in (1, 0):
            side = math.isqrt(length - drop)
            if side * side == length - drop and side > 0:
                return act[:, drop:].transpose(1, 2).reshape(n, c, side, side)
        return act.transpose(1, 2)[..., None]
    raise InvalidSettingError(
        f"Layer output has shape {tuple(act.shape)}; objectives need (N, C, H, W), (N, C) or tokens (N, L, C)."
    )


class Objective:
    """Base class. Subclasses set ``layers`` and implement ``__call__`` and ``__repr__``."""

    if TYPE_CHECKING:
        # Read-only for the type checker, so that a subclass may provide it as a property
        # (``_Unit``) or as an attribute it assigns (``Sum``, ``Direction``, ``PerImage``, which
        # declare it). At run time it stays a plain class attribute, so ``self.layers = ...``
        # keeps working in any subclass.
        @property
        def layers(self) -> frozenset[str]:
            """The names of the layer outputs this objective reads."""
            ...
    else:
        layers: frozenset[str] = frozenset()

    def __call__(self, ctx: Context) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        """Raise a clear error when this objective cannot apply to these layers or batch size."""
        for name in self.layers:
            if name not in layers:
                raise unknown_layer(name, list(layers))

    # --- algebra: every operation returns a new flat Sum --------------------------------------
    def terms(self) -> tuple[tuple[float, Objective], ...]:
        return ((1.0, self),)

    def __add__(self, other: object) -> Objective:
        if isinstance(other, (int, float)) and other == 0:
            return self  # makes sum([...]) start cleanly
        if not isinstance(other, Objective):
            return NotImplemented
        return Sum(self.terms() + other.terms())

    __radd__ = __add__

    def __mul__(self, k: object) -> Objective:
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            return NotImplemented
        return Sum(tuple((w * float(k), o) for w, o in self.terms()))

    __rmul__ = __mul__

    def __truediv__(self, k: object) -> Objective:
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            return NotImplemented
        return self * (1.0 / float(k))

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: object) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)


class Sum(Objective):
    """A weighted sum of objectives: sum of w_i * o_i, each weight applied to its term only."""

    layers: frozenset[str]

    def __init__(self, terms: Sequence[tuple[float, Objective]]) -> None:
        flat: list[tuple[float, Objective]] = []
        for w, o in terms:
            flat.extend((w * w2, o2) for w2, o2 in o.terms())
        self._terms = tuple(flat)
        self.layers = frozenset().union(*(o.layers for _, o in flat))

    def terms(self) -> tuple[tuple[float, Objective], ...]:
        return self._terms

    def __call__(self, ctx: Context) -> torch.Tensor:
        total = None
        for w, o in self._terms:
            value = w * o(ctx)
            total = value if total is None else total + value
        assert total is not None
        return total

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        for _, o in self._terms:
            o.check(layers, batch)

    def __repr__(self) -> str:
        parts = []
        for i, (w, o) in enumerate(self._terms):
            sign = "-" if w < 0 else "+"
            mag = abs(w)
            body = repr(o) if mag == 1 else f"{mag:g} * {o!r}"
            parts.append(("-" + body if sign == "-" else body) if i == 0 else f" {sign} {body}")
        return "".join(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sum) and self._terms == other._terms

    def __hash__(self) -> int:
        return hash(self._terms)
