"""The benchmarks are not timed tests, but they must keep running: each one here runs with the
smallest arguments it takes and prints its ratio line."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # This checkout's package and nothing else (no Lucent --target folder: the engine and floor
    # columns only), whatever the venv's editable install points at.
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=1800,  # a hang guard, not a speed limit: a loaded 2-core machine took over 300 s
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_engine_benchmark_runs() -> None:
    out = run_benchmark("engine_vs_lucent.py", "--size", "64", "--steps", "2", "--rounds", "1")
    assert out.count("ratio ") == 3 and "engine step =" in out


@pytest.mark.slow
def test_gpu_benchmark_runs_on_cpu_as_a_smoke_test() -> None:
    out = run_benchmark("gpu.py", "--device", "cpu", "--steps", "2", "--batch", "4")
    assert "float32: batch 1" in out and "bf16 autocast: batch 1" in out and "smoke run" in out


@pytest.mark.slow
def test_cpu_runtime_benchmark_runs() -> None:
    out = run_benchmark("cpu_runtime.py", "--rounds", "1", "--size", "64", "--batch", "4", "--mixed", "2")
    assert out.count("ratio ") == 4 and "tuned is" in out and "released is" in out and "mixed render jobs" in out


@pytest.mark.slow
def test_step_breakdown_benchmark_runs() -> None:
    out = run_benchmark("step_breakdown.py", "--size", "64", "--rounds", "1", "--steps", "1")
    assert "pixel basis" in out and "ratio: engine step =" in out


def import_benchmark(name: str) -> ModuleType:
    """A benchmark script as a module (they import each other by plain name, as scripts do)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_lucent_runs_leave_the_shared_model_without_their_hooks() -> None:
    # Lucent 0.1.8 hooks every module and never unhooks; the benchmarks share the engine's model.
    hooks_restored = import_benchmark("lucent_run").hooks_restored
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    seen: list[str] = []
    kept = model[2].register_forward_hook(lambda m, i, o: seen.append("kept"))
    with hooks_restored(model):
        for m in model.modules():  # what render_vis does
            m.register_forward_hook(lambda m, i, o: seen.append("leaked"))
        model(torch.zeros(1, 3, 5, 5))
        assert seen.count("leaked") == 4 and seen.count("kept") == 1
    seen.clear()
    model(torch.zeros(1, 3, 5, 5))
    assert seen == ["kept"]
    kept.remove()
    model(torch.zeros(1, 3, 5, 5))
    assert seen == ["kept"]


@pytest.mark.slow
def test_quality_seed_sweep_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The full benchmark takes minutes; two classes, two seeds and two short checkpoints here.
    quality = import_benchmark("quality")
    from featviz_widgets.engine import load_model

    monkeypatch.setattr(quality, "CHECKPOINTS", (1, 2))
    monkeypatch.setattr(quality, "CLASSES", quality.CLASSES[:1])
    monkeypatch.setattr(quality, "HELD_OUT", quality.HELD_OUT[:1])
    quality.sweep(load_model(), load_model("efficientnet_lite2"), [0, 1], 32)
    out = capsys.readouterr().out
    assert out.count("/2") == 4 and "mean of 2 seeds" in out and out.startswith("seed")


def test_quality_tv_reaches_the_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    # `--tv` must change the renders it reports on (main passes it to every render via ours).
    quality = import_benchmark("quality")
    from featviz_widgets.engine import load_model

    monkeypatch.setattr(quality, "CHECKPOINTS", (4,))
    model = load_model()
    plain, _ = quality.ours(model, 1, 64)
    again, _ = quality.ours(model, 1, 64, tv=0.0)
    smooth, _ = quality.ours(model, 1, 64, tv=100.0)
    assert np.array_equal(plain[4], again[4])
    assert not np.array_equal(plain[4], smooth[4])


@pytest.mark.slow
def test_memory_estimate_benchmark_runs() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}  # this tree's engine/core/memory.py
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory_estimate.py"), "--small"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("ratio ") == 2


@pytest.mark.slow
def test_peers_benchmark_runs_this_projects_rows(tmp_path: Path) -> None:
    # Peers that are not installed are left out; this project's rows must render, be judged,
    # make a grid and be timed against the floor.
    ours = "featviz,featviz-pixels,featviz-fourier,featviz-maco,featviz-aligned"
    small = ["--out", str(tmp_path), "--size", "32", "--engines", ours]
    out = run_benchmark(
        "peers.py", "render", *small, "--classes", "2", "--seeds", "0", "--steps", "1,2", "--channels", "1"
    )
    assert out.count(" seed 0 ") == 5 * 3 and "render done" in out
    renders = {p.parent.name: p for p in tmp_path.glob("renders/*/logits_285_s0.npz")}
    assert sorted(renders) == sorted(ours.split(","))
    last = {name: np.load(path)["s2"] for name, path in renders.items()}
    assert all(img.shape == (32, 32, 3) for img in last.values())
    assert len({img.tobytes() for img in last.values()}) == 5  # five different recipes, five pictures
    report = run_benchmark("peers.py", "report", *small, "--steps", "1,2", "--photo-crops", "2")
    assert "2 renders per engine and step (2 classes x 1 seeds)" in report
    assert all(f"\n{name} " in report for name in ours.split(","))
    assert "photo crops: speckle " in report and "clipped pixels / HSV saturation" in report
    grid = tmp_path / "grid.png"
    run_benchmark("peers.py", "grid", "--out", str(tmp_path), "--step", "2", "--grid", str(grid))
    from PIL import Image

    assert Image.open(grid).size == (120 + 3 * 112, 28 + 5 * 112)  # 5 engines x (2 classes + 1 channel)
    speed = run_benchmark("peers.py", "speed", *small[2:], "--rounds", "1", "--steps", "1")
    assert "ratio mid: featviz step =" in speed and "ratio logit: featviz step =" in speed


def test_peer_snapshots_come_from_one_trajectory() -> None:
    # A peer's per-step image maker is wrapped: its k-th call shows the image after k-1 updates.
    pe = import_benchmark("peer_engines")
    import torch

    class Loop:
        def make(self, step: int) -> torch.Tensor:
            return torch.full((3, 2, 2), step / 10)

    out: dict[int, np.ndarray] = {}
    with pe.recording(Loop, "make", lambda img, *_a: img, {0, 2, 3}, out):
        loop = Loop()
        for step in range(4):
            loop.make(step)
    assert sorted(out) == [0, 2, 3] and [int(out[k][0, 0, 0]) for k in (0, 2, 3)] == [0, 51, 76]
    assert Loop.make(Loop(), 1)[0, 0, 0] == pytest.approx(0.1)  # unwrapped afterwards


def test_peers_frechet_distance_and_cache(tmp_path: Path) -> None:
    peers = import_benchmark("peers")
    import torch

    a = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    assert abs(peers.frechet(a, a)) < 1e-6
    assert peers.frechet(a, a + 3) == pytest.approx(9 * 8, rel=1e-6)
    path = tmp_path / "r.npz"
    np.savez(path, seconds=1.5, s32=np.zeros((2, 2, 3), np.uint8))
    assert peers.cached(path, (32,)) is not None and peers.cached(path, (32, 64)) is None
    with pytest.raises(SystemExit, match="available"):
        peers.pick([], "faccent")


def test_peers_colour_measures_catch_an_over_saturated_picture() -> None:
    peers = import_benchmark("peers")
    grey = np.full((8, 8, 3), 128, np.uint8)
    loud = np.zeros((8, 8, 3), np.uint8)
    loud[:4, :, 0] = 255  # half pure red, half black: every pixel has a clipped channel
    half = np.concatenate([grey[:4], loud[:4]])
    assert peers.colour_measures([grey]) == {"clipped": 0.0, "saturation": 0.0}
    assert peers.colour_measures([loud]) == {"clipped": 1.0, "saturation": 0.5}
    assert peers.colour_measures([grey, half]) == {"clipped": 0.25, "saturation": 0.25}
    # One clipped channel is enough; saturation is HSV's (max - min) / max, not max - min.
    pink = np.full((8, 8, 3), (255, 128, 128), np.uint8)
    dull = np.full((8, 8, 3), (200, 100, 100), np.uint8)
    assert peers.colour_measures([pink])["clipped"] == 1.0
    assert peers.colour_measures([dull]) == {"clipped": 0.0, "saturation": pytest.approx(0.5)}
