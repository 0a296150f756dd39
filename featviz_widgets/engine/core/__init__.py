"""The optimization: RenderSettings, the Renderer and render(), the optimizer, redirect, runtime tuning."""

from __future__ import annotations

from .align import LAYERS, MAX_PHOTOS, Reference, align_layers, channel_values, has_positions, reference_activations
from .headless import RenderResult, render
from .memory import (
    ACTIVATION_FACTOR,
    FIXED_BYTES,
    IMAGE_FACTOR,
    MemoryLimitError,
    available_bytes,
    check_fits,
    step_bytes,
)
from .optim import adam
from .pictures import image_batch, resized, to_pil, to_uint8
from .redirect import redirected
from .renderer import Renderer, StepInfo
from .runtime import MMAP_THRESHOLD, OPT_OUT, TOP_PAD, TRIM_THRESHOLD, is_tuned, release_idle_openmp_threads, tune
from .settings import MAX_LR, MAX_WEIGHT, RenderSettings, check_int
from .timelapse import HOLD_LAST_MS, MAX_BYTES, MIN_GIF_FRAMES, Timelapse, TimelapseError, encode_gif

__all__ = [
    "ACTIVATION_FACTOR",
    "FIXED_BYTES",
    "HOLD_LAST_MS",
    "IMAGE_FACTOR",
    "LAYERS",
    "MAX_BYTES",
    "MAX_LR",
    "MAX_PHOTOS",
    "MAX_WEIGHT",
    "MIN_GIF_FRAMES",
    "MMAP_THRESHOLD",
    "OPT_OUT",
    "TOP_PAD",
    "TRIM_THRESHOLD",
    "MemoryLimitError",
    "Reference",
    "RenderResult",
    "RenderSettings",
    "Renderer",
    "StepInfo",
    "Timelapse",
    "TimelapseError",
    "adam",
    "align_layers",
    "available_bytes",
    "channel_values",
    "check_fits",
    "check_int",
    "encode_gif",
    "has_positions",
    "image_batch",
    "is_tuned",
    "redirected",
    "reference_activations",
    "release_idle_openmp_threads",
    "render",
    "resized",
    "step_bytes",
    "to_pil",
    "to_uint8",
    "tune",
]
