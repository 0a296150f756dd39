"""The controls ↔ settings binding, as plain data (no widgets here): which ``LiveRunner`` call a
control's value becomes, converted how, and what each control shows for given settings and a
target. The Dreamer's observers and its ``_sync`` go through these tables only, so the mapping
is tested without a widget (tests/test_binding.py).

Slider scales: a penalty slider at t in [0, 1] sets the engine weight (RenderSettings.l1/tv/blur)
to PENALTY_MAX * t^2: fine steps near 0, where small weights already show, and a top that is
strong but still leaves a picture (measured on Lite0 at the widget's defaults:
docs/slider_ranges.md; the old linear tops, 500/1000/30000, wiped the picture out from about
half-way). The alignment slider works the same way with ALIGN_MAX.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import RenderSettings
from ..errors import InvalidSettingError, unknown_layer
from ..runner import Target

PENALTY_MAX = {"l1": 200.0, "tv": 300.0, "blur": 30000.0}
ALIGN_MAX = 50.0
DIVERSITY_SCALE = 50.0  # diversity slider 1.0 = this weight of the Diversity term


def _readable(weight: float) -> float:
    """A weight to six significant digits: the slider's 0.1 gives 0.5, not 0.5000000000000001,
    in the settings and so in copied code (the runner uses exactly the value the code states)."""
    return float(f"{weight:.6g}")


def penalty_weight(name: str, strength: float) -> float:
    return _readable(PENALTY_MAX[name] * strength**2)


def penalty_strength(name: str, weight: float) -> float:
    """The slider position of an engine weight (the inverse of ``penalty_weight``, at most 1)."""
    return min((weight / PENALTY_MAX[name]) ** 0.5, 1.0)


def align_weight(strength: float) -> float:
    return _readable(ALIGN_MAX * strength**2)


def align_strength(weight: float) -> float:
    return min((weight / ALIGN_MAX) ** 0.5, 1.0)


@dataclass(frozen=True)
class Setting:
    """One settings control: ``LiveRunner.set(**{field: to_settings(value)})`` when it changes;
    ``from_settings(settings)`` is the value it shows for those settings."""

    field: str  # a RenderSettings field, or a name RenderSettings.replace takes (transform_strength)
    to_settings: Callable[[Any], Any]
    from_settings: Callable[[RenderSettings], Any]


def _penalty(name: str) -> Setting:
    return Setting(name, lambda v: penalty_weight(name, float(v)), lambda s: penalty_strength(name, getattr(s, name)))


# Control name (a Controls field) -> its binding, in the order the panel shows them. A new seed is
# a settings change like any other: the runner decides that it restarts (runner/changes.effect).
SETTINGS: dict[str, Setting] = {
    "batch": Setting("batch", int, lambda s: s.batch),
    "lr": Setting("lr", float, lambda s: s.lr),
    "l1": _penalty("l1"),
    "tv": _penalty("tv"),
    "blur": _penalty("blur"),
    "param": Setting("param", lambda v: v, lambda s: s.param),
    "decay": Setting("decay", float, lambda s: s.decay),
    "align": Setting("align", lambda v: align_weight(float(v)), lambda s: align_strength(s.align)),
    "align_photos": Setting("align_photos", lambda v: str(v).strip() or None, lambda s: s.align_photos or ""),
    "transform": Setting("transform_strength", float, lambda s: s.transform.strength),
    "views": Setting("views", int, lambda s: s.views),
    "size": Setting("size", int, lambda s: s.side),
    "seed": Setting("seed", int, lambda s: s.seed),
}

# The controls that together make the Target (any of them changing sets a new one).
TARGET_CONTROLS = ("mode", "layer", "unit", "klass", "direction_seed", "unit_b", "alpha", "diversity")


def settings_change(control: str, value: Any) -> dict[str, Any]:
    """The keyword arguments of the ``LiveRunner.set`` call a settings control's ``value`` makes."""
    binding = SETTINGS[control]
    return {binding.field: binding.to_settings(value)}


def settings_values(settings: RenderSettings) -> dict[str, Any]:
    """What each settings control shows for ``settings`` (before a widget's own range limits)."""
    return {name: binding.from_settings(settings) for name, binding in SETTINGS.items()}


def target_of(values: Mapping[str, Any], classes: Sequence[str]) -> Target:
    """The Target the target controls' ``values`` say (``classes``: the class picker's entries;
    typed text that matches no class picks class 0, as an empty picker does)."""
    mode = values["mode"]
    unit = (class_index(values["klass"], classes) or 0) if mode == "class" else int(values["unit"])
    return Target(
        mode=mode,
        layer=values["layer"],
        unit=unit,
        direction_seed=int(values["direction_seed"]),
        unit_b=int(values["unit_b"]),
        alpha=float(values["alpha"]),
        diversity=float(values["diversity"]) * DIVERSITY_SCALE,
    )


def target_values(target: Target, classes: Sequence[str]) -> dict[str, Any]:
    """What the target controls show for ``target``, in the order to set them (the layer only
    outside class mode: the class logits have no place in the layer list)."""
    values: dict[str, Any] = {"mode": target.mode}
    if target.mode != "class":
        values["layer"] = target.layer
    values["klass" if target.mode == "class" else "unit"] = (
        classes[target.unit] if target.mode == "class" else target.unit
    )
    values.update(
        unit_b=target.unit_b,
        alpha=target.alpha,
        direction_seed=target.direction_seed,
        diversity=min(target.diversity / DIVERSITY_SCALE, 1.0),
    )
    return values


def check_showable(
    target: Target,
    modes: Sequence[str],
    layers: Mapping[str, Any] | Sequence[str],
    listed: Sequence[str],
    classes: Sequence[str],
) -> None:
    """Refuse a (saved) target the controls cannot show: a mode without a control (``modes``: the
    mode picker's), a layer the model lacks (``layers``: all the model's; ``listed``, the layer
    picker's, are named in the message), a class beyond the picker's ``classes``."""
    if target.mode not in modes:
        raise InvalidSettingError(
            f"The saved target's mode {target.mode!r} has no control in this widget (valid: "
            f"{', '.join(modes)}); render it headless with Renderer(model, objective) instead."
        )
    if target.mode != "class" and target.layer not in layers:
        raise unknown_layer(target.layer, list(listed))
    if target.mode == "class" and not 0 <= target.unit < len(classes):
        raise InvalidSettingError(f"The saved class {target.unit} is not one of this model's {len(classes)} classes.")


def class_index(entry: str, options: Sequence[str] = ()) -> int | None:
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
