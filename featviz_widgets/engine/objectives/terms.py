"""Objectives: what the optimization maximizes.

Each objective is a small immutable class. Called with a :class:`Context` (the captured layer
outputs and the current image) it returns one value per image in the batch, shape (N,); the
renderer maximizes their sum. ``layers`` names the layer outputs it needs, so the forward pass
can stop at the deepest of them.

Algebra: ``a + b``, ``a - b``, ``k * a``, ``a / k``, ``-a`` and ``sum([...])`` build a flat
:class:`Sum` of (weight, objective) terms. Weights multiply only their own term (Xplique and
dreamlens compound them across terms), and no operation changes its operands.

Penalties (``L1``, ``TotalVariation``, ``BlurPenalty``) return positive magnitudes, to be
subtracted: ``Channel("blocks.8", 5) - 0.05 * L1()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ...errors import ChannelRangeError, InvalidSettingError, ObjectiveSyntaxError, unknown_layer
from ..layers.access import LayerInfo
from ..layers.layouts import TOKENS, to_nchw
from ..models.loaders import LOGITS


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


class ImagePenalty(Objective):
    """A penalty on the untransformed image (needs no layer)."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class L1(ImagePenalty):
    """Mean |image - constant|: pulls pixels toward grey."""

    def __init__(self, constant: float = 0.5) -> None:
        self.constant = float(constant)

    def __call__(self, ctx: Context) -> torch.Tensor:
        return (ctx.image - self.constant).abs().mean(dim=(1, 2, 3))

    def __repr__(self) -> str:
        return "L1()" if self.constant == 0.5 else f"L1({self.constant:g})"


class TotalVariation(ImagePenalty):
    """Mean absolute difference between neighbouring pixels: penalizes high-frequency noise."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        img = ctx.image
        dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean(dim=(1, 2, 3))
        dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean(dim=(1, 2, 3))
        return dx + dy

    def __repr__(self) -> str:
        return "TotalVariation()"


class BlurPenalty(ImagePenalty):
    """Half the mean squared distance to a blurred copy of the image (held constant): the
    gradient nudges the image toward its blur, Lucid's ``blur_input_each_step``."""

    def __call__(self, ctx: Context) -> torch.Tensor:
        img = ctx.image
        kernel = torch.tensor([1.0, 2.0, 1.0], device=img.device, dtype=img.dtype) / 4
        k2 = (kernel[:, None] * kernel[None, :]).expand(img.shape[1], 1, 3, 3)
        with torch.no_grad():
            blurred = F.conv2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), k2, groups=img.shape[1])
        return 0.5 * (img - blurred).pow(2).mean(dim=(1, 2, 3))

    def __repr__(self) -> str:
        return "BlurPenalty()"


# --- parsing -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)\s*\*"
    r"|(?P<op>[+-])"
    r"|(?P<atom>[A-Za-z0-9_][\w.]*(?::\d+(?:@(?:\d+,\d+|cls))?)?))"
)
GRAMMAR = (
    "'layer' (DeepDream), 'layer:channel', 'layer:channel@x,y' (neuron), 'layer:channel@cls' "
    "(class token), 'logits:class', "
    "combined with + and - and optional 'weight*' prefixes, e.g. 'blocks.8:5 - 0.5*blocks.8:7'"
)


def _atom(text: str, logits_layer: str) -> Objective:
    layer, _, rest = text.partition(":")
    if not rest:
        return DeepDream(layer)
    index, _, pos = rest.partition("@")
    if pos == "cls":
        return ClassToken(layer, int(index))
    if pos:
        x, y = (int(v) for v in pos.split(","))
        return Neuron(layer, int(index), x=x, y=y)
    if layer == logits_layer:
        return ClassLogit(int(index), layer=layer)
    return Channel(layer, int(index))


def parse_objective(text: str, logits_layer: str = LOGITS) -> Objective:
    """Parse an objective string (never evaluated as code). Grammar: see ``GRAMMAR``."""
    if not isinstance(text, str) or not text.strip():
        raise ObjectiveSyntaxError(f"Empty objective. Valid forms: {GRAMMAR}.")
    pos, sign, weight = 0, 1.0, None
    terms: list[tuple[float, Objective]] = []
    expect_term = True
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            raise ObjectiveSyntaxError(
                f"Cannot parse objective {text!r} at character {pos + 1} ({stripped[pos : pos + 10]!r}). Valid forms: {GRAMMAR}."
            )
        pos = m.end()
        if m.group("op"):
            if not expect_term:
                sign, expect_term = (1.0 if m.group("op") == "+" else -1.0), True
            elif weight is None and m.group("op") == "-":
                sign = -sign
            else:
                raise ObjectiveSyntaxError(
                    f"Unexpected {m.group('op')!r} in objective {text!r}. Valid forms: {GRAMMAR}."
                )
        elif m.group("num"):
            if not expect_term or weight is not None:
                raise ObjectiveSyntaxError(f"Unexpected weight in objective {text!r}. Valid forms: {GRAMMAR}.")
            weight = float(m.group("num"))
        else:
            if not expect_term:
                raise ObjectiveSyntaxError(
                    f"Missing + or - between terms in objective {text!r}. Valid forms: {GRAMMAR}."
                )
            terms.append((sign * (1.0 if weight is None else weight), _atom(m.group("atom"), logits_layer)))
            sign, weight, expect_term = 1.0, None, False
    if expect_term:
        raise ObjectiveSyntaxError(f"Objective {text!r} ends without a term. Valid forms: {GRAMMAR}.")
    if len(terms) == 1 and terms[0][0] == 1.0:
        return terms[0][1]
    return Sum(terms)


def as_objective(obj: Objective | str, logits_layer: str = LOGITS) -> Objective:
    if isinstance(obj, Objective):
        return obj
    if isinstance(obj, str):
        return parse_objective(obj, logits_layer)
    raise ObjectiveSyntaxError(f"An objective must be an Objective or a string ({GRAMMAR}), not {type(obj).__name__}.")
