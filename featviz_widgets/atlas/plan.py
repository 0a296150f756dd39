"""What an atlas renders: the units of each layer cut into fixed chunks, and the key that
names a tile's settings.

A chunk is a fixed range of one layer's units (``[start, stop)`` with ``start`` a multiple of
the chunk size), so a unit always renders in the same batch: image i of a batch draws its own
noise and transforms from the batch's seed, so the same unit in another batch composition
would give other pixels. A chunk is the unit of work (one task on Ray) and of completion (its
tiles are written, then the chunk is recorded as done).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..engine import BatchChannels, ClassLogit, FeatvizModel, Objective, RenderSettings, layer_info, main_layers
from ..engine.core import check_int
from ..engine.explore import PerImage
from ..engine.models import LOGITS
from ..errors import InvalidSettingError, excerpt

# Bump when a change to the rendering makes old tiles stale. 3: the default views zoom out too
# (TransformConfig.scale 0.2) and the default spectrum is 1/f^1.5, tilted (2026-12-07).
FORMAT = 3


@dataclass(frozen=True)
class AtlasSettings:
    """Everything that decides a tile's pixels apart from the model and the unit.

    ``render`` holds further :class:`RenderSettings` fields (``lr``, ``tv``, ``transform_strength``...)
    as sorted (name, value) pairs. ``threads`` is the CPU thread count every chunk renders with:
    a convolution's rounding depends on it, so it is part of the key."""

    steps: int = 128
    size: int = 128
    seed: int = 0
    chunk: int = 16
    threads: int = 1
    device: str = "cpu"
    render: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1, 100_000)
        check_int("chunk", self.chunk, 1, 1024)
        check_int("threads", self.threads, 1, 4096)
        extra = dict(self.render)
        for name in ("size", "seed", "batch"):
            if name in extra:
                raise InvalidSettingError(f"{name!r} is an atlas setting of its own, not a render setting.")
        self.render_settings(1)  # validates size, seed and the render fields once, here

    def render_settings(self, batch: int) -> RenderSettings:
        return RenderSettings().replace(size=self.size, seed=self.seed, batch=batch, **dict(self.render))

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the manifest (a ``transform`` as a dict; ``from_dict`` reads it back)."""
        d = dataclasses.asdict(self)  # converts a TransformConfig inside ``render`` too
        d["render"] = dict(d["render"])
        return d

    @classmethod
    def from_dict(cls, data: Any) -> AtlasSettings:
        """The settings ``as_dict`` wrote (a manifest's), validated again; anything else is refused
        with an ``InvalidSettingError``, never taken in part."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != names or not isinstance(data["render"], dict):
            raise InvalidSettingError(
                f"An atlas's settings are a mapping of {sorted(names)} with 'render' a mapping; got {excerpt(data)}."
            )
        render = dict(data["render"])
        try:
            if "transform" in render:  # read as a saved PNG's transform is (RenderSettings.from_dict)
                render["transform"] = RenderSettings.from_dict({"transform": render["transform"]}).transform
            return cls(**{**data, "render": tuple(sorted(render.items()))})
        except InvalidSettingError:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidSettingError(f"These atlas settings cannot be read back ({exc}): {excerpt(data)}.") from None


@dataclass(frozen=True)
class Chunk:
    """Units ``[start, stop)`` of ``layer``; ``kind`` is "channel" or "class" (logits)."""

    layer: str
    kind: str
    start: int
    stop: int

    @property
    def units(self) -> range:
        return range(self.start, self.stop)

    @property
    def name(self) -> str:
        return f"{self.start:05d}-{self.stop:05d}"

    def objective(self) -> Objective:
        if self.kind == "class":
            return PerImage([ClassLogit(u, layer=self.layer) for u in self.units])
        return BatchChannels(self.layer, tuple(self.units))


@dataclass(frozen=True)
class LayerPlan:
    name: str
    kind: str
    units: int  # planned (all, or the first ``limit`` in whole chunks)
    chunks: tuple[Chunk, ...] = field(default=())
    total: int = 0  # the layer's units


def default_layers(model: FeatvizModel, logits: bool = False) -> list[str]:
    """The model's main layers (the logits only when asked: they are classes, not channels)."""
    return [i.name for i in main_layers(model) if i.name != LOGITS or logits]


def plan_layers(model: FeatvizModel, layers: Sequence[str], chunk: int, limit: int | None = None) -> list[LayerPlan]:
    """One LayerPlan per layer (validated: UnknownLayerError names the valid ones). ``limit``:
    only the first ``limit`` units of each layer, rounded up to whole chunks (a preview; the
    same tiles as the full atlas's, which finishes them under the same key)."""
    if not layers:
        raise InvalidSettingError("An atlas needs at least one layer.")
    if len(set(layers)) != len(layers):
        raise InvalidSettingError(f"Layers listed twice: {sorted({x for x in layers if list(layers).count(x) > 1})}.")
    if limit is not None:
        limit = check_int("max_units", limit, 1, 10**9)
    plans = []
    for name in layers:
        info = layer_info(model, name)
        kind = "class" if name == LOGITS or not info.is_spatial else "channel"
        total = info.channels if kind == "channel" else int(torch.Size(info.shape).numel())
        units = total if limit is None else min(total, -(-limit // chunk) * chunk)
        chunks = tuple(Chunk(name, kind, s, min(s + chunk, units)) for s in range(0, units, chunk))
        plans.append(LayerPlan(name, kind, units, chunks, total))
    return plans


def _describe(value: Any, depth: int = 0) -> str:
    """A stable text for a module attribute: values as repr, tensors by their bytes, functions
    by their code, other objects by their type (never an address)."""
    if depth > 4:
        return type(value).__qualname__
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, torch.dtype, torch.device)):
        return repr(value)
    if isinstance(value, torch.Tensor):
        return f"tensor:{value.dtype}:{tuple(value.shape)}:" + hashlib.sha256(_tensor_bytes(value)).hexdigest()
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_describe(v, depth + 1) for v in value]
        return f"{type(value).__name__}({', '.join(sorted(items) if isinstance(value, (set, frozenset)) else items)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_describe(k, depth + 1)}: {_describe(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, (types.FunctionType, types.MethodType)):
        return _code_digest(value)
    if isinstance(value, functools.partial):
        return f"partial({_describe(value.func, depth + 1)}, {_describe(value.args, depth + 1)})"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _tensor_bytes(t: torch.Tensor) -> bytes:
    return bytes(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{consts}|{code.co_names}|{code.co_varnames}"


def _code_digest(fn: Any, seen: set[int] | None = None) -> str:
    """A function's source (or bytecode) and, recursively, the source of the plain functions
    of its own package that it calls by a global name (a helper ``act(x)`` changed beside its
    module); torch's own functions are named, not read."""
    fn = getattr(fn, "__func__", fn)
    seen = set() if seen is None else seen
    if id(fn) in seen or not isinstance(fn, types.FunctionType):
        return f"<{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}>"
    seen.add(id(fn))
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        text = _code_text(fn.__code__)
    parts = [text, _describe(fn.__defaults__, 3)]
    for name in fn.__code__.co_names:
        ref = fn.__globals__.get(name)
        if isinstance(ref, types.FunctionType) and not str(ref.__module__).startswith("torch"):
            parts.append(f"{name}={_code_digest(ref, seen)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


_CLASS_DIGESTS: dict[type, str] = {}


def _class_digest(cls: type) -> str:
    """The code of every method a module class (and its bases below nn.Module) defines."""
    if cls in _CLASS_DIGESTS:
        return _CLASS_DIGESTS[cls]
    h = hashlib.sha256(f"{cls.__module__}.{cls.__qualname__}".encode())
    for base in cls.__mro__:
        if base in (torch.nn.Module, object):
            break
        for name, member in sorted(vars(base).items()):
            if isinstance(member, (types.FunctionType, staticmethod, classmethod)):
                h.update(f"{base.__qualname__}.{name}={_code_digest(getattr(member, '__func__', member))}".encode())
    _CLASS_DIGESTS[cls] = h.hexdigest()
    return _CLASS_DIGESTS[cls]


def model_fingerprint(model: FeatvizModel) -> str:
    """A short hash of what computes the model's outputs: every sub-module's class (its code),
    its public non-parameter attributes (stride, padding, an activation's slope, a tensor kept
    as a plain attribute...) and every parameter and buffer. The same weights under another
    activation function, or two models that share a name, never share tiles."""
    h = hashlib.sha256(f"{FORMAT}|{model.name}|{model.input_size}".encode())
    for name, module in model.named_modules():
        h.update(f"\0{name}\0{_class_digest(type(module))}".encode())
        for attr, value in sorted(vars(module).items()):
            if attr.startswith("_") or attr == "training":
                continue  # caches, hooks, registries (parameters, buffers and children come below)
            h.update(f"\0{attr}={_describe(value)}".encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()[:16]


def settings_key(fingerprint: str, settings: AtlasSettings) -> str:
    """The folder name of a tile's (model, settings): a changed setting renders anew."""
    # The resolved render settings, not the keywords given: lr=0.15 (the default) or none is one key.
    fields = settings.as_dict()
    fields["render"] = settings.render_settings(1).key_dict()  # keys made before #21 stay valid
    blob = json.dumps({"format": FORMAT, "model": fingerprint, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def slug(layer: str) -> str:
    """A layer name as a file name, injectively: lowercase letters, digits, and ``-`` and ``.``
    (not first: no hidden files, no option-like names) are kept, every other character (``_`` and capitals included: case-insensitive
    disks) becomes ``_`` and its UTF-8 bytes in hex. Long names keep a prefix and a hash."""
    if not layer:
        return "_"
    out = "".join(
        ch
        if (ch in _SAFE and (i > 0 or ch != "-")) or (ch == "." and i > 0)
        else "".join(f"_{b:02x}" for b in ch.encode("utf-8"))
        for i, ch in enumerate(layer)
    )
    if len(out) > 120:  # file names hold 255 bytes; "~" never comes out of the escaping above
        out = out[:80] + "_~" + hashlib.sha256(layer.encode("utf-8")).hexdigest()[:32]
    return out
