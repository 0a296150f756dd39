#!/usr/bin/env bash
# Set-up on a fresh machine: a virtual environment in .venv with torch, the package (editable) and
# its notebook/test extras. Run again, it does nothing unless pyproject.toml or this script changed
# since the last set-up (.venv/.featviz-setup holds a hash of both) or .venv is missing.
#
#   PYTHON=python3.12 bash scripts/setup.sh     # the interpreter to build the venv from
#   FEATVIZ_SYSTEM_TORCH=1 bash scripts/setup.sh
#       reuse that interpreter's torch: the venv sees its site-packages, and torch is not
#       installed when an importable torch>=2.1 with torchvision is there (otherwise the
#       pinned torch is installed as usual). Saves the ~6 GB of the PyPI torch wheel.
#   FEATVIZ_TORCH_INDEX=https://download.pytorch.org/whl/cpu bash scripts/setup.sh
#       install torch from that index (the CPU-only wheels, well under 1 GB) instead of PyPI's
#       CUDA build.
#   bash scripts/setup.sh --dry-run             # print what would run, change nothing
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SYSTEM_TORCH=${FEATVIZ_SYSTEM_TORCH:-0}
TORCH_INDEX=${FEATVIZ_TORCH_INDEX:-}
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
EXTRAS=".[test,notebook,lite,ray,timm,directions]"
STAMP=.venv/.featviz-setup
DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    *) echo "setup.sh: unknown argument '$arg' (valid: --dry-run)" >&2; exit 2 ;;
  esac
done

run() {
  if [ "$DRY" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

# Exit code 0 when the interpreter $1 imports torch>=2.1 and torchvision (prints their versions).
TORCH_CHECK='
import sys
try:
    import torch, torchvision
except Exception as exc:
    print(f"no usable torch ({type(exc).__name__}: {exc})")
    sys.exit(1)
major, minor = (int("".join(c for c in p if c.isdigit()) or 0) for p in torch.__version__.split(".")[:2])
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
sys.exit(0 if (major, minor) >= (2, 1) else 1)
'
has_torch() { "$1" -c "$TORCH_CHECK"; }

if command -v sha256sum >/dev/null; then SHA=(sha256sum); else SHA=(shasum -a 256); fi
want=$(cat pyproject.toml scripts/setup.sh | "${SHA[@]}" | cut -d' ' -f1)" system_torch=$SYSTEM_TORCH index=$TORCH_INDEX"
if [ -x .venv/bin/python ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup.sh: .venv is up to date (delete $STAMP to reinstall)"
  exit 0
fi

VENV_ARGS=()
if [ "$SYSTEM_TORCH" = 1 ]; then
  VENV_ARGS+=(--system-site-packages)
  if [ -f .venv/pyvenv.cfg ] && ! grep -q "include-system-site-packages = true" .venv/pyvenv.cfg; then
    echo "setup.sh: FEATVIZ_SYSTEM_TORCH=1 but .venv was made without the system's packages;" \
      "remove .venv (rm -rf .venv) and run again" >&2
    exit 1
  fi
fi
if [ ! -x .venv/bin/python ]; then
  run "$PYTHON" -m venv ${VENV_ARGS[@]+"${VENV_ARGS[@]}"} .venv
fi

PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch/torchvision first, pinned to the releases this project is tested with, unless a usable
# one is already importable in the venv (which, with FEATVIZ_SYSTEM_TORCH=1, sees the system's).
if [ -x .venv/bin/python ] && has_torch .venv/bin/python; then
  echo "setup.sh: using the torch already importable in .venv"
elif [ "$SYSTEM_TORCH" = 1 ] && has_torch "$PYTHON"; then
  echo "setup.sh: using $PYTHON's torch (FEATVIZ_SYSTEM_TORCH=1)"
else
  if [ "$SYSTEM_TORCH" = 1 ]; then
    echo "setup.sh: FEATVIZ_SYSTEM_TORCH=1 but $PYTHON has no torch>=2.1 with torchvision: installing ${TORCH_PINS[*]}"
  fi
  if [ -n "$TORCH_INDEX" ]; then
    run "${PIP[@]}" --index-url "$TORCH_INDEX" "${TORCH_PINS[@]}"
  else
    run "${PIP[@]}" "${TORCH_PINS[@]}"
  fi
fi
run "${PIP[@]}" -e "$EXTRAS"
if [ "$DRY" = 1 ]; then
  echo "would write $STAMP"
else
  echo "$want" >"$STAMP"
fi
