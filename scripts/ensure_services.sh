#!/usr/bin/env bash
# Make sure the services the tests use are there, installing them from Debian's packages
# on a fresh machine. Quick (well under a second) when everything is already in place.
#
#   postgis   PostgreSQL with PostGIS answering on 127.0.0.1:5432, trust auth for user
#             postgres, database wangge_test with the postgis extension; the tests' default
#             WANGGE_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/wangge_test
#   chromium  /usr/bin/chromium for the browser tests (playwright comes from the test extras)
#   gdal      ogr2ogr (Debian's gdal-bin), which runs the README's OGC API command in a test
#             and reads the compressed answers (tests/test_http_clients.py)
#
# Usage: bash scripts/ensure_services.sh [postgis] [chromium] [gdal]     (no argument: all)
# Exports nothing. What cannot be installed without root is reported and skipped (exit 0);
# the tests then skip, or fail when CI=true. Anything else that goes wrong exits 1.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
TEST_DB=wangge_test
PG_WAIT_SECONDS=${PG_WAIT_SECONDS:-60}

say() { echo "== $*"; }
warn() { echo "== WARNING: $*" >&2; }
die() {
    echo "== ERROR: $*" >&2
    exit 1
}

# --- privileges and apt -----------------------------------------------------------------
SUDO=()
can_admin() {
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        return 1
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get is not available to install: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        "${SUDO[@]}" apt-get -qq -o DPkg::Lock::Timeout=300 update
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get -qq -y \
        -o DPkg::Lock::Timeout=300 install --no-install-recommends "$@" >/dev/null
}

# --- PostgreSQL + PostGIS ---------------------------------------------------------------
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }

# psql as postgres over TCP, never prompting for a password
pgq() {
    local db=$1
    shift
    PGCONNECT_TIMEOUT=5 PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -w -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" \
        -U "$PG_USER" -d "$db" -tA "$@"
}

# the local cluster that serves $PG_PORT, as "version name status"
local_cluster() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $4; exit }'
}

ensure_trust() { # version name
    local hba=/etc/postgresql/$1/$2/pg_hba.conf
    [ -f "$hba" ] || die "no $hba for cluster $1/$2"
    if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        say "adding 'host all all 127.0.0.1/32 trust' at the top of $hba"
        "${SUDO[@]}" sed -i '1i host all all 127.0.0.1/32 trust' "$hba" || die "cannot edit $hba"
        return 0 # changed
    fi
    return 1 # already there
}

start_postgres() {
    if ! command -v pg_lsclusters >/dev/null 2>&1; then
        apt_install postgresql
    fi
    local cluster ver name status
    cluster=$(local_cluster)
    if [ -z "$cluster" ]; then
        ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null |
            sort -V | tail -n 1)
        [ -n "$ver" ] || die "postgresql is installed but no server version under /usr/lib/postgresql"
        name=main
        if [ -d "/etc/postgresql/$ver/main" ]; then
            name=wangge # a main cluster exists on another port: leave it alone
        fi
        say "creating PostgreSQL cluster $ver/$name on port $PG_PORT"
        "${SUDO[@]}" pg_createcluster --port "$PG_PORT" "$ver" "$name" >/dev/null
        cluster="$ver $name down"
    fi
    read -r ver name status <<<"$cluster"
    ensure_trust "$ver" "$name" || true
    if [ "$status" = online ]; then
        "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
    else
        say "starting PostgreSQL cluster $ver/$name"
        "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
            die "pg_ctlcluster $ver $name start failed; see /var/log/postgresql/postgresql-$ver-$name.log"
    fi
    local waited=0
    until pg_ready; do
        if [ "$waited" -ge "$PG_WAIT_SECONDS" ]; then
            die "PostgreSQL $ver/$name does not answer on $PG_HOST:$PG_PORT after ${PG_WAIT_SECONDS}s; see /var/log/postgresql/postgresql-$ver-$name.log"
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

ensure_postgis() {
    # fast path: the test database answers and has postgis
    if command -v pg_isready >/dev/null 2>&1 && pg_ready; then
        local have
        if have=$(pgq "$TEST_DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'postgis'" 2>/dev/null) &&
            [ -n "$have" ]; then
            say "PostGIS $have ready in $TEST_DB at $PG_HOST:$PG_PORT"
            return 0
        fi
    fi

    if ! command -v pg_isready >/dev/null 2>&1 || ! pg_ready; then
        if ! can_admin; then
            warn "PostgreSQL does not answer on $PG_HOST:$PG_PORT and installing or starting it needs root: PostGIS tests will be skipped (or fail with CI=true)"
            return 0
        fi
        start_postgres
    fi

    # user postgres must get in over TCP without a password
    if ! pgq postgres -c 'SELECT 1' >/dev/null 2>&1; then
        local cluster ver name status
        cluster=$(local_cluster)
        if [ -n "$cluster" ] && can_admin; then
            read -r ver name status <<<"$cluster"
            if ensure_trust "$ver" "$name"; then
                "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
            fi
        fi
        pgq postgres -c 'SELECT 1' >/dev/null ||
            die "cannot connect as $PG_USER to $PG_HOST:$PG_PORT without a password (trust auth needed)"
    fi

    if [ -z "$(pgq postgres -c "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")" ]; then
        local num major
        num=$(pgq postgres -c 'SHOW server_version_num')
        major=$((num / 10000))
        if ! can_admin; then
            warn "the PostgreSQL $major server has no postgis and installing postgresql-$major-postgis-3 needs root: PostGIS tests will be skipped (or fail with CI=true)"
            return 0
        fi
        apt_install "postgresql-$major-postgis-3"
        [ -n "$(pgq postgres -c "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")" ] ||
            die "postgresql-$major-postgis-3 is installed but the server on $PG_HOST:$PG_PORT does not offer postgis (is it this machine's cluster?)"
    fi

    if [ -z "$(pgq postgres -c "SELECT 1 FROM pg_database WHERE datname = '$TEST_DB'")" ]; then
        say "creating database $TEST_DB"
        pgq postgres -c "CREATE DATABASE $TEST_DB" >/dev/null
    fi
    pgq "$TEST_DB" -c 'CREATE EXTENSION IF NOT EXISTS postgis' >/dev/null
    say "PostGIS $(pgq "$TEST_DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'postgis'") ready in $TEST_DB at $PG_HOST:$PG_PORT"
}

# --- Chromium ---------------------------------------------------------------------------
# a CJK font, so that the editor's Chinese text renders in screenshots (not as boxes)
has_cjk_font() { [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; }

ensure_chromium() {
    if [ -x /usr/bin/chromium ] && has_cjk_font; then
        say "chromium: /usr/bin/chromium"
        return 0
    fi
    if ! can_admin; then
        warn "/usr/bin/chromium or a CJK font is missing and installing them needs root: browser tests will be skipped (or fail with CI=true)"
        return 0
    fi
    apt_install chromium fonts-liberation fonts-wqy-microhei
    [ -x /usr/bin/chromium ] || die "apt installed chromium but /usr/bin/chromium is missing"
    say "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
}

# --- GDAL's command-line tools -----------------------------------------------------------
# ogr2ogr, to run the README's OGC API command as a GIS user would (tests/test_fresh_install.py)
ensure_gdal() {
    if command -v ogr2ogr >/dev/null 2>&1; then
        say "gdal: $(ogr2ogr --version)"
        return 0
    fi
    if ! can_admin; then
        warn "ogr2ogr is missing and installing gdal-bin needs root: the README's GDAL command will not be tested (or fail with CI=true)"
        return 0
    fi
    apt_install gdal-bin
    command -v ogr2ogr >/dev/null 2>&1 || die "apt installed gdal-bin but ogr2ogr is missing"
    say "gdal: $(ogr2ogr --version)"
}

# --- main -------------------------------------------------------------------------------
wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=(postgis chromium gdal)
failed=()
for service in "${wanted[@]}"; do
    case $service in
    postgis | chromium | gdal) ;;
    *) die "unknown service '$service' (expected postgis, chromium or gdal)" ;;
    esac
    # each in its own subshell so that one failing does not stop the other; errexit is
    # switched on inside it explicitly, since `( ... ) || x` would silently disable it
    set +e
    (
        set -e
        "ensure_$service"
    )
    status=$?
    set -e
    [ "$status" -eq 0 ] || failed+=("$service")
done
if [ "${#failed[@]}" -gt 0 ]; then
    die "could not set up: ${failed[*]}"
fi
