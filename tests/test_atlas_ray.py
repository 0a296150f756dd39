"""The atlas on a local Ray instance (``ray.init(num_cpus=2)``, one per module): the same
tiles as in-process, and a worker that dies mid-task is retried without duplicates."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from featviz_widgets.atlas import render_atlas
from featviz_widgets.engine.models import FeatvizModel, wrap_module

from .conftest import TinyNet
from .test_atlas import FAST, leftovers, tiles

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def test_same_tiles_in_process_and_on_ray(tmp_path: Path) -> None:
    kw = {"layers": ["stem"], "chunk": 8, **FAST}
    here = render_atlas(None, out=tmp_path / "here", **kw)
    there = render_atlas(None, out=tmp_path / "ray", ray="local", **kw)
    assert here.key == there.key  # same model, settings and threads: the same store key
    assert sorted(there.rendered) == sorted(here.rendered) and len(there.rendered) == 4
    a, b = tiles(here.out, here.key, "stem"), tiles(there.out, there.key, "stem")
    assert sorted(a) == sorted(b) == list(range(32))
    for unit in a:
        np.testing.assert_array_equal(a[unit], b[unit], err_msg=f"stem:{unit}")
    assert (there.out / "layers" / "stem.html").is_file() and (there.out / "units" / "stem" / "31.html").is_file()


class DiesOnceNet(TinyNet):
    """Kills its process the first time it runs on a Ray worker (any process but the one that
    built it): the worker dies mid-task, as when a machine is lost."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.owner = os.getpid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if os.getpid() != self.owner and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)
        return super().forward(x)


def test_worker_death_is_retried_and_every_tile_written_once(tmp_path: Path) -> None:
    marker = tmp_path / "died"
    model: FeatvizModel = wrap_module(DiesOnceNet(str(marker)), input_size=32, name="tiny")
    reference = render_atlas(wrap_module(TinyNet(), input_size=32, name="tiny"), out=tmp_path / "ref", chunk=2, **FAST)
    r = render_atlas(model, out=tmp_path / "atlas", chunk=2, ray="local", **FAST)
    assert marker.is_file(), "no worker died: the fault was not injected"
    assert r.key == reference.key  # same weights, same settings
    counts = Counter(r.rendered)
    assert sorted(counts) == sorted(reference.rendered) and set(counts.values()) == {1}
    assert r.tiles_rendered == r.total == 4 + 4 + 6 + 6 + 6  # conv1, relu1, conv2, relu2, pool
    for layer in ("conv1", "relu1", "conv2", "relu2", "pool"):
        a, b = tiles(r.out, r.key, layer), tiles(reference.out, reference.key, layer)
        assert sorted(a) == sorted(b)
        for unit in a:
            np.testing.assert_array_equal(a[unit], b[unit])
    assert leftovers(r.out) == []


def test_ray_run_resumes_what_local_started(tmp_path: Path, monkeypatch: Any) -> None:
    from featviz_widgets.atlas import build as build_module

    tiny = wrap_module(TinyNet(), input_size=32, name="tiny")
    real = build_module.run_local

    def dies_after_first(*args: Any, **kwargs: Any) -> Any:
        it = real(*args, **kwargs)
        yield next(it)
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "run_local", dies_after_first)
    with pytest.raises(KeyboardInterrupt):
        render_atlas(tiny, out=tmp_path, layers=["conv2"], chunk=2, **FAST)
    monkeypatch.setattr(build_module, "run_local", real)
    r = render_atlas(tiny, out=tmp_path, layers=["conv2"], chunk=2, ray="local", **FAST)
    assert (r.skipped, sorted(r.rendered)) == (2, [("conv2", 2), ("conv2", 4)])


def test_cli_same_command_with_ray_local_gives_the_same_tiles(tmp_path: Path) -> None:
    """The issue's done-criterion: ``featviz atlas`` and the same command with ``--ray local``
    (default threads: the same in both modes) give the same tiles, under the same key."""
    import json

    from featviz_widgets.cli import main

    args = ["atlas", "--layers", "stem", "--steps", "3", "--size", "32", "--chunk", "8", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "here")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--ray", "local"]) == 0
    key = json.loads((tmp_path / "here" / "atlas.json").read_text())["key"]
    assert json.loads((tmp_path / "ray" / "atlas.json").read_text())["key"] == key
    a, b = tiles(tmp_path / "here", key, "stem"), tiles(tmp_path / "ray", key, "stem")
    assert sorted(a) == sorted(b) == list(range(32))
    for unit in a:
        np.testing.assert_array_equal(a[unit], b[unit], err_msg=f"stem:{unit}")
