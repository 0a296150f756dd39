#!/usr/bin/env bash
# Set up (if needed) and run every test: lint, unit and widget tests, notebooks, and the real
# browser tests (Debian's chromium, installed with apt when missing and we are root).
# pytest runs on several workers (pytest-xdist, --dist loadgroup: the browser tests share one
# worker and its servers; see tests/conftest.py). FEATVIZ_TEST_WORKERS=N sets how many (0: none);
# extra arguments go to pytest and come last, so `-n 0` there wins too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check featviz_widgets tests benchmarks
.venv/bin/ruff format --check featviz_widgets tests benchmarks
.venv/bin/mypy  # the package ships py.typed: its types are checked ([tool.mypy] in pyproject.toml)
cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
workers=${FEATVIZ_TEST_WORKERS:-$((cores < 4 ? cores : 4))}
if [ "$workers" -lt 2 ]; then workers=0; fi  # one core: no worker processes at all
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
