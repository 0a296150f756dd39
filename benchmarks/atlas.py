"""The atlas of a whole model, as users run it: ``featviz atlas`` in fresh processes.

    .venv/bin/python benchmarks/atlas.py [--steps 64] [--size 96] [--max-units 8] [--chunk 8]
        [--exemplar-layer blocks.8] [--per-channel 16] [--skip-kill]

1. Throughput: the embedded model's default atlas (every main layer but the logits) at
   ``--steps``/``--size``, in-process (default threads: all cores) and with ``--ray local``
   (``--threads 1``: two 1-thread workers on the two cores) (and in-process with ``--threads 1``
   with ``--one-thread``), one after the other in this run;
   tiles/s over the rendering (``render_seconds`` in the command's summary: from the first
   task to the last tile written; Ray's start-up is printed apart). ``--max-units N`` renders
   the first N channels of each layer (whole chunks); ``--max-units 0`` the whole atlas.
2. Exemplars: one pass over the photos for all the channels of ``--exemplar-layer``
   (``atlas.exemplars.layer_exemplars``) vs ``top_exemplars`` once per channel (timed on the
   first ``--per-channel`` channels and scaled to the layer), on the bundled photo folder.
3. Kill and resume: the Ray run again in a new folder, SIGKILLed once half its chunks are
   recorded, then the same command: what it resumed and rendered, every tile present.
The GPU figure (tiles per GPU-hour) needs a GPU machine: this script reports the device used.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "featviz_widgets.cli", "atlas"]


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def run(args: list[str]) -> dict[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run([*CLI, *args], env=env(), cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"featviz atlas {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    s = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    s["wall"] = time.perf_counter() - t0
    return s


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--chunk", type=int, default=8)
    p.add_argument("--max-units", type=int, default=8, help="0: every channel (the full atlas)")
    p.add_argument("--exemplar-layer", default="blocks.8")
    p.add_argument("--per-channel", type=int, default=16)
    p.add_argument("--skip-kill", action="store_true")
    p.add_argument("--one-thread", action="store_true", help="also in-process with --threads 1")
    p.add_argument("--here-threads", type=int, help="threads of the in-process run (default: all cores)")
    p.add_argument("--skip-exemplars", action="store_true")
    a = p.parse_args()
    import torch

    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, cuda {torch.cuda.is_available()}, load {load()}")
    common = ["--steps", str(a.steps), "--size", str(a.size), "--chunk", str(a.chunk), "--quiet"]
    if a.max_units:
        common += ["--max-units", str(a.max_units)]
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    print(f"command: featviz atlas --out DIR {' '.join(common)} [--ray local --threads 1]")

    # 1. throughput
    here_threads = ["--threads", str(a.here_threads)] if a.here_threads else []
    here = run([*common, *here_threads, "--out", str(tmp / "here")])
    print(
        f"in-process ({a.here_threads or torch.get_num_threads()} threads): {here['tiles']} tiles in {here['render_seconds']:.1f} s "
        f"= {here['tiles'] / here['render_seconds']:.3f} tiles/s (wall {here['wall']:.0f} s, load {load()})"
    )
    if a.one_thread:
        one = run([*common, "--threads", "1", "--out", str(tmp / "here1")])
        print(
            f"in-process (1 thread): {one['tiles']} tiles in {one['render_seconds']:.1f} s "
            f"= {one['tiles'] / one['render_seconds']:.3f} tiles/s (wall {one['wall']:.0f} s, load {load()})"
        )
    there = run([*common, "--threads", "1", "--ray", "local", "--out", str(tmp / "ray")])
    print(
        f"--ray local, 2 workers x 1 thread: {there['tiles']} tiles in {there['render_seconds']:.1f} s "
        f"= {there['tiles'] / there['render_seconds']:.3f} tiles/s (wall {there['wall']:.0f} s: Ray start-up "
        f"and the site {there['wall'] - there['render_seconds']:.0f} s, load {load()})"
    )
    rate = there["tiles"] / there["render_seconds"]
    r_all = rate / (here["tiles"] / here["render_seconds"])
    print(
        f"ratio ray / in-process tiles/s = {r_all:.2f} (in-process with {a.here_threads or torch.get_num_threads()} threads); target >= 0.9"
    )
    if a.one_thread:
        print(f"ratio ray / in-process (1 thread) = {rate / (one['tiles'] / one['render_seconds']):.2f}")

    # 2. exemplars per layer vs per channel
    if not a.skip_exemplars:
        exemplars(a)

    # 3. SIGKILL in the middle of the Ray run, then resume
    if not a.skip_kill:
        kill_and_resume(a, common, tmp, int(here["tiles"]))
    print(f"device: {'cuda' if torch.cuda.is_available() else 'cpu only: tiles per GPU-hour unmeasured'}")
    print(f"folders kept in {tmp}")


def exemplars(a: argparse.Namespace) -> None:
    from featviz_widgets import load_model
    from featviz_widgets.atlas.exemplars import ExemplarJob, layer_exemplars, load_photos
    from featviz_widgets.engine import Channel, layer_info
    from featviz_widgets.engine.explore import top_exemplars

    model = load_model(None, device="cpu")
    photos = load_photos(ROOT / "featviz_widgets" / "data")
    units = layer_info(model, a.exemplar_layer).channels
    t0 = time.perf_counter()
    layer_exemplars(model, ExemplarJob(a.exemplar_layer, "channel", units, 4), photos)
    t_layer = time.perf_counter() - t0
    n = min(a.per_channel, units)
    t0 = time.perf_counter()
    for u in range(n):
        top_exemplars(model, Channel(a.exemplar_layer, u), photos, k=4)
    t_unit = (time.perf_counter() - t0) / n
    print(
        f"exemplars of {a.exemplar_layer} ({units} channels, {len(photos)} photos x 10 crops): one pass per layer "
        f"{t_layer:.1f} s; per channel {t_unit:.2f} s x {units} = {t_unit * units:.0f} s "
        f"(measured on {n} channels); {t_unit * units / t_layer:.0f}x"
    )


def kill_and_resume(a: argparse.Namespace, common: list[str], tmp: Path, tiles: int) -> None:
    out = tmp / "killed"
    args = [*CLI, *common, "--threads", "1", "--ray", "local", "--out", str(out)]
    proc = subprocess.Popen(args, env=env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    half = tiles // a.chunk // 2
    while proc.poll() is None:
        records = list((out / "chunks").rglob("*.json")) if (out / "chunks").exists() else []
        if len(records) >= half:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    kept = len(list((out / "chunks").rglob("*.json")))
    again = run([*common, "--threads", "1", "--ray", "local", "--out", str(out)])
    pngs = len(list((out / "tiles").rglob("*.png")))
    print(
        f"SIGKILL after {kept} of {tiles // a.chunk} chunk records; the same command: resumed "
        f"{again['resumed']} tiles, rendered {again['rendered']} (= only the missing), {pngs} PNGs on disk of "
        f"{again['tiles']}; resume took {again['wall']:.0f} s"
    )


if __name__ == "__main__":
    main()
