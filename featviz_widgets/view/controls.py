"""The control panel: built-in ipywidgets only (accessible, themed, work in every front end)."""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W

from ..runner.target import MODES

# Slider strength 1.0 maps to these engine weights: where each penalty clearly dominates a
# typical channel objective (measured on Lite0 blocks.8 at 128 px; see README).
PENALTY_SCALE = {"l1": 500.0, "tv": 1000.0, "blur": 30000.0}
DIVERSITY_SCALE = 50.0  # diversity slider 1.0 = this weight of the Diversity term
SIZES = (64, 96, 128, 160, 192, 224, 256, 320, 384, 512)
MODE_LABELS = {
    "channel": "Channel",
    "neuron": "Neuron (centre)",
    "deepdream": "DeepDream (whole layer)",
    "class": "Class logit",
    "direction": "Random direction",
    "mix": "Mix two channels (alpha)",
}
assert set(MODE_LABELS) <= set(MODES)


def wide_layout() -> W.Layout:
    """A new Layout per widget: a shared one would hide every control when one is hidden."""
    return W.Layout(width="340px")


STYLE = {"description_width": "110px"}


@dataclass
class Controls:
    mode: W.Dropdown
    layer: W.Dropdown
    unit: W.IntSlider
    unit_name: W.HTML
    unit_b: W.IntSlider
    alpha: W.FloatSlider
    batch: W.IntSlider
    diversity: W.FloatSlider
    direction_seed: W.BoundedIntText
    new_direction: W.Button
    lr: W.FloatLogSlider
    l1: W.FloatSlider
    tv: W.FloatSlider
    blur: W.FloatSlider
    transform: W.FloatSlider
    views: W.IntSlider
    size: W.Dropdown
    seed: W.BoundedIntText
    keep_image: W.Checkbox
    run: W.ToggleButton
    reset: W.Button
    save: W.Button

    def panel(self) -> W.VBox:
        buttons = W.HBox([self.run, self.reset, self.save])
        direction = W.HBox([self.direction_seed, self.new_direction])
        return W.VBox(
            [
                self.mode,
                self.layer,
                self.unit,
                self.unit_name,
                direction,
                self.lr,
                self.l1,
                self.tv,
                self.blur,
                self.transform,
                self.views,
                self.size,
                self.seed,
                self.keep_image,
                buttons,
            ],
            layout=W.Layout(min_width="360px"),
        )

    def all(self) -> list[W.Widget]:
        return [getattr(self, f) for f in self.__dataclass_fields__]


def build_controls(layer_options: list[tuple[str, str]], layer: str, size: int, lr: float, seed: int) -> Controls:
    def slider(description: str, tooltip: str) -> W.FloatSlider:
        return W.FloatSlider(
            0.0,
            min=0.0,
            max=1.0,
            step=0.01,
            description=description,
            tooltip=tooltip,
            readout_format=".2f",
            layout=wide_layout(),
            style=STYLE,
        )

    return Controls(
        mode=W.Dropdown(
            options=[(label, key) for key, label in MODE_LABELS.items()],
            value="channel",
            description="objective",
            layout=wide_layout(),
            style=STYLE,
        ),
        layer=W.Dropdown(options=layer_options, value=layer, description="layer", layout=wide_layout(), style=STYLE),
        unit=W.IntSlider(0, min=0, max=1, description="channel", layout=wide_layout(), style=STYLE),
        unit_name=W.HTML("", layout=W.Layout(margin="0 0 0 118px")),
        unit_b=W.IntSlider(1, min=0, max=1, description="channel B", layout=wide_layout(), style=STYLE),
        alpha=W.FloatSlider(
            0.5, min=0.0, max=1.0, step=0.05, description="alpha (A vs B)", layout=wide_layout(), style=STYLE
        ),
        batch=W.IntSlider(
            1,
            min=1,
            max=9,
            description="images",
            tooltip="Images optimized together (a grid)",
            continuous_update=False,
            layout=wide_layout(),
            style=STYLE,
        ),
        diversity=slider("diversity", "Push the images of the batch apart (needs 2+ images)"),
        direction_seed=W.BoundedIntText(
            0,
            min=0,
            max=2**31 - 1,
            description="direction seed",
            layout=W.Layout(width="230px"),
            style=STYLE,
        ),
        new_direction=W.Button(
            description="New direction", tooltip="Draw a new random direction", layout=W.Layout(width="106px")
        ),
        lr=W.FloatLogSlider(
            lr,
            base=10,
            min=-3,
            max=0,
            step=0.01,  # fine enough that 0.05 and 0.15 are not snapped to other values
            description="learning rate",
            readout_format=".3f",
            layout=wide_layout(),
            style=STYLE,
        ),
        l1=slider("L1", "Pull pixels toward grey"),
        tv=slider("total variation", "Penalize differences between neighbouring pixels"),
        blur=slider("blur", "Nudge the image toward a blurred copy of itself"),
        transform=W.FloatSlider(
            1.0,
            min=0.0,
            max=2.0,
            step=0.05,
            description="transforms",
            tooltip="Strength of the random crops, jitter, rotation and grey border",
            layout=wide_layout(),
            style=STYLE,
        ),
        views=W.IntSlider(
            1,
            min=1,
            max=8,
            description="views / step",
            tooltip="Randomly transformed copies per step, objectives averaged: steadier steps for k times "
            "the cost (2-4 suit a GPU)",
            continuous_update=False,
            layout=wide_layout(),
            style=STYLE,
        ),
        size=W.Dropdown(
            options=[(f"{s} px", s) for s in sorted({*SIZES, size})],
            value=size,
            description="image size",
            layout=wide_layout(),
            style=STYLE,
        ),
        seed=W.BoundedIntText(seed, min=0, max=2**31 - 1, description="seed", layout=wide_layout(), style=STYLE),
        keep_image=W.Checkbox(True, description="keep image when the target changes (warm start)", indent=False),
        run=W.ToggleButton(
            True,
            description="Pause",
            icon="pause",
            tooltip="Run or pause the optimization",
            layout=W.Layout(width="100px"),
        ),
        reset=W.Button(
            description="Reset", icon="refresh", tooltip="Restart from noise", layout=W.Layout(width="100px")
        ),
        save=W.Button(
            description="Save PNG",
            icon="download",
            tooltip="Download the current image",
            layout=W.Layout(width="110px"),
        ),
    )
