"""Models: FeatvizModel, the loaders (embedded, torchvision, timm, nn.Module), weights files."""

from __future__ import annotations

from .device import pick_device
from .efficientnet_lite import (
    VARIANTS,
    ConvBNAct,
    EfficientNetLite,
    InputScale,
    LiteVariant,
    MBConv,
    SamePadConv2d,
    fold_batchnorm,
    translate_lukemelas_keys,
)
from .featviz_model import IMAGENET_MEAN, IMAGENET_STD, FeatvizModel, Normalize, ToGray, imagenet_class_names
from .loaders import (
    EMBEDDED_MODEL,
    LOGITS,
    TORCHVISION_EXAMPLES,
    USER_MODULE,
    efficientnet_lite_weights_path,
    ensure_model,
    load_code,
    load_code_note,
    load_efficientnet_lite,
    load_model,
    load_torchvision,
    torchvision_weights_path,
    wrap_module,
)
from .timm_models import cached_weights, load_timm, read_state
from .weights import load_state, read_state_dict

__all__ = [
    "EMBEDDED_MODEL",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LOGITS",
    "TORCHVISION_EXAMPLES",
    "USER_MODULE",
    "VARIANTS",
    "ConvBNAct",
    "EfficientNetLite",
    "FeatvizModel",
    "InputScale",
    "LiteVariant",
    "MBConv",
    "Normalize",
    "SamePadConv2d",
    "ToGray",
    "cached_weights",
    "efficientnet_lite_weights_path",
    "ensure_model",
    "fold_batchnorm",
    "imagenet_class_names",
    "load_code",
    "load_code_note",
    "load_efficientnet_lite",
    "load_model",
    "load_state",
    "load_timm",
    "load_torchvision",
    "pick_device",
    "read_state",
    "read_state_dict",
    "torchvision_weights_path",
    "translate_lukemelas_keys",
    "wrap_module",
]
