"""Crafted inputs an adversarial user (or an unlucky one) passes: module names and file names
that are markup, and a widget driven through every path that shows such text as HTML.

``every_html_value`` returns each HTML value the widget showed along the way (status line,
control errors, download link, Explore captions, Photo messages, Export messages, exemplar
captions), for tests/test_adversarial.py (parsed) and tests/browser/test_xss.py (rendered in
Chromium with innerHTML, as ipywidgets does)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import ipywidgets as W
import torch
from PIL import Image
from torch import nn

# Each sets window.__xss when its markup runs (module names cannot contain ".", PyTorch's rule).
PAYLOADS = (
    "q\"'><img src=x onerror=__xss=1>",
    "<svg onload=__xss=2>",
    'a" onmouseover="__xss=3" x="',
    "b' autofocus onfocus='__xss=4' '",
    "</small><img src=x onerror=__xss=5><small>",
    "<iframe srcdoc=\"<script>top['__xss']=6</script>\"></iframe>",
    "\t<details open ontoggle=__xss=7>",
    "&lt;img src=x onerror=__xss=8&gt;",  # already-escaped text must stay text
    't"\tonmouseover="__xss=9"\tx="',  # tabs survive where spaces become "_" (file names)
    "<img\tsrc=x\tonerror=__xss=10>",
)
# File names may also hold "/"-free markup.
FILE_PAYLOADS = (
    "x\"'><img src=x onerror=window.__xss=11>.png",
    "<svg onload=window.__xss=12>.jpg",
    'c" onmouseover="window.__xss=13" x=".png',
)


class CraftedNet(nn.Module):
    """A tiny convnet whose modules are named by ``names`` (one conv + ReLU each)."""

    def __init__(self, names: tuple[str, ...] = PAYLOADS) -> None:
        super().__init__()
        self.names = names
        channels = 3
        g = torch.Generator().manual_seed(0)
        for name in names:
            conv = nn.Conv2d(channels, 4, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.5)
                conv.bias.zero_()
            self.add_module(name, conv)
            channels = 4
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.names:
            x = torch.relu(getattr(self, name)(x))
        return self.fc(self.pool(x).flatten(1))


def png_bytes(color: tuple[int, int, int] = (200, 40, 40), size: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def all_html(root: Any) -> list[str]:
    """Every HTML value under ``root``, hidden widgets included."""
    out, stack = [], [root]
    while stack:
        w = stack.pop()
        if isinstance(w, (W.HTML, W.HTMLMath)):
            out.append(str(w.value))
        stack.extend(getattr(w, "children", ()))
    return out


def every_html_value(folder: Path) -> tuple[list[str], int]:
    """Drive a Dreamer on ``CraftedNet`` through every path that shows a name as HTML; return
    the HTML values seen and how many crafted names were fed in."""
    from featviz_widgets.engine import load_model
    from featviz_widgets.markup import escape
    from featviz_widgets.view import Dreamer

    from .conftest import FakeView, shown, user_clicks, user_sets, wait

    model = load_model(CraftedNet(), input_size=32)
    seen: list[str] = []
    fed = 0
    d = Dreamer(model, layer=PAYLOADS[1], size=32, fps=30)
    view = FakeView(d.image_widget)
    try:
        assert d.wait_for_steps(2, timeout=60)

        def snap() -> None:
            seen.extend(all_html(d))
            seen.extend(str(w.value) for w in d.controls.all() if isinstance(w, W.HTML))

        for name in PAYLOADS:  # the status line names the layer; the download link's file name too
            user_sets(shown(d, W.Dropdown, description="layer"), name)
            assert wait(lambda name=name: escape(name) in d.status.value, 30)
            before = d.download_link.value
            user_clicks(shown(d, W.Button, description="Save PNG"))
            assert wait(lambda before=before: d.download_link.value != before, 30)
            snap()
            fed += 1
        user_sets(shown(d, W.Dropdown, description="objective"), "class")
        for name in PAYLOADS:  # typed into the class picker: the error quotes it
            user_sets(shown(d, W.Combobox), name)
            assert "No class matches" in d.status.value
            snap()
            fed += 1
        user_sets(shown(d, W.Dropdown, description="objective"), "channel")
        user_sets(shown(d, W.Dropdown, description="layer"), PAYLOADS[0])
        # Explore: neuron vs random directions (captions), exemplars from a folder of crafted files.
        user_sets(d.page_picker, "Explore")
        user_clicks(shown(d.pages["Explore"], W.Button, description="Neuron vs random directions"))
        d.job.wait(300)
        for name in FILE_PAYLOADS:
            (folder / name).write_bytes(png_bytes())
            fed += 1
        d.explore.folder.value = str(folder)
        user_clicks(shown(d.pages["Explore"], W.Button, description="Natural exemplars"))
        d.job.wait(300)
        snap()
        # Photo: uploads with crafted names, good and undecodable.
        user_sets(d.page_picker, "Photo")
        for name in FILE_PAYLOADS:
            d.photo.accept_upload(png_bytes(), name)
            snap()
            d.photo.accept_upload(b"not an image", name)
            snap()
            fed += 2
        # Export: a load of a crafted-name file that is not a saved PNG; a save to a crafted path.
        user_sets(d.page_picker, "Export")
        for name in FILE_PAYLOADS:
            d.export.accept_upload(b"junk", name)
            snap()
            d.export.path.value = str(folder / "missing-dir" / name)
            d.export.save()
            snap()
            fed += 2
        d.export.gif()
        snap()
    finally:
        view.close()
        d.close()
    return seen, fed
