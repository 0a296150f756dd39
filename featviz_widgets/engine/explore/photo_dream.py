"""DeepDream on a photo and feature accentuation: the photo's own pixels optimized for an
objective from a small octave up to full size, within a bound around the photo
(``image.accentuation``; docs/accentuation.md). ``StayClose``, the squared distance to the photo,
is the penalty that bound replaced, kept as an objective."""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from PIL import Image

from ...errors import InvalidSettingError
from ..core.pictures import to_pil
from ..core.renderer import Renderer
from ..core.settings import check_int
from ..image.accentuation import check_stay_close, photo_bounds
from ..image.photos import pil_to_tensor
from ..models.loaders import FeatvizModel, ensure_model
from ..objectives import Context, ImagePenalty, Objective, as_objective
from .sheets import Progress, run_steps


class StayClose(ImagePenalty):
    """Mean squared distance to a reference photo: subtracted, it keeps a feature-accentuated
    image close to the photo it started from."""

    def __init__(self, reference: torch.Tensor) -> None:
        # Compared and hashed by value, like every objective (``Direction`` compares its
        # vector): a copy, so the photo cannot change under a Sum that hashed it.
        self.reference = reference.detach().clone()

    def __call__(self, ctx: Context) -> torch.Tensor:
        ref = self.reference.to(ctx.image.device, ctx.image.dtype)
        if ref.shape[-2:] != ctx.image.shape[-2:]:
            ref = F.interpolate(ref, ctx.image.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        return (ctx.image - ref).pow(2).mean(dim=(1, 2, 3))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StayClose) and torch.equal(self.reference, other.reference)

    def __hash__(self) -> int:
        return hash(tuple(self.reference.shape))  # equal tensors have equal shapes

    def __repr__(self) -> str:
        return "StayClose(<photo>)"


def deepdream_photo(
    model: FeatvizModel | str | None,
    photo: Image.Image,
    objective: Objective | str,
    *,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps_per_octave: int = 20,
    strength: float = 0.05,
    stay_close: float = 0.0,
    max_side: int = 320,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Image.Image:
    """DeepDream (or feature accentuation, with ``stay_close`` > 0) on a photo: optimize the
    photo's pixels for ``objective`` from a small octave up to full size; ``strength`` is the
    learning rate. ``stay_close`` from 0 (plain DeepDream) to 1 bounds how far each pixel may
    move from the photo (``accentuation.stay_close_radius``: no bound at 0, 6 grey levels at 1);
    the distance from the photo falls steadily as it rises (docs/accentuation.md)."""
    model = ensure_model(model)
    octaves = check_int("octaves", octaves, 1, 8)
    steps_per_octave = check_int("steps_per_octave", steps_per_octave, 1, 10_000)
    if not 1.0 < octave_scale <= 3.0:
        raise InvalidSettingError(f"octave_scale must be in (1, 3], got {octave_scale!r}.")
    stay_close = check_stay_close(stay_close)
    photo = photo.convert("RGB")
    photo.thumbnail((max_side, max_side))
    ref = pil_to_tensor(photo)
    objective = as_objective(objective)
    bounds = photo_bounds(ref, stay_close)
    h, w = ref.shape[-2:]
    current = ref
    total, done = octaves * steps_per_octave, 0
    for k in reversed(range(octaves)):
        oh, ow = max(16, round(h / octave_scale**k)), max(16, round(w / octave_scale**k))
        r = Renderer(
            model,
            objective,
            size=(oh, ow),
            param="pixels",
            lr=strength,
            seed=seed,
            transform_strength=0.5,
            init_image=current,
        )
        if bounds is not None:
            r.set_bounds(*bounds)  # resized to the octave
        done = run_steps(r, steps_per_octave, progress, cancel, done=done, total=total)
        current = r.image().cpu()
    return to_pil(current)[0]


__all__ = ["StayClose", "deepdream_photo"]
