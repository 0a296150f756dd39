"""Widget responsiveness on the CPU, without a browser.

1. In process (a recording comm stands in for the front end, acknowledging every frame at
   once): time from a channel-slider change to the first frame of the new target, and the
   sustained frame rate, at 128 px on the embedded model.
2. In a real kernel (jupyter_client): while a Dreamer runs, how long the kernel takes to answer
   an execute request.

    .venv/bin/python benchmarks/responsiveness.py [--changes 40] [--requests 50]

3. The CPU a settled loop uses: the defaults left running until the objective settles (about a
   minute), then the process's CPU time over 10 s.

Targets: change-to-frame p95 <= 200 ms, >= 10 fps, kernel answer p95 <= 50 ms; a settled loop
uses (next to) no CPU.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from typing import Any


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def in_process(changes: int) -> tuple[list[float], float]:
    import comm
    from comm.base_comm import BaseComm

    class Quiet(BaseComm):
        def publish_msg(self, *args: Any, **kwargs: Any) -> None:
            pass

    comm.create_comm = lambda **kw: Quiet(**kw)
    from featviz_widgets.view import Dreamer

    d = Dreamer(size=128, fps=12)
    w = d.image_widget
    frames: list[tuple[float, int]] = []
    lock = threading.Lock()
    real_show = w.show

    def show(frame: Any) -> None:  # the "browser": draws at once and acknowledges
        real_show(frame)
        w._handle_message(w, {"type": "ack", "seq": w.seq}, [])
        with lock:
            frames.append((time.perf_counter(), d.runner.snapshot().target.unit))  # what the frame shows

    w.show = show  # type: ignore[method-assign]
    w._handle_message(w, {"type": "visibility", "view": "bench", "visible": True}, [])
    d.wait_for_steps(5, timeout=60)
    rng = random.Random(0)
    latencies = []
    for _ in range(changes):
        unit = rng.choice([u for u in range(112) if u != d.controls.unit.value])
        with lock:
            start_index = len(frames)
        t0 = time.perf_counter()
        d.controls.unit.value = unit  # what a slider move does
        while True:
            with lock:
                hit = next((t for t, u in frames[start_index:] if u == unit), None)
            if hit is not None:
                latencies.append(hit - t0)
                break
            time.sleep(0.001)
        time.sleep(rng.uniform(0.2, 0.5))
    with lock:
        n0 = len(frames)
    t0 = time.perf_counter()
    time.sleep(10)
    with lock:
        fps = (len(frames) - n0) / (time.perf_counter() - t0)
    d.close()
    return latencies, fps


def settled_cpu(timeout: float = 600.0) -> tuple[int, float, float]:
    """(step it settled at, seconds to settle, CPU seconds per wall second once settled)."""
    from featviz_widgets.engine import RenderSettings, load_model
    from featviz_widgets.runner import LiveRunner, Target

    class Sink:
        def ready(self) -> bool:
            return True

        def publish(self, frame: Any, snapshot: Any) -> None:
            pass

        def abandoned(self) -> bool:
            return False

        def revive(self) -> None:
            pass

    runner = LiveRunner(load_model(), Target(layer="blocks.8", unit=0), RenderSettings(size=128, lr=0.05), Sink())
    t0 = time.perf_counter()
    runner.start()
    deadline = time.monotonic() + timeout
    while runner.snapshot().state != "settled" and time.monotonic() < deadline:
        time.sleep(0.2)
    settled_after = time.perf_counter() - t0
    step = runner.snapshot().step
    time.sleep(1.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(10)
    share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    runner.close()
    return step, settled_after, share


def in_kernel(requests: int) -> list[float]:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive(
            "from featviz_widgets import Dreamer\nd = Dreamer(size=128, backend='image')\n"
            "assert d.wait_for_steps(5, timeout=60)",
            timeout=120,
        )
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            kc.execute_interactive("x = 1 + 1", timeout=30)
            times.append(time.perf_counter() - t0)
            time.sleep(0.1)
        kc.execute_interactive("steps = d.runner.snapshot().step; d.close(); print(steps)", timeout=60)
        return times
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    latencies, fps = in_process(args.changes)
    answers = in_kernel(args.requests)
    settled_step, settled_after, cpu_share = settled_cpu()
    ms = [v * 1000 for v in latencies]
    ans = [v * 1000 for v in answers]
    print(
        f"slider change -> first frame of the new target: median {statistics.median(ms):.0f} ms, p95 {p95(ms):.0f} ms"
    )
    print(f"sustained frame rate: {fps:.1f} fps (cap 12)")
    print(f"kernel answer while the loop runs: median {statistics.median(ans):.0f} ms, p95 {p95(ans):.0f} ms")
    print(
        f"settled loop: settled at step {settled_step} after {settled_after:.0f} s; then "
        f"{cpu_share * 100:.1f}% of one core (CPU seconds per second)"
    )
    print(
        f"ratio: change-to-frame p95 / 200 ms target = {p95(ms) / 200:.2f}; fps / 10 = {fps / 10:.2f}; "
        f"kernel p95 / 50 ms = {p95(ans) / 50:.2f}"
    )


if __name__ == "__main__":
    main()
