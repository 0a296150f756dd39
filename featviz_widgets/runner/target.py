"""What the live view optimizes for, as plain values the controls can set.

A ``Target`` is (mode, layer, unit, ...) and turns into an engine Objective. Keeping it as data
lets the worker compare targets, and the view build one from its controls without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Channel, ClassLogit, DeepDream, Direction, Diversity, Neuron, Objective, parse_objective
from ..engine.models import LOGITS
from ..errors import InvalidSettingError

MODES = ("channel", "neuron", "deepdream", "class", "direction", "mix", "custom")


@dataclass(frozen=True)
class Target:
    """``mode`` picks the objective: ``channel``/``neuron`` use ``layer`` and ``unit``;
    ``deepdream`` the whole ``layer``; ``class`` the logit ``unit``; ``direction`` a random
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

    @property
    def layer_used(self) -> str:
        return LOGITS if self.mode == "class" else self.layer
