"""``render()``: one call from an objective to finished pictures — a ``Renderer`` run for a
number of steps with a progress bar, Ctrl-C returning the picture so far, the size halved after
running out of device memory — and the ``RenderResult`` it returns."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from ...errors import InvalidSettingError
from ..models.loaders import FeatvizModel
from ..objectives import Objective
from .renderer import Renderer, StepInfo
from .runtime import tune
from .settings import check_int


@dataclass
class RenderResult:
    """The output of ``render()``: the image(s), the settings that made them, the history."""

    images: list[Image.Image]
    settings: dict[str, Any]
    history: list[float] = field(default_factory=list)
    interrupted: bool = False
    # MaCo's transparency map: the absolute gradient of the loss w.r.t. the image, summed over
    # the steps, (N, 3, H, W) >= 0 on the CPU (``Renderer.transparency``).
    transparency: torch.Tensor | None = None

    @property
    def image(self) -> Image.Image:
        return self.images[0]


def render(
    model: FeatvizModel | str | None = None,
    objective: Objective | str = "blocks.8:5",
    *,
    steps: int = 256,
    size: int | tuple[int, int] = 224,
    seed: int = 0,
    progress: bool = True,
    init_image: torch.Tensor | Image.Image | None = None,
    callback: Callable[[Renderer, StepInfo], None] | None = None,
    threads: int | None = None,
    tuned: bool = False,
    **settings: Any,
) -> RenderResult:
    """Optimize an image for ``objective`` and return it with the settings that made it.

    ``objective`` may be a string such as ``"blocks.8:5"`` (channel 5 of blocks.8) or
    ``"logits:309"`` (class 309). Other keywords are :class:`RenderSettings` fields (``lr``,
    ``l1``, ``tv``, ``blur``, ``transform_strength``, ``batch``, ``param``, ``align``...; MaCo's
    own recipe: ``**maco_recipe()``). Ctrl-C returns
    the image as it is, with ``interrupted=True``. ``threads`` sets the CPU threads for this
    render only: a convolution's rounding depends on how many threads share it, and Adam
    magnifies such last-bit differences within a few steps, so reproducing an image exactly
    takes the thread count that made it (the live widget's ``code()`` passes it). ``tuned=True``
    first tunes this process's malloc for fast CPU steps (``runtime.tune()``: process-wide and
    permanent, so off unless asked; the pixels are the same either way).
    """
    steps = check_int("steps", steps, 1, 10_000_000)
    threads = check_int("threads", threads, 1, 4096) if threads is not None else None
    if tuned:
        tune()
    renderer = Renderer(model, objective, size=size, seed=seed, init_image=init_image, callback=callback, **settings)
    interrupted = False
    bar = _progress(steps, progress)
    try:
        with _cpu_threads(threads):
            while renderer.step_count < steps:
                try:
                    info = renderer.step()
                except torch.OutOfMemoryError:
                    _shrink_after_oom(renderer)
                    continue
                if bar is not None:
                    bar.set_postfix(objective=f"{info.objective:.3g}", refresh=False)
                    bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    record = renderer.record()
    transparency = renderer.transparency().cpu()
    return RenderResult(renderer.pil_images(), record, list(renderer.history), interrupted, transparency)


@contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the body with ``threads`` intra-op threads (None: as they are), then restore them."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _shrink_after_oom(renderer: Renderer) -> None:
    """Out of device memory in a headless render: halve the size (keeping the picture) and warn."""
    side = renderer.halve_size(minimum=16)
    if side is None:
        raise InvalidSettingError(
            f"Out of {renderer.device.type} memory even at {renderer.settings.side} px; "
            "free memory or pass device='cpu' to load_model."
        )
    warnings.warn(
        f"Out of {renderer.device.type} memory at {side} px: continuing at {side // 2} px.",
        RuntimeWarning,
        stacklevel=3,
    )


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="render", leave=False)


__all__ = ["RenderResult", "render"]
