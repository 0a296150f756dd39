"""A model's layers: the probe, layouts, the main-layer choice, ModelInfo, input sizes, capture."""

from __future__ import annotations

from .access import capture, layer_info, layers_by_name, list_layers, main_layers
from .input_size import accepts, fed_size, fit_input, natural_size
from .layer_choice import ACTIVATIONS, ALL_WHEN_AT_MOST, BUDGET, Layouts, choose
from .layouts import (
    LAYOUTS,
    SPATIAL,
    channels,
    check_override,
    detect,
    grid,
    guess_layout,
    guess_prefix,
    prefix_token_count,
    to_nchw,
)
from .model_info import LOGITS, LayerInfo, ModelInfo
from .probe import ProbeRecord, TensorKey, probe

__all__ = [
    "ACTIVATIONS",
    "ALL_WHEN_AT_MOST",
    "BUDGET",
    "LAYOUTS",
    "LOGITS",
    "SPATIAL",
    "LayerInfo",
    "Layouts",
    "ModelInfo",
    "ProbeRecord",
    "TensorKey",
    "accepts",
    "capture",
    "channels",
    "check_override",
    "choose",
    "detect",
    "fed_size",
    "fit_input",
    "grid",
    "guess_layout",
    "guess_prefix",
    "layer_info",
    "layers_by_name",
    "list_layers",
    "main_layers",
    "natural_size",
    "prefix_token_count",
    "probe",
    "to_nchw",
]
