"""The Photo tab: upload a photo or pick a sample; DeepDream it with octaves, accentuate a
feature while staying close to the photo, or start the live optimization from it."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
from PIL import Image

from ..engine import explore
from ..engine.image import SAMPLES, PhotoError, load_photo, pil_to_tensor, sample_photo
from ..export import png_bytes
from ..runner import PhotoStart, encode
from .controls import STYLE, wide_layout
from .host import Host
from .parts import data_link, error_html, note_html, png_widget, progress_bar, uploaded_file

STAY_CLOSE = {"min": 0.0, "max": 1.0, "step": 0.05}  # explore.deepdream_photo's stay_close range


class PhotoPanel:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.photo: Image.Image | None = None
        self.source: PhotoStart | None = None
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
        self.bar = progress_bar()
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
            **STAY_CLOSE,
            description="stay close",
            tooltip="0: DeepDream; 1: within 6 grey levels of the photo (the feature accentuated, the photo kept)",
            readout_format=".2f",
            layout=wide_layout(),
            style=STYLE,
        )
        button = W.Layout(width="150px")
        self.dream_button = W.Button(description="Dream on photo", layout=button)
        self.live_button = W.Button(description="Live from photo", layout=button)
        self.noise_button = W.Button(description="Back to noise", layout=button)
        self.result = W.VBox([])
        self.upload.observe(self._on_upload, names="value")
        self.sample.observe(self._on_sample, names="value")
        self.dream_button.on_click(lambda _b: self.dream())
        self.live_button.on_click(lambda _b: self.live())
        self.noise_button.on_click(lambda _b: self.host.runner.start_from(None))
        self.widget = W.VBox(
            [
                W.HTML(
                    "DeepDream uses the current objective: pick <i>DeepDream (whole layer)</i> for the classic "
                    "look, or a channel to accentuate one feature."
                ),
                W.HBox([self.upload, self.sample], layout=W.Layout(flex_flow="row wrap")),
                self.preview,
                self.message,
                self.octaves,
                self.strength,
                self.stay_close,
                W.HBox([self.dream_button, self.live_button, self.noise_button], layout=W.Layout(flex_flow="row wrap")),
                self.bar,
                self.result,
            ],
            layout=W.Layout(width="100%"),
        )

    def set_photo(self, photo: Image.Image, name: str, source: PhotoStart) -> None:
        self.photo, self.source = photo, source
        self.preview.value = encode(np.asarray(photo), "png")
        self.message.value = note_html(f"{name}: {photo.width}x{photo.height}")

    def _on_upload(self, change: dict[str, Any]) -> None:
        upload = uploaded_file(change)
        if upload is not None:
            self.accept_upload(upload[1], upload[0])

    def accept_upload(self, data: bytes, name: str) -> None:
        """Decode an uploaded file; a bad one gets a clear message and changes nothing."""
        try:
            photo = load_photo(data, name=name)
        except PhotoError as exc:
            self.message.value = error_html(str(exc))
            return
        source = PhotoStart(
            f"load_photo({name!r})", name, f"load_photo reads the file you uploaded ({name}): put its path here"
        )
        self.set_photo(photo, name, source)

    def _on_sample(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.set_photo(
                sample_photo(change["new"]),
                change["new"],
                PhotoStart(f"sample_photo({change['new']!r})", change["new"]),
            )

    def _need_photo(self) -> Image.Image | None:
        if self.photo is None:
            self.message.value = error_html("Upload a photo or choose a sample first.")
        return self.photo

    def dream(self) -> None:
        photo = self._need_photo()
        if photo is None:
            return
        runner = self.host.runner
        objective = runner.target.objective(runner.channels_for(runner.target))
        octaves, strength, stay = int(self.octaves.value), float(self.strength.value), float(self.stay_close.value)
        settings = self.host.settings()  # the live target and settings the dream used

        def work() -> Image.Image:
            return explore.deepdream_photo(
                self.host.model,
                photo,
                objective,
                octaves=octaves,
                strength=strength,
                stay_close=stay,
                progress=self.host.job.progress,
                cancel=self.host.job.cancel,
            )

        def done(image: Image.Image) -> None:
            self.dreamed = image
            dreamed = {
                "octaves": octaves,
                "strength": strength,
                "stay_close": stay,
                "photo": self.source.label if self.source else "",
            }
            png = png_bytes(image, {**settings, "photo_dream": dreamed})
            reference = np.asarray(photo.resize(image.size), dtype=np.float32)
            distance = float(np.abs(np.asarray(image, dtype=np.float32) - reference).mean())
            self.result.children = [
                png_widget(image, min(480, image.width)),
                W.HTML(
                    f"stay close {stay:.2f}: mean |change| {distance:.1f} of 255 · {data_link(png, 'dream.png', 'image/png')}"
                ),
            ]

        self.host.run_job("dream", work, done, self.message, self.bar)

    def live(self) -> None:
        photo = self._need_photo()
        if photo is not None:
            self.host.runner.start_from(pil_to_tensor(photo), self.source)
