"""Changes to a live view: validated once on the kernel thread, applied by the worker.

A change is a small frozen record: ``SetSettings``, ``SetTarget``, ``Reset``, ``StartFrom``,
``Load`` or ``Unsettle``. ``Truth`` holds the runner's settings and target (and the target's
objective, built once, where the target is validated); each of its methods validates one
change against that truth, stores the new truth and returns the record to queue (None when
nothing changes). A record's ``apply_to(renderer, effect)`` is what the worker does to the
``Renderer``; ``effect`` is the one place that decides what a change does to the running
image (a new seed restarts; a size, batch or parameterization rebuilds carrying the picture
over; a learning rate or penalty goes to the running optimization...).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

import torch

from ..engine import FeatvizModel, Objective, Renderer, RenderSettings
from ..engine.core import check_fits
from ..engine.layers import layer_info, layers_by_name
from ..errors import InvalidSettingError
from .recording import PhotoStart
from .target import Target

NOT_SAVED = "start_image is the image you started from (not saved): define start_image = ... above"


class Effect(enum.Enum):
    """What a change does to the running image (see ``effect``)."""

    NOTHING = "nothing"  # a settled loop makes more steps; the image is as it was
    LIVE = "live"  # the running optimization takes it (learning rate, penalties, transforms...)
    REBUILD = "rebuild"  # new image parameters, the picture carried over (size, batch, parameterization)
    WARM = "warm"  # a new objective on the kept picture, fresh optimizer state
    RESTART = "restart"  # from the start (noise from the seed, or the start photo); the recording starts anew


@dataclass(frozen=True)
class SetSettings:
    settings: RenderSettings

    def apply_to(self, r: Renderer, effect: Effect) -> None:
        r.apply(self.settings, keep_image=effect is not Effect.RESTART)
        if effect is Effect.RESTART:
            r.reset()


@dataclass(frozen=True)
class SetTarget:
    target: Target
    objective: Objective  # built (and checked) once, on the kernel thread
    keep_image: bool

    def apply_to(self, r: Renderer, effect: Effect) -> None:
        r.set_objective(self.objective, keep_image=effect is Effect.WARM)  # restarts unless warm


@dataclass(frozen=True)
class Reset:
    settings: RenderSettings  # with the new seed, when one was given

    def apply_to(self, r: Renderer, effect: Effect) -> None:
        r.apply(self.settings, keep_image=False)
        r.reset()


@dataclass(frozen=True)
class StartFrom:
    settings: RenderSettings  # the size takes the photo's aspect ratio
    photo: torch.Tensor | None  # 1x3xHxW on the CPU; None: noise
    source: PhotoStart | None  # where the photo came from, for code()

    def apply_to(self, r: Renderer, effect: Effect) -> None:
        r.set_init_image(self.photo)
        r.apply(self.settings, keep_image=False)
        r.reset()


@dataclass(frozen=True)
class Load:
    settings: RenderSettings
    target: Target
    objective: Objective
    photo: torch.Tensor | None
    source: PhotoStart | None

    def apply_to(self, r: Renderer, effect: Effect) -> None:
        r.set_init_image(self.photo)
        r.set_objective(self.objective, keep_image=True)  # the reset below restarts it
        r.apply(self.settings, keep_image=False)
        r.reset()


@dataclass(frozen=True)
class Unsettle:
    """Run again after settling: nothing changes but the settle detector."""

    def apply_to(self, r: Renderer, effect: Effect) -> None:
        pass


Change = SetSettings | SetTarget | Reset | StartFrom | Load | Unsettle


def effect(change: Change, current: RenderSettings) -> Effect:
    """What ``change`` does to an image made with ``current`` settings: the one place that decides
    what restarts. A new seed, a reset, a start photo, a loaded file, or a target without warm
    start restart it; a warm-started target keeps the picture; a new size, batch or
    parameterization rebuilds the parameters carrying the picture over; the rest (learning rate,
    penalties, transforms, views, input size: ``RenderSettings.LIVE_FIELDS``) go to the running
    optimization."""
    if isinstance(change, SetSettings):
        new = change.settings
        if new.seed != current.seed:
            return Effect.RESTART
        changed = {f.name for f in dataclasses.fields(new) if getattr(new, f.name) != getattr(current, f.name)}
        return Effect.LIVE if changed <= RenderSettings.LIVE_FIELDS else Effect.REBUILD
    if isinstance(change, SetTarget):
        return Effect.WARM if change.keep_image else Effect.RESTART
    if isinstance(change, Unsettle):
        return Effect.NOTHING
    return Effect.RESTART


class Truth:
    """The settings and target of a live view, and the target's objective: every change is
    checked here once, against the model and the device's memory, before it is stored."""

    def __init__(self, model: FeatvizModel, settings: RenderSettings, target: Target) -> None:
        self.model = model
        self.objective = self.objective_for(target, settings)
        self.settings, self.target = settings, target

    def channels_for(self, target: Target) -> int:
        """The layer's channel count, which only a random direction needs to be built."""
        return layer_info(self.model, target.layer).channels if target.mode == "direction" else 0

    def objective_for(self, target: Target, settings: RenderSettings) -> Objective:
        """Build ``target``'s objective and check it: its layers and units against the model, the
        batch, and the memory a step needs (a deeper layer keeps more activations) against the
        device's. Raises what is wrong, changing nothing."""
        objective = target.objective(self.channels_for(target))
        objective.check(layers_by_name(self.model), settings.batch)
        check_fits(self.model, settings, objective.layers)
        return objective

    def set(self, **changes: Any) -> SetSettings | None:
        new = self.settings.replace(**changes)
        if new == self.settings:
            return None
        if new.batch != self.settings.batch:
            self.objective.check(layers_by_name(self.model), new.batch)
        old = self.settings
        if (new.size, new.batch, new.views, new.input_size) != (old.size, old.batch, old.views, old.input_size):
            check_fits(self.model, new, self.objective.layers)  # refused where a size enters
        self.settings = new
        return SetSettings(new)

    def set_target(self, target: Target, keep_image: bool) -> SetTarget | None:
        if target == self.target and keep_image:
            return None
        objective = self.objective_for(target, self.settings)
        self.target, self.objective = target, objective
        return SetTarget(target, objective, keep_image)

    def reset(self, seed: int | None) -> Reset:
        if seed is not None:
            self.settings = self.settings.replace(seed=seed)
        return Reset(self.settings)

    def start_from(self, photo: torch.Tensor | None, source: PhotoStart | None) -> StartFrom:
        if photo is not None and (not isinstance(photo, torch.Tensor) or photo.dim() != 4 or photo.shape[:2] != (1, 3)):
            raise InvalidSettingError("start_from needs a 1x3xHxW image tensor in [0, 1], or None for noise.")
        side = self.settings.side
        size = side if photo is None else fit(photo.shape[-2:], side, minimum=16)
        self.settings = self.settings.replace(size=size)
        if photo is None:
            source = None
        elif source is None:
            source = PhotoStart("start_image", "a photo", NOT_SAVED)
        return StartFrom(self.settings, None if photo is None else photo.detach().cpu(), source)

    def load(
        self, settings: RenderSettings, target: Target, photo: torch.Tensor | None, source: PhotoStart | None
    ) -> Load:
        objective = self.objective_for(target, settings)
        if photo is not None:
            settings = settings.replace(size=fit(photo.shape[-2:], settings.side, minimum=16))
            source = source or PhotoStart("start_image", "an image", NOT_SAVED)
        self.settings, self.target, self.objective = settings, target, objective
        return Load(settings, target, objective, None if photo is None else photo.detach().cpu(), source)

    def revert(self, settings: RenderSettings, target: Target, objective: Objective) -> None:
        """Back to what the worker holds, after the model refused a change that passed here."""
        self.settings, self.target, self.objective = settings, target, objective


def fit(shape: tuple[int, int] | torch.Size, side: int, minimum: int = 1) -> tuple[int, int]:
    """(height, width) scaled so the longest side is ``side``, each at least ``minimum``."""
    h, w = shape
    scale = side / max(h, w)
    return max(minimum, round(h * scale)), max(minimum, round(w * scale))
