"""What a panel may use of the widget that holds it (panels never import the Dreamer): the
``Host`` protocol, and ``JobHost``, the one background job a host runs for its panels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as W
from PIL import Image

from ..engine import FeatvizModel
from ..runner import Job, LiveRunner, PhotoStart, Target
from .controls import Controls
from .parts import error_html


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


class JobHost:
    """Runs a panel's heavy task as the widget's one ``Job`` (the live loop held meanwhile); its
    progress and errors show in the panel that asked (``message``, ``bar``)."""

    def __init__(self, runner: LiveRunner) -> None:
        self._outputs: tuple[W.HTML, W.IntProgress] | None = None
        self.job = Job(runner, self._progress, self._error, self._finished)

    def run(
        self, name: str, work: Callable[[], Any], done: Callable[[Any], None], message: W.HTML, bar: W.IntProgress
    ) -> bool:
        if self.job.busy:
            message.value = error_html(f"Still busy with '{self.job.name}'; wait for it before '{name}'.")
            return False
        self._outputs = (message, bar)
        return self.job.start(name, work, done)

    def _progress(self, name: str, done: int, total: int) -> None:
        if self._outputs is not None:
            bar = self._outputs[1]
            bar.description, bar.max, bar.value = name, total, done
            bar.layout.display = ""

    def _error(self, _name: str, message: str) -> None:
        if self._outputs is not None:
            self._outputs[0].value = error_html(message)

    def _finished(self, _name: str) -> None:
        if self._outputs is not None:
            self._outputs[1].layout.display = "none"
