"""OGC API – Features (Parts 1 and 2) against a real uvicorn server on the demo plan, on
both stores: GDAL's OAPIF driver reads every collection, paging in small pages, in EPSG:4326
and EPSG:4490, and its geometries match the store's (so the axis order is right); the
landing page, conformance, the API description, collection metadata, crs / bbox-crs /
Content-Crs in a Gauss-Kruger zone, unsupported CRSs and the HTML pages.

The demo's grids are saved with single-part ones as Polygon beside MultiPolygon ones, as
an edited plan has them: served, the layer must be MultiPolygon throughout. Its ``gaps``
mix points and polygons, and a made-up ``marks`` layer mixes points, lines and areas (with
codes): each is served as one collection per dimension, ``<layer>-points``, ``-lines``,
``-areas``, each of one geometry type, paged, counted and written to GPKG and Shapefile
without loss; ``stops`` mixes Point and MultiPoint only and stays one MultiPoint layer.

No OGC conformance checker that runs offline could be found (the OGC's own suites run
on TEAM Engine, a Java web application; cite-runner on PyPI only drives one), so the
requirements are checked here one by one.
"""

from __future__ import annotations

import contextlib
import re
import uuid
import warnings

import geopandas as gpd
import httpx
import numpy as np
import pyogrio
import pytest
import shapely
from apitools import key_for
from conftest import PG_URL
from e2e_server import Server, start_server
from pyproj import Transformer

from wangge.data.gpkg_store import GpkgStore
from wangge.data.plan import plan_from_frames, read_plan
from wangge.importing import save_plan

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
GK = 4549  # CGCS2000 3-degree Gauss-Kruger CM 120°E: the zone of the demo (Nanjing)
#: A grid name that HTML must escape.
NASTY = "<script>alert('网格')</script> & \"quoted\""
#: The id suffix of a mixed layer's collection of each dimension.
PARTS = {0: "points", 1: "lines", 2: "areas"}


def _made_up_layers(near: shapely.Point) -> dict[str, gpd.GeoDataFrame]:
    """``marks``: points and multipoints, lines and a multiline, polygons, with codes, in
    no code order by dimension; ``stops``: points and a multipoint."""
    x, y = near.x, near.y
    d = 0.001
    geoms = [
        shapely.Point(x, y),
        shapely.LineString([(x, y), (x + d, y + d)]),
        shapely.box(x, y, x + d, y + d),
        shapely.MultiPoint([(x + d, y), (x + 2 * d, y)]),
        shapely.MultiLineString([[(x, y), (x, y + d)], [(x + d, y), (x + d, y + 2 * d)]]),
        shapely.Point(x - d, y),
        shapely.box(x - 2 * d, y, x - d, y + d),
        shapely.LineString([(x - d, y - d), (x, y - 2 * d)]),
        shapely.Point(x, y - d),
    ]
    marks = gpd.GeoDataFrame(
        {"code": [f"M{i:03d}" for i in range(len(geoms))], "n": range(len(geoms))},
        geometry=geoms,
        crs=4326,
    )
    stops = gpd.GeoDataFrame(
        {"code": ["S1", "S2", "S3"]},
        geometry=[shapely.Point(x, y), shapely.MultiPoint([(x, y), (x + d, y)]), near],
        crs=4326,
    )
    return {"marks": marks, "stops": stops}


def _by_collection(frames: dict) -> dict:
    """The stored layers as the collections they must be served as: one per dimension
    where a layer's geometries span more than one."""
    out = {}
    for name, frame in frames.items():
        dims = shapely.get_dimensions(frame.geometry.to_numpy())
        present = sorted(set(dims[dims >= 0].tolist()))
        if len(present) < 2:
            out[name] = frame
            continue
        for d in present:
            out[f"{name}-{PARTS[d]}"] = frame[dims == d]
    return out


def _plan_layers(plan_dir):
    """The demo plan (with risk and coverage layers), its single-part grids as Polygon
    beside the MultiPolygon ones, and one grid with a name to escape."""
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    grids = layers["grids"].sort_values("code").reset_index(drop=True)
    geoms = grids.geometry.to_numpy().copy()
    single = (shapely.get_type_id(geoms) == 6) & (shapely.get_num_geometries(geoms) == 1)
    flip = single & (np.arange(len(geoms)) % 2 == 0)
    geoms[flip] = shapely.get_geometry(geoms[flip], 0)
    assert flip.any() and (shapely.get_type_id(geoms) == 6).any(), "the demo mixes no longer"
    grids = grids.set_geometry(geoms)
    grids.loc[0, "name"] = NASTY
    layers["grids"] = grids
    layers |= _made_up_layers(shapely.union_all(grids.geometry).centroid)
    return layers, meta


class Served:
    """A server on one store holding the plan, a reader's key, the stored layers and the
    collections they must be served as (``frames``; ``types``: None for tables)."""

    def __init__(self, server: Server, key: str, plan: str, layers: dict, types: dict):
        self.server, self.key, self.plan = server, key, plan
        self.layers = layers
        self.frames = _by_collection(layers)
        self.types = {c: types[c.partition("-")[0]] for c in self.frames}  # no "-" in names
        self.url = server.url
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def get(self, path: str, **params) -> httpx.Response:
        return self.http.get(path, params=params)


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, risk_plan_dir, tmp_path_factory):
    plan = f"ogc-{uuid.uuid4().hex[:8]}"
    layers, meta = _plan_layers(risk_plan_dir)
    tmp = tmp_path_factory.mktemp("ogc")
    if request.param == "gpkg":
        target = str(tmp / "store.gpkg")
        store = GpkgStore(tmp / "store.gpkg")
    else:
        target = PG_URL
        store = request.getfixturevalue("postgis_store")  # fails, not skips, with CI=true
    version, _ = save_plan(
        store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "ogc"
    )
    infos = store.layers(plan, version.version)
    frames = {i.name: store.query(plan, version.version, i.name).frame for i in infos}
    types = {i.name: i.geometry_type for i in infos}
    key = key_for(store, "viewer")
    if request.param == "gpkg":
        store.close()
    server = start_server(target, tmp / "server.log", plan=plan)
    yield Served(server, key, plan, frames, types)
    server.stop()


@contextlib.contextmanager
def gdal_key(key: str):
    """GDAL's HTTP requests sign in with ``key``. (GDAL_HTTP_HEADERS would be the obvious
    way, but the OAPIF driver sends its own Accept header, which replaces it.)"""
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": key})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})


# GDAL's OAPIF driver ------------------------------------------------------------------------


def _same_geometries(got: np.ndarray, want: np.ndarray, where: str) -> None:
    assert (shapely.is_missing(got) | shapely.is_empty(got)).tolist() == (
        shapely.is_missing(want) | shapely.is_empty(want)
    ).tolist(), where
    a, b = shapely.get_coordinates(got), shapely.get_coordinates(want)
    assert a.shape == b.shape, f"{where}: {a.shape} coordinates, want {b.shape}"
    if len(a):
        worst = float(np.abs(a - b).max())
        assert worst < 1e-6, f"{where}: coordinates differ by up to {worst} degrees"


@pytest.mark.parametrize(("crs", "page"), [("EPSG:4326", 50), ("EPSG:4490", 200)])
def test_gdal_reads_every_collection_through_every_page(served, crs, page):
    """Every collection, every feature, once each, in pages of ``page``: the same rows and
    the same geometries as the store holds, each collection of the one geometry type it
    advertises, which GDAL finds too (not Unknown, as a mixed layer's would be)."""
    url = f"OAPIF:{served.url}"
    advertised = {c["id"]: c for c in served.get("/collections").json()["collections"]}
    with gdal_key(served.key), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tables: "no geometry column"
        names = [str(n) for n in pyogrio.list_layers(url)[:, 0]]
        assert set(names) == set(served.frames) == set(advertised)
        assert {"gaps-points", "gaps-areas", "marks-lines"} <= set(names)
        for name in names:
            want = served.frames[name]
            got = pyogrio.read_dataframe(url, layer=name, CRS=crs, PAGE_SIZE=page)
            assert len(got) == len(want), f"{name}: {len(got)} rows, the store has {len(want)}"
            if "code" in want and want["code"].notna().all():
                assert got["code"].is_unique, f"{name}: a code came twice"
                got = got.set_index("code").loc[want["code"]]
            if served.types[name] is None:
                continue
            kind = advertised[name]["geometryType"]
            assert kind not in ("Geometry", "GeometryCollection"), name
            assert pyogrio.read_info(url, layer=name)["geometry_type"] == kind, name
            assert set(got.geom_type) == {kind}, f"{name}: {set(got.geom_type)}, said {kind}"
            # GDAL asks for CRS84 when told EPSG:4326 (the same datum, lon/lat order);
            # EPSG:4490 it asks for by its URI, latitude first
            assert got.crs.to_string() == ("OGC:CRS84" if crs == "EPSG:4326" else crs), name
            _same_geometries(got.geometry.to_numpy(), want.geometry.to_numpy(), name)


def test_gdal_sees_the_grids_as_multipolygons(served):
    """The grids mix Polygon and MultiPolygon in the store; GDAL learns the type from the
    first page, and must not find it Unknown (or Polygon, then meet MultiPolygons)."""
    stored = shapely.get_type_id(served.frames["grids"].geometry.to_numpy())
    assert {3, 6} <= set(stored.tolist())
    with gdal_key(served.key):
        info = pyogrio.read_info(f"OAPIF:{served.url}", layer="grids")
    assert info["geometry_type"] == "MultiPolygon"
    body = served.get("/collections/grids").json()
    assert body["geometryType"] == "MultiPolygon"
    feats = served.get("/collections/grids/items", limit=1000).json()["features"]
    assert {f["geometry"]["type"] for f in feats} == {"MultiPolygon"}
    one = served.frames["grids"]["code"][stored == 3].iloc[0]
    assert served.get(f"/collections/grids/items/{one}").json()["geometry"]["type"] == (
        "MultiPolygon"
    )


# a layer that mixes dimensions: one collection per dimension -------------------------------


def _all_pages(served: Served, path: str, **params) -> tuple[list[dict], set[int]]:
    """Every feature of a collection by following its next links; the numberMatched seen."""
    page = served.get(path, **params).json()
    feats, matched = [], set()
    while True:
        feats += page["features"]
        matched.add(page["numberMatched"])
        nxt = [x["href"] for x in page["links"] if x["rel"] == "next"]
        if not nxt:
            return feats, matched
        page = served.http.get(nxt[0]).json()


def test_no_collection_mixes_dimensions_and_each_serves_its_one_type(served):
    """/collections lists no mixed layer; every collection's geometryType, count and extent
    are those of the features it serves, and every feature is of that type."""
    listed = {c["id"]: c for c in served.get("/collections").json()["collections"]}
    assert "gaps" not in listed and "marks" not in listed
    want = {
        "gaps-points": "Point",
        "gaps-areas": "MultiPolygon",
        "marks-points": "MultiPoint",
        "marks-lines": "MultiLineString",
        "marks-areas": "Polygon",
        "stops": "MultiPoint",
    }
    assert {k: listed[k]["geometryType"] for k in want} == want
    for cid, c in listed.items():
        frame = served.frames[cid]
        assert c["itemCount"] == len(frame), cid
        if served.types[cid] is None:
            continue
        assert c == served.get(f"/collections/{cid}").json()
        assert np.allclose(c["extent"]["spatial"]["bbox"][0], frame.total_bounds), cid
        feats = served.get(f"/collections/{cid}/items", limit=10_000).json()["features"]
        assert len(feats) == len(frame), cid
        assert {f["geometry"]["type"] for f in feats} == {c["geometryType"]}, cid
    # the layer's own name and a dimension a layer does not mix are no collection
    for path in ("/collections/gaps", "/collections/gaps/items", "/collections/gaps/items/x"):
        r = served.get(path)
        assert r.status_code == 404 and r.json()["where"] == "layer", path
        assert "gaps-points and gaps-areas" in r.json()["error"], path
    r = served.get("/collections/marks")
    assert "marks-points and marks-lines and marks-areas" in r.json()["error"]
    assert served.get("/collections/grids-areas").status_code == 404


@pytest.mark.parametrize(("cid", "limit"), [("gaps-areas", 4), ("gaps-points", 700)])
def test_paging_a_split_collection_gives_each_feature_once(served, cid, limit):
    """numberMatched counts the collection's dimension only, and the next links reach
    every one of its features once, in small pages and with a bbox in a Gauss-Kruger zone."""
    want = served.frames[cid]
    feats, matched = _all_pages(served, f"/collections/{cid}/items", limit=limit)
    assert matched == {len(want)}
    assert sorted(f["properties"]["gap_id"] for f in feats) == sorted(want["gap_id"])
    assert len({f["properties"]["gap_id"] for f in feats}) == len(feats)
    # a projected bbox over the middle of the gaps: filtered by outline, then paged
    metric = want.to_crs(GK)
    (cx, cy), half = metric.total_bounds.reshape(2, 2).mean(axis=0), 500
    box = shapely.box(cx - half, cy - half, cx + half, cy + half)
    inside = sorted(want["gap_id"][metric.intersects(box)])
    assert 0 < len(inside) < len(want)
    bbox = f"{cy - half},{cx - half},{cy + half},{cx + half}"  # northing first
    path = f"/collections/{cid}/items"
    crs = {"bbox-crs": f"{EPSG}{GK}"}
    feats, matched = _all_pages(served, path, bbox=bbox, limit=max(2, limit // 4), **crs)
    assert matched == {len(inside)}
    assert sorted(f["properties"]["gap_id"] for f in feats) == inside


def test_a_split_collection_serves_its_own_features_one_by_one(served):
    """Single items by code come from their own dimension's collection only, promoted to
    its type and in any offered CRS."""
    marks = served.layers["marks"]
    dims = shapely.get_dimensions(marks.geometry.to_numpy())
    for code, d in zip(marks["code"], dims, strict=True):
        for other, part in PARTS.items():
            r = served.get(f"/collections/marks-{part}/items/{code}")
            if other != d:
                assert r.status_code == 404 and r.json()["where"] == "code", (code, part)
                continue
            kind = {0: "MultiPoint", 1: "MultiLineString", 2: "Polygon"}[d]
            assert r.status_code == 200 and r.json()["geometry"]["type"] == kind, code
            assert r.json()["id"] == code
    r = served.get("/collections/marks-lines/items/M001", crs=f"{EPSG}{GK}")
    assert r.headers["content-crs"] == f"<{EPSG}{GK}>"
    northing, easting = shapely.get_coordinates(shapely.geometry.shape(r.json()["geometry"]))[0]
    assert northing > 3e6 and 3e5 < easting < 7e5


@pytest.mark.parametrize("driver", ["GPKG", "ESRI Shapefile"])
def test_gdal_copies_each_split_collection_without_loss(served, tmp_path, driver):
    """What ogr2ogr does: read a collection through the OAPIF driver and write a layer of
    the type GDAL found for it; a GeoPackage and a Shapefile then hold every feature of that
    dimension (a Shapefile refuses a feature of another type)."""
    url = f"OAPIF:{served.url}"
    stored = served.layers["gaps"].geometry.to_numpy()
    counts = {f"gaps-{PARTS[d]}": int((shapely.get_dimensions(stored) == d).sum()) for d in PARTS}
    assert counts["gaps-points"] and counts["gaps-areas"] and not counts["gaps-lines"]
    for cid in ("gaps-points", "gaps-areas"):
        with gdal_key(served.key):
            kind = pyogrio.read_info(url, layer=cid)["geometry_type"]
            got = pyogrio.read_dataframe(url, layer=cid)
        assert len(got) == counts[cid], cid
        out = tmp_path / (f"{cid}.gpkg" if driver == "GPKG" else cid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # Shapefile: long field names
            pyogrio.write_dataframe(got, out, layer=cid, driver=driver, geometry_type=kind)
        back = pyogrio.read_dataframe(out, layer=cid)
        assert len(back) == counts[cid], f"{cid}: {len(back)} of {counts[cid]} written"
        written = pyogrio.read_info(out, layer=cid)["geometry_type"]
        assert written in (kind, kind.removeprefix("Multi")), cid  # a Shapefile says Polygon
        assert sorted(back["gap_id"]) == sorted(served.frames[cid]["gap_id"]), cid


# the service's own pages --------------------------------------------------------------------


def test_landing_page_conformance_and_api_are_public(served):
    anonymous = httpx.Client(base_url=served.url, timeout=30)
    r = anonymous.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["title"] and body["description"]
    links = {x["rel"]: x for x in body["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert links["service-desc"]["href"].endswith("/api")
    assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert links["service-doc"]["href"].endswith("/docs")
    assert links["data"]["href"].endswith("/collections")
    assert links["alternate"]["type"] == "text/html"
    behind_key = ("data", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector")
    for link in links.values():
        assert anonymous.get(link["href"]).status_code == (
            401 if link["rel"] in behind_key else 200
        ), link
    conforms = anonymous.get("/conformance").json()["conformsTo"]
    for part in (
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-1/1.0/conf/geojson",
        "ogcapi-features-1/1.0/conf/oas30",
        "ogcapi-features-1/1.0/conf/html",
        "ogcapi-features-2/1.0/conf/crs",
    ):
        assert f"http://www.opengis.net/spec/{part}" in conforms
    r = anonymous.get("/api")
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    api = r.json()
    assert api["openapi"].startswith("3.0.")
    assert {"/", "/conformance", "/collections", "/collections/{layer}"} <= set(api["paths"])
    items = api["paths"]["/collections/{layer}/items"]["get"]
    params = {p["name"]: p for p in items["parameters"]}
    assert {"crs", "bbox-crs", "bbox", "limit", "offset"} <= set(params)
    assert f"{EPSG}{GK}" in params["crs"]["schema"]["enum"]
    assert "400" in items["responses"] and "Content-Crs" in items["responses"]["200"]["headers"]
    text = r.text
    for construct in ('"type": "null"', '"type":"null"', '"const"', '"prefixItems"'):
        assert construct not in text, f"OpenAPI 3.1 construct {construct} left in /api"
    with contextlib.suppress(ImportError):  # where it is installed, the 3.0 validator agrees
        from openapi_spec_validator import validate

        validate(api)


def test_collections_describe_crs_extent_and_geometry(served):
    body = served.get("/collections").json()
    assert body["plan"] == served.plan and "OpenStreetMap" in body["attribution"]
    got = {c["id"]: c for c in body["collections"]}
    assert set(got) == set(served.frames)
    grids = got["grids"]
    assert grids == served.get("/collections/grids").json()
    assert grids["itemType"] == "feature" and grids["title"] and grids["description"]
    assert grids["itemCount"] == len(served.frames["grids"])
    assert grids["crs"][0] == CRS84
    assert {f"{EPSG}4326", f"{EPSG}4490", f"{EPSG}{GK}"} <= set(grids["crs"])
    assert all(re.fullmatch(rf"{EPSG}45[345]\d", c) for c in grids["crs"][3:])
    assert grids["storageCrs"] == CRS84
    assert grids["extent"]["spatial"]["crs"] == CRS84
    x0, y0, x1, y1 = grids["extent"]["spatial"]["bbox"][0]
    assert np.allclose([x0, y0, x1, y1], served.frames["grids"].total_bounds)
    rels = {(x["rel"], x["type"]) for x in grids["links"]}
    assert {
        ("self", "application/json"),
        ("alternate", "text/html"),
        ("items", "application/geo+json"),
    } <= rels
    assert served.get("/collections/nope").status_code == 404


# crs, bbox-crs and Content-Crs --------------------------------------------------------------


#: WGS84 to the zone and back in the axis order each CRS defines (lat,lon; northing,easting).
TO_GK = Transformer.from_crs("EPSG:4326", f"EPSG:{GK}")
FROM_GK = Transformer.from_crs(f"EPSG:{GK}", "EPSG:4326", always_xy=True)


def _northing_easting(lonlat: np.ndarray) -> np.ndarray:
    """lon/lat to EPSG:4549 in its own axis order (northing, easting), by PROJ itself."""
    n, e = TO_GK.transform(lonlat[:, 1], lonlat[:, 0])
    return np.column_stack((n, e))


def test_a_gauss_kruger_zone_answers_northing_easting_in_metres(served):
    crs = f"{EPSG}{GK}"
    r = served.get("/collections/grids/items", crs=crs, limit=1000)
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{crs}>"
    feats = {f["id"]: f for f in r.json()["features"]}
    want = served.frames["grids"]
    for code, geom in zip(want["code"], want.geometry.to_numpy(), strict=True):
        got = shapely.get_coordinates(shapely.geometry.shape(feats[code]["geometry"]))
        assert np.abs(got - _northing_easting(shapely.get_coordinates(geom))).max() < 1e-4
    one = want["code"].iloc[3]
    r = served.get(f"/collections/grids/items/{one}", crs=crs)
    assert r.headers["content-crs"] == f"<{crs}>"
    got = shapely.get_coordinates(shapely.geometry.shape(r.json()["geometry"]))
    assert got[0, 0] > 3e6 and 3e5 < got[0, 1] < 7e5  # northing ~3.5e6, easting ~4e5
    for code in (4326, 4490):  # latitude first, as their EPSG definitions say
        r = served.get(f"/collections/grids/items/{one}", crs=f"{EPSG}{code}")
        lat, lon = shapely.get_coordinates(shapely.geometry.shape(r.json()["geometry"]))[0]
        assert r.headers["content-crs"] == f"<{EPSG}{code}>" and 31 < lat < 33 < 118 < lon < 119
    r = served.get("/collections/grids/items", limit=1)
    assert r.headers["content-crs"] == f"<{CRS84}>"


def test_a_bbox_in_a_gauss_kruger_zone_selects_and_pages(served):
    crs = f"{EPSG}{GK}"
    grids = served.frames["grids"].to_crs(GK)  # easting, northing
    cx, cy = shapely.get_coordinates(shapely.union_all(grids.geometry).centroid)[0]
    box = shapely.box(cx - 600, cy - 400, cx + 600, cy + 400)
    want = sorted(grids["code"][grids.intersects(box)])
    assert 3 < len(want) < len(grids)
    bbox = f"{cy - 400},{cx - 600},{cy + 400},{cx + 600}"  # northing first, as the CRS says
    page = served.get(
        "/collections/grids/items", bbox=bbox, **{"bbox-crs": crs}, crs=crs, limit=2
    ).json()
    assert page["numberMatched"] == len(want) and page["numberReturned"] == 2
    assert page["timeStamp"]
    codes = []
    while True:
        codes += [f["id"] for f in page["features"]]
        nxt = [x["href"] for x in page["links"] if x["rel"] == "next"]
        if not nxt:
            break
        assert (
            "bbox-crs=" in nxt[0]
            and f"crs={crs.replace(':', '%3A').replace('/', '%2F')}" in (nxt[0])
        )
        r = served.http.get(nxt[0])
        assert r.headers["content-crs"] == f"<{crs}>"
        page = r.json()
    assert sorted(codes) == want
    # the same box in lon/lat (CRS84) holds at least these grids
    lon0, lat0, lon1, lat1 = shapely.bounds(
        shapely.transform(box, lambda xy: np.column_stack(_lonlat(xy)))
    )
    wide = served.get("/collections/grids/items", bbox=f"{lon0},{lat0},{lon1},{lat1}", limit=500)
    assert set(want) <= {f["id"] for f in wide.json()["features"]}


def _lonlat(xy: np.ndarray):
    return FROM_GK.transform(xy[:, 0], xy[:, 1])


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"crs": "EPSG:4326"}, "crs"),
        ({"crs": f"{EPSG}3857"}, "crs"),
        ({"crs": f"{EPSG}4513"}, "crs"),  # the zone-prefixed Gauss-Kruger twins are not used
        ({"bbox": "1,2,3,4", "bbox-crs": f"{EPSG}32650"}, "bbox-crs"),
    ],
)
def test_an_unsupported_crs_is_400_with_the_offered_ones(served, params, where):
    for path in ("/collections/grids/items", "/collections/grids/items/x"):
        r = served.http.get(path, params=params)
        assert r.status_code == 400, r.text
        body = r.json()
        assert set(body) == {"error", "detail", "where"} and body["where"] == where
        assert "unsupported CRS" in body["error"] and CRS84 in body["error"]
        if where == "bbox-crs":
            break


# HTML ---------------------------------------------------------------------------------------


def test_html_pages_of_data_carry_the_attribution_and_escape_everything(served):
    code = served.frames["grids"]["code"].iloc[0]
    pages = ["/", "/conformance", "/collections", "/collections/grids"]
    pages += ["/collections/grids/items", f"/collections/grids/items/{code}"]
    for path in pages:
        for how in ({"params": {"f": "html"}}, {"headers": {"Accept": "text/html,*/*;q=0.8"}}):
            r = served.http.get(path, **how)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            text = r.text
            # the pages of the plan's data credit its sources; the landing page and the
            # conformance classes show no data
            shows_data = path.startswith("/collections")
            assert ("© OpenStreetMap contributors, ODbL 1.0" in text) is shows_data, path
            assert "<script" not in text.lower() and "<link" not in text.lower(), path
            assert " src=" not in text, path
    for path in pages[-2:]:
        text = served.http.get(path, params={"f": "html"}).text
        assert "&lt;script&gt;alert(&#x27;网格&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in (
            text
        )
    # JSON stays the default, and f=json wins over Accept
    assert served.get("/collections").headers["content-type"] == "application/json"
    r = served.http.get(
        "/collections/grids/items", params={"f": "json"}, headers={"Accept": "text/html"}
    )
    assert r.headers["content-type"] == "application/geo+json"
    assert served.get("/collections/grids/items", f="xml").status_code == 400


def test_invalid_parameters_are_400_and_datetime_is_taken(served):
    """OGC API – Features: an invalid parameter value is 400 (/req/core/query-param-
    invalid); items take datetime (Part 1), which every feature of a version matches."""
    for params in ({"limit": "abc"}, {"limit": 0}, {"bbox": "1,2,3"}, {"f": "xml"}):
        r = served.http.get("/collections/grids/items", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["where"]
    assert served.http.get("/", params={"f": "xml"}).status_code == 400
    everything = served.get("/collections/grids/items").json()["numberMatched"]
    for when in ("2026-11-30", "2026-11-30T08:00:00Z", "../2026-12-01", "2020-01-01/.."):
        r = served.http.get("/collections/grids/items", params={"datetime": when})
        assert r.status_code == 200 and r.json()["numberMatched"] == everything, when
    assert (
        served.http.get("/collections/grids/items", params={"datetime": "soon"}).status_code == 400
    )


def test_features_without_a_code_have_their_own_id(served):
    """OGC /req/core/f-op: every feature is reachable at /items/{featureId}; buildings,
    risk points and facilities are by their own ids."""
    for layer, column in (("buildings", "building_id"), ("risk_points", "risk_id")):
        page = served.get(f"/collections/{layer}/items", limit=5).json()
        first = page["features"][0]
        assert first["id"] == first["properties"][column], layer
        one = served.get(f"/collections/{layer}/items/{first['id']}")
        assert one.status_code == 200, one.text
        assert one.json()["properties"][column] == first["id"]


def test_a_mixed_layer_exports_by_its_collections(served):
    """gaps mixes points and areas: its collections export one geometry type each, so a
    Shapefile of each can be written (the whole layer cannot)."""
    import io
    import zipfile

    import pyogrio

    whole = served.get("/export/gaps").json()["features"]
    counts = {}
    for part in ("gaps-points", "gaps-areas"):
        r = served.get(f"/export/{part}", format="shp")
        assert r.status_code == 200, r.text
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            assert any(n.endswith(".shp") for n in z.namelist())
        frame = pyogrio.read_dataframe(io.BytesIO(r.content))
        counts[part] = len(frame)
        assert frame.geom_type.str.contains("Point" if "points" in part else "Polygon").all()
    assert sum(counts.values()) == len(whole)
