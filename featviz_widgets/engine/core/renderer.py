"""The optimization loop: a stateful ``Renderer``, one step at a time (``render()``, the one call
that runs it to the end, is in headless.py; the tensor <-> picture conversions in pictures.py).

``Renderer.step()`` runs one Adam step on the image parameters: image -> random transforms ->
truncated forward -> objective minus penalties -> backward into the image only. Learning rate,
penalty weights and transform strength apply on the next step; changing the objective keeps
the image (warm start) or resets it; changing the size or parameterization rebuilds the
parameters, carrying the current picture over when asked to.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from ...errors import InvalidSettingError
from ..image.param import ImageParam
from ..image.transforms import random_affine
from ..layers.access import capture, layers_by_name
from ..layers.input_size import fed_size
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import L1, BlurPenalty, Context, Objective, TotalVariation, as_objective
from .align import Reference, align_layers, reference_activations
from .memory import check_fits
from .optim import adam
from .pictures import image_batch, resized, to_pil
from .redirect import redirected
from .settings import RenderSettings, check_int

_PENALTIES = {"l1": L1(), "tv": TotalVariation(), "blur": BlurPenalty()}
_MEMORY_FIELDS = frozenset({"size", "batch", "views", "input_size"})  # what a step's memory depends on


@dataclass
class StepInfo:
    """What one step did. ``objective`` is the mean objective value over the batch (before
    penalties); ``loss`` is what was minimized."""

    step: int
    objective: float
    loss: float
    seconds: float
    warning: str | None = None


class Renderer:
    """One image (or batch) being optimized for one objective on one model.

    ``callback(renderer, info)`` runs after every step. Not thread-safe: one thread drives it.
    """

    def __init__(
        self,
        model: FeatvizModel | str | None,
        objective: Objective | str,
        settings: RenderSettings | None = None,
        *,
        init_image: torch.Tensor | Image.Image | None = None,
        callback: Callable[[Renderer, StepInfo], None] | None = None,
        **changes: Any,
    ) -> None:
        self.model = ensure_model(model)
        self.device = self.model.device
        self.settings = (settings or RenderSettings()).replace(**changes)
        self.callback = callback
        self.step_count = 0
        self.history: list[float] = []
        self.objective = self._checked(as_objective(objective), self.settings.batch)
        check_fits(self.model, self.settings, self.objective.layers)  # refused before anything is allocated
        self._layers = layers_by_name(self.model)
        self._init_image = image_batch(init_image) if init_image is not None else None
        self._bounds: tuple[torch.Tensor, torch.Tensor] | None = None
        self._sized_bounds: tuple[torch.Tensor, torch.Tensor] | None = None
        self._transparency: torch.Tensor | None = None
        self._reference: tuple[tuple[Any, ...], Reference] | None = None
        self._build(keep=None)

    # --- construction -------------------------------------------------------------------------
    def _checked(self, objective: Objective, batch: int) -> Objective:
        layers = layers_by_name(self.model)
        objective.check(layers, batch)
        return objective

    def _build(self, keep: torch.Tensor | None, pre: torch.Tensor | None = None) -> None:
        """New image parameters for the settings: from ``pre`` (the old image before its
        sigmoid, same size: exact), else from ``keep`` (a picture), else the start image or noise."""
        s = self.settings
        self.param = ImageParam(s.size, batch=s.batch, param=s.param, decay=s.decay, seed=s.seed, shared=s.shared).to(
            self.device
        )
        start = keep if keep is not None else self._init_image
        if pre is not None:
            self.param.set_pre(pre)
        elif start is not None:
            self.param.set_image(start[: s.batch] if start.shape[0] >= s.batch else start[:1])
        self._project()
        self.optimizer = _adam(self.param, s.lr)
        # The transforms draw four numbers per image and step: on the CPU whatever the device, so a
        # GPU step never waits to read them back, and a seed gives the same transforms everywhere.
        self.generator = torch.Generator().manual_seed(int(s.seed))
        self._snapshot = [p.detach().clone() for p in self.param.parameters()]
        self._redirect_left = s.redirect_steps
        shape = (s.batch, 3, self.param.height, self.param.width)
        if keep is None or self._transparency is None or tuple(self._transparency.shape) != shape:
            self._transparency = torch.zeros(shape, device=self.device)

    def _fed_size(self) -> tuple[int, int] | None:
        """The (height, width) the model is fed, None for the canvas as it is: the requested
        ``input_size`` or the canvas, when the model takes it, else the model's own size."""
        s = self.settings
        canvas = s.size if isinstance(s.size, tuple) else (s.size, s.size)
        wanted = (s.input_size, s.input_size) if s.input_size else canvas
        fed = fed_size(self.model, wanted)
        return None if fed == canvas else fed

    # --- live changes ---------------------------------------------------------------------------
    def update(self, keep_image: bool = True, **changes: Any) -> None:
        """Change settings. Learning rate, penalties, transforms and input size apply on the
        next step; size, batch, seed or parameterization rebuild the image (carrying the
        current picture over when ``keep_image``; a new seed always starts fresh)."""
        self.apply(self.settings.replace(**changes), keep_image=keep_image)

    def apply(self, new: RenderSettings, keep_image: bool = True) -> None:
        """Switch to ``new`` settings, already validated (a RenderSettings is validated when it
        is made); what changes decides whether the image is rebuilt, as in ``update``."""
        if new.batch != self.settings.batch:  # before anything changes: a refusal leaves all as it was
            self._checked(self.objective, new.batch)
        if any(getattr(new, k) != getattr(self.settings, k) for k in _MEMORY_FIELDS):
            check_fits(self.model, new, self.objective.layers)
        old, self.settings = self.settings, new
        changed = {k for k in new.as_dict() if getattr(new, k) != getattr(old, k)}
        if not changed:
            return
        if changed <= RenderSettings.LIVE_FIELDS:
            for group in self.optimizer.param_groups:
                group["lr"] = new.lr
            return
        keep = self.image() if keep_image and "seed" not in changed else None
        # A new parameterization of the same canvas takes over the values before the sigmoid:
        # exact (a picture would lose its saturated pixels to set_image's clamp).
        same_canvas = keep is not None and not changed & {"size", "batch", "shared"}
        self._build(keep, self.param.pre() if same_canvas else None)

    def halve_size(self, minimum: int) -> int | None:
        """After running out of device memory: free the device cache and halve the canvas,
        keeping the picture. Returns the side it halved, or None (nothing changed) when half
        would be under ``minimum`` pixels."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        side = self.settings.side
        if side // 2 < minimum:
            return None
        self.update(keep_image=True, size=side // 2)
        return side

    def set_objective(self, objective: Objective | str, keep_image: bool = True) -> None:
        """Switch target. ``keep_image`` warm-starts from the current picture (with fresh
        optimizer state); otherwise the image restarts from the seed."""
        objective = self._checked(as_objective(objective), self.settings.batch)
        check_fits(self.model, self.settings, objective.layers)  # a deeper layer keeps more activations
        self.objective = objective
        self.history = []
        self._redirect_left = self.settings.redirect_steps
        if keep_image:
            self.optimizer = _adam(self.param, self.settings.lr)
        else:
            self.reset()

    def set_init_image(self, image: torch.Tensor | Image.Image | None) -> None:
        """Start image for resets from now on (None: noise). Call ``reset()`` to use it."""
        self._init_image = image_batch(image) if image is not None else None

    def set_bounds(self, low: torch.Tensor | None, high: torch.Tensor | None = None) -> None:
        """Keep every pixel within [low, high] from now on (projected steps, as feature
        accentuation's ball around a photo): (1 or N, 3, H, W) tensors in [0, 1], resized to the
        canvas when its size differs. Applied at once and after every step; ``None`` lifts it."""
        if low is None:
            self._bounds = self._sized_bounds = None
            return
        if high is None:
            raise InvalidSettingError("set_bounds needs both low and high (or None to lift the bounds).")
        lo, hi = image_batch(low).float(), image_batch(high).float()
        if lo.shape != hi.shape or lo.shape[0] not in (1, self.settings.batch):
            raise InvalidSettingError(
                f"Bounds must be two tensors of one shape, (1 or {self.settings.batch}, 3, H, W); "
                f"got {tuple(lo.shape)} and {tuple(hi.shape)}."
            )
        if not bool((lo <= hi).all()):
            raise InvalidSettingError("Bounds need low <= high at every pixel.")
        self._bounds, self._sized_bounds = (lo, hi), None
        self._project()

    def _project(self) -> None:
        if self._bounds is None:
            return
        size = (self.param.height, self.param.width)
        if self._sized_bounds is None or self._sized_bounds[0].shape[-2:] != size:
            lo, hi = (resized(b, size).to(self.device) for b in self._bounds)
            self._sized_bounds = (lo, hi)
        self.param.project(*self._sized_bounds)

    def reset(self, seed: int | None = None) -> None:
        """Restart from noise (the current seed, or a new one)."""
        if seed is not None:
            self.settings = self.settings.replace(seed=seed)
        self.step_count = 0
        self.history = []
        self._build(keep=None)

    # --- the step -----------------------------------------------------------------------------
    def forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image, objective values (N,) and loss for the current parameters (with transforms)."""
        s = self.settings
        image = self.param()
        out = self._fed_size()
        n = image.shape[0]
        # views > 1: one batch of n * views transformed copies ([all images, view 0], [view 1]...);
        # the objective sees one view at a time, so batch-aware objectives keep their meaning.
        x = random_affine(image.repeat(s.views, 1, 1, 1) if s.views > 1 else image, s.transform, self.generator, out)
        reference = self._aligned_reference(x.shape[-2:]) if s.align else None
        wanted = self.objective.layers | set(reference.sorted) if reference is not None else self.objective.layers
        if self._redirect_left > 0:  # the first steps: no channel starts dead (redirect.py)
            with redirected():
                acts = capture(self.model, x, wanted)
        else:
            acts = capture(self.model, x, wanted)
        ctx = Context(acts, image, self._layers)
        if s.views == 1:
            values = self.objective(ctx)
        else:
            per_view = [
                self.objective(Context({k: a[v * n : (v + 1) * n] for k, a in acts.items()}, image, self._layers))
                for v in range(s.views)
            ]
            values = torch.stack(per_view).mean(0)
        loss = -values.sum()
        for name, penalty in _PENALTIES.items():
            weight = getattr(s, name)
            if weight:
                loss = loss + weight * penalty(ctx).sum()
        if reference is not None:  # VITAL's distribution matching (align.py), averaged over views
            loss = loss + s.align * reference.penalty(acts).sum() / s.views
        return image, values, loss

    def _aligned_reference(self, fed: torch.Size | tuple[int, int]) -> Reference | None:
        """The reference photos' statistics for the objective's aligned layers at the fed size,
        computed once per (photos, size, layers); None when no layer can be aligned."""
        names = align_layers(self._layers, self.objective.layers)
        if not names:
            return None
        key = (self.settings.align_photos, tuple(fed), tuple(names))
        if self._reference is None or self._reference[0] != key:
            ref = reference_activations(
                self.model, self._layers, names, (int(fed[0]), int(fed[1])), self.settings.align_photos
            )
            self._reference = (key, ref)
        return self._reference[1]

    def align_penalty(self) -> float:
        """The reference-alignment penalty of the current image as it is (no transforms): 0 when
        its activation statistics equal the reference photos'."""
        s = self.settings
        with torch.no_grad():
            image = self.param()
            out = self._fed_size()
            x = image if out is None else random_affine(image, s.transform.__class__(strength=0), None, out)
            reference = self._aligned_reference(x.shape[-2:])
            if reference is None:
                return 0.0
            return float(reference.penalty(capture(self.model, x, set(reference.sorted))).mean())

    def transparency(self) -> torch.Tensor:
        """MaCo's transparency map: the absolute gradient of the loss (the objective, and any
        penalties switched on) w.r.t. the image, summed over the steps since the image was
        started; (N, 3, H, W), >= 0, detached. Kept across parameterization switches."""
        assert self._transparency is not None
        return self._transparency.detach().clone()

    def step(self) -> StepInfo:
        t0 = time.perf_counter()
        image, values, loss = self.forward()
        self.optimizer.zero_grad(set_to_none=True)
        image.retain_grad()
        loss.backward()
        warning = None
        loss_value = float(loss.detach())
        loss_finite = math.isfinite(loss_value)
        if loss_finite:
            self.optimizer.step()
            self._project()
            if image.grad is not None and self._transparency is not None:
                self._transparency.add_(image.grad.abs())
        if not (loss_finite and _parameters_finite(self.param)):
            warning = self._recover()
        else:
            self._save_snapshot()
        self.step_count += 1
        self._redirect_left -= 1
        value = float(values.detach().mean())
        self.history.append(value)
        info = StepInfo(self.step_count, value, loss_value, time.perf_counter() - t0, warning)
        if self.callback is not None:
            self.callback(self, info)
        return info

    def _save_snapshot(self) -> None:
        # One small copy per step (the parameters are a few hundred KB): the image is never lost.
        for snap, p in zip(self._snapshot, self.param.parameters(), strict=True):
            snap.copy_(p.detach())

    def _recover(self) -> str:
        """The loss or image went NaN/inf: restore the last good parameters, fresh Adam state."""
        with torch.no_grad():
            for snap, p in zip(self._snapshot, self.param.parameters(), strict=True):
                p.copy_(snap)
        self.optimizer = _adam(self.param, self.settings.lr)
        return (
            f"The image turned NaN/inf at step {self.step_count + 1}; restored the last good image. "
            "Lower the learning rate or penalty weights if this repeats."
        )

    def run(self, steps: int) -> list[StepInfo]:
        steps = check_int("steps", steps, 1, 10_000_000)
        return [self.step() for _ in range(steps)]

    # --- output -------------------------------------------------------------------------------
    @torch.no_grad()
    def image(self) -> torch.Tensor:
        """The current images, (N, 3, H, W) in [0, 1], detached."""
        return self.param().detach()

    def pil_images(self) -> list[Image.Image]:
        return to_pil(self.image())

    @torch.no_grad()
    def measure(self) -> torch.Tensor:
        """Objective values (N,) of the current image without transforms."""
        image = self.param()
        s = self.settings
        out = self._fed_size()
        x = image if out is None else random_affine(image, s.transform.__class__(strength=0), None, out)
        return self.objective(Context(capture(self.model, x, self.objective.layers), image, self._layers))

    def record(self) -> dict[str, Any]:
        """The settings that reproduce this image, as plain data."""
        return {
            "model": self.model.name,
            "objective": repr(self.objective),
            "steps": self.step_count,
            **self.settings.as_dict(),
        }


def _parameters_finite(param: ImageParam) -> bool:
    # A sum is NaN/inf as soon as one element is: one cheap reduction per tensor.
    return all(math.isfinite(float(p.detach().sum())) for p in param.parameters())


def _adam(param: ImageParam, lr: float) -> torch.optim.Adam:
    # beta1 = 0.5 (not 0.9): less momentum lets the image follow the random transforms, which
    # change every step; another network recognizes more class renders after 32 steps (see
    # docs/decisions.md, "Quality: what moved the numbers, and what did not").
    return adam(param.parameters(), lr, betas=(0.5, 0.999))


__all__ = ["Renderer", "StepInfo"]
