"""The memory check's estimate against a real step's peak (engine/core/memory.py, issue #24).

Each case runs in a fresh process: the model is loaded and probed, then two steps are made and
the growth of the peak resident memory is compared with ``step_bytes``. A ratio above 1 means
the estimate is above the real peak (what the check refuses would not have fitted).

    .venv/bin/python benchmarks/memory_estimate.py            # the cases in docs/adversarial.md
    .venv/bin/python benchmarks/memory_estimate.py --small    # tiny sizes (tests)
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys

CASES = (
    ("efficientnet_lite0", "blocks.8", 448, 2, 1),
    ("efficientnet_lite0", "head", 320, 2, 2),
    ("efficientnet_lite0", "blocks.2", 512, 1, 1),
    ("resnet18", "layer4", 224, 2, 1),
    ("resnet18", "layer2", 448, 1, 1),
    ("resnet18", "layer3", 320, 2, 2),
)
SMALL = (("efficientnet_lite0", "blocks.2", 64, 1, 1), ("resnet18", "layer2", 64, 2, 1))


def one(name: str, layer: str, size: int, batch: int, views: int) -> None:
    import torch

    torch.set_num_threads(1)
    from featviz_widgets.engine import Renderer, RenderSettings, load_model
    from featviz_widgets.engine.core.memory import step_bytes
    from featviz_widgets.engine.layers import layers_by_name

    if name == "resnet18":  # random weights: the memory does not depend on them; in-place ReLUs
        from torchvision.models import resnet18

        model = load_model(resnet18(), input_size=224)
    else:
        model = load_model(name)
    layers_by_name(model)
    settings = RenderSettings(size=size, batch=batch, views=views)
    estimate = step_bytes(model, settings, [layer])
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * resource.getpagesize()
    before = max(current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    Renderer(model, f"{layer}:0", settings).run(2)
    grew = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, 1)
    print(
        f"{name} {layer} size {size} x batch {batch} x views {views}: estimate {estimate / 2**20:.0f} MB, "
        f"peak growth {grew / 2**20:.0f} MB, ratio {estimate / grew:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes, for the tests")
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, layer, size, batch, views = args.one
        one(name, layer, int(size), int(batch), int(views))
        return
    for case in SMALL if args.small else CASES:
        done = subprocess.run([sys.executable, __file__, "--one", *map(str, case)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
