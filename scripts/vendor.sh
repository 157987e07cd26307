#!/usr/bin/env bash
# Vendor the editor's browser assets from npm into maps/static/vendor/, so that the editor
# page loads nothing from the internet (no CDN: planners often work on intranets).
#
#   maps/editor/package.json       pins maplibre-gl 5.x (6.x never fires `load` headless)
#   maps/editor/package-lock.json  the exact tree; `npm ci` installs it
#   maps/static/vendor/            maplibre-gl.js, maplibre-gl.css and the licence (gitignored)
#
# Usage: bash scripts/vendor.sh [--force]
# Idempotent: when the installed maplibre-gl is the locked one and the vendored copies
# match it, it only says so (well under a second). The first run without a lock file
# creates it with `npm install`. Exit 1 with a message when npm is missing or fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EDITOR=$ROOT/maps/editor
VENDOR=$ROOT/maps/static/vendor
DIST=$EDITOR/node_modules/maplibre-gl/dist
FILES=(maplibre-gl.js maplibre-gl.css)

say() { echo "== $*"; }
die() {
    echo "== ERROR: $*" >&2
    exit 1
}

force=0
case ${1:-} in
--force) force=1 ;;
"") ;;
*) die "unknown argument '$1' (expected --force)" ;;
esac

# the maplibre-gl version a package.json names ("version" field), or nothing
pkg_version() {
    [ -f "$1" ] || return 0
    sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$1" | head -n 1
}

# the maplibre-gl version the lock file pins, or nothing
locked_version() {
    [ -f "$EDITOR/package-lock.json" ] || return 0
    awk '/"node_modules\/maplibre-gl": \{/ { hit = 1 } hit && /"version":/ {
        gsub(/[",]/, "", $2); print $2; exit }' "$EDITOR/package-lock.json"
}

up_to_date() {
    local want have f
    want=$(locked_version)
    have=$(pkg_version "$EDITOR/node_modules/maplibre-gl/package.json")
    [ -n "$want" ] && [ "$want" = "$have" ] || return 1
    for f in "${FILES[@]}"; do
        cmp -s "$DIST/$f" "$VENDOR/$f" || return 1
    done
    cmp -s "$DIST/../LICENSE.txt" "$VENDOR/LICENSE.txt"
}

if [ "$force" -eq 0 ] && up_to_date; then
    say "maplibre-gl $(locked_version) already vendored in maps/static/vendor"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm is needed to vendor the editor's assets (apt-get install npm, or Node.js 18+)"

cd "$EDITOR"
if [ -f package-lock.json ]; then
    if [ "$force" -eq 1 ] || [ "$(locked_version)" != "$(pkg_version node_modules/maplibre-gl/package.json)" ]; then
        say "npm ci in maps/editor"
        npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed in $EDITOR"
    fi
else
    say "npm install in maps/editor (no lock file yet: creating package-lock.json; commit it)"
    npm install --no-audit --no-fund --loglevel=error || die "npm install failed in $EDITOR"
fi

[ -f "$DIST/maplibre-gl.js" ] || die "$DIST/maplibre-gl.js is missing after npm"
mkdir -p "$VENDOR"
for f in "${FILES[@]}"; do
    cp "$DIST/$f" "$VENDOR/$f"
done
cp "$EDITOR/node_modules/maplibre-gl/LICENSE.txt" "$VENDOR/LICENSE.txt"
say "vendored maplibre-gl $(pkg_version node_modules/maplibre-gl/package.json) into maps/static/vendor"
