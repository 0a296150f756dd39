"""The engine: pure torch feature visualization. Imports nothing from the widget layers."""

from .bases import compare_bases
from .direction_views import directions_from_photos, directions_gallery
from .directions import find_directions, load_directions, neuron_groups
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
from .runtime import tune
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
    "compare_bases",
    "directions_from_photos",
    "directions_gallery",
    "find_directions",
    "layer_info",
    "list_layers",
    "load_directions",
    "load_model",
    "main_layers",
    "neuron_groups",
    "parse_objective",
    "random_affine",
    "render",
    "tune",
]
