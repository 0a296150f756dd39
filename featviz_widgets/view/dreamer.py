"""Dreamer: the live feature-visualization widget — layout and wiring.

The runner owns the truth (settings, target, image); this module only lays the widgets out,
turns control changes into ``LiveRunner`` calls (validated there, once) and shows the snapshots
the worker publishes. What a control's value means to the runner, and what a control shows for
given settings, is binding.py's plain mapping; controls are set from the runner's truth only
through ``_sync`` (after a load or a gallery tile), which silences their observers meanwhile.
Which Dreamers are open, one per notebook cell, is cells.py's. Panels live in their own modules
and see the widget through ``host.Host``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as W
from PIL import Image

from ..engine import FeatvizModel, RenderSettings, load_model
from ..engine.image import grid, pil_to_tensor
from ..engine.models import LOGITS
from ..errors import FeatvizError, InvalidSettingError
from ..export import png_bytes, save_png
from ..runner import Frame, LiveRunner, PhotoStart, Snapshot, Target, read_saved
from . import cells
from .binding import (
    SETTINGS,
    TARGET_CONTROLS,
    check_showable,
    class_index,
    settings_change,
    settings_values,
    target_of,
    target_values,
)
from .controls import build_controls, class_options, listed_layers
from .explore_panel import ExplorePanel
from .export_panel import ExportPanel
from .host import JobHost
from .live_image import LiveImage
from .parts import close_tree, data_link
from .photo_panel import PhotoPanel
from .readout import Readout
from .sink import ViewSink, check_ipykernel
from .status import file_stem


class Dreamer(W.HBox):
    """Live feature visualization of ``model`` (the embedded EfficientNet-Lite0 by default).

    Move a slider and the background optimization follows on its next step. ``backend`` is
    ``"anywidget"`` (canvas with flow control) or ``"image"`` (plain ``ipywidgets.Image``, for
    hosts where anywidget's front end cannot load). ``replace_same_cell`` closes an earlier
    Dreamer created by the same notebook cell (re-running a cell never leaves a loop behind).
    The live image is upscaled smoothly to ``display_size``; ``pixelated=True`` shows crisp
    pixels instead. ``clock`` is the time source of the frame pacing and of the image's flow
    control (tests inject one).
    """

    def __init__(
        self,
        model: FeatvizModel | str | Any | None = None,
        *,
        layer: str | None = None,
        channel: int = 0,
        size: int = 128,
        lr: float = 0.05,  # calmer than the headless default: a live picture is watched for hundreds of steps
        seed: int = 0,
        fps: float = 12.0,
        backend: str = "anywidget",
        autostart: bool = True,
        replace_same_cell: bool = True,
        display_size: int = 384,
        pixelated: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_ipykernel()
        if backend not in ("anywidget", "image"):
            raise InvalidSettingError(f"backend must be 'anywidget' or 'image', got {backend!r}.")
        self.model = model if isinstance(model, FeatvizModel) else load_model(model)
        layers, self._infos, layer = listed_layers(self.model, layer)
        classes = class_options(self.model.class_names, self._infos[LOGITS].channels) if LOGITS in self._infos else []
        self.controls = c = build_controls(layers, layer, classes, size, lr, seed)
        c.unit.max = max(self._infos[layer].channels - 1, 0)
        c.unit.value = min(channel, c.unit.max)
        c.unit_b.max = c.unit.max
        self.image_widget: LiveImage | W.Image = (
            LiveImage(display_size=display_size, pixelated=pixelated, clock=clock)
            if backend == "anywidget"
            else W.Image(format="jpeg", layout=W.Layout(width=f"{display_size}px"))
        )
        self._readout = Readout(self.image_widget, c.run, self.model)
        self.plot, self.status = self._readout.plot, self._readout.status
        self.download_link = W.HTML("")
        self._closed = False
        self._syncing = False
        self.runner = LiveRunner(
            self.model,
            self._target(),
            RenderSettings(size=size, lr=lr, seed=seed),
            ViewSink(self._show, self.image_widget),
            fps=fps,
            clock=clock,
        )
        self._jobs = JobHost(self.runner)
        self.job = self._jobs.job
        self.explore = ExplorePanel(self)
        self.photo = PhotoPanel(self)
        self.export = ExportPanel(self, self.save)
        # A row of toggle buttons switching panels, rather than ipywidgets.Tab: Tab's stacked
        # panel squeezes tall content to a fixed height in JupyterLab 4.
        self.pages = {
            "Controls": c.panel(),
            "Explore": self.explore.widget,
            "Photo": self.photo.widget,
            "Export": self.export.widget,
        }
        self.page_picker = W.ToggleButtons(options=list(self.pages), value="Controls", style={"button_width": "84px"})
        self.page_picker.observe(lambda ch: self._show_page(ch["new"]), names="value")
        self._show_page("Controls")
        self.tabs = W.VBox(
            [self.page_picker, *self.pages.values()],
            layout=W.Layout(flex="1 1 420px", min_width="360px", max_width="760px"),
        )
        super().__init__(
            [
                W.VBox(
                    # The status (and its warning) right under the buttons: at 900 px of height,
                    # below the plot it fell out of the window.
                    [self.image_widget, c.buttons(), self.status, self.plot, self.download_link],
                    layout=W.Layout(width=f"{display_size + 16}px", flex="0 0 auto", align_items="flex-start"),
                ),
                self.tabs,
            ],
            layout=W.Layout(align_items="flex-start", flex_flow="row wrap", width="100%"),
        )
        self._wire()
        self._refresh_mode()
        cells.opened(self, replace_same_cell)
        if autostart:
            self.runner.start()
        else:
            self.runner.pause()
            self._readout.show_stepping(False)

    def _show_page(self, name: str) -> None:
        for key, page in self.pages.items():
            page.layout.display = "flex" if key == name else "none"

    # --- controls -> runner ---------------------------------------------------------------------
    def _target(self) -> Target:
        c = self.controls
        return target_of({name: getattr(c, name).value for name in TARGET_CONTROLS}, c.klass.options)

    def _wire(self) -> None:
        c = self.controls
        for name in TARGET_CONTROLS:
            getattr(c, name).observe(self._on_target, names="value")
        for name in SETTINGS:
            getattr(c, name).observe(self._observer(name), names="value")
        c.transparency.observe(lambda ch: self.runner.show_transparency(bool(ch["new"])), names="value")
        c.keep_image.observe(lambda ch: setattr(self.runner, "keep_image", bool(ch["new"])), names="value")
        c.run.on_click(lambda _b: self._on_run())
        c.reset.on_click(lambda _b: self._guard(self.runner.reset))
        c.save.on_click(lambda _b: self._guard(self.download))
        c.new_direction.on_click(lambda _b: setattr(c.direction_seed, "value", int(c.direction_seed.value) + 1))

    def _observer(self, control: str) -> Callable[[dict[str, Any]], None]:
        def observer(change: dict[str, Any]) -> None:
            if not self._syncing:
                self.apply(control, change["new"])

        return observer

    def apply(self, control: str, value: Any) -> bool:
        """What a settings control does when a person sets it to ``value`` (its observer calls
        this): the ``LiveRunner.set`` call binding.py maps it to, validated there. A refused value
        shows in the status line and changes nothing; returns whether the runner took it. A slider
        is not moved back (it would fight a drag); the reference-folder box is, to the folder in
        use, so it never shows one that is not (the message quotes what was typed). ``control``
        names a ``Controls`` field, e.g. ``"lr"``."""
        c = self.controls
        if control == "param":
            c.show_param(value)
        elif control == "align":
            c.show_align(float(value))
        taken = self._guard(self.runner.set, **settings_change(control, value))
        if not taken and control == "align_photos":
            with self._quiet():
                c.align_photos.value = settings_values(self.runner.settings)["align_photos"]
        if taken and control == "batch":
            c.show_for(c.mode.value, int(value))
        return taken

    def apply_target(self, target: Target) -> bool:
        """What the target controls do once one changed: optimize for ``target`` (validated by
        the runner). A refused target shows in the status line and changes nothing; returns
        whether the runner took it. The controls are not moved (``open_live`` shows a target)."""
        return self._guard(self.runner.set_target, target)

    def _guard(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Run a control action; a bad value shows in the status line and changes nothing.
        Nothing escapes to the notebook (a traceback there would land in whatever cell ran last)."""
        try:
            fn(*args, **kwargs)
        except FeatvizError as exc:
            self._show_control_error(str(exc))
            return False
        self._show_control_error("")
        return True

    def _on_target(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        c = self.controls
        if change["owner"] is c.klass:
            index = class_index(change["new"], c.klass.options)
            if index is None:
                self._show_control_error(
                    f"No class matches {change['new']!r}: type part of a class name or its number."
                )
                return
            with self._quiet():  # show the whole name of the class the text picked
                c.klass.value = c.klass.options[index]
        if change["owner"] in (c.mode, c.layer):
            self._refresh_mode()
        self.apply_target(self._target())

    def _refresh_mode(self) -> None:
        """Ranges and visibility follow the mode and the layer (observers silenced)."""
        c = self.controls
        with self._quiet():
            channels = max(self._infos[c.layer.value].channels - 1, 0)
            c.unit.max = c.unit_b.max = channels
        c.show_for(c.mode.value, int(c.batch.value))

    def _on_run(self) -> None:
        if self.runner.paused or self.runner.snapshot().state == "settled":
            self.runner.resume()
            self._readout.show_stepping(True)
        else:
            self.runner.pause()
            self._readout.show_stepping(False)

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        self._syncing, before = True, self._syncing
        try:
            yield
        finally:
            self._syncing = before

    def _sync(self, settings: RenderSettings, target: Target) -> None:
        """Set every control from the runner's truth, without feeding the changes back."""
        c = self.controls
        with self._quiet():
            c.unit.max = c.unit_b.max = max(self._infos[target.layer].channels - 1, 0)
            c.show_values({**target_values(target, c.klass.options), **settings_values(settings)})
        c.show_for(target.mode, settings.batch)

    # --- panels' host (see host.py) -------------------------------------------------------------
    def run_job(
        self, name: str, work: Callable[[], Any], done: Callable[[Any], None], message: W.HTML, bar: W.IntProgress
    ) -> bool:
        return self._jobs.run(name, work, done, message, bar)

    def open_live(self, target: Target, image: Image.Image | None = None, source: PhotoStart | None = None) -> None:
        """Show ``target`` in the controls and optimize it live, from ``image`` when given."""
        photo = pil_to_tensor(image) if image is not None else None
        self.runner.load(self.runner.settings, target, photo, source)
        self._sync(self.runner.settings, target)

    def copy_to_clipboard(self, text: str) -> None:
        if isinstance(self.image_widget, LiveImage):
            self.image_widget.copy(text)

    # --- runner -> widgets (worker thread; see readout.py) --------------------------------------
    def _show(self, frame: Frame | None, snap: Snapshot) -> None:
        if self._closed:
            return
        self._readout.show(frame, snap)
        if snap.error and self.runner.last_error:
            self.last_error = self.runner.last_error

    def _show_control_error(self, message: str) -> None:
        self._readout.show_control_error(message, self.runner.snapshot)

    # --- public API -----------------------------------------------------------------------------
    last_error: str | None = None

    @property
    def frames_shown(self) -> int:
        return self._readout.frames

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran: the loop stopped, the model freed, the widgets closed."""
        return self._closed

    def image(self) -> Image.Image | None:
        """The current picture (a grid when the batch has several images), lossless."""
        arr = self.runner.image()
        return None if arr is None else Image.fromarray(grid(arr), "RGB")

    def settings(self) -> dict[str, Any]:
        """The settings that reproduce the current picture (model, objective, target, every setting)."""
        snap = self.runner.snapshot()
        target = snap.target
        return {
            "model": self.model.name,
            "objective": repr(target.objective(self.runner.channels_for(target))),
            "steps": snap.step,
            **snap.settings.as_dict(),
            "target": dataclasses.asdict(target),
        }

    def code(self) -> str:
        """The Python that reproduces the current image exactly (same CPU thread count): a
        ``render(...)`` call, or a ``Renderer`` replaying every change at the step it was made."""
        return self.runner.code()

    def timelapse_gif(self, path: str | Path | None = None, fps: float = 12.0) -> bytes:
        """An animated GIF of the whole run so far, sampled evenly (about 1 MB at most); written
        to ``path`` only when given."""
        data = self.runner.timelapse_gif(fps)
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def load(self, source: str | Path | bytes, name: str | None = None) -> None:
        """Apply the settings and target stored in a PNG saved by ``save`` (path or file bytes;
        ``name``: the uploaded file's name) and continue live from its picture. All or nothing:
        a bad file, a target these controls cannot show, or settings the device cannot hold
        raise a FeatvizError naming what is wrong and change nothing; the pixels are decoded only
        once the settings passed."""
        settings, target, picture = read_saved(source, check=self._check_load)
        path = str(source) if isinstance(source, (str, Path)) else (name or "featviz.png")
        note = None if isinstance(source, (str, Path)) else "the PNG you loaded: put its path here"
        start = PhotoStart(f"read_saved({path!r})[2]", Path(path).name, note)
        self.runner.load(settings, target, pil_to_tensor(picture), start)
        self._sync(self.runner.settings, target)

    def _check_load(self, settings: RenderSettings, target: Target) -> None:
        """Refuse what the controls cannot show or the runner would refuse, before anything changes."""
        c = self.controls
        listed = [v for _, v in c.layer.options]
        check_showable(target, [v for _, v in c.mode.options], self._infos, listed, c.klass.options)
        self.runner.check(settings, target)

    def save(self, path: str | Path) -> Path:
        """Write the current picture as PNG (with its settings in the metadata) to ``path``;
        returns the full path written."""
        image = self.image()
        if image is None:
            raise FeatvizError("No image yet: the optimization has not made a step.")
        return save_png(image, path, self.settings())

    def download(self, filename: str | None = None) -> None:
        """Offer the current picture as a PNG download in the browser, its settings inside (the
        Export tab's Load settings reads them back)."""
        image = self.image()
        if image is None:
            raise FeatvizError("No image yet: the optimization has not made a step.")
        name = filename or f"{file_stem(self.runner.target)}.png"
        png = png_bytes(image, self.settings())
        if isinstance(self.image_widget, LiveImage):
            self.image_widget.download(png, name)
        # A link works everywhere too (and is the only way with the Image backend).
        self.download_link.value = data_link(png, name, "image/png")

    def wait_for_steps(self, steps: int, timeout: float = 30.0) -> bool:
        """Block until the optimization has made ``steps`` steps (for scripts and tests)."""
        return self.runner.wait_for_steps(steps, timeout)

    def close(self) -> None:
        """Stop the loop, free the model's memory and close every child widget."""
        if getattr(self, "_closed", True):  # closed already, or __init__ failed before the loop existed
            return
        self._closed = True
        self.job.stop()
        self.runner.close()
        for child in self.children:
            close_tree(child)
        for w in self.controls.all():  # hidden ones too
            w.close()
        cells.closed(self)
        super().close()

    def _repr_png_(self) -> bytes | None:  # static fallback for viewers without a kernel
        image = self.image()
        if image is None:
            return None
        return png_bytes(image, self.settings())
