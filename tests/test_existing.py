"""Existing grid layers adopted onto a plan: codes and names kept, households exact, the
bad grids named, completion touching only them and their neighbours, and bad files
refused naming the file and feature with nothing saved; on each store, the CLI and the API."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from apitools import auth
from cities_osm import BEIJING_OSM, real_file
from clitools import run
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.gpkg_store import GpkgStore
from wangge.data.plan import plan_from_frames, read_plan
from wangge.editing import Editor
from wangge.errors import InputError
from wangge.existing import adopt
from wangge.geo import assignment as ge
from wangge.geo.crs import wgs84_to_gcj02
from wangge.importing import save_plan


def fresh_plan(store, plan_dir: Path) -> str:
    plan = f"adopt-{uuid.uuid4().hex[:8]}"
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(
        store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "for adoption"
    )
    return plan


def perturbed(store, plan: str) -> tuple[gpd.GeoDataFrame, dict]:
    """The plan's grids as a city platform would hold them, with known faults: two
    neighbouring grids merged (over 500 households), one grid cut in half (two under 300,
    one half uncoded), one code not in the plan's scheme, Chinese names on all."""
    v = store.resolve(plan)
    crs = v.meta["metric_crs"]
    g = store.query(plan, v.version, "grids").frame.to_crs(crs)
    g = g[["code", "households", "flag", "geometry"]].reset_index(drop=True)
    basic = g[(g["households"] >= 300) & (g["flag"] != "dedicated")]
    geoms = g.geometry.to_numpy()
    merged = None
    for i in basic.index:
        for j in basic.index:
            same = j > i and g.at[i, "code"][:12] == g.at[j, "code"][:12]
            if same and shapely.intersection(geoms[i].buffer(1), geoms[j].buffer(1)).area > 50:
                merged = (i, j)
                break
        if merged:
            break
    i, j = merged
    cut = next(k for k in basic.index if k not in merged and 300 <= g.at[k, "households"] < 560)
    faults = {"merged": g.at[i, "code"], "gone": g.at[j, "code"], "cut": g.at[cut, "code"]}
    # the cut grid: west and east halves at its centroid
    c = geoms[cut]
    x0, y0, x1, y1 = c.bounds
    mid = c.centroid.x
    west = c.intersection(shapely.box(x0 - 1, y0 - 1, mid, y1 + 1))
    east = c.intersection(shapely.box(mid, y0 - 1, x1 + 1, y1 + 1))
    geoms = geoms.copy()
    geoms[i] = shapely.union(geoms[i], geoms[j])
    geoms[cut] = west
    codes = list(g["code"])
    out = gpd.GeoDataFrame({"code": codes}, geometry=list(geoms), crs=crs)
    out = out.drop(index=j)
    extra = gpd.GeoDataFrame({"code": [None]}, geometry=[east], crs=crs)
    out = gpd.GeoDataFrame(pd.concat([out, extra], ignore_index=True), crs=crs)
    # one code outside the plan's scheme (to be renumbered), kept names in Chinese
    odd = next(k for k in range(len(out)) if out.at[k, "code"] not in faults.values())
    faults["odd"] = out.at[odd, "code"]
    out.loc[odd, "code"] = "XJK-07"
    out["name"] = [f"现状第{k + 1}网格" for k in range(len(out))]
    return out.to_crs(4326), faults


def write_gbk_shp(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """A zipped Shapefile with Chinese column names and GBK attributes, and no .cpg."""
    shp = path.with_suffix(".shp")
    frame.rename(columns={"code": "网格编码", "name": "网格名称"}).to_file(shp, encoding="gbk")
    with zipfile.ZipFile(path, "w") as z:
        for ext in ("shp", "shx", "dbf", "prj"):
            z.write(shp.with_suffix(f".{ext}"), f"grids.{ext}")
    return path


def write_gcj02(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """The layer as an AMap export: GCJ-02 coordinates labelled as lon/lat."""

    def shift(xy):
        return np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))

    out = frame.set_geometry(shapely.transform(frame.geometry.to_numpy(), shift), crs=4326)
    out.rename(columns={"code": "grid_code"}).to_file(path, driver="GeoJSON")
    return path


def units_by_grid(state) -> dict[str, frozenset]:
    grid = ge.level_codes(state.micro, "grid")
    out: dict[str, set] = {}
    for unit, code in zip(state.units.codes, grid, strict=True):
        out.setdefault(code, set()).add(unit)
    return {k: frozenset(v) for k, v in out.items()}


@pytest.fixture()
def adopted(store, plan_dir, tmp_path):
    """Each store holding the demo plan, a faulty grid layer of it adopted and completed."""
    plan = fresh_plan(store, plan_dir)
    frame, faults = perturbed(store, plan)
    path = write_gbk_shp(frame, tmp_path / "现状网格.zip")
    done = adopt(store, plan, path, who="测试", complete=True)
    return store, plan, frame, faults, done


def test_adopted_layer_keeps_codes_names_and_households(adopted):
    store, plan, frame, faults, done = adopted
    assert [v.meta.get("kind") for v in store.versions(plan)][1:] == ["adopted", "complete"]
    report = done.adoption.report
    rows = report[report["source"] == "file"]
    assert len(rows) == len(frame) and (rows["units"] > 0).all()
    given = frame.set_index(np.arange(1, len(frame) + 1))
    well = rows[rows["given_code"].str.fullmatch(r"\d{15}", na=False)]
    assert (well["code"] == well["given_code"]).all() and well["code_kept"].all()
    odd = rows[rows["given_code"] == "XJK-07"].iloc[0]
    # a code outside the scheme: the grid takes the plan's code of its buildings
    assert not odd["code_kept"] and odd["code"] == faults["odd"]
    assert "not 15 digits" in odd["code_note"] and faults["odd"] in odd["code_note"]
    uncoded = rows[rows["given_code"].isna()].iloc[0]
    assert len(uncoded["code"]) == 15 and uncoded["code"] not in set(well["code"])
    # names as the file has them (GBK read back), in the stored grids layer
    grids = store.query(plan, done.version, "grids").frame.set_index("code")
    for r in rows.itertuples():
        assert r.name == given.at[r.feature, "name"]
        assert grids.at[r.code, "name"] == r.name
    # every unit in exactly one micro-grid, households equal at every level
    units = store.query(plan, done.version, "units").frame
    assert units["code"].is_unique and units["parent_code"].str.fullmatch(r"\d{18}").all()
    total = units["households"].sum()
    for layer in ("microgrids", "grids", "communities", "streets"):
        got = store.query(plan, done.version, layer).frame["households"].sum()
        assert got == pytest.approx(total), layer
    micro = store.query(plan, done.version, "microgrids").frame
    assert set(micro["code"]) == set(units["parent_code"])
    assert rows["households"].sum() == pytest.approx(total)


def test_violations_name_the_bad_grids(adopted):
    _, _, _, faults, done = adopted
    report = done.adoption.report.set_index("given_code", drop=False)
    merged = report.loc[faults["merged"]]
    assert merged["households"] > 500 and merged["code"] in done.bad
    assert "> 500" in merged["violations"]
    cut = report.loc[faults["cut"]]
    halves = [cut["code"], report[report["given_code"].isna()].iloc[0]["code"]]
    small = [c for c in halves if report.set_index("code").at[c, "households"] < 300]
    assert small and set(small) <= set(done.bad)  # a half grid under the floor is named
    errors = {v["code"][:15] for v in done.result.violations if v["severity"] == "error"}
    assert errors == set(done.bad)
    assert done.summary()["grids_flagged"] == len(done.bad)


def test_completion_changes_only_bad_grids_and_neighbours(adopted):
    store, plan, _, _, done = adopted
    editor = Editor(store)
    before = editor.state(plan, done.version)
    after = editor.state(plan, done.completed.version.version)
    a, b = units_by_grid(before), units_by_grid(after)
    extra = done.completed.extra
    assert extra["errors_after"] < extra["errors_before"]
    resolved = set(extra["resolved"])
    assert set(done.bad) <= resolved
    nbrs = ge.grid_neighbours(before.units, before.micro)
    reach = set(done.bad)
    for _ in range(extra["rings"]):
        reach |= {n for g in reach for n in nbrs[g]}
    assert resolved <= reach
    untouched = set(a) - resolved
    assert untouched and all(b.get(g) == a[g] for g in untouched)
    # the report lists exactly the grids whose units changed
    changed = {g for g in set(a) | set(b) if a.get(g) != b.get(g)}
    assert set(done.changes["code"]) == changed
    assert changed <= resolved | (set(b) - set(a))
    moved = done.changes
    assert (moved["units_in"] + moved["units_out"] > 0).all()
    assert moved["households_after"].sum() - moved["households_before"].sum() == pytest.approx(0)


def test_gcj02_geojson_adopts_like_wgs84(store, plan_dir, tmp_path):
    plan = fresh_plan(store, plan_dir)
    frame, _ = perturbed(store, plan)
    wgs = adopt(store, plan, write_gbk_shp(frame, tmp_path / "g.zip"))
    path = write_gcj02(frame, tmp_path / "amap.geojson")
    with pytest.raises(InputError, match="gcj02") as exc:
        adopt(store, plan, path)  # shifted, said to be WGS84: refused
    assert "amap.geojson" in exc.value.message
    assert len(store.versions(plan)) == 2
    gcj = adopt(store, plan, path, coords="gcj02")
    assert gcj.version == 3
    grid = [ge.level_codes(x.adoption.micro, "grid") for x in (gcj, wgs)]
    assert np.array_equal(*grid)  # the same grids (adopted onto version 2 this time)
    assert gcj.summary()["units_outside"] == wgs.summary()["units_outside"]


def test_beijing(tmp_path_factory):
    real_file(BEIJING_OSM)
    d = tmp_path_factory.mktemp("bj")
    res = run("delineate", BEIJING_OSM, "--out", d, "--seed", 3, "--district-code", "110108")
    assert res.returncode == 0, res.stderr
    store = GpkgStore(d / "store.gpkg")
    try:
        plan = fresh_plan(store, d)
        frame, faults = perturbed(store, plan)
        done = adopt(store, plan, write_gbk_shp(frame, d / "bj.zip"), complete=True)
        report = done.adoption.report
        assert report.set_index("given_code").loc[faults["merged"], "code"] in done.bad
        units = store.query(plan, done.version, "units").frame
        grids = store.query(plan, done.version, "grids").frame
        assert grids["households"].sum() == pytest.approx(units["households"].sum())
        editor = Editor(store)
        a = units_by_grid(editor.state(plan, done.version))
        b = units_by_grid(editor.state(plan, done.completed.version.version))
        untouched = set(a) - set(done.completed.extra["resolved"])
        assert all(b.get(g) == a[g] for g in untouched)
        assert set(done.changes["code"]) == {g for g in set(a) | set(b) if a.get(g) != b.get(g)}
    finally:
        store.close()


# bad input ---------------------------------------------------------------------------


def _bad_files(frame: gpd.GeoDataFrame, d: Path) -> dict[str, tuple[Path, str]]:
    out = {}
    p = d / "nocode.geojson"
    frame.drop(columns="code").rename(columns={"name": "备注"}).to_file(p, driver="GeoJSON")
    out["no code column"] = (p, "no grid code column")
    dup = frame.copy()
    dup.loc[dup.index[3], "code"] = dup.loc[dup.index[1], "code"]
    p = d / "dup.geojson"
    dup.to_file(p, driver="GeoJSON")
    out["duplicate codes"] = (p, "duplicate grid codes")
    p = d / "empty.geojson"
    doc = json.loads(frame.to_json())
    doc["features"][2]["geometry"] = None
    p.write_text(json.dumps(doc), encoding="utf-8")
    out["empty geometry"] = (p, "empty or missing geometry")
    p = d / "wrongcrs.gpkg"
    frame.set_crs(4549, allow_override=True).to_file(p)  # degrees said to be metres
    out["wrong CRS"] = (p, "look like degrees")
    p = d / "elsewhere.geojson"
    frame.set_geometry(frame.translate(2.0, 0.0)).to_file(p, driver="GeoJSON")
    out["another district"] = (p, "hold only")
    return out


def test_bad_files_name_file_and_feature_and_save_nothing(store, plan_dir, tmp_path):
    plan = fresh_plan(store, plan_dir)
    frame, _ = perturbed(store, plan)
    for what, (path, words) in _bad_files(frame, tmp_path).items():
        with pytest.raises(InputError) as exc:
            adopt(store, plan, path)
        assert words in exc.value.message, what
        assert path.name in exc.value.message, what
        if what in ("duplicate codes", "empty geometry", "wrong CRS"):
            assert "feature" in (exc.value.where or ""), what
        assert len(store.versions(plan)) == 1, what


def test_cli_adopt_and_bad_input(plan_dir, tmp_path):
    target = tmp_path / "store.gpkg"
    store = GpkgStore(target)
    try:
        plan = fresh_plan(store, plan_dir)
        frame, _ = perturbed(store, plan)
    finally:
        store.close()
    good = write_gbk_shp(frame, tmp_path / "grids.zip")
    res = run("adopt", good, "--plan-id", plan, "--store", target, "--complete")
    assert res.returncode == 0, res.stderr
    assert "现状第1网格" in res.stdout and "completion changed" in res.stdout.replace("\n", " ")
    bad = _bad_files(frame, tmp_path)["duplicate codes"][0]
    res = run("adopt", bad, "--plan-id", plan, "--store", target)
    assert res.returncode == 2 and "dup.geojson" in res.stderr and "feature" in res.stderr
    assert "Traceback" not in res.stderr


def test_api_adopt(store, plan_dir, tmp_path):
    plan = fresh_plan(store, plan_dir)
    frame, faults = perturbed(store, plan)
    data = write_gbk_shp(frame, tmp_path / "grids.zip").read_bytes()
    with TestClient(create_app(Settings(), store), headers=auth(store)) as client:
        r = client.post(f"/plans/{plan}/adopt", content=b'{"type": "FeatureCollection"}')
        assert r.status_code == 422 and r.json()["error"]
        r = client.post(f"/plans/{plan}/adopt", content=data, params={"base_version": 7})
        assert r.status_code == 409
        assert len(store.versions(plan)) == 1
        r = client.post(
            f"/plans/{plan}/adopt", content=data, params={"complete": True, "author": "李四"}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["version"]["version"] == 2 and body["completion"]["version"]["version"] == 3
        codes = {g["given_code"]: g for g in body["grids"]}
        assert codes[faults["merged"]]["code"] in body["flagged"]
        assert {c["code"] for c in body["changed"]} <= set(body["completion"]["resolved"]) | {
            c["code"] for c in body["changed"] if c["status"] == "new"
        }
        state = client.get(f"/plans/{plan}/state", params={"version": 2}).json()
        names = {g["code"]: g["name"] for g in state["grids"]}
        assert names[codes[faults["merged"]]["code"]] == codes[faults["merged"]]["name"]
