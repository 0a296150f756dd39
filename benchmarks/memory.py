"""Peak resident memory of one 224 px render on the CPU (embedded model, 64 steps), measured in
a fresh process so nothing else counts.

    .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

import resource


def main() -> None:
    from featviz_widgets import load_model, render

    model = load_model()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for objective in ("blocks.2:3", "blocks.8:5", "logits:309"):
        render(model, objective, steps=64, size=224, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (model loaded: {before:.0f} MB; rendering added {peak - before:.0f} MB)")


if __name__ == "__main__":
    main()
