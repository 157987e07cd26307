"""The change report of two versions (issue 23): what a rebalance and an edit changed,
read from the store, and the same report through `wangge changes` and the API's GeoJSON,
on each store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from apitools import auth
from clitools import run
from fastapi.testclient import TestClient
from test_rebalance import drift

from wangge.changes import changes
from wangge.data.plan import read_plan
from wangge.editing import Editor
from wangge.geo import assignment as ge
from wangge.importing import save_plan
from wangge.rebalancing import rebalance_version


@pytest.fixture()
def history(plan_dir, store, tmp_path):
    """A stored demo plan with version 2 a saved rebalance of a seeded drift and version 3
    one unit moved by an edit; (store, plan id, the rebalance's result, the edit's)."""
    plan = read_plan(plan_dir / "plan.gpkg")
    plan_id = f"chg-{tmp_path.name[-12:]}"
    save_plan(store, plan, plan_id, None, "test", "imported")
    editor = Editor(store)
    done = rebalance_version(editor, plan_id, 1, drift(plan, 2), dry_run=False)
    assert done.edit.version.version == 2
    state = editor.state(plan_id, 2)
    grid = ge.level_codes(state.micro, "grid")
    g = state.units.graph
    # a unit with households on the edge of its grid, to a neighbouring grid of its community
    hh = state.units.households
    basic = np.array([c[-3:] < "900" for c in grid])  # not a dedicated grid (901…)
    sizes = pd.Series(grid).value_counts()
    edge = [
        (u, v)
        for u, v in zip(g.eu, g.ev, strict=True)
        if grid[u] != grid[v] and grid[u][:12] == grid[v][:12] and hh[u] > 0
        and basic[u] and basic[v] and sizes[grid[u]] > 2
    ]  # fmt: skip
    assert edge, "no unit on a grid's edge"
    u, v = edge[0]
    unit, to = state.units.codes[u], grid[v]
    edit = editor.edit(plan_id, 2, [(unit, to)], None, None, "one unit", "", False)
    assert edit.version.version == 3
    return store, plan_id, done, (unit, str(grid[u]), to)


def test_the_report_says_what_a_rebalance_and_an_edit_changed(history):
    store, plan_id, done, (unit, src, dst) = history
    editor = Editor(store)
    report = changes(editor, plan_id, 1, 2)
    codes = report.codes
    grids = codes[codes["level"] == "grid"].set_index("code")
    touched = set(grids.index[grids["status"].isin(["created", "changed", "retired"])])
    # the rebalance's own account of what it changed is the report's
    assert touched == set(done.repairs.changed)
    assert set(grids.index[grids["status"] == "created"]) == set(done.repairs.created)
    assert set(grids.index[grids["status"] == "retired"]) == set(done.repairs.retired)
    # a grid not changed has the same units, and its households are the new table's
    before, after = editor.state(plan_id, 1), editor.state(plan_id, 2)
    g1, g2 = ge.level_codes(before.micro, "grid"), ge.level_codes(after.micro, "grid")
    for code, row in grids.iterrows():
        if row["status"] in ("kept", "recounted"):
            assert np.array_equal(np.flatnonzero(g1 == code), np.flatnonzero(g2 == code)), code
            assert row["households_b"] == pytest.approx(after.units.households[g2 == code].sum())
            same = np.allclose(
                before.units.households[g1 == code], after.units.households[g2 == code]
            )
            assert (row["status"] == "kept") == same, code
    assert grids["households_b"].sum() == pytest.approx(after.units.households.sum())
    moved = np.flatnonzero(before.micro != after.micro)
    assert len(report.moved) == len(moved)
    assert report.summary["households_moved"] == pytest.approx(
        after.units.households[moved].sum(), abs=0.01
    )
    # one unit moved by an edit: two grids changed, the rest kept, nothing recounted
    edit = changes(editor, plan_id, 2, 3)
    assert edit.summary["grid"]["changed"] == 2 and edit.summary["grid"]["recounted"] == 0
    assert set(edit.codes.query("level == 'grid' and status == 'changed'")["code"]) == {src, dst}
    assert edit.moved[["unit", "from_grid", "to_grid"]].values.tolist() == [[unit, src, dst]]
    # the same version twice: everything kept
    assert changes(editor, plan_id, 3, 3).summary["grid"]["kept"] == len(after.layers["grids"])


def test_the_command_and_the_api_give_the_same_report(history, tmp_path):
    store, plan_id, _, _ = history
    report = changes(Editor(store), plan_id, 1, 3)
    out = tmp_path / "out"
    out.mkdir()
    res = run(
        "changes", 1, 3, "--plan-id", plan_id, "--store", store.url,
        "--csv", out / "c.csv", "--geojson", out / "c.geojson",
        "--map", out / "c.html", "--pdf", out / "c.pdf",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert report.line() in res.stdout.replace("\n", " ") or report.line()[:40] in res.stdout
    table = pd.read_csv(out / "c.csv", dtype={"code": str}, encoding="utf-8-sig")
    assert table[["level", "code", "status"]].values.tolist() == (
        report.codes[["level", "code", "status"]].values.tolist()
    )
    doc = json.loads((out / "c.geojson").read_text(encoding="utf-8"))
    ids = [f["id"] for f in doc["features"]]
    assert len(ids) == len(set(ids)) and doc["summary"] == report.summary
    assert (out / "c.html").stat().st_size > 0 and (out / "c.pdf").read_bytes()[:5] == b"%PDF-"
    # the latest by default; an unknown version is a clear error (exit 2)
    assert "v1 → v3" in run("changes", 1, "--plan-id", plan_id, "--store", store.url).stdout
    bad = run("changes", 1, 9, "--plan-id", plan_id, "--store", store.url)
    assert bad.returncode == 2 and "not 9" in bad.stderr, bad.stderr

    from wangge.api.app import create_app
    from wangge.api.settings import Settings

    with TestClient(create_app(Settings(), store), headers=auth(store, "viewer")) as client:
        r = client.get(f"/plans/{plan_id}/versions/1/changes/3")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/geo+json")
        body = r.json()
        assert body["summary"] == report.summary
        sides = pd.Series([f["properties"]["side"] for f in body["features"]]).value_counts()
        assert sides["moved"] == len(report.moved)
        assert sides["after"] == len(report.after) and sides["before"] == len(report.before)
        assert client.get(f"/plans/{plan_id}/versions/1/changes/9").status_code == 404


def test_the_report_read_by_query_is_the_one_read_from_both_versions(history):
    """The report is a query on what the versions between wrote (the units whose rows
    differ, each code's totals summed by the database); the long way, both versions'
    states compared, gives the same report for every pair of versions, either way round."""
    from wangge.changes import _by_states

    store, plan_id, _, _ = history
    editor = Editor(store)
    assert editor.unit_rows(plan_id, 1, 3) is not None  # the units were patched, not rewritten
    for a, b in ((1, 2), (2, 3), (1, 3), (3, 1), (2, 2)):
        quick, slow = changes(editor, plan_id, a, b), _by_states(editor, plan_id, a, b)
        for col in ("level", "code", "status", "units_a", "units_b", "name_a", "name_b"):
            assert quick.codes[col].tolist() == slow.codes[col].tolist(), (a, b, col)
        for col in ("households_a", "households_b"):
            np.testing.assert_allclose(quick.codes[col], slow.codes[col], rtol=1e-12)
        pd.testing.assert_frame_equal(quick.moved, slow.moved)
        assert quick.summary == slow.summary
        for side in ("before", "after"):
            q, s = getattr(quick, side), getattr(slow, side)
            assert q["code"].tolist() == s["code"].tolist()
            assert q["status"].tolist() == s["status"].tolist()
            assert q.geometry.geom_equals_exact(s.geometry, 1e-9).all()
        assert quick.moved_units.geometry.geom_equals_exact(slow.moved_units.geometry, 1e-9).all()
        assert quick.credit == slow.credit
