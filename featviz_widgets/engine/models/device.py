"""Choosing the device the optimization runs on: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from ...errors import InvalidSettingError


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` picks the best available; a name is checked against what this machine has."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidSettingError(f"Unknown device {device!r}; valid: 'cpu', 'cuda', 'cuda:N', 'mps'.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidSettingError(f"Device {device!r} asked for, but CUDA is not available here; use 'cpu'.")
    return dev
