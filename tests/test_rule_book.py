"""The rule book is written once: the size rule, flags from the final plan, vertical
records, and the exit status of every command that writes a plan."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from wangge.geo import assignment as ge
from wangge.geo.delineation import _settle_flags, _vertical_records
from wangge.geo.limits import load_limits
from wangge.geo.validate import limits_check, size_violations

CRS = "EPSG:4549"


def _plan_state(plan):
    """The demo plan as the editor holds it: units, their micro-grids, and the flags."""
    units = plan.layers["units"]
    edges = plan.layers["unit_edges"]
    metric = units.geometry.to_numpy()
    u = ge.units_from_tables(units, edges, metric)
    flags = ge.Flags()
    for name in ("grids", "microgrids"):
        for r in plan.layers[name].itertuples():
            if r.flag:
                flags.flag[r.code] = r.flag
                flags.note[r.code] = r.note
            if name == "microgrids" and r.record_codes and "," in r.record_codes:
                flags.records[r.code] = r.record_codes.count(",") + 1
    return u, units["parent_code"].astype(str).to_numpy().astype(object), flags


def test_editor_and_validator_read_the_size_rule_the_same_way(demo_plan):
    # one statement of the band rule: the live edit check and the polygon validator give
    # the same limits findings, word for word, on the same plan, before and after a move
    u, micro, flags = _plan_state(demo_plan)
    limits = demo_plan.limits
    drawn = {
        (v.level, v.code, v.severity, v.reason) for v in limits_check(demo_plan.layers, limits)
    }
    live = {
        (v.level, v.code, v.severity, v.reason)
        for v in ge.check(u, micro, limits, flags)
        if v.check == "limits"
    }
    assert live == drawn
    # empty one basic grid's micro-grid into nothing but its neighbour: the grid drops
    grids = demo_plan.layers["grids"]
    basic = grids[(grids["grid_type"] == "basic") & (grids["flag"] == "")]
    code = basic["code"].iloc[0]
    moved = micro.copy()
    other = basic["code"].iloc[1]
    target = next(m for m in micro if m.startswith(other))
    mine = np.flatnonzero([m.startswith(code) for m in micro])
    moved[mine[: len(mine) // 2]] = target
    live = [v for v in ge.check(u, moved, limits, flags) if v.check == "limits"]
    sizes = ge.summary(u, moved, "grid")
    for c in (code, other):
        hh = sizes.loc[c, "households"]
        if not 300 <= hh <= 500:
            side = "<" if hh < 300 else ">"
            assert any(
                v.code == c and v.reason.startswith(f"{hh:g} households {side}") for v in live
            )


def test_size_rule_states_the_figures_of_now_not_the_solvers_note():
    limits = load_limits(district_code="320102")
    table = pd.DataFrame(
        {
            "households": [1279.0, 592.0, 250.0, 0.0],
            "population": [0.0] * 4,
            "area_km2": [0.1] * 4,
            "flag": ["oversize", "", "given", "dedicated"],
            "note": ["an indivisible unit of 1239 households > grid ceiling 500", "", "", "x"],
            "records": [1] * 4,
        },
        index=["a", "b", "c", "d"],
    )
    found = {v.code: v for v in size_violations("grid", table, limits)}
    assert found["a"].severity == "warning" and found["a"].reason.startswith(
        "oversize: 1279 households > 500"
    )
    assert found["b"].severity == "error" and found["b"].reason == "592 households > 500"
    assert found["c"].severity == "warning" and "given grid" in found["c"].reason
    assert "d" not in found  # 专属网格: outside the bands by rule


def test_flags_are_settled_on_the_final_units():
    limits = load_limits(district_code="320102")
    frame = gpd.GeoDataFrame(
        {
            "households": [420.0, 700.0, 0.0, 30.0, 90.0],
            "records": [1, 1, 1, 1, 3],
            "flag": ["infeasible", "oversize", "empty", "empty", "vertical"],
            "note": ["why", "big", "none", "none", "floors"],
        },
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(5)],
        crs=CRS,
    )
    grids = frame.iloc[:4].copy()
    _settle_flags(grids, "grid", limits)
    # back in band: no excuse left; still over: kept; still empty: kept; gained: dropped
    assert list(grids["flag"]) == ["", "oversize", "empty", ""]
    assert list(grids["note"]) == ["", "big", "none", ""]
    micro = frame.iloc[[4]].copy()
    _settle_flags(micro, "microgrid", limits)
    assert list(micro["flag"]) == ["vertical"]  # three records of 30: a tower's floors


def test_vertical_records_name_the_tower_not_the_podium_and_sum_per_building():
    # a 0-household podium whose cell holds the tower standing on it (672 households),
    # and a small house in the same polygon
    micro = gpd.GeoDataFrame(
        {
            "code": ["320102001001001001"],
            "flag": ["vertical"],
            "households": [680.0],
            "record_codes": [",".join(f"320102001001001{i:03d}" for i in range(1, 21))],
        },
        geometry=[shapely.box(0, 0, 100, 100)],
        crs=CRS,
    )
    buildings = gpd.GeoDataFrame(
        {
            "building_id": ["podium", "tower", "house"],
            "households": [0.0, 672.0, 8.0],
            "levels": [3.0, 32.0, 2.0],
        },
        geometry=[
            shapely.box(0, 0, 90, 90),
            shapely.box(20, 20, 50, 50),
            shapely.box(92, 92, 99, 99),
        ],
        crs=CRS,
    )
    codes = np.array(["320102001001001001"] * 3, dtype=object)
    rec = _vertical_records(micro, buildings, codes, 2.62)
    assert len(rec) == 20 and rec["code"].is_unique
    assert set(rec["building_id"]) == {"tower"}
    assert rec["tower_households"].sum() == 672 and rec["households"].sum() == 680
    assert (rec["also"] == "house").sum() == 1
    per_record = rec["households"]
    assert per_record.between(15, 35).all()
    # floor ranges of the tower, in order, covering its 32 floors
    assert rec["floors"].iloc[0].startswith("floors 1–") and rec["floors"].iloc[-1].endswith("–32")


def test_demo_vertical_records_sum_to_their_buildings(demo_plan):
    rec = demo_plan.layers["vertical_microgrids"]
    b = demo_plan.layers["buildings"].set_index("building_id")["households"]
    per = rec.groupby("building_id")["tower_households"].sum()
    for bid, also in zip(rec["building_id"], rec["also"], strict=True):
        assert bid not in str(also).split(";")
    extra = pd.Series(
        [x for a in rec["also"] for x in str(a).split(";") if x], dtype=object
    ).value_counts()
    for bid, hh in per.items():
        assert hh + extra.get(bid, 0) == pytest.approx(b[bid])
    micro = demo_plan.layers["microgrids"].set_index("code")
    sums = rec.groupby("polygon_code")["households"].sum()
    assert np.allclose(sums.to_numpy(), micro.loc[sums.index, "households"].to_numpy())


def test_delineate_exits_non_zero_on_a_plan_that_breaks_a_rule(tmp_path, monkeypatch):
    """A fault put into the finished plan (two micro-grids overlapping by a sliver, as a
    building file once made) must end the command with exit 1, a last line that says
    so, and the plan written for inspection; the same run untouched exits 0."""
    from conftest import DEMO_OSM

    from wangge import delineate as job
    from wangge.cli import app

    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["delineate", str(DEMO_OSM), "--out", str(tmp_path / "ok"), "--district-code", "320102"],
    )
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().splitlines()[-1].endswith("is valid: no error-level violation")

    real = job.delineate_units

    def with_overlap(*args, **kwargs):
        result = real(*args, **kwargs)
        micro = result.layers["microgrids"]
        i = micro.index[micro["flag"] == ""][0]
        micro.loc[i, "geometry"] = micro.geometry[i].buffer(3)
        return result

    monkeypatch.setattr(job, "delineate_units", with_overlap)
    bad = runner.invoke(
        app,
        ["delineate", str(DEMO_OSM), "--out", str(tmp_path / "bad"), "--district-code", "320102"],
    )
    assert bad.exit_code == 1, bad.output
    last = bad.output.strip().splitlines()[-1]
    assert "breaks" in last and "error level" in last
    assert (tmp_path / "bad" / "plan.gpkg").exists()
    # and `wangge validate` agrees with delineate on the same file
    again = runner.invoke(app, ["validate", str(tmp_path / "bad" / "plan.gpkg")])
    assert again.exit_code == 1 and "overlap" in again.output


def test_the_study_area_is_the_extract_so_land_between_clusters_has_a_unit():
    """Beijing's file states its bounds: every point of them belongs to the study area,
    and the blocks tile it, empty land included (全覆盖、无缝隙)."""
    from cities_osm import BEIJING_OSM as path

    from wangge.data.osm import header_bounds
    from wangge.ingest import ingest

    result = ingest(path)
    box = gpd.GeoSeries([shapely.box(*header_bounds(path))], crs=4326).to_crs(result.crs)
    area = result.layers["study_area"].to_crs(result.crs).geometry.iloc[0]
    assert shapely.difference(box.iloc[0], area).area < 1.0
    blocks = result.layers["blocks"].to_crs(result.crs)
    assert abs(blocks.area.sum() - area.area) < 1.0
    empty = blocks[~blocks["block_id"].isin(result.layers["buildings"]["block_id"])]
    assert len(empty) > 0  # land without households is a block too, so some grid holds it


def test_grid_aligned_squares_tessellate_into_cells_that_tile_their_block():
    """Square stand-ins on a grid put outline points on common circles, where GEOS's
    Voronoi regions come out invalid and overlapping (3,237 m² in one block of the demo's
    stand-ins) without any error: the cells must still tile the block."""
    from wangge.geo.tessellation import tessellate

    block = shapely.box(0, 0, 200, 200)
    squares = [shapely.box(x, y, x + 20, y + 20) for x in range(10, 190, 40) for y in (10, 90, 170)]
    blocks = gpd.GeoDataFrame({"block_id": ["B1"]}, geometry=[block], crs=CRS)
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"b{i}" for i in range(len(squares))], "block_id": "B1"},
        geometry=squares,
        crs=CRS,
    )
    cells = tessellate(blocks, buildings)
    g = cells.geometry.to_numpy()
    a, b = shapely.STRtree(g).query(g, predicate="overlaps")
    keep = a < b
    assert shapely.area(shapely.intersection(g[a[keep]], g[b[keep]])).sum() < 0.01
    assert abs(shapely.area(g).sum() - block.area) < 0.01
    assert len(cells) == len(squares)


def test_dissolving_never_fills_a_hole_where_another_unit_lies():
    """A sliver hole in a union is filled, unless another part's unit lies in it (the
    shards of a building file's squares made two micro-grids overlap by 1.2 m²)."""
    from wangge.geo.delineation import _dissolve

    shard = shapely.box(4.6, 4.6, 5.4, 5.4)  # 0.64 m², under the 1 m² sliver size
    left = shapely.difference(shapely.box(0, 0, 5, 10), shard)
    right = shapely.difference(shapely.box(5, 0, 10, 10), shard)
    ids, polys = _dissolve(np.array([left, right, shard], dtype=object), np.array([0, 0, 1]))
    assert list(ids) == [0, 1]
    assert shapely.area(shapely.intersection(polys[0], polys[1])) < 1e-6
    # with nothing in it, the same hole is a sliver of the union and is filled
    ids, polys = _dissolve(np.array([left, right], dtype=object), np.array([0, 0]))
    assert polys[0].area == pytest.approx(100.0)


def test_the_district_is_named_by_the_addresses_only_when_they_agree():
    from collections import Counter

    from wangge.geo.district import address_vote

    beijing = Counter({"海淀区": 2, "海淀": 1, "朝阳区": 1})  # as beijing-cau.osm holds them
    code, name, detail = address_vote(beijing, 116.35, 40.0)
    assert (code, name) == ("110108", "海淀区") and "3 of the 4" in detail
    nanjing = Counter({"秦淮区": 6, "玄武区": 5})  # the demo straddles districts
    assert address_vote(nanjing, 118.78, 32.04) is None
    assert address_vote(Counter({"海淀区": 2}), 116.35, 40.0) is None  # too few to say


def test_a_clipped_files_boundary_ways_tell_which_district_holds_the_buildings():
    """Three coded areas whose boundaries the file holds only pieces of: the ways cut the
    buildings' box into faces, each face the area every way along it belongs to, or across
    a way from a labelled face, the way's other area; the area holding most buildings
    names the district. Nothing is said when the ways do not decide or contradict."""
    from wangge.geo.district import boundary_split

    # A holds the middle; B the south-east corner (A|B way), C the north-west (A|C way)
    a_b = shapely.LineString([(0.7, -1), (0.7, 0.4), (2, 0.4)])
    a_c = shapely.LineString([(-1, 0.6), (0.4, 0.6), (0.4, 2)])

    def areas(ways):
        return [
            {"code": code, "name": name, "edges": {w: ways[w] for w in wanted if w in ways}}
            for code, name, wanted in (
                ("110101", "A区", ("ab", "ac")),
                ("110102", "B区", ("ab",)),
                ("110105", "C区", ("ac",)),
            )
        ]

    # 5 buildings in C, 2 in A, 1 in B
    xy = [(0.1, 0.8), (0.2, 0.9), (0.3, 0.7), (0.1, 0.95), (0.2, 0.75)]
    xy += [(0.1, 0.1), (0.5, 0.5), (0.9, 0.1)]
    points = gpd.GeoSeries(shapely.points(np.array(xy, dtype=float)), crs=4326)
    code, name, detail = boundary_split(areas({"ab": a_b, "ac": a_c}), points)
    assert (code, name) == ("110105", "C区")
    assert "C区 110105 5" in detail and "A区 110101 2" in detail and "B区 110102 1" in detail
    # one way between two areas labels neither of its sides
    assert boundary_split(areas({"ab": a_b}), points) is None
    # an A|B way the box's whole height: the middle lies along both ways (A), the east
    # across the A|B way from it (B), the north-west corner across the A|C way (C)
    tall = shapely.LineString([(0.7, -1), (0.7, 2)])
    code, _, detail = boundary_split(areas({"ab": tall, "ac": a_c}), points)
    assert code == "110105" and "B区 110102 1" in detail and "A区 110101 2" in detail
    # ways that contradict each other: an A|B and an A|C way meeting in an L cut one
    # corner off, and both its faces lie along both ways, so both would be A
    ell_b = shapely.LineString([(0.5, -1), (0.5, 0.5)])
    ell_c = shapely.LineString([(-1, 0.5), (0.5, 0.5)])
    assert boundary_split(areas({"ab": ell_b, "ac": ell_c}), points) is None


@pytest.mark.parametrize("city", ["beijing-cau", "nanjing-xinjiekou"])
def test_delineate_on_each_shared_city_with_nothing_but_the_file(tmp_path, city):
    """The file alone makes a valid plan (exit 0) with its own district: Beijing's
    addresses name 海淀区; the Nanjing extract straddles 玄武, 秦淮 and 鼓楼, and the
    pieces of their boundaries it holds put most buildings in 秦淮区. Given another code,
    the run uses it and says where the file differs."""
    from cities_osm import BEIJING_OSM
    from clitools import run

    path = BEIJING_OSM.parent / f"{city}.osm"
    res = run("delineate", path, "--out", tmp_path / "plan")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1].endswith("is valid: no error-level violation")
    district = "110108" if city == "beijing-cau" else "320104"
    assert f"district code {district}" in res.stdout + res.stderr
    grids = pyogrio.read_dataframe(tmp_path / "plan" / "plan.gpkg", layer="grids")
    assert grids["code"].str.startswith(district).all()
    if city == "beijing-cau":
        return
    assert "秦淮区 320104 835" in res.stdout + res.stderr  # of 1,277 buildings
    res = run("delineate", path, "--out", tmp_path / "given", "--district-code", "320102")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "--district-code 320102 differs from the OSM file's" in res.stdout + res.stderr


def test_an_upload_of_empty_geometries_is_refused_in_words():
    """Found by the seeded schemathesis run: a plan whose layers hold only empty
    geometries ended in a GEOSException (500) while its metric CRS was sought."""
    from wangge.data.plan import plan_from_frames
    from wangge.errors import InputError

    empty = gpd.GeoDataFrame(
        {"code": ["320102001"], "parent_code": ["320102"], "households": [0]},
        geometry=[shapely.Polygon()],
        crs=4326,
    )
    with pytest.raises(InputError, match="holds no features"):
        plan_from_frames({"streets": empty}, {}, "upload.geojson")


def test_a_micro_grid_code_used_twice_is_an_error_not_a_crash(demo_plan):
    """An uploaded plan with one micro-grid code on two polygons ended in a 500 (the
    building check indexed by code); it is the code check's error, named."""
    from wangge.geo.validate import validate

    layers = {k: v.copy() for k, v in demo_plan.layers.items() if isinstance(v, gpd.GeoDataFrame)}
    micro = layers["microgrids"]
    micro.loc[micro.index[1], "code"] = micro["code"].iloc[0]
    found = validate(layers, demo_plan.limits)
    twice = found[(found["check"] == "code") & found["reason"].str.contains("used twice")]
    assert len(twice) == 1 and twice["code"].iloc[0] == micro["code"].iloc[0]
