"""Exceptions raised for bad input.

Every message names what was wrong and what would have been valid, so a beginner can fix the
call without reading the source. All subclass ``FeatvizError`` (and ``ValueError`` where the
problem is a value), so callers can catch one type.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FeatvizError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidSettingError(FeatvizError, ValueError):
    """A numeric setting (size, steps, learning rate, weight, seed...) is out of its valid range."""


class UnknownLayerError(FeatvizError, KeyError):
    """A layer name that the model does not have."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class ChannelRangeError(FeatvizError, IndexError):
    """A channel (or class, or neuron position) index outside the layer's range."""


class ObjectiveSyntaxError(FeatvizError, ValueError):
    """An objective string that does not follow the documented grammar."""


class WeightsError(FeatvizError, OSError):
    """Model weights that are missing, unreadable or do not match the architecture."""


class ModelInputError(FeatvizError, ValueError):
    """A model that cannot be visualized as given (wrong input channels, raises in forward...)."""


def unknown_layer(name: str, known: Iterable[str]) -> UnknownLayerError:
    """Build an UnknownLayerError that suggests the closest known names."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    preview = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return UnknownLayerError(
        f"Unknown layer {name!r}.{hint} Valid layers: {preview} "
        f"(see featviz_widgets.list_layers(model) for all {len(known)})."
    )
