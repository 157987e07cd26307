#!/usr/bin/env bash
# Run wangge's whole test suite on a fresh machine: install what the tests need, lint, test.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
echo "== installing wangge and its test dependencies"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[test]'

# the console scripts installed with this Python come first on PATH
PATH="$("$PYTHON" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH"
export PATH

echo "== ruff"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .

echo "== pytest"
"$PYTHON" -m pytest "$@"
