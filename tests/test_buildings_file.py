"""Tests of wangge.data.buildings: building files from a 3D layer or a commercial map.

Every file is written into ``tmp_path`` from the Nanjing demo or the Beijing extract
(© OpenStreetMap contributors, ODbL 1.0) by tests/cities_buildings.py.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity
from cities_buildings import (
    demo_building_points,
    demo_buildings_gcj02,
    osm_building_table,
    write_buildings,
)
from cities_osm import BEIJING_OSM, DEMO_OSM, real_file
from clitools import run

from wangge.data.building_words import OSM_COLUMNS, OSM_TYPES, USE_VALUES
from wangge.data.buildings import BuildingFile, adopt_osm_tags, read_buildings
from wangge.data.osm import OsmExtract, parse_height, parse_levels, read_osm
from wangge.errors import InputError
from wangge.geo import households as geo_households
from wangge.geo.crs import metric_crs


@dataclass(frozen=True)
class City:
    """An OSM extract, its metric CRS and the household total of its own buildings."""

    osm: Path
    extract: OsmExtract
    crs: object
    osm_households: int

    def households(self, buildings: gpd.GeoDataFrame) -> int:
        params = geo_households.load_params()
        m = [f.to_crs(self.crs) for f in (buildings, self.extract.landuse, self.extract.facilities)]
        return int(geo_households.estimate_households(*m, params)["households"].sum())


def _city(osm: Path) -> City:
    extract = read_osm(osm)
    c = extract.buildings.geometry.union_all().centroid
    crs = metric_crs(c.x, c.y)
    city = City(osm, extract, crs, 0)
    return City(osm, extract, crs, city.households(extract.buildings))


@pytest.fixture(scope="module")
def nanjing() -> City:
    return _city(DEMO_OSM)


@pytest.fixture(scope="module")
def beijing() -> City:
    return _city(real_file(BEIJING_OSM))


@pytest.fixture(scope="module")
def demo_table() -> gpd.GeoDataFrame:
    """The demo's buildings in GCJ-02 with Floor and height, ready to write in any format."""
    return osm_building_table(DEMO_OSM)


def _centroid_gap_m(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame, crs) -> np.ndarray:
    ca = a.to_crs(crs).centroid.to_numpy()
    cb = b.to_crs(crs).centroid.to_numpy()
    return shapely.distance(ca, cb)


def _kinds(bf) -> set[str]:
    return set(bf.findings["kind"])


# ------------------------------------------------------------------ the demo as GCJ-02


def test_gcj02_file_lands_on_the_osm_footprints(nanjing, tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "demo.geojson")
    bf = read_buildings(path, coords="gcj02")
    osm = nanjing.extract.buildings.reset_index(drop=True)
    frame = bf.frame
    assert list(frame.columns) == OSM_COLUMNS
    assert frame.crs.to_epsg() == 4326
    assert len(frame) == len(osm)
    assert _centroid_gap_m(frame, osm, nanjing.crs).max() < 1.0
    # ids are generated in file order, and tags carry over where OSM has a usable one
    assert frame["building_id"].tolist()[:3] == ["b1", "b2", "b3"]
    levels = osm["levels_tag"].map(parse_levels)
    has = levels.notna()
    assert has.sum() > 100
    assert (frame.loc[has, "levels_tag"] == osm.loc[has, "levels_tag"]).all()
    assert frame.loc[~has, "levels_tag"].isna().all()
    height = osm["height_tag"].map(parse_height)
    hh = height.notna()
    assert hh.sum() > 40
    assert (frame.loc[hh, "height_tag"].map(float) == height[hh]).all()
    plain = hh & osm["height_tag"].str.fullmatch(r"\d+(\.\d+)?").fillna(False)
    assert (frame.loc[plain, "height_tag"] == osm.loc[plain, "height_tag"]).all()
    assert (frame["building"] == "yes").all()
    assert bf.findings.empty
    assert bf.notes["coordinates moved from GCJ02 to WGS84"] == len(osm)


def test_gcj02_file_read_as_wgs84_is_off_by_the_offset(nanjing, tmp_path):
    """Forgetting coords='gcj02' leaves the footprints hundreds of metres off."""
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "demo.geojson")
    frame = read_buildings(path).frame
    gap = _centroid_gap_m(frame, nanjing.extract.buildings.reset_index(drop=True), nanjing.crs)
    assert gap.min() > 100


def test_bd09_file(nanjing, tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "bd.geojson", coords="bd09")
    frame = read_buildings(path, coords="BD-09").frame
    osm = nanjing.extract.buildings.reset_index(drop=True)
    assert _centroid_gap_m(frame, osm, nanjing.crs).max() < 1.0


@pytest.mark.parametrize("city_name", ["nanjing", "beijing"])
def test_household_total_within_5_percent_of_osm(city_name, request, tmp_path):
    """The GCJ-02 file, with land use and facilities from OSM, estimates the same total.

    The file carries no building type and no name. With the OSM buildings of the same place
    the reader takes type, name and use from the footprint each building overlaps
    (adopt_osm_tags); the demo also stays within 5 % without them, because its households are
    decided mostly by land use and footprint shape, which the file keeps.
    """
    city = request.getfixturevalue(city_name)
    path = demo_buildings_gcj02(city.osm, tmp_path / "b.geojson")
    bf = read_buildings(path, coords="gcj02", osm_buildings=city.extract.buildings)
    total = city.households(bf.frame)
    assert abs(total / city.osm_households - 1) <= 0.05, (total, city.osm_households)
    assert bf.notes["building type, name and use taken from OSM"] == len(bf.frame)
    if city_name == "nanjing":
        bare = city.households(read_buildings(path, coords="gcj02").frame)
        assert abs(bare / city.osm_households - 1) <= 0.05, (bare, city.osm_households)


def test_osm_tags_match_footprints_that_differ_a_little(nanjing):
    """A 3D layer's outline is not OSM's: 1 m larger and simplified, it still matches."""
    osm = nanjing.extract.buildings.reset_index(drop=True)
    m = osm.to_crs(nanjing.crs)
    moved = m.geometry.buffer(1.0, join_style="mitre").simplify(0.5).translate(0.8, -0.6)
    frame = osm[OSM_COLUMNS].copy()
    frame["geometry"] = gpd.GeoSeries(moved, crs=nanjing.crs).to_crs(4326).to_numpy()
    frame["building"] = "yes"
    frame[["name", "building_use", "own_use"]] = None
    frame.loc[0, "building"] = "office"  # the file's own use wins
    out = adopt_osm_tags(BuildingFile(gpd.GeoDataFrame(frame, crs=4326)), osm).frame
    assert out.loc[0, "building"] == "office"
    same = (out["building"] == osm["building"]).iloc[1:]
    assert same.mean() > 0.97
    assert (out["name"] == osm["name"]).sum() >= 0.95 * osm["name"].notna().sum()


# ------------------------------------------------------------------ formats


def test_gbk_zipped_shapefile_with_chinese_uses(nanjing, tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "gbk.zip", encoding="gbk", uses=True)
    with zipfile.ZipFile(path) as zf:
        assert not any(n.endswith(".cpg") for n in zf.namelist())
    bf = read_buildings(path, coords="gcj02")
    assert bf.notes["shapefile attributes read as GBK (no .cpg beside the .dbf)"] == 1
    osm = nanjing.extract.buildings.reset_index(drop=True)
    frame = bf.frame
    assert len(frame) == len(osm)
    kinds = dict(zip(osm["building"], frame["building"], strict=True))
    assert kinds["residential"] == "residential"
    assert kinds["apartments"] == "residential"
    assert kinds["office"] == "office"
    assert kinds["school"] == "school"
    assert kinds["hospital"] == "hospital"
    assert kinds["commercial"] == "commercial"
    assert kinds["yes"] == "yes"
    assert _centroid_gap_m(frame, osm, nanjing.crs).max() < 1.0


def test_csv_with_wkt(nanjing, demo_table, tmp_path):
    path = write_buildings(demo_table, tmp_path / "b.csv")
    frame = read_buildings(path, coords="gcj02").frame
    assert len(frame) == len(demo_table)
    osm = nanjing.extract.buildings.reset_index(drop=True)
    assert _centroid_gap_m(frame, osm, nanjing.crs).max() < 1.0


@pytest.mark.parametrize("form", ["ewkt", "hexwkb", "hexewkb"])
def test_postgis_exports_ewkt_and_hex_wkb_read_as_wkt(demo_table, tmp_path, form):
    """A CSV out of PostGIS carries EWKT (SRID=4490;POLYGON…) or hex (E)WKB."""
    path = write_buildings(demo_table, tmp_path / "b.csv")
    table = pd.read_csv(path, dtype=str)
    col = next(c for c in table.columns if c.lower() in ("wkt", "geometry", "geom", "几何"))
    geoms = shapely.from_wkt(table[col].to_numpy())
    if form == "ewkt":
        table[col] = ["SRID=4490;" + w for w in table[col]]
    else:
        table[col] = shapely.to_wkb(geoms, hex=True, include_srid=form == "hexewkb")
    table.to_csv(path, index=False)
    want = read_buildings(write_buildings(demo_table, tmp_path / "w.csv"), coords="gcj02")
    got = read_buildings(path, coords="gcj02")
    assert len(got.frame) == len(want.frame) == len(demo_table)
    assert shapely.equals_exact(
        got.frame.geometry.to_numpy(), want.frame.geometry.to_numpy(), 1e-9
    ).all()


def test_a_footprint_given_twice_is_counted_once(demo_table, tmp_path):
    """A layer exported twice, or one polygon per floor: households were counted twice."""
    once = read_buildings(write_buildings(demo_table, tmp_path / "a.geojson"), coords="gcj02")
    twice = pd.concat([demo_table, demo_table.iloc[:40]], ignore_index=True)
    for col in {"id", "编号", "building_id"} & set(twice.columns):  # ids stay unique
        twice[col] = [f"b{i}" for i in range(len(twice))]
    got = read_buildings(write_buildings(twice, tmp_path / "b.geojson"), coords="gcj02")
    assert len(got.frame) == len(once.frame)
    dup = got.findings[got.findings["kind"] == "duplicate_footprint"]
    assert len(dup) == 40 and got.notes["footprints given twice, counted once"] == 40


def test_empty_rows_below_the_table_are_no_rows(demo_table, tmp_path):
    """Excel saves rows of empty cells below a table (",,,"): they are not footprints
    (30 of them refused the file as more than 5 % unusable)."""
    path = write_buildings(demo_table, tmp_path / "b.csv")
    cols = len(pd.read_csv(path, nrows=1).columns)
    with path.open("a", encoding="utf-8") as f:
        f.write(("," * (cols - 1) + "\n") * 200)
    bf = read_buildings(path, coords="gcj02")
    assert len(bf.frame) == len(demo_table)
    assert not [k for k in bf.notes if "no geometry" in k]


def test_gbk_csv_needs_the_encoding(demo_table, tmp_path):
    table = demo_table.assign(用途="住宅")
    path = write_buildings(table, tmp_path / "gbk.csv", encoding="gbk")
    with pytest.raises(InputError, match=r"gbk.csv: line 1: .*GBK") as err:
        read_buildings(path, coords="gcj02")
    assert "--encoding gbk" in str(err.value)
    frame = read_buildings(path, coords="gcj02", encoding="gbk").frame
    assert (frame["building"] == "residential").all()


def test_xlsx_with_wkt_and_counts(demo_table, tmp_path):
    table = demo_table.iloc[:40].copy()
    table["OBJECTID"] = np.arange(101, 141)
    table["户数"] = [12.0, None, *range(38)]
    table["人口"] = np.arange(40) * 3.0
    table["名称"] = ["一号楼", *[""] * 39]
    path = write_buildings(table, tmp_path / "b.xlsx")
    bf = read_buildings(path, coords="gcj02")
    frame = bf.frame
    assert frame["building_id"].tolist()[:2] == ["101", "102"]
    assert frame.loc[0, "name"] == "一号楼" and pd.isna(frame.loc[1, "name"])
    assert np.isnan(frame.loc[1, "households"])
    counts = bf.counts()
    assert len(counts) == 39  # 0 households is a count; blank is not
    assert counts.loc["101", "households"] == 12 and counts.loc["103", "households"] == 0
    assert counts.loc["103", "population"] == 6.0
    assert list(frame.columns) == [*OSM_COLUMNS, "households", "population"]


def test_csv_points_with_area_get_square_stand_ins(nanjing, tmp_path):
    path = demo_building_points(DEMO_OSM, tmp_path / "pts.csv")
    bf = read_buildings(path, coords="gcj02")
    frame = bf.frame
    table = pd.read_csv(path)
    assert len(frame) == len(table)
    area = frame.to_crs(nanjing.crs).area.to_numpy()
    assert np.allclose(area, table["基底面积"], rtol=0.01)
    assert bf.notes["points given a square stand-in footprint of their stated area"] == len(table)
    osm = nanjing.extract.buildings.reset_index(drop=True)
    inside = frame.to_crs(nanjing.crs).centroid.within(osm.to_crs(nanjing.crs).buffer(1.0))
    assert inside.all()
    assert frame["levels_tag"].notna().sum() == osm["levels_tag"].notna().sum()


def test_square_stand_ins_that_overlap_delineate(tmp_path):
    """The demo's points give squares that overlap their neighbours (hundreds of pairs,
    up to 3,000 m²); the tessellation's repair once left lines GEOS would not overlay."""
    path = demo_building_points(DEMO_OSM, tmp_path / "pts.csv", coords="wgs84")
    out = tmp_path / "plan"
    res = run("delineate", DEMO_OSM, "--buildings", path, "--out", out, "--district-code", "320102")
    assert res.returncode == 0, res.stdout + res.stderr
    plan = gpd.read_file(tmp_path / "plan" / "plan.gpkg", layer="microgrids")
    units = gpd.read_file(tmp_path / "plan" / "units.gpkg", layer="buildings")
    assert plan["households"].sum() == units["households"].sum() > 0


def test_footprints_in_several_parts_read_and_count_once(tmp_path):
    """A 3D layer's record may be a MultiPolygon, a GeometryCollection or a bow-tie that
    repairs into two parts: the run reads them (it stopped on a TypeError) and each
    building's households are counted once."""
    table = osm_building_table(real_file(BEIJING_OSM), coords="wgs84").reset_index(drop=True)
    crs = metric_crs(116.35, 40.0)
    metric = table.to_crs(crs).geometry
    p = metric.iloc[20]
    h = p.bounds[3] - p.bounds[1]
    twin = shapely.affinity.translate(p, 0, -2 * h)
    parts = {
        20: shapely.MultiPolygon([p, twin]),
        21: shapely.GeometryCollection([metric.iloc[21], metric.iloc[21].exterior]),
    }
    x0, y0, x1, y1 = metric.iloc[22].bounds
    parts[22] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow-tie
    for i, g in parts.items():
        table.loc[i, "geometry"] = gpd.GeoSeries([g], crs=crs).to_crs(4326).iloc[0]
    path = tmp_path / "parts.gpkg"
    table.to_file(path, engine="pyogrio")
    out = tmp_path / "plan"
    res = run(
        "delineate", BEIJING_OSM, "--buildings", path, "--out", out, "--district-code", "110108"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    plan = gpd.read_file(tmp_path / "plan" / "plan.gpkg", layer="microgrids")
    units = gpd.read_file(tmp_path / "plan" / "units.gpkg", layer="buildings")
    assert plan["households"].sum() == units["households"].sum() > 0


def test_points_without_area_are_refused(tmp_path):
    path = demo_building_points(DEMO_OSM, tmp_path / "pts.csv", area=False)
    with pytest.raises(InputError, match=r"pts.csv: row 2, 3.*a point, not a footprint"):
        read_buildings(path, coords="gcj02")
    gj = tmp_path / "pts.geojson"
    pts = gpd.GeoDataFrame(
        {"层数": [3, 4]}, geometry=shapely.points([[118.78, 32.04]] * 2), crs=4326
    )
    pts.to_file(gj)
    with pytest.raises(InputError, match=r"feature 1, 2.*no area to stand in"):
        read_buildings(gj)


def test_projected_gpkg_and_shapefile_without_prj(nanjing, demo_table, tmp_path):
    """A Gauss-Kruger layer reads by its declared CRS; without a .prj its metres are not
    taken for degrees, and crs= supplies what the file lacks."""
    wgs = read_buildings(write_buildings(demo_table, tmp_path / "a.geojson"), coords="gcj02")
    gk = wgs.frame.to_crs(4549)
    gk = gk.rename(columns={"levels_tag": "层数"})
    gpkg = write_buildings(gk[["层数", "geometry"]], tmp_path / "gk.gpkg")
    frame = read_buildings(gpkg).frame
    osm = nanjing.extract.buildings.reset_index(drop=True)
    assert _centroid_gap_m(frame, osm, nanjing.crs).max() < 0.01
    assert frame["levels_tag"].equals(wgs.frame["levels_tag"])
    shp_dir = tmp_path / "noprj"
    shp_dir.mkdir()
    gk[["geometry"]].to_file(shp_dir / "b.shp")
    (shp_dir / "b.prj").unlink()
    with pytest.raises(InputError, match=r"b.shp: feature 1, 2, 3.*look like metres"):
        read_buildings(shp_dir / "b.shp")
    frame = read_buildings(shp_dir / "b.shp", crs="EPSG:4549").frame
    assert _centroid_gap_m(frame, osm, nanjing.crs).max() < 0.01
    with pytest.raises(InputError, match="applies to longitude/latitude"):
        read_buildings(gpkg, coords="gcj02")
    # the command line says how, and takes it: --buildings-crs
    res = run("ingest", "--buildings", shp_dir / "b.shp", "--out", tmp_path / "u1")
    assert res.returncode == 2 and "--buildings-crs" in res.stderr, res.stderr
    res = run(
        "ingest", "--buildings", shp_dir / "b.shp", "--buildings-crs", "EPSG:4549",
        "--out", tmp_path / "u2",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


def test_cgcs2000_declared(demo_table, tmp_path):
    path = write_buildings(demo_table.set_crs(4490, allow_override=True), tmp_path / "c.gpkg")
    frame = read_buildings(path, coords="gcj02").frame
    assert len(frame) == len(demo_table)


# ------------------------------------------------------------------ bad input


def test_negative_zero_and_absurd_values_are_ignored_with_findings(demo_table, tmp_path):
    table = demo_table.iloc[:50].copy()
    table.loc[3, "height"] = -6.0
    table.loc[4, "height"] = 0.0
    table.loc[5, "Floor"] = 0
    table.loc[6, "Floor"] = 350
    table.loc[7, "Floor"] = -2
    path = write_buildings(table, tmp_path / "bad.csv")
    bf = read_buildings(path, coords="gcj02")
    f = bf.findings.set_index("row")
    assert len(bf.frame) == 50
    assert f.loc[5, "kind"] == "height ignored" and "-6" in f.loc[5, "detail"]
    assert f.loc[6, "kind"] == "height ignored"
    assert f.loc[7, "kind"] == "floors ignored"
    assert "above 200" in f.loc[8, "detail"] and f.loc[8, "building_id"] == "b8"
    assert f.loc[9, "kind"] == "floors ignored"
    assert bf.frame.loc[3:7, "height_tag"].iloc[:2].isna().all()
    assert bf.frame.loc[5:7, "levels_tag"].isna().all()


def test_negative_heights_from_the_builder(tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "neg.geojson", negative_heights=3)
    bf = read_buildings(path, coords="gcj02")
    neg = bf.findings[bf.findings["kind"] == "height ignored"]
    assert neg["row"].tolist() == [1, 98, 195]
    assert neg["building_id"].tolist() == ["b1", "b98", "b195"]
    assert bf.frame.loc[[0, 97, 194], "height_tag"].isna().all()


def test_no_floor_or_height_field_is_a_finding_not_an_error(nanjing, tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "bare.geojson", fields=())
    bf = read_buildings(path, coords="gcj02")
    assert bf.frame["levels_tag"].isna().all() and bf.frame["height_tag"].isna().all()
    (finding,) = bf.findings[bf.findings["kind"] == "no floors or height"]["detail"]
    assert "fall back to the default" in finding
    est = geo_households.estimate_households(
        bf.frame.to_crs(nanjing.crs),
        nanjing.extract.landuse.to_crs(nanjing.crs),
        nanjing.extract.facilities.to_crs(nanjing.crs),
        geo_households.load_params(),
    )
    assert (est["levels_source"] == "default").all()


def test_a_few_empty_geometries_are_dropped_with_findings(tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "holes.geojson", empty_geometries=4)
    bf = read_buildings(path, coords="gcj02")
    dropped = bf.findings[bf.findings["kind"] == "dropped"]
    assert dropped["row"].tolist() == [6, 95, 184, 273]
    assert "empty geometry" in dropped["detail"].iloc[0]
    assert "no geometry" in dropped["detail"].iloc[1]
    assert len(bf.frame) == 1277 - 4
    # ids stay those of the file order: dropping a row renumbers nothing
    assert "b6" not in set(bf.frame["building_id"]) and "b7" in set(bf.frame["building_id"])


def test_many_empty_geometries_refuse_the_file(tmp_path):
    path = demo_buildings_gcj02(DEMO_OSM, tmp_path / "holes.geojson", empty_geometries=70)
    with pytest.raises(InputError, match=r"holes.geojson: feature 6, 24, 42.*70 of 1277 features"):
        read_buildings(path, coords="gcj02")


def test_lines_where_footprints_were_expected(demo_table, tmp_path):
    table = demo_table.iloc[:40].copy()
    table.loc[2, "geometry"] = table.loc[2, "geometry"].exterior
    bf = read_buildings(write_buildings(table, tmp_path / "one.geojson"), coords="gcj02")
    (detail,) = bf.findings.loc[bf.findings["kind"] == "dropped", "detail"]
    assert detail.startswith("feature 3: not a footprint (a line)")
    table.loc[[5, 9], "geometry"] = table.loc[[5, 9], "geometry"].exterior
    with pytest.raises(InputError, match=r"feature 3, 6, 10.*3 of 40 features.*a line"):
        read_buildings(write_buildings(table, tmp_path / "three.geojson"), coords="gcj02")


def test_duplicate_ids(demo_table, tmp_path):
    table = demo_table.iloc[:20].assign(楼栋编号=[f"A{i}" for i in range(20)])
    table.loc[[4, 11], "楼栋编号"] = "A4"
    path = write_buildings(table, tmp_path / "dup.csv")
    with pytest.raises(InputError, match=r"dup.csv: row 6, 13: duplicate building ids.*A4"):
        read_buildings(path, coords="gcj02")


def test_swapped_lon_lat(demo_table, tmp_path):
    swapped = demo_table.iloc[:30].copy()
    swapped["geometry"] = shapely.transform(swapped.geometry.to_numpy(), lambda xy: xy[:, ::-1])
    path = write_buildings(swapped, tmp_path / "swap.geojson")
    with pytest.raises(InputError, match=r"feature 1, 2, 3.*look swapped"):
        read_buildings(path, coords="gcj02")
    # a single swapped row among many is dropped and named
    mixed = demo_table.copy()
    mixed.loc[10, "geometry"] = swapped.loc[10, "geometry"]
    bf = read_buildings(write_buildings(mixed, tmp_path / "one.csv"), coords="gcj02")
    (detail,) = bf.findings.loc[bf.findings["row"] == 12, "detail"]
    assert "look swapped" in detail


def test_degrees_declared_as_metres(demo_table, tmp_path):
    path = write_buildings(demo_table.iloc[:10], tmp_path / "deg.csv")
    with pytest.raises(InputError, match="look like degrees but the CRS is projected"):
        read_buildings(path, crs="EPSG:4549")


def test_empty_and_truncated_files(demo_table, tmp_path):
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.geojson: file is empty"):
        read_buildings(empty)
    none = tmp_path / "none.geojson"
    none.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(InputError, match=r"none\.geojson.*no features"):
        read_buildings(none)
    full = write_buildings(demo_table, tmp_path / "full.geojson").read_bytes()
    cut = tmp_path / "cut.geojson"
    cut.write_bytes(full[: len(full) * 2 // 3])
    with pytest.raises(InputError, match=r"cut\.geojson: cannot be read"):
        read_buildings(cut, coords="gcj02")
    z = write_buildings(demo_table, tmp_path / "full.zip").read_bytes()
    cutzip = tmp_path / "cut.zip"
    cutzip.write_bytes(z[: len(z) // 2])
    with pytest.raises(InputError, match=r"cut.zip.*truncated"):
        read_buildings(cutzip, coords="gcj02")
    text = write_buildings(demo_table, tmp_path / "full.csv").read_bytes()
    cutcsv = tmp_path / "cut.csv"
    cutcsv.write_bytes(text[: len(text) // 2])
    with pytest.raises(InputError, match=r"cut\.csv"):
        read_buildings(cutcsv, coords="gcj02")


def test_unknown_coords_and_crs(demo_table, tmp_path):
    path = write_buildings(demo_table.iloc[:5], tmp_path / "b.geojson")
    with pytest.raises(InputError, match="unknown coordinates 'wgs85'"):
        read_buildings(path, coords="wgs85")
    with pytest.raises(InputError, match="unknown CRS 'EPSG:99999'"):
        read_buildings(path, crs="EPSG:99999")


# ------------------------------------------------------------------ fields


def test_use_values_and_aliases(demo_table, tmp_path):
    uses = [
        "住宅",
        "商住",
        "Commercial",
        "办公",
        "厂房",
        "学校",
        "医院",
        "公建",
        "仓储",
        "",
        "球场",
    ]
    table = demo_table.iloc[: len(uses)].copy()
    table = table.rename(columns={"Floor": "FLOORS", "height": "建筑高度"})
    table["类型"] = uses
    table["FLOORS"] = ["6F", "12层", 3, None, "abc", 2, 5, 3, 1, 6, 1]
    bf = read_buildings(write_buildings(table, tmp_path / "u.csv"), coords="gcj02")
    frame = bf.frame
    assert frame["building"].tolist() == [
        "residential",
        "residential",
        "commercial",
        "office",
        "industrial",
        "school",
        "hospital",
        "public",
        "warehouse",
        "yes",
        "yes",
    ]
    assert frame["levels_tag"].tolist()[:3] == ["6", "12", "3"]
    assert frame["levels_tag"].iloc[3:5].isna().all()
    kinds = bf.findings.set_index("kind")["detail"]
    assert "'球场'" in kinds["use not recognised"]
    assert "'abc' is not a number" in kinds["floors ignored"]
    assert set(USE_VALUES.values()) <= OSM_TYPES  # every mapped use is a type the model knows
