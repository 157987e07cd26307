"""OGC API – Tiles against a real server on both stores: the tile matrix sets as 2D TMS 2.0
says (and as GDAL 3.6 reads them), each collection's tilesets and the dataset's in
WebMercatorQuad and CGCS2000Quad, a known grid decoded from its tile in either grid and
found where the store has it, GDAL reading the tilesets (its OGCAPI driver, as pyogrio
bundles it) and one CGCS2000 tile (Debian's GDAL 3.6 MVT driver, placed by the tile matrix
set's numbers), TileJSON, and the errors a client can meet. Beijing: every grid is in the
CGCS2000Quad tiles the tileset's limits name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import httpx
import mapbox_vector_tile
import numpy as np
import pyogrio
import pytest
import shapely
from apitools import key_for
from cities_osm import BEIJING_OSM, real_file
from conftest import PG_URL
from e2e_server import start_server
from fastapi.testclient import TestClient
from shapely.geometry import shape

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.gpkg_store import GpkgStore
from wangge.data.plan import plan_from_frames
from wangge.data.privacy import PUBLIC, class_of
from wangge.importing import save_plan
from wangge.maps.tile_grids import CGCS2000_QUAD, GRIDS, WEB_MERCATOR_QUAD, TileGrid

#: The level at which a grid of the demo spans a few tiles in either set.
LEVEL = {"WebMercatorQuad": 16, "CGCS2000Quad": 15}


class Served:
    def __init__(self, server, key: str, plan: str, frames: dict):
        self.server, self.key, self.plan, self.frames = server, key, plan, frames
        self.url = server.url
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, demo_plan_frames, tmp_path_factory):
    frames, meta = demo_plan_frames
    plan = f"tiles-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("ogc-tiles")
    if request.param == "gpkg":
        target = str(tmp / "store.gpkg")
        store = GpkgStore(tmp / "store.gpkg")
    else:
        target = PG_URL
        store = request.getfixturevalue("postgis_store")  # fails, not skips, with CI=true
    store.save(plan, frames, meta, author="tests")
    key = key_for(store, "viewer")
    if request.param == "gpkg":
        store.close()
    server = start_server(target, tmp / "server.log", plan=plan)
    yield Served(server, key, plan, frames)
    server.stop()


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def placed(feature: dict, bounds: tuple[float, ...], extent: int):
    """A decoded feature's geometry moved from tile units to the grid's CRS."""
    x0, y0, x1, y1 = bounds
    geom = shape(feature["geometry"])
    return shapely.transform(
        geom, lambda c: np.column_stack([x0 + c[:, 0] * (x1 - x0) / extent,
                                          y1 - c[:, 1] * (y1 - y0) / extent])
    )  # fmt: skip


def grown(bounds: tuple[float, ...], extent: int = 4096, buffer: int = 64) -> tuple:
    """A tile's bounds with the buffer its features are clipped to."""
    pad = (bounds[2] - bounds[0]) * buffer / extent
    return (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)


def in_grid(geom, grid: TileGrid):
    """A WGS84 geometry in the grid's CRS (CGCS2000 takes WGS84's numbers)."""
    if grid.epsg == 4490:
        return geom
    from pyproj import Transformer

    to = Transformer.from_crs(4326, grid.epsg, always_xy=True)
    return shapely.transform(geom, lambda c: np.column_stack(to.transform(c[:, 0], c[:, 1])))


# the tile matrix sets ----------------------------------------------------------------------


def test_tile_matrix_sets_are_the_standard_ones(served):
    sets = served.http.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad", "CGCS2000Quad"]
    wmq = served.http.get("/tileMatrixSets/WebMercatorQuad").json()
    assert wmq["uri"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    assert wmq["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    zero, fourteen = wmq["tileMatrices"][0], wmq["tileMatrices"][14]
    # OGC 17-083r4 Annex D.1
    assert zero["scaleDenominator"] == pytest.approx(559082264.028717, rel=1e-12)
    assert zero["cellSize"] == pytest.approx(156543.033928041, rel=1e-12)
    assert zero["pointOfOrigin"] == pytest.approx([-20037508.3427892, 20037508.3427892])
    assert (fourteen["matrixWidth"], fourteen["matrixHeight"]) == (2**14, 2**14)
    assert len(wmq["tileMatrices"]) == 25

    cgcs = served.http.get("/tileMatrixSets/CGCS2000Quad").json()
    assert cgcs["crs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert cgcs["orderedAxes"] == ["Lat", "Lon"]
    zero, fifteen = cgcs["tileMatrices"][0], cgcs["tileMatrices"][15]
    assert zero["pointOfOrigin"] == [90, -180]  # latitude first, as EPSG:4490 orders them
    assert (zero["matrixWidth"], zero["matrixHeight"]) == (2, 1)
    assert zero["cellSize"] == 180 / 256
    assert zero["scaleDenominator"] == pytest.approx(279541132.0143589, rel=1e-12)
    assert fifteen["cellSize"] == 180 / 256 / 2**15
    assert fifteen["scaleDenominator"] == pytest.approx(zero["scaleDenominator"] / 2**15)
    # TMS 1.0's members beside them: all GDAL 3.6 reads
    assert cgcs["supportedCRS"] == cgcs["crs"] and cgcs["identifier"] == "CGCS2000Quad"
    assert [m["topLeftCorner"] for m in cgcs["tileMatrix"]] == [[90, -180]] * 23
    assert served.http.get("/tileMatrixSets/WorldCRS84Quad").status_code == 404


def test_the_landing_page_collections_and_conformance_lead_to_the_tiles(served):
    landing = served.http.get("/").json()["links"]
    rels = {x["rel"]: x["href"] for x in landing}
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"].endswith("/tiles")
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"].endswith("/tileMatrixSets")
    conf = served.http.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets" in conf
    grids = served.http.get("/collections/grids").json()["links"]
    tiles = [x for x in grids if x["rel"].endswith("/tilesets-vector")]
    assert len(tiles) == 1 and tiles[0]["href"].split("?")[0].endswith("/collections/grids/tiles")
    listing = served.http.get("/collections/grids/tiles").json()["tilesets"]
    assert {t["crs"].rsplit("/", 1)[1] for t in listing} == {"3857", "4490"}


# a known grid, where it is ------------------------------------------------------------------


@pytest.mark.parametrize("tms", ["WebMercatorQuad", "CGCS2000Quad"])
def test_a_known_grid_lands_where_the_store_has_it(served, tms):
    grid = GRIDS[tms]
    grids = served.frames["grids"].to_crs(4326)
    row = grids.iloc[int(np.argmax(grids.to_crs(3857).geometry.area.to_numpy()))]
    point = row.geometry.representative_point()
    z = LEVEL[tms]
    col, r, _, _ = grid.tiles_over(z, (point.x, point.y, point.x, point.y))
    meta = served.http.get(f"/collections/grids/tiles/{tms}").json()
    limits = {m["tileMatrix"]: m for m in meta["tileMatrixSetLimits"]}[str(z)]
    assert limits["minTileCol"] <= col <= limits["maxTileCol"]
    assert limits["minTileRow"] <= r <= limits["maxTileRow"]
    template = next(x["href"] for x in meta["links"] if x["rel"] == "item")
    url = template.replace("{tileMatrix}", str(z)).replace("{tileRow}", str(r))
    answer = served.http.get(url.replace("{tileCol}", str(col)))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(answer.content)["grids"]
    assert layer["extent"] == 4096
    bounds = grid.bounds(z, col, r)
    mine = [f for f in layer["features"] if f["properties"]["code"] == row["code"]]
    assert len(mine) == 1
    got = placed(mine[0], bounds, 4096)
    want = shapely.clip_by_rect(in_grid(row.geometry, grid), *grown(bounds))
    unit = (bounds[2] - bounds[0]) / 4096  # one tile unit in the grid's CRS
    assert got.symmetric_difference(want).area < 0.01 * want.area
    assert shapely.hausdorff_distance(got.boundary, want.boundary) < 2 * unit
    assert got.buffer(unit).contains(in_grid(point, grid))
    # only public fields, as the XYZ tiles carry
    assert all(class_of("grids", k) == PUBLIC for k in mine[0]["properties"])


def test_a_cgcs2000_tile_is_cut_in_its_grid_not_moved_from_web_mercator(served):
    """Its features are whole tile units of degrees: the same grid's outline in the Web
    Mercator tile of that place and zoom has other coordinates."""
    grids = served.frames["grids"].to_crs(4326)
    x0, y0, x1, y1 = grids.total_bounds
    centre = ((x0 + x1) / 2, (y0 + y1) / 2) * 2
    z = 15
    c, r, _, _ = CGCS2000_QUAD.tiles_over(z, centre)
    cg = served.http.get(f"/collections/grids/tiles/CGCS2000Quad/{z}/{r}/{c}").content
    c2, r2, _, _ = WEB_MERCATOR_QUAD.tiles_over(z, centre)
    wm = served.http.get(f"/collections/grids/tiles/WebMercatorQuad/{z}/{r2}/{c2}").content
    assert cg and wm and cg != wm
    bounds = CGCS2000_QUAD.bounds(z, c, r)
    feats = decode(cg)["grids"]["features"]
    codes = {f["properties"]["code"]: placed(f, bounds, 4096) for f in feats}
    stored = grids.set_index("code").geometry
    box = shapely.box(*grown(bounds))
    for code, got in codes.items():
        want = stored[code].intersection(box)
        assert got.symmetric_difference(want).area < 0.02 * want.area + 1e-12, code


# GDAL ---------------------------------------------------------------------------------------


def test_gdal_reads_the_collection_tilesets_in_both_grids(served):
    """GDAL's OGCAPI driver (3.12, as pyogrio bundles it) picks the tileset by its tile
    matrix set, reads the TMS document and the tiles its limits name. Its vector path
    takes the collection's CRS84 extent as the set's own coordinates, so Web Mercator is
    given its extent in metres (MINX...)."""
    grids = served.frames["grids"].to_crs(4326)
    url = f"OGCAPI:{served.url}/collections/grids"
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": served.key})
    try:
        cg = pyogrio.read_dataframe(url, layer="Zoom level 15", TILEMATRIXSET="CGCS2000Quad")
        merc = in_grid(shapely.box(*grids.total_bounds), WEB_MERCATOR_QUAD).bounds
        box = dict(zip(("MINX", "MINY", "MAXX", "MAXY"), merc, strict=True))
        wm = pyogrio.read_dataframe(
            url, layer="Zoom level 16", TILEMATRIXSET="WebMercatorQuad", **box
        )
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})
    assert cg.crs.to_epsg() == 4490 and wm.crs.to_epsg() == 3857
    assert set(cg["code"]) == set(grids["code"]) == set(wm["code"])
    cell = 180 / 256 / 2**15
    assert cg.total_bounds == pytest.approx(grids.total_bounds, abs=2 * cell)
    # each grid's pieces, dissolved, are the grid
    pieces = cg.dissolve("code").geometry
    stored = grids.set_index("code").geometry
    for code in stored.index[:10]:
        assert pieces[code].symmetric_difference(stored[code]).area < 0.01 * stored[code].area


def test_debian_gdal_places_a_cgcs2000_tile_by_the_tile_matrix_set(served, tmp_path):
    """GDAL 3.6 (the `ogr2ogr` the issue was found with) reads a CGCS2000Quad tile with its
    MVT driver, georeferenced by the numbers of /tileMatrixSets/CGCS2000Quad: the grids come
    out in lon/lat where the store has them. (Debian's 3.6 build leaves the OGCAPI driver's
    vector tiles out, so its ``OGCAPI:`` reads collections through ``-oo API=ITEMS`` or the
    OAPIF driver.)"""
    ogr2ogr = shutil.which("ogr2ogr")
    assert ogr2ogr, "GDAL's ogr2ogr is needed (gdal-bin)"
    tms = served.http.get("/tileMatrixSets/CGCS2000Quad").json()
    grids = served.frames["grids"].to_crs(4326)
    point = grids.geometry.iloc[0].representative_point()
    z = 14
    m = tms["tileMatrices"][z]
    lat0, lon0 = m["pointOfOrigin"]
    side = m["cellSize"] * m["tileWidth"]
    col, row = int((point.x - lon0) // side), int((lat0 - point.y) // side)
    out = tmp_path / "tile.geojson"
    tile = tmp_path / "tile.mvt"
    got = served.http.get(f"/collections/grids/tiles/CGCS2000Quad/{z}/{row}/{col}")
    tile.write_bytes(got.content)
    georef = {
        "@GEOREF_TOPX": lon0 + col * side,
        "@GEOREF_TOPY": lat0 - row * side,
        "@GEOREF_TILEDIMX": side,
        "@GEOREF_TILEDIMY": side,
    }
    cmd = [ogr2ogr, "-f", "GeoJSON", str(out), "-a_srs", "EPSG:4490", str(tile), "grids"]
    cmd += [a for k, v in georef.items() for a in ("-oo", f"{k}={v!r}")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    feats = json.loads(out.read_text())["features"]
    stored = grids.set_index("code").geometry
    box = shapely.box(lon0 + col * side, lat0 - (row + 1) * side, lon0 + (col + 1) * side,
                      lat0 - row * side)  # fmt: skip
    assert feats
    for f in feats:
        got = shape(f["geometry"])
        want = stored[f["properties"]["code"]].intersection(box)
        assert got.symmetric_difference(want).area < 0.02 * want.area, f["properties"]["code"]


# TileJSON, the dataset, errors ----------------------------------------------------------------


def test_tilejson_points_at_the_same_tiles_as_the_xyz_route(served):
    tj = served.http.get(
        "/collections/grids/tiles/WebMercatorQuad", params={"f": "tilejson"}
    ).json()
    assert tj["tilejson"] == "3.0.0" and tj["scheme"] == "xyz"
    template = tj["tiles"][0]
    assert "/collections/grids/tiles/WebMercatorQuad/{z}/{y}/{x}" in template
    assert set(tj["vector_layers"][0]["fields"]) >= {"code", "households"}
    grids = served.frames["grids"].to_crs(4326)
    p = grids.geometry.iloc[3].representative_point()
    x, y, _, _ = WEB_MERCATOR_QUAD.tiles_over(16, (p.x, p.y, p.x, p.y))
    ogc = served.http.get(template.format(z=16, x=x, y=y))
    xyz = served.http.get(f"/tiles/grids/16/{x}/{y}.mvt")
    assert ogc.status_code == 200 and ogc.content == xyz.content and ogc.content
    assert ogc.headers["etag"] == xyz.headers["etag"]
    again = served.http.get(
        template.format(z=16, x=x, y=y), headers={"If-None-Match": ogc.headers["etag"]}
    )
    assert again.status_code == 304 and "private" in again.headers["cache-control"]

    refused = served.http.get("/collections/grids/tiles/CGCS2000Quad", params={"f": "tilejson"})
    assert refused.status_code == 400 and refused.json()["where"] == "f"


def test_the_dataset_tiles_hold_every_tiled_layer(served):
    listing = served.http.get("/tiles").json()
    assert {t["crs"].rsplit("/", 1)[1] for t in listing["tilesets"]} == {"3857", "4490"}
    assert any(x["id"] == "grids" for x in listing["layers"])  # the XYZ listing stays
    meta = served.http.get("/tiles/CGCS2000Quad").json()
    names = {x["id"] for x in meta["layers"]}
    assert {"streets", "communities", "grids", "microgrids"} <= names
    grids = served.frames["grids"].to_crs(4326)
    p = grids.geometry.iloc[0].representative_point()
    c, r, _, _ = CGCS2000_QUAD.tiles_over(15, (p.x, p.y, p.x, p.y))
    tile = decode(served.http.get(f"/tiles/CGCS2000Quad/15/{r}/{c}").content)
    assert {"communities", "grids", "microgrids"} <= set(tile) <= names


@pytest.mark.parametrize(
    ("path", "status", "where"),
    [
        ("/collections/grids/tiles/WorldCRS84Quad", 404, "tileMatrixSetId"),
        ("/collections/grids/tiles/CGCS2000Quad/15/0/0", 404, "tile"),  # outside the limits
        ("/collections/grids/tiles/CGCS2000Quad/0/0/2", 404, "tile"),  # beyond the matrix
        ("/collections/grids/tiles/WebMercatorQuad/1/0/2", 404, "tile"),
        ("/collections/nothing/tiles", 404, "layer"),
        ("/tiles/CGCS2000Quad?bbox=1,2,3,4", 400, "bbox"),  # not a parameter of it
        ("/collections/grids/tiles/CGCS2000Quad/15/0/0?zoom=3", 400, "zoom"),
    ],
)
def test_what_a_client_can_get_wrong_is_named(served, path, status, where):
    r = served.http.get(path)
    assert r.status_code == status, r.text
    assert r.json()["where"] == where


# Beijing --------------------------------------------------------------------------------------


def test_beijing_every_grid_is_in_the_cgcs2000_tiles_its_limits_name(tmp_path_factory):
    from wangge.delineate import delineate, plan_frames
    from wangge.geo.validate import validate

    d = tmp_path_factory.mktemp("beijing-tiles")
    result = delineate(real_file(BEIJING_OSM))
    frames = plan_frames(result, validate(result.layers, result.limits))
    table = frames.pop("meta")
    meta = dict(zip(table["key"], table["value"], strict=True))
    st = GpkgStore(d / "store.gpkg")
    try:
        save_plan(st, plan_from_frames(frames, meta, "beijing"), "bj", None, "tests", "")
        client = TestClient(create_app(Settings(public_reads=True, plan="bj"), store=st))
        meta = client.get("/collections/grids/tiles/CGCS2000Quad").json()
        lim = {m["tileMatrix"]: m for m in meta["tileMatrixSetLimits"]}["14"]
        found: set[str] = set()
        for r in range(lim["minTileRow"], lim["maxTileRow"] + 1):
            for c in range(lim["minTileCol"], lim["maxTileCol"] + 1):
                got = client.get(f"/collections/grids/tiles/CGCS2000Quad/14/{r}/{c}")
                assert got.status_code == 200
                if got.content:
                    found |= {
                        f["properties"]["code"] for f in decode(got.content)["grids"]["features"]
                    }
        grids = set(st.query("bj", 1, "grids").frame["code"])
        beyond = client.get(
            f"/collections/grids/tiles/CGCS2000Quad/14/{lim['maxTileRow'] + 1}/{lim['minTileCol']}"
        )
    finally:
        st.close()
    assert found == grids
    assert beyond.status_code == 404


def test_an_edit_carries_the_cgcs2000_tiles_it_does_not_touch():
    """A rewritten layer keeps its cached tiles of either grid that no changed feature
    touches, each under its own grid (api/tiles.TileCache.carry)."""
    from wangge.api.tiles import TileCache, tile_key

    cache = TileCache()
    touched = (118.780, 32.040, 118.781, 32.041)  # a changed feature's WGS84 box
    tiles = {}
    for grid in (WEB_MERCATOR_QUAD, CGCS2000_QUAD):
        near = grid.tiles_over(15, touched)[:2]
        far = grid.tiles_over(15, (118.70, 32.10, 118.70, 32.10))[:2]
        for name, (c, r) in (("near", near), ("far", far)):
            key = tile_key("p", (1, 1), "grids", 15, c, r, grid)
            cache.put(key, f"{grid.id}-{name}".encode(), f'"{grid.id}{name}"')
            tiles[grid.id, name] = (c, r)
    carried, dropped = cache.carry("p", "grids", (1, 1), (1, 2), [touched])
    assert (carried, dropped) == (2, 2)
    for grid in (WEB_MERCATOR_QUAD, CGCS2000_QUAD):
        c, r = tiles[grid.id, "far"]
        assert cache.get(tile_key("p", (1, 2), "grids", 15, c, r, grid))[0] == (
            f"{grid.id}-far".encode()
        )
        c, r = tiles[grid.id, "near"]
        assert cache.get(tile_key("p", (1, 2), "grids", 15, c, r, grid)) is None
