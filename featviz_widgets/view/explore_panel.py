"""The Explore tab: a neuron beside random directions, interpolation between two channels, a
layer's gallery (a tile opens live from its own picture), and natural exemplars. Each result
appears right under the button that made it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from ..engine import SanityReadout, explore, sanity_readout
from ..engine.image import grid_index
from ..markup import escape, html
from ..runner import PhotoStart, Target, labelled_grid
from .controls import STYLE, wide_layout
from .directions_section import DirectionsSection
from .host import Host
from .live_image import LiveImage
from .parts import GALLERY_WIDTH, error_html, png_widget, progress_bar, section, tiles_box


class ExplorePanel:
    def __init__(self, host: Host) -> None:
        self.host = host
        button = W.Layout(width="250px")
        self.compare_button = W.Button(description="Neuron vs random directions", layout=button)
        self.new_directions = W.Button(description="New random directions", layout=button)
        self.n_random = W.IntSlider(2, min=1, max=5, description="random dirs", layout=wide_layout(), style=STYLE)
        self.direction_base = 0
        self.compare_result = tiles_box([])
        self.interp_button = W.Button(description="Interpolate channel A → B", layout=button)
        self.frames = W.IntSlider(5, min=3, max=9, description="frames", layout=wide_layout(), style=STYLE)
        # Channel B on this tab too (the Controls tab shows its own only in Mix mode): one value.
        c = host.controls
        self.channel_b = W.IntSlider(
            c.unit_b.value, min=0, max=c.unit_b.max, description="channel B", layout=wide_layout(), style=STYLE
        )
        self._links = (
            W.dlink((c.unit_b, "max"), (self.channel_b, "max")),
            W.link((c.unit_b, "value"), (self.channel_b, "value")),
        )
        self.interp_result = tiles_box([])
        self.gallery_button = W.Button(description="Gallery of this layer", layout=button)
        self.gallery = LiveImage(display_size=0)  # shown 1:1 (GALLERY_WIDTH); smooth if a narrow panel shrinks it
        self.gallery.layout.display = "none"
        self.gallery_sheet: explore.Sheet | None = None
        self.gallery_layer = ""
        self.gallery_cell = (0, 0, 1)  # (height with caption, width) of one tile in the grid, and its columns
        self.exemplar_button = W.Button(description="Natural exemplars", layout=button)
        self.folder = W.Text(
            "",
            placeholder="empty: bundled samples",
            description="image folder",
            layout=wide_layout(),
            style=STYLE,
        )
        self.exemplars = W.VBox([])
        self.message = W.HTML("")
        self.bar = progress_bar()
        self.directions = DirectionsSection(host, self.message, self.bar)
        self.compare_button.on_click(lambda _b: self.compare())
        self.new_directions.on_click(lambda _b: self.compare(new=True))
        self.interp_button.on_click(lambda _b: self.interpolate())
        self.gallery_button.on_click(lambda _b: self.render_gallery())
        self.exemplar_button.on_click(lambda _b: self.find_exemplars())
        self.gallery.on_click(self.open_tile)
        self.widget = W.VBox(
            [
                self.message,
                self.bar,
                section("Are neurons special?", "The channel beside random directions of its layer, same settings."),
                W.HBox([self.compare_button, self.new_directions], layout=W.Layout(flex_flow="row wrap")),
                self.n_random,
                self.compare_result,
                section(
                    "Interaction between neurons:",
                    "frames sharing parameters, from channel A (the live channel) to channel B.",
                ),
                self.interp_button,
                self.channel_b,
                self.frames,
                self.interp_result,
                section("Layer gallery:", "every channel, rendered in batches. Click a tile to open it live."),
                self.gallery_button,
                self.gallery,
                *self.directions.widgets,
                section("Natural exemplars:", "the photo crops that excite the current target most."),
                self.exemplar_button,
                self.folder,
                self.exemplars,
            ],
            layout=W.Layout(width="100%"),
        )

    def _settings(self) -> dict[str, Any]:
        s = self.host.runner.settings
        return {"lr": s.lr, "l1": s.l1, "tv": s.tv, "blur": s.blur, "transform": s.transform}

    def _job(self, name: str, work: Any, done: Any) -> None:
        self.message.value = ""
        self.host.run_job(name, work, done, self.message, self.bar)

    def compare(self, new: bool = False) -> None:
        target = self.host.runner.target
        if new:
            self.direction_base += int(self.n_random.value)
        base, n, seed = self.direction_base, int(self.n_random.value), self.host.runner.settings.seed

        def work() -> explore.Sheet:
            return explore.compare_directions(
                self.host.model,
                target.layer,
                target.unit,
                n_random=n,
                direction_seed=base,
                steps=96,
                size=96,
                seed=seed,
                progress=self.host_job_progress,
                cancel=self.host_job_cancel,
                **self._settings(),
            )

        self._job("compare", work, lambda sheet: self._show_sheet(sheet, self.compare_result))

    def interpolate(self) -> None:
        target, seed = self.host.runner.target, self.host.runner.settings.seed
        a, b = target.unit, int(self.channel_b.value)
        frames = int(self.frames.value)

        def work() -> explore.Sheet:
            sheet = explore.interpolate(
                self.host.model,
                f"{target.layer}:{a}",
                f"{target.layer}:{b}",
                frames=frames,
                steps=96,
                size=80,
                seed=seed,
                progress=self.host_job_progress,
                cancel=self.host_job_cancel,
                **self._settings(),
            )
            sheet.labels = [f"ch {a} → {b}, {label.replace('alpha=', 'α ')}" for label in sheet.labels]
            return sheet

        self._job("interpolate", work, lambda sheet: self._show_sheet(sheet, self.interp_result))

    def _show_sheet(self, sheet: explore.Sheet, box: W.Box) -> None:
        box.children = [
            W.VBox([png_widget(img, 110), W.HTML(html("<small>{label}<br>value {v:.3g}</small>", label=label, v=v))])
            for img, label, v in zip(sheet.images, sheet.labels, sheet.values, strict=True)
        ]

    def render_gallery(self) -> None:
        layer, seed = self.host.runner.target.layer, self.host.runner.settings.seed

        def work() -> explore.Sheet:
            return explore.layer_gallery(
                self.host.model,
                layer,
                steps=48,
                size=64,
                seed=seed,
                progress=self.host_job_progress,
                cancel=self.host_job_cancel,
            )

        def done(sheet: explore.Sheet) -> None:
            self.gallery_sheet, self.gallery_layer = sheet, layer
            channels = [label.rsplit(":", 1)[1] for label in sheet.labels]
            images = np.stack([np.asarray(i) for i in sheet.images])
            grid, cell, cols = labelled_grid(images, [f"ch {c}" for c in channels], max_width=GALLERY_WIDTH)
            self.gallery_cell = (cell, sheet.images[0].size[0], cols)
            self.gallery.display_size = grid.shape[1]
            self.gallery.layout.display = ""
            self.gallery.show_image(grid)

        self._job("gallery", work, done)

    def open_tile(self, x: int, y: int) -> None:
        """A click on the gallery at frame pixel (x, y) opens that channel live, from its tile's picture."""
        sheet = self.gallery_sheet
        if sheet is None:
            return
        height, width, cols = self.gallery_cell
        index = grid_index(x, y, len(sheet.images), height, width, cols=cols)
        if index is None:
            return
        channel = int(sheet.labels[index].rsplit(":", 1)[1])
        s = sheet.settings
        source = PhotoStart(
            f"layer_gallery(model, {self.gallery_layer!r}, steps={s['steps']}, size={s['size']}, "
            f"seed={s['seed']}).images[{index}]",
            f"gallery tile {channel}",
        )
        self.host.open_live(Target(mode="channel", layer=self.gallery_layer, unit=channel), sheet.images[index], source)

    def find_exemplars(self) -> None:
        runner = self.host.runner
        target = runner.target
        objective = target.objective(runner.channels_for(target))
        folder = self.folder.value.strip() or None
        snap = runner.snapshot()

        def work() -> tuple[list[explore.Exemplar], SanityReadout | None]:
            found = explore.top_exemplars(
                self.host.model,
                objective,
                folder,
                cancel=self.host_job_cancel,
                progress=lambda n: self.host_job_progress(n, max(n, 1)),
            )
            readout = (
                sanity_readout(self.host.model, objective, snap.images, [e.crop for e in found], size=160)
                if snap.images is not None and found
                else None
            )
            return found, readout

        def done(result: tuple[list[explore.Exemplar], SanityReadout | None]) -> None:
            found, readout = result
            if not found:
                self.exemplars.children = [W.HTML(error_html("No readable images found in that folder."))]
                return
            tiles = [
                W.VBox(
                    [
                        png_widget(e.crop.resize((96, 96)), 96),
                        W.HTML(html("<small>{name}<br>{score:.3g}</small>", name=Path(e.source).name, score=e.score)),
                    ]
                )
                for e in found
            ]
            self.exemplars.children = [W.HTML(sanity_html(readout)), tiles_box(tiles)]

        self._job("exemplars", work, done)

    # The job's progress and cancel, looked up when the job runs (the host owns the Job).
    def host_job_progress(self, done: int, total: int) -> None:
        self.host.job.progress(done, total)

    @property
    def host_job_cancel(self) -> Any:
        return self.host.job.cancel


def sanity_html(readout: SanityReadout | None) -> str:
    """The sanity read-out (Geirhos et al. 2024) beside the exemplars: how strongly the
    visualization drives the target relative to the best natural crop, and how similarly the
    network processes it at earlier layers, against the exemplars' similarity among themselves."""
    if readout is None:
        return "<small>No live image yet: run the optimization to compare it with the exemplars.</small>"
    lines = [
        f"visualization {readout.value:.3g} vs best natural crop {readout.best_natural:.3g}: "
        f"<b>ratio {readout.ratio:.2f}</b>"
    ]
    for layer, cos in readout.similarity.items():
        natural = readout.natural_similarity[layer]
        lines.append(
            f"processed like the photos at {escape(layer)}: cosine <b>{cos:.2f}</b> "
            f"(the photos among themselves {natural:.2f})"
        )
    return "<small>" + "<br>".join(lines) + "</small>"
