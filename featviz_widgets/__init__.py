"""featviz_widgets: live feature visualization in Jupyter.

Layers: ``engine`` (pure torch) -> ``runner`` (worker thread, settings, frames) -> ``view``
(ipywidgets + anywidget). The headless API lives in the engine and is re-exported here.
"""

from .engine import (
    L1,
    BatchChannels,
    BlurPenalty,
    Channel,
    ClassLogit,
    ClassToken,
    DeepDream,
    Direction,
    Diversity,
    FeatvizModel,
    ImageParam,
    LayerInfo,
    Neuron,
    Objective,
    Renderer,
    RenderResult,
    RenderSettings,
    TotalVariation,
    TransformConfig,
    compare_bases,
    find_directions,
    list_layers,
    load_directions,
    load_model,
    maco_recipe,
    main_layers,
    neuron_groups,
    parse_objective,
    render,
    spectrum_from_photos,
    tune,
)
from .errors import (
    ChannelRangeError,
    FeatvizError,
    InvalidSettingError,
    ModelInputError,
    ObjectiveSyntaxError,
    UnknownLayerError,
    WeightsError,
)

__version__ = "0.1.0"

__all__ = [
    "L1",
    "BatchChannels",
    "BlurPenalty",
    "Channel",
    "ChannelRangeError",
    "ClassLogit",
    "ClassToken",
    "DeepDream",
    "Direction",
    "Diversity",
    "FeatvizError",
    "FeatvizModel",
    "ImageParam",
    "InvalidSettingError",
    "LayerInfo",
    "ModelInputError",
    "Neuron",
    "Objective",
    "ObjectiveSyntaxError",
    "RenderResult",
    "RenderSettings",
    "Renderer",
    "TotalVariation",
    "TransformConfig",
    "UnknownLayerError",
    "WeightsError",
    "__version__",
    "compare_bases",
    "find_directions",
    "list_layers",
    "load_directions",
    "load_model",
    "maco_recipe",
    "main_layers",
    "neuron_groups",
    "parse_objective",
    "render",
    "spectrum_from_photos",
    "tune",
]


def __getattr__(name: str) -> object:
    # The widget layer imports ipywidgets/anywidget: load it only when asked for.
    if name in ("Dreamer", "stop_all"):
        from . import view

        return getattr(view, name)
    if name == "render_atlas":  # the atlas loads Ray only when asked for
        from .atlas import render_atlas

        return render_atlas
    raise AttributeError(f"module 'featviz_widgets' has no attribute {name!r}")
