"""The control panel: built-in ipywidgets only (accessible, themed, work in every front end).

Every control is placed in ``Controls.panel()``; ``show_for(mode, batch)`` shows exactly the
ones the mode uses. Slider scales are chosen so the whole range gives a visible picture
(docs/slider_ranges.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as W

from ..engine import FeatvizModel, LayerInfo, RenderSettings, main_layers
from ..engine.layers import layers_by_name
from ..engine.models import LOGITS
from ..errors import FeatvizError, unknown_layer
from ..runner import MODES

# Slider scales (penalties, alignment, diversity) and the control <-> settings mapping: binding.py.
# The parameterization dropdown (RenderSettings.param): (label, value), docs/parameterizations.md.
PARAM_LABELS = (
    ("pixels", "pixels"),
    ("Fourier 1/f", "fourier"),
    ("Fourier 1/f + decorrelated colour", "decorrelated"),
    ("MaCo (phase only)", "maco"),
)
# Shown only when a loaded setting uses it (the old fourier=False).
EXTRA_PARAM_LABELS = {"decorrelated-pixels": "pixels + decorrelated colour"}
SIZES = (64, 96, 128, 160, 192, 224, 256, 320, 384, 512)
# Learning rates as exact values (a log slider's steps are 10^(k/100): 0.05 became 0.0501...).
LEARNING_RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
MODE_LABELS = {
    "channel": "Channel",
    "neuron": "Neuron (centre)",
    "deepdream": "DeepDream (whole layer)",
    "class": "Class logit",
    "token": "Class token (transformers)",
    "direction": "Random direction",
    "mix": "Mix two channels (alpha)",
}
assert set(MODE_LABELS) <= set(MODES)
# Which target controls each mode uses (the settings controls are always there).
MODE_CONTROLS = {
    "channel": ("layer", "unit"),
    "neuron": ("layer", "unit"),
    "deepdream": ("layer",),
    "class": ("klass",),
    "token": ("layer", "unit"),
    "direction": ("layer", "direction_row"),
    "mix": ("layer", "unit", "unit_b", "alpha"),
}
STYLE = {"description_width": "110px"}


def wide_layout() -> W.Layout:
    """A new Layout per widget: a shared one would hide every control when one is hidden."""
    return W.Layout(width="340px")


def layer_options(layers: list[LayerInfo]) -> list[tuple[str, str]]:
    """Dropdown entries ``name  (C ch, HxW)`` in the order the layers run, with ``group › ``
    before a name only where the name does not already show its group (``blocks.2`` is in
    ``blocks``; saying so again on every other line read as two kinds of layer)."""
    options = []
    for info in layers:
        group = info.group
        shown = not group or info.name == group or info.name.startswith(group + ".")
        prefix = "" if shown else f"{group} › "
        grid = "x".join(map(str, info.grid)) if info.grid else ""
        detail = f"{info.channels} ch" + (f", {grid}" if grid else "")
        if info.prefix_tokens:
            detail += f", +{info.prefix_tokens} class token" + ("s" if info.prefix_tokens > 1 else "")
        options.append((f"{prefix}{info.name}  ({detail})", info.name))
    return options


def listed_layers(model: FeatvizModel, layer: str | None) -> tuple[list[LayerInfo], dict[str, LayerInfo], str]:
    """The layers the layer picker lists (``layer`` added when not among them), every layer of
    the model by name, and the layer to start with (``layer``, else a middle one)."""
    layers = [i for i in main_layers(model) if i.name != LOGITS]
    if not layers:
        raise FeatvizError(
            "The model has no layer to visualize: none outputs a feature map, tokens or channels "
            "(see featviz_widgets.list_layers(model)); pass layouts={...} to load_model if the probe misread them."
        )
    infos = layers_by_name(model)
    layer = layer or ("blocks.8" if "blocks.8" in {i.name for i in layers} else layers[len(layers) // 2].name)
    if layer not in infos:
        raise unknown_layer(layer, [i.name for i in layers])
    if layer not in {i.name for i in layers}:
        layers.append(infos[layer])
    return layers, infos, layer


def class_options(names: list[str] | None, count: int) -> list[str]:
    """Class picker entries, ``'285 Egyptian cat'`` (the number first, so it stays unique)."""
    return [f"{i} {names[i]}" if names and i < len(names) else str(i) for i in range(count)]


@dataclass
class Controls:
    mode: W.Dropdown
    layer: W.Dropdown
    unit: W.IntSlider
    klass: W.Combobox
    unit_b: W.IntSlider
    alpha: W.FloatSlider
    direction_seed: W.BoundedIntText
    new_direction: W.Button
    direction_row: W.HBox
    batch: W.IntSlider
    diversity: W.FloatSlider
    lr: W.SelectionSlider
    l1: W.FloatSlider
    tv: W.FloatSlider
    blur: W.FloatSlider
    param: W.Dropdown
    decay: W.FloatSlider
    align: W.FloatSlider
    align_photos: W.Text
    transparency: W.Checkbox
    transform: W.FloatSlider
    views: W.IntSlider
    size: W.Dropdown
    seed: W.BoundedIntText
    keep_image: W.Checkbox
    run: W.Button
    reset: W.Button
    save: W.Button

    def panel(self) -> W.VBox:
        """Every control, in reading order (the mode-specific ones hidden by ``show_for``)."""
        return W.VBox(
            [
                self.mode,
                self.layer,
                self.unit,
                self.klass,
                self.unit_b,
                self.alpha,
                self.direction_row,
                self.batch,
                self.diversity,
                self.lr,
                self.l1,
                self.tv,
                self.blur,
                self.param,
                self.decay,
                self.align,
                self.align_photos,
                self.transparency,
                self.transform,
                self.views,
                self.size,
                self.seed,
                self.keep_image,
            ],
            layout=W.Layout(min_width="360px"),
        )

    def buttons(self) -> W.HBox:
        """Run/Pause, Reset and Save: under the image, so they stay in reach on every page."""
        return W.HBox([self.run, self.reset, self.save])

    def show_for(self, mode: str, batch: int) -> None:
        """Show the target controls ``mode`` uses, and diversity once the batch has 2+ images."""
        used = MODE_CONTROLS[mode]
        for name in ("layer", "unit", "klass", "unit_b", "alpha", "direction_row"):
            getattr(self, name).layout.display = "" if name in used else "none"
        self.unit.description = "channel A" if mode == "mix" else "channel"
        self.diversity.layout.display = "" if batch > 1 else "none"
        self.show_param(self.param.value)
        self.show_align(self.align.value)

    def show_param(self, param: str) -> None:
        """The decay exponent only for the Fourier bases (MaCo's magnitude is the photos')."""
        self.decay.layout.display = "" if param in ("fourier", "decorrelated") else "none"

    def show_align(self, weight: float) -> None:
        """The reference folder only while alignment is on."""
        self.align_photos.layout.display = "" if weight > 0 else "none"

    def show_values(self, values: dict[str, Any]) -> None:
        """Set controls to ``values`` (binding.py's ``target_values``/``settings_values``, in that
        order): a picker gets an entry for a value it lacks (a loaded setting, a layer beyond the
        main ones), a slider shows its top for a value above it."""
        for name, value in values.items():
            self._offer(name, value)
            widget = getattr(self, name)
            widget.value = min(value, widget.max) if name in ("decay", "transform", "views") else value

    def _offer(self, name: str, value: Any) -> None:
        if name == "layer" and value not in {v for _, v in self.layer.options}:
            self.layer.options = [*self.layer.options, (value, value)]
        elif name == "lr" and value not in self.lr.options:
            self.lr.options = sorted({*self.lr.options, value})
        elif name == "param" and value not in {v for _, v in self.param.options}:
            self.param.options = [*self.param.options, (EXTRA_PARAM_LABELS.get(value, value), value)]
        elif name == "size" and value not in (sizes := {v for _, v in self.size.options}):
            self.size.options = [(f"{s} px", s) for s in sorted({*sizes, value})]

    def all(self) -> list[W.Widget]:
        return [getattr(self, f) for f in self.__dataclass_fields__]


def build_controls(
    layers: list[LayerInfo], layer: str, classes: list[str], size: int, lr: float, seed: int
) -> Controls:
    """The controls for a model with these ``layers``: modes it cannot use are not offered
    (class logits need ``classes``; class tokens a transformer's token layer)."""
    offered = [
        (label, key)
        for key, label in MODE_LABELS.items()
        if (key != "class" or classes) and (key != "token" or any(i.prefix_tokens for i in layers))
    ]

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

    direction_seed = W.BoundedIntText(
        0, min=0, max=2**31 - 1, description="direction seed", layout=W.Layout(width="230px"), style=STYLE
    )
    new_direction = W.Button(
        description="New direction",
        tooltip="Draw a new random direction",
        layout=W.Layout(width="auto", flex="0 0 auto"),  # its whole label (106 px cut it)
    )
    rates = sorted({*LEARNING_RATES, lr})
    return Controls(
        mode=W.Dropdown(
            options=offered,
            value="channel",
            description="objective",
            layout=wide_layout(),
            style=STYLE,
        ),
        layer=W.Dropdown(
            options=layer_options(layers), value=layer, description="layer", layout=wide_layout(), style=STYLE
        ),
        unit=W.IntSlider(0, min=0, max=1, description="channel", layout=wide_layout(), style=STYLE),
        klass=W.Combobox(
            value=classes[0] if classes else "",
            options=classes,
            ensure_option=False,  # the browser sends what was typed (part of a name, a number) on Enter
            continuous_update=False,  # ...on Enter or leaving the box, not at every key
            placeholder="type a class name or number",
            description="class",
            tooltip="Type to search the class names",
            layout=wide_layout(),
            style=STYLE,
        ),
        unit_b=W.IntSlider(1, min=0, max=1, description="channel B", layout=wide_layout(), style=STYLE),
        alpha=W.FloatSlider(
            0.5, min=0.0, max=1.0, step=0.05, description="alpha (A vs B)", layout=wide_layout(), style=STYLE
        ),
        direction_seed=direction_seed,
        new_direction=new_direction,
        direction_row=W.HBox([direction_seed, new_direction]),
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
        diversity=slider("diversity", "Push the images of the batch apart"),
        lr=W.SelectionSlider(
            options=rates,
            value=lr,
            description="learning rate",
            continuous_update=False,
            layout=wide_layout(),
            style=STYLE,
        ),
        l1=slider("L1", "Pull pixels toward grey"),
        tv=slider("total variation", "Penalize differences between neighbouring pixels"),
        blur=slider("blur", "Nudge the image toward a blurred copy of itself"),
        param=W.Dropdown(
            options=list(PARAM_LABELS),
            value="decorrelated",
            description="parametrization",  # the shorter spelling fits the 110 px label; "parameterization" is cut
            tooltip="How the optimized numbers become the picture (preconditioning). Switching keeps the picture; "
            "MaCo keeps its layout and gives it natural photos' spectrum (softer, greyer). MaCo needs several "
            "views / step: with 4 and align to photos about 0.6 it is recognized as often as the default",
            layout=wide_layout(),
            style=STYLE,
        ),
        decay=W.FloatSlider(
            RenderSettings().decay,
            min=0.0,
            max=2.0,
            step=0.1,
            description="1/f decay",
            tooltip="Fourier scaling exponent: higher favours low frequencies more (1: Lucid's 1/f; 0: plain Fourier)",
            continuous_update=False,
            layout=wide_layout(),
            style=STYLE,
        ),
        align=slider("align to photos", "Match the activation statistics of reference photos (VITAL)"),
        align_photos=W.Text(
            "",
            placeholder="empty: the bundled photos",
            description="reference folder",
            tooltip="Folder of photos whose activation statistics 'align to photos' matches",
            continuous_update=False,
            layout=wide_layout(),
            style=STYLE,
        ),
        transparency=W.Checkbox(
            False,
            description="show transparency",
            tooltip="Fade the pixels the objective's gradient touched least (MaCo's transparency map)",
            indent=False,
            layout=W.Layout(width="340px"),
        ),
        transform=W.FloatSlider(
            1.0,
            min=0.0,
            max=2.0,
            step=0.05,
            description="transforms",
            tooltip="Strength of the random zooms (out and in), jitter, rotation and grey border",
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
        keep_image=W.Checkbox(
            True,
            description="warm start",
            tooltip="Keep the image when the target changes (else restart from noise)",
            indent=False,
            layout=W.Layout(width="340px"),
        ),
        run=W.Button(
            description="Pause", icon="pause", tooltip="Run or pause the optimization", layout=W.Layout(width="100px")
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
