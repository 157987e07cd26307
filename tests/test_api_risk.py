"""The risk and coverage endpoints over each store holding the demo plan with the sample
risk register overlaid and coverage measured: grid risk, a community's register, gaps and
suggested sites, checked against the stored layers."""

from __future__ import annotations

import asyncio
import codecs
import io
import json

import httpx
import numpy as np
import openpyxl
import pandas as pd
import pytest
from apitools import auth

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.plan import plan_from_frames, read_plan
from wangge.geo.rules import load_rules, rules_from_raw
from wangge.importing import save_plan
from wangge.siting import suggest_sites

PLAN = "riskapi"
BARE = "riskbare"
GRID_PROPERTIES = {"code", "level", "colour", "score", "gi_z", "hotspot", "exposed_vulnerable"}
REGISTER_HEADINGS = ["编号", "名称", "风险类别", "风险值", "风险等级", "责任单位", "所属社区"]


class Client:
    """GET requests to the app in process, through httpx's ASGI transport."""

    def __init__(self, app, headers: dict[str, str] | None = None):
        self.app = app
        self.headers = headers or {}

    def get(self, url: str, **params) -> httpx.Response:
        return asyncio.run(self._get(url, params))

    async def _get(self, url: str, params: dict) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=self.headers
        ) as http:
            return await http.get(url, params=params)


def _client(store, path, plan: str) -> Client:
    """A client on ``store`` holding the plan.gpkg at ``path`` as ``plan`` version 1."""
    if not store.versions(plan):  # the PostGIS store is shared by the whole session
        layers, meta = read_plan(path).stored()
        save_plan(
            store, plan_from_frames(layers, meta, str(path)), plan, None, "tests", "risk overlay"
        )
    return Client(create_app(Settings(plan=plan, public_reads=True), store))


@pytest.fixture()
def served(store, risk_plan_dir):
    """A client on each store, and the stored layers it should answer from."""
    client = _client(store, risk_plan_dir / "plan.gpkg", PLAN)
    v = store.resolve(PLAN, None)

    def layer(name: str):
        return store.query(v.plan_id, v.version, name).frame

    return client, layer, v


def _error(r: httpx.Response, status: int, where: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail", "where"} and body["where"] == where, body
    return body


def test_risk_grids_with_level_and_code_filters(served):
    client, layer, _ = served
    stored = layer("grid_risk")
    assert len(stored) == len(layer("grids"))
    r = client.get("/risk/grids")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["plan"] == PLAN
    assert "样例数据" in body["note"]  # the demo register is sample
    assert len(body["features"]) == body["numberReturned"] == len(stored)
    props = [f["properties"] for f in body["features"]]
    assert all(set(p) >= GRID_PROPERTIES for p in props)
    assert sorted(p["code"] for p in props) == sorted(stored["code"])
    red = client.get("/risk/grids", level="red").json()["features"]
    assert len(red) == (stored["level"] == "red").sum() > 0
    assert {f["properties"]["level"] for f in red} == {"red"}
    community = sorted(layer("communities")["code"])[1]
    inside = client.get("/risk/grids", code=community).json()["features"]
    assert len(inside) == stored["code"].str.startswith(community).sum() > 0
    assert all(f["properties"]["code"].startswith(community) for f in inside)
    _error(client.get("/risk/grids", level="purple"), 422, "level")


def _register_rows(layer, community: str) -> tuple[int, int]:
    """Risk points in the community, and zones touching one of its grids."""
    points, zones = layer("risk_points"), layer("risk_zones")
    n_points = points["grid_code"].str.startswith(community).sum()
    touched = zones["grid_codes"].fillna("").str.split(",")
    n_zones = sum(any(c.startswith(community) for c in codes) for codes in touched)
    return int(n_points), int(n_zones)


def test_register_as_csv_and_xlsx(served, store):
    client, layer, _ = served
    client = Client(client.app, auth(store, "viewer"))  # the responsible party needs a key
    # the community with the most risk points among those a risk zone touches
    touched = layer("risk_zones")["grid_codes"].str.split(",").explode().str[:12]
    by_points = layer("risk_points")["grid_code"].str[:12].value_counts()
    community = by_points[by_points.index.isin(set(touched))].index[0]
    n_points, n_zones = _register_rows(layer, community)
    assert n_points and n_zones
    r = client.get("/risk/register", community=community, format="csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert community in r.headers["content-disposition"]
    assert r.content.startswith(codecs.BOM_UTF8)  # Excel opens it as UTF-8
    table = pd.read_csv(io.StringIO(r.content.decode("utf-8-sig")), dtype=str)
    assert set(REGISTER_HEADINGS) <= set(table.columns)
    assert len(table) == n_points + n_zones
    assert table["类型"].str.startswith("风险区").sum() == n_zones
    assert (table["所属社区"] == community).all()
    scores = table["风险值"].astype(float).to_numpy()
    assert (np.diff(scores) <= 0).all()
    assert set(table["风险等级"]) <= {"重大风险", "较大风险", "一般风险", "低风险"}
    assert table["数据说明"].str.contains("样例数据").all()
    x = client.get("/risk/register", community=community, format="xlsx")
    assert x.status_code == 200 and x.headers["content-type"].endswith("spreadsheetml.sheet")
    ws = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == list(table.columns)
    book = pd.DataFrame(rows[1:], columns=rows[0])
    assert book["编号"].tolist() == table["编号"].tolist()
    assert [str(c) for c in book["所属社区"]] == table["所属社区"].tolist()
    assert np.allclose(book["风险值"].astype(float), scores)


def test_register_of_a_place_without_risks_or_a_bad_code(served):
    client, layer, _ = served
    street = layer("communities")["code"].iloc[0][:9]
    body = _error(client.get("/risk/register", community=f"{street}999"), 404, "community")
    assert "no risk points or zones" in body["error"]
    grid_risk = layer("grid_risk")
    quiet = grid_risk[grid_risk[["n_red", "n_orange", "n_yellow", "n_blue"]].sum(axis=1) == 0]
    _error(client.get("/risk/register", community=quiet["code"].iloc[0]), 404, "community")
    for bad in ("12a", "12345", "3201020010011234567"):
        _error(client.get("/risk/register", community=bad), 422, "community")
    _error(client.get("/risk/register", community=street + "001", format="pdf"), 422, "format")


def test_gaps_by_type_and_kind(served):
    client, layer, _ = served
    stored = layer("gaps")
    aed = stored[stored["type"] == "aed"]
    body = client.get("/coverage/gaps", type="aed").json()
    assert len(body["features"]) == len(aed) > 0
    assert {f["properties"]["type"] for f in body["features"]} == {"aed"}
    assert "样例数据" in body["note"]  # every AED of the demo is a sample one
    kind = client.get("/coverage/gaps", type="aed", kind="missing_required").json()["features"]
    assert len(kind) == (aed["kind"] == "missing_required").sum() > 0
    assert {f["properties"]["kind"] for f in kind} == {"missing_required"}
    body = _error(client.get("/coverage/gaps", type="nosuch"), 422, "type")
    for known in ("aed", "clinic", "emergency_shelter"):
        assert known in body["error"]


def test_suggest_matches_suggest_sites_on_the_stored_layers(served):
    client, layer, v = served
    r = client.get("/coverage/suggest", type="aed", k=3)
    assert r.status_code == 200, r.text
    body = r.json()
    props = [f["properties"] for f in body["features"]]
    assert 1 <= len(props) <= 3
    assert [p["rank"] for p in props] == list(range(1, len(props) + 1))
    gains = [p["gain_households"] for p in props]
    assert (np.diff(gains) <= 0).all()
    summary = body["summary"]
    assert summary["type"] == "aed" and summary["k"] == 3
    assert summary["covered_households"] == sum(gains) <= summary["uncovered_households"]
    names = ("network_nodes", "network_edges", "access", "candidates")
    rules = rules_from_raw(json.loads(v.meta["rules_json"]), "plan meta")
    sites, direct = suggest_sites(
        {n: layer(n) for n in names}, v.meta["metric_crs"], rules, "aed", 3
    )
    assert [p["candidate_id"] for p in props] == sites["candidate_id"].tolist()
    assert gains == sites["gain_households"].tolist()
    for key in ("covered_households", "uncovered_households", "coverable_households"):
        assert summary[key] == direct[key], key
    _error(client.get("/coverage/suggest", type="aed", k=0), 422, "k")
    body = _error(client.get("/coverage/suggest", type="nosuch"), 422, "type")
    for known in load_rules().facilities:
        assert known in body["error"]


def test_suggestions_from_sample_facilities_carry_the_sample_note(served):
    client, _, _ = served
    body = client.get("/coverage/suggest", type="aed", k=3).json()
    assert "样例数据" in body.get("note", "")


def test_plan_without_risk_layers_says_to_run_overlay_and_coverage(store, plan_dir):
    client = _client(store, plan_dir / "plan.gpkg", BARE)
    for url, params, job in (
        ("/risk/grids", {}, "wangge overlay"),
        ("/risk/register", {"community": "320102001001"}, "wangge overlay"),
        ("/coverage/gaps", {"type": "aed"}, "wangge coverage"),
    ):
        body = _error(client.get(url, **params), 404, "plan")
        assert job in body["error"], url


def test_suggest_without_coverage_layers_is_404(store, plan_dir):
    client = _client(store, plan_dir / "plan.gpkg", BARE)
    body = _error(client.get("/coverage/suggest", type="aed"), 404, "plan")
    assert "wangge coverage" in body["error"]


def test_an_anonymous_reader_never_gets_names_addresses_or_vulnerable_counts(served, store):
    """With public reads, a caller without a key reads every layer and file without the
    columns that name people or addresses or count one building's vulnerable people; the
    same request with a viewer's key gets them."""
    from wangge.data.privacy import PUBLIC, class_of
    from wangge.data.tiles import TILE_FIELDS

    client, layer, _ = served
    assert all(class_of(n, f) == PUBLIC for n, fields in TILE_FIELDS.items() for f in fields)
    held = {
        n: {c for c in layer(n).columns if class_of(n, c) != PUBLIC}
        for n in ("buildings", "risk_points")
    }
    assert held["buildings"] >= {"elderly", "disabled", "alone"}, held
    assert held["risk_points"] >= {"address", "responsible"}, held
    key = auth(store, "viewer")
    for name, private in held.items():
        page = client.get(f"/collections/{name}/items", limit=10_000).json()
        assert not private & set(page["features"][0]["properties"]), name
        described = client.get(f"/collections/{name}").json()
        assert not private & set(json.dumps(described).split('"')), name
        export = client.get(f"/export/{name}").json()
        assert not private & set(export["features"][0]["properties"]), name
        asked = client.get(f"/collections/{name}/items", properties=",".join(private))
        assert asked.status_code == 400, asked.text  # OGC: an invalid parameter value
        full = Client(client.app, key).get(f"/collections/{name}/items", limit=1)
        assert private <= set(full.json()["features"][0]["properties"]), name
        # the same app, after an anonymous reader: a key still names the private columns
        named = Client(client.app, key).get(
            f"/collections/{name}/items", limit=1, properties=",".join(private)
        )
        assert named.status_code == 200, named.text
        assert private <= set(named.json()["features"][0]["properties"]), name
    community = layer("risk_points")["grid_code"].str[:12].iloc[0]
    register = client.get("/risk/register", community=community, format="csv")
    headings = register.content.decode("utf-8-sig").splitlines()[0].split(",")
    assert "责任单位" not in headings and "地址" not in headings and "编号" in headings
