"""Building files that gave a wrong answer without a word: floors in metres, ids that are
no ids, a shifted datum read as WGS84, and the CRS hint for a file in metres without one.

Every file is written into ``tmp_path`` from the Nanjing demo or the Beijing extract
(© OpenStreetMap contributors, ODbL 1.0) by tests/cities_buildings.py.
"""

from __future__ import annotations

import dataclasses
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from cities_bounds import demo_communities
from cities_buildings import osm_building_table, write_buildings
from cities_osm import BEIJING_OSM, DEMO_OSM, real_file
from clitools import run

from wangge.data.boundaries import read_units
from wangge.data.building_datum import check_datum
from wangge.data.buildings import read_buildings
from wangge.data.floors import read_cell
from wangge.data.osm import read_osm
from wangge.errors import InputError
from wangge.geo import households as geo_households
from wangge.geo.crs import gauss_kruger_epsg, metric_crs, projected_crs_hint
from wangge.ingest import ingest

CITIES = {"nanjing": (DEMO_OSM, 4549), "beijing": (BEIJING_OSM, 4548)}


@pytest.fixture(scope="module", params=list(CITIES))
def city(request):
    """An OSM extract, its path and the EPSG code of its CGCS2000 3-degree zone."""
    path, epsg = CITIES[request.param]
    path = real_file(path)
    return request.param, path, read_osm(path), epsg


def _households(extract, frame: gpd.GeoDataFrame) -> int:
    c = extract.buildings.geometry.union_all().centroid
    crs = metric_crs(c.x, c.y)
    layers = [f.to_crs(crs) for f in (frame, extract.landuse, extract.facilities)]
    est = geo_households.estimate_households(*layers, geo_households.load_params())
    return int(est["households"].sum())


def _kinds(bf) -> list[str]:
    return list(bf.findings["kind"])


def _tags(column: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in column]


# ------------------------------------------------------------------ floors with a unit


def test_floors_given_in_metres_are_read_as_heights(city, tmp_path):
    """A Floor column holding `9m` (three levels of 3 m) was read as 9 floors: the demo
    gave 32,624 households for 27,375 when its heights were typed so."""
    _, osm, extract, _ = city
    table = osm_building_table(osm, coords="wgs84").drop(columns="height")
    plain = read_buildings(write_buildings(table, tmp_path / "floors.geojson"))
    levels = table["Floor"].to_numpy()
    has = ~np.isnan(levels)
    assert has.sum() >= 5
    metres = table.assign(Floor=[f"{3 * v:g}m" if v == v else None for v in levels])
    bf = read_buildings(write_buildings(metres, tmp_path / "metres.geojson"))
    assert bf.frame["levels_tag"].isna().all()
    assert (bf.frame.loc[has, "height_tag"].astype(float) == 3 * levels[has]).all()
    assert _households(extract, bf.frame) == _households(extract, plain.frame)
    (detail,) = bf.findings.loc[bf.findings["kind"] == "floors read as height", "detail"]
    assert detail.startswith("Floor holds") and f"{has.sum()} values" in detail


def test_the_demos_heights_typed_into_the_floor_column(tmp_path):
    """The demo's own heights, typed as `24m` into Floor with no height column, estimate
    what the height column estimates."""
    extract = read_osm(DEMO_OSM)
    table = osm_building_table(DEMO_OSM, coords="wgs84")
    heights = table["height"].to_numpy()
    as_height = read_buildings(write_buildings(table.drop(columns="Floor"), tmp_path / "h.gpkg"))
    typed = table.drop(columns="height").assign(
        Floor=[f"{h:g}m" if h == h else None for h in heights]
    )
    bf = read_buildings(write_buildings(typed, tmp_path / "typed.gpkg"))
    assert _households(extract, bf.frame) == _households(extract, as_height.frame)


@pytest.mark.parametrize(
    ("cell", "value", "unit", "how"),
    [
        ("12", 12, "", ""),
        (12.0, 12, "", ""),
        ("12层", 12, "floors", ""),
        ("12F", 12, "floors", ""),
        ("12 floors", 12, "floors", ""),
        ("１２层", 12, "floors", ""),
        ("十二层", 12, "floors", ""),
        ("两层", 2, "floors", ""),
        ("12层以上", 12, "floors", ""),
        ("9m", 9, "m", ""),
        ("9 米", 9, "m", ""),
        ("9.5 metres", 9.5, "m", ""),
        ("30ft", 30 * 0.3048, "m", ""),
        ("3-5", 4, "", "range"),
        ("3~5层", 4, "floors", "range"),
        ("三至五层", 4, "floors", "range"),
        ("地上12层地下2层", 12, "floors", ""),
        ("12层(地下2层)", 12, "floors", ""),
        ("-2", -2, "", ""),
    ],
)
def test_a_floor_cell_as_people_type_it(cell, value, unit, how):
    got = read_cell(cell)
    assert math.isclose(got.value, value) and got.unit == unit and got.how == how


@pytest.mark.parametrize(
    ("cell", "how"),
    [
        ("", "blank"),
        (None, "blank"),
        (float("nan"), "blank"),
        ("地下1层", "underground"),
        ("B1", "underground"),
        ("-1层", "underground"),
        ("abc", "unreadable"),
        ("12/15", "unreadable"),
    ],
)
def test_a_floor_cell_with_no_floors_above_ground(cell, how):
    got = read_cell(cell)
    assert np.isnan(got.value) and got.how == how


def test_floor_and_height_columns_read_and_reported(tmp_path):
    """Each kind of cell in one file: the values, and a finding naming the column or row."""
    floors = ["12层", "12F", "3-5", "", "地下1层", "9m", "十二层", "6", "abc", "地上7层地下1层"]
    heights = [None, None, None, "18", None, "30", None, "8层", None, None]
    table = osm_building_table(DEMO_OSM, coords="wgs84").iloc[: len(floors)].copy()
    table["Floor"], table["height"] = floors, heights
    bf = read_buildings(write_buildings(table, tmp_path / "cells.csv"))
    lv = _tags(bf.frame["levels_tag"])
    ht = _tags(bf.frame["height_tag"])
    assert lv == ["12", "12", "4", None, None, None, "12", "6", None, "7"]
    # 9m: a height, but the height column's own 30 wins; 8层 in the height column: floors,
    # but the floor column's own 6 wins
    assert ht == [None, None, None, "18", None, "30", None, None, None, None]
    f = bf.findings
    by_row = f.dropna(subset=["row"]).set_index("row")
    assert "below ground only" in by_row.loc[6, "detail"]  # 地下1层, header = row 1
    assert "'abc' is not a number" in by_row.loc[10, "detail"]
    (ranges,) = f.loc[f["kind"] == "floors range", "detail"]
    assert ranges.startswith("Floor holds 1 ranges ('3-5'; row 4)")
    (moved,) = f.loc[f["kind"] == "floors read as height", "detail"]
    assert "'9m'" in moved and "height gives its own, which wins" in moved
    (moved,) = f.loc[f["kind"] == "height read as floors", "detail"]
    assert "'8层'" in moved and "Floor gives its own, which wins" in moved
    assert f.loc[f["row"] == 5].empty  # a blank cell is no finding


def test_a_height_in_floors_fills_where_the_floor_column_is_blank(tmp_path):
    table = osm_building_table(DEMO_OSM, coords="wgs84").iloc[:4].copy()
    table["Floor"] = [None, "5", None, None]
    table["height"] = ["8层", "15", "21 m", "十层"]
    bf = read_buildings(write_buildings(table, tmp_path / "h.csv"))
    assert _tags(bf.frame["levels_tag"]) == ["8", "5", None, "10"]
    assert _tags(bf.frame["height_tag"]) == [None, "15", "21", None]
    (detail,) = bf.findings.loc[bf.findings["kind"] == "height read as floors", "detail"]
    assert "2 values" in detail and "'8层', '十层'" in detail


def test_bare_numbers_in_a_column_of_metres_are_pointed_out(tmp_path):
    table = osm_building_table(DEMO_OSM, coords="wgs84").iloc[:6].drop(columns="height")
    table["Floor"] = ["9m", "12m", "15m", "18", "6m", "21m"]
    bf = read_buildings(write_buildings(table, tmp_path / "mixed.csv"))
    assert _tags(bf.frame["levels_tag"]) == [None, None, None, "18", None, None]
    (detail,) = bf.findings.loc[bf.findings["kind"] == "floors read as height", "detail"]
    assert "1 bare numbers ('18'; row 5) are read as floors: check them" in detail


# ------------------------------------------------------------------ ids that are no ids


@pytest.mark.parametrize(
    ("values", "said"), [(0, "is '0' on every feature"), (None, "is empty"), ("A", "'A'")]
)
def test_an_id_column_that_tells_no_building_apart_is_ignored(values, said, tmp_path):
    """ArcGIS gives a new shapefile an Id of 0 on every feature: it was refused as
    `duplicate building ids` with no way forward."""
    table = osm_building_table(DEMO_OSM, coords="wgs84").iloc[:30].copy()
    table["Id"] = values
    if values is None:
        table["Id"] = pd.Series([None] * len(table), dtype="string")
    bf = read_buildings(write_buildings(table, tmp_path / "ids.zip"))
    assert bf.frame["building_id"].tolist() == [f"b{i}" for i in range(1, 31)]
    ignored = bf.findings.loc[bf.findings["kind"] == "id column ignored", "detail"].tolist()
    assert any(d.startswith("id column 'Id'") and said in d for d in ignored), ignored


def test_a_constant_id_gives_way_to_the_next_id_column(tmp_path):
    table = osm_building_table(DEMO_OSM, coords="wgs84").iloc[:30].copy()
    table["Id"] = 0
    table["OBJECTID"] = np.arange(501, 531)
    bf = read_buildings(write_buildings(table, tmp_path / "ids.csv"))
    assert bf.frame["building_id"].tolist() == [str(i) for i in range(501, 531)]
    assert _kinds(bf).count("id column ignored") == 1


def test_one_building_keeps_its_id(tmp_path):
    table = osm_building_table(DEMO_OSM, coords="wgs84").iloc[:1].assign(Id=0)
    bf = read_buildings(write_buildings(table, tmp_path / "one.csv"))
    assert bf.frame["building_id"].tolist() == ["0"]


def test_real_duplicates_among_varied_ids_still_stop_naming_the_rows(tmp_path):
    table = osm_building_table(DEMO_OSM, coords="wgs84").iloc[:30].copy()
    table["Id"] = np.arange(30)
    table.loc[[3, 17], "Id"] = 99
    with pytest.raises(InputError, match=r"row 5, 19: duplicate building ids.*'Id' \(99\)"):
        read_buildings(write_buildings(table, tmp_path / "dup.csv"))


# ------------------------------------------------------------------ the datum


def test_gcj02_buildings_read_as_wgs84_stop_naming_the_flag(city, tmp_path):
    """The OSM buildings written out shifted to GCJ-02, ingested with the default
    --buildings-coords wgs84: the households were counted on the wrong land, no word."""
    _, osm, _, _ = city
    path = write_buildings(osm_building_table(osm, coords="gcj02"), tmp_path / "gcj.geojson")
    with pytest.raises(InputError, match=r"gcj.geojson: .*pass --buildings-coords gcj02$") as err:
        ingest(osm, buildings=path, progress=False)
    assert "when read as WGS84" in str(err.value) and " m away" in str(err.value)
    right = ingest(osm, buildings=path, buildings_coords="gcj02", progress=False)
    plain = ingest(osm, progress=False)
    assert right.summary["households"] == plain.summary["households"]
    assert right.notes["coordinates checked against the OSM buildings: GCJ-02 fits"] == 1
    assert "datum unchecked" not in set(right.tables["findings"]["kind"])


def test_wgs84_buildings_pass_and_the_reverse_mistake_stops(city, tmp_path):
    _, osm, _, _ = city
    path = write_buildings(osm_building_table(osm, coords="wgs84"), tmp_path / "wgs.gpkg")
    result = ingest(osm, buildings=path, progress=False)
    assert result.notes["coordinates checked against the OSM buildings: WGS84 fits"] == 1
    assert "datum unchecked" not in set(result.tables["findings"]["kind"])
    with pytest.raises(InputError, match="pass --buildings-coords wgs84"):
        ingest(osm, buildings=path, buildings_coords="gcj02", progress=False)


def test_bd09_buildings_name_bd09(tmp_path):
    osm = real_file(BEIJING_OSM)
    path = write_buildings(osm_building_table(osm, coords="bd09"), tmp_path / "bd.geojson")
    with pytest.raises(InputError, match="BD-09 \\(Baidu\\): pass --buildings-coords bd09"):
        ingest(osm, buildings=path, progress=False)


def test_the_roads_tell_where_osm_maps_few_buildings(city, tmp_path):
    """An extract with roads and no buildings: the roads crossing the footprints tell."""
    _, osm, extract, _ = city
    roads = extract.roads[extract.roads["cuts_blocks"].astype(bool)]
    label = {"wgs84": "WGS84", "gcj02": "GCJ-02"}
    for coords, wrong in (("gcj02", "wgs84"), ("wgs84", "gcj02")):
        path = write_buildings(osm_building_table(osm, coords=coords), tmp_path / f"{coords}.gpkg")
        with pytest.raises(InputError, match=rf"pass --buildings-coords {coords}$"):
            check_datum(read_buildings(path, coords=wrong), None, roads)
        ok = check_datum(read_buildings(path, coords=coords), None, roads)
        assert ok.notes[f"coordinates checked against the OSM roads: {label[coords]} fits"] == 1
    bare = dataclasses.replace(extract, buildings=extract.buildings.iloc[:0])
    with pytest.raises(InputError, match=r"pass --buildings-coords gcj02$"):
        ingest(None, extract=bare, buildings=tmp_path / "gcj02.gpkg", progress=False)


def test_without_osm_the_datum_is_a_finding(tmp_path):
    """No OSM file to compare with: taken as WGS84, and the findings say so unchecked."""
    osm = real_file(BEIJING_OSM)
    path = write_buildings(osm_building_table(osm, coords="gcj02"), tmp_path / "b.geojson")
    result = ingest(None, buildings=path, progress=False)
    found = result.tables["findings"]
    (detail,) = found.loc[found["kind"] == "datum unchecked", "detail"]
    assert "taken as WGS84 unchecked" in detail and "--buildings-coords gcj02" in detail
    said = ingest(None, buildings=path, buildings_coords="gcj02", progress=False)
    assert "datum unchecked" not in set(said.tables["findings"]["kind"])


# ------------------------------------------------------------------ the zone hint


def test_zone_of_a_longitude():
    assert gauss_kruger_epsg(116.3) == 4548  # Beijing, CM 117°E
    assert gauss_kruger_epsg(118.78) == 4549  # Nanjing, CM 120°E
    assert gauss_kruger_epsg(121.47) == 4549  # Shanghai
    assert gauss_kruger_epsg(104.07) == 4544  # Chengdu, CM 105°E
    assert gauss_kruger_epsg(73.5) == 4534 and gauss_kruger_epsg(136.5) == 4554


def test_metres_without_prj_are_told_their_zone(city, tmp_path):
    """A .shp without .prj: the hint named EPSG:4549 for Beijing data; with the OSM file
    of the place the zone is that of the data (EPSG:4548 for Beijing)."""
    _, osm, extract, epsg = city
    other = 4549 if epsg == 4548 else 4548
    table = osm_building_table(osm, coords="wgs84").to_crs(epsg)
    shp = tmp_path / "noprj" / "b.shp"
    shp.parent.mkdir()
    table.to_file(shp)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match=f"--buildings-crs EPSG:{epsg} ") as err:
        read_buildings(shp, osm_buildings=extract.buildings)
    assert f"EPSG:{other}" not in str(err.value)
    frame = read_buildings(shp, crs=f"EPSG:{epsg}").frame
    assert len(frame) == len(table)
    # on the command line too, with the OSM file
    res = run("ingest", osm, "--buildings", shp, "--out", tmp_path / "u")
    assert res.returncode == 2 and f"--buildings-crs EPSG:{epsg} " in res.stderr, res.stderr
    assert f"EPSG:{other}" not in res.stderr


def test_without_other_data_the_hint_says_how_to_choose(tmp_path):
    table = osm_building_table(real_file(BEIJING_OSM), coords="wgs84").to_crs(4548)
    path = write_buildings(table, tmp_path / "gk.csv")
    with pytest.raises(InputError) as err:
        read_buildings(path)
    text = str(err.value)
    assert "--buildings-crs EPSG:4548 for Beijing" in text
    assert "--buildings-crs EPSG:4549 for Nanjing" in text


def test_zone_prefixed_eastings_are_told_the_prefixed_zone():
    x, _ = shapely.get_coordinates(
        gpd.GeoSeries([shapely.Point(116.3, 40.0)], crs=4326).to_crs(4527).iloc[0]
    )[0]
    assert 39_000_000 < x < 40_000_000
    hint = projected_crs_hint(x, "--buildings-crs", near=(118.8, 32.0))
    assert "--buildings-crs EPSG:4527" in hint and "zone number 39" in hint


def test_a_boundary_file_in_metres_is_not_told_nanjings_zone_alone(tmp_path):
    """The boundary reader has no other data to place it: its hint names Beijing's zone
    as well as Nanjing's, where it named EPSG:4549 (CM 120°E) for every file."""
    path = demo_communities(DEMO_OSM, tmp_path / "gk.csv", crs=4549)
    with pytest.raises(InputError, match="--boundary-crs EPSG") as err:
        read_units(path, "community")
    assert "--boundary-crs EPSG:4548 for Beijing" in str(err.value)
    assert "--boundary-crs EPSG:4549 for Nanjing" in str(err.value)
