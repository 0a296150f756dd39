"""The Explore, Photo and Export tabs of the Dreamer.

Heavy work (galleries, comparisons, exemplar search, photo dreams) runs as a ``Job`` on its own
thread: the live loop pauses meanwhile (one optimization at a time keeps the machine responsive)
and resumes after; progress goes to a bar and errors to the status line.
"""

from __future__ import annotations

import base64
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import numpy as np
from PIL import Image

from ..engine import explore
from ..engine.openmp import release_idle_openmp_threads
from ..engine.photos import SAMPLES, PhotoError, load_photo, pil_to_tensor, sample_photo
from ..errors import FeatvizError
from ..runner.encode import encode, tile, tile_index
from .controls import STYLE, wide_layout
from .live_image import LiveImage

if TYPE_CHECKING:
    from .dreamer import Dreamer


def png_widget(image: Image.Image, width: int | None = None) -> W.Image:
    layout = W.Layout(width=f"{width}px") if width else W.Layout()
    return W.Image(value=encode(np.asarray(image.convert("RGB")), "png"), format="png", layout=layout)


def data_link(data: bytes, filename: str, mime: str) -> str:
    return f'<a download="{filename}" href="data:{mime};base64,{base64.b64encode(data).decode()}">⤓ {filename}</a>'


def uploaded_file(change: dict[str, Any]) -> tuple[str, bytes] | None:
    """(name, bytes) of the file a FileUpload's value change carries (ipywidgets 7 or 8)."""
    files = change["new"]
    if not files:
        return None
    item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
    get = item.get if isinstance(item, dict) else lambda key, default: getattr(item, key, default)
    return str(get("name", "upload")), bytes(get("content", b""))


class Job:
    """Runs one background task at a time for a Dreamer, pausing its live loop meanwhile."""

    def __init__(self, dreamer: Dreamer, bar: W.IntProgress) -> None:
        self.dreamer = dreamer
        self.bar = bar
        self.thread: threading.Thread | None = None
        self.cancel = threading.Event()
        self.last_error: str | None = None

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def progress(self, done: int, total: int) -> None:
        self.bar.max = max(total, 1)
        self.bar.value = min(done, total)

    def start(self, name: str, work: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        if self.busy:
            self.dreamer._show_error(f"Still busy with the previous task; wait for it before '{name}'.")
            return False
        runner = self.dreamer.runner
        was_running = not runner.paused
        runner.pause()
        self.cancel.clear()
        self.bar.description = name
        self.bar.value = 0
        self.bar.layout.visibility = "visible"

        def body() -> None:
            try:
                done(work())
            except InterruptedError:
                pass
            except FeatvizError as exc:
                self.dreamer._show_error(str(exc))
            except Exception as exc:  # keep the widget alive; the traceback stays available
                self.last_error = traceback.format_exc()
                self.dreamer.last_error = self.last_error
                self.dreamer._show_error(f"{name} failed: {type(exc).__name__}: {exc}")
            finally:
                self.bar.layout.visibility = "hidden"
                if was_running and not self.dreamer._closed:
                    runner.resume()

        release_idle_openmp_threads()  # see engine/openmp.py: the job's OpenMP team runs at full speed
        self.thread = threading.Thread(target=body, name=f"featviz-job-{name}", daemon=True)
        self.thread.start()
        return True

    def wait(self, timeout: float = 120.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def stop(self) -> None:
        self.cancel.set()
        self.wait(10)


class ExplorePanel:
    """Compare a neuron with random directions, interpolate two channels, browse a layer's
    gallery (click a tile to open it live), and find natural exemplars of the target."""

    def __init__(self, dreamer: Dreamer, job: Job) -> None:
        self.d, self.job = dreamer, job
        self.compare_button = W.Button(description="Neuron vs random directions", layout=W.Layout(width="220px"))
        self.n_random = W.IntSlider(2, min=1, max=5, description="random dirs", layout=wide_layout(), style=STYLE)
        self.new_directions = W.Button(description="New random directions", layout=W.Layout(width="220px"))
        self.direction_base = 0
        self.interp_button = W.Button(description="Interpolate channel → channel B", layout=W.Layout(width="220px"))
        self.frames = W.IntSlider(5, min=3, max=9, description="frames", layout=wide_layout(), style=STYLE)
        self.gallery_button = W.Button(description="Gallery of this layer", layout=W.Layout(width="220px"))
        self.gallery = LiveImage(display_size=480, pixelated=True)
        self.gallery.layout.display = "none"
        self.gallery_channels: list[int] = []
        self.gallery_tile = 0
        self.exemplar_button = W.Button(description="Natural exemplars", layout=W.Layout(width="220px"))
        self.folder = W.Text("", placeholder="folder of images (empty: bundled samples)", layout=wide_layout())
        self.output = W.VBox([])
        self.exemplars = W.VBox([])
        self.compare_button.on_click(lambda _b: self.compare())
        self.new_directions.on_click(lambda _b: self.compare(new=True))
        self.interp_button.on_click(lambda _b: self.interpolate())
        self.gallery_button.on_click(lambda _b: self.render_gallery())
        self.exemplar_button.on_click(lambda _b: self.find_exemplars())
        self.gallery.on_click(self.open_tile)
        self.widget = W.VBox(
            [
                W.HTML(
                    "<b>Are neurons special?</b> The channel next to random directions of the same layer, "
                    "rendered together with identical settings."
                ),
                W.HBox([self.compare_button, self.new_directions]),
                self.n_random,
                W.HTML("<b>Interaction between neurons</b>: frames that share parameters, from channel to channel B."),
                W.HBox([self.interp_button]),
                self.frames,
                W.HTML("<b>Layer gallery</b>: every channel, rendered in batches. Click a tile to open it live."),
                self.gallery_button,
                self.gallery,
                W.HTML("<b>Natural exemplars</b>: the photo crops that excite the current target most."),
                W.HBox([self.exemplar_button]),
                self.folder,
                self.exemplars,
                self.output,
            ]
        )

    def _settings(self) -> dict[str, Any]:
        s = self.d.runner.settings
        return {"lr": s.lr, "l1": s.l1, "tv": s.tv, "blur": s.blur, "transform": s.transform}

    def compare(self, new: bool = False) -> None:
        c = self.d.controls
        if new:
            self.direction_base += int(self.n_random.value)
        layer, channel, base = c.layer.value, int(c.unit.value), self.direction_base

        def work() -> explore.Sheet:
            return explore.compare_directions(
                self.d.model,
                layer,
                channel,
                n_random=int(self.n_random.value),
                direction_seed=base,
                steps=96,
                size=96,
                seed=int(c.seed.value),
                progress=self.job.progress,
                cancel=self.job.cancel,
                **self._settings(),
            )

        self.job.start("compare", work, self._show_sheet)

    def interpolate(self) -> None:
        c = self.d.controls
        a, b = f"{c.layer.value}:{int(c.unit.value)}", f"{c.layer.value}:{int(c.unit_b.value)}"

        def work() -> explore.Sheet:
            return explore.interpolate(
                self.d.model,
                a,
                b,
                frames=int(self.frames.value),
                steps=96,
                size=80,
                seed=int(c.seed.value),
                progress=self.job.progress,
                cancel=self.job.cancel,
                **self._settings(),
            )

        self.job.start("interpolate", work, self._show_sheet)

    def _show_sheet(self, sheet: explore.Sheet) -> None:
        self.last_sheet = sheet
        tiles = [
            W.VBox([png_widget(img, 120), W.HTML(f"<small>{label}<br>value {v:.3g}</small>")])
            for img, label, v in zip(sheet.images, sheet.labels, sheet.values, strict=True)
        ]
        self.output.children = [W.HBox(tiles, layout=W.Layout(flex_flow="row wrap"))]

    def render_gallery(self) -> None:
        layer = self.d.controls.layer.value
        self.gallery_layer = layer

        def work() -> explore.Sheet:
            return explore.layer_gallery(
                self.d.model,
                layer,
                steps=48,
                size=64,
                seed=int(self.d.controls.seed.value),
                progress=self.job.progress,
                cancel=self.job.cancel,
            )

        def done(sheet: explore.Sheet) -> None:
            self.gallery_channels = [int(label.rsplit(":", 1)[1]) for label in sheet.labels]
            self.gallery_tile = sheet.images[0].size[0]
            grid = tile(np.stack([np.asarray(i) for i in sheet.images]))
            self.gallery.layout.display = ""
            self.gallery.show_image(grid)

        self.job.start("gallery", work, done)

    def open_tile(self, x: int, y: int) -> None:
        """A click on the gallery at frame pixel (x, y) opens that channel in the live view."""
        if not self.gallery_channels:
            return
        index = tile_index(x, y, len(self.gallery_channels), self.gallery_tile, self.gallery_tile)
        if index is None:
            return
        c = self.d.controls
        with self.d.hold_trait_notifications():
            c.mode.value = "channel"
            c.layer.value = self.gallery_layer
        c.unit.value = self.gallery_channels[index]

    def find_exemplars(self) -> None:
        target = self.d.runner.target
        objective = target.objective(self.d.runner.channels_for(target))
        folder = self.folder.value.strip() or None

        def work() -> tuple[list[explore.Exemplar], float]:
            found = explore.top_exemplars(
                self.d.model,
                objective,
                folder,
                cancel=self.job.cancel,
                progress=lambda n: self.job.progress(n, max(n, 1)),
            )
            r = self.d.runner.renderer
            viz = float(r.measure().mean()) if r is not None else float("nan")
            return found, viz

        def done(result: tuple[list[explore.Exemplar], float]) -> None:
            found, viz = result
            if not found:
                self.exemplars.children = [W.HTML("No readable images found.")]
                return
            ratio = viz / found[0].score if found[0].score else float("inf")
            tiles = [
                W.VBox(
                    [
                        png_widget(e.crop.resize((96, 96)), 96),
                        W.HTML(f"<small>{e.source.rsplit('/', 1)[-1]}<br>{e.score:.3g}</small>"),
                    ]
                )
                for e in found
            ]
            self.exemplars.children = [
                W.HTML(f"visualization {viz:.3g} vs best natural crop {found[0].score:.3g}: <b>ratio {ratio:.2f}</b>"),
                W.HBox(tiles, layout=W.Layout(flex_flow="row wrap")),
            ]

        self.job.start("exemplars", work, done)


class PhotoPanel:
    """Upload a photo or pick a sample; DeepDream it with octaves, accentuate a feature, or
    start the live optimization from it."""

    def __init__(self, dreamer: Dreamer, job: Job) -> None:
        self.d, self.job = dreamer, job
        self.photo: Image.Image | None = None
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Upload photo")
        self.sample = W.Dropdown(
            options=[("(choose a sample)", "")] + [(s, s) for s in SAMPLES],
            value="",
            description="sample",
            layout=wide_layout(),
            style=STYLE,
        )
        self.preview = W.Image(format="png", layout=W.Layout(width="160px"))
        self.message = W.HTML("")
        self.octaves = W.IntSlider(3, min=1, max=5, description="octaves", layout=wide_layout(), style=STYLE)
        self.strength = W.FloatLogSlider(
            0.05,
            base=10,
            min=-2.5,
            max=-0.5,
            description="strength (lr)",
            readout_format=".3f",
            layout=wide_layout(),
            style=STYLE,
        )
        self.stay_close = W.FloatSlider(
            0.0,
            min=0.0,
            max=200.0,
            step=1.0,
            description="stay close",
            tooltip="0: DeepDream; more keeps the picture near the photo (accentuation)",
            layout=wide_layout(),
            style=STYLE,
        )
        self.dream_button = W.Button(description="Dream on photo", layout=W.Layout(width="160px"))
        self.live_button = W.Button(description="Live from photo", layout=W.Layout(width="160px"))
        self.noise_button = W.Button(description="Back to noise", layout=W.Layout(width="160px"))
        self.result = W.VBox([])
        self.upload.observe(self._on_upload, names="value")
        self.sample.observe(self._on_sample, names="value")
        self.dream_button.on_click(lambda _b: self.dream())
        self.live_button.on_click(lambda _b: self.live())
        self.noise_button.on_click(lambda _b: self.d._guard(self.d.runner.start_from, None))
        self.widget = W.VBox(
            [
                W.HTML(
                    "DeepDream uses the current objective: pick <i>DeepDream (whole layer)</i> for the classic "
                    "look, or a channel to accentuate one feature."
                ),
                W.HBox([self.upload, self.sample]),
                self.preview,
                self.message,
                self.octaves,
                self.strength,
                self.stay_close,
                W.HBox([self.dream_button, self.live_button, self.noise_button]),
                self.result,
            ]
        )

    def set_photo(self, photo: Image.Image, name: str) -> None:
        self.photo = photo
        self.preview.value = encode(np.asarray(photo), "png")
        self.message.value = f"{name}: {photo.width}x{photo.height}"

    def _on_upload(self, change: dict[str, Any]) -> None:
        upload = uploaded_file(change)
        if upload is not None:
            self.accept_upload(upload[1], upload[0])

    def accept_upload(self, data: bytes, name: str) -> None:
        """Decode an uploaded file; a bad one gets a clear message and changes nothing."""
        try:
            self.set_photo(load_photo(data, name=name), name)
        except PhotoError as exc:
            self.message.value = f'<span style="color:#c62828">⚠ {exc}</span>'

    def _on_sample(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.set_photo(sample_photo(change["new"]), change["new"])

    def _need_photo(self) -> Image.Image | None:
        if self.photo is None:
            self.message.value = '<span style="color:#c62828">⚠ Upload a photo or choose a sample first.</span>'
        return self.photo

    def dream(self) -> None:
        photo = self._need_photo()
        if photo is None:
            return
        target = self.d.runner.target
        objective = target.objective(self.d.runner.channels_for(target))

        def work() -> Image.Image:
            return explore.deepdream_photo(
                self.d.model,
                photo,
                objective,
                octaves=int(self.octaves.value),
                strength=float(self.strength.value),
                stay_close=float(self.stay_close.value),
                progress=self.job.progress,
                cancel=self.job.cancel,
            )

        def done(image: Image.Image) -> None:
            self.dreamed = image
            png = encode(np.asarray(image), "png")
            self.result.children = [
                png_widget(image, min(480, image.width)),
                W.HTML(data_link(png, "dream.png", "image/png")),
            ]

        self.job.start("dream", work, done)

    def live(self) -> None:
        photo = self._need_photo()
        if photo is not None:
            self.d._guard(self.d.runner.start_from, pil_to_tensor(photo))
            if float(self.stay_close.value):
                self.d.controls.keep_image.value = True


class ExportPanel:
    """Save with settings, load settings back, a time-lapse GIF and the code that reproduces the image."""

    def __init__(self, dreamer: Dreamer) -> None:
        self.d = dreamer
        self.path = W.Text("", placeholder="file.png (written only when you click)", layout=wide_layout())
        self.save_button = W.Button(description="Save PNG to file", layout=W.Layout(width="160px"))
        self.load = W.FileUpload(accept=".png", multiple=False, description="Load settings")
        self.gif_button = W.Button(description="Time-lapse GIF", layout=W.Layout(width="160px"))
        self.code_button = W.Button(description="Copy as code", layout=W.Layout(width="160px"))
        self.code = W.Textarea("", layout=W.Layout(width="520px", height="140px"))
        self.links = W.HTML("")
        self.save_button.on_click(lambda _b: self._save())
        self.gif_button.on_click(lambda _b: self._gif())
        self.code_button.on_click(lambda _b: self.d._guard(lambda: setattr(self.code, "value", self.d.code())))
        self.load.observe(self._on_load, names="value")
        self.widget = W.VBox(
            [
                W.HBox([self.path, self.save_button]),
                self.load,
                W.HBox([self.gif_button, self.code_button]),
                self.links,
                self.code,
            ]
        )

    def _save(self) -> None:
        path = self.path.value.strip()
        if not path.lower().endswith(".png"):
            self.d._show_error("Type a file name ending in .png first; nothing is written anywhere else.")
            return
        self.d._guard(lambda: setattr(self.links, "value", f"saved {self.d.save(path)}"))

    def _gif(self) -> None:
        try:
            data = self.d.timelapse_gif()
        except ValueError as exc:
            self.d._show_error(str(exc))
            return
        self.links.value = data_link(data, "featviz_timelapse.gif", "image/gif")

    def _on_load(self, change: dict[str, Any]) -> None:
        upload = uploaded_file(change)
        if upload is not None:
            self.d._guard(self.d.load, upload[1])
