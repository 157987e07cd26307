"""Who may do what, and where: a role × scope × route matrix generated from the app's routes.

Every route the app serves must declare a policy and a sample request here; a new route
fails :func:`test_every_route_declares_a_policy_and_a_request` until it does both. Each
request is then sent by an anonymous caller, a viewer, a planner of one community, a
planner of another and an admin, on both stores, and the status must be what the policy
says: 401 without a key, 403 for a role too weak, 403 for a planner outside its scope,
and never a denial for a caller that is allowed. Writes outside the scope must leave the
plan, the roster and the audit log as they were.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from apitools import auth
from cities_osm import DEMO_OSM
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.plan import plan_from_frames, read_plan
from wangge.importing import save_plan

#: The policy each route must declare (a change here is a change of who may do what).
POLICIES = {
    "GET /healthz": "public",
    "GET /": "public",
    "GET /conformance": "public",
    "GET /api": "public",
    "GET /editor": "public",
    "GET /editor/static/{path:path}": "public",
    "GET /me": "viewer",
    "GET /audit": "admin",
    "GET /collections": "read",
    "GET /collections/{layer}": "read",
    "GET /collections/{layer}/items": "read",
    "GET /collections/{layer}/items/{code}": "read",
    "POST /collections/{layer}/items": "planner",
    "PUT /collections/{layer}/items/{code}": "planner",
    "PATCH /collections/{layer}/items/{code}": "planner",
    "DELETE /collections/{layer}/items/{code}": "planner",
    "OPTIONS /collections/{layer}/items": "public",
    "OPTIONS /collections/{layer}/items/{code}": "public",
    "GET /coverage/point": "read",
    "POST /coverage/points": "read",
    "GET /coverage/gaps": "read",
    "GET /coverage/suggest": "read",
    "GET /export/{layer}": "read",
    "GET /risk/grids": "read",
    "GET /risk/register": "read",
    "GET /tiles": "read",
    "GET /tiles/{layer}.json": "read",
    "GET /tiles/{layer}/{z}/{x}/{y}.mvt": "read",
    "GET /tileMatrixSets": "public",
    "GET /tileMatrixSets/{tileMatrixSetId}": "public",
    "GET /collections/{layer}/tiles": "read",
    "GET /collections/{layer}/tiles/{tileMatrixSetId}": "read",
    "GET /collections/{layer}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": "read",
    "GET /tiles/{tileMatrixSetId}": "read",
    "GET /tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": "read",
    "GET /basemap/{z}/{x}/{y}.mvt": "read",
    "GET /basemap/style.json": "read",
    "GET /plans": "read",
    "POST /plans": "admin",
    "GET /plans/{plan_id}/versions": "read",
    "GET /plans/{plan_id}/state": "read",
    "GET /plans/{plan_id}/versions/{a}/diff/{b}": "read",
    "GET /plans/{plan_id}/versions/{a}/changes/{b}": "read",
    "POST /plans/{plan_id}/edits": "planner",
    "POST /plans/{plan_id}/complete": "planner",
    "POST /plans/{plan_id}/rebalance": "planner",
    "POST /plans/{plan_id}/rebalance/extract": "planner",
    "POST /plans/{plan_id}/restore": "planner",
    "POST /plans/{plan_id}/names": "planner",
    "POST /plans/{plan_id}/adopt": "admin",
    "GET /plans/{plan_id}/roster": "viewer",
    "PUT /plans/{plan_id}/roster/{code}": "planner",
    "POST /plans/{plan_id}/roster/import": "planner",
    "GET /lookup/address": "read",
    "POST /lookup/addresses": "read",
    "GET /plans/{plan_id}/addresses": "viewer",
    "POST /plans/{plan_id}/addresses": "admin",
}
#: What each policy lets each caller do (True: not refused with 401 or 403).
ALLOWED = {
    "public": {"anonymous", "viewer", "planner", "admin"},
    "read": {"viewer", "planner", "admin"},
    "viewer": {"viewer", "planner", "admin"},
    "planner": {"planner", "admin"},
    "admin": {"admin"},
}
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _routes(app) -> dict[str, str]:
    return {
        k: v
        for k, v in app.state.policies.items()
        if not k.startswith("HEAD ") and k.split(" ", 1)[1] not in FRAMEWORK
    }


def test_every_route_declares_a_policy_and_a_request(tmp_path):
    from wangge.data.gpkg_store import GpkgStore

    app = create_app(Settings(), GpkgStore(tmp_path / "s.gpkg"))
    served = _routes(app)
    undeclared = sorted(k for k, v in served.items() if v == "none")
    assert not undeclared, f"routes without a policy: {undeclared}"
    assert served == POLICIES, "a route's policy changed, or a route has no entry here"
    assert set(served) == set(REQUESTS), "every route needs a sample request in REQUESTS"


def test_a_route_without_a_policy_answers_403_to_everyone(tmp_path):
    from fastapi import APIRouter

    from wangge.api.auth import deny_undeclared
    from wangge.data.gpkg_store import GpkgStore

    store = GpkgStore(tmp_path / "s.gpkg")
    app = create_app(Settings(public_reads=True), store)
    extra = APIRouter()

    @extra.get("/forgotten")
    def forgotten() -> dict:
        return {"secret": 1}

    app.include_router(extra)
    assert deny_undeclared(app)["GET /forgotten"] == "none"
    with TestClient(app) as client:
        for headers in ({}, auth(store, "admin")):
            r = client.get("/forgotten", headers=headers)
            assert r.status_code == 403 and "secret" not in r.text
            assert "declares no access policy" in r.json()["error"]


# the plan and the callers ------------------------------------------------------------------


class World:
    """A stored demo plan, two communities A and B with a movable unit each, and callers."""

    def __init__(self, store, plan_dir):
        self.store = store
        self.plan = f"matrix-{uuid.uuid4().hex[:8]}"
        layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
        save_plan(
            store, plan_from_frames(layers, meta, "plan.gpkg"), self.plan, None, "tests", "matrix"
        )
        self.app = create_app(Settings(plan=self.plan), store)
        self.client = TestClient(self.app)
        self.client.__enter__()
        admin = auth(store, "admin")
        self.pairs = movable_pairs(self.client, self.plan, admin)
        a, b = sorted(self.pairs)[:2]
        self.a, self.b = a, b
        self.headers = {
            "anonymous": {},
            "viewer": auth(store, "viewer", (a,)),
            "planner": auth(store, "planner", (a,)),
            "admin": admin,
        }

    def latest(self) -> int:
        return self.store.resolve(self.plan).version

    def grid(self, community: str) -> str:
        return self.pairs[community]["src"]


def movable_pairs(client, plan, headers) -> dict[str, dict]:
    """Per community: a unit on its grid's edge and a neighbouring grid of the community."""
    q = {"plan": plan, "limit": 10000}
    state = client.get(f"/plans/{plan}/state", headers=headers).json()
    units = client.get("/collections/units/items", params=q, headers=headers).json()["features"]
    edges = client.get("/collections/unit_edges/items", params=q, headers=headers).json()
    by_pos = {int(f["properties"]["code"]): f["properties"] for f in units}
    size = {g["code"]: g["units"] for g in state["grids"]}
    out: dict[str, dict] = {}
    for e in edges["features"]:
        u, v = by_pos[e["properties"]["a"]], by_pos[e["properties"]["b"]]
        for s, t in ((u, v), (v, u)):
            com = s["grid_code"][:12]
            if (
                com not in out
                and s["grid_code"] != t["grid_code"]
                and t["grid_code"][:12] == com
                and s["households"] > 0
                and size[s["grid_code"]] > 2
                and max(s["grid_code"][-3:], t["grid_code"][-3:]) < "900"
            ):
                out[com] = {"unit": s["code"], "src": s["grid_code"], "dst": t["grid_code"]}
    assert len(out) >= 2, "the demo needs two communities with a movable unit"
    return out


@pytest.fixture()
def world(store, plan_dir):
    w = World(store, plan_dir)
    yield w
    w.client.__exit__(None, None, None)


# one sample request per route: (method, path, keyword arguments), made fresh per call -------


def _csv(code: str) -> bytes:
    return f"编码,职务,姓名,电话\n{code},网格长,测试员,13912345678\n".encode()


def _grid_geojson(w: World) -> bytes:
    r = w.client.get("/export/grids", params={"format": "geojson"}, headers=w.headers["admin"])
    assert r.status_code == 200, r.text
    return r.content


def _grid_feature(w: World, community: str) -> dict:
    """The grid of ``community``'s movable pair as a GeoJSON Feature, as read."""
    r = w.client.get(f"/collections/grids/items/{w.grid(community)}", headers=w.headers["admin"])
    assert r.status_code == 200, r.text
    return {"type": "Feature", "geometry": r.json()["geometry"], "properties": {}}


#: A square with no unit in it (a write of it is refused once the caller may write).
NOWHERE = {
    "type": "Polygon",
    "coordinates": [[[100, 20], [100.01, 20], [100.01, 20.01], [100, 20]]],
}
#: A z14 tile over the demo (新街口).
TILE = "14/13597/6660"
#: A level-14 CGCS2000Quad tile over the demo (level/row/column).
CGCS_TILE = "14/5275/27195"
REQUESTS = {
    "GET /healthz": lambda w, c: ("GET", "/healthz", {}),
    "GET /": lambda w, c: ("GET", "/", {}),
    "GET /conformance": lambda w, c: ("GET", "/conformance", {}),
    "GET /api": lambda w, c: ("GET", "/api", {}),
    "GET /editor": lambda w, c: ("GET", "/editor", {}),
    "GET /editor/static/{path:path}": lambda w, c: ("GET", "/editor/static/editor.js", {}),
    "GET /me": lambda w, c: ("GET", "/me", {}),
    "GET /audit": lambda w, c: ("GET", "/audit", {"params": {"plan": w.plan}}),
    "GET /collections": lambda w, c: ("GET", "/collections", {}),
    "GET /collections/{layer}": lambda w, c: ("GET", "/collections/grids", {}),
    "GET /collections/{layer}/items": lambda w, c: (
        "GET",
        "/collections/grids/items",
        {"params": {"limit": 2}},
    ),
    "GET /collections/{layer}/items/{code}": lambda w, c: (
        "GET",
        f"/collections/grids/items/{w.grid(c)}",
        {},
    ),
    "POST /collections/{layer}/items": lambda w, c: (
        "POST",
        "/collections/grids/items",
        {"json": {"type": "Feature", "geometry": NOWHERE, "properties": {}}},
    ),
    "PUT /collections/{layer}/items/{code}": lambda w, c: (
        "PUT",
        f"/collections/grids/items/{w.grid(c)}",
        {"json": _grid_feature(w, c)},
    ),
    "PATCH /collections/{layer}/items/{code}": lambda w, c: (
        "PATCH",
        f"/collections/grids/items/{w.grid(c)}",
        {"json": {"properties": {"name": "矩阵网格"}}},
    ),
    "DELETE /collections/{layer}/items/{code}": lambda w, c: (
        "DELETE",
        f"/collections/grids/items/{w.grid(c)}",
        {"headers": {"If-Match": '"stale"'}},
    ),
    "OPTIONS /collections/{layer}/items": lambda w, c: ("OPTIONS", "/collections/grids/items", {}),
    "OPTIONS /collections/{layer}/items/{code}": lambda w, c: (
        "OPTIONS",
        f"/collections/grids/items/{w.grid(c)}",
        {},
    ),
    "GET /coverage/point": lambda w, c: (
        "GET",
        "/coverage/point",
        {"params": {"lon": 118.78, "lat": 32.04}},
    ),
    "POST /coverage/points": lambda w, c: (
        "POST",
        "/coverage/points",
        {"json": {"points": [{"id": 1, "lon": 118.78, "lat": 32.04}]}},
    ),
    "GET /coverage/gaps": lambda w, c: ("GET", "/coverage/gaps", {}),
    "GET /coverage/suggest": lambda w, c: ("GET", "/coverage/suggest", {}),
    "GET /export/{layer}": lambda w, c: ("GET", "/export/grids", {}),
    "GET /risk/grids": lambda w, c: ("GET", "/risk/grids", {}),
    "GET /risk/register": lambda w, c: ("GET", "/risk/register", {}),
    "GET /tiles": lambda w, c: ("GET", "/tiles", {}),
    "GET /tiles/{layer}.json": lambda w, c: ("GET", "/tiles/grids.json", {}),
    "GET /tileMatrixSets": lambda w, c: ("GET", "/tileMatrixSets", {}),
    "GET /tileMatrixSets/{tileMatrixSetId}": lambda w, c: (
        "GET",
        "/tileMatrixSets/CGCS2000Quad",
        {},
    ),
    "GET /collections/{layer}/tiles": lambda w, c: ("GET", "/collections/grids/tiles", {}),
    "GET /collections/{layer}/tiles/{tileMatrixSetId}": lambda w, c: (
        "GET",
        "/collections/grids/tiles/CGCS2000Quad",
        {},
    ),
    "GET /collections/{layer}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": (
        lambda w, c: ("GET", f"/collections/grids/tiles/CGCS2000Quad/{CGCS_TILE}", {})
    ),
    "GET /tiles/{tileMatrixSetId}": lambda w, c: ("GET", "/tiles/WebMercatorQuad", {}),
    "GET /tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": lambda w, c: (
        "GET",
        f"/tiles/CGCS2000Quad/{CGCS_TILE}",
        {},
    ),
    "GET /tiles/{layer}/{z}/{x}/{y}.mvt": lambda w, c: (
        "GET",
        "/tiles/grids/14/13597/6660.mvt",
        {},
    ),
    "GET /basemap/{z}/{x}/{y}.mvt": lambda w, c: ("GET", "/basemap/14/13597/6660.mvt", {}),
    "GET /basemap/style.json": lambda w, c: ("GET", "/basemap/style.json", {}),
    "GET /plans": lambda w, c: ("GET", "/plans", {}),
    "POST /plans": lambda w, c: (
        "POST",
        "/plans",
        {"params": {"plan": f"{w.plan}-copy"}, "content": b"{}"},
    ),
    "GET /plans/{plan_id}/versions": lambda w, c: ("GET", f"/plans/{w.plan}/versions", {}),
    "GET /plans/{plan_id}/state": lambda w, c: ("GET", f"/plans/{w.plan}/state", {}),
    "GET /plans/{plan_id}/versions/{a}/diff/{b}": lambda w, c: (
        "GET",
        f"/plans/{w.plan}/versions/1/diff/1",
        {},
    ),
    "GET /plans/{plan_id}/versions/{a}/changes/{b}": lambda w, c: (
        "GET",
        f"/plans/{w.plan}/versions/1/changes/1",
        {},
    ),
    "POST /plans/{plan_id}/edits": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/edits",
        {
            "json": {
                "base_version": w.latest(),
                "moves": [{"unit": w.pairs[c]["unit"], "to": w.pairs[c]["dst"]}],
                "dry_run": True,
            }
        },
    ),
    "POST /plans/{plan_id}/complete": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/complete",
        {"json": {"base_version": w.latest(), "grids": [w.grid(c)]}},
    ),
    "POST /plans/{plan_id}/rebalance": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/rebalance",
        {"json": {"base_version": w.latest(), "households": {w.pairs[c]["unit"]: 12.0}}},
    ),
    "POST /plans/{plan_id}/rebalance/extract": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/rebalance/extract",
        {
            "params": {"base_version": w.latest(), "filename": "new.osm"},
            "content": DEMO_OSM.read_bytes(),
        },
    ),
    "POST /plans/{plan_id}/restore": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/restore",
        {"json": {"base_version": w.latest(), "version": w.latest()}},
    ),
    "POST /plans/{plan_id}/names": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/names",
        {"json": {"base_version": w.latest(), "names": {w.grid(c): "矩阵测试网格"}}},
    ),
    "POST /plans/{plan_id}/adopt": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/adopt",
        {"params": {"filename": "grids.geojson"}, "content": _grid_geojson(w)},
    ),
    "GET /plans/{plan_id}/roster": lambda w, c: ("GET", f"/plans/{w.plan}/roster", {}),
    "GET /lookup/address": lambda w, c: ("GET", "/lookup/address", {"params": {"q": "金鹰A座"}}),
    "POST /lookup/addresses": lambda w, c: (
        "POST",
        "/lookup/addresses",
        {"json": {"addresses": [{"id": 1, "address": "金鹰A座"}]}},
    ),
    "GET /plans/{plan_id}/addresses": lambda w, c: ("GET", f"/plans/{w.plan}/addresses", {}),
    "POST /plans/{plan_id}/addresses": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/addresses",
        {"content": "地址,楼栋编号\n矩阵测试路1号,w74657066\n".encode()},
    ),
    "PUT /plans/{plan_id}/roster/{code}": lambda w, c: (
        "PUT",
        f"/plans/{w.plan}/roster/{w.grid(c)}",
        {"json": {"staff": [{"role": "网格长", "name": "测试员", "phone": "13912345678"}]}},
    ),
    "POST /plans/{plan_id}/roster/import": lambda w, c: (
        "POST",
        f"/plans/{w.plan}/roster/import",
        {"content": _csv(w.grid(c)), "headers": {"content-type": "text/csv"}},
    ),
}
#: Routes whose request names a place: sent for community A (inside the planner's scope)
#: and community B (outside).
SCOPED = {
    "PUT /collections/{layer}/items/{code}",
    "PATCH /collections/{layer}/items/{code}",
    "DELETE /collections/{layer}/items/{code}",
    "POST /plans/{plan_id}/edits",
    "POST /plans/{plan_id}/complete",
    "POST /plans/{plan_id}/rebalance",
    "POST /plans/{plan_id}/names",
    "PUT /plans/{plan_id}/roster/{code}",
    "POST /plans/{plan_id}/roster/import",
}


def _send(w: World, route: str, caller: str, community: str):
    method, path, kwargs = REQUESTS[route](w, community)
    headers = {**kwargs.pop("headers", {}), **w.headers[caller]}
    return w.client.request(method, path, headers=headers, **kwargs)


def test_role_matrix(world):
    """Every route × every role: 401 without a key where one is needed, 403 for a role too
    weak, and never a denial for a role that is allowed."""
    w = world
    wrong = []
    for route, policy in POLICIES.items():
        for caller in ("anonymous", "viewer", "planner", "admin"):
            r = _send(w, route, caller, w.a)
            allowed = caller in ALLOWED[policy]
            if allowed and r.status_code in (401, 403):
                wrong.append(f"{route} as {caller}: refused {r.status_code} {r.text[:200]}")
            elif not allowed:
                want = 401 if caller == "anonymous" else 403
                if r.status_code != want:
                    wrong.append(f"{route} as {caller}: {r.status_code}, want {want}")
                elif want == 401 and "bearer" not in r.headers.get("www-authenticate", "").lower():
                    wrong.append(f"{route}: 401 without WWW-Authenticate")
            if r.status_code >= 500:
                wrong.append(f"{route} as {caller}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_scope_matrix(world):
    """Every write that names a place, inside and outside the planner's community: inside
    it is allowed, outside it is 403 and nothing changes — plan, roster or audit log."""
    w = world
    book, roster = w.store.book, w.store.roster
    wrong = []
    for route in sorted(SCOPED):
        r = _send(w, route, "planner", w.a)
        if r.status_code in (401, 403) or r.status_code >= 500:
            wrong.append(f"{route} inside the scope: {r.status_code} {r.text[:200]}")
        before = (w.latest(), len(book.log(w.plan)), roster.table(w.plan).to_dict("records"))
        r = _send(w, route, "planner", w.b)
        if r.status_code != 403:
            wrong.append(f"{route} outside the scope: {r.status_code}, want 403")
        after = (w.latest(), len(book.log(w.plan)), roster.table(w.plan).to_dict("records"))
        if after != before:
            wrong.append(f"{route} outside the scope changed the store")
        r = _send(w, route, "admin", w.b)
        if r.status_code in (401, 403) or r.status_code >= 500:
            wrong.append(f"{route} as admin in B: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_every_way_into_another_community_is_refused(world):
    """A planner of A cannot touch B by a move out of A, a move into A from B, a lock, a
    restore that would undo B's changes, or a completion re-solving B."""
    w = world
    pa, pb = w.pairs[w.a], w.pairs[w.b]
    planner, admin = w.headers["planner"], w.headers["admin"]

    def edit(body, headers=planner):
        return w.client.post(
            f"/plans/{w.plan}/edits", json={"base_version": w.latest(), **body}, headers=headers
        )

    # a unit of A into B's grid, and a unit of B into A's grid
    assert edit({"moves": [{"unit": pa["unit"], "to": pb["dst"]}]}).status_code == 403
    assert edit({"moves": [{"unit": pb["unit"], "to": pa["dst"]}]}).status_code == 403
    # locking or unlocking a grid of B
    assert edit({"moves": [], "locks": [pb["src"]]}).status_code == 403
    # the admin moves a unit in B; restoring the version before it would move it back
    start = w.latest()
    r = edit({"moves": [{"unit": pb["unit"], "to": pb["dst"]}]}, admin)
    assert r.status_code == 201, r.text
    r = w.client.post(
        f"/plans/{w.plan}/restore",
        json={"base_version": w.latest(), "version": start},
        headers=planner,
    )
    assert r.status_code == 403 and "outside the scope" in r.json()["error"]
    # completion of A may run, but re-solves nothing outside A
    r = edit({"moves": [{"unit": pa["unit"], "to": pa["dst"]}]})
    assert r.status_code == 201, r.text
    r = w.client.post(
        f"/plans/{w.plan}/complete",
        json={"base_version": w.latest(), "grids": [pa["dst"]]},
        headers=planner,
    )
    assert r.status_code == 201, r.text
    moved = w.client.get(
        f"/plans/{w.plan}/versions/{w.latest() - 1}/diff/{w.latest()}", headers=planner
    ).json()
    assert all(m["from"].startswith(w.a) and m["to"].startswith(w.a) for m in moved["moved"])
    # the audit log names the planner's account for its writes, with base and grids
    log = w.store.book.log(w.plan)
    mine = log[
        log["action"].isin(["edit", "complete"]) & log["account"].str.startswith("test-planner")
    ]
    assert len(mine) == 2 and mine["base_version"].notna().all()


def test_staff_reach_only_callers_whose_territory_holds_the_grid(world):
    w = world
    grid_a = w.grid(w.a)
    r = _send(w, "PUT /plans/{plan_id}/roster/{code}", "planner", w.a)
    assert r.status_code == 200, r.text
    # a point inside grid A: its centroid
    feature = w.client.get(f"/collections/grids/items/{grid_a}", headers=w.headers["admin"]).json()
    from shapely.geometry import shape

    p = shape(feature["geometry"]).representative_point()
    params = {"lon": p.x, "lat": p.y}
    outsider = auth(w.store, "viewer", (w.b,))
    seen = defaultdict(dict)
    for who, headers in (
        ("viewer-a", w.headers["viewer"]),
        ("planner-a", w.headers["planner"]),
        ("admin", w.headers["admin"]),
        ("viewer-b", outsider),
    ):
        one = w.client.get("/coverage/point", params=params, headers=headers).json()
        batch = w.client.post(
            "/coverage/points", json={"points": [{"lon": p.x, "lat": p.y}]}, headers=headers
        ).json()
        seen[who] = (one["grid"]["staff"], batch["staff"].get(grid_a))
    for who in ("viewer-a", "planner-a", "admin"):
        one, batch = seen[who]
        assert one and one[0]["name"] == "测试员" and batch == one, who
    assert seen["viewer-b"] == (None, None)
    # anonymous callers see no staff even where reads are public
    public = TestClient(create_app(Settings(plan=w.plan, public_reads=True), w.store))
    one = public.get("/coverage/point", params=params).json()
    assert one["grid"]["staff"] is None and "测试员" not in str(one)


def test_the_state_says_which_grids_the_caller_may_change(world):
    w = world
    for caller, want in (("viewer", set()), ("anonymous", None), ("admin", "all")):
        r = w.client.get(f"/plans/{w.plan}/state", headers=w.headers[caller])
        if want is None:
            assert r.status_code == 401
            continue
        grids = r.json()["grids"]
        writable = {g["code"] for g in grids if g["writable"]}
        assert writable == ({g["code"] for g in grids} if want == "all" else want)
    grids = w.client.get(f"/plans/{w.plan}/state", headers=w.headers["planner"]).json()["grids"]
    assert {g["code"] for g in grids if g["writable"]} == {
        g["code"] for g in grids if g["code"].startswith(w.a)
    }
