"""Exceptions raised for bad input.

Every message names what was wrong and what would have been valid, so a beginner can fix the
call without reading the source. All subclass ``FeatvizError`` (and ``ValueError`` where the
problem is a value), so callers can catch one type.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_MESSAGE = 2_000  # characters: a message never carries a user's whole input (10 MB objective...)
EXCERPT = 60  # characters of a user's text quoted in a message


def excerpt(text: object, limit: int = EXCERPT) -> str:
    """``repr`` of a user's value for a message, cut to its first ``limit`` characters with
    the full length said (a 10 MB string is quoted as 60 characters, not echoed whole)."""
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    length = f"{len(text):,} characters" if isinstance(text, str) else f"{len(shown):,} characters as text"
    return f"{shown[:limit]}... ({length})"


class FeatvizError(Exception):
    """Base class of every error this package raises on purpose. Its message is kept under
    ``MAX_MESSAGE`` characters whatever it quotes (the middle is cut and says so)."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str) and len(args[0]) > MAX_MESSAGE:
            text = args[0]
            keep = MAX_MESSAGE // 2 - 40
            args = (f"{text[:keep]} [... {len(text) - 2 * keep:,} characters cut ...] {text[-keep:]}",)
        super().__init__(*args)


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
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) if len(name) <= 200 else []
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    preview = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return UnknownLayerError(
        f"Unknown layer {excerpt(name)}.{hint} Valid layers: {preview} "
        f"(see featviz_widgets.list_layers(model) for all {len(known)})."
    )
