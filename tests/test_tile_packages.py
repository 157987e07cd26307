"""Offline tile packages (issue 24, deliverable 4): ``wangge export --format pmtiles`` and
``mbtiles`` on both stores, read back with the ``pmtiles`` library and sqlite3; a tile of
the archive says what the API's tile of the same z/x/y says; a package made with a
planner's key holds its territory only; bad input is named; and the viewer written beside
the archive draws it in chromium from a file, with the network blocked.
"""

from __future__ import annotations

import gzip
import json
import math
import sqlite3
import uuid
from pathlib import Path

import mapbox_vector_tile
import pytest
import shapely
from apitools import auth, key_for
from cities_osm import BEIJING_OSM, real_file
from conftest import PG_URL
from e2e_server import chromium
from fastapi.testclient import TestClient
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType
from typer.testing import CliRunner

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.cli import app
from wangge.data.basemap import BASEMAP_LAYERS
from wangge.data.plan import plan_from_frames, read_plan
from wangge.data.privacy import Reader as Who
from wangge.data.tile_packages import read_metadata, write_package
from wangge.importing import save_plan
from wangge.maps.mvt import tile_bounds

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
#: The layers every package of a plan with a register and coverage holds.
PLAN_LAYERS = {"streets", "communities", "grids", "microgrids", "units", "buildings"}
RISK_LAYERS = {"risk_points", "risk_zones", "facilities"}
#: The names the viewer's basemap labels show.
BASEMAP_NAMES = """() => { const m = window.wgViewer.map;
  const labels = m.getStyle().layers.filter((l) => l.type === 'symbol').map((l) => l.id);
  return m.queryRenderedFeatures({layers: labels}).map((f) => f.properties.name); }"""
#: Attributes that name where a feature lies.
PLACES = ("code", "parent_code", "grid_code", "microgrid_code")


def export(*args) -> tuple[int, str]:
    """``wangge export ARGS`` in this process: its exit code and everything it printed."""
    result = CliRunner().invoke(app, ["export", *map(str, args)])
    return result.exit_code, result.stdout + result.stderr


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def raw_tiles(path: Path) -> dict[tuple[int, int, int], bytes]:
    """Every tile of a PMTiles archive, decompressed, by (z, x, y)."""
    with open(path, "rb") as f:
        reader = Reader(MmapSource(f))
        return {zxy: gzip.decompress(data) for zxy, data in all_tiles(reader.get_bytes)}


def tiles_of(path: Path) -> dict[tuple[int, int, int], dict]:
    """Every tile of a PMTiles archive, decoded, by (z, x, y)."""
    return {zxy: decode(data) for zxy, data in raw_tiles(path).items()}


def said(feature: dict) -> str:
    """A feature's attributes, numbers as floats: PostGIS writes a whole float as a double,
    wangge's encoder as an integer, and both decode to the same number."""

    def plain(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return json.dumps({k: plain(v) for k, v in feature["properties"].items()}, sort_keys=True)


def codes(tile: dict, layer: str = "grids") -> set[str]:
    return {f["properties"]["code"] for f in tile.get(layer, {}).get("features", [])}


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def packaged(request, risk_plan_dir, tmp_path_factory):
    """The demo plan with its register and coverage, saved in each store and exported by
    the CLI as PMTiles and MBTiles: (store, its URL, plan id, the two archives)."""
    d = tmp_path_factory.mktemp(f"packages-{request.param}")
    if request.param == "gpkg":
        from wangge.data.gpkg_store import GpkgStore

        url = str(d / "store.gpkg")
        st = GpkgStore(url)
    else:
        st, url = request.getfixturevalue("postgis_store"), PG_URL
    plan = f"pkg-{uuid.uuid4().hex[:8]}"
    layers, meta = read_plan(risk_plan_dir / "plan.gpkg").stored()
    save_plan(st, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "packages")
    archives = {}
    # MBTiles over two zooms only: its tiles are the PMTiles' (one renderer), compared as such
    for fmt, zooms in (("pmtiles", ()), ("mbtiles", ("--min-zoom", 14, "--max-zoom", 15))):
        archives[fmt] = d / f"{plan}.{fmt}"
        base = ("--store", url, "--plan-id", plan, "--format", fmt, "--out", archives[fmt])
        code, said = export(*base, *zooms)
        assert code == 0, said
        assert f"{plan} version 1" in said and "the whole plan" in said
    yield st, url, plan, archives
    if request.param == "gpkg":
        st.close()


def test_pmtiles_reads_back_with_its_header_metadata_and_style(packaged):
    st, _, plan, archives = packaged
    with open(archives["pmtiles"], "rb") as f:
        reader = Reader(MmapSource(f))
        header, meta = reader.header(), reader.metadata()
    assert (header["min_zoom"], header["max_zoom"]) == (10, 17)
    assert header["tile_compression"] == Compression.GZIP
    assert header["tile_type"] == TileType.MVT
    assert header["clustered"]
    ids = {layer["id"] for layer in meta["vector_layers"]}
    assert ids >= PLAN_LAYERS | RISK_LAYERS | set(BASEMAP_LAYERS)  # the basemap beneath
    assert meta["wangge"]["features"]["basemap_roads"] == len(
        st.query(plan, 1, "basemap_roads").frame
    )
    grids = next(layer for layer in meta["vector_layers"] if layer["id"] == "grids")
    assert grids["fields"]["households"] == "Number" and grids["fields"]["code"] == "String"
    assert "OpenStreetMap" in meta["attribution"] and "样例数据" in meta["attribution"]
    assert meta["wangge"]["plan"] == plan and meta["wangge"]["scope"] is None
    stored = st.query(plan, 1, "grids").frame
    assert meta["wangge"]["features"]["grids"] == len(stored)
    lon0, lat0, lon1, lat1 = stored.total_bounds
    b = meta["bounds"]
    assert b[0] <= lon0 and b[1] <= lat0 and b[2] >= lon1 and b[3] >= lat1
    # the header's bounds are the metadata's (E7)
    assert abs(header["min_lon_e7"] / 1e7 - b[0]) < 1e-6
    # the style beside it names the archive and draws its grids
    style = json.loads(archives["pmtiles"].with_name(f"{plan}.pmtiles.style.json").read_text())
    assert style["sources"]["wangge"]["url"] == f"pmtiles://{plan}.pmtiles"
    order = [layer["id"] for layer in style["layers"]]
    assert {"grids-fill", "grids-line", "risk-points"} <= set(order)
    assert "glyphs" not in style  # its road and place names are drawn with local fonts
    basemap = [i for i, name in enumerate(order) if name.startswith("basemap-")]
    assert basemap and max(basemap) < order.index("grids-fill")
    assert "OpenStreetMap" in style["sources"]["wangge"]["attribution"]
    assert archives["pmtiles"].with_name(f"{plan}.html").is_file()


def test_a_tile_holds_the_grids_it_meets_as_the_api_serves_them(packaged):
    st, _, plan, archives = packaged
    grids = st.query(plan, 1, "grids").frame
    lon0, lat0, lon1, lat1 = grids.total_bounds
    z = 15
    x, y = tile_of((lon0 + lon1) / 2, (lat0 + lat1) / 2, z)
    with open(archives["pmtiles"], "rb") as f:
        tile = decode(gzip.decompress(Reader(MmapSource(f)).get(z, x, y)))
    # every grid whose polygon meets the tile, and only grids whose box meets it (or its
    # 64-unit buffer)
    merc = grids.to_crs(3857)
    box = shapely.box(*tile_bounds(z, x, y))
    pad = (box.bounds[2] - box.bounds[0]) * 64 / 4096
    meets = set(merc.loc[merc.intersects(box), "code"])
    near = set(merc.loc[merc.envelope.intersects(box.buffer(pad, join_style="mitre")), "code"])
    assert meets and meets <= codes(tile) <= near
    # the same features and attributes as the API's tile of each layer at this z/x/y
    with TestClient(create_app(Settings(), st), headers=auth(st)) as client:
        for layer in sorted(tile):
            r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", params={"plan": plan})
            assert r.status_code == 200, r.text
            served = decode(r.content)[layer]["features"]
            ours = tile[layer]["features"]
            assert sorted(map(said, ours)) == sorted(map(said, served)), layer


def test_mbtiles_holds_the_same_tiles_rows_counted_from_the_south(packaged):
    _, _, plan, archives = packaged
    pm = {zxy: t for zxy, t in raw_tiles(archives["pmtiles"]).items() if zxy[0] in (14, 15)}
    conn = sqlite3.connect(archives["mbtiles"])
    try:
        meta = dict(conn.execute("SELECT name, value FROM metadata"))
        rows = conn.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")
        mb = {(z, x, (1 << z) - 1 - row): gzip.decompress(d) for z, x, row, d in rows}
    finally:
        conn.close()
    assert meta["format"] == "pbf" and (meta["minzoom"], meta["maxzoom"]) == ("14", "15")
    assert "OpenStreetMap" in meta["attribution"]
    assert {layer["id"] for layer in json.loads(meta["json"])["vector_layers"]} >= PLAN_LAYERS
    assert mb == pm  # the same tiles under the same z/x/y, rows flipped back
    assert read_metadata(archives["mbtiles"])["wangge"]["plan"] == plan


def test_a_planner_key_packs_only_its_territory(packaged, tmp_path):
    st, url, plan, archives = packaged
    communities = st.query(plan, 1, "communities").frame
    community = sorted(communities["code"].astype(str))[0]
    key = key_for(st, "planner", (community,))
    out = tmp_path / "mine.pmtiles"
    code, said = export(
        "--store", url, "--plan-id", plan, "--format", "pmtiles", "--out", out, "--key", key
    )
    assert code == 0, said
    assert f"territory {community}" in said
    meta = read_metadata(out)
    assert meta["wangge"]["scope"] == [community]
    grids = st.query(plan, 1, "grids").frame
    own = set(grids.loc[grids["parent_code"].astype(str) == community, "code"])
    found, outside = set(), []
    for tile in tiles_of(out).values():
        found |= codes(tile)
        for layer, body in tile.items():
            for f in body["features"]:
                # a feature names its place in one of its codes (a unit its micro-grid, a
                # community its own code, a building its grid); a zone names none in a tile
                named = [str(f["properties"][c]) for c in PLACES if c in f["properties"]]
                if named and not any(c.startswith(community) for c in named):
                    outside.append((layer, named))
    assert found == own  # all of its grids, at some zoom, and no other
    assert not outside, outside[:5]
    whole = read_metadata(archives["pmtiles"])["wangge"]["features"]
    assert sum(meta["wangge"]["features"].values()) < sum(whole.values())
    assert meta["wangge"]["features"]["grids"] == len(own) < whole["grids"]


def test_a_key_withholds_what_it_may_not_read_from_a_file_export(packaged, tmp_path):
    """The same key on a GeoJSON export: every feature, as GET /export gives it, with the
    restricted values (a risk point's address) shown inside the territory only."""
    st, url, plan, _ = packaged
    points = st.query(plan, 1, "risk_points").frame
    community = points["community_code"].astype(str).mode()[0]
    key = key_for(st, "planner", (community,))
    out = tmp_path / "risks.geojson"
    base = ("risk_points", "--store", url, "--plan-id", plan, "--out", out)
    code, said = export(*base, "--key", key)
    assert code == 0, said
    features = [f["properties"] for f in json.loads(out.read_text())["features"]]
    assert len(features) == len(points)
    inside = [f for f in features if str(f["community_code"]) == community]
    outside = [f for f in features if str(f["community_code"]) != community]
    assert inside and all(f["address"] for f in inside)
    assert outside and not any(f["address"] or f["responsible"] for f in outside)


def test_a_key_without_territory_and_an_unknown_key_are_refused(packaged, tmp_path):
    st, url, plan, _ = packaged
    viewer = st.book.find(key_for(st, "viewer"))
    with pytest.raises(Exception, match="holds no feature") as caught:
        write_package(st, tmp_path / "v.pmtiles", "pmtiles", plan, reader=Who.of(viewer))
    assert viewer.name in str(caught.value)
    assert not (tmp_path / "v.pmtiles").exists()
    code, said = export(
        "--store", url, "--plan-id", plan, "--format", "pmtiles", "--out", tmp_path / "k.pmtiles",
        "--key", "wg_not-a-key",
    )  # fmt: skip
    assert code == 2 and "--key" in said and "unknown, revoked or expired" in said


def test_bad_input_is_named(packaged, tmp_path):
    _, url, plan, archives = packaged
    out = tmp_path / "bad.pmtiles"
    base = ("--store", url, "--plan-id", plan, "--out", out)
    cases = {
        ("--format", "pmtile"): ("'pmtile'", "pmtiles, mbtiles"),
        ("--format", "pmtiles", "--min-zoom", 17, "--max-zoom", 10): ("17–10", "inverted"),
        ("--format", "pmtiles", "--max-zoom", 30): ("max_zoom", "30"),
        ("--format", "geojson", "--max-zoom", 12): ("--max-zoom", "tile packages"),
        ("grid", "--format", "pmtiles"): ("'grid'", "grids"),
    }
    for args, words in cases.items():
        code, said = export(*base, *args)
        assert code == 2 and "Traceback" not in said, said
        for word in words:
            assert word in said, (args, said)
    code, said = export("--store", url, "--plan-id", "nosuch", "--format", "pmtiles", "--out", out)
    assert code == 2 and "no plan named 'nosuch'" in said
    assert not out.exists()
    # a failed export leaves the archive already there as it was
    before = archives["pmtiles"].read_bytes()
    code, _ = export(
        "--store", url, "--plan-id", plan, "--format", "pmtiles", "--out", archives["pmtiles"],
        "--min-zoom", 12, "--max-zoom", 11,
    )  # fmt: skip
    assert code == 2 and archives["pmtiles"].read_bytes() == before


def test_beijing_packs_every_grid_with_no_sample_note(tmp_path_factory):
    """The second real city: no register, so no sample note; each of its grids is in some
    tile at the highest zoom, and only there where the store has it."""
    from wangge.data.gpkg_store import GpkgStore
    from wangge.delineate import delineate, plan_frames
    from wangge.geo.validate import validate

    d = tmp_path_factory.mktemp("beijing-package")
    result = delineate(real_file(BEIJING_OSM))
    frames = plan_frames(result, validate(result.layers, result.limits))
    table = frames.pop("meta")
    meta = dict(zip(table["key"], table["value"], strict=True))
    st = GpkgStore(d / "store.gpkg")
    try:
        save_plan(st, plan_from_frames(frames, meta, "beijing"), "bj", None, "tests", "")
        done = write_package(st, d / "bj.pmtiles", "pmtiles", "bj", min_zoom=12, max_zoom=16)
        grids = set(st.query("bj", 1, "grids").frame["code"])
    finally:
        st.close()
    assert "OpenStreetMap" in done.metadata["attribution"]
    assert "样例数据" not in done.metadata["attribution"] and not done.metadata["wangge"]["sample"]
    found = set()
    for (z, _, _), tile in tiles_of(done.path).items():
        if z == 16:
            found |= codes(tile)
    assert found == grids


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def test_the_viewer_opens_the_archive_from_a_file_with_no_network(packaged, browser):
    st, _, plan, archives = packaged
    page_file = archives["pmtiles"].with_name(f"{plan}.html")
    grids = set(st.query(plan, 1, "grids").frame["code"])
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    asked: list[str] = []

    def only_files(route):
        asked.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_files)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    assert "OpenStreetMap" in page.inner_text(".maplibregl-ctrl-attrib")
    page.set_input_files("#wg-file", str(archives["pmtiles"]))
    page.wait_for_function("window.wgViewer.drawn || window.wgViewer.error", timeout=60_000)
    assert page.evaluate("window.wgViewer.error") is None
    assert page.evaluate("window.wgViewer.opened") == archives["pmtiles"].name
    drawn = page.evaluate(
        "window.wgViewer.map.queryRenderedFeatures({layers: ['grids-fill']})"
        ".map((f) => f.properties.code)"
    )
    assert drawn and set(drawn) <= grids and len(set(drawn)) >= len(grids) // 2
    assert page.evaluate(
        "window.wgViewer.map.queryRenderedFeatures({layers: ['risk-points']}).length"
    )
    # the basemap beneath, from the archive: roads drawn, and their names placed as labels
    # in Chinese with no glyphs fetched (issue 24)
    names = set(page.evaluate(BASEMAP_NAMES))
    stored = set(st.query(plan, 1, "basemap_roads").frame["name"].dropna())
    stored |= set(st.query(plan, 1, "basemap_places").frame["name"].dropna())
    stored |= set(st.query(plan, 1, "basemap_lines").frame["name"].dropna())
    assert len(names) >= 3 and names <= stored, names
    assert any(any("\u4e00" <= c <= "\u9fff" for c in n) for n in names)
    assert "样例数据" in page.inner_text(".wg-banner")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "package-viewer.png"))
    context.close()
    assert not errors, errors
    assert [u for u in asked if not u.startswith("file://")] == []
