#!/usr/bin/env bash
# Set up (if needed) and run every test: lint, unit and widget tests, notebooks, and the real
# browser tests (Debian's chromium, installed with apt when missing and we are root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check featviz_widgets tests benchmarks
.venv/bin/ruff format --check featviz_widgets tests benchmarks
exec .venv/bin/python -m pytest "$@"
