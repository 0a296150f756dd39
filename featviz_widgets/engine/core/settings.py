"""The settings of one rendering, validated in one place.

``RenderSettings`` is a frozen dataclass: changing a setting makes a new one with
``replace(**changes)``, which validates the result, so an invalid value never reaches the loop.
"""

from __future__ import annotations

import dataclasses
import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InvalidSettingError, excerpt
from ..image.param import DEFAULT_DECAY, PARAMS, check_param, check_size, param_from_flags
from ..image.photos import has_photo
from ..image.transforms import TransformConfig

MAX_WEIGHT = 1e6  # beyond this any objective is drowned: the image goes flat grey
MAX_LR = 10.0


def _number(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSettingError(f"{name} must be a number, got {excerpt(value)}.")
    v = float(value)
    bad = not math.isfinite(v) or v > high or (v <= low if low_open else v < low)
    if bad:
        lo = f"> {low:g}" if low_open else f">= {low:g}"
        raise InvalidSettingError(f"{name} must be a finite number {lo} and <= {high:g}, got {excerpt(value)}.")
    return v


# The reference folder of the settings being replaced: its photos were checked when it entered,
# so ``replace`` with another setting does not read the folder again (nor refuse an unrelated
# change because the folder in use was emptied meanwhile).
_FOLDER_IN_USE: ContextVar[str | None] = ContextVar("_FOLDER_IN_USE", default=None)


def check_align_photos(value: Any) -> str:
    """The reference folder of the aligned penalty as one absolute path. A folder that enters
    (a new one, not the one the replaced settings had) is refused unless it holds at least one
    photo that decodes: an empty folder, or one of other files, would otherwise pass here and
    stop the render at its first step."""
    valid = (
        "a folder holding at least one image (.jpg, .png, ...); or no folder (None in Python, an empty box "
        "in the widget, no --align-photos on the command line) for the probe photos"
    )
    if not isinstance(value, str) or not Path(value).is_dir():
        raise InvalidSettingError(
            f"The reference folder (align_photos) {excerpt(value, 400)} is not a folder; valid: {valid}."
        )
    path = str(Path(value).absolute())
    if path != _FOLDER_IN_USE.get() and not has_photo(path):
        raise InvalidSettingError(
            f"No readable photos in the reference folder (align_photos) {excerpt(path, 400)}; valid: {valid}."
        )
    return path


def check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # numpy integers are fine; floats such as 3.0 or strings are not
        if not (hasattr(value, "__index__") and not isinstance(value, float)):
            raise InvalidSettingError(f"{name} must be an integer from {low} to {high}, got {excerpt(value)}.")
        value = int(value.__index__())
    if not low <= value <= high:
        raise InvalidSettingError(f"{name} must be an integer from {low} to {high}, got {excerpt(value)}.")
    return int(value)


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides the image, apart from the model and the objective."""

    size: int | tuple[int, int] = 224  # canvas side, or (height, width), in pixels (16..4096)
    batch: int = 1  # images optimized together
    # Adam learning rate. benchmarks/quality.py: 0.15 beat 0.05 (9/15 vs 6/15 classes recognized
    # after 32 steps); with crops and beta1 0.5, 0.1 to 0.25 scored alike, within the noise.
    lr: float = 0.15
    l1: float = 0.0  # weight of the L1 penalty (pixels toward grey)
    tv: float = 0.0  # weight of the total-variation penalty
    blur: float = 0.0  # weight of the blur penalty
    transform: TransformConfig = field(default_factory=TransformConfig)
    # The parameterization (param.py's PARAMS): "pixels", "fourier" (1/f^decay), "decorrelated"
    # (1/f^decay Fourier + decorrelated colour: Lucid's recipe, with decay 1), "maco" (phase
    # only, natural magnitude: maco.py) or "decorrelated-pixels". The old fourier=/decorrelate=
    # booleans translate to it.
    param: str = "decorrelated"
    # Fourier scaling exponent: 1/f^decay, tilted about 1/16 cycle per pixel above 1 (param.py's
    # fourier_scale; why 1.5 rather than Lucid's 1: DEFAULT_DECAY there).
    decay: float = DEFAULT_DECAY
    seed: int = 0
    input_size: int | None = None  # side fed to the model (None: the canvas size)
    shared: bool = False  # add one component shared by the whole batch (aligned interpolations)
    # Randomly transformed copies of each image per step, their objectives averaged: steadier
    # steps for about views x the cost. views=2 gets more class renders recognized, but not
    # enough on a CPU to pay for its longer steps; worth it where a batch is nearly free, as on
    # a GPU (see docs/decisions.md, "Quality: what moved the numbers, and what did not").
    views: int = 1
    # Steps (from a start or an objective change) with Lucid's redirected ReLU gradient
    # (redirect.py), so channels inactive on the starting image still move it; 0 turns it off.
    redirect_steps: int = 16
    # Reference-aligned rendering (VITAL, align.py): weight of the penalty pulling the sorted
    # per-channel activations toward those of reference photos (0: off), and their folder
    # (None: the probe photos the package installs).
    align: float = 0.0
    align_photos: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, (tuple, list)):
            if len(self.size) != 2:
                raise InvalidSettingError(f"size must be an integer or (height, width), got {self.size!r}.")
            object.__setattr__(self, "size", (check_size(self.size[0]), check_size(self.size[1])))
        else:
            check_size(self.size)
        check_int("batch", self.batch, 1, 4096)
        _number("learning rate", self.lr, 0.0, MAX_LR, low_open=True)
        for name in ("l1", "tv", "blur"):
            _number(f"{name} weight", getattr(self, name), 0.0, MAX_WEIGHT)
        _number("Fourier decay", self.decay, 0.0, 4.0)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("views", self.views, 1, 64)
        check_int("redirect_steps", self.redirect_steps, 0, 1_000_000)
        check_param(self.param)
        _number("align weight", self.align, 0.0, MAX_WEIGHT)
        if self.align_photos is not None:  # one folder, one name: as typed it would depend on the working folder
            object.__setattr__(self, "align_photos", check_align_photos(self.align_photos))
        if self.shared and PARAMS[self.param][0] == "maco":
            raise InvalidSettingError("shared=True does not combine with param='maco' (its magnitude is per image).")
        if self.input_size is not None:
            check_size(self.input_size)
        if not isinstance(self.transform, TransformConfig):
            raise InvalidSettingError(f"transform must be a TransformConfig, got {type(self.transform).__name__}.")

    @property
    def side(self) -> int:
        """The canvas's longest side in pixels."""
        return max(self.size) if isinstance(self.size, tuple) else self.size

    @property
    def fourier(self) -> bool:
        """Whether the basis is the 1/f Fourier one (the old boolean, read from ``param``)."""
        return PARAMS[self.param][0] == "fourier"

    @property
    def decorrelate(self) -> bool:
        """Whether colours are decorrelated (the old boolean, read from ``param``)."""
        return PARAMS[self.param][1]

    def replace(self, **changes: Any) -> RenderSettings:
        """A new, validated RenderSettings; ``transform_strength=`` is a shortcut, and the old
        ``fourier=`` / ``decorrelate=`` booleans translate to ``param`` (applied after it)."""
        if "fourier" in changes or "decorrelate" in changes:
            base = changes.get("param", self.param)
            changes["param"] = param_from_flags(changes.pop("fourier", None), changes.pop("decorrelate", None), base)
        if "transform_strength" in changes:
            strength = changes.pop("transform_strength")
            changes["transform"] = dataclasses.replace(changes.get("transform", self.transform), strength=strength)
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InvalidSettingError(
                f"Unknown setting(s) {sorted(unknown)}; valid: {[f.name for f in dataclasses.fields(self)]}, "
                "transform_strength, and fourier/decorrelate (translated to param)."
            )
        token = _FOLDER_IN_USE.set(self.align_photos)
        try:
            return dataclasses.replace(self, **changes)
        finally:
            _FOLDER_IN_USE.reset(token)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key_dict(self) -> dict[str, Any]:
        """The settings as plain data for cache keys (the atlas's), in the form they had before
        ``param``, ``align`` and transform ``noise`` existed whenever they are at a value the old
        form can say: keys made before stay valid, and a MaCo or aligned render gets its own."""
        data = self.as_dict()
        if data["align"] == 0 and data["align_photos"] is None:
            del data["align"], data["align_photos"]
        if data["transform"]["noise"] == 0:
            del data["transform"]["noise"]
        if self.param != "maco":
            del data["param"]
            data["fourier"], data["decorrelate"] = self.fourier, self.decorrelate
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderSettings:
        data = dict(data)
        if isinstance(data.get("transform"), dict):
            # Settings saved before random crops existed were made without them, those saved
            # before the inverse-map gradient with grid_sample's exact one, and those saved before
            # crops could lie anywhere with crops near the centre.
            old = {"crop": 0.0, "exact_gradient": True, "crop_anywhere": False}
            data["transform"] = TransformConfig(**{**old, **data["transform"]})
        return cls().replace(**data)

    # Which changes the running optimization can absorb without rebuilding the image.
    LIVE_FIELDS = frozenset(
        {"lr", "l1", "tv", "blur", "transform", "input_size", "views", "redirect_steps", "align", "align_photos"}
    )
