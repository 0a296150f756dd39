"""The units an objective can target: a channel, a neuron, a class token, a whole layer
(DeepDream), a class logit, a direction in activation space, and the batch objectives (one
channel per image; diversity)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...errors import ChannelRangeError, InvalidSettingError
from ..layers.access import LayerInfo
from ..layers.layouts import TOKENS
from ..layers.model_info import LOGITS
from .base import Context, Objective


def _check_index(value: int, size: int, what: str, layer: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        plural = what + ("es" if what.endswith("s") else "s")
        raise ChannelRangeError(
            f"{what} {value!r} is out of range for layer {layer!r}: valid {plural} are 0 to {size - 1}."
        )


def _check_batch(batch_index: int | None, batch: int) -> None:
    if batch_index is not None and not 0 <= batch_index < batch:
        raise ChannelRangeError(f"batch index {batch_index} is out of range: the batch has images 0 to {batch - 1}.")


def _only(values: torch.Tensor, batch_index: int | None) -> torch.Tensor:
    """Keep the value of one image of the batch (others 0), or all when batch_index is None."""
    if batch_index is None:
        return values
    mask = torch.zeros_like(values)
    mask[batch_index] = 1
    return values * mask


@dataclass(frozen=True, eq=True)
class _Unit(Objective):
    """Shared fields of single-layer objectives."""

    layer: str

    @property
    def layers(self) -> frozenset[str]:
        return frozenset({self.layer})


@dataclass(frozen=True, eq=True, repr=False)
class Channel(_Unit):
    """Mean activation of one channel over all positions (Olah et al.'s "channel")."""

    channel: int = 0
    batch: int | None = None

    def __call__(self, ctx: Context) -> torch.Tensor:
        act = ctx.spatial(self.layer)
        return _only(act[:, self.channel].mean(dim=(1, 2)), self.batch)

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        super().check(layers, batch)
        _check_index(self.channel, layers[self.layer].channels, "channel", self.layer)
        _check_batch(self.batch, batch)

    def __repr__(self) -> str:
        extra = f", batch={self.batch}" if self.batch is not None else ""
        return f"Channel({self.layer!r}, {self.channel}{extra})"


@dataclass(frozen=True, eq=True, repr=False)
class Neuron(_Unit):
    """One channel at one position: (x, y), or the centre when they are None."""

    channel: int = 0
    x: int | None = None
    y: int | None = None
    batch: int | None = None

    def __call__(self, ctx: Context) -> torch.Tensor:
        act = ctx.spatial(self.layer)
        h, w = act.shape[-2:]
        y = h // 2 if self.y is None else min(self.y, h - 1)
        x = w // 2 if self.x is None else min(self.x, w - 1)
        return _only(act[:, self.channel, y, x], self.batch)

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        super().check(layers, batch)
        info = layers[self.layer]
        _check_index(self.channel, info.channels, "channel", self.layer)
        if info.grid is not None:
            h, w = info.grid
            if self.x is not None:
                _check_index(self.x, w, "x position", self.layer)
            if self.y is not None:
                _check_index(self.y, h, "y position", self.layer)
        _check_batch(self.batch, batch)

    def __repr__(self) -> str:
        pos = f", x={self.x}, y={self.y}" if self.x is not None or self.y is not None else ""
        extra = f", batch={self.batch}" if self.batch is not None else ""
        return f"Neuron({self.layer!r}, {self.channel}{pos}{extra})"


@dataclass(frozen=True, eq=True, repr=False)
class ClassToken(_Unit):
    """One channel of a transformer's class token (``token`` 0), or of another prefix token
    (registers, distillation): what a ViT's head reads."""

    channel: int = 0
    token: int = 0
    batch: int | None = None

    def __call__(self, ctx: Context) -> torch.Tensor:
        return _only(ctx.prefix(self.layer)[:, self.token, self.channel], self.batch)

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        super().check(layers, batch)
        info = layers[self.layer]
        if info.layout != TOKENS or info.prefix_tokens == 0:
            raise InvalidSettingError(
                f"Layer {self.layer!r} has no class token (layout {info.layout}, "
                f"{info.prefix_tokens} prefix tokens); class-token objectives need a transformer's token layer."
            )
        _check_index(self.token, info.prefix_tokens, "prefix token", self.layer)
        _check_index(self.channel, info.channels, "channel", self.layer)
        _check_batch(self.batch, batch)

    def __repr__(self) -> str:
        extra = f", token={self.token}" if self.token else ""
        extra += f", batch={self.batch}" if self.batch is not None else ""
        return f"ClassToken({self.layer!r}, {self.channel}{extra})"


@dataclass(frozen=True, eq=True, repr=False)
class DeepDream(_Unit):
    """Mean squared activation of a whole layer: amplifies whatever the layer already sees."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        act = ctx.spatial(self.layer)
        return act.pow(2).mean(dim=(1, 2, 3))

    def __repr__(self) -> str:
        return f"DeepDream({self.layer!r})"


@dataclass(frozen=True, eq=True, repr=False)
class ClassLogit(_Unit):
    """The logit (pre-softmax score) of one class."""

    klass: int = 0
    batch: int | None = None

    def __init__(self, klass: int, layer: str = LOGITS, batch: int | None = None) -> None:
        object.__setattr__(self, "layer", layer)
        object.__setattr__(self, "klass", klass)
        object.__setattr__(self, "batch", batch)

    def __call__(self, ctx: Context) -> torch.Tensor:
        act = ctx.activations[self.layer].flatten(1)
        return _only(act[:, self.klass], self.batch)

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        super().check(layers, batch)
        size = math.prod(layers[self.layer].shape)
        _check_index(self.klass, size, "class", self.layer)
        _check_batch(self.batch, batch)

    def __repr__(self) -> str:
        layer = "" if self.layer == LOGITS else f", layer={self.layer!r}"
        extra = f", batch={self.batch}" if self.batch is not None else ""
        return f"ClassLogit({self.klass}{layer}{extra})"


class Direction(Objective):
    """A direction in a layer's channel space: the mean over positions of the dot product of
    the activation vector with ``vector`` (normalized to unit length). With ``cossim_power``
    p > 0 the dot product is multiplied by cos(angle)^p, favouring the direction over the norm."""

    layers: frozenset[str]

    def __init__(
        self,
        layer: str,
        vector: Sequence[float] | torch.Tensor,
        *,
        cossim_power: float = 0.0,
        batch: int | None = None,
    ) -> None:
        v = torch.as_tensor(vector, dtype=torch.float32).flatten()
        if v.numel() == 0 or not torch.isfinite(v).all() or float(v.norm()) == 0:
            raise InvalidSettingError("A direction vector must be non-empty, finite and not all zeros.")
        self.layer = layer
        self.vector = v / v.norm()
        self.cossim_power = float(cossim_power)
        self.batch = batch
        self.layers = frozenset({layer})

    def __call__(self, ctx: Context) -> torch.Tensor:
        act = ctx.spatial(self.layer)
        v = self.vector.to(act.device, act.dtype)
        dot = torch.einsum("nchw,c->nhw", act, v)
        if self.cossim_power:
            cos = dot / act.norm(dim=1).clamp_min(1e-6)
            dot = dot * cos.clamp_min(0.1) ** self.cossim_power
        return _only(dot.mean(dim=(1, 2)), self.batch)

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        super().check(layers, batch)
        channels = layers[self.layer].channels
        if self.vector.numel() != channels:
            raise InvalidSettingError(
                f"Direction vector has {self.vector.numel()} values but layer {self.layer!r} has {channels} channels."
            )
        _check_batch(self.batch, batch)

    @classmethod
    def random(cls, layer: str, channels: int, seed: int = 0, **kw: object) -> Direction:
        """A seeded random unit vector in a layer's channel space (Gaussian, so uniform on the sphere)."""
        g = torch.Generator().manual_seed(int(seed))
        return cls(layer, torch.randn(channels, generator=g), **kw)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        values = ", ".join(f"{v:.6g}" for v in self.vector.tolist())
        extra = f", cossim_power={self.cossim_power:g}" if self.cossim_power else ""
        extra += f", batch={self.batch}" if self.batch is not None else ""
        return f"Direction({self.layer!r}, [{values}]{extra})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Direction)
            and self.layer == other.layer
            and self.batch == other.batch
            and self.cossim_power == other.cossim_power
            and torch.equal(self.vector, other.vector)
        )

    def __hash__(self) -> int:
        return hash((self.layer, self.batch, self.cossim_power, tuple(self.vector.tolist())))


@dataclass(frozen=True, eq=True, repr=False)
class BatchChannels(_Unit):
    """Image i of the batch maximizes channel ``channels[i]``: many channels rendered in one batch."""

    channels: tuple[int, ...] = ()

    def __call__(self, ctx: Context) -> torch.Tensor:
        act = ctx.spatial(self.layer)
        idx = torch.as_tensor(self.channels, device=act.device)
        rows = torch.arange(act.shape[0], device=act.device)
        return act[rows, idx].mean(dim=(1, 2))

    def check(self, layers: Mapping[str, LayerInfo], batch: int) -> None:
        super().check(layers, batch)
        if len(self.channels) != batch:
            raise InvalidSettingError(f"BatchChannels has {len(self.channels)} channels for a batch of {batch} images.")
        for c in self.channels:
            _check_index(c, layers[self.layer].channels, "channel", self.layer)

    def __repr__(self) -> str:
        return f"BatchChannels({self.layer!r}, {tuple(self.channels)!r})"


@dataclass(frozen=True, eq=True, repr=False)
class Diversity(_Unit):
    """Lucid's diversity term: minus the mean cosine similarity between each image's Gram
    matrix at ``layer`` and the others'. Add it (weighted) to push a batch apart."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        act = ctx.spatial(self.layer)
        n, c = act.shape[:2]
        if n < 2:
            return act.new_zeros(n)
        flat = act.reshape(n, c, -1)
        gram = F.normalize((flat @ flat.transpose(1, 2)).reshape(n, -1), dim=1)
        sim = gram @ gram.T
        return -(sim.sum(1) - sim.diagonal()) / (n - 1)

    def __repr__(self) -> str:
        return f"Diversity({self.layer!r})"
