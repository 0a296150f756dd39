"""The Export tab: save with settings (the full path shown), load settings back (all or
nothing), a time-lapse GIF of the whole run, and the code that reproduces the image exactly
(shown, and copied to the clipboard). Its messages and errors appear in the tab itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as W

from ..errors import FeatvizError
from .host import Host
from .parts import data_link, error_html, note_html, uploaded_file
from .status import file_stem


class ExportPanel:
    def __init__(self, host: Host, save: Any) -> None:
        self.host = host
        self._save_to = save  # the widget's save(path) -> Path
        self.path = W.Text("", placeholder="file.png (written only when you click)", layout=W.Layout(width="300px"))
        self.save_button = W.Button(description="Save PNG to file", layout=W.Layout(width="150px"))
        self.load = W.FileUpload(accept=".png", multiple=False, description="Load settings")
        self.gif_button = W.Button(description="Time-lapse GIF", layout=W.Layout(width="150px"))
        self.code_button = W.Button(description="Copy as code", icon="copy", layout=W.Layout(width="150px"))
        self.message = W.HTML("")
        self.links = W.HTML("")
        self.code = W.Textarea("", layout=W.Layout(width="100%", height="160px"))
        self.save_button.on_click(lambda _b: self.save())
        self.gif_button.on_click(lambda _b: self.gif())
        self.code_button.on_click(lambda _b: self.copy_code())
        self.load.observe(self._on_load, names="value")
        self.widget = W.VBox(
            [
                W.HBox([self.path, self.save_button], layout=W.Layout(flex_flow="row wrap")),
                self.load,
                W.HBox([self.gif_button, self.code_button]),
                self.message,
                self.links,
                self.code,
            ],
            layout=W.Layout(width="100%"),
        )

    def _say(self, text: str, error: bool = False) -> None:
        self.message.value = error_html(text) if error else note_html(text)

    def save(self) -> None:
        """Write the picture to the typed file (replacing it, and saying so), or with the box
        empty to a name made from the target, never over an earlier save (``-2``, ``-3``...)."""
        typed = self.path.value.strip()
        name = typed or _free_name(Path(f"{file_stem(self.host.runner.target)}.png"))
        if not name.lower().endswith(".png"):
            self._say(f"{name!r} does not end in .png: type a file name like picture.png.", error=True)
            return
        replaced = bool(typed) and Path(name).expanduser().is_file()
        try:
            written: Path = self._save_to(name)
        except (FeatvizError, OSError) as exc:
            self._say(f"Could not save {name!r}: {exc}", error=True)
            return
        note = ", replacing the file that was there" if replaced else ""
        self._say(f"Saved {written}{note} (the settings are inside the PNG: Load settings reads them back).")

    def gif(self) -> None:
        try:
            data = self.host.runner.timelapse_gif()
        except FeatvizError as exc:
            self._say(str(exc), error=True)
            return
        self.links.value = data_link(data, "featviz_timelapse.gif", "image/gif") + f" ({len(data) / 1e6:.2f} MB)"
        self._say("Time-lapse of the whole run so far.")

    def copy_code(self) -> None:
        try:
            code = self.host.runner.code()
        except FeatvizError as exc:
            self._say(str(exc), error=True)
            return
        self.code.value = code
        self.host.copy_to_clipboard(code)
        self._say("Copied to the clipboard: run it in a cell for the same pixels.")

    def _on_load(self, change: dict[str, Any]) -> None:
        upload = uploaded_file(change)
        if upload is not None:
            self.accept_upload(upload[1], upload[0])

    def accept_upload(self, data: bytes, name: str) -> None:
        """Load the settings of an uploaded PNG (what Load settings does with the chosen file):
        all or nothing; a bad file gets a message here and changes nothing."""
        try:
            self.host.load(data, name)
        except FeatvizError as exc:
            self._say(f"{name}: {exc} Nothing was changed.", error=True)
            return
        self._say(f"Loaded the settings of {name}; the live image continues from its picture.")


def _free_name(path: Path) -> str:
    """``path``, or the first of ``stem-2``, ``stem-3``... beside it that does not exist yet."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return str(candidate)
