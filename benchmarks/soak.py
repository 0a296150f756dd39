"""Long-run steadiness: a live loop on the embedded model for a given time, with occasional
control changes, printing resident memory, steps/s and frames/s every interval.

    .venv/bin/python benchmarks/soak.py --minutes 60 --interval 60 [--size 128]

The last line compares the final interval to the first: memory growth (MB) and the frame-rate
ratio. Not a test: the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import resource
import threading
import time
from typing import Any

from featviz_widgets.engine import RenderSettings, load_model
from featviz_widgets.runner.live import Frame, LiveRunner
from featviz_widgets.runner.target import Target


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


class CountingSink:
    """Stands in for the browser: accepts every frame, counts them."""

    def __init__(self) -> None:
        self.frames = 0
        self.lock = threading.Lock()

    def ready(self) -> bool:
        return True

    def publish(self, frame: Frame | None, snapshot: Any) -> None:
        if frame is not None:
            with self.lock:
                self.frames += 1

    def abandoned(self) -> bool:
        return False

    def revive(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    model = load_model()
    sink = CountingSink()
    runner = LiveRunner(model, Target(layer="blocks.8", unit=0), RenderSettings(size=args.size), sink, fps=12)
    runner.start()
    rng = random.Random(0)
    rows = []
    end = time.monotonic() + args.minutes * 60
    print(f"{'minute':>7} {'rss MB':>8} {'steps/s':>8} {'frames/s':>9} {'errors':>7}")
    last_steps, last_frames, last_t = 0, 0, time.monotonic()
    while time.monotonic() < end:
        deadline = min(end, time.monotonic() + args.interval)
        while time.monotonic() < deadline:
            time.sleep(2.0)
            choice = rng.random()  # a person nudging sliders now and then
            if choice < 0.4:
                runner.set_target(Target(layer="blocks.8", unit=rng.randrange(112)))
            elif choice < 0.7:
                runner.set(lr=rng.choice([0.02, 0.05, 0.1]), l1=rng.choice([0.0, 50.0]))
            else:
                runner.set(transform_strength=rng.choice([0.5, 1.0, 1.5]))
        now = time.monotonic()
        steps, frames = runner.snapshot().step, sink.frames
        dt = now - last_t
        row = (
            len(rows) + 1,
            rss_mb(),
            max(0, steps - last_steps) / dt,
            (frames - last_frames) / dt,
            runner.snapshot().error,
        )
        rows.append(row)
        print(
            f"{row[0] * args.interval / 60:>7.1f} {row[1]:>8.1f} {row[2]:>8.1f} {row[3]:>9.1f} {row[4] or '-':>7}",
            flush=True,
        )
        last_steps, last_frames, last_t = steps, frames, now
    runner.close()
    first, final = rows[0], rows[-1]
    print(
        f"memory growth first->last interval: {final[1] - first[1]:+.1f} MB; "
        f"frame-rate ratio last/first: {final[3] / max(first[3], 1e-9):.2f}"
    )


if __name__ == "__main__":
    main()
