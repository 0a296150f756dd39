"""The engine: pure torch feature visualization. Imports nothing from the widget layers."""

from .layers import LayerInfo, capture, layer_info, list_layers, main_layers
from .models import FeatvizModel, load_model
from .objectives import (
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
    Neuron,
    Objective,
    Sum,
    TotalVariation,
    parse_objective,
)
from .param import ImageParam
from .renderer import Renderer, RenderResult, StepInfo, render
from .settings import RenderSettings
from .transforms import TransformConfig, random_affine

__all__ = [
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
    "FeatvizModel",
    "ImageParam",
    "LayerInfo",
    "Neuron",
    "Objective",
    "RenderResult",
    "RenderSettings",
    "Renderer",
    "StepInfo",
    "Sum",
    "TotalVariation",
    "TransformConfig",
    "capture",
    "layer_info",
    "list_layers",
    "load_model",
    "main_layers",
    "parse_objective",
    "random_affine",
    "render",
]
