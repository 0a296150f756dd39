"""Dreamer: the live feature-visualization widget (controls + LiveImage + plot + status).

Observers here run on the kernel's main thread and only translate control values into
``LiveRunner.set*`` calls, which record the change for the worker thread. The worker publishes
frames and status through ``_Sink`` (from its own thread); nothing else writes those widgets.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import threading
import time
import traceback
import warnings
import weakref
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
from PIL import Image

from ..engine import RenderSettings, load_model, main_layers
from ..engine.layers import layers_by_name
from ..engine.models import LOGITS, FeatvizModel
from ..errors import FeatvizError, InvalidSettingError
from ..export import read_settings, save_png
from ..runner.encode import encode, gif, tile
from ..runner.live import Frame, LiveRunner, cpu_threads
from ..runner.target import Target
from .controls import DIVERSITY_SCALE, PENALTY_SCALE, build_controls
from .live_image import LiveImage
from .panels import ExplorePanel, ExportPanel, Job, PhotoPanel

_DREAMERS: weakref.WeakSet[Dreamer] = weakref.WeakSet()
_BY_CELL: dict[str, weakref.ReferenceType[Dreamer]] = {}


def stop_all() -> int:
    """Close every Dreamer in this process (their loops stop, memory is freed)."""
    alive = list(_DREAMERS)
    for d in alive:
        d.close()
    from ..runner.live import stop_all as stop_runners

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


def sparkline(values: list[float], width: int = 360, height: int = 56) -> str:
    """An inline SVG line plot of the objective (no JavaScript, works in every front end)."""
    if len(values) < 2:
        return f'<svg width="{width}" height="{height}" class="featviz-plot"></svg>'
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    n = len(values) - 1
    pts = " ".join(
        f"{2 + i * (width - 4) / n:.1f},{height - 12 - (v - lo) / span * (height - 16):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg width="{width}" height="{height}" class="featviz-plot" role="img" aria-label="objective over steps">'
        f'<polyline fill="none" stroke="var(--jp-brand-color1, #1976d2)" stroke-width="1.5" points="{pts}"/>'
        f'<text x="2" y="{height - 1}" font-size="10" fill="var(--jp-ui-font-color2, #666)">'
        f"objective {values[-1]:.3g} (min {lo:.3g}, max {hi:.3g})</text></svg>"
    )


class _Sink:
    """Connects the worker to the widgets: frames to the image, status to the labels."""

    def __init__(self, dreamer: Dreamer) -> None:
        self._dreamer = weakref.ref(dreamer)  # the worker must not keep a closed widget alive

    def ready(self) -> bool:
        d = self._dreamer()
        if d is None:
            return False
        return d.image_widget.ready() if isinstance(d.image_widget, LiveImage) else True

    def publish(self, frame: Frame | None, status: dict[str, Any]) -> None:
        d = self._dreamer()
        if d is not None:
            d._show(frame, status)

    def abandoned(self) -> bool:
        d = self._dreamer()
        if d is None:
            return True
        return isinstance(d.image_widget, LiveImage) and d.image_widget.abandoned()


class Dreamer(W.HBox):
    """Live feature visualization of ``model`` (the embedded EfficientNet-Lite0 by default).

    Move a slider and the background optimization follows on its next step. ``backend`` is
    ``"anywidget"`` (canvas with flow control) or ``"image"`` (plain ``ipywidgets.Image``, for
    hosts where anywidget's front end cannot load). ``replace_same_cell`` closes an earlier
    Dreamer created by the same notebook cell (re-running a cell never leaves a loop behind).
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
    ) -> None:
        _check_ipykernel()
        if backend not in ("anywidget", "image"):
            raise InvalidSettingError(f"backend must be 'anywidget' or 'image', got {backend!r}.")
        self.model = model if isinstance(model, FeatvizModel) else load_model(model)
        layers = [i for i in main_layers(self.model) if i.name != LOGITS]
        if not layers:
            raise FeatvizError("The model has no layer with a (C, H, W) output to visualize.")
        self._infos = layers_by_name(self.model)
        default_layer = "blocks.8" if "blocks.8" in self._infos else layers[len(layers) // 2].name
        layer = layer or default_layer
        if layer not in self._infos:
            from ..errors import unknown_layer

            raise unknown_layer(layer, [i.name for i in layers])
        options = [(f"{i.name}  ({i.channels} ch, {'x'.join(map(str, i.shape[1:]))})", i.name) for i in layers]
        if layer not in {o[1] for o in options}:
            options.append((f"{layer}  ({self._infos[layer].channels} ch)", layer))
        self.controls = c = build_controls(options, layer, size, lr, seed)
        c.unit.max = self._infos[layer].channels - 1
        c.unit.value = min(channel, c.unit.max)
        self.image_widget: LiveImage | W.Image = (
            LiveImage(display_size=display_size, pixelated=size < display_size // 2)
            if backend == "anywidget"
            else W.Image(format="jpeg", layout=W.Layout(width=f"{display_size}px"))
        )
        self.plot = W.HTML(sparkline([]))
        self.status = W.HTML("starting...")
        self.download_link = W.HTML("")
        self.last_error: str | None = None
        self._last_frame: Frame | None = None
        self._frame_count = 0
        self._closed = False
        self._status_lock = threading.Lock()
        settings = RenderSettings(size=size, lr=lr, seed=seed)
        self.runner = LiveRunner(self.model, self._target(), settings, _Sink(self), fps=fps)
        self.progress = W.IntProgress(
            0, min=0, max=1, description="", layout=W.Layout(width="360px", visibility="hidden")
        )
        self.job = Job(self, self.progress)
        self.explore = ExplorePanel(self, self.job)
        self.photo = PhotoPanel(self, self.job)
        self.export = ExportPanel(self)
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
        for page in self.pages.values():
            page.layout.flex = "0 0 auto"  # never squeeze a panel's rows
        self.tabs = W.VBox([self.page_picker, *self.pages.values()], layout=W.Layout(flex="0 0 auto"))
        super().__init__(
            [
                W.VBox(
                    [self.image_widget, self.plot, self.status, self.progress, self.download_link],
                    layout=W.Layout(width=f"{display_size + 16}px", align_items="flex-start"),
                ),
                self.tabs,
            ],
            layout=W.Layout(align_items="flex-start", flex_flow="row wrap"),
        )
        self._wire()
        self._refresh_unit()
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
            c.run.value = False

    def _show_page(self, name: str) -> None:
        for key, page in self.pages.items():
            page.layout.display = "flex" if key == name else "none"

    # --- controls -> runner ---------------------------------------------------------------------
    def _target(self) -> Target:
        c = self.controls
        return Target(
            mode=c.mode.value,
            layer=c.layer.value,
            unit=int(c.unit.value),
            direction_seed=int(c.direction_seed.value),
            unit_b=int(c.unit_b.value),
            alpha=float(c.alpha.value),
            diversity=float(c.diversity.value) * DIVERSITY_SCALE,
        )

    def _wire(self) -> None:
        c = self.controls
        for w in (c.mode, c.layer, c.unit, c.direction_seed, c.unit_b, c.alpha, c.diversity):
            w.observe(self._on_target, names="value")
        c.batch.observe(lambda ch: self._set(batch=int(ch["new"])), names="value")
        c.lr.observe(lambda ch: self._set(lr=float(ch["new"])), names="value")
        for name in ("l1", "tv", "blur"):
            getattr(c, name).observe(
                lambda ch, name=name: self._set(**{name: float(ch["new"]) * PENALTY_SCALE[name]}), names="value"
            )
        c.transform.observe(lambda ch: self._set(transform_strength=float(ch["new"])), names="value")
        c.views.observe(lambda ch: self._set(views=int(ch["new"])), names="value")
        c.size.observe(self._on_size, names="value")
        c.seed.observe(lambda ch: self._guard(self.runner.reset, int(ch["new"])), names="value")
        c.keep_image.observe(lambda ch: setattr(self.runner, "keep_image", bool(ch["new"])), names="value")
        c.run.observe(self._on_run, names="value")
        c.reset.on_click(lambda _b: self._guard(self.runner.reset))
        c.save.on_click(lambda _b: self._guard(self.download))
        c.new_direction.on_click(lambda _b: setattr(c.direction_seed, "value", int(c.direction_seed.value) + 1))

    def _guard(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        """Run a control action; a bad value shows in the status line and changes nothing.
        Nothing escapes to the notebook (a traceback there would land in whatever cell ran last)."""
        try:
            fn(*args, **kwargs)
        except FeatvizError as exc:
            self._show_error(str(exc))
        except Exception as exc:
            self.last_error = traceback.format_exc()
            self._show_error(f"{type(exc).__name__}: {exc} (details in .last_error)")

    def _set(self, **changes: Any) -> None:
        self._guard(self.runner.set, **changes)

    def _on_target(self, change: dict[str, Any]) -> None:
        if change["owner"] in (self.controls.mode, self.controls.layer):
            self._refresh_unit()
        else:
            self._refresh_unit_name()
        self._guard(self.runner.set_target, self._target())

    def _refresh_unit(self) -> None:
        """The unit slider's meaning and range follow the mode and the layer."""
        c = self.controls
        mode = c.mode.value
        with self.hold_trait_notifications():
            if mode == "class":
                c.unit.description = "class"
                c.unit.max = self._infos[LOGITS].channels - 1
            else:
                c.unit.description = "channel A" if mode == "mix" else "channel"
                c.unit.max = max(self._infos[c.layer.value].channels - 1, 0)
            c.unit_b.max = max(self._infos[c.layer.value].channels - 1, 0)
            c.unit.disabled = mode in ("deepdream", "direction")
            c.layer.disabled = mode == "class"
        c.direction_seed.layout.display = c.new_direction.layout.display = "" if mode == "direction" else "none"
        c.unit_b.layout.display = c.alpha.layout.display = "" if mode == "mix" else "none"
        self._refresh_unit_name()

    def _refresh_unit_name(self) -> None:
        c = self.controls
        names = self.model.class_names
        if c.mode.value == "class" and names and c.unit.value < len(names):
            c.unit_name.value = f"<b>{names[c.unit.value]}</b>"
        else:
            c.unit_name.value = ""

    def _on_size(self, change: dict[str, Any]) -> None:
        size = int(change["new"])
        if isinstance(self.image_widget, LiveImage):
            self.image_widget.pixelated = size < self.image_widget.display_size // 2
        self._set(size=size)

    def _on_run(self, change: dict[str, Any]) -> None:
        c = self.controls
        if change["new"]:
            c.run.description, c.run.icon = "Pause", "pause"
            self.runner.resume()
        else:
            c.run.description, c.run.icon = "Run", "play"
            self.runner.pause()

    # --- runner -> widgets (worker thread) ------------------------------------------------------
    def _show(self, frame: Frame | None, status: dict[str, Any]) -> None:
        if self._closed:
            return
        if frame is not None:
            self._last_frame = frame
            self._frame_count += 1
            if isinstance(self.image_widget, LiveImage):
                self.image_widget.show(frame)
            else:
                with self.image_widget.hold_sync():
                    self.image_widget.format = frame.mime.split("/")[1]
                    self.image_widget.value = frame.data
        with self._status_lock:
            self.status.value = self._status_html(status)
            self.plot.value = sparkline(list(self.runner.history)[-200:])
        if self.controls.mode.value == "class":
            self._refresh_unit_name()
        if status.get("state") == "paused" and self.controls.run.value:
            self.controls.run.value = False  # the loop paused itself: keep the button truthful
        if status.get("error") and self.runner.last_error:
            self.last_error = self.runner.last_error

    def _status_html(self, s: dict[str, Any]) -> str:
        obj = "-" if s.get("objective") is None else f"{s['objective']:.4g}"
        text = (
            f"{_describe(self.runner.target, self.model.class_names)} · step {s.get('step', 0)} · objective {obj} · {s.get('steps_per_s', 0):.1f} steps/s · "
            f"{s.get('device', '?')} · {s.get('state', '')}"
        )
        line = f'<span class="featviz-status">{text}</span>'
        if s.get("error"):
            line += f'<br><span class="featviz-error" style="color:#c62828">⚠ {_escape(s["error"])}</span>'
        elif s.get("warning"):
            line += f'<br><span class="featviz-warning" style="color:#ef6c00">{_escape(s["warning"])}</span>'
        return line

    def _show_error(self, message: str) -> None:
        self.runner.status["error"] = message
        with self._status_lock:
            self.status.value = self._status_html(self.runner.status)

    # --- public API -----------------------------------------------------------------------------
    @property
    def frames_shown(self) -> int:
        return self._frame_count

    def image(self) -> Image.Image | None:
        """The current picture (a grid when the batch has several images), lossless."""
        arr = self.runner.image()
        return None if arr is None else Image.fromarray(tile(arr), "RGB")

    def settings(self) -> dict[str, Any]:
        """The settings that reproduce the current picture (model, objective, target, every setting)."""
        r = self.runner.renderer
        record = r.record() if r is not None else {"model": self.model.name, **self.runner.settings.as_dict()}
        record["target"] = dataclasses.asdict(self.runner.target)
        return record

    def code(self) -> str:
        """The headless ``render(...)`` call that reproduces the current image (same seed)."""
        r = self.runner.renderer
        if r is None:
            raise FeatvizError("No image yet: the optimization has not made a step.")
        s = r.settings
        kwargs = ", ".join(
            f"{f.name}={getattr(s, f.name)!r}" for f in dataclasses.fields(s) if f.name not in ("size", "seed")
        )
        # The live loop's CPU thread count: the same arithmetic, so the same image (see render()).
        threads = f" threads={cpu_threads()}," if self.model.device.type == "cpu" else ""
        note = (
            "# Settings changed during the live run: this renders the current settings from the start.\n"
            if self.runner.changed_since_reset
            else ""
        )
        return (
            f"{note}from featviz_widgets import *\n"
            "from featviz_widgets.engine import TransformConfig\n\n"
            f"result = render(load_model({self.model.name!r}), {r.objective!r}, steps={r.step_count}, "
            f"size={s.size!r}, seed={s.seed}, progress=False,{threads} {kwargs})\n"
            "result.image"
        )

    def timelapse_gif(self, path: str | Path | None = None, fps: float = 12.0) -> bytes:
        """An animated GIF of the optimization so far (a frame every few steps); written to
        ``path`` only when given."""
        data = gif(list(self.runner.timelapse), fps)
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def load(self, source: str | Path | bytes) -> None:
        """Apply the settings stored in a PNG saved by ``save`` (path or file bytes)."""
        data = read_settings(io.BytesIO(source) if isinstance(source, bytes) else source)
        target = data.get("target") or {}
        c = self.controls
        with self.hold_trait_notifications():
            if target.get("mode") in dict(c.mode.options).values():
                c.mode.value = target["mode"]
            if target.get("layer") in dict(c.layer.options).values():
                c.layer.value = target["layer"]
            self._refresh_unit()
        for name, widget in (("unit", c.unit), ("unit_b", c.unit_b), ("direction_seed", c.direction_seed)):
            if isinstance(target.get(name), int):
                widget.value = min(target[name], widget.max)
        if isinstance(target.get("alpha"), (int, float)):
            c.alpha.value = float(target["alpha"])
        c.lr.value = float(data.get("lr", c.lr.value))
        for name in ("l1", "tv", "blur"):
            getattr(c, name).value = min(float(data.get(name, 0.0)) / PENALTY_SCALE[name], 1.0)
        if isinstance(data.get("transform"), dict):
            c.transform.value = float(data["transform"].get("strength", 1.0))
        if isinstance(data.get("views"), int):
            c.views.value = max(1, min(data["views"], c.views.max))
        size = data.get("size")
        if isinstance(size, int) and size in dict(c.size.options).values():
            c.size.value = size
        if isinstance(data.get("seed"), int):
            c.seed.value = data["seed"]

    def save(self, path: str | Path) -> Path:
        """Write the current picture as PNG (with its settings in the metadata) to ``path``."""
        image = self.image()
        if image is None:
            raise FeatvizError("No image yet: the optimization has not made a step.")
        return save_png(image, path, self.settings())

    def download(self, filename: str | None = None) -> None:
        """Offer the current picture as a PNG download in the browser."""
        image = self.image()
        if image is None:
            raise FeatvizError("No image yet: the optimization has not made a step.")
        name = (
            filename
            or f"featviz_{self.runner.target.mode}_{self.runner.target.layer_used}_{self.runner.target.unit}.png"
        )
        png = encode(np.asarray(image), "png")
        if isinstance(self.image_widget, LiveImage):
            self.image_widget.download(png, name)
        # A link works everywhere too (and is the only way with the Image backend).
        b64 = base64.b64encode(png).decode()
        self.download_link.value = f'<a download="{name}" href="data:image/png;base64,{b64}">⤓ {name}</a>'

    def wait_for_steps(self, steps: int, timeout: float = 30.0) -> bool:
        """Block until the optimization has made ``steps`` steps (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.runner.status.get("step", 0) >= steps:
                return True
            time.sleep(0.02)
        return False

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
        return encode(np.asarray(image), "png")


def _describe(target: Target, class_names: list[str] | None) -> str:
    """A short human label of the target, e.g. 'blocks.8 channel 5' or 'class 285 (Egyptian cat)'."""
    if target.mode == "class":
        name = class_names[target.unit] if class_names and target.unit < len(class_names) else ""
        return f"class {target.unit}" + (f" ({_escape(name)})" if name else "")
    if target.mode == "deepdream":
        return f"{target.layer} DeepDream"
    if target.mode == "direction":
        return f"{target.layer} direction #{target.direction_seed}"
    return f"{target.layer} {target.mode} {target.unit}"


def _close_tree(widget: W.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
