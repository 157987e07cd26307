#!/usr/bin/env bash
# Run wangge's whole test suite on a fresh machine: install what the tests need, lint, test.
# Usage: bash scripts/test.sh [extra pytest arguments]
#        WANGGE_SKIP_SERVICES=1 bash scripts/test.sh   (leave PostGIS and chromium alone)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# the versions CI tested: constraints.txt pins every test dependency for Python 3.11 on
# linux x86_64 (made by uv pip compile from pyproject.toml; its header says how to remake it)
echo "== installing wangge and its test dependencies (pinned by constraints.txt)"
"$PYTHON" -c 'import sys; sys.version_info[:2] == (3, 11) or print(
    f"note: constraints.txt pins for Python 3.11; this is {sys.version.split()[0]}")'
"$PYTHON" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'

# the console scripts installed with this Python come first on PATH
PATH="$("$PYTHON" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH"
export PATH

echo "== ruff"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .

# PostgreSQL + PostGIS on 127.0.0.1:5432 (database wangge_test) and Debian's chromium for
# the browser tests, installed on a fresh machine; a quick check when they are already there.
# CI (CI=true) passes through untouched: with it the tests fail, not skip, on a missing service.
if [ "${WANGGE_SKIP_SERVICES:-0}" != 1 ]; then
    bash scripts/ensure_services.sh
fi

# MapLibre and Leaflet are committed in maps/static/vendor: check they are the locked versions
bash scripts/vendor.sh

# two processes (one per core of the CI machine), a test file to each in turn, each with its
# own PostGIS database (tests/conftest.py); WANGGE_TEST_WORKERS=0 runs in this process
echo "== pytest"
"$PYTHON" -m pytest -n "${WANGGE_TEST_WORKERS:-2}" --dist loadfile --durations=25 "$@"
