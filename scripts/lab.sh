#!/usr/bin/env bash
# Set up (only when .venv is missing or out of date) and open JupyterLab on the quickstart
# notebook with the embedded model. The URL it prints lands on the notebook, so it works on a
# headless machine too (open the printed address in a browser; as root it adds --allow-root).
# Extra arguments go to JupyterLab, e.g. `bash scripts/lab.sh --no-browser --port=8890`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ARGS=(--ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/quickstart.ipynb)
if [ "$(id -u)" = "0" ]; then ARGS+=(--allow-root); fi
exec .venv/bin/jupyter lab "${ARGS[@]}" "$@"
