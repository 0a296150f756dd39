"""The image: its parameterizations, the random transforms, photos, stay-close bounds, and the
one grid maker and captioning helper for pictures shown together."""

from __future__ import annotations

from .accentuation import (
    RADIUS_AT_ONE,
    RADIUS_AT_ZERO,
    STAY_CLOSE_RANGE,
    check_stay_close,
    photo_bounds,
    stay_close_radius,
)
from .colour import COLOR_MATRIX
from .layout import caption, grid, grid_columns, grid_index
from .maco import (
    SPECTRUM_FILE,
    SPECTRUM_SIDE,
    MacoBasis,
    maco_recipe,
    real_bins,
    resize_spectrum,
    shipped_spectrum,
    spectrum_from_photos,
    transparency_overlay,
    write_shipped_spectrum,
)
from .param import (
    PARAMS,
    FourierBasis,
    ImageParam,
    PixelBasis,
    check_param,
    check_size,
    fourier_scale,
    param_from_flags,
)
from .photos import (
    IMAGE_SUFFIXES,
    MAX_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    SAMPLES,
    PhotoError,
    has_photo,
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
    "PARAMS",
    "RADIUS_AT_ONE",
    "RADIUS_AT_ZERO",
    "SAMPLES",
    "SPECTRUM_FILE",
    "SPECTRUM_SIDE",
    "STAY_CLOSE_RANGE",
    "FourierBasis",
    "ImageParam",
    "MacoBasis",
    "PhotoError",
    "PixelBasis",
    "TransformConfig",
    "caption",
    "check_param",
    "check_size",
    "check_stay_close",
    "fourier_scale",
    "grid",
    "grid_columns",
    "grid_index",
    "has_photo",
    "iter_photos",
    "load_photo",
    "maco_recipe",
    "param_from_flags",
    "photo_bounds",
    "pil_to_tensor",
    "random_affine",
    "real_bins",
    "resize_spectrum",
    "sample_photo",
    "shipped_spectrum",
    "spectrum_from_photos",
    "stay_close_radius",
    "to_rgb",
    "transparency_overlay",
    "write_shipped_spectrum",
]
