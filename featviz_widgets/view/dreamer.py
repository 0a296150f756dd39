"""Dreamer: the live feature-visualization widget — layout and wiring.

The runner owns the truth (settings, target, image); this module only lays the widgets out,
turns control changes into ``LiveRunner`` calls (validated there, once) and shows the snapshots
the worker publishes. Controls are set from the runner's truth only through ``_sync`` (after a
load or a gallery tile), which silences their observers meanwhile. Panels live in their own
modules and see the widget through ``host.Host``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as W
from PIL import Image

from ..engine import FeatvizModel, RenderSettings, load_model, main_layers
from ..engine.image.photos import pil_to_tensor
from ..engine.layers import layers_by_name
from ..engine.models import LOGITS
from ..errors import FeatvizError, InvalidSettingError, unknown_layer
from ..export import png_bytes, save_png
from ..runner import Frame, Job, LiveRunner, PhotoStart, Snapshot, Target, read_saved
from ..runner.encode import tile
from .controls import (
    DIVERSITY_SCALE,
    EXTRA_PARAM_LABELS,
    align_strength,
    align_weight,
    build_controls,
    class_options,
    penalty_strength,
    penalty_weight,
)
from .explore_panel import ExplorePanel
from .export_panel import ExportPanel
from .live_image import LiveImage
from .parts import data_link, error_html
from .photo_panel import PhotoPanel
from .status import file_stem, sparkline, status_html

_DREAMERS: weakref.WeakSet[Dreamer] = weakref.WeakSet()
_BY_CELL: dict[str, weakref.ReferenceType[Dreamer]] = {}


def stop_all() -> int:
    """Close every Dreamer in this process (their loops stop, memory is freed)."""
    alive = list(_DREAMERS)
    for d in alive:
        d.close()
    from ..runner import stop_all as stop_runners

    return len(alive) + stop_runners()


def _check_ipykernel() -> None:
    """ipykernel 7.0.0 and 7.0.1 drop comm messages sent from threads (fixed in 7.1.0)."""
    try:
        import ipykernel
    except ImportError:
        return
    if ipykernel.__version__ in ("7.0.0", "7.0.1"):
        warnings.warn(
            f"ipykernel {ipykernel.__version__} rejects widget updates from background threads, so the live "
            "image would never update. Install ipykernel>=7.1 (or 6.x): pip install -U ipykernel",
            RuntimeWarning,
            stacklevel=3,
        )


def _current_cell_id() -> str | None:
    """JupyterLab tags each execute request with its cell id; None elsewhere."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
        parent = ip.kernel.get_parent() if ip is not None and hasattr(ip, "kernel") else None
    except Exception:
        return None
    if not parent:
        return None
    cell = (parent.get("metadata") or {}).get("cellId")
    return str(cell) if cell else None


class _Sink:
    """Connects the worker to the widgets: frames to the image, snapshots to the labels."""

    def __init__(self, dreamer: Dreamer) -> None:
        self._dreamer = weakref.ref(dreamer)  # the worker must not keep a closed widget alive

    def ready(self) -> bool:
        d = self._dreamer()
        if d is None:
            return False
        return d.image_widget.ready() if isinstance(d.image_widget, LiveImage) else True

    def publish(self, frame: Frame | None, snapshot: Snapshot) -> None:
        d = self._dreamer()
        if d is not None:
            d._show(frame, snapshot)

    def abandoned(self) -> bool:
        d = self._dreamer()
        if d is None:
            return True
        return isinstance(d.image_widget, LiveImage) and d.image_widget.abandoned()

    def revive(self) -> None:
        d = self._dreamer()
        if d is not None and isinstance(d.image_widget, LiveImage):
            d.image_widget.revive()


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
        _check_ipykernel()
        if backend not in ("anywidget", "image"):
            raise InvalidSettingError(f"backend must be 'anywidget' or 'image', got {backend!r}.")
        self.model = model if isinstance(model, FeatvizModel) else load_model(model)
        layers = [i for i in main_layers(self.model) if i.name != LOGITS]
        if not layers:
            raise FeatvizError(
                "The model has no layer to visualize: none outputs a feature map, tokens or channels "
                "(see featviz_widgets.list_layers(model)); pass layouts={...} to load_model if the probe misread them."
            )
        self._infos = layers_by_name(self.model)
        layer = layer or ("blocks.8" if "blocks.8" in {i.name for i in layers} else layers[len(layers) // 2].name)
        if layer not in self._infos:
            raise unknown_layer(layer, [i.name for i in layers])
        if layer not in {i.name for i in layers}:
            layers.append(self._infos[layer])
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
        self.plot = W.HTML(sparkline([]))
        self.status = W.HTML("starting...")
        self.download_link = W.HTML("")
        self._control_error = ""
        self._frame_count = 0
        self._closed = False
        self._syncing = False
        self._stepping_shown: bool | None = None
        self._status_lock = threading.Lock()
        self.runner = LiveRunner(
            self.model, self._target(), RenderSettings(size=size, lr=lr, seed=seed), _Sink(self), fps=fps, clock=clock
        )
        self._job_outputs: tuple[W.HTML, W.IntProgress] | None = None
        self.job = Job(self.runner, self._job_progress, self._job_error, self._job_finished)
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
        _DREAMERS.add(self)
        cell = _current_cell_id()
        if replace_same_cell and cell is not None:
            old = _BY_CELL.get(cell)
            if old is not None and old() is not None and old() is not self:
                old().close()  # type: ignore[union-attr]
            _BY_CELL[cell] = weakref.ref(self)
        if autostart:
            self.runner.start()
        else:
            self.runner.pause()
            self._refresh_run_button(False)

    def _show_page(self, name: str) -> None:
        for key, page in self.pages.items():
            page.layout.display = "flex" if key == name else "none"

    # --- controls -> runner ---------------------------------------------------------------------
    def _target(self) -> Target:
        c = self.controls
        mode = c.mode.value
        unit = (_class_index(c.klass.value, c.klass.options) or 0) if mode == "class" else int(c.unit.value)
        return Target(
            mode=mode,
            layer=c.layer.value,
            unit=unit,
            direction_seed=int(c.direction_seed.value),
            unit_b=int(c.unit_b.value),
            alpha=float(c.alpha.value),
            diversity=float(c.diversity.value) * DIVERSITY_SCALE,
        )

    def _wire(self) -> None:
        c = self.controls
        for w in (c.mode, c.layer, c.unit, c.klass, c.direction_seed, c.unit_b, c.alpha, c.diversity):
            w.observe(self._on_target, names="value")
        self._observe(c.batch, self._on_batch)
        self._observe(c.lr, lambda v: self.runner.set(lr=float(v)))
        for name in ("l1", "tv", "blur"):
            self._observe(getattr(c, name), self._penalty(name))
        self._observe(c.param, self._on_param)
        self._observe(c.decay, lambda v: self.runner.set(decay=float(v)))
        self._observe(c.align, self._on_align)
        self._observe(c.align_photos, lambda v: self.runner.set(align_photos=str(v).strip() or None))
        c.transparency.observe(lambda ch: self.runner.show_transparency(bool(ch["new"])), names="value")
        self._observe(c.transform, lambda v: self.runner.set(transform_strength=float(v)))
        self._observe(c.views, lambda v: self.runner.set(views=int(v)))
        self._observe(c.size, self._on_size)
        self._observe(c.seed, lambda v: self.runner.reset(int(v)))
        c.keep_image.observe(lambda ch: setattr(self.runner, "keep_image", bool(ch["new"])), names="value")
        c.run.on_click(lambda _b: self._on_run())
        c.reset.on_click(lambda _b: self._guard(self.runner.reset))
        c.save.on_click(lambda _b: self._guard(self.download))
        c.new_direction.on_click(lambda _b: setattr(c.direction_seed, "value", int(c.direction_seed.value) + 1))

    def _penalty(self, name: str) -> Callable[[Any], None]:
        def apply(strength: Any) -> None:
            self.runner.set(**{name: penalty_weight(name, float(strength))})

        return apply

    def _observe(self, widget: W.Widget, apply: Callable[[Any], None]) -> None:
        def observer(change: dict[str, Any]) -> None:
            if not self._syncing:
                self._guard(apply, change["new"])

        widget.observe(observer, names="value")

    def _guard(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a control action; a bad value shows in the status line and changes nothing.
        Nothing escapes to the notebook (a traceback there would land in whatever cell ran last)."""
        try:
            fn(*args, **kwargs)
        except FeatvizError as exc:
            self._show_control_error(str(exc))
            return
        self._show_control_error("")

    def _on_target(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        c = self.controls
        if change["owner"] is c.klass:
            index = _class_index(change["new"], c.klass.options)
            if index is None:
                self._show_control_error(
                    f"No class matches {change['new']!r}: type part of a class name or its number."
                )
                return
            with self._quiet():  # show the whole name of the class the text picked
                c.klass.value = c.klass.options[index]
        if change["owner"] in (c.mode, c.layer):
            self._refresh_mode()
        self._guard(self.runner.set_target, self._target())

    def _refresh_mode(self) -> None:
        """Ranges and visibility follow the mode and the layer (observers silenced)."""
        c = self.controls
        with self._quiet():
            channels = max(self._infos[c.layer.value].channels - 1, 0)
            c.unit.max = c.unit_b.max = channels
        c.show_for(c.mode.value, int(c.batch.value))

    def _on_batch(self, batch: int) -> None:
        self.runner.set(batch=int(batch))
        self.controls.show_for(self.controls.mode.value, int(batch))

    def _on_param(self, param: str) -> None:
        self.controls.show_param(param)
        self.runner.set(param=param)  # the runner carries the picture over (Renderer.apply)

    def _on_align(self, strength: float) -> None:
        self.controls.show_align(float(strength))
        self.runner.set(align=align_weight(float(strength)))

    def _on_size(self, size: int) -> None:
        self.runner.set(size=int(size))

    def _on_run(self) -> None:
        if self.runner.paused or self.runner.snapshot().state == "settled":
            self.runner.resume()
            self._refresh_run_button(True)
        else:
            self.runner.pause()
            self._refresh_run_button(False)

    def _refresh_run_button(self, stepping: bool) -> None:
        if stepping == self._stepping_shown:
            return
        self._stepping_shown = stepping
        c = self.controls
        c.run.description, c.run.icon = ("Pause", "pause") if stepping else ("Run", "play")

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
            c.mode.value = target.mode
            if target.mode != "class":
                if target.layer not in {value for _, value in c.layer.options}:  # a layer beyond the main ones
                    c.layer.options = [*c.layer.options, (target.layer, target.layer)]
                c.layer.value = target.layer
            c.unit.max = c.unit_b.max = max(self._infos[target.layer].channels - 1, 0)
            if target.mode == "class":
                c.klass.value = c.klass.options[target.unit]
            else:
                c.unit.value = target.unit
            c.unit_b.value, c.alpha.value = target.unit_b, target.alpha
            c.direction_seed.value = target.direction_seed
            c.diversity.value = min(target.diversity / DIVERSITY_SCALE, 1.0)
            c.batch.value = settings.batch
            if settings.lr not in c.lr.options:
                c.lr.options = sorted({*c.lr.options, settings.lr})
            c.lr.value = settings.lr
            for name in ("l1", "tv", "blur"):
                getattr(c, name).value = penalty_strength(name, getattr(settings, name))
            if settings.param not in {value for _, value in c.param.options}:
                label = EXTRA_PARAM_LABELS.get(settings.param, settings.param)
                c.param.options = [*c.param.options, (label, settings.param)]
            c.param.value = settings.param
            c.decay.value = min(settings.decay, c.decay.max)
            c.align.value = align_strength(settings.align)
            c.align_photos.value = settings.align_photos or ""
            c.transform.value = min(settings.transform.strength, c.transform.max)
            c.views.value = min(settings.views, c.views.max)
            sizes = {value for _, value in c.size.options}
            if settings.side not in sizes:
                c.size.options = [(f"{s} px", s) for s in sorted({*sizes, settings.side})]
            c.size.value = settings.side
            c.seed.value = settings.seed
        c.show_for(target.mode, settings.batch)

    # --- panels' host (see host.py) -------------------------------------------------------------
    def run_job(
        self, name: str, work: Callable[[], Any], done: Callable[[Any], None], message: W.HTML, bar: W.IntProgress
    ) -> bool:
        if self.job.busy:
            message.value = error_html(f"Still busy with '{self.job.name}'; wait for it before '{name}'.")
            return False
        self._job_outputs = (message, bar)
        return self.job.start(name, work, done)

    def _job_progress(self, name: str, done: int, total: int) -> None:
        if self._job_outputs is not None:
            bar = self._job_outputs[1]
            bar.description, bar.max, bar.value = name, total, done
            bar.layout.display = ""

    def _job_error(self, _name: str, message: str) -> None:
        if self._job_outputs is not None:
            self._job_outputs[0].value = error_html(message)

    def _job_finished(self, _name: str) -> None:
        if self._job_outputs is not None:
            self._job_outputs[1].layout.display = "none"

    def open_live(self, target: Target, image: Image.Image | None = None, source: PhotoStart | None = None) -> None:
        """Show ``target`` in the controls and optimize it live, from ``image`` when given."""
        photo = pil_to_tensor(image) if image is not None else None
        self.runner.load(self.runner.settings, target, photo, source)
        self._sync(self.runner.settings, target)

    def copy_to_clipboard(self, text: str) -> None:
        if isinstance(self.image_widget, LiveImage):
            self.image_widget.copy(text)

    # --- runner -> widgets (worker thread) ------------------------------------------------------
    def _show(self, frame: Frame | None, snap: Snapshot) -> None:
        if self._closed:
            return
        if frame is not None:
            self._frame_count += 1
            if isinstance(self.image_widget, LiveImage):
                self.image_widget.show(frame)
            else:
                with self.image_widget.hold_sync():
                    self.image_widget.format = frame.mime.split("/")[1]
                    self.image_widget.value = frame.data
        with self._status_lock:
            self.status.value = status_html(snap, self.model.class_names, self._control_error)
            self.plot.value = sparkline(snap.history[-200:])
        self._refresh_run_button(snap.stepping)
        if snap.error and self.runner.last_error:
            self.last_error = self.runner.last_error

    def _show_control_error(self, message: str) -> None:
        self._control_error = message
        with self._status_lock:
            self.status.value = status_html(self.runner.snapshot(), self.model.class_names, message)

    # --- public API -----------------------------------------------------------------------------
    last_error: str | None = None

    @property
    def frames_shown(self) -> int:
        return self._frame_count

    def image(self) -> Image.Image | None:
        """The current picture (a grid when the batch has several images), lossless."""
        arr = self.runner.image()
        return None if arr is None else Image.fromarray(tile(arr), "RGB")

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
        modes = [value for _, value in c.mode.options]
        if target.mode not in modes:
            raise InvalidSettingError(
                f"The saved target's mode {target.mode!r} has no control in this widget (valid: "
                f"{', '.join(modes)}); render it headless with Renderer(model, objective) instead."
            )
        if target.mode != "class" and target.layer not in self._infos:
            raise unknown_layer(target.layer, [v for _, v in c.layer.options])
        if target.mode == "class" and not 0 <= target.unit < len(c.klass.options):
            raise InvalidSettingError(
                f"The saved class {target.unit} is not one of this model's {len(c.klass.options)} classes."
            )
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
            _close_tree(child)
        for w in self.controls.all():  # hidden ones too
            w.close()
        _DREAMERS.discard(self)
        super().close()

    def _repr_png_(self) -> bytes | None:  # static fallback for viewers without a kernel
        image = self.image()
        if image is None:
            return None
        return png_bytes(image, self.settings())


def _class_index(entry: str, options: tuple[str, ...] = ()) -> int | None:
    """The class number of a picker entry ``'285 Egyptian cat'``, of a number ``'309'``, or of
    typed text that names a class, case-insensitively: the class of that exact name (``'bee'``),
    else the first whose name starts with it, else the first with a word starting with it,
    else the first containing it (``'golden retr'``). None when nothing matches (or the number
    is not a class)."""
    text = " ".join(entry.split()).lower()
    if not text:
        return None
    head = text.split(" ", 1)[0]
    if head.isdigit():
        number = int(head)
        return number if number < len(options) else None
    names = [o.split(" ", 1)[1].lower() if " " in o else "" for o in options]
    tests = (
        lambda name: name == text,
        lambda name: name.startswith(text),
        lambda name: any(word.startswith(text) for word in name.replace("-", " ").split()),
        lambda name: text in name,
    )
    for test in tests:
        index = next((i for i, name in enumerate(names) if test(name)), None)
        if index is not None:
            return index
    return None


def _close_tree(widget: W.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
