"""Feature accentuation's "stay close": a bound on how far each pixel may move from the photo.

``stay_close`` is a number in [0, 1]. 0 is plain DeepDream (no bound); above 0 every pixel is
kept within ``radius`` of the photo's, a box (L-inf ball) around it that each projected step
clamps back into, the PGD projection faccent offers. The radius falls geometrically from
``RADIUS_AT_ZERO`` (just under how far the farthest pixels move in plain DeepDream at the Photo
tab's defaults: just above 0 only those are held back) to ``RADIUS_AT_ONE`` (the photo barely
changed and keeps its class, the feature visible up close), so a linear slider on
``stay_close`` moves the distance from the photo steadily over its whole range.

Why not a penalty: the old ``objective - weight * MSE(image, photo)`` could not be balanced.
The MSE's gradient per pixel is 2 (x - photo) / (3 H W), tens of times weaker than the
objective's at any usable weight, and a weight that did bite would depend on the photo's size,
the layer and the objective. A bound in grey levels means the same on every photo, layer and
objective. The measurements: docs/accentuation.md, "Why the old penalty did nothing" and "The
design".
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...errors import InvalidSettingError

STAY_CLOSE_RANGE = (0.0, 1.0)
RADIUS_AT_ZERO = 48 / 255  # the radius just above 0 (at 0 itself: no bound)
RADIUS_AT_ONE = 6 / 255  # a few grey levels: the class survives, the feature still shows


def check_stay_close(value: Any) -> float:
    """``stay_close`` as a float in [0, 1], or InvalidSettingError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise InvalidSettingError(
            f"stay_close must be a number from 0 (plain DeepDream) to 1 (closest to the photo), got {value!r}."
        )
    v = float(value)
    low, high = STAY_CLOSE_RANGE
    if not low <= v <= high:
        raise InvalidSettingError(
            f"stay_close must be from 0 (plain DeepDream) to 1 (closest to the photo), got {value!r}. "
            "(It used to be a penalty weight such as 20 or 100; 0.5 is a medium pull now.)"
        )
    return v


def stay_close_radius(stay_close: float) -> float | None:
    """How far (0..1 of the pixel range) a pixel may move from the photo, or None (no bound) at 0."""
    s = check_stay_close(stay_close)
    if s == 0:
        return None
    return RADIUS_AT_ZERO * (RADIUS_AT_ONE / RADIUS_AT_ZERO) ** s


def photo_bounds(photo: torch.Tensor, stay_close: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(low, high) per pixel for ``Renderer.set_bounds``: the photo (1, 3, H, W in [0, 1]) plus or
    minus ``stay_close_radius``, within [0, 1]; None at 0."""
    radius = stay_close_radius(stay_close)
    if radius is None:
        return None
    return (photo - radius).clamp(0.0, 1.0), (photo + radius).clamp(0.0, 1.0)


__all__ = [
    "RADIUS_AT_ONE",
    "RADIUS_AT_ZERO",
    "STAY_CLOSE_RANGE",
    "check_stay_close",
    "photo_bounds",
    "stay_close_radius",
]
