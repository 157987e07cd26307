#!/usr/bin/env bash
# The browser assets wangge ships, vendored from npm into maps/static/vendor/ and committed,
# so that the editor and the HTML maps load nothing from the internet (no CDN: planners often
# work on intranets) and work right after `pip install`:
#
#   maplibre-gl  the editor's map (5.x: 6.x never fires `load` headless)
#   leaflet      the offline HTML maps (grid, risk, heatmap, gaps), inlined into each file
#   swagger-ui-dist  the API's interactive docs at /docs (FastAPI's default loads a CDN)
#   pmtiles      reads an offline tile package (wangge export --format pmtiles) in the
#                viewer page written beside it, from a file the user picks (no fetch);
#                its npm package has no LICENSE file: its package.json names the
#                licence (BSD-3-Clause) and the repository, and is copied as the record
#
#   maps/editor/package.json       pins them
#   maps/editor/package-lock.json  the exact tree; `npm ci` installs it
#   maps/static/vendor/            the copied files, their licences and VERSIONS (committed)
#
# Usage: bash scripts/vendor.sh            check that the committed copies are the locked
#                                          versions (no npm, well under a second)
#        bash scripts/vendor.sh --update   refresh the copies from npm after changing
#                                          package.json (then commit maps/static/vendor)
# Exit 1 with a message when a copy is missing or stale, or when npm is missing or fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EDITOR=$ROOT/maps/editor
VENDOR=$ROOT/maps/static/vendor
PACKAGES=(maplibre-gl leaflet swagger-ui-dist pmtiles)
# package, file in the package, name in maps/static/vendor
ASSETS=(
    "maplibre-gl dist/maplibre-gl.js maplibre-gl.js"
    "maplibre-gl dist/maplibre-gl.css maplibre-gl.css"
    "maplibre-gl LICENSE.txt maplibre-gl.LICENSE.txt"
    "leaflet dist/leaflet.js leaflet.js"
    "leaflet dist/leaflet.css leaflet.css"
    "leaflet dist/images/layers.png images/layers.png"
    "leaflet dist/images/layers-2x.png images/layers-2x.png"
    "leaflet LICENSE leaflet.LICENSE.txt"
    "swagger-ui-dist swagger-ui-bundle.js swagger-ui-bundle.js"
    "swagger-ui-dist swagger-ui.css swagger-ui.css"
    "swagger-ui-dist LICENSE swagger-ui.LICENSE.txt"
    "pmtiles dist/pmtiles.js pmtiles.js"
    "pmtiles package.json pmtiles.package.json"
)

say() { echo "== $*"; }
die() {
    echo "== ERROR: $*" >&2
    exit 1
}

update=0
case ${1:-} in
--update | --force) update=1 ;;
"") ;;
*) die "unknown argument '$1' (expected --update)" ;;
esac

# the version of a package that the lock file pins, or nothing
locked_version() {
    [ -f "$EDITOR/package-lock.json" ] || return 0
    awk -v key="\"node_modules/$1\": {" 'index($0, key) { hit = 1 } hit && /"version":/ {
        gsub(/[",]/, "", $2); print $2; exit }' "$EDITOR/package-lock.json"
}

# "name version" per line, as VERSIONS records them
wanted_versions() {
    local p
    for p in "${PACKAGES[@]}"; do echo "$p $(locked_version "$p")"; done
}

check() {
    local a name
    for a in "${ASSETS[@]}"; do
        name=${a##* }
        [ -s "$VENDOR/$name" ] || die "maps/static/vendor/$name is missing; run \`bash scripts/vendor.sh --update\` (needs npm)"
    done
    [ -f "$VENDOR/VERSIONS" ] && [ "$(cat "$VENDOR/VERSIONS")" = "$(wanted_versions)" ] ||
        die "maps/static/vendor/VERSIONS does not match maps/editor/package-lock.json; run \`bash scripts/vendor.sh --update\`"
    say "vendored $(wanted_versions | paste -sd, - | sed 's/,/, /g') in maps/static/vendor"
}

if [ "$update" -eq 0 ]; then
    check
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm is needed to update the vendored assets (apt-get install npm, or Node.js 18+)"
cd "$EDITOR"
if [ -f package-lock.json ]; then
    say "npm ci in maps/editor"
    npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed in $EDITOR"
else
    say "npm install in maps/editor (no lock file yet: creating package-lock.json; commit it)"
    npm install --no-audit --no-fund --loglevel=error || die "npm install failed in $EDITOR"
fi
for a in "${ASSETS[@]}"; do
    read -r pkg src name <<<"$a"
    [ -f "node_modules/$pkg/$src" ] || die "node_modules/$pkg/$src is missing after npm"
    mkdir -p "$(dirname "$VENDOR/$name")"
    cp "node_modules/$pkg/$src" "$VENDOR/$name"
done
wanted_versions >"$VENDOR/VERSIONS"
rm -f "$VENDOR/LICENSE.txt" # the name before leaflet joined
check
