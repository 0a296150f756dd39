"""The engine's step on a vision transformer against that model's floor, interleaved in one run.

    .venv/bin/python benchmarks/architectures.py [--model vit_b_16] [--layer encoder.layers.encoder_layer_5.mlp.1]
        [--size 128] [--rounds 7] [--device cpu]

The model is randomly initialised (no weights needed; a step's time does not depend on them).
The engine step: a 128 px canvas, the default transforms, resampled to the model's 224 px
inside the one sampling pass, the truncated forward, a channel objective, backward, Adam; the
redirected gradient's first steps are run before timing. The floor: the same model on a
224 px input tensor, truncated at the same layer by a hook that raises, the same channel mean,
backward into the input. Each round times one engine step and one floor step, alternately.
Prints both medians and the ratio line ``engine step / floor``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision.models as tvm

from featviz_widgets.engine import Channel, Renderer, load_model
from featviz_widgets.engine.layers.input_size import fed_size


class _Stop(Exception):
    pass


def floor_step(model: torch.nn.Module, module: torch.nn.Module, x: torch.Tensor, channel: int) -> None:
    """Forward to ``module`` only (a hook raises there), channel mean, backward into ``x``."""
    seen: list[torch.Tensor] = []

    def hook(_m: torch.nn.Module, _i: object, out: torch.Tensor) -> None:
        seen.append(out)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    out = seen[0]
    value = out[:, 1:, channel].mean() if out.dim() == 3 else out[:, channel].mean()
    x.grad = None
    (-value).backward()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit_b_16")
    ap.add_argument("--layer", default="encoder.layers.encoder_layer_5.mlp.1")
    ap.add_argument("--channel", type=int, default=7)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = load_model(getattr(tvm, args.model)(), device=args.device)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    r = Renderer(model, Channel(args.layer, args.channel), size=args.size)
    fed = fed_size(model, (args.size, args.size))
    for _ in range(r.settings.redirect_steps + 2):  # past the redirected steps, warm
        r.step()
    module = model.module_for(args.layer)
    x = torch.rand(1, 3, *fed, device=model.device, requires_grad=True)
    floor_step(model, module, x, args.channel)
    engine, floor = [], []
    for _ in range(args.rounds):
        sync()
        t0 = time.perf_counter()
        r.step()
        sync()
        t1 = time.perf_counter()
        floor_step(model, module, x, args.channel)
        sync()
        t2 = time.perf_counter()
        engine.append(t1 - t0)
        floor.append(t2 - t1)
    e, f = statistics.median(engine), statistics.median(floor)
    print(f"{args.model} layer {args.layer}: canvas {args.size} px fed at {fed[0]}x{fed[1]}, {args.rounds} rounds")
    print(f"engine step {e * 1000:.1f} ms   floor (truncated forward+backward) {f * 1000:.1f} ms")
    print(f"ratio engine step / floor: {e / f:.3f}")


if __name__ == "__main__":
    main()
