"""timm models by name: ``load_model("timm:<name>")`` (the optional ``timm`` extra).

The architecture comes from ``timm.create_model(name, pretrained=False)``; the weights from
``weights`` (a ``.safetensors``, ``.pth`` or ``.bin`` state dict), else from a copy already in
the Hugging Face cache (``huggingface_hub.try_to_load_from_cache``, which never goes online) or
in torch's hub cache. Nothing is downloaded: a missing file raises WeightsError saying where
to put it. Mean, std and input size come from the model's ``pretrained_cfg``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import ModelInputError, WeightsError
from .featviz_model import IMAGENET_MEAN, IMAGENET_STD, FeatvizModel, Normalize, imagenet_class_names
from .weights import load_state, read_state_dict

_HF_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _timm() -> Any:
    try:
        import timm
    except ImportError as exc:
        raise ModelInputError(
            "timm models need the timm package: pip install 'featviz-widgets[timm]' (or pip install timm)."
        ) from exc
    return timm


def cached_weights(cfg: dict[str, Any]) -> Path | None:
    """The weights file of this pretrained config already on this machine, or None."""
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            pass
        else:
            repo, _, revision = str(hub_id).partition("@")
            for filename in _HF_FILES:
                found = try_to_load_from_cache(repo, filename, revision=revision or None)
                if isinstance(found, str) and os.path.isfile(found):
                    return Path(found)
    url = cfg.get("url")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(str(url))
        if path.is_file():
            return path
    return None


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file (tensors only, never code)."""
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise WeightsError(f"Weights file {str(path)!r} does not exist.")
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise WeightsError(
                f"Reading {str(path)!r} needs the safetensors package: pip install safetensors."
            ) from exc
        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"Weights file {str(path)!r} could not be read as safetensors ({exc}).") from exc
    return read_state_dict(path)


def load_timm(name: str, weights: str | Path | None = None) -> FeatvizModel:
    """The timm model ``name`` with its pretrained weights from ``weights`` or a local cache."""
    timm = _timm()
    if not name or name not in timm.list_models():
        close = timm.list_models(f"*{name}*")[:5] if name else []
        hint = f" Close: {', '.join(close)}." if close else ""
        raise ModelInputError(f"Unknown timm model {name!r}.{hint} See timm.list_models().")
    net: nn.Module = timm.create_model(name, pretrained=False)
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    if weights is not None:
        path = Path(weights)
    else:
        found = cached_weights(cfg)
        if found is None:
            where = f"the Hugging Face cache (repo {cfg['hf_hub_id']!r})" if cfg.get("hf_hub_id") else "torch's cache"
            raise WeightsError(
                f"Pretrained weights for timm model {name!r} are not in {where} and featviz_widgets never "
                "downloads. Download them once yourself (e.g. huggingface-cli download "
                f"{cfg.get('hf_hub_id', '<repo>')}), or pass weights='path/to/model.safetensors'."
            )
        path = found
    load_state(net, read_state(path), path)
    mean = tuple(cfg.get("mean", IMAGENET_MEAN))
    std = tuple(cfg.get("std", IMAGENET_STD))
    size = cfg.get("input_size", (3, 224, 224))
    classes = imagenet_class_names() if getattr(net, "num_classes", None) == 1000 else None
    return FeatvizModel(
        net,
        name=f"timm:{name}",
        input_size=int(size[-1]),
        preprocess=Normalize(mean, std),
        class_names=classes,
    )
