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
    env.pop("PYTHONPATH", None)  # without Lucent: the engine and floor columns only
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
