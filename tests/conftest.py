from __future__ import annotations

import os
import time
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


def wait(cond: Any, timeout: float = 10.0) -> bool:
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
