"""The model object the engine works on: ``FeatvizModel``, a frozen network that takes RGB in
[0, 1] (its input normalization inside), with its name, input size, class names and, as
``info``, the facts found by running it (model_info.py). The loaders are in models.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ...errors import ModelInputError
from ..layers.model_info import LOGITS, ModelInfo

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """(x - mean) / std per channel, for models trained on normalized input."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ToGray(nn.Module):
    """Feeds a 1-channel model from the RGB image the engine optimizes (ITU-R 601 luma)."""

    weights: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weights", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weights).sum(1, keepdim=True)


class FeatvizModel(nn.Module):
    """A frozen network that takes RGB in [0, 1], with what the engine needs to know about it.

    ``net`` is the wrapped network: layer names are paths inside it. ``preprocess`` runs before
    it (normalization, grayscale adapter). ``main_layers`` lists the layers a dropdown should
    offer first (None: the stages and blocks layer_choice.py picks). ``layouts`` gives the
    activation layout of layers the probe cannot tell (``{"blocks.3": "hwc"}``; see layouts.py),
    ``prefix_tokens`` the class/register tokens before a transformer's patch tokens when the
    model does not say (timm's ``num_prefix_tokens``, torchvision's ``class_token``).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        input_size: int = 224,
        preprocess: nn.Module | None = None,
        class_names: Sequence[str] | None = None,
        main_layers: Sequence[str] | None = None,
        channels_last: bool = False,
        layouts: Mapping[str, str] | None = None,
        prefix_tokens: int | None = None,
    ) -> None:
        super().__init__()
        from ..layers.layouts import check_override

        # How load_model loads this model again (the code the widget and the atlas give): ``source``
        # is its name ('resnet50', 'timm:...'), None for a user's module; ``load_options`` the
        # keyword arguments that change what is loaded (weights, device, input_size, mean...).
        self.source: str | None = None
        self.load_options: dict[str, object] = {}
        self.layouts = {str(k): check_override(str(k), v) for k, v in (layouts or {}).items()}
        if prefix_tokens is not None and (
            isinstance(prefix_tokens, bool) or not isinstance(prefix_tokens, int) or prefix_tokens < 0
        ):
            raise ModelInputError(f"prefix_tokens must be an integer >= 0, got {prefix_tokens!r}.")
        self.prefix_tokens = prefix_tokens
        self.preprocess = preprocess if preprocess is not None else nn.Identity()
        self.net = net
        self.name = name
        self.input_size = int(input_size)
        self.class_names = list(class_names) if class_names is not None else None
        self.main_layers = list(main_layers) if main_layers is not None else None
        self.info = ModelInfo()  # its layers, layouts and accepted sizes, found on first use
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FeatvizModel:
        # Feature visualization needs frozen BatchNorm/Dropout: the model stays in eval mode.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x).contiguous(memory_format=self.memory_format))

    @property
    def device(self) -> torch.device:
        for t in self.net.state_dict().values():
            return t.device
        return torch.device("cpu")

    def module_for(self, layer: str) -> nn.Module:
        """The module whose output is ``layer`` (``logits`` is the whole net unless it has
        a module of that name). Raises KeyError when there is none."""
        if layer == LOGITS and not _has_submodule(self.net, LOGITS):
            return self.net
        if not layer or not _has_submodule(self.net, layer):
            raise KeyError(layer)
        return self.net.get_submodule(layer)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input_size={self.input_size}"


def _has_submodule(net: nn.Module, name: str) -> bool:
    try:
        net.get_submodule(name)
    except AttributeError:
        return False
    return True


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names, from torchvision's bundled metadata (no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
