"""Explore → Directions from photos: k directions of the current layer found from a folder of
photos (NMF, PCA, ICA, k-means; random for comparison), rendered as one labelled gallery with
each direction's selectivity. A click on a tile optimizes that direction live from its tile."""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from ..engine.explore import DirectionSheet, directions_from_photos
from ..engine.image import grid_index
from ..runner import PhotoStart, Target, labelled_grid
from .controls import STYLE, wide_layout
from .host import Host
from .live_image import LiveImage
from .parts import GALLERY_WIDTH, section

METHODS = (("NMF", "nmf"), ("PCA", "pca"), ("ICA", "ica"), ("k-means", "kmeans"), ("random", "random"))


class DirectionsSection:
    def __init__(self, host: Host, message: W.HTML, bar: W.IntProgress) -> None:
        self.host, self.message, self.bar = host, message, bar
        self.method = W.Dropdown(options=METHODS, value="nmf", description="method", layout=wide_layout(), style=STYLE)
        self.k = W.IntSlider(6, min=2, max=12, description="directions", layout=wide_layout(), style=STYLE)
        self.folder = W.Text(
            "", placeholder="empty: the probe photos", description="photo folder", layout=wide_layout(), style=STYLE
        )
        self.button = W.Button(description="Directions from photos", layout=W.Layout(width="250px"))
        self.gallery = LiveImage(display_size=0)
        self.gallery.layout.display = "none"
        self.labels = W.HTML("")
        self.sheet: DirectionSheet | None = None
        self.cell = (0, 0, 1)  # (height with caption, width) of one tile, and the columns
        self.call = ""
        self.button.on_click(lambda _b: self.find())
        self.gallery.on_click(self.open_tile)
        self.widgets = [
            section("Directions from photos:", "directions of this layer learned from photos, with their selectivity."),
            self.method,
            self.k,
            self.folder,
            self.button,
            self.gallery,
            self.labels,
        ]

    def find(self) -> None:
        layer, seed = self.host.runner.target.layer, self.host.runner.settings.seed
        method, k = str(self.method.value), int(self.k.value)
        folder = self.folder.value.strip() or None
        self.call = (
            f"directions_from_photos(model, {layer!r}, {folder!r}, {method!r}, {k}, steps=64, size=96, seed={seed})"
        )

        def work() -> DirectionSheet:
            return directions_from_photos(
                self.host.model,
                layer,
                folder,
                method,
                k,
                steps=64,
                size=96,
                seed=seed,
                progress=self.host.job.progress,
                cancel=self.host.job.cancel,
            )

        def done(sheet: DirectionSheet) -> None:
            self.sheet = sheet
            captions = [label.split(" ", 1)[1].replace("selectivity", "sel") for label in sheet.labels]
            images = np.stack([np.asarray(i) for i in sheet.images])
            grid, cell, cols = labelled_grid(images, captions, max_width=GALLERY_WIDTH)
            self.cell = (cell, sheet.images[0].size[0], cols)
            self.gallery.display_size = grid.shape[1]
            self.gallery.layout.display = ""
            self.gallery.show_image(grid)
            self.labels.value = (
                "<small>selectivity: excess kurtosis of the direction's response over the photos' crops "
                "(docs/directions.md). Click a tile to optimize it live.</small>"
            )

        self.message.value = ""
        self.host.run_job("directions", work, done, self.message, self.bar)

    def open_tile(self, x: int, y: int) -> None:
        sheet = self.sheet
        if sheet is None:
            return
        height, width, cols = self.cell
        index = grid_index(x, y, len(sheet.images), height, width, cols=cols)
        if index is None:
            return
        vector = tuple(float(v) for v in sheet.directions[index].tolist())
        target = Target(mode="direction", layer=sheet.layer, vector=vector)
        source = PhotoStart(f"{self.call}.images[{index}]", f"direction {index}")
        self.host.open_live(target, sheet.images[index], source)
