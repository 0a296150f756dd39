"""Objectives: units, penalties, the algebra (a flat Sum) and the string parser."""

from __future__ import annotations

from .base import Context, Objective, Sum, as_spatial
from .parse import GRAMMAR, MAX_OBJECTIVE_CHARS, MAX_OBJECTIVE_TERMS, as_objective, parse_objective
from .penalties import L1, BlurPenalty, ImagePenalty, TotalVariation
from .units import BatchChannels, Channel, ClassLogit, ClassToken, DeepDream, Direction, Diversity, Neuron

__all__ = [
    "GRAMMAR",
    "L1",
    "MAX_OBJECTIVE_CHARS",
    "MAX_OBJECTIVE_TERMS",
    "BatchChannels",
    "BlurPenalty",
    "Channel",
    "ClassLogit",
    "ClassToken",
    "Context",
    "DeepDream",
    "Direction",
    "Diversity",
    "ImagePenalty",
    "Neuron",
    "Objective",
    "Sum",
    "TotalVariation",
    "as_objective",
    "as_spatial",
    "parse_objective",
]
