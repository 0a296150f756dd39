"""Issue #24, classes 1 and 2: text from users' data never becomes markup, and copied code
compiles and gives the same pixels in a clean process. Attacked with crafted inputs of our own;
the counts asserted at the end of each test are the inputs tried (docs/adversarial.md). Classes
4 and 5 (limits, the user's model) are in test_adversarial_model.py."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import pytest
from PIL import Image

from featviz_widgets import load_model
from featviz_widgets.engine import RenderSettings
from featviz_widgets.errors import FeatvizError
from featviz_widgets.runner import Target

from .conftest import TinyNet, shown, user_sets, wait
from .crafted import FILE_PAYLOADS, every_html_value

# --- 1. text from users' data never becomes markup --------------------------------------------------

ALLOWED_TAGS = {"span", "b", "i", "small", "br", "a", "svg", "polyline", "text"}
ALLOWED_ATTRS = {
    "class", "style", "download", "href", "width", "height", "role", "aria-label", "fill", "stroke",
    "stroke-width", "points", "x", "y", "font-size",
}  # fmt: skip


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.bad.append(f"<{tag}>")
        self.bad += [f"{tag} {k}=" for k, _ in attrs if k not in ALLOWED_ATTRS]


@pytest.mark.slow
@pytest.mark.usefixtures("comms")
def test_crafted_names_never_become_markup(tmp_path: Path) -> None:
    """Every HTML value the widget showed, with crafted layer and file names, parses to the
    widget's own tags and attributes only; the names are there, as text."""
    values, fed = every_html_value(tmp_path)
    for value in values:
        parser = _Markup()
        parser.feed(value)
        assert not parser.bad, (parser.bad, value)
    text = "\n".join(values)
    assert "onerror=__xss=1&gt;" in text  # the layer name, shown as text
    assert fed == 10 + 10 + 3 + 6 + 6  # layers, class-picker texts, exemplar files, uploads, loads/saves


# --- 2. copied code compiles and gives the same pixels in a clean process -----------------------

MODULE_FILE = """
import torch
from torch import nn


class resnet50(nn.Module):  # a user's own module whose class is named like a built-in model
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(self.pool(x).flatten(1))
"""


def _run_code(code: str, folder: Path, prelude: str = "") -> tuple[np.ndarray | None, str]:
    """Run ``code`` (the widget's, untouched) in a fresh interpreter in ``folder``; the value of
    its last line is saved as PNG. Returns (pixels or None, stderr)."""
    lines = code.rstrip().splitlines()
    script = "\n".join([prelude, *lines[:-1], f"_out = {lines[-1]}", "_out.save('_out.png')"])
    compile(code, "<copied>", "exec")  # the code as given compiles on its own
    (folder / "_script.py").write_text(script)
    (folder / "_out.png").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "_script.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        return None, proc.stderr
    return np.asarray(Image.open(folder / "_out.png").convert("RGB")), proc.stderr


def _started_from(d: Any, expression: str, steps: int = 4) -> bool:
    photo = d.runner.recording.photo
    return photo is not None and expression in photo.expression and d.runner.snapshot().step >= steps


def _pause_and_copy(d: Any) -> str:
    d.runner.pause()
    assert wait(lambda: d.runner.snapshot().state == "paused")
    return d.code()


@pytest.mark.slow
@pytest.mark.usefixtures("comms")
def test_every_kind_of_copied_code_gives_the_same_pixels_in_a_clean_process(tmp_path: Path) -> None:
    from featviz_widgets.view import Dreamer

    (tmp_path / "usermodule.py").write_text(MODULE_FILE)
    sys.path.insert(0, str(tmp_path))
    try:
        import usermodule  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    prelude = "from usermodule import resnet50\nmy_module = resnet50()"
    net = usermodule.resnet50()
    kinds = 0
    d = Dreamer(load_model(net, input_size=32), layer="conv2", size=32, fps=30)
    try:
        # fresh
        assert d.wait_for_steps(4, timeout=60)
        code = _pause_and_copy(d)
        assert "load_model(my_module, input_size=32)" in code and "'resnet50'" not in code
        assert code.splitlines()[2].startswith("# my_module: the nn.Module you visualized")
        pixels, err = _run_code(code, tmp_path, prelude)
        assert pixels is not None, err
        assert np.array_equal(pixels, np.asarray(d.image()))
        # without the user's module: a clear NameError, never another model
        pixels, err = _run_code(code, tmp_path)
        assert pixels is None and "NameError: name 'my_module' is not defined" in err
        kinds += 1
        # changes during the run
        d.runner.resume()
        user_sets(shown(d, W.FloatSlider, description="total variation"), 0.05)
        user_sets(shown(d, W.IntSlider, description="channel"), 3)
        assert wait(lambda: d.runner.snapshot().target.unit == 3 and d.runner.snapshot().step >= 8, 60)
        code = _pause_and_copy(d)
        assert "renderer.set_objective(" in code
        pixels, err = _run_code(code, tmp_path, prelude)
        assert pixels is not None, err
        assert np.array_equal(pixels, np.asarray(d.image()))
        kinds += 1
        # photo uploads, the name crafted too: the note is a comment line of its own
        for name in ("cat.jpg", FILE_PAYLOADS[0], "new\nline'\".png"):
            img = Image.new("RGB", (40, 30), (200, 120, 40))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            (tmp_path / "photo.png").write_bytes(buf.getvalue())
            d.photo.accept_upload(buf.getvalue(), name)
            d.photo.live()
            d.runner.resume()
            assert wait(lambda name=name: _started_from(d, f"load_photo({name!r})"), 60)
            code = _pause_and_copy(d)
            compile(code, "<copied>", "exec")
            assert f"load_photo({name!r})" in code
            pixels, err = _run_code(code.replace(f"load_photo({name!r})", "load_photo('photo.png')"), tmp_path, prelude)
            assert pixels is not None, err
            assert np.array_equal(pixels, np.asarray(d.image()))
            kinds += 1
        # a bundled sample photo
        user_sets(d.page_picker, "Photo")
        user_sets(shown(d.pages["Photo"], W.Dropdown, description="sample"), "coffee")
        d.photo.live()
        d.runner.resume()
        assert wait(lambda: _started_from(d, "sample_photo('coffee')"), 60)
        code = _pause_and_copy(d)
        pixels, err = _run_code(code, tmp_path, prelude)
        assert pixels is not None, err
        assert np.array_equal(pixels, np.asarray(d.image()))
        user_sets(d.page_picker, "Controls")
        kinds += 1
        # a gallery tile
        d.runner.resume()
        d.explore.render_gallery()
        d.job.wait(300)
        d.explore.open_tile(66 + 10, 10)  # tile 1
        assert wait(lambda: d.runner.snapshot().target.unit == 1 and d.runner.snapshot().step >= 4, 60)
        code = _pause_and_copy(d)
        assert "layer_gallery(model, 'conv2'" in code
        pixels, err = _run_code(code, tmp_path, prelude)
        assert pixels is not None, err
        assert np.array_equal(pixels, np.asarray(d.image()))
        kinds += 1
        # a loaded PNG, from a path and uploaded
        saved = d.save(tmp_path / "saved.png")
        for source, name in ((str(saved), None), (saved.read_bytes(), "saved.png")):
            d.load(source, name)
            d.runner.resume()
            expected = f"read_saved({str(saved) if name is None else name!r})"
            assert wait(lambda expected=expected: _started_from(d, expected), 60)
            code = _pause_and_copy(d)
            assert "read_saved(" in code
            pixels, err = _run_code(code, tmp_path, prelude)
            assert pixels is not None, err
            assert np.array_equal(pixels, np.asarray(d.image()))
            kinds += 1
    finally:
        d.close()
    assert kinds == 9


def test_names_in_copied_code_stay_data() -> None:
    """Module names, layer names and file names with newlines, quotes and code end up as
    comments or string literals: the code compiles and runs none of it."""
    import ast

    from featviz_widgets.engine.models import load_code, load_code_note, wrap_module
    from featviz_widgets.runner import PhotoStart, Recording

    crafted = [
        "x\nraise SystemExit(3)",
        "y'); raise SystemExit(4) #",
        'z"""\nraise SystemExit(5)\n"""',
        "\r\nimport os",
    ]
    for text in crafted:
        model = wrap_module(TinyNet(), input_size=32, name=text)
        rec = Recording(RenderSettings(size=32), Target(layer=text), PhotoStart(f"load_photo({text!r})", text, text))
        code = rec.code(load_code(model), 3, lambda t: 0, 1, load_code_note(model))
        tree = ast.parse(code)
        ran = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Raise) or (isinstance(n, ast.Import) and n.names[0].name != "torch")
        ]
        assert not ran, code
    assert len(crafted) == 4


@pytest.mark.usefixtures("comms")
def test_a_saved_target_without_a_control_is_refused_whole(tmp_path: Path) -> None:
    from featviz_widgets.export import save_png
    from featviz_widgets.view import Dreamer

    d = Dreamer(load_model(TinyNet(), input_size=32), layer="conv2", size=32, fps=30, autostart=False)
    try:
        before = (d.runner.settings, d.runner.target, d.controls.mode.value, d.controls.layer.value)
        bad = [
            {"mode": "custom", "expression": "conv2:1 - conv1:0"},  # no control for a custom objective
            {"mode": "channel", "layer": "no_such_layer"},
            {"mode": "class", "unit": 99},
            {"mode": "channel", "layer": "conv2", "unit": 1000},
        ]
        for target in bad:
            path = tmp_path / "t.png"
            save_png(Image.new("RGB", (32, 32)), path, {"size": 64, "lr": 0.1, "target": target})
            with pytest.raises(FeatvizError):
                d.load(path)
            d.export.accept_upload(path.read_bytes(), "t.png")
            assert "Nothing was changed" in d.export.message.value
            assert (d.runner.settings, d.runner.target, d.controls.mode.value, d.controls.layer.value) == before
        # a layer outside the dropdown's main ones is added to it, not refused
        save_png(Image.new("RGB", (32, 32)), tmp_path / "ok.png", {"size": 32, "target": {"layer": "relu1"}})
        d.load(tmp_path / "ok.png")
        assert d.controls.layer.value == "relu1" == d.runner.target.layer
    finally:
        d.close()
