"""Vector tiles from each store: decoded layers, features and attributes, geometry inside
the tile's extent and buffer, no personal data, TileJSON, ETag and 304, and an edit that
changes the ETags of exactly the tiles its changed features touch."""

from __future__ import annotations

import math
import uuid

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from apitools import auth
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.plan import plan_from_frames, read_plan
from wangge.data.tiles import TILE_FIELDS
from wangge.importing import save_plan
from wangge.maps.mvt import tile_bounds

EXTENT, BUFFER = 4096, 64
#: Columns that hold personal or per-household sensitive data and must never be in a tile.
PERSONAL = {"responsible", "address", "phone", "manager", "elderly", "disabled", "alone"}


@pytest.fixture(scope="module")
def risk_layers(risk_plan_dir):
    return read_plan(risk_plan_dir / "plan.gpkg").stored()


@pytest.fixture()
def tiles(store, risk_layers):
    """A client on each store with a fresh copy of the demo plan with every layer."""
    plan = f"tiles-{uuid.uuid4().hex[:8]}"
    layers, meta = risk_layers
    save_plan(store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "for tiles")
    with TestClient(create_app(Settings(), store), headers=auth(store)) as client:
        yield client, plan, store


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tiles_over(bbox, z: int) -> list[tuple[int, int, int]]:
    x0, y1 = tile_of(bbox[0], bbox[1], z)
    x1, y0 = tile_of(bbox[2], bbox[3], z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def coords(geometry: dict) -> list:
    out = []

    def walk(c):
        if isinstance(c[0], (int, float)):
            out.append(c)
        else:
            for part in c:
                walk(part)

    walk(geometry["coordinates"])
    return out


def test_tiles_decode_with_their_fields_inside_the_extent(tiles):
    client, plan, store = tiles
    bbox = store.resolve(plan).meta and next(
        i.bbox for i in store.layers(plan, 1) if i.name == "grids"
    )
    centre = tile_of((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 14)
    seen = set()
    for layer in ("grids", "microgrids", "units", "buildings", "risk_points", "facilities", "gaps"):
        r = client.get(f"/tiles/{layer}/14/{centre[0]}/{centre[1]}.mvt", params={"plan": plan})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        tile = decode(r.content)
        assert list(tile) == [layer]
        feats = tile[layer]["features"]
        assert feats, layer
        assert tile[layer]["extent"] == EXTENT
        for f in feats:
            keys = set(f["properties"])
            assert keys <= set(TILE_FIELDS[layer]), keys - set(TILE_FIELDS[layer])
            assert not keys & PERSONAL
            for x, y in coords(f["geometry"]):
                assert -BUFFER <= x <= EXTENT + BUFFER and -BUFFER <= y <= EXTENT + BUFFER
            seen.add(layer)
    # counts in the grid tiles are those of the stored grids
    r = client.get(f"/tiles/grids/14/{centre[0]}/{centre[1]}.mvt", params={"plan": plan})
    stored = store.query(plan, 1, "grids").frame.set_index("code")["households"]
    for f in decode(r.content)["grids"]["features"]:
        assert f["properties"]["households"] == stored[f["properties"]["code"]]


def test_every_grid_is_in_some_tile_at_z16(tiles):
    client, plan, store = tiles
    grids = store.query(plan, 1, "grids").frame
    bbox = grids.total_bounds
    found = set()
    for z, x, y in tiles_over(bbox, 16):
        r = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"plan": plan})
        assert r.status_code == 200
        if r.content:
            found |= {f["properties"]["code"] for f in decode(r.content)["grids"]["features"]}
    assert found == set(grids["code"])


def test_low_zoom_is_simplified_and_capped(tiles, monkeypatch):
    client, plan, store = tiles
    bbox = next(i.bbox for i in store.layers(plan, 1) if i.name == "grids")
    z, x, y = tiles_over(bbox, 10)[0]
    r = client.get(f"/tiles/units/{z}/{x}/{y}.mvt", params={"plan": plan})
    low = decode(r.content)["units"]["features"]
    vertices_low = sum(len(coords(f["geometry"])) for f in low)
    stored = store.query(plan, 1, "units").frame
    vertices_full = int(shapely.get_num_coordinates(stored.geometry.to_numpy()).sum())
    assert vertices_low < vertices_full / 2
    capped = create_app(Settings(tile_max_features=10), store)
    with TestClient(capped, headers=auth(store)) as small:
        r = small.get(f"/tiles/units/{z}/{x}/{y}.mvt", params={"plan": plan})
        assert len(decode(r.content)["units"]["features"]) == 10


def test_etag_304_and_cache_control(tiles):
    client, plan, store = tiles
    bbox = next(i.bbox for i in store.layers(plan, 1) if i.name == "grids")
    z, x, y = tiles_over(bbox, 14)[0]
    url = f"/tiles/grids/{z}/{x}/{y}.mvt"
    r = client.get(url, params={"plan": plan})
    etag = r.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert r.headers["cache-control"] == "private, no-cache"  # behind a key: no shared cache
    again = client.get(url, params={"plan": plan}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get(url, params={"plan": plan}, headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304  # as a gzipping proxy passes the tag on
    other = client.get(url, params={"plan": plan}, headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.content == r.content
    pinned = client.get(url, params={"plan": plan, "version": 1})
    assert "immutable" in pinned.headers["cache-control"] and pinned.headers["etag"] == etag
    with TestClient(create_app(Settings(public_reads=True), store)) as anyone:
        open_tile = anyone.get(url, params={"plan": plan, "version": 1})
        assert open_tile.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_tilejson_and_bad_requests(tiles):
    client, plan, _ = tiles
    r = client.get("/tiles/grids.json", params={"plan": plan})
    assert r.status_code == 200
    tj = r.json()
    assert tj["tilejson"] == "3.0.0" and "OpenStreetMap" in tj["attribution"]
    assert tj["tiles"][0].endswith(f"/tiles/grids/{{z}}/{{x}}/{{y}}.mvt?plan={plan}")
    assert tj["vector_layers"][0]["id"] == "grids"
    assert tj["vector_layers"][0]["fields"]["households"] == "Number"
    listing = client.get("/tiles", params={"plan": plan}).json()
    assert {"grids", "units", "gaps", "risk_points", "facilities"} <= {
        layer["id"] for layer in listing["layers"]
    }
    assert client.get("/tiles/violations/14/1/1.mvt", params={"plan": plan}).status_code == 404
    assert client.get("/tiles/nope/14/1/1.mvt", params={"plan": plan}).status_code == 404
    bad = client.get("/tiles/grids/2/9/1.mvt", params={"plan": plan})
    assert bad.status_code == 404 and bad.json()["where"] == "tile"
    assert client.get("/tiles/grids/14/1/1.mvt", params={"plan": "nope"}).status_code == 404


def test_both_stores_cut_the_same_features(risk_layers, postgis_store, tmp_path):
    """The GeoPackage encoder and ST_AsMVT agree on which features and attributes a
    tile holds (geometry is clipped by different code, so it is compared by extent)."""
    from wangge.data.gpkg_store import GpkgStore

    plan = f"same-{uuid.uuid4().hex[:8]}"
    layers, meta = risk_layers
    g = GpkgStore(tmp_path / "g.gpkg")
    for st in (g, postgis_store):
        save_plan(st, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "compare")
    bbox = next(i.bbox for i in g.layers(plan, 1) if i.name == "grids")
    with (
        TestClient(create_app(Settings(), g), headers=auth(g)) as a,
        TestClient(create_app(Settings(), postgis_store), headers=auth(postgis_store)) as b,
    ):
        for layer in ("grids", "units", "facilities"):
            for z, x, y in tiles_over(bbox, 15)[:6]:
                url = f"/tiles/{layer}/{z}/{x}/{y}.mvt"
                ta = decode(a.get(url, params={"plan": plan}).content).get(layer, {})
                tb = decode(b.get(url, params={"plan": plan}).content).get(layer, {})
                pa = sorted(_same(f["properties"]) for f in ta.get("features", []))
                pb = sorted(_same(f["properties"]) for f in tb.get("features", []))
                assert pa == pb, (layer, z, x, y)
    g.close()


def test_an_edit_changes_exactly_the_tiles_it_touched(tiles):
    client, plan, store = tiles
    from test_api_edits import boundary_unit

    grids = store.query(plan, 1, "grids").frame
    grid_tiles = tiles_over(grids.total_bounds, 16)
    layers = ("units", "grids", "buildings", "communities", "facilities")

    def etags() -> dict:
        out = {}
        for layer in layers:
            for z, x, y in grid_tiles:
                r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", params={"plan": plan})
                assert r.status_code == 200
                out[(layer, z, x, y)] = r.headers["etag"]
        return out

    before = etags()
    pick = boundary_unit(client, plan)
    r = client.post(
        f"/plans/{plan}/edits",
        json={"base_version": 1, "moves": [{"unit": pick["unit"], "to": pick["dst"]}]},
    )
    assert r.status_code == 201
    report = r.json()["tiles"]
    assert report["units"]["dropped"] >= 1 and report["units"]["carried"] >= 1
    after = etags()
    changed = {k for k in before if before[k] != after[k]}
    # the features the edit changed: the unit, its building, both grids (households and
    # shape), in version 1 and version 2
    v2 = store.resolve(plan)
    want = {"units": [pick["unit"]], "grids": [pick["src"], pick["dst"]]}
    expected = set()
    for layer, codes in want.items():
        for version in (1, v2.version):
            for geom in store.query(plan, version, layer, codes=codes).frame.geometry:
                for z, x, y in grid_tiles:
                    if _touches(geom, z, x, y):
                        expected.add((layer, z, x, y))
    assert {k for k in changed if k[0] in want} == expected
    # the building's codes changed, so its tiles did; untouched layers kept every ETag
    assert {k for k in changed if k[0] == "buildings"}
    assert not {k for k in changed if k[0] in ("communities", "facilities")}
    assert {k for k in changed if k[0] == "buildings"} <= {
        ("buildings", *k[1:]) for k in expected if k[0] == "units"
    }


def _same(props: dict) -> str:
    """Properties with numbers as floats (a whole number may be written as an int)."""
    numbers = (int, float)
    return repr(
        {
            k: float(v) if isinstance(v, numbers) and not isinstance(v, bool) else v
            for k, v in sorted(props.items())
        }
    )


def _touches(geom, z: int, x: int, y: int) -> bool:
    """Whether a WGS84 geometry reaches into a tile grown by its buffer."""
    from pyproj import Transformer

    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0, x1, y1 = tile_bounds(z, x, y)
    pad = (x1 - x0) * BUFFER / EXTENT
    merc = shapely.transform(geom, lambda c: np.column_stack(to_merc.transform(c[:, 0], c[:, 1])))
    return merc.intersects(shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad))
