"""Time-lapse GIF sizes: a real EfficientNet-Lite0 run at the live widget's defaults (blocks.8
channel 0, lr 0.05), every step offered to a ``Timelapse``, encoded at the end with and without
the default 1 MB bound, at 128 and 224 px.

    .venv/bin/python benchmarks/timelapse_gif.py [--steps 1000] [--sizes 128,224] [--max-frames 128]
        [--objective blocks.8:0] [--out /tmp/timelapse]

Prints per size: frames kept and the steps they span, the memory they hold, the GIF's bytes and
frame count unbounded and under 1 MB, and the encode time. ``--out`` writes the GIFs to look at.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import torch
from PIL import Image

from featviz_widgets.engine import Renderer, load_model
from featviz_widgets.engine.core import to_uint8
from featviz_widgets.engine.core.timelapse import Timelapse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--sizes", default="128,224")
    ap.add_argument("--max-frames", type=int, default=128)
    ap.add_argument("--objective", default="blocks.8:0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model()
    print(f"{args.objective}, {args.steps} steps, lr 0.05, Timelapse(max_frames={args.max_frames})")
    print("size | frames | steps spanned | interval | memory | GIF unbounded | GIF <= 1 MB | its encode s")
    print("---|---|---|---|---|---|---|---")
    for size in (int(s) for s in args.sizes.split(",")):
        r = Renderer(model, args.objective, size=size, lr=0.05, seed=0)
        t = Timelapse(max_frames=args.max_frames)
        t.add(0, to_uint8(r.image())[0])
        for step in range(1, args.steps + 1):
            r.step()
            if t.due(step) or step == args.steps:
                t.add(step, to_uint8(r.image())[0])
        steps = t.steps()
        unbounded = t.to_gif(max_bytes=1_000_000_000)
        t0 = time.perf_counter()
        bounded = t.to_gif()
        seconds = time.perf_counter() - t0
        n_unbounded = Image.open(io.BytesIO(unbounded)).n_frames
        n_bounded = Image.open(io.BytesIO(bounded)).n_frames
        side = Image.open(io.BytesIO(bounded)).size
        print(
            f"{size} | {len(steps)} | {steps[0]}..{steps[-1]} | {t.interval} | {t.nbytes / 1e6:.1f} MB | "
            f"{len(unbounded) / 1e6:.2f} MB, {n_unbounded} frames | {len(bounded) / 1e6:.2f} MB, {n_bounded} frames "
            f"{side[0]}x{side[1]} | {seconds:.1f}",
            flush=True,
        )
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            Path(args.out, f"timelapse_{size}.gif").write_bytes(bounded)


if __name__ == "__main__":
    main()
