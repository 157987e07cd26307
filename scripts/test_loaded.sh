#!/usr/bin/env bash
# Issue 22's check that the suite can be trusted: `bash scripts/test.sh` passes RUNS times
# in a row (default 2) on a fresh clone while other processes keep every core busy.
#
# Usage: bash scripts/test_loaded.sh [RUNS [PYTEST ARGS]]
#        bash scripts/test_loaded.sh 1 tests/test_api_caps.py   (one file, once: a quick try)
#
# Clones the committed HEAD of this repository into a temporary folder, with ../shared
# linked beside it as CI has it, and a virtualenv that sees this Python's packages, so the
# clone's `pip install -e` does not move the `wangge` command of this working tree. Starts
# one busy process per core (a Python loop), runs scripts/test.sh there with CI=true as CI
# does, RUNS times, and prints each run's closing line. The busy processes and the clone go
# when it ends; the logs stay in the folder it names. Exit 0 only when every run passed.
# It takes RUNS times the suite's time, slower under the load: run it on its own.
# WANGGE_BUSY=N starts N busy processes instead of one per core (0: none).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/wangge-loaded.XXXXXX")
busy=()

finish() {
    for pid in "${busy[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work/wangge" "$work/venv"
}
trap finish EXIT

echo "== a fresh clone of $(git -C "$here" rev-parse --short HEAD) in $work/wangge"
git clone --quiet "$here" "$work/wangge"
if [ -d "$here/../shared" ]; then
    ln -s "$(cd "$here/../shared" && pwd)" "$work/shared"
fi
python3 -m venv --system-site-packages "$work/venv"

cores=${WANGGE_BUSY:-$(nproc)}  # WANGGE_BUSY=0: a fresh clone, no load added
for _ in $(seq "$cores"); do
    python3 -c 'while True: pass' &
    busy+=("$!")
done
echo "== $cores busy processes (${busy[*]}) keep the $cores cores busy"

failed=0
for i in $(seq "$runs"); do
    log="$work/run$i.log"
    start=$(date +%s)
    status=0
    (cd "$work/wangge" && CI=true PYTHON="$work/venv/bin/python" bash scripts/test.sh -q "${@:2}") \
        >"$log" 2>&1 || status=$?
    took=$(( $(date +%s) - start ))
    closing=$(grep -E '(passed|failed|error)' "$log" | tail -1 || true)
    echo "run $i: exit $status in $((took / 60)) min $((took % 60)) s: ${closing:-no pytest line} ($log)"
    [ "$status" = 0 ] || failed=1
done

if [ "$failed" = 0 ]; then
    echo "== $runs runs in a row passed under load"
else
    echo "== a run failed under load: see the logs in $work"
fi
exit "$failed"
