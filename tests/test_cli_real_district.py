"""The ``wangge`` command on a real district's bad files: exit 2 naming the file and the
feature, no traceback, and an earlier ``units.gpkg`` or ``plan.gpkg`` left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from cities_bounds import demo_communities, write_layer
from cities_buildings import demo_buildings_gcj02
from clitools import run

DEMO_OSM = Path(__file__).resolve().parent.parent / "data" / "demo" / "nanjing-xinjiekou.osm"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """A directory holding a good units.gpkg and plan.gpkg from the demo."""
    out = tmp_path_factory.mktemp("earlier")
    proc = run("ingest", DEMO_OSM, "--out", out)
    assert proc.returncode == 0, proc.stderr
    proc = run("delineate", out / "units.gpkg", "--out", out, "--district-code", "320102")
    assert proc.returncode == 0, proc.stderr
    return out


def assert_refused(proc, path: Path, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    line = next(x for x in proc.stderr.splitlines() if x.startswith("error: "))
    assert str(path) in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr
    assert line


def bad_communities(tmp: Path, kind: str) -> Path:
    good = gpd.read_file(demo_communities(DEMO_OSM, tmp / "good.geojson"))
    if kind == "duplicate codes":
        good.loc[1, "代码"] = good.loc[0, "代码"]
        return write_layer(good, tmp / "dup.geojson")
    if kind == "swapped":
        good.geometry = shapely.transform(good.geometry.to_numpy(), lambda xy: xy[:, ::-1])
        return write_layer(good, tmp / "swapped.geojson")
    if kind == "metres as degrees":
        metric = good.to_crs(4549)
        return write_layer(metric.set_crs(4326, allow_override=True), tmp / "metres.geojson")
    if kind == "empty geometry":
        good.loc[2, "geometry"] = shapely.Polygon()
        return write_layer(good, tmp / "empty.geojson")
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("duplicate codes", ("duplicate",)),
        ("swapped", ("swapped",)),
        ("metres as degrees", ("feature",)),
        ("empty geometry", ("feature 3",)),
    ],
)
@pytest.mark.parametrize("command", ["ingest", "delineate"])
def test_bad_community_files_stop_and_lose_nothing(earlier, tmp_path, kind, words, command):
    path = bad_communities(tmp_path, kind)
    target = earlier / ("units.gpkg" if command == "ingest" else "plan.gpkg")
    before = digest(target)
    proc = run(command, DEMO_OSM, "--communities", path, "--out", earlier)
    assert_refused(proc, path, *words)
    assert digest(target) == before


def test_bad_building_file_stops_and_loses_nothing(earlier, tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "b.geojson")
    frame = gpd.read_file(path)
    frame.loc[: len(frame) // 10, "geometry"] = None  # 10 % without geometry: refused
    frame.to_file(path)
    before = digest(earlier / "units.gpkg")
    proc = run("ingest", DEMO_OSM, "--buildings", path, "--out", earlier)
    assert_refused(proc, path, "feature")
    assert digest(earlier / "units.gpkg") == before


def test_given_files_apply_to_osm_input_not_to_a_units_file(earlier):
    proc = run(
        "delineate", earlier / "units.gpkg", "--communities", DEMO_OSM, "--out", earlier / "x"
    )
    assert proc.returncode == 2 and "--communities" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bug_ends_in_one_line_not_a_traceback(monkeypatch, capsys):
    import wangge.cli as cli

    def broken() -> None:
        raise KeyError("boom")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.delenv("WANGGE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 3
    err = capsys.readouterr().err
    assert "unexpected KeyError" in err and "WANGGE_DEBUG" in err and "Traceback" not in err
    monkeypatch.setenv("WANGGE_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main()


def test_a_csv_in_metres_needs_its_crs_and_then_reads(tmp_path):
    frame = gpd.read_file(demo_communities(DEMO_OSM, tmp_path / "c.geojson")).to_crs(4549)
    frame["wkt"] = frame.geometry.to_wkt()
    path = tmp_path / "社区.csv"
    frame.drop(columns="geometry").to_csv(path, index=False)
    proc = run("ingest", DEMO_OSM, "--communities", path, "--out", tmp_path / "a")
    assert_refused(proc, path, "--boundary-crs")
    proc = run(
        "ingest", DEMO_OSM, "--communities", path, "--boundary-crs", "EPSG:4549",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    given = gpd.read_file(tmp_path / "b" / "units.gpkg", layer="given_communities")
    assert sorted(given["code"]) == sorted(frame["代码"].astype(str))


def test_street_land_no_community_covers_is_reported(tmp_path):
    from cities_bounds import demo_streets

    from wangge.geo.crs import metric_crs
    from wangge.given import read_given

    streets = demo_streets(DEMO_OSM, tmp_path / "streets.geojson")
    com = gpd.read_file(demo_communities(DEMO_OSM, tmp_path / "c.geojson"))
    dropped = com.iloc[-1]
    write_layer(com.iloc[:-1], tmp_path / "c7.geojson")
    given = read_given(streets, tmp_path / "c7.geojson", metric_crs(118.78, 32.04))
    left = given.findings[given.findings["kind"] == "street_land_uncovered"]
    assert len(left) == 1 and left["code"].iat[0] == str(dropped["街道代码"])
    lost = gpd.GeoSeries([dropped.geometry], crs=4326).to_crs(metric_crs(118.78, 32.04)).area
    assert abs(left["area_m2"].iat[0] - lost.iat[0]) < 0.01 * lost.iat[0]


def test_empty_and_tiny_given_communities_are_kept_and_flagged(tmp_path):
    import pandas as pd

    from wangge.delineate import delineate
    from wangge.geo.validate import validate

    com = gpd.read_file(demo_communities(DEMO_OSM, tmp_path / "c.geojson")).to_crs(4549)
    g0 = com.geometry.iloc[0]
    x0, y0, _, _ = g0.bounds
    corner = shapely.box(x0, y0, x0 + 120, y0 + 120).intersection(g0)
    com.loc[0, "geometry"] = g0.difference(corner)
    x1, y1 = com.total_bounds[2:]
    extra = com.iloc[[0, 0]].copy()
    extra["代码"] = ["320106001003", "320106001004"]
    extra["名称"] = ["小角社区", "空社区"]
    extra.geometry = [corner, shapely.box(x1 + 500, y1 - 300, x1 + 800, y1)]
    path = write_layer(
        gpd.GeoDataFrame(pd.concat([com, extra]), crs=4549).to_crs(4326), tmp_path / "odd.geojson"
    )
    result = delineate(DEMO_OSM, communities=path)
    communities = result.layers["communities"].set_index("code")
    # the empty box lies 500 m beyond the data (the demo file states no bounds, so the
    # buildings' hull): left out with a finding, not drawn as land of the plan
    found = result.layers["findings"]
    assert "320106001004" not in communities.index
    assert (found.loc[found["kind"] == "outside_data", "code"] == "320106001004").any()
    for code in ("320106001003",):  # kept although it holds no household
        assert communities.loc[code, "flag"] == "given"
        assert communities.loc[code, "households"] == 0
        grids = result.layers["grids"]
        mine = grids[grids["parent_code"] == code]
        assert len(mine) == 1 and (mine["flag"] == "empty").all()
    errors = validate(result.layers, result.limits).query("severity == 'error'")
    assert errors.empty, errors.to_string()


def test_a_sites_file_declares_dedicated_grids_and_bad_ones_are_named(earlier, tmp_path):
    units = gpd.read_file(earlier / "units.gpkg", layer="buildings")
    biggest = units.to_crs(4549).area.idxmax()
    site = units.geometry.iloc[[biggest]].to_crs(4549).buffer(40).to_crs(4326)
    good = write_layer(
        gpd.GeoDataFrame({"名称": ["某单位"], "类型": ["企业"]}, geometry=site.values, crs=4326),
        tmp_path / "sites.geojson",
    )
    out = tmp_path / "plan"
    proc = run("delineate", DEMO_OSM, "--sites", good, "--out", out, "--district-code", "320102")
    assert proc.returncode == 0, proc.stderr
    grids = gpd.read_file(tmp_path / "plan" / "plan.gpkg", layer="grids")
    declared = grids[grids["note"].str.contains("某单位", na=False)]
    assert len(declared) == 1 and declared["grid_type"].iat[0] == "dedicated"
    assert declared["code"].iat[0][-3:] >= "901"
    points = write_layer(
        gpd.GeoDataFrame({"名称": ["点"]}, geometry=site.representative_point().values, crs=4326),
        tmp_path / "points.geojson",
    )
    before = digest(earlier / "plan.gpkg")
    proc = run("delineate", DEMO_OSM, "--sites", points, "--out", earlier)
    assert_refused(proc, points, "polygons", "feature 1")
    assert digest(earlier / "plan.gpkg") == before
