"""Reading weights files: tensors only (never code), with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import WeightsError


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """torch.load limited to tensors (weights_only=True), with errors that name the file."""
    if not path.is_file():
        raise WeightsError(f"Weights file {str(path)!r} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, pickle with code in it, truncated file...
        raise WeightsError(
            f"Weights file {str(path)!r} could not be read as a PyTorch state dict "
            f"({type(exc).__name__}: {exc}). Delete it and reinstall or re-download it."
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"Weights file {str(path)!r} does not hold a state dict of tensors.")
    return state


def load_state(net: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``net.load_state_dict(state, strict=True)``, a mismatch as a WeightsError naming ``path``."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise WeightsError(f"Weights file {str(path)!r} does not match the architecture: {' '.join(first)}") from exc
