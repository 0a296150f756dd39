"""The record of a live run, and the Python code that replays it exactly.

A live image is the product of everything that happened to it: the settings and target it
started with, the photo it started from, and every change applied at the step it was applied.
``Recording`` keeps exactly that (it is restarted whenever the image restarts from scratch), and
``code()`` writes it out as a script. Replayed with the same CPU thread count (a convolution's
rounding depends on it, and Adam magnifies last-bit differences), the script makes the same
pixels as the live loop; tests/test_recording.py checks that bitwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine import RenderSettings
from .target import Target


@dataclass(frozen=True)
class PhotoStart:
    """Where the run's start picture came from, as a Python expression giving a PIL image
    (``sample_photo('chelsea')``, ``load_photo('cat.jpg')``), how to show it to people, and what
    the person running the code must know (``note``)."""

    expression: str  # an expression only: never a comment (it is placed inside a call)
    label: str
    note: str | None = None  # a comment put on its own line before the call, e.g. where the file goes


@dataclass
class Recording:
    """The start of the current run and its changes, each at the renderer step it was applied."""

    settings: RenderSettings
    target: Target
    photo: PhotoStart | None = None
    events: list[tuple[int, str, object]] = field(default_factory=list)

    def restart(self, settings: RenderSettings, target: Target, photo: PhotoStart | None) -> None:
        """The image starts afresh (reset, new seed, photo start, cold target change)."""
        self.settings, self.target, self.photo = settings, target, photo
        self.events = []

    def settings_changed(self, step: int, settings: RenderSettings) -> None:
        last = self._last("settings", self.settings)
        if settings != last:
            self.events.append((step, "settings", settings))

    def target_changed(self, step: int, target: Target) -> None:
        if target != self._last("target", self.target):
            self.events.append((step, "target", target))

    def _last(self, kind: str, start: object) -> object:
        for _, k, value in reversed(self.events):
            if k == kind:
                return value
        return start

    @property
    def current_target(self) -> Target:
        """The target the image is made for now: the run's start, or its last change."""
        target = self._last("target", self.target)
        assert isinstance(target, Target)
        return target

    @property
    def changed(self) -> bool:
        """True once something changed during the run (the code then replays the changes)."""
        return bool(self.events)

    def code(
        self,
        model: str,
        steps: int,
        channels: Callable[[Target], int],
        threads: int | None,
        model_note: str | None = None,
    ) -> str:
        """A script that reproduces the image after ``steps`` steps of this run; ``model`` is
        the ``load_model(...)`` expression that loads the model again (``models.load_code``),
        ``model_note`` a comment line put before it."""
        lines = self._body(model, steps, channels, threads)
        if model_note is not None:
            lines.insert(0, model_note)
        body = "\n".join(lines)
        head = ["import torch"] if "torch." in body else []
        head.append("from featviz_widgets import *")
        for module, name in _EXTRA_NAMES:
            if f"{name}(" in body:
                head.append(f"from {module} import {name}")
        return "\n".join([*head, "", *lines])

    def _body(self, model: str, steps: int, channels: Callable[[Target], int], threads: int | None) -> list[str]:
        lines: list[str] = []
        thread_note = "  # the live loop's CPU threads: the same arithmetic, the same pixels"
        if not self.events and self.photo is None:
            s = self.settings
            extra = "".join(
                f", {name}={value!r}" for name, value in _changed_fields(s).items() if name not in ("size", "seed")
            )
            threads_arg = f", threads={threads}" if threads is not None else ""
            lines += [
                f"result = render({model}, {objective_code(self.target, channels(self.target))}, "
                f"steps={steps}, size={s.size!r}, seed={s.seed}, progress=False{threads_arg}{extra})"
                + (thread_note if threads is not None else ""),
                "result.image" if s.batch == 1 else "result.images",
            ]
            return lines
        if threads is not None:
            lines.append(f"torch.set_num_threads({threads}){thread_note}")
        start = f", init_image={self.photo.expression}" if self.photo is not None else ""
        lines.append(f"model = {model}")
        if self.photo is not None and self.photo.note:
            lines.append(f"# init_image: {_one_line(self.photo.note)}")
        lines += [
            f"renderer = Renderer(model, {objective_code(self.target, channels(self.target))}, "
            f"{settings_code(self.settings)}{start})",
        ]
        done = 0
        for step, kind, value in self.events:
            if step > done:
                lines.append(f"renderer.run({step - done})")
                done = step
            if kind == "settings":
                assert isinstance(value, RenderSettings)
                lines.append(f"renderer.apply({settings_code(value)})  # changed at step {step}")
            else:
                assert isinstance(value, Target)
                lines.append(
                    f"renderer.set_objective({objective_code(value, channels(value))}, keep_image=True)"
                    f"  # changed at step {step}"
                )
        if steps > done:
            lines.append(f"renderer.run({steps - done})")
        final = self._last("settings", self.settings)
        assert isinstance(final, RenderSettings)
        lines.append("renderer.pil_images()[0]" if final.batch == 1 else "renderer.pil_images()")
        return lines


# Names the code may use beyond ``from featviz_widgets import *``.
_EXTRA_NAMES = (
    ("featviz_widgets.engine", "TransformConfig"),
    ("featviz_widgets.engine.image", "load_photo"),
    ("featviz_widgets.engine.image", "sample_photo"),
    ("featviz_widgets.engine.explore", "layer_gallery"),
    ("featviz_widgets.engine.explore", "directions_from_photos"),
    ("featviz_widgets.runner", "read_saved"),
)


def _one_line(text: str) -> str:
    """Text safe inside a # comment: one line (a newline would end the comment and run the rest)."""
    return " ".join(text.split())


def _changed_fields(settings: RenderSettings) -> dict[str, object]:
    """The fields that differ from the defaults (the code stays short and exact)."""
    default = RenderSettings()
    return {
        name: getattr(settings, name)
        for name in settings.as_dict()
        if getattr(settings, name) != getattr(default, name)
    }


def settings_code(settings: RenderSettings) -> str:
    """``RenderSettings(...)`` with the fields that differ from the defaults (exact reprs)."""
    fields = _changed_fields(settings)
    return "RenderSettings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"


def objective_code(target: Target, channels: int) -> str:
    """The objective of ``target`` as exact Python (weights as full float reprs; a random
    direction by its seed, a given one by its raw values)."""
    if target.mode == "channel":
        expr = f"Channel({target.layer!r}, {target.unit})"
    elif target.mode == "neuron":
        pos = f", x={target.x}, y={target.y}" if target.x is not None or target.y is not None else ""
        expr = f"Neuron({target.layer!r}, {target.unit}{pos})"
    elif target.mode == "deepdream":
        expr = f"DeepDream({target.layer!r})"
    elif target.mode == "class":
        expr = f"ClassLogit({target.unit})"
    elif target.mode == "token":
        expr = f"ClassToken({target.layer!r}, {target.unit})"
    elif target.mode == "mix":
        expr = (
            f"{target.alpha!r} * Channel({target.layer!r}, {target.unit}) + "
            f"{1 - target.alpha!r} * Channel({target.layer!r}, {target.unit_b})"
        )
    elif target.mode == "direction":
        if target.vector is not None:
            expr = f"Direction({target.layer!r}, {list(target.vector)!r})"
        else:
            expr = f"Direction.random({target.layer!r}, {channels}, seed={target.direction_seed})"
    else:
        expr = f"parse_objective({target.expression!r})"
    if target.negative:
        expr = f"-({expr})"
    if target.diversity:
        expr = f"{expr} + {target.diversity!r} * Diversity({target.layer!r})"
    return expr
