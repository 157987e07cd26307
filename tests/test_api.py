"""The HTTP API over a real store holding the demo plan: collections, coverage, exports, uploads."""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pytest
from apitools import auth
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.geo.crs import wgs84_to_gcj02


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, tmp_path_factory, demo_plan_frames):
    """A client on each store, holding the demo plan as plan 'demo' version 1."""
    frames, meta = demo_plan_frames
    if request.param == "gpkg":
        from wangge.data.gpkg_store import GpkgStore

        store = GpkgStore(tmp_path_factory.mktemp("api") / "store.gpkg")
    else:
        store = request.getfixturevalue("postgis_store")
    plan = f"demo{request.param}"
    if not store.versions(plan):
        store.save(plan, frames, meta, author="tests")
    app = create_app(Settings(plan=plan, max_upload_mb=5, max_batch=10_000), store)
    with TestClient(app, headers=auth(store)) as client:
        yield client, frames, plan


def test_health_and_docs(served):
    client, _, _ = served
    assert client.get("/healthz").json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    assert {"/collections/{layer}/items", "/coverage/point", "/export/{layer}"} <= set(
        schema["paths"]
    )
    docs = client.get("/docs")
    assert docs.status_code == 200
    # nothing from the internet: Swagger UI comes from the vendored copy, no validator asked
    loaded = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", docs.text)
    assert loaded and not [u for u in loaded if u.startswith(("http:", "https:", "//"))]
    assert "validatorUrl" in docs.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        got = client.get(f"/editor/static/vendor/{asset}")
        assert got.status_code == 200 and len(got.content) > 100_000, asset


def test_collections_list_every_layer_with_counts(served):
    client, frames, plan = served
    body = client.get("/collections").json()
    assert body["plan"] == plan and "OpenStreetMap" in body["attribution"]
    got = {c["id"]: c for c in body["collections"]}
    assert got["grids"]["itemCount"] == len(frames["grids"])
    assert got["grids"]["geometryType"] in ("Polygon", "MultiPolygon")
    assert len(got["grids"]["extent"]["spatial"]["bbox"][0]) == 4


def test_items_page_with_counts_and_links(served):
    client, frames, _ = served
    n = len(frames["microgrids"])
    r = client.get("/collections/microgrids/items", params={"limit": 50, "offset": 100})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["numberMatched"] == n and body["numberReturned"] == 50
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert "offset=150" in rels["next"] and "offset=50" in rels["prev"]
    codes = [f["id"] for f in body["features"]]
    assert codes == sorted(frames["microgrids"]["code"])[100:150]
    last = client.get("/collections/microgrids/items", params={"limit": 50, "offset": n - 10})
    assert last.json()["numberReturned"] == 10
    assert "next" not in {link["rel"] for link in last.json()["links"]}


def test_items_bbox_matches_a_geopandas_filter(served):
    client, frames, _ = served
    grids = frames["grids"]
    bbox = (118.775, 32.035, 118.785, 32.045)
    want = grids.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]]
    body = client.get(
        "/collections/grids/items", params={"bbox": ",".join(map(str, bbox)), "limit": 1000}
    ).json()
    assert body["numberMatched"] == len(want) > 0
    assert sorted(f["id"] for f in body["features"]) == sorted(want["code"])


def test_properties_select_and_item_by_code(served):
    client, frames, _ = served
    body = client.get(
        "/collections/grids/items", params={"properties": "households,name", "limit": 3}
    ).json()
    assert set(body["features"][0]["properties"]) == {"code", "households", "name"}
    code = frames["grids"]["code"].iloc[5]
    one = client.get(f"/collections/grids/items/{code}").json()
    assert one["id"] == code and one["type"] == "Feature"
    assert one["properties"]["households"] == frames["grids"]["households"].iloc[5]
    assert one["geometry"]["type"] in ("Polygon", "MultiPolygon")


@pytest.mark.parametrize(
    ("url", "status", "where"),
    [
        ("/collections/nope/items", 404, "layer"),
        ("/collections/grids/items/000", 404, "code"),
        ("/collections/grids/items?bbox=1,2,3", 400, "bbox"),
        ("/collections/grids/items?bbox=a,b,c,d", 400, "bbox"),
        ("/collections/grids/items?bbox=inf,0,1,1", 400, "bbox"),
        ("/collections/grids/items?bbox=1e5e,0,1,1", 400, "bbox"),
        ("/collections/grids/items?limit=0", 400, "limit"),
        ("/collections/grids/items?properties=nope", 400, "properties"),
        ("/collections?plan=nope", 404, "plan"),
        ("/collections?version=9", 404, "version"),
        ("/coverage/point?lon=200&lat=32", 422, "lon"),
        ("/coverage/point?lon=118.78", 422, "lat"),
        ("/export/grids?format=dwg", 422, "format"),
        ("/export/grids?crs=EPSG:999999", 422, "crs"),
    ],
)
def test_errors_are_json_with_status_and_where(served, url, status, where):
    client, _, _ = served
    r = client.get(url)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail", "where"}
    assert where in (body["where"] or ""), body


def test_point_lookup_gives_every_level(served):
    client, frames, plan = served
    micro = frames["microgrids"].iloc[10]
    pt = micro.geometry.representative_point()
    body = client.get("/coverage/point", params={"lon": pt.x, "lat": pt.y}).json()
    assert body["microgrid"]["code"] == micro["code"] and body["plan"] == plan
    assert body["grid"]["code"] == micro["code"][:15]
    assert body["community"]["code"] == micro["code"][:12]
    assert body["street"]["code"] == micro["code"][:9]
    assert body["grid"]["name"] and body["grid"]["households"] > 0
    glon, glat = wgs84_to_gcj02(pt.x, pt.y)
    shifted = client.get(
        "/coverage/point", params={"lon": float(glon), "lat": float(glat), "crs": "GCJ02"}
    ).json()
    assert shifted["microgrid"]["code"] == micro["code"]
    assert abs(shifted["lon"] - pt.x) < 1e-7


def test_point_outside_is_404_with_the_reason(served):
    client, _, _ = served
    r = client.get("/coverage/point", params={"lon": 116.4, "lat": 39.9})
    assert r.status_code == 404 and "outside the study area" in r.json()["error"]


def test_point_lookup_agrees_with_a_geopandas_spatial_join(served):
    client, frames, _ = served
    micro = frames["microgrids"]
    x0, y0, x1, y1 = micro.total_bounds
    rng = np.random.default_rng(42)
    lon, lat = rng.uniform(x0, x1, 10_000), rng.uniform(y0, y1, 10_000)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    joined = gpd.sjoin(pts, micro[["code", "geometry"]], predicate="intersects", how="left")
    want = joined.groupby(level=0)["code"].min().reindex(range(len(pts)))
    body = client.post(
        "/coverage/points",
        json={
            "points": [
                {"id": i, "lon": a, "lat": b} for i, (a, b) in enumerate(zip(lon, lat, strict=True))
            ]
        },
    ).json()
    got = pd.Series([r["microgrid_code"] for r in body["results"]])
    assert body["count"] == 10_000 and body["inside"] == int(want.notna().sum())
    assert (got.fillna("") == want.fillna("")).all()
    # and /coverage/point, called once per point, agrees on each of the first 1,000 (one
    # request each: 10,000 took minutes per store, and the batch above covers them all)
    n = 1_000
    codes = asyncio.run(_point_lookups(client.app, lon[:n], lat[:n], dict(client.headers)))
    assert codes == want.fillna("").tolist()[:n]


async def _point_lookups(app, lon, lat, headers) -> list[str]:
    """The micro-grid code /coverage/point gives for each point ('' for a 404)."""
    out = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        for x, y in zip(lon, lat, strict=True):
            r = await http.get("/coverage/point", params={"lon": x, "lat": y})
            assert r.status_code in (200, 404), r.text
            out.append(r.json()["microgrid"]["code"] if r.status_code == 200 else "")
    return out


def test_batch_as_csv_and_its_limits(served):
    client, frames, _ = served
    pt = frames["grids"].geometry.iloc[0].representative_point()
    csv_text = f"id,lon,lat\na,{pt.x},{pt.y}\nb,116.4,39.9\n"
    r = client.post(
        "/coverage/points?format=csv", content=csv_text, headers={"content-type": "text/csv"}
    )
    back = pd.read_csv(io.StringIO(r.text), dtype=str)
    assert back["grid_code"].iloc[0] == frames["grids"]["code"].iloc[0]
    assert back["inside"].tolist() == ["True", "False"]
    bad = client.post(
        "/coverage/points", content="id,lon,lat\n1,x,32\n", headers={"content-type": "text/csv"}
    )
    assert bad.status_code == 422 and bad.json()["where"] == "row 2"
    many = {"points": [{"lon": 118.78, "lat": 32.04}] * 10_001}
    assert client.post("/coverage/points", json=many).status_code == 413
    assert client.post("/coverage/points", json={"points": "x"}).status_code == 422


@pytest.mark.parametrize("charset", ["gbk", None, "utf-8"])
def test_batch_csv_from_excel_in_gbk_keeps_its_chinese_ids(served, charset):
    """A city system's CSV as Excel saves it in China: GBK, headers 编号/经度/纬度. The ids
    come back whole (they were mojibake, or dropped under 编号)."""
    client, frames, _ = served
    pt = frames["grids"].geometry.iloc[0].representative_point()
    text = f"编号,经度,纬度\n网格甲,{pt.x},{pt.y}\n网格乙,116.4,39.9\n"
    ctype = "text/csv" + (f"; charset={charset}" if charset else "")
    body = text.encode(charset or "gbk")
    r = client.post("/coverage/points?format=json", content=body, headers={"content-type": ctype})
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["results"]] == ["网格甲", "网格乙"]
    assert r.json()["results"][0]["grid_code"] == frames["grids"]["code"].iloc[0]
    wrong = client.post(
        "/coverage/points",
        content=text.encode("gbk"),
        headers={"content-type": "text/csv; charset=utf-8"},
    )
    assert wrong.status_code == 422 and "charset" in wrong.json()["error"]


def test_gbk_shapefile_export_keeps_chinese_names(served):
    client, frames, _ = served
    r = client.get("/export/grids", params={"format": "shp", "encoding": "GBK", "crs": "EPSG:4549"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        cpg = next(n for n in z.namelist() if n.endswith(".cpg"))
        assert z.read(cpg).decode().strip() == "GBK"
        dbf = z.read(next(n for n in z.namelist() if n.endswith(".dbf")))
        assert frames["grids"]["name"].iloc[0].encode("gbk") in dbf
    back = gpd.read_file(io.BytesIO(r.content), engine="pyogrio", encoding="GBK")
    assert back.crs.to_epsg() == 4549
    merged = frames["grids"].merge(back, on="code")
    assert len(merged) == len(frames["grids"])
    assert (merged["name_x"] == merged["name_y"]).all()
    assert (merged["households"] == merged["hh"]).all()


def test_gpkg_export_in_cgcs2000_reads_back_with_that_crs(served):
    client, frames, _ = served
    r = client.get("/export/microgrids", params={"format": "gpkg", "crs": "EPSG:4490"})
    back = gpd.read_file(io.BytesIO(r.content), engine="pyogrio")
    assert back.crs.to_epsg() == 4490
    assert sorted(back["code"]) == sorted(frames["microgrids"]["code"])
    assert back["households"].sum() == frames["microgrids"]["households"].sum()


def test_microgrids_export_as_shapefile(served):
    client, frames, _ = served
    r = client.get("/export/microgrids", params={"format": "shp"})
    assert r.status_code == 200, r.text
    back = gpd.read_file(io.BytesIO(r.content), engine="pyogrio")
    assert len(back) == len(frames["microgrids"])


def _plan_bytes(frames: dict) -> bytes:
    features = []
    for layer, level in (
        ("streets", "street"),
        ("communities", "community"),
        ("grids", "grid"),
        ("microgrids", "microgrid"),
    ):
        frame = frames[layer].assign(level=level)
        features += json.loads(frame.to_json())["features"]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def test_upload_geojson_plan_validates_and_saves_then_conflicts(served):
    client, frames, _ = served
    data = _plan_bytes(frames)
    plan = f"up{np.random.default_rng().integers(1e9)}"
    r = client.post(f"/plans?plan={plan}&author=t", content=data)
    assert r.status_code == 201, r.text
    assert r.json()["version"]["version"] == 1
    assert any(v["check"] == "atomic" for v in r.json()["violations"])  # skipped: no buildings
    assert client.post(f"/plans?plan={plan}&base_version=1", content=data).status_code == 201
    stale = client.post(f"/plans?plan={plan}&base_version=1", content=data)
    assert stale.status_code == 409 and stale.json()["where"] == "base_version"
    versions = client.get(f"/plans/{plan}/versions").json()
    assert [v["version"] for v in versions] == [1, 2]


def test_upload_with_a_gap_comes_back_as_a_list_of_errors(served):
    client, frames, _ = served
    broken = dict(frames)
    broken["microgrids"] = frames["microgrids"].iloc[1:]  # a hole in the cover
    plan = f"bad{np.random.default_rng().integers(1e9)}"
    r = client.post(f"/plans?plan={plan}", content=_plan_bytes(broken))
    assert r.status_code == 422
    body = r.json()
    assert isinstance(body["detail"], list) and body["detail"]
    assert {"cover"} <= {v["check"] for v in body["detail"]}
    assert client.get(f"/plans/{plan}/versions").status_code == 404  # nothing saved


@pytest.mark.parametrize(
    ("content", "status", "needle"),
    [
        (b"", 422, "empty"),
        (b"{not json", 422, "neither a GeoPackage nor GeoJSON"),
        (b'{"type": "Feature"}', 422, "FeatureCollection"),
        (b"SQLite format 3\x00" + b"\x00" * 100, 422, "GeoPackage"),
        (b"x" * (5 * 1024 * 1024 + 1), 413, "limit"),
    ],
)
def test_bad_uploads(served, content, status, needle):
    client, _, _ = served
    r = client.post("/plans?plan=badupload", content=content)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_upload_feature_without_a_level_or_geometry_is_named(served):
    client, frames, _ = served
    doc = json.loads(_plan_bytes(frames))
    doc["features"][3]["properties"]["level"] = "district"
    r = client.post("/plans?plan=badlevel", content=json.dumps(doc).encode())
    assert r.status_code == 422 and "unknown level 'district'" in r.json()["error"]
    doc = json.loads(_plan_bytes(frames))
    doc["features"][2]["geometry"] = None
    r = client.post("/plans?plan=badgeom", content=json.dumps(doc).encode())
    assert r.status_code == 422 and "no geometry" in r.json()["error"]


def _of_level(doc: dict, level: str) -> list[dict]:
    return [f for f in doc["features"] if f["properties"]["level"] == level]


@pytest.mark.parametrize(
    ("level", "layer", "nth", "key", "value", "words"),
    [
        # a street without a code was a 500 (KeyError: 'code')
        ("street", "streets", 0, "code", ..., "street feature 1 has no code"),
        # a null parent code was a 500 (TypeError) at every level below the street
        (
            "grid",
            "grids",
            2,
            "parent_code",
            None,
            "grid feature 3 (code {code}) has no parent_code",
        ),
        ("microgrid", "microgrids", 5, "parent_code", "", "has no parent_code"),
        ("community", "communities", 1, "households", "many", "has no number in households"),
    ],
)
def test_upload_feature_without_a_required_property_is_named_422(
    served, level, layer, nth, key, value, words
):
    """Each feature of the four levels has the code, parent code and households the
    checks read; one without them is named by layer and feature, and nothing is saved."""
    client, frames, _ = served
    doc = json.loads(_plan_bytes(frames))
    feature = _of_level(doc, level)[nth]
    code = feature["properties"]["code"]
    if value is ...:
        del feature["properties"][key]
    else:
        feature["properties"][key] = value
    plan = f"missing{np.random.default_rng().integers(1e9)}"
    r = client.post(f"/plans?plan={plan}", content=json.dumps(doc).encode())
    assert r.status_code == 422, r.text
    assert r.json()["where"] == f"{layer} feature {nth + 1}"
    assert words.format(code=code) in r.json()["error"]
    assert client.get(f"/plans/{plan}/versions").status_code == 404


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({"metric_crs": "EPSG:99999"}, "metric_crs: not a CRS pyproj knows"),
        ({"metric_crs": "EPSG:4326"}, "metric_crs 'EPSG:4326' is not projected"),
        ({"limits_json": "{not json"}, "limits_json"),
        ({"limits_json": json.dumps({"grid": {"min_households": 300}})}, "lack the key"),
        ({"limits_json": "[1, 2]"}, "table of tables"),
    ],
)
def test_upload_with_bad_meta_is_a_422_and_saves_nothing(served, meta, needle):
    client, frames, _ = served
    doc = json.loads(_plan_bytes(frames)) | meta
    plan = f"badmeta{np.random.default_rng().integers(1e9)}"
    r = client.post(f"/plans?plan={plan}", content=json.dumps(doc).encode())
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]
    assert client.get(f"/plans/{plan}/versions").status_code == 404


def test_every_feature_of_every_collection_has_a_unique_id(store, risk_plan_dir):
    """Over every collection of a stored plan with its risk and coverage layers (the demo
    with the seeded sample register), each feature has an id, no two share one, and each
    id finds its feature: QGIS drops features without an id, and dropped 3 of 783 edges.
    The plan's violations name one unit twice, as a unit breaking two rules does."""
    from wangge.data.plan import read_plan

    layers, meta = read_plan(risk_plan_dir / "plan.gpkg").stored()
    twice = layers["violations"].iloc[:1].assign(check="contiguity", reason="in 2 pieces")
    layers["violations"] = pd.concat([layers["violations"], twice], ignore_index=True)
    plan = f"ids{np.random.default_rng().integers(1e9)}"
    store.save(plan, layers, meta, author="tests")
    app = create_app(Settings(plan=plan, max_limit=10_000), store)
    seen = {}
    with TestClient(app, headers=auth(store)) as client:
        for col in client.get("/collections").json()["collections"]:
            ids, offset = [], 0
            while True:
                page = client.get(
                    f"/collections/{col['id']}/items", params={"limit": 10_000, "offset": offset}
                ).json()
                ids += [f.get("id") for f in page["features"]]
                offset += 10_000
                if offset >= page["numberMatched"]:
                    break
            assert len(ids) == col["itemCount"], col["id"]
            assert None not in ids, f"{col['id']}: {ids.count(None)} features without an id"
            assert len(set(ids)) == len(ids), f"{col['id']}: ids repeat"
            for fid in (ids[0], ids[-1]):
                one = client.get(f"/collections/{col['id']}/items/{fid}")
                assert one.status_code == 200 and one.json()["id"] == fid, (col["id"], fid)
            seen[col["id"]] = len(ids)
    made = {"study_area", "suggestions", "network_edges", "unit_edges", "feasibility", "siting"}
    assert made | {"violations", "grids", "buildings"} <= set(seen)
    assert seen["violations"] == len(layers["violations"])
    # what was saved comes back, with the ids made for it
    back = store.load(plan)
    assert list(back["network_edges"].columns[:4]) == ["u", "v", "length_m", "highway"]
    assert back["violations"]["code"].tolist() == layers["violations"]["code"].tolist()


# what the schema admits the server takes ----------------------------------------------

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
BBOX_CRS = ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", f"{EPSG}4326", f"{EPSG}4549")


@pytest.mark.parametrize("crs", BBOX_CRS)
def test_every_bbox_the_schema_admits_is_answered(served, crs):
    """The bbox pattern admits four decimal numbers, and every such bbox is answered 200:
    an antimeridian crossing, latitudes in either order and values beyond the world are
    read as OGC API – Features reads them (schemathesis once found 400s for bboxes the
    schema called valid). What the pattern refuses is a 400 naming bbox."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from wangge.api.ogc_crs import BBOX

    client, _, _ = served
    schema = client.get("/openapi.json").json()
    params = schema["paths"]["/collections/{layer}/items"]["get"]["parameters"]
    bbox = next(p for p in params if p["name"] == "bbox")["schema"]["anyOf"][0]
    assert bbox["pattern"] == BBOX

    def answered(bbox: str) -> None:
        r = client.get("/collections/grids/items", params={"bbox": bbox, "bbox-crs": crs})
        assert r.status_code == 200, (bbox, r.text)

    for bbox in ("10,10,0,0", "0,90,180,-90", "-1e99,-1e99,1e99,1e99", " .5 ,-0.,+1e2,3E-7"):
        answered(bbox)
    fuzz = given(st.from_regex(BBOX, fullmatch=True).filter(lambda b: len(b) <= 200))(answered)
    slow = [HealthCheck.too_slow, HealthCheck.filter_too_much]
    settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=slow)(fuzz)()


def test_a_bbox_across_the_antimeridian_and_one_upside_down_are_read_as_ogc_says(served):
    client, frames, _ = served
    grids = frames["grids"]
    x0, y0, x1, y1 = grids.total_bounds
    n = len(grids)

    def count(bbox: str) -> int:
        r = client.get("/collections/grids/items", params={"bbox": bbox, "limit": 10_000})
        assert r.status_code == 200, r.text
        return r.json()["numberMatched"]

    assert count(f"{x0},{y0},{x1},{y1}") == n
    assert count(f"{x0},{y1},{x1},{y0}") == n  # latitudes either way round
    assert count(f"{x1 + 1},{y0},{x0 - 1},{y1}") == 0  # the long way round the world
    assert count(f"{x0 - 1},{y0},{x0 - 2},{y1}") == n  # west edge east of the east edge
    assert count(f"{x0 - 400},{y0 - 200},{x1 + 400},{y1 + 200}") == n  # cut to the world


def test_every_phone_the_schema_admits_the_roster_takes(served):
    """The phone pattern of the roster's JSON and CSV bodies is what normalise_phone
    takes: a landline's area code as the national plan splits it (0101-… was admitted
    and refused)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from wangge.api.roster import PHONE
    from wangge.data.roster import normalise_phone

    client, _, _ = served
    schema = client.get("/openapi.json").json()
    staff = schema["components"]["schemas"]["StaffIn"]["properties"]["phone"]
    assert staff["pattern"] == f"^{PHONE}$"
    csv = schema["paths"]["/plans/{plan_id}/roster/import"]["post"]["requestBody"]["content"]
    assert PHONE in csv["text/csv"]["schema"]["pattern"]

    @settings(max_examples=300, derandomize=True, deadline=None)
    @given(st.from_regex(f"^{PHONE}$", fullmatch=True))
    def taken(phone):
        normalise_phone(phone)

    taken()
    for phone in ("0101-2345678", "0571-123456", "01-23456789"):
        assert not re.fullmatch(f"^{PHONE}$", phone), phone


def test_points_take_json_numbers_only(served):
    """``"lat": false`` was read as 0 and ``"32.04"`` as 32.04; the schema says number."""
    client, _, _ = served
    ok = client.post("/coverage/points", json={"points": [{"id": 7, "lon": 118, "lat": 32}]})
    assert ok.status_code == 200, ok.text
    for bad in (
        {"lon": 118.78, "lat": False},
        {"lon": "118.78", "lat": 32.04},
        {"id": True, "lon": 118.78, "lat": 32.04},
    ):
        r = client.post("/coverage/points", json={"points": [bad]})
        assert r.status_code == 422, (bad, r.text)
    names = client.post("/plans/x/names", json={"base_version": True, "names": {}})
    assert names.status_code == 422 and names.json()["where"] == "base_version", names.text
    # every version number and yes-or-no of a body is a JSON integer or boolean only
    for path, body, where in (
        ("/plans/x/edits", {"base_version": True}, "base_version"),
        ("/plans/x/edits", {"base_version": 1, "dry_run": 1}, "dry_run"),
        ("/plans/x/edits", {"base_version": 1, "dry_run": "yes"}, "dry_run"),
        ("/plans/x/complete", {"base_version": True}, "base_version"),
        ("/plans/x/restore", {"base_version": 1, "version": True}, "version"),
        ("/plans/x/restore", {"base_version": "2", "version": 1}, "base_version"),
        ("/plans/x/restore", {"base_version": 2.5, "version": 1}, "base_version"),
    ):
        r = client.post(path, json=body)
        assert r.status_code == 422 and r.json()["where"] == where, (path, body, r.text)
    # a JSON integer may be written 3.0 (JSON Schema's integer): taken, not refused
    r = client.post("/plans/x/restore", json={"base_version": 263881.0, "version": 1})
    assert r.status_code != 422, r.text
    ok = client.post("/coverage/points", json={"points": [{"id": 7.0, "lon": 118, "lat": 32}]})
    assert ok.status_code == 200 and ok.json()["results"][0]["id"] == 7, ok.text
