"""What the live view optimizes for, as plain values the controls can set.

A ``Target`` is (mode, layer, unit, ...) and turns into an engine Objective. Keeping it as data
lets the worker compare targets, and the view build one from its controls without torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..engine import (
    Channel,
    ClassLogit,
    ClassToken,
    DeepDream,
    Direction,
    Diversity,
    Neuron,
    Objective,
    parse_objective,
)
from ..engine.models import LOGITS
from ..errors import InvalidSettingError, excerpt

MODES = ("channel", "neuron", "deepdream", "class", "token", "direction", "mix", "custom")


@dataclass(frozen=True)
class Target:
    """``mode`` picks the objective: ``channel``/``neuron`` use ``layer`` and ``unit``;
    ``deepdream`` the whole ``layer``; ``class`` the logit ``unit``; ``token`` channel ``unit`` of
    a transformer layer's class token; ``direction`` a random
    direction in ``layer`` drawn from ``direction_seed`` (or ``vector``); ``mix`` is
    alpha * channel ``unit`` + (1 - alpha) * channel ``unit_b``; ``custom`` parses ``expression``.
    ``diversity`` > 0 adds that weight of the Diversity term (useful with a batch)."""

    mode: str = "channel"
    layer: str = "blocks.8"
    unit: int = 0
    x: int | None = None
    y: int | None = None
    direction_seed: int = 0
    vector: tuple[float, ...] | None = None
    expression: str = ""
    negative: bool = False
    unit_b: int = 1
    alpha: float = 0.5
    diversity: float = 0.0

    def objective(self, channels: int) -> Objective:
        """Build the objective; ``channels`` is the layer's channel count (for directions)."""
        if self.mode not in MODES:
            raise InvalidSettingError(f"Unknown mode {self.mode!r}; valid: {', '.join(MODES)}.")
        if not (0.0 <= self.alpha <= 1.0):
            raise InvalidSettingError(f"alpha must be between 0 and 1, got {self.alpha!r}.")
        if not (0.0 <= self.diversity <= 1e4):
            raise InvalidSettingError(f"diversity must be between 0 and 10000, got {self.diversity!r}.")
        obj: Objective
        if self.mode == "channel":
            obj = Channel(self.layer, self.unit)
        elif self.mode == "neuron":
            obj = Neuron(self.layer, self.unit, x=self.x, y=self.y)
        elif self.mode == "deepdream":
            obj = DeepDream(self.layer)
        elif self.mode == "class":
            obj = ClassLogit(self.unit, layer=LOGITS)
        elif self.mode == "token":
            obj = ClassToken(self.layer, self.unit)
        elif self.mode == "mix":
            obj = self.alpha * Channel(self.layer, self.unit) + (1 - self.alpha) * Channel(self.layer, self.unit_b)
        elif self.mode == "direction":
            if self.vector is not None:
                obj = Direction(self.layer, self.vector)
            else:
                obj = Direction.random(self.layer, channels, seed=self.direction_seed)
        else:
            obj = parse_objective(self.expression)
        obj = -obj if self.negative else obj
        if self.diversity:
            obj = obj + self.diversity * Diversity(self.layer)  # a spatial layer, also in class mode
        return obj

    @classmethod
    def from_dict(cls, data: Any) -> Target:
        """A Target from saved JSON, every field type-checked (InvalidSettingError naming the
        field otherwise); missing fields take their defaults."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidSettingError(f"The saved target must be an object, got {type(data).__name__}.")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidSettingError(f"Unknown target field(s) {excerpt(unknown)}; valid: {sorted(known)}.")
        kinds: dict[str, tuple[type, ...]] = {
            "mode": (str,),
            "layer": (str,),
            "expression": (str,),
            "unit": (int,),
            "direction_seed": (int,),
            "unit_b": (int,),
            "x": (int, type(None)),
            "y": (int, type(None)),
            "negative": (bool,),
            "alpha": (int, float),
            "diversity": (int, float),
        }
        values = dict(data)
        for name, value in data.items():
            if name == "vector":
                if value is not None:
                    if not isinstance(value, list) or not value or not all(_is_number(v) for v in value):
                        raise InvalidSettingError("target vector must be a non-empty list of finite numbers, or null.")
                    values[name] = tuple(float(v) for v in value)
                continue
            allowed = kinds[name]
            bad = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
            if bad or (float in allowed and not _is_number(value)):
                names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds[name])
                raise InvalidSettingError(f"target {name} must be {names}, got {excerpt(value)}.")
        if values.get("mode", "channel") not in MODES:
            raise InvalidSettingError(f"target mode {excerpt(values['mode'])} is unknown; valid: {', '.join(MODES)}.")
        for name in ("unit", "unit_b", "direction_seed"):
            if name in values and values[name] < 0:
                raise InvalidSettingError(f"target {name} must be >= 0, got {values[name]!r}.")
        return cls(**values)

    @property
    def layer_used(self) -> str:
        return LOGITS if self.mode == "class" else self.layer


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
