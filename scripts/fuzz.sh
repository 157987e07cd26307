#!/usr/bin/env bash
# The long fuzz run of the API (issue 22), apart from the test suite: schemathesis with every
# check and every phase (examples, coverage, fuzzing, stateful), unseeded, as an admin, a
# planner scoped to one community, a viewer and an anonymous reader of a server with public
# reads, for MINUTES minutes each, on a GeoPackage store and on PostGIS: 8 runs.
#
# Usage: bash scripts/fuzz.sh [MINUTES [PYTEST ARGS]]  (default 5: about 45 minutes in all)
#        bash scripts/fuzz.sh 5 -k "postgis and planner"    (one role on one store)
#        WANGGE_FUZZ_SEED=N bash scripts/fuzz.sh 5      (draw from the seed a failed run printed)
#        WANGGE_SKIP_SERVICES=1 bash scripts/fuzz.sh (leave PostGIS alone)
#
# Under three minutes the coverage phase may use the whole time on a busy machine, and the
# fuzzing and stateful phases get none (the run prints each phase's status and clock).
#
# It drives tests/test_api_schema.py with WANGGE_FUZZ_SECONDS set: a new seed for each test
# process (printed with each run and with any failure), generation not derandomized,
# failures shrunk, each printed as a curl command. Without WANGGE_FUZZ_SECONDS the same file
# is the bounded, seeded run that scripts/test.sh and CI make.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${1:-5}
PYTHON=${PYTHON:-python3}
case "$MINUTES" in
    '' | *[!0-9]*) echo "usage: bash scripts/fuzz.sh [MINUTES]" >&2; exit 2 ;;
esac
export WANGGE_FUZZ_SECONDS=$((MINUTES * 60))

if [ "${WANGGE_SKIP_SERVICES:-0}" != 1 ]; then
    bash scripts/ensure_services.sh
fi

echo "== schemathesis: ${MINUTES} min for each of 4 roles on 2 stores, unseeded"
started=$(date +%s)
status=0
"$PYTHON" -m pytest -n 0 -p no:cacheprovider -s -q \
    tests/test_api_schema.py::test_schemathesis_finds_nothing "${@:2}" || status=$?
echo "== fuzz run done in $(( ($(date +%s) - started) / 60 )) min: exit $status"
exit "$status"
