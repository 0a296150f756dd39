#!/usr/bin/env bash
# Set up (if needed) and open JupyterLab on the quickstart notebook with the embedded model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ARGS=(--notebook-dir=. notebooks/quickstart.ipynb)
if [ "$(id -u)" = "0" ]; then ARGS+=(--allow-root); fi
exec .venv/bin/jupyter lab "${ARGS[@]}" "$@"
