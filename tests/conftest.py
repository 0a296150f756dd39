from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import comm
import pytest
import torch
from comm.base_comm import BaseComm
from torch import nn

from featviz_widgets.engine.models import FeatvizModel, wrap_module

# --- running in parallel (pytest-xdist: scripts/test.sh runs -n N --dist loadgroup) ----------------


def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker, split the CPU between the workers: torch's intra-op threads, and the
    OpenMP/MKL default of the processes tests start (kernels, servers, benchmarks), so N workers
    on N cores do not run N*N threads. Tests that set a thread count themselves still do."""
    config.addinivalue_line("markers", "xdist_group(name): run in the same xdist worker (pytest-xdist)")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if "PYTEST_XDIST_WORKER" in os.environ and workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every ``browser`` test goes to one worker (the group shares its session's servers and
    Chromium); in a worker, browser and ``slow`` tests come first so no long test starts last.
    Applies to any test file: mark a test ``browser`` or ``slow`` and it is scheduled so."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))
    if "PYTEST_XDIST_WORKER" in os.environ:

        def rank(item: pytest.Item) -> int:
            return 0 if item.get_closest_marker("browser") else 1 if item.get_closest_marker("slow") else 2

        items.sort(key=rank)  # stable: the order within each rank is the collection's


def pytest_collection_finish(session: pytest.Session) -> None:
    """In an xdist worker of ``--dist loadgroup``: every test marked ``xdist_group`` must carry
    its group in its node id, or xdist spreads the group over the workers (the Ray tests then
    ``ray stop`` each other's clusters, the browser tests start two servers). pytest 9.2 with
    pytest-xdist 3.8 did exactly that, silently."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise RuntimeError(
            f"--dist loadgroup does not group {len(lost)} marked tests (e.g. {lost[0]}): this pytest-xdist "
            "does not tag node ids on this pytest; pin the pair (pyproject.toml's test extra)"
        )


class TinyNet(nn.Module):
    """A 3-layer convnet with hand-set weights so objective values can be checked exactly."""

    def __init__(self) -> None:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture
def tiny() -> FeatvizModel:
    torch.manual_seed(0)
    return wrap_module(TinyNet(), input_size=32, name="tiny")


# --- widget helpers: a recording comm stands in for the browser --------------------------------


class RecordingComm(BaseComm):
    def __init__(self, **kwargs: Any) -> None:
        self.sent: list[tuple[str, dict[str, Any], list[bytes]]] = []
        super().__init__(**kwargs)

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        self.sent.append((msg_type, data or {}, list(buffers or [])))


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))


def updates(widget: Any) -> list[dict[str, Any]]:
    return [d for t, d, _ in widget.comm.sent if t == "comm_msg" and d.get("method") == "update"]


def browser_says(widget: Any, content: dict[str, Any]) -> None:
    """Simulate a custom message from the front end (model.send in JS)."""
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def wait(cond: Any, timeout: float = 120.0) -> bool:
    """Until ``cond()`` holds (True), or False after ``timeout`` seconds: an event awaited, with a
    guard long enough for a loaded 2-core machine (a true condition returns at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def dreamer(tiny: FeatvizModel, comms: None) -> Any:
    """A live widget on the tiny convnet, closed after the test."""
    from featviz_widgets.view import Dreamer

    d = Dreamer(tiny, layer="conv2", size=32, fps=30)
    yield d
    d.close()


# --- the displayed widget tree: what a person can see and reach --------------------------------


def displayed(root: Any) -> list[Any]:
    """Every widget on screen under ``root``, depth first: hidden ones (layout.display none, as
    the Dreamer hides unused controls and unselected pages) and their children are skipped."""
    out = []
    stack = [root]
    while stack:
        w = stack.pop()
        if getattr(getattr(w, "layout", None), "display", None) == "none":
            continue
        out.append(w)
        stack.extend(reversed(list(getattr(w, "children", ()))))
    return out


def shown(root: Any, kind: type | None = None, *, description: str | None = None, text: str | None = None) -> Any:
    """The one displayed widget of ``kind`` with this description (or an HTML containing ``text``)."""
    found = [
        w
        for w in displayed(root)
        if (kind is None or isinstance(w, kind))
        and (description is None or getattr(w, "description", None) == description)
        and (text is None or text in str(getattr(w, "value", "")))
    ]
    assert len(found) == 1, f"{len(found)} displayed {kind.__name__ if kind else 'widgets'} {description or text!r}"
    return found[0]


def user_sets(widget: Any, value: Any) -> None:
    """Change a control as the browser does: an update message on its comm (selection widgets
    send the index of the option)."""
    import ipywidgets as W

    if isinstance(widget, (W.Dropdown, W.SelectionSlider, W.ToggleButtons)):
        values = [o[1] if isinstance(o, tuple) else o for o in widget.options]
        state = {"index": values.index(value)}
    else:
        state = {"value": value}
    widget.comm.handle_msg(
        {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []}
    )


def user_uploads(upload: Any, name: str, data: bytes) -> None:
    """Choose a file in a FileUpload as the browser sends it: its value, the content a buffer."""
    entry = {"name": name, "type": "image/png", "size": len(data), "last_modified": 0}
    upload.comm.handle_msg(
        {
            "content": {
                "data": {"method": "update", "state": {"value": [entry]}, "buffer_paths": [["value", 0, "content"]]}
            },
            "buffers": [memoryview(data)],
        }
    )


def user_clicks(button: Any) -> None:
    button.comm.handle_msg({"content": {"data": {"method": "custom", "content": {"event": "click"}}}, "buffers": []})


class FakeView:
    """A browser view of a LiveImage: says it is visible and acknowledges every frame."""

    def __init__(self, image: Any) -> None:
        import threading

        self.image = image
        self._stop = threading.Event()
        browser_says(image, {"type": "visibility", "view": "test", "visible": True})
        self._thread = threading.Thread(target=self._ack, daemon=True)
        self._thread.start()

    def _ack(self) -> None:
        while not self._stop.wait(0.02):
            if self.image.seq:
                browser_says(self.image, {"type": "ack", "seq": self.image.seq})

    def picture(self) -> Any:
        """The frame on screen, decoded, as a float array (H, W, 3)."""
        import io

        import numpy as np
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(bytes(self.image.frame))).convert("RGB"), dtype=np.float32)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)


class FakeClock:
    """An injected ``time.monotonic``: time moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def interruptible() -> None:
    """``preexec_fn`` for a command a test interrupts with SIGINT, as Ctrl-C in a terminal does.

    A command started in the background by a non-interactive shell (``cmd &``, nohup, some CI
    runners) has SIGINT *ignored*, and exec keeps the ignore: Python then installs no
    KeyboardInterrupt handler, the SIGINT does nothing and the command runs to its end (exit 0).
    A terminal's foreground command has SIGINT at its default, which this restores in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def featviz_render(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``featviz render --steps 2 --size 32 --quiet ARGS`` from a fresh process in ``cwd``, as a
    user runs it (this checkout on the path, one thread)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "featviz_widgets.cli", "render", "--steps", "2", "--size", "32", "--quiet", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
