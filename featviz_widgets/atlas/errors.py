"""Errors of the atlas: each names what was wrong and what would work."""

from __future__ import annotations

from ..errors import FeatvizError


class AtlasError(FeatvizError):
    """An atlas that cannot be built as asked."""


class AtlasStorageError(AtlasError, OSError):
    """The output folder cannot hold the atlas (a file, unwritable, full). Tiles already
    finished stay on disk: the same command resumes after the cause is fixed."""


class RayUnavailableError(AtlasError, ConnectionError):
    """Ray is not installed, or the cluster address does not answer."""


class AtlasBusyError(AtlasError):
    """Another run is writing the same atlas folder right now."""
