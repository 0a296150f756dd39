"""Objectives: units, penalties, the algebra (a flat Sum) and the string parser."""

from __future__ import annotations

from .terms import (
    GRAMMAR,
    L1,
    BatchChannels,
    BlurPenalty,
    Channel,
    ClassLogit,
    ClassToken,
    Context,
    DeepDream,
    Direction,
    Diversity,
    ImagePenalty,
    Neuron,
    Objective,
    Sum,
    TotalVariation,
    as_objective,
    as_spatial,
    parse_objective,
)

__all__ = [
    "GRAMMAR",
    "L1",
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
