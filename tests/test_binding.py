"""The controls <-> settings binding (view/binding.py) and what each change does to the image
(runner/changes.effect): plain data, tested without a widget or a model."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import pytest

from featviz_widgets.engine import RenderSettings
from featviz_widgets.engine.image import sample_photo
from featviz_widgets.errors import InvalidSettingError, UnknownLayerError
from featviz_widgets.runner import Target
from featviz_widgets.runner.changes import Effect, Load, Reset, SetSettings, SetTarget, StartFrom, Unsettle, effect
from featviz_widgets.view.binding import (
    SETTINGS,
    TARGET_CONTROLS,
    check_showable,
    class_index,
    settings_change,
    settings_values,
    target_of,
    target_values,
)

CLASSES = ("0 tench", "1 goldfish", "2 great white shark", "3 golden retriever", "4 honey bee", "5 bee")


def changed(settings: RenderSettings, control: str, value: Any) -> RenderSettings:
    """The settings after ``control`` shows ``value``: what the runner's ``set`` would take."""
    return settings.replace(**settings_change(control, value))


def test_the_binding_imports_no_widget_library() -> None:
    import featviz_widgets.view.binding as binding

    tree = ast.parse(Path(binding.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
    imported |= {"." * n.level + (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
    assert not {m for m in imported if m.split(".")[0] in ("ipywidgets", "anywidget", "traitlets")}
    assert not [m for m in imported if m.startswith(".") and not m.startswith("..")]  # nothing from view/ itself


def test_each_control_shows_what_the_settings_hold_and_gives_it_back(tmp_path: Path) -> None:
    sample_photo("coffee").save(tmp_path / "cup.png")  # a reference folder needs a photo in it
    settings = RenderSettings(
        size=160,
        batch=3,
        lr=0.08,
        l1=50.0,
        tv=12.0,
        blur=300.0,
        param="fourier",
        decay=1.2,
        align=2.0,
        align_photos=str(tmp_path),
        seed=11,
        views=2,
    ).replace(transform_strength=0.75)
    shown = settings_values(settings)
    assert set(shown) == set(SETTINGS)
    assert shown["lr"] == 0.08 and shown["size"] == 160 and shown["seed"] == 11 and shown["transform"] == 0.75
    assert shown["l1"] == pytest.approx(0.5) and shown["align_photos"] == str(tmp_path)
    for control, value in shown.items():  # setting the shown value back changes nothing
        back = changed(settings, control, value)
        for field in ("lr", "l1", "tv", "blur", "align"):
            assert getattr(back, field) == pytest.approx(getattr(settings, field)), control
        assert back.replace(l1=settings.l1, tv=settings.tv, blur=settings.blur, align=settings.align) == settings


def test_slider_positions_convert_and_bad_values_reach_the_runner_unchanged() -> None:
    assert settings_change("lr", "0.1") == {"lr": 0.1}
    assert settings_change("tv", 0.5) == {"tv": 75.0}  # 300 * 0.5**2
    assert settings_change("align", 1.0) == {"align": 50.0}
    # Six significant digits, so copied code says 0.5 for the slider's 0.1 (50 * 0.1**2 is
    # 0.5000000000000001 in floating point).
    assert settings_change("align", 0.1) == {"align": 0.5} and settings_change("l1", 0.7) == {"l1": 98.0}
    assert settings_change("transform", 1.25) == {"transform_strength": 1.25}
    assert settings_change("align_photos", "  ") == {"align_photos": None}
    assert settings_change("seed", 7) == {"seed": 7}  # a settings change: the runner decides it restarts
    for control, bad in (("lr", -1.0), ("lr", math.nan), ("tv", math.inf), ("size", 1), ("batch", 0)):
        with pytest.raises(InvalidSettingError):
            changed(RenderSettings(), control, bad)  # refused where the settings are made, not here


@pytest.mark.parametrize(
    ("control", "value", "what"),
    [
        ("lr", 0.1, Effect.LIVE),
        ("l1", 0.5, Effect.LIVE),
        ("tv", 0.5, Effect.LIVE),
        ("blur", 0.5, Effect.LIVE),
        ("transform", 0.5, Effect.LIVE),
        ("views", 2, Effect.LIVE),
        ("align", 0.5, Effect.LIVE),
        ("size", 96, Effect.REBUILD),
        ("batch", 2, Effect.REBUILD),
        ("param", "pixels", Effect.REBUILD),
        ("decay", 0.5, Effect.REBUILD),
        ("seed", 3, Effect.RESTART),
    ],
)
def test_what_each_control_does_to_the_image(control: str, value: Any, what: Effect) -> None:
    before = RenderSettings(size=128)
    assert effect(SetSettings(changed(before, control, value)), before) is what


def test_what_the_other_changes_do_to_the_image() -> None:
    s, t = RenderSettings(size=64), Target(layer="conv2")
    objective = t.objective(0)
    assert effect(SetTarget(t, objective, keep_image=True), s) is Effect.WARM
    assert effect(SetTarget(t, objective, keep_image=False), s) is Effect.RESTART
    assert effect(Reset(s), s) is Effect.RESTART
    assert effect(StartFrom(s, None, None), s) is Effect.RESTART
    assert effect(Load(s, t, objective, None, None), s) is Effect.RESTART
    assert effect(Unsettle(), s) is Effect.NOTHING


@pytest.mark.parametrize(
    "target",
    [
        Target(mode="channel", layer="conv2", unit=3),
        Target(mode="mix", layer="conv1", unit=2, unit_b=4, alpha=0.25),
        Target(mode="direction", layer="conv2", direction_seed=9, diversity=25.0),
        Target(mode="class", layer="conv2", unit=4),
    ],
)
def test_target_controls_round_trip(target: Target) -> None:
    values = {"layer": target.layer, "unit": 0, "klass": CLASSES[0], **target_values(target, CLASSES)}
    assert set(values) == set(TARGET_CONTROLS)
    assert target_of(values, CLASSES) == target
    if target.mode == "class":
        assert "layer" not in target_values(target, CLASSES) and values["klass"] == "4 honey bee"


def test_class_picker_text() -> None:
    assert class_index("3 golden retriever", CLASSES) == 3
    assert class_index("  BEE ", CLASSES) == 5  # the exact name first
    assert class_index("golden retr", CLASSES) == 3
    assert class_index("white", CLASSES) == 2  # a word starting with it
    assert class_index("oney", CLASSES) == 4  # else containing it
    assert (
        class_index("6", CLASSES) is None and class_index("", CLASSES) is None and class_index("zebra", CLASSES) is None
    )
    values = {
        "mode": "class",
        "layer": "conv2",
        "unit": 0,
        "klass": "zebra",
        "direction_seed": 0,
        "unit_b": 1,
        "alpha": 0.5,
        "diversity": 0.0,
    }
    assert target_of(values, CLASSES).unit == 0  # no match: class 0, as an empty picker


def test_a_target_the_controls_cannot_show_is_refused() -> None:
    modes, layers, listed = ("channel", "class"), {"conv1": 1, "conv2": 2, "relu1": 3}, ["conv1", "conv2"]
    check_showable(Target(layer="relu1"), modes, layers, listed, CLASSES)  # a layer beyond the listed ones is fine
    with pytest.raises(InvalidSettingError, match="'mix' has no control"):
        check_showable(Target(mode="mix", layer="conv1"), modes, layers, listed, CLASSES)
    with pytest.raises(UnknownLayerError, match="conv2"):
        check_showable(Target(layer="nope"), modes, layers, listed, CLASSES)
    with pytest.raises(InvalidSettingError, match="not one of this model's 6 classes"):
        check_showable(Target(mode="class", unit=6), modes, layers, listed, CLASSES)
