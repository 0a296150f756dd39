"""The engine: pure torch feature visualization. Imports nothing from the widget layers."""

from .core.headless import RenderResult, render
from .core.renderer import Renderer, StepInfo
from .core.runtime import tune
from .core.settings import RenderSettings
from .explore.bases import compare_bases
from .explore.direction_views import directions_from_photos, directions_gallery
from .explore.directions import find_directions, load_directions
from .explore.groups import neuron_groups
from .explore.sanity import SanityReadout, sanity_readout
from .image.maco import maco_recipe, spectrum_from_photos, transparency_overlay
from .image.param import ImageParam
from .image.transforms import TransformConfig, random_affine
from .layers.access import LayerInfo, capture, layer_info, list_layers, main_layers
from .models.loaders import FeatvizModel, load_model
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
    "SanityReadout",
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
    "maco_recipe",
    "main_layers",
    "neuron_groups",
    "parse_objective",
    "random_affine",
    "render",
    "sanity_readout",
    "spectrum_from_photos",
    "transparency_overlay",
    "tune",
]
