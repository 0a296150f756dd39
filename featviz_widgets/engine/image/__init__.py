"""The image: its parameterizations, the random transforms, photos, stay-close bounds."""

from __future__ import annotations

from .accentuation import (
    RADIUS_AT_ONE,
    RADIUS_AT_ZERO,
    STAY_CLOSE_RANGE,
    check_stay_close,
    photo_bounds,
    stay_close_radius,
)
from .param import COLOR_MATRIX, FourierBasis, ImageParam, PixelBasis, check_size, fourier_scale
from .photos import (
    IMAGE_SUFFIXES,
    MAX_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    SAMPLES,
    PhotoError,
    iter_photos,
    load_photo,
    pil_to_tensor,
    sample_photo,
    to_rgb,
)
from .transforms import TransformConfig, random_affine

__all__ = [
    "COLOR_MATRIX",
    "IMAGE_SUFFIXES",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "RADIUS_AT_ONE",
    "RADIUS_AT_ZERO",
    "SAMPLES",
    "STAY_CLOSE_RANGE",
    "FourierBasis",
    "ImageParam",
    "PhotoError",
    "PixelBasis",
    "TransformConfig",
    "check_size",
    "check_stay_close",
    "fourier_scale",
    "iter_photos",
    "load_photo",
    "photo_bounds",
    "pil_to_tensor",
    "random_affine",
    "sample_photo",
    "stay_close_radius",
    "to_rgb",
]
