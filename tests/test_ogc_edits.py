"""OGC API – Features Part 4 on a real uvicorn server, on each store: grids created,
replaced, renamed and deleted with OWSLib's transaction calls, as a planner of one
community signed in with HTTP Basic (as QGIS is); a stale ``If-Match`` is 412 and a write
outside the planner's territory 403, with nothing saved; micro-grids, ``Content-Crs``,
``OPTIONS`` and the answers a plain HTTP client gets (401, 404, 405, 409, 415, 428) as the
specification has them.

Each test writes to a plan of its own (saved once per store, before the server starts),
so the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import geopandas as gpd
import httpx
import pytest
import requests
import shapely
from apitools import key_for
from cities_osm import BEIJING_OSM
from conftest import PG_URL
from e2e_server import Server, start_server
from fastapi.testclient import TestClient
from owslib.ogcapi.features import Features
from owslib.util import Authentication
from shapely.geometry import mapping

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.gpkg_store import GpkgStore
from wangge.geo.codes import iter_free_codes

PLANS = ("roundtrip", "scope", "micro", "crs")


@dataclass
class Layout:
    """A basic grid ``grid`` of community ``community`` with three or more micro-grids,
    two of which (``m1``, ``m2``) touch; a grid ``other`` of another community."""

    community: str
    grid: str
    m1: str
    m2: str
    other: str


def _layout(frames: dict) -> Layout:
    grids, micro = frames["grids"].to_crs(4326), frames["microgrids"].to_crs(4326)
    basic = grids[grids["code"].str[-3:] < "900"]
    for code in basic["code"]:
        mine = micro[micro["code"].str[:15] == code]
        if len(mine) < 3:
            continue
        geoms = dict(zip(mine["code"], mine.geometry, strict=True))
        for a in sorted(geoms):
            for b in sorted(geoms):
                if a < b and geoms[a].intersection(geoms[b]).length > 0:
                    other = basic[basic["code"].str[:12] != code[:12]]["code"].iloc[0]
                    return Layout(code[:12], code, a, b, other)
    raise AssertionError("no grid with three micro-grids, two of them touching")


class Served:
    """The server, its accounts' keys, each test's plan and the demo's layers."""

    def __init__(self, server: Server, keys: dict, plans: dict, frames: dict):
        self.server, self.keys, self.plans, self.frames = server, keys, plans, frames
        self.url = server.url
        self.layout = _layout(frames)

    def http(self, key: str | None = "planner") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def features(self, plan: str, key: str = "planner") -> Features:
        """OWSLib on the plan, signed in as QGIS signs in: HTTP Basic, the key as password."""
        auth = Authentication(username="qgis", password=self.keys[key])
        feats = Features(f"{self.url}/?plan={self.plans[plan]}", auth=auth, timeout=120)
        feats.headers = dict(feats.headers)  # OWSLib shares one dict between instances
        return feats


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, demo_plan_frames, tmp_path_factory):
    frames, meta = demo_plan_frames
    tmp = tmp_path_factory.mktemp("part4")
    if request.param == "gpkg":
        target = str(tmp / "store.gpkg")
        store = GpkgStore(tmp / "store.gpkg")
    else:
        target = PG_URL
        store = request.getfixturevalue("postgis_store")
    plans = {name: f"p4-{name}-{uuid.uuid4().hex[:8]}" for name in PLANS}
    for plan in plans.values():
        store.save(plan, frames, meta, author="tests")
    community = _layout(frames).community
    keys = {
        "admin": key_for(store, "admin"),
        "planner": key_for(store, "planner", (community,)),
        "viewer": key_for(store, "viewer"),
    }
    if request.param == "gpkg":
        store.close()
    server = start_server(target, tmp / "server.log", plan=plans["roundtrip"])
    yield Served(server, keys, plans, frames)
    server.stop()


@pytest.fixture()
def statuses(monkeypatch) -> list[int]:
    """The status of every request OWSLib sends (it raises on an error without one)."""
    seen: list[int] = []
    for method in ("get", "post", "put", "delete"):
        real = getattr(requests, method)

        def call(*args, _real=real, **kwargs):
            r = _real(*args, **kwargs)
            seen.append(r.status_code)
            return r

        monkeypatch.setattr(requests, method, call)
    return seen


def _feature(geom, **props) -> dict:
    return {"type": "Feature", "geometry": mapping(geom), "properties": props}


def _geom(frames: dict, layer: str, code: str):
    frame = frames[layer].to_crs(4326)
    return frame.loc[frame["code"] == code].geometry.iloc[0]


def _units_of(frames: dict, layer: str, code: str) -> set[str]:
    units = frames["units"]
    column = "grid_code" if layer == "grids" else "parent_code"
    return set(units.loc[units[column].astype(str) == code, "code"].astype(str))


def _latest(http: httpx.Client, plan: str) -> int:
    return max(v["version"] for v in http.get(f"/plans/{plan}/versions").json())


def _read(http: httpx.Client, plan: str, layer: str, code: str) -> tuple[dict, str]:
    r = http.get(f"/collections/{layer}/items/{code}", params={"plan": plan})
    assert r.status_code == 200, r.text
    return r.json(), r.headers["ETag"]


def _unit_codes(http: httpx.Client, plan: str, column: str, code: str) -> set[str]:
    feats = http.get("/collections/units/items", params={"plan": plan, "limit": 10000}).json()[
        "features"
    ]
    return {f["properties"]["code"] for f in feats if f["properties"][column] == code}


def test_a_grid_is_created_updated_and_deleted_with_owslib(served, statuses):
    lay, plan = served.layout, served.plans["roundtrip"]
    http = served.http("admin")
    feats = served.features("roundtrip")
    assert (
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"
        in (feats.conformance()["conformsTo"])
    )
    before = {f["id"] for f in feats.collection_items("grids", limit=1000)["features"]}
    first = _latest(http, plan)
    want = next(iter_free_codes(lay.community, before, "grid"))

    # create: the units of micro-grid m1 become the community's next grid, named
    m1 = _geom(served.frames, "microgrids", lay.m1)
    assert feats.collection_item_create("grids", _feature(m1, name="试点网格"))
    assert statuses[-1] == 201
    new, tag = _read(http, plan, "grids", want)
    assert new["properties"]["name"] == "试点网格"
    assert new["properties"]["parent_code"] == lay.community
    assert _unit_codes(http, plan, "grid_code", want) == _units_of(
        served.frames, "microgrids", lay.m1
    )
    assert _latest(http, plan) == first + 2  # the grid, then its name

    # the ETag the read side sends is the one If-Match checks; OWSLib sends it as told
    assert feats.collection_item("grids", want)["id"] == want
    assert feats.response_headers["ETag"].removesuffix('-gzip"').strip('"') in tag
    both = shapely.union_all([m1, _geom(served.frames, "microgrids", lay.m2)])
    feats.headers["If-Match"] = tag
    assert feats.collection_item_update("grids", want, _feature(both, name="试点网格二"))
    assert statuses[-1] == 200
    grown = _units_of(served.frames, "microgrids", lay.m1) | _units_of(
        served.frames, "microgrids", lay.m2
    )
    assert _unit_codes(http, plan, "grid_code", want) == grown
    after, fresh = _read(http, plan, "grids", want)
    assert after["properties"]["name"] == "试点网格二" and fresh != tag

    # a stale If-Match: 412, and nothing saved
    saved = _latest(http, plan)
    with pytest.raises(RuntimeError, match="changed since it was read"):
        feats.collection_item_update("grids", want, _feature(m1))
    assert statuses[-1] == 412
    with pytest.raises(RuntimeError, match="changed since it was read"):
        feats.collection_item_delete("grids", want)
    assert statuses[-1] == 412
    assert _latest(http, plan) == saved

    # delete: its units go back to the neighbours of its community, its code retires
    feats.headers["If-Match"] = fresh
    assert feats.collection_item_delete("grids", want)
    assert statuses[-1] == 200
    assert http.get(f"/collections/grids/items/{want}", params={"plan": plan}).status_code == 404
    back = _unit_codes(http, plan, "community_code", lay.community)
    assert grown <= back
    now = {f["id"] for f in feats.collection_items("grids", limit=1000)["features"]}
    assert now == before
    log = http.get("/audit", params={"plan_id": plan, "limit": 100}).json()["entries"]
    assert [e["action"] for e in log][-5:] == ["create", "rename", "edit", "rename", "edit"]
    assert {e["account"] for e in log[-5:]} == {e["account"] for e in log[-1:]}

    # a code is never given out again: the next grid of the community gets a new one
    del feats.headers["If-Match"]
    assert feats.collection_item_create("grids", _feature(m1))
    assert want not in _unit_codes(http, plan, "community_code", lay.community)
    assert _unit_codes(http, plan, "grid_code", want) == set()
    again = next(iter_free_codes(lay.community, before | {want}, "grid"))
    assert _unit_codes(http, plan, "grid_code", again) == _units_of(
        served.frames, "microgrids", lay.m1
    )


def test_writes_outside_the_territory_get_403_and_save_nothing(served, statuses):
    lay, plan = served.layout, served.plans["scope"]
    http = served.http("admin")
    feats = served.features("scope")
    first = _latest(http, plan)
    theirs = _geom(served.frames, "grids", lay.other)
    _, tag = _read(http, plan, "grids", lay.other)
    feats.headers["If-Match"] = tag
    with pytest.raises(RuntimeError, match="outside the scope"):
        feats.collection_item_update("grids", lay.other, _feature(theirs, name="不是我的"))
    assert statuses[-1] == 403
    with pytest.raises(RuntimeError, match="outside the scope"):
        feats.collection_item_delete("grids", lay.other)
    assert statuses[-1] == 403
    del feats.headers["If-Match"]
    with pytest.raises(RuntimeError, match="outside the scope"):
        feats.collection_item_create("grids", _feature(theirs))
    assert statuses[-1] == 403
    # a viewer may read but not write; without a key, 401
    body = _feature(_geom(served.frames, "microgrids", lay.m1))
    for key, status in (("viewer", 403), (None, 401)):
        r = served.http(key).post("/collections/grids/items", params={"plan": plan}, json=body)
        assert r.status_code == status, r.text
    assert _latest(http, plan) == first
    assert (
        http.get(f"/collections/grids/items/{lay.other}", params={"plan": plan}).headers["ETag"]
        == tag
    )


def test_micro_grids_and_the_answers_of_plain_http(served):
    lay, plan = served.layout, served.plans["micro"]
    http = served.http("planner")
    q = {"plan": plan}
    units = served.frames["units"].to_crs(4326)
    mine = units[(units["parent_code"] == lay.m1) & (units["households"] > 0)]
    unit, geom = str(mine["code"].iloc[0]), mine.geometry.iloc[0]
    micro = served.frames["microgrids"]
    codes = set(micro["code"])  # and the records of vertical micro-grids: codes given out
    codes |= {c for rc in micro["record_codes"].dropna() for c in str(rc).split(",") if c}
    want = next(iter_free_codes(lay.grid, codes, "microgrid"))

    # a new micro-grid of one unit: 201 with its Location, then renamed with PATCH
    r = http.post("/collections/microgrids/items", params=q, json=_feature(geom))
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/collections/microgrids/items/{want}")
    assert r.json()["code"] == want and r.json()["saved"]
    assert _unit_codes(http, plan, "parent_code", want) == {unit}
    _, tag = _read(http, plan, "microgrids", want)
    patch = {"properties": {"name": "一号楼"}}
    r = http.patch(
        f"/collections/microgrids/items/{want}",
        params=q,
        content=json.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json", "If-Match": tag},
    )
    assert r.status_code == 200, r.text
    got, tag2 = _read(http, plan, "microgrids", want)
    assert got["properties"]["name"] == "一号楼" and tag2 != tag
    assert _unit_codes(http, plan, "parent_code", want) == {unit}  # the name alone

    # what the specification says of the rest
    out = http.get(
        f"/collections/microgrids/items/{want}", params=q, headers={"If-None-Match": tag2}
    )
    assert out.status_code == 304
    r = http.put(f"/collections/microgrids/items/{want}", params=q, json=_feature(geom))
    assert r.status_code == 200 and not r.json()["saved"]  # the same units: nothing to save
    r = http.put(f"/collections/units/items/{unit}", params=q, json=_feature(geom))
    assert r.status_code == 405 and "PUT" not in r.headers["Allow"]
    r = http.delete(f"/collections/grids/items/{lay.grid[:12]}999", params=q)
    assert r.status_code == 404
    far = shapely.box(100.0, 20.0, 100.01, 20.01)
    r = http.post("/collections/grids/items", params=q, json=_feature(far))
    assert r.status_code == 400 and r.json()["where"] == "geometry"
    r = http.post(
        "/collections/grids/items", params=q, content="<x/>", headers={"Content-Type": "text/xml"}
    )
    assert r.status_code == 415
    r = http.put(
        f"/collections/microgrids/items/{want}",
        params={**q, "version": 1},
        json=_feature(geom),
    )
    assert r.status_code == 409 and r.json()["where"] == "version"
    writes = {"POST", "PUT", "PATCH", "DELETE"}
    for path, allow in (
        ("/collections/grids/items", {"POST"}),
        (f"/collections/microgrids/items/{want}", {"PUT", "PATCH", "DELETE"}),
        ("/collections/units/items", set()),  # QGIS then offers no editing
        ("/collections/units/items/1", set()),
    ):
        r = http.options(path)
        assert r.status_code == (204 if allow else 405), path
        allowed = {m.strip() for m in r.headers["Allow"].split(",")}
        assert "GET" in allowed and allowed & writes == allow, path

    # deleted: its unit goes back to a neighbouring micro-grid of the same grid
    r = http.delete(f"/collections/microgrids/items/{want}", params=q, headers={"If-Match": tag2})
    assert r.status_code == 200, r.text
    moved = r.json()["moved"]
    assert [m["unit"] for m in moved] == [unit]
    assert moved[0]["from"] == want and moved[0]["to"][:15] == lay.grid


def test_a_geometry_in_cgcs2000_redraws_as_the_same_one_in_crs84(served):
    """QGIS sends a layer's CRS in Content-Crs, in its axis order (EPSG:4490: lat,lon)."""
    lay, plan = served.layout, served.plans["crs"]
    http = served.http("planner")
    q = {"plan": plan}
    both = shapely.union_all(
        [_geom(served.frames, "microgrids", lay.m1), _geom(served.frames, "microgrids", lay.m2)]
    )
    grid = _geom(served.frames, "grids", lay.grid)
    shrunk = grid.difference(both)  # m1 and m2 leave the grid
    latlon = shapely.transform(shrunk, lambda xy: xy[:, ::-1])
    _, tag = _read(http, plan, "grids", lay.grid)
    r = http.put(
        f"/collections/grids/items/{lay.grid}",
        params=q,
        json=_feature(latlon),
        headers={
            "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4490>",
            "If-Match": tag,
            "Content-Type": "application/geo+json",
        },
    )
    assert r.status_code == 200, r.text
    left = _units_of(served.frames, "microgrids", lay.m1) | _units_of(
        served.frames, "microgrids", lay.m2
    )
    assert {m["unit"] for m in r.json()["moved"]} == left
    assert all(
        m["to"][:12] == lay.community and m["to"][:15] != lay.grid for m in r.json()["moved"]
    )
    assert _unit_codes(http, plan, "grid_code", lay.grid) == (
        _units_of(served.frames, "grids", lay.grid) - left
    )
    # the same geometry in CRS84 now changes nothing
    _, tag = _read(http, plan, "grids", lay.grid)
    r = http.put(
        f"/collections/grids/items/{lay.grid}",
        params=q,
        json=_feature(shrunk),
        headers={"If-Match": tag},
    )
    assert r.status_code == 200 and not r.json()["saved"] and r.json()["moved"] == []
    # a geometry over another community's grid takes none of its units: they are ignored
    over = shapely.union_all([shrunk, _geom(served.frames, "grids", lay.other)])
    r = http.put(
        f"/collections/grids/items/{lay.grid}",
        params=q,
        json=_feature(over),
        headers={"If-Match": tag},
    )
    assert r.status_code == 200 and not r.json()["saved"], r.text
    assert set(r.json()["ignored"]) == _units_of(served.frames, "grids", lay.other)


def test_a_deployment_may_require_if_match(demo_plan_frames, tmp_path):
    """With WANGGE_REQUIRE_IF_MATCH a write without If-Match is 428 (RFC 6585)."""
    frames, meta = demo_plan_frames
    store = GpkgStore(tmp_path / "store.gpkg")
    store.save("demo", frames, meta, author="tests")
    key = key_for(store, "admin")
    app = create_app(Settings(require_if_match=True, plan="demo"), store)
    grid = str(frames["grids"]["code"].iloc[0])
    geom = gpd.GeoSeries(frames["grids"].geometry.iloc[:1], crs=frames["grids"].crs).to_crs(4326)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        r = client.put(f"/collections/grids/items/{grid}", json=_feature(geom.iloc[0]))
        assert r.status_code == 428 and r.json()["where"] == "If-Match"
        r = client.delete(f"/collections/grids/items/{grid}")
        assert r.status_code == 428
        r = client.delete(f"/collections/grids/items/{grid}", headers={"If-Match": '"stale"'})
        assert r.status_code == 412
        assert [v["version"] for v in client.get("/plans/demo/versions").json()] == [1]
    store.close()


def test_the_api_description_documents_the_writes(served):
    doc = served.http("admin").get("/api").json()
    item = doc["paths"]["/collections/{layer}/items/{code}"]
    for method in ("put", "patch", "delete"):
        assert {"200", "401", "403", "404", "409", "412", "428"} <= set(item[method]["responses"])
        names = {p["name"] for p in item[method]["parameters"]}
        assert {"If-Match", "plan", "version"} <= names
    post = doc["paths"]["/collections/{layer}/items"]["post"]
    assert "Location" in post["responses"]["201"]["headers"]
    assert "application/geo+json" in post["requestBody"]["content"]
    assert (
        "ETag"
        in doc["paths"]["/collections/{layer}/items/{code}"]["get"]["responses"]["200"]["headers"]
    )


@pytest.fixture(scope="module")
def beijing_frames():
    """The Beijing extract (two Haidian streets) delineated, as plan.gpkg holds it."""
    from wangge.delineate import delineate, plan_frames
    from wangge.geo.validate import validate

    plan = delineate(BEIJING_OSM, seed=3)
    frames = plan_frames(plan, validate(plan.layers, plan.limits))
    table = frames.pop("meta")
    return frames, dict(zip(table["key"], table["value"], strict=True))


def test_the_round_trip_on_beijing_with_plain_http(beijing_frames, tmp_path):
    """The other city, as a client that speaks HTTP alone: a grid created from a polygon
    sent in CGCS2000 (lat,lon, as QGIS sends a layer in EPSG:4490), grown with a merge-patch
    PATCH, a stale If-Match refused, deleted; another community's grid refused (403)."""
    frames, meta = beijing_frames
    lay = _layout(frames)
    store = GpkgStore(tmp_path / "store.gpkg")
    store.save("bj", frames, meta, author="tests")
    planner = {"Authorization": f"Bearer {key_for(store, 'planner', (lay.community,))}"}
    app = create_app(Settings(plan="bj"), store)
    swap = {"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4490>"}
    with TestClient(app, headers=planner) as http:
        before = {f["id"] for f in http.get("/collections/grids/items").json()["features"]}
        want = next(iter_free_codes(lay.community, before, "grid"))
        m1 = _geom(frames, "microgrids", lay.m1)
        latlon = shapely.transform(m1, lambda xy: xy[:, ::-1])
        r = http.post(
            "/collections/grids/items", json=_feature(latlon, name="海淀试点"), headers=swap
        )
        assert r.status_code == 201, r.text
        assert r.headers["Location"].endswith(f"/items/{want}")
        mine = _units_of(frames, "microgrids", lay.m1)
        assert _unit_codes(http, "bj", "grid_code", want) == mine
        _, tag = _read(http, "bj", "grids", want)
        both = shapely.union_all([m1, _geom(frames, "microgrids", lay.m2)])
        patch = json.dumps({"geometry": mapping(both)})
        merge = {"Content-Type": "application/merge-patch+json"}
        r = http.patch(
            f"/collections/grids/items/{want}", content=patch, headers={**merge, "If-Match": tag}
        )
        assert r.status_code == 200, r.text
        grown = mine | _units_of(frames, "microgrids", lay.m2)
        assert _unit_codes(http, "bj", "grid_code", want) == grown
        assert {m["unit"] for m in r.json()["moved"]} == grown - mine
        versions = _latest(http, "bj")
        r = http.delete(f"/collections/grids/items/{want}", headers={"If-Match": tag})
        assert r.status_code == 412 and _latest(http, "bj") == versions
        _, tag = _read(http, "bj", "grids", want)
        r = http.delete(f"/collections/grids/items/{want}", headers={"If-Match": tag})
        assert r.status_code == 200, r.text
        assert {m["unit"] for m in r.json()["moved"]} == grown
        assert all(m["to"][:12] == lay.community for m in r.json()["moved"])
        assert {f["id"] for f in http.get("/collections/grids/items").json()["features"]} == before
        r = http.delete(f"/collections/grids/items/{lay.other}")
        assert r.status_code == 403 and _latest(http, "bj") == versions + 1
    store.close()
