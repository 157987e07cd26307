"""Given inputs that once gave a wrong answer without a word (issue 22): a whole-city street
file over a small extract, the district code, the attribution, and calibration factors far
outside the stated range.

Every input is built at test time from the two real extracts (© OpenStreetMap
contributors, ODbL 1.0): street files tiling a big area around the Beijing extract, the
extract moved to Helsinki, the extract with a county-level boundary added, a building file
of its buildings.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from cities_bounds import beijing_communities, write_layer
from cities_buildings import osm_building_table, write_buildings
from cities_osm import BEIJING_OSM, DEMO_OSM, real_file
from clitools import run

from wangge.data.boundaries import read_units
from wangge.data.osm import ATTRIBUTION, read_osm
from wangge.delineate import delineate
from wangge.errors import InputError
from wangge.geo import calibration, district
from wangge.geo.limits import load_limits
from wangge.geo.validate import validate

GK = 4548  # CGCS2000 3-degree Gauss-Kruger, CM 117°E: Beijing's zone
HAIDIAN, CHAOYANG = "110108", "110105"


@pytest.fixture(scope="module")
def beijing() -> Path:
    return real_file(BEIJING_OSM)


def _extract_box(osm: Path) -> tuple[float, float, float, float]:
    b = read_osm(osm).buildings.to_crs(GK).total_bounds
    return tuple(float(v) for v in b)


def _city_streets(osm: Path, dst: Path, side_m: float = 7000.0, n: int = 18) -> gpd.GeoDataFrame:
    """``n`` × ``n`` street squares of ``side_m`` (a whole city: 18 × 18 × 49 km² ≈ 15,900
    km²), placed so that the lines between them cross the middle of the extract's
    buildings: four streets hold buildings, the other 320 lie beyond the data. The
    西 half is 海淀区 and the east half 朝阳区 in a ``县`` column (names, no codes)."""
    x0, y0, x1, y1 = _extract_box(osm)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = n // 2
    rows = []
    for i in range(n):
        for j in range(n):
            left, bottom = cx + (i - half) * side_m, cy + (j - half) * side_m
            rows.append(
                {
                    "名称": f"街道{i:02d}{j:02d}",
                    "县": "海淀区" if i < half else "朝阳区",
                    "geometry": shapely.box(left, bottom, left + side_m, bottom + side_m),
                }
            )
    frame = gpd.GeoDataFrame(rows, crs=GK).to_crs(4326)
    write_layer(frame, dst)
    return frame


# ---------------------------------------------------------------------------------------
# 1. a whole-city street file over a small extract


def test_streets_beyond_the_data_are_left_out_and_each_keeps_its_district(beijing, tmp_path):
    path = tmp_path / "city-streets.geojson"
    city = _city_streets(beijing, path)
    result = delineate(beijing, streets=path)
    streets = result.layers["streets"]
    found = result.layers["findings"]
    # only the streets that hold buildings are planned; the rest are named as left out
    assert 1 < len(streets) <= 4, len(streets)
    assert (streets["households"] > 0).all()
    out = found[found["kind"] == "outside_data"]
    assert len(out) == len(city) - len(streets)
    assert out["detail"].str.contains("left out").all()
    # each street keeps the district its 县 column names: the west half Haidian, the east
    # half Chaoyang, told apart by where the street lies
    metric = streets.to_crs(GK)
    cx = (_extract_box(beijing)[0] + _extract_box(beijing)[2]) / 2
    west = metric.geometry.representative_point().x < cx
    assert west.any() and (~west).any()
    assert streets.loc[west.to_numpy(), "code"].str.startswith(HAIDIAN).all()
    assert streets.loc[~west.to_numpy(), "code"].str.startswith(CHAOYANG).all()
    assert result.layers["grids"]["code"].str[:6].isin({HAIDIAN, CHAOYANG}).all()
    assert result.limits.district_code in (HAIDIAN, CHAOYANG)
    assert any("2 districts" in n for n in result.notes), result.notes
    assert (found["kind"] == "code_assigned").sum() == len(streets)
    total = result.layers["buildings"]["households"].sum()
    assert streets["households"].sum() == total
    errors = validate(result.layers, result.limits).query("severity == 'error'")
    assert errors.empty, errors.to_string()


def test_a_district_column_gives_codes_and_names_what_it_cannot_match(beijing, tmp_path):
    frame = gpd.read_file(beijing_communities(beijing, tmp_path / "c.geojson"))
    frame = frame.drop(columns=[c for c in frame.columns if "代码" in c])
    frame["区县代码"] = "110108"
    frame.loc[0, "区县代码"] = None
    read = read_units(write_layer(frame, tmp_path / "codes.geojson"), "community")
    assert read.frame["district_code"].tolist()[1:] == [HAIDIAN] * (len(frame) - 1)
    assert read.frame["district_code"].iloc[0] is None
    named = frame.drop(columns="区县代码").assign(区县="海淀")
    named.loc[1, "区县"] = "亚特兰蒂斯区"
    read = read_units(write_layer(named, tmp_path / "names.geojson"), "community")
    assert read.frame["district_code"].iloc[0] == HAIDIAN  # 海淀 → 海淀区, near the unit
    assert read.frame["district_code"].iloc[1] is None
    unknown = read.findings[read.findings["kind"] == "district_unknown"]
    assert len(unknown) == 1 and "亚特兰蒂斯区" in unknown["detail"].iloc[0]


def test_district_names_are_matched_near_the_data():
    # four divisions are called 鼓楼区: the one near the point wins, none when none is near
    assert district.match_name("鼓楼区", 118.78, 32.05) == "320106"  # Nanjing
    assert district.match_name("鼓楼区", 119.30, 26.08) == "350102"  # Fuzhou
    assert district.match_name("鼓楼区", 116.35, 40.00) is None  # Beijing has none
    assert district.code_of("110108000000", 0.0, 0.0) == HAIDIAN


# ---------------------------------------------------------------------------------------
# 2. no district code is invented


def _shifted(src: Path, dst: Path, dlon: float, dlat: float) -> Path:
    """``src`` with every node moved by (``dlon``, ``dlat``) degrees, bounds too."""
    root = ET.parse(src).getroot()
    for el in root:
        if el.tag == "node":
            el.set("lon", f"{float(el.get('lon')) + dlon:.7f}")
            el.set("lat", f"{float(el.get('lat')) + dlat:.7f}")
        elif el.tag == "bounds":
            for key, d in (("minlon", dlon), ("maxlon", dlon), ("minlat", dlat), ("maxlat", dlat)):
                el.set(key, f"{float(el.get(key)) + d:.7f}")
    ET.ElementTree(root).write(dst, encoding="utf-8", xml_declaration=True)
    return dst


def _with_admin(src: Path, dst: Path, areas: list[tuple[tuple, dict]]) -> Path:
    """``src`` with closed ways ``boundary=administrative`` added: each a lon/lat box and
    its extra tags (admin_level 6 unless given)."""
    root = ET.parse(src).getroot()
    ident = -1
    ways = []
    for (w, s, e, n), tags in areas:
        refs = []
        for lon, lat in ((w, s), (e, s), (e, n), (w, n)):
            root.append(ET.Element("node", id=str(ident), lon=f"{lon:.7f}", lat=f"{lat:.7f}"))
            refs.append(str(ident))
            ident -= 1
        way = ET.Element("way", id=str(ident))
        ident -= 1
        for ref in [*refs, refs[0]]:
            way.append(ET.Element("nd", ref=ref))
        for k, v in {"boundary": "administrative", "admin_level": "6", **tags}.items():
            way.append(ET.Element("tag", k=k, v=v))
        ways.append(way)
    for way in ways:
        root.append(way)
    ET.ElementTree(root).write(dst, encoding="utf-8", xml_declaration=True)
    return dst


def test_no_district_code_is_invented_the_run_asks_for_one(beijing, tmp_path):
    # the Beijing extract names no county-level area (only a community, admin_level 10);
    # its addresses do (3 of 4 say 海淀区: tests/test_rule_book.py), so without them
    bare = tmp_path / "no-addresses.osm"
    text = Path(beijing).read_text(encoding="utf-8")
    bare.write_text(re.sub(r'\s*<tag k="addr:district" v="[^"]*"/>', "", text), encoding="utf-8")
    assert "addr:district" not in bare.read_text(encoding="utf-8")
    res = run("delineate", bare, "--out", tmp_path / "bj")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "--district-code" in res.stderr and "320102" not in res.stdout + res.stderr
    assert not (tmp_path / "bj" / "plan.gpkg").exists()
    # Helsinki: outside China no GB/T 2260 area can name it
    helsinki = _shifted(beijing, tmp_path / "helsinki.osm", 24.94 - 116.35, 60.17 - 40.00)
    res = run("delineate", helsinki, "--out", tmp_path / "hel")
    assert res.returncode == 2 and "--district-code" in res.stderr, res.stdout + res.stderr
    # the demo names three districts whose boundaries it holds only pieces of; without
    # those pieces (the boundary ways), nothing tells which holds the buildings
    root = ET.parse(DEMO_OSM).getroot()
    for way in root.findall("way"):
        if any(t.get("k") == "boundary" for t in way.findall("tag")):
            root.remove(way)
    cut = tmp_path / "nj-no-boundary-ways.osm"
    ET.ElementTree(root).write(cut, encoding="utf-8", xml_declaration=True)
    res = run("delineate", cut, "--out", tmp_path / "nj")
    assert res.returncode == 2
    assert all(code in res.stderr for code in ("320102", "320104", "320106")), res.stderr
    # given, the code is used
    res = run("delineate", helsinki, "--out", tmp_path / "hel", "--district-code", "999001")
    assert res.returncode == 0, res.stdout + res.stderr
    grids = pyogrio.read_dataframe(tmp_path / "hel" / "plan.gpkg", layer="grids")
    assert grids["code"].str.startswith("999001").all()


def test_the_osm_files_county_level_area_names_the_district(beijing, tmp_path):
    w, s, e, n = read_osm(beijing).buildings.total_bounds
    mid = w + 0.7 * (e - w)
    big = (w - 0.01, s - 0.01, e + 0.01, n + 0.01)
    one = _with_admin(beijing, tmp_path / "one.osm", [(big, {"name": "海淀区"})])
    result = delineate(one)
    assert result.limits.district_code == HAIDIAN
    assert result.layers["grids"]["code"].str.startswith(HAIDIAN).all()
    assert any(HAIDIAN in note and "海淀区" in note for note in result.notes), result.notes
    # two areas split the buildings: the one holding most names the plan; a code tag is
    # read before the name (here an English one that matches nothing)
    split = _with_admin(
        beijing,
        tmp_path / "two.osm",
        [
            ((w - 0.01, s - 0.01, mid, n + 0.01), {"name": "Haidian", "ref": HAIDIAN}),
            ((mid, s - 0.01, e + 0.01, n + 0.01), {"name": "朝阳区"}),
        ],
    )
    result = delineate(split)
    assert result.limits.district_code == HAIDIAN
    said = result.layers["findings"]
    said = said[said["kind"] == district.FOUND]["detail"].iloc[0]
    assert "110105" in said and "ref tag" in said
    # --district-code still decides
    assert delineate(split, district_code=CHAOYANG).limits.district_code == CHAOYANG


# ---------------------------------------------------------------------------------------
# 3. attribution names the sources used


def test_attribution_names_only_the_sources_used(beijing, tmp_path):
    buildings = write_buildings(
        osm_building_table(beijing, coords="wgs84"), tmp_path / "楼栋.geojson"
    )
    communities = beijing_communities(beijing, tmp_path / "社区.geojson")
    out = tmp_path / "plain"
    res = run("delineate", "--buildings", buildings, "--communities", communities, "--out", out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OpenStreetMap" not in res.stdout + res.stderr
    assert "楼栋.geojson" in res.stdout
    for name in ("plan.gpkg", "units.gpkg"):
        meta = pyogrio.read_dataframe(out / name, layer="meta").set_index("key")["value"]
        assert "OpenStreetMap" not in meta["attribution"], name
        assert "楼栋.geojson" in meta["attribution"] and "社区.geojson" in meta["attribution"]
    # the plan's map, its printed sheets and every API answer credit the same sources
    page = (out / "map.html").read_text(encoding="utf-8")
    assert "OpenStreetMap" not in page and "楼栋.geojson" in page
    _credit_everywhere(out, tmp_path / "store.gpkg", osm=False)
    # with the OSM file read, OSM is credited
    res = run("delineate", beijing, "--out", tmp_path / "osm", "--district-code", HAIDIAN)
    assert res.returncode == 0, res.stdout + res.stderr
    meta = pyogrio.read_dataframe(tmp_path / "osm" / "plan.gpkg", layer="meta")
    assert meta.set_index("key")["value"]["attribution"] == ATTRIBUTION
    assert ATTRIBUTION in res.stdout.replace("\n", "")
    _credit_everywhere(tmp_path / "osm", tmp_path / "store-osm.gpkg", osm=True)


# ---------------------------------------------------------------------------------------
# 4. calibration factors outside the stated range


def test_factors_outside_the_range_are_reported_not_applied():
    b = pd.DataFrame(
        {
            "households": [40, 60, 100],
            "population": [100, 150, 250],
            "estimated": True,
            "household_source": "estimate",
        }
    )
    unit_of = np.array([0, 0, 1])
    units = pd.DataFrame(
        {
            "code": ["110108001", "110108002"],
            "name": ["甲", "乙"],
            "households": [2000.0, 150.0],  # factors 20 and 1.5
            "population": np.nan,
        }
    )
    cover = np.ones(2)
    out, report = calibration.calibrate(b, unit_of, units, cover, "street", 2.5)
    assert out["households"].tolist() == [40, 60, 150]
    row = report.set_index("code").loc["110108001"]
    assert row["factor"] == pytest.approx(20.0) and "not applied" in row["finding"]
    assert row["estimated_after"] == row["estimated_before"] == 100
    assert out["household_source"].iloc[0] == "estimate"
    out, report = calibration.calibrate(b, unit_of, units, cover, "street", 2.5, outliers=True)
    assert out["households"].tolist()[:2] == [800, 1200]
    assert "not applied" not in report["finding"].iloc[0]


def test_the_command_reports_an_outlier_and_applies_it_only_when_asked(beijing, tmp_path):
    frame = gpd.read_file(beijing_communities(beijing, tmp_path / "c.geojson"))
    frame["户数"] = np.nan
    frame.loc[0, "户数"] = 60_000.0  # far beyond what its buildings hold
    path = write_layer(frame, tmp_path / "c-hh.geojson")
    code = str(frame["代码"].iloc[0])
    got = {}
    for flag in ([], ["--calibrate-outliers"]):
        out = tmp_path / ("asked" if flag else "default")
        res = run("delineate", beijing, "--communities", path, "--out", out, *flag)
        assert res.returncode == 0, res.stdout + res.stderr
        table = pyogrio.read_dataframe(out / "plan.gpkg", layer="calibration")
        row = table.set_index(table["code"].astype(str)).loc[code]
        assert float(row["factor"]) > 2
        communities = pyogrio.read_dataframe(out / "plan.gpkg", layer="communities")
        got[bool(flag)] = float(communities.set_index("code").loc[code, "households"])
        assert ("not applied" in row["finding"]) is not bool(flag)
    assert got[False] < 2 * float(row["estimated_before"]) < got[True]


def test_a_district_column_that_disagrees_with_the_code_is_reported(beijing, tmp_path):
    """A district column beside codes naming another district: the code wins, said so."""
    frame = gpd.read_file(beijing_communities(beijing, tmp_path / "c.geojson"))
    frame["区县"] = "朝阳区"
    read = read_units(write_layer(frame, tmp_path / "x.geojson"), "community")
    assert (read.frame["district_code"] == HAIDIAN).all()
    mismatch = read.findings[read.findings["kind"] == "code_mismatch"]
    assert len(mismatch) == len(frame) and mismatch["detail"].str.contains(CHAOYANG).all()
    with pytest.raises(InputError, match="--district-code"):
        district.district_from_given(load_limits(), {}, None)  # nothing names one


def _credit_everywhere(plan_dir: Path, store_path: Path, osm: bool) -> None:
    """Whether OpenStreetMap is credited on the sheets, the TileJSON, the collections, the
    GeoJSON items and their HTML page of a plan: exactly when it used OSM data."""
    from e2e_server import import_plan
    from fastapi.testclient import TestClient

    from wangge.api.app import create_app
    from wangge.api.settings import Settings
    from wangge.data.plan import read_plan
    from wangge.maps.notice import sheet_texts
    from wangge.printing import print_plan, sheets

    drawn = sheets(print_plan(read_plan(plan_dir / "plan.gpkg")))
    texts = [" ".join(sheet_texts(sheet)) for sheet in drawn]
    assert texts and all(("OpenStreetMap" in t) is osm for t in texts)
    import_plan(plan_dir, store_path, "p")
    from wangge.data.store import open_store

    with TestClient(
        create_app(Settings(plan="p", public_reads=True), open_store(str(store_path)))
    ) as c:
        answers = {
            "collections": c.get("/collections").json()["attribution"],
            "tilejson": c.get("/tiles/grids.json").json()["attribution"],
            "items": c.get("/collections/grids/items", params={"limit": 1}).json()["attribution"],
            "html": c.get("/collections/grids/items", params={"f": "html", "limit": 1}).text,
        }
    for where, text in answers.items():
        assert ("OpenStreetMap" in text) is osm, (where, text)
        if not osm:
            assert "楼栋.geojson" in text, (where, text)
