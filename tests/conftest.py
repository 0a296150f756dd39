from __future__ import annotations

import pytest
import torch
from torch import nn

from featviz_widgets.engine.models import FeatvizModel, wrap_module


class TinyNet(nn.Module):
    """A 3-layer convnet with hand-set weights so objective values can be checked exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture
def tiny() -> FeatvizModel:
    torch.manual_seed(0)
    return wrap_module(TinyNet(), input_size=32, name="tiny")
