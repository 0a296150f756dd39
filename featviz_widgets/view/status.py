"""The status line and the objective's sparkline, written from a runner ``Snapshot``."""

from __future__ import annotations

import numpy as np

from ..markup import escape
from ..runner import Snapshot, Target

# A picture the penalties have wiped out: almost black, or almost one flat colour (0-255 levels).
DARK_MEAN, FLAT_STD = 40.0, 8.0


def describe(target: Target, class_names: list[str] | None) -> str:
    """A short human label of the target, e.g. 'blocks.8 channel 5' or 'class 285 (Egyptian cat)'."""
    if target.mode == "class":
        name = class_names[target.unit] if class_names and target.unit < len(class_names) else ""
        return f"class {target.unit}" + (f" ({name})" if name else "")
    if target.mode == "deepdream":
        return f"{target.layer} DeepDream"
    if target.mode == "direction":
        return (
            f"{target.layer} direction #{target.direction_seed}"
            if target.vector is None
            else f"{target.layer} direction"
        )
    if target.mode == "mix":
        return f"{target.layer} mix {target.unit}/{target.unit_b} alpha {target.alpha:g}"
    return f"{target.layer} {target.mode} {target.unit}"


def file_stem(target: Target) -> str:
    """A file name for the target's picture: no unit number where the mode has none."""
    label = describe(target, None).replace(" ", "_").replace("/", "-").replace("#", "")
    return f"featviz_{label}"


def status_html(snap: Snapshot, class_names: list[str] | None, error: str = "") -> str:
    obj = "-" if snap.objective is None else f"{snap.objective:.4g}"
    state = "paused" if snap.paused and snap.state not in ("stopped",) else snap.state
    text = (
        f"{escape(describe(snap.target, class_names))} · step {snap.step} · objective {obj} · "
        f"{snap.steps_per_s:.1f} steps/s · {snap.device} · {state}"
    )
    line = f'<span class="featviz-status">{text}</span>'
    error = error or snap.error
    warning = snap.warning or penalty_hint(snap)
    if error:
        line += f'<br><span class="featviz-error" style="color:#c62828">⚠ {escape(error)}</span>'
    elif warning:
        line += f'<br><span class="featviz-warning" style="color:#ef6c00">{escape(warning)}</span>'
    return line


def penalty_hint(snap: Snapshot) -> str:
    """A hint when the penalties have wiped the picture out (almost black or one flat colour):
    moderate L1, total variation and blur together, at a high learning rate, can do that."""
    s, images = snap.settings, snap.images
    if images is None or snap.step < 50 or not (s.l1 or s.tv or s.blur):
        return ""
    picture = images.astype(np.float32)
    if picture.mean() >= DARK_MEAN and picture.std() >= FLAT_STD:
        return ""
    return (
        "The penalties are wiping the picture out (it is almost "
        + ("black" if picture.mean() < DARK_MEAN else "one flat colour")
        + "): lower L1, total variation or blur, or the learning rate."
    )


def sparkline(values: list[float] | tuple[float, ...], width: int = 360, height: int = 56) -> str:
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
