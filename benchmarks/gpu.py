"""GPU throughput (run on a CUDA machine): steps/s at 224 px batch 1, and image-steps/s for 64
channels of one layer rendered in one batch, each in float32 and under bf16 autocast; peak GPU
memory of the batched run.

    .venv/bin/python benchmarks/gpu.py [--steps 100] [--layer blocks.8]

Targets on an H100: >= 300 steps/s batch 1, >= 5,000 image-steps/s batched. Prints the card's
name with every figure. ``--device cpu --steps 2 --batch 4`` is the smoke test the test suite
runs so the script keeps working between GPU loans.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from featviz_widgets.engine import BatchChannels, Renderer, load_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(renderer: Renderer, steps: int, bf16: bool) -> float:
    device = renderer.device
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        renderer.run(2)
        sync(device)
        t0 = time.perf_counter()
        renderer.run(steps)
        sync(device)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--layer", default="blocks.8")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA device (or --device cpu for a smoke run).")
    torch.backends.cudnn.benchmark = True
    card = torch.cuda.get_device_name(0) if cuda else f"{args.device} (smoke run, not a GPU figure)"
    model = load_model(device=args.device)
    print(f"card: {card}; torch {torch.__version__}")
    for bf16 in (False, True):
        label = "bf16 autocast" if bf16 else "float32"
        single = Renderer(model, f"{args.layer}:5", size=224)
        s1 = timed(single, args.steps, bf16)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        batch = Renderer(model, BatchChannels(args.layer, tuple(range(args.batch))), size=224, batch=args.batch)
        sb = timed(batch, max(2, args.steps // 5), bf16)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        print(
            f"{label:>14}: batch 1 {1 / s1:7.1f} steps/s | batch {args.batch}: {args.batch / sb:8.0f} image-steps/s, "
            f"peak {peak:.2f} GiB  [{card}]"
        )
    print(f"ratio: batch-1 steps/s / 300 target and image-steps/s / 5000 target are printed above for {card}")


if __name__ == "__main__":
    main()
