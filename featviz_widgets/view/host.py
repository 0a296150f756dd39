"""What a panel may use of the widget that holds it (panels never import the Dreamer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as W
from PIL import Image

from ..engine import FeatvizModel
from ..runner import Job, LiveRunner, PhotoStart, Target
from .controls import Controls


class Host(Protocol):
    model: FeatvizModel
    runner: LiveRunner
    controls: Controls
    job: Job

    def run_job(
        self, name: str, work: Callable[[], Any], done: Callable[[Any], None], message: W.HTML, bar: W.IntProgress
    ) -> bool:
        """Run ``work`` as the widget's one background job; errors go to ``message``."""

    def open_live(self, target: Target, image: Image.Image | None = None, source: PhotoStart | None = None) -> None:
        """Show ``target`` in the controls and optimize it live, from ``image`` when given."""

    def settings(self) -> dict[str, Any]:
        """The settings that reproduce the live picture (what a saved PNG carries)."""

    def load(self, source: Any, name: str | None = None) -> None:
        """Apply a saved PNG's settings (all or nothing); ``name``: the uploaded file's name."""

    def copy_to_clipboard(self, text: str) -> None:
        """Ask the browser to put ``text`` on the clipboard."""
