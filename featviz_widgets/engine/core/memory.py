"""Refusing a render the device cannot hold, before it allocates anything.

``step_bytes`` estimates one optimization step's peak memory from numbers already known: the
canvas (size x batch x views), the activation sizes the layer probe recorded at the model's
input size (scaled to the size the model is fed, up to the deepest layer the objective reads)
and the image parameters with their optimizer state. No tensor is made and no forward runs, so
it costs microseconds and runs once per settings change (where a value enters: ``Renderer``,
``LiveRunner.set``/``load``), never per step. ``check_fits`` compares it with what the device
has free (CPU: the kernel's MemAvailable; CUDA: free plus what torch's cache holds) and raises
``MemoryLimitError`` naming both. The factors were measured on the embedded model and torchvision
ResNet-18 (benchmarks/memory_estimate.py, docs/adversarial.md): a real step stays under the estimate.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable

import torch

from ...errors import FeatvizError
from .settings import RenderSettings

# A step keeps each module's output for the backward pass, the functional ops between modules
# (residual adds, padding) add to it, and the backward pass holds gradients of a similar size
# while it runs: measured peaks were about 1x (EfficientNet-Lite0, whose folded BatchNorms count
# twice) to 2x (ResNet-18) the leaf modules' outputs, so 2x (benchmarks/memory_estimate.py).
ACTIVATION_FACTOR = 2.0
# Image parameters, their gradient, Adam's two moments, the last-good snapshot, the sampled
# copies and their gradients, per canvas pixel and channel, in float32.
IMAGE_FACTOR = 12
# What a step costs whatever its size (autograd's graph, the allocator's arenas, thread stacks):
# about 10 MB measured at 64 px.
FIXED_BYTES = 32 * 2**20


class MemoryLimitError(FeatvizError, MemoryError):
    """A render that would need more memory than the device has free."""


_LEAF_BYTES: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple[str, ...], int]] = weakref.WeakKeyDictionary()


def _activation_bytes(model: torch.nn.Module, layers: tuple[str, ...]) -> int:
    """Bytes of every leaf module's output for one image at the model's input size, up to the
    deepest of ``layers`` (the whole network when empty): what a truncated forward keeps."""
    from ..layers.access import layers_by_name

    cache = _LEAF_BYTES.setdefault(model, {})
    if layers in cache:
        return cache[layers]
    infos = layers_by_name(model)  # type: ignore[arg-type]
    known = [infos[n].order for n in layers if n in infos]
    deepest = max(known) if known else max((i.order for i in infos.values()), default=0)
    element = next((p.element_size() for p in model.parameters()), 4)
    total = 0
    for info in infos.values():
        if info.order > deepest or not info.shape:
            continue
        try:
            module = model.module_for(info.name)  # type: ignore[operator]
        except KeyError:
            continue
        if next(module.children(), None) is None:  # leaves only: a container's output is its last leaf's
            total += math.prod(info.shape) * element
    cache[layers] = total = max(total, 1)
    return total


def _fed_pixels(model: torch.nn.Module, settings: RenderSettings) -> tuple[int, int]:
    """Canvas pixels and the pixels the model is fed, without running it: a model that refused
    another size when it was probed is fed its own size."""
    size = settings.size if isinstance(settings.size, tuple) else (settings.size, settings.size)
    canvas = size[0] * size[1]
    wanted = (settings.input_size, settings.input_size) if settings.input_size else size
    natural: int = getattr(model, "input_size", 224)
    accepts: dict[int, bool] = getattr(model, "_accepts", {})
    fixed = accepts.get(max(wanted)) is False or (max(wanted) not in accepts and False in accepts.values())
    fed = natural * natural if fixed else wanted[0] * wanted[1]
    return canvas, fed


def step_bytes(model: torch.nn.Module, settings: RenderSettings, layers: Iterable[str] = ()) -> int:
    """Estimated peak bytes of one step with ``settings`` for an objective reading ``layers``."""
    canvas, fed = _fed_pixels(model, settings)
    natural: int = getattr(model, "input_size", 224)
    per_image = _activation_bytes(model, tuple(sorted(layers))) * fed / (natural * natural)
    copies = settings.batch * settings.views
    image = IMAGE_FACTOR * 3 * 4 * canvas * settings.batch + 8 * 3 * 4 * fed * copies
    return int(ACTIVATION_FACTOR * per_image * copies + image + FIXED_BYTES)


def available_bytes(device: torch.device) -> int | None:
    """Memory a render may still take on ``device``: CUDA's free memory plus torch's cached
    blocks; elsewhere the system's available RAM. None when it cannot be told."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        import psutil  # type: ignore[import-untyped]  # optional: other systems than Linux

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(
    model: torch.nn.Module, settings: RenderSettings, layers: Iterable[str] = (), available: int | None = None
) -> int:
    """Raise MemoryLimitError when a step with ``settings`` cannot fit in the device's free
    memory (``available`` overrides what the device says); returns the estimate in bytes."""
    need = step_bytes(model, settings, layers)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    have = available if available is not None else available_bytes(device)
    if have is not None and need > have:
        raise MemoryLimitError(
            f"size {settings.size!r} x batch {settings.batch} x views {settings.views} needs about "
            f"{_gb(need)} per step on {device.type}, but only {_gb(have)} is free: the limit is the "
            "device's free memory. Use a smaller size, batch or views."
        )
    return need


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
