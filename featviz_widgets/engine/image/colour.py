"""The colour decorrelation matrix both the Fourier and the MaCo parameterizations use."""

from __future__ import annotations

import torch

# Lucid's colour correlation square root for ImageNet, normalized by its largest column norm.
_COLOR_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float32)
COLOR_MATRIX = _COLOR_SVD_SQRT / _COLOR_SVD_SQRT.norm(dim=0).max()
