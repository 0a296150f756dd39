"""Are the pictures bit-identical to another commit's? For changes that must not change behaviour
(restructurings, optimizer or runtime clean-ups): a fixed set of renders runs in a fresh process
on the working tree and on REV's package (``git archive`` into a temporary folder), at the same
thread count, and their bytes are compared.

    .venv/bin/python benchmarks/same_pixels.py [--base HEAD~1] [--threads 1] [--steps 24]

Prints one line per render (same / DIFFERENT, with the largest pixel difference) and exits 1 when
any differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (objective, settings): a channel, a class, a neuron, a batch with diversity, a pixel basis, a
# penalty mix, a size that is not square. Small sizes keep the whole run under a minute on a CPU.
RENDERS = [
    ("blocks.2:3", {"size": 64}),
    ("blocks.8:5", {"size": 96, "seed": 1}),
    ("logits:309", {"size": 96, "tv": 100}),
    ("blocks.5:2@3,3", {"size": 64}),
    ("blocks.4", {"size": 64, "l1": 20, "blur": 300}),
    ("blocks.6:1", {"size": (48, 80), "transform_strength": 0.5}),
]

CHILD = """
import hashlib, json, sys
import numpy as np
import torch
from featviz_widgets.engine import load_model, render
renders, steps, threads = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
model = load_model()
out = []
for objective, settings in renders:
    if isinstance(settings.get("size"), list):
        settings["size"] = tuple(settings["size"])
    result = render(model, objective, steps=steps, progress=False, **settings)
    pixels = np.concatenate([np.asarray(im) for im in result.images])
    out.append({"sha": hashlib.sha256(pixels.tobytes()).hexdigest(), "pixels": pixels.tolist()})
print(json.dumps(out))
"""


def run(package_root: Path, steps: int, threads: int) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(package_root))
    args = [sys.executable, "-c", CHILD, json.dumps(RENDERS), str(steps), str(threads)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(rev: str, into: Path) -> None:
    archive = into / "rev.tar"
    subprocess.run(["git", "archive", "-o", str(archive), rev, "featviz_widgets"], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="HEAD~1", help="the commit to compare with (default HEAD~1)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=24)
    args = ap.parse_args()
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        export(args.base, Path(tmp))
        before = run(Path(tmp), args.steps, args.threads)
    after = run(ROOT, args.steps, args.threads)
    differ = 0
    for (objective, settings), a, b in zip(RENDERS, before, after, strict=True):
        same = a["sha"] == b["sha"]
        diff = 0 if same else int(np.abs(np.array(a["pixels"], int) - np.array(b["pixels"], int)).max())
        differ += not same
        print(f"{objective:<16} {json.dumps(settings):<44} {'same' if same else f'DIFFERENT (max {diff})'}")
    print(f"{len(RENDERS) - differ} of {len(RENDERS)} renders bit-identical to {args.base} ({args.threads} thread(s))")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
