"""A whole-model atlas: every unit of chosen layers rendered into a resumable store and a
static site, in-process or on a Ray cluster (``render_atlas``, ``featviz atlas``)."""

from .build import AtlasReport, render_atlas
from .errors import AtlasBusyError, AtlasError, AtlasStorageError, RayUnavailableError
from .plan import AtlasSettings, Chunk
from .site import reproduce_code

__all__ = [
    "AtlasBusyError",
    "AtlasError",
    "AtlasReport",
    "AtlasSettings",
    "AtlasStorageError",
    "Chunk",
    "RayUnavailableError",
    "render_atlas",
    "reproduce_code",
]
