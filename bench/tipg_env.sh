#!/usr/bin/env bash
# Make a virtualenv with tipg 1.x for bench/bench_tiles.py, apart from wangge's environment
# so that tipg's pins never touch it. Idempotent: quick when the venv is already there.
#
#   bash bench/tipg_env.sh            # venv at $TIPG_VENV (default /tmp/wangge-bench/tipg)
#   TIPG_VENV=/some/dir bash bench/tipg_env.sh
#
# Prints the venv's path on its last line. The default lies outside the repo, so nothing
# needs ignoring in git.
set -euo pipefail

TIPG_VENV=${TIPG_VENV:-/tmp/wangge-bench/tipg}
TIPG_SPEC=${TIPG_SPEC:-tipg>=1,<2}

if [ -x "$TIPG_VENV/bin/python" ] && "$TIPG_VENV/bin/python" - <<'PY' 2>/dev/null; then
import importlib.metadata as md
import sys

import uvicorn  # noqa: F401

sys.exit(0 if md.version("tipg").split(".")[0] == "1" else 1)
PY
    echo "== tipg $("$TIPG_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("tipg"))') ready" >&2
    echo "$TIPG_VENV"
    exit 0
fi

echo "== creating $TIPG_VENV" >&2
mkdir -p "$(dirname "$TIPG_VENV")"
python3 -m venv "$TIPG_VENV"
"$TIPG_VENV/bin/pip" install -q --upgrade pip >&2
"$TIPG_VENV/bin/pip" install -q "$TIPG_SPEC" uvicorn >&2
echo "== tipg $("$TIPG_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("tipg"))') ready" >&2
echo "$TIPG_VENV"
