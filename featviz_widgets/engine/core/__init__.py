"""The optimization: RenderSettings, the Renderer and render(), the optimizer, redirect, runtime tuning."""

from __future__ import annotations

from .optim import adam
from .redirect import redirected
from .renderer import Renderer, RenderResult, StepInfo, render, to_pil, to_uint8
from .runtime import MMAP_THRESHOLD, OPT_OUT, TOP_PAD, TRIM_THRESHOLD, is_tuned, release_idle_openmp_threads, tune
from .settings import MAX_LR, MAX_WEIGHT, RenderSettings, check_int
from .timelapse import HOLD_LAST_MS, MAX_BYTES, MIN_GIF_FRAMES, Timelapse, TimelapseError, encode_gif

__all__ = [
    "HOLD_LAST_MS",
    "MAX_BYTES",
    "MAX_LR",
    "MAX_WEIGHT",
    "MIN_GIF_FRAMES",
    "MMAP_THRESHOLD",
    "OPT_OUT",
    "TOP_PAD",
    "TRIM_THRESHOLD",
    "RenderResult",
    "RenderSettings",
    "Renderer",
    "StepInfo",
    "Timelapse",
    "TimelapseError",
    "adam",
    "check_int",
    "encode_gif",
    "is_tuned",
    "redirected",
    "release_idle_openmp_threads",
    "render",
    "to_pil",
    "to_uint8",
    "tune",
]
