"""Planner edits through the API on each store: moves make versions, stale bases get 409,
locks hold, diff lists the moved units, restore brings a version back, complete mends
the neighbours, and a bad move names what is wrong and saves nothing."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from apitools import auth
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.plan import plan_from_frames, read_plan
from wangge.importing import save_plan


@pytest.fixture()
def edit_client(store, plan_dir):
    """A client on each store holding a fresh copy of the demo plan, and its id."""
    plan = f"edit-{uuid.uuid4().hex[:8]}"
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "for edits")
    with TestClient(create_app(Settings(), store), headers=auth(store)) as client:
        yield client, plan, store


def boundary_unit(client: TestClient, plan: str, version: int | None = None) -> dict:
    """A unit with households on the edge of its grid, and a neighbouring grid of the same
    community that it touches (from the stored unit graph)."""
    pinned = {"version": version} if version else {}
    state = client.get(f"/plans/{plan}/state", params=pinned).json()
    units = client.get(
        "/collections/units/items", params={"plan": plan, "limit": 10000, **pinned}
    ).json()["features"]
    edges = client.get(
        "/collections/unit_edges/items", params={"plan": plan, "limit": 10000, **pinned}
    ).json()["features"]
    by_pos = {int(f["properties"]["code"]): f["properties"] for f in units}
    grids = {g["code"]: g for g in state["grids"]}
    for e in edges:
        a, b = by_pos[e["properties"]["a"]], by_pos[e["properties"]["b"]]
        for u, v in ((a, b), (b, a)):
            if (
                u["grid_code"] != v["grid_code"]
                and u["grid_code"][:12] == v["grid_code"][:12]
                and u["households"] > 0
                and grids[u["grid_code"]]["units"] > 2
                # basic grids: a dedicated grid (coded from 901) is outside the bands
                and max(u["grid_code"][-3:], v["grid_code"][-3:]) < "900"
            ):
                return {
                    "unit": u["code"],
                    "hh": u["households"],
                    "src": u["grid_code"],
                    "dst": v["grid_code"],
                    "state": state,
                }
    raise AssertionError("no boundary unit found")


def test_move_makes_a_version_with_counts_and_checks(edit_client):
    client, plan, store = edit_client
    pick = boundary_unit(client, plan)
    before = {g["code"]: g["households"] for g in pick["state"]["grids"]}
    r = client.post(
        f"/plans/{plan}/edits",
        json={
            "base_version": 1,
            "moves": [{"unit": pick["unit"], "to": pick["dst"]}],
            "author": "张三",  # ignored: the account is the author
            "comment": "move one building",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"]["version"] == 2 and body["saved"]
    who = client.get("/me").json()["name"]
    assert body["version"]["author"] == who and body["version"]["kind"] == "edit"
    assert [m["unit"] for m in body["moved"]] == [pick["unit"]]
    assert body["moved"][0]["to"].startswith(pick["dst"])
    after = {g["code"]: g["households"] for g in body["grids"]}
    assert after[pick["src"]] == before[pick["src"]] - pick["hh"]
    assert after[pick["dst"]] == before[pick["dst"]] + pick["hh"]
    # the answer says what each step took (figures: bench/bench_edit.py), not how fast
    assert {"check", "derive", "save"} <= set(body["timings"]), body["timings"]
    assert all(ms >= 0 for ms in body["timings"].values()), body["timings"]
    # the stored layers agree: the unit's new parent, the grids' households, and the
    # grid polygons are the dissolve of their units
    v2 = store.resolve(plan, 2)
    units = store.query(plan, 2, "units", codes=[pick["unit"]]).frame
    assert units["grid_code"].iat[0] == pick["dst"]
    grids = store.query(plan, 2, "grids").frame.set_index("code")
    assert grids.loc[pick["dst"], "households"] == after[pick["dst"]]
    all_units = store.query(plan, 2, "units").frame
    mine = all_units[all_units["grid_code"] == pick["dst"]].to_crs(v2.meta["metric_crs"])
    poly = grids.loc[[pick["dst"]]].to_crs(v2.meta["metric_crs"]).geometry.iat[0]
    assert abs(mine.union_all().area - poly.area) < 1.0
    # the overlay's per-grid layers are kept but marked stale
    assert "stale_layers" in v2.meta
    # the state of the new version shows the same counts
    state = client.get(f"/plans/{plan}/state").json()
    assert state["version"] == 2
    assert {g["code"]: g["households"] for g in state["grids"]}[pick["dst"]] == after[pick["dst"]]


def test_stale_base_gets_409_and_nothing_is_saved(edit_client):
    client, plan, store = edit_client
    pick = boundary_unit(client, plan)
    move = {"unit": pick["unit"], "to": pick["dst"]}
    assert (
        client.post(f"/plans/{plan}/edits", json={"base_version": 1, "moves": [move]}).status_code
        == 201
    )
    r = client.post(f"/plans/{plan}/edits", json={"base_version": 1, "moves": [move]})
    assert r.status_code == 409, r.text
    assert r.json()["where"] == "base_version" and "latest is 2" in r.json()["error"]
    assert [v.version for v in store.versions(plan)] == [1, 2]
    for path in ("complete", "restore"):
        body = {"base_version": 1} | ({"version": 1} if path == "restore" else {})
        assert client.post(f"/plans/{plan}/{path}", json=body).status_code == 409


def test_bad_moves_name_the_problem_and_save_nothing(edit_client):
    client, plan, store = edit_client
    pick = boundary_unit(client, plan)
    cases = [
        ({"unit": "no-such-unit", "to": pick["dst"]}, "moves.unit"),
        ({"unit": pick["unit"], "to": "320102999999999"}, "moves.to"),
        ({"unit": pick["unit"], "to": "12345"}, "moves.to"),
    ]
    for move, where in cases:
        r = client.post(f"/plans/{plan}/edits", json={"base_version": 1, "moves": [move]})
        assert r.status_code in (404, 422), r.text
        assert r.json()["where"] == where, r.json()
    r = client.post(f"/plans/{plan}/edits", json={"base_version": 1, "moves": [{"unit": 1}]})
    assert r.status_code == 422
    for path, body, where in (
        ("complete", {"grids": ["320102999999999"]}, "grids"),
        ("complete", {"locks": ["320102999999999"]}, "locks"),
        ("restore", {"version": 99}, "version"),
    ):
        r = client.post(f"/plans/{plan}/{path}", json={"base_version": 1, **body})
        assert r.status_code in (404, 422), r.text
        assert r.json()["where"] == where, r.json()
    assert [v.version for v in store.versions(plan)] == [1]


def test_locks_refuse_moves_and_persist(edit_client):
    client, plan, store = edit_client
    pick = boundary_unit(client, plan)
    r = client.post(f"/plans/{plan}/edits", json={"base_version": 1, "locks": [pick["dst"]]})
    assert r.status_code == 201 and r.json()["locks"] == [pick["dst"]]
    assert store.resolve(plan).meta["locks"] == [pick["dst"]]
    state = client.get(f"/plans/{plan}/state").json()
    assert state["locks"] == [pick["dst"]]
    assert {g["code"]: g["locked"] for g in state["grids"]}[pick["dst"]] is True
    r = client.post(
        f"/plans/{plan}/edits",
        json={"base_version": 2, "moves": [{"unit": pick["unit"], "to": pick["dst"]}]},
    )
    assert r.status_code == 422 and r.json()["where"] == pick["dst"]
    assert "locked" in r.json()["error"]
    r = client.post(f"/plans/{plan}/edits", json={"base_version": 2, "locks": ["320102999999999"]})
    assert r.status_code == 422 and r.json()["where"] == "locks"


def test_dry_run_checks_without_saving(edit_client):
    client, plan, store = edit_client
    pick = boundary_unit(client, plan)
    r = client.post(
        f"/plans/{plan}/edits",
        json={
            "base_version": 1,
            "moves": [{"unit": pick["unit"], "to": pick["dst"]}],
            "dry_run": True,
        },
    )
    assert r.status_code == 201 and r.json()["saved"] is False
    assert r.json()["version"]["version"] == 1 and len(r.json()["moved"]) == 1
    assert [v.version for v in store.versions(plan)] == [1]


def test_named_version_diff_and_restore(edit_client):
    client, plan, store = edit_client
    pick = boundary_unit(client, plan)
    move = {"unit": pick["unit"], "to": pick["dst"]}
    client.post(f"/plans/{plan}/edits", json={"base_version": 1, "moves": [move]})
    r = client.post(f"/plans/{plan}/edits", json={"base_version": 2, "name": "方案A"})
    assert r.status_code == 201 and r.json()["moved"] == []
    versions = client.get(f"/plans/{plan}/versions").json()
    assert [(v["version"], v["name"], v["kind"]) for v in versions] == [
        (1, "", "import"),
        (2, "", "edit"),
        (3, "方案A", "save"),
    ]
    d = client.get(f"/plans/{plan}/versions/1/diff/3").json()
    assert d["count"] == 1 and d["moved"][0]["unit"] == pick["unit"]
    assert d["moved"][0]["from"][:15] == pick["src"] and d["moved"][0]["to"][:15] == pick["dst"]
    assert d["grids"] == sorted([pick["src"], pick["dst"]])
    assert client.get(f"/plans/{plan}/versions/2/diff/3").json()["count"] == 0
    r = client.post(f"/plans/{plan}/restore", json={"base_version": 3, "version": 1})
    assert r.status_code == 201 and r.json()["version"]["version"] == 4
    assert client.get(f"/plans/{plan}/versions/1/diff/4").json()["count"] == 0
    # a kept layer is shared, not copied: version 3 (no moves) stores no grid rows itself
    infos = {i.name: i for i in store.layers(plan, 3)}
    assert infos["grids"].span(3)[2] == 2 and infos["buildings"].span(3)[2] < 3
    g1 = store.query(plan, 1, "grids").frame
    g4 = store.query(plan, 4, "grids").frame
    assert np.allclose(g1["households"], g4["households"])
    assert client.get(f"/plans/{plan}/versions/1/diff/99").status_code == 404


def test_complete_mends_the_neighbours_of_an_edit(edit_client):
    client, plan, store = edit_client
    state = client.get(f"/plans/{plan}/state").json()
    limits = state["limits"]["grid"]
    # empty a grid into its neighbour until the neighbour is over its ceiling
    pick = boundary_unit(client, plan)
    src, dst = pick["src"], pick["dst"]
    units = client.get("/collections/units/items", params={"plan": plan, "limit": 10000}).json()[
        "features"
    ]
    moving = [f["properties"]["code"] for f in units if f["properties"]["grid_code"] == src]
    r = client.post(
        f"/plans/{plan}/edits",
        json={"base_version": 1, "moves": [{"unit": u, "to": dst} for u in moving]},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    over = {g["code"]: g["households"] for g in body["grids"]}
    assert over[dst] > limits["hi"]
    assert any(v["code"] == dst and v["check"] == "limits" for v in body["violations"])
    assert all(v["bbox"] is None or len(v["bbox"]) == 4 for v in body["violations"])
    r = client.post(f"/plans/{plan}/complete", json={"base_version": 2, "grids": [dst]})
    assert r.status_code == 201, r.text
    done = r.json()
    assert done["version"]["kind"] == "complete" and done["moved"]
    assert dst in done["completion"]["resolved"]
    assert done["completion"]["errors_after"] < done["completion"]["errors_before"]
    grid_errors = [
        v for v in done["violations"] if v["level"] == "grid" and v["severity"] == "error"
    ]
    assert not grid_errors, grid_errors
    # every unit still has one micro-grid, the grids still tile the district
    v = store.resolve(plan, done["version"]["version"])
    grids = store.query(plan, v.version, "grids").frame.to_crs(v.meta["metric_crs"])
    total = store.query(plan, 1, "grids").frame.to_crs(v.meta["metric_crs"]).area.sum()
    # within the validator's cover tolerance (a millionth of the area: WGS84 round trips)
    assert abs(grids.area.sum() - total) < 1e-6 * total
    assert abs(grids.union_all().area - total) < 1e-6 * total


def test_plan_without_units_is_not_editable(store, tmp_path):
    import geopandas as gpd
    import shapely

    plan = f"bare-{uuid.uuid4().hex[:8]}"
    frame = gpd.GeoDataFrame(
        {"code": ["320102001"], "parent_code": ["320102"], "households": [1.0]},
        geometry=[shapely.box(118.7, 32.0, 118.8, 32.1)],
        crs=4326,
    )
    store.save(plan, {"streets": frame})
    with TestClient(create_app(Settings(), store), headers=auth(store)) as client:
        r = client.get(f"/plans/{plan}/state")
        assert r.status_code == 422 and r.json()["where"] == "units"
        assert "cannot be edited" in r.json()["error"]


def test_a_store_error_after_the_commit_still_answers_the_saved_version(edit_client, monkeypatch):
    """Carrying the cached tiles reads the store after the version is committed; when that
    read fails (a statement timeout under load), the answer is still the 201 of the saved
    version, not an error that tells the planner nothing was saved."""
    import sqlite3

    import sqlalchemy as sa

    client, plan, store = edit_client
    pick = boundary_unit(client, plan)
    failure = (
        sqlite3.OperationalError("database is locked")
        if type(store).__name__ == "GpkgStore"
        else sa.exc.OperationalError("SELECT", {}, Exception("canceling statement"))
    )

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(type(store), "layer_infos", fail)
    r = client.post(
        f"/plans/{plan}/edits",
        json={"base_version": 1, "moves": [{"unit": pick["unit"], "to": pick["dst"]}]},
    )
    monkeypatch.undo()
    assert r.status_code == 201, r.text
    assert r.json()["version"]["version"] == 2 and r.json()["tiles"]["carried"] is False
    assert store.latest(plan) == 2


def test_a_building_inside_a_moved_unit_moves_with_it(edit_client):
    """A building inside a larger one has no cell of its own: its households are counted
    in the unit that holds it. Moving that unit moves the building too (it kept its old
    micro-grid before, so the saved plan counted its households in no micro-grid)."""
    import shapely

    from wangge.data.plan import read_stored
    from wangge.editing import Editor
    from wangge.geo.validate import validate

    _, plan, store = edit_client
    editor = Editor(store)
    s = editor.state(plan, 1)
    b = s.layers["buildings"]
    units = s.unit_frame
    own = set(units["building_id"].dropna().astype(str))
    nested = b[~b["building_id"].astype(str).isin(own) & (b["households"] > 0)]
    assert len(nested), "the demo has buildings inside larger ones"
    micro = s.micro
    g = s.units.graph
    pairs = list(zip(g.eu, g.ev, strict=True)) + list(zip(g.ev, g.eu, strict=True))
    for _, row in nested.iterrows():
        at = np.flatnonzero(
            shapely.within(shapely.point_on_surface(row.geometry), units.geometry.to_numpy())
        )
        if not len(at):
            continue
        u = int(at[0])
        # a neighbouring micro-grid of the same community (of the grid or the next one)
        to = {micro[v] for a, v in pairs if a == u and micro[v] != micro[u]}
        to = {c for c in to if c[:12] == micro[u][:12] and c[12:15] < "900"}
        if to:
            break
    else:
        raise AssertionError("no nested building in a unit beside another micro-grid")
    unit = str(s.units.codes[u])
    done = editor.edit(plan, 1, [(unit, sorted(to)[0])], None, None, "nested", "", False)
    saved = read_stored(store, plan, done.version.version)
    after_units = saved.frame("units").set_index(saved.frame("units")["code"].astype(str))
    after_b = saved.frame("buildings").set_index("building_id")
    assert after_b.loc[row["building_id"], "microgrid_code"] == after_units.loc[unit, "parent_code"]
    errors = validate(saved.metric_layers(), saved.limits)
    sums = errors[
        (errors["check"].isin(["atomic", "households"])) & (errors["severity"] == "error")
    ]
    assert sums.empty, sums.to_dict("records")
