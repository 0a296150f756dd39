#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with torch, the package
# (editable) and its notebook/test extras. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch/torchvision first, pinned to the releases this project is tested with.
.venv/bin/python -c "import torch, torchvision" 2>/dev/null || "${PIP[@]}" torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" -e ".[test,notebook,lite,ray,timm,directions]"
