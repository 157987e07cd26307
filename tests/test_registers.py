"""Tests of wangge.data.registers: risk registers, risk zones, facilities and vulnerable counts.

Every input file is written into ``tmp_path`` at test time, aimed at buildings of the
demo plan (© OpenStreetMap contributors, ODbL 1.0). Each bad input must raise an
InputError that names the file and the row(s), features or cell range at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from wangge.data.registers import (
    FACILITY_COLUMNS,
    RISK_COLUMNS,
    read_facilities,
    read_risks,
    read_vulnerable,
)
from wangge.errors import InputError
from wangge.geo.crs import wgs84_to_gcj02
from wangge.geo.rules import load_rules

N_PICKS = 8


@dataclass(frozen=True)
class Area:
    """The demo plan's study area, its buildings (metric) and a few picked buildings."""

    study_area: shapely.Geometry  # WGS84
    buildings: gpd.GeoDataFrame  # metric CRS
    ids: list[str]
    lon: np.ndarray  # WGS84 representative points of the picks
    lat: np.ndarray
    edge_lon: float  # a point inside the area that GCJ-02 shifts outside it
    edge_lat: float


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.fixture(scope="module")
def area(plan_dir) -> Area:
    plan = plan_dir / "plan.gpkg"
    study = gpd.read_file(plan, layer="study_area").geometry.union_all()
    buildings = gpd.read_file(plan, layer="buildings").to_crs(4549).reset_index(drop=True)
    rep = buildings.representative_point()
    tree = shapely.STRtree(buildings.geometry.to_numpy())
    hits = np.bincount(tree.query(rep.to_numpy(), predicate="within")[0], minlength=len(rep))
    alone = np.flatnonzero(hits == 1)  # a point that can only mean its own building
    picks = alone[:: len(alone) // N_PICKS][:N_PICKS]
    ll = rep.iloc[picks].to_crs(4326)
    allw = rep.to_crs(4326)
    glon, glat = wgs84_to_gcj02(allw.x.to_numpy(), allw.y.to_numpy())
    inside = shapely.covers(study, allw.to_numpy())
    shifted_out = ~shapely.covers(study, shapely.points(glon, glat))
    edge = np.flatnonzero(inside & shifted_out)[0]
    return Area(
        study_area=study,
        buildings=buildings,
        ids=buildings["building_id"].iloc[picks].tolist(),
        lon=ll.x.to_numpy(),
        lat=ll.y.to_numpy(),
        edge_lon=float(allw.x.iloc[edge]),
        edge_lat=float(allw.y.iloc[edge]),
    )


def _csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    path.write_bytes(pd.DataFrame(rows).to_csv(index=False).encode(encoding))
    return path


def _risk_rows(area: Area) -> list[dict]:
    """Five good rows: matrix and LEC mixed, each category once."""
    specs = [
        ("加油站油气泄漏", "安全生产", 3, 4, None, None),
        ("餐馆燃气", "消防安全", 6, None, 3, 15),
        ("学校传染病", "health", 2, 3, None, None),
        ("内涝", "自然", 1, None, 6, 40),
        ("治安", "社会治安", 5, 5, None, None),
    ]
    return [
        {
            "名称": name,
            "风险类别": cat,
            "地址": f"某路{i}号",
            "经度": area.lon[i],
            "纬度": area.lat[i],
            "L": L,
            "S": S,
            "E": E,
            "C": C,
            "责任单位": "某单位",
        }
        for i, (name, cat, L, S, E, C) in enumerate(specs)
    ]


def _raises(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    return str(info.value)


def _feature_collection(features: list[tuple[dict, dict]]) -> str:
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features],
        },
        ensure_ascii=False,
    )


def area_at(area: Area, i: int) -> tuple[float, float]:
    return float(area.lon[i]), float(area.lat[i])


def _square(lon: float, lat: float, d: float = 0.001) -> dict:
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d]]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


# ---------------------------------------------------------------- risk registers: happy paths


def test_csv_with_matrix_and_lec_rows_reads_to_the_contract_columns(area, rules, tmp_path):
    path = _csv(tmp_path / "风险清单.csv", _risk_rows(area))
    risks = read_risks(path, rules, area.study_area)
    assert tuple(risks.columns) == RISK_COLUMNS
    assert risks.crs.to_epsg() == 4326
    assert risks["risk_id"].tolist() == ["R0001", "R0002", "R0003", "R0004", "R0005"]
    assert risks["category"].tolist() == ["production", "fire", "health", "natural", "order"]
    assert risks["category_zh"].iloc[2] == "公共卫生"
    assert risks["row"].tolist() == [2, 3, 4, 5, 6]
    assert np.isnan(risks["S"].iloc[1]) and risks["E"].iloc[1] == 3 and risks["C"].iloc[1] == 15
    assert np.isnan(risks["E"].iloc[0]) and risks["S"].iloc[0] == 4
    assert risks["address"].iloc[0] == "某路0号" and risks["responsible"].iloc[0] == "某单位"
    assert (risks["kind"] == "").all() and not risks["sample"].any()
    assert np.allclose(risks.geometry.x, area.lon[:5]) and np.allclose(
        risks.geometry.y, area.lat[:5]
    )


def test_id_and_sample_columns_are_carried(area, rules, tmp_path):
    rows = _risk_rows(area)
    for i, r in enumerate(rows):
        r["编号"] = f"FX-{i:03d}"
        r["样例"] = "是" if i % 2 else ""
    risks = read_risks(_csv(tmp_path / "r.csv", rows), rules, area.study_area)
    assert risks["risk_id"].tolist() == [f"FX-{i:03d}" for i in range(5)]
    assert risks["sample"].tolist() == [False, True, False, True, False]


def test_xlsx_register_reads_like_the_csv(area, rules, tmp_path):
    path = tmp_path / "风险清单.xlsx"
    pd.DataFrame(_risk_rows(area)).to_excel(path, index=False)
    risks = read_risks(path, rules, area.study_area)
    assert len(risks) == 5 and risks["row"].tolist() == [2, 3, 4, 5, 6]
    assert risks["category"].iloc[3] == "natural"


def test_geojson_points_with_english_headers(area, rules, tmp_path):
    features = [
        (
            {"name": f"risk {i}", "category": "fire", "L": 2, "S": 2, "responsible": "x"},
            {"type": "Point", "coordinates": [area.lon[i], area.lat[i]]},
        )
        for i in range(3)
    ]
    path = tmp_path / "risks.geojson"
    path.write_text(_feature_collection(features), "utf-8")
    risks = read_risks(path, rules, area.study_area)
    assert risks["row"].tolist() == [1, 2, 3] and risks["name"].iloc[2] == "risk 2"
    assert np.isnan(risks["E"]).all()


def test_zones_geojson_reads_polygons_with_kind(area, rules, tmp_path):
    features = [
        (
            {"风险区名称": "积水区A", "类别": "自然灾害", "风险区类型": "内涝", "L": 3, "S": 3},
            _square(area.lon[0], area.lat[0]),
        ),
        (
            {"风险区名称": "危化品B", "类别": "production", "风险区类型": "危化品", "L": 2, "S": 5},
            _square(area.lon[1], area.lat[1]),
        ),
    ]
    path = tmp_path / "zones.geojson"
    path.write_text(_feature_collection(features), "utf-8")
    zones = read_risks(path, rules, area.study_area, zones=True)
    assert tuple(zones.columns) == RISK_COLUMNS
    assert zones["risk_id"].tolist() == ["Z0001", "Z0002"]
    assert zones["kind"].tolist() == ["内涝", "危化品"]
    assert set(zones.geom_type) == {"Polygon"}


def test_gcj02_coordinates_are_moved_back_by_hundreds_of_metres(area, rules, tmp_path):
    rows = _risk_rows(area)
    glon, glat = wgs84_to_gcj02(area.lon[:5], area.lat[:5])
    for r, x, y in zip(rows, glon, glat, strict=True):
        r["经度"], r["纬度"] = x, y
    path = _csv(tmp_path / "gcj.csv", rows)
    risks = read_risks(path, rules, area.study_area, gcj02=True)
    truth = gpd.GeoSeries(shapely.points(area.lon[:5], area.lat[:5]), crs=4326).to_crs(4549)
    read = risks.geometry.to_crs(4549)
    raw = gpd.GeoSeries(shapely.points(glon, glat), crs=4326).to_crs(4549)
    assert (read.distance(truth, align=False) < 0.5).all()
    moved = read.distance(raw, align=False)
    assert ((moved > 200) & (moved < 800)).all()


# ---------------------------------------------------------------- risk registers: bad input


def test_missing_columns_are_named_with_accepted_names(area, rules, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "L"} for r in _risk_rows(area)]
    msg = _raises(read_risks, _csv(tmp_path / "noL.csv", rows), rules, area.study_area)
    assert "noL.csv" in msg and "row 1" in msg
    assert "L (L, 可能性, likelihood)" in msg


def test_missing_s_and_e_c_columns_say_either(area, rules, tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("S", "E")} for r in _risk_rows(area)]
    msg = _raises(read_risks, _csv(tmp_path / "noS.csv", rows), rules, area.study_area)
    assert "noS.csv" in msg and "S (S, 严重性, severity)" in msg and "E (" in msg


def test_matrix_scores_outside_1_to_5_name_rows(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[0]["S"] = 6
    rows[2]["L"] = 2.5
    msg = _raises(read_risks, _csv(tmp_path / "m.csv", rows), rules, area.study_area)
    assert "m.csv" in msg and "row 2, 4" in msg and "1–5" in msg


def test_lec_values_outside_the_method_scales_name_rows(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[3]["E"] = 4  # allowed: 0.5, 1, 2, 3, 6, 10
    msg = _raises(read_risks, _csv(tmp_path / "lec.csv", rows), rules, area.study_area)
    assert "lec.csv" in msg and "row 5" in msg and "0.5, 1, 2, 3, 6, 10" in msg


def test_rows_with_neither_s_nor_e_c_are_named(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[4]["S"] = None
    msg = _raises(read_risks, _csv(tmp_path / "n.csv", rows), rules, area.study_area)
    assert "n.csv" in msg and "row 6" in msg and "neither" in msg


def test_rows_with_both_s_and_e_c_are_named(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[1]["S"] = 3
    msg = _raises(read_risks, _csv(tmp_path / "b.csv", rows), rules, area.study_area)
    assert "b.csv" in msg and "row 3" in msg and "both" in msg


def test_unknown_categories_name_rows_and_list_accepted(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[0]["风险类别"] = "交通"
    rows[3]["风险类别"] = "weather"
    msg = _raises(read_risks, _csv(tmp_path / "cat.csv", rows), rules, area.study_area)
    assert "cat.csv" in msg and "row 2, 5" in msg and "交通" in msg
    assert "安全生产 (production)" in msg and "社会治安 (order)" in msg


def test_points_outside_the_study_area_name_rows(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[2]["经度"], rows[2]["纬度"] = 118.60, 32.00
    msg = _raises(read_risks, _csv(tmp_path / "out.csv", rows), rules, area.study_area)
    assert "out.csv" in msg and "row 4" in msg and "outside the study area" in msg
    assert "GCJ-02" not in msg


def test_gcj02_points_outside_get_a_hint(area, rules, tmp_path):
    rows = _risk_rows(area)
    glon, glat = wgs84_to_gcj02(area.edge_lon, area.edge_lat)
    rows[1]["经度"], rows[1]["纬度"] = float(glon), float(glat)
    path = _csv(tmp_path / "gcj.csv", rows)
    msg = _raises(read_risks, path, rules, area.study_area)
    assert "gcj.csv" in msg and "row 3" in msg and "gcj02=True" in msg and "--gcj02" in msg


def test_zones_outside_the_study_area_name_features(area, rules, tmp_path):
    features = [
        ({"name": "in", "category": "fire", "L": 1, "S": 1}, _square(area.lon[0], area.lat[0])),
        ({"name": "out", "category": "fire", "L": 1, "S": 1}, _square(118.6, 32.0)),
    ]
    path = tmp_path / "z.geojson"
    path.write_text(_feature_collection(features), "utf-8")
    msg = _raises(read_risks, path, rules, area.study_area, zones=True)
    assert "z.geojson" in msg and "feature 2" in msg


def test_gbk_csv_read_as_utf8_names_the_line_and_hints_gbk(area, rules, tmp_path):
    path = _csv(tmp_path / "gbk.csv", _risk_rows(area), encoding="gbk")
    msg = _raises(read_risks, path, rules, area.study_area)
    assert "gbk.csv" in msg and "line 1" in msg and "--encoding gbk" in msg
    risks = read_risks(path, rules, area.study_area, encoding="gbk")
    assert risks["name"].iloc[0] == "加油站油气泄漏"


def test_xlsx_with_a_merged_header_names_the_range(area, rules, tmp_path):
    path = tmp_path / "merged.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["名称", "", "风险类别", "L", "S", "经度", "纬度"])
    ws.append(["a", "b", "消防", 1, 1, float(area.lon[0]), float(area.lat[0])])
    ws.merge_cells("A1:B1")
    wb.save(path)
    msg = _raises(read_risks, path, rules, area.study_area)
    assert "merged.xlsx" in msg and "A1:B1" in msg and "unmerge" in msg


def test_duplicate_names_name_rows(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[3]["名称"] = rows[1]["名称"]
    msg = _raises(read_risks, _csv(tmp_path / "dup.csv", rows), rules, area.study_area)
    assert "dup.csv" in msg and "row 3, 5" in msg and "餐馆燃气" in msg


def test_empty_names_name_rows(area, rules, tmp_path):
    rows = _risk_rows(area)
    rows[4]["名称"] = "  "
    msg = _raises(read_risks, _csv(tmp_path / "empty.csv", rows), rules, area.study_area)
    assert "empty.csv" in msg and "row 6" in msg and "empty" in msg


def test_polygons_in_a_point_register_and_tables_as_zones_are_refused(area, rules, tmp_path):
    features = [
        ({"name": "a", "category": "fire", "L": 1, "S": 1}, _square(area.lon[0], area.lat[0]))
    ]
    path = tmp_path / "poly.geojson"
    path.write_text(_feature_collection(features), "utf-8")
    assert "feature 1" in _raises(read_risks, path, rules, area.study_area)
    table = _csv(tmp_path / "t.csv", _risk_rows(area))
    assert "polygon" in _raises(read_risks, table, rules, area.study_area, zones=True)


# ---------------------------------------------------------------- facilities


def _facility_rows(area: Area) -> list[dict]:
    return [
        {"名称": "AED 1", "类型": "aed", "经度": area.lon[0], "纬度": area.lat[0]},
        {"名称": "卫生站", "类型": "社区卫生服务站", "经度": area.lon[1], "纬度": area.lat[1]},
        {
            "名称": "操场",
            "类型": "emergency shelter",
            "经度": area.lon[2],
            "纬度": area.lat[2],
            "容量": 900,
            "面积": 1800,
        },
    ]


def test_facility_csv_reads_types_capacity_and_area(area, rules, tmp_path):
    facilities = read_facilities(
        _csv(tmp_path / "f.csv", _facility_rows(area)), rules, area.study_area
    )
    assert tuple(facilities.columns) == FACILITY_COLUMNS
    assert facilities["facility_id"].tolist() == ["U0001", "U0002", "U0003"]
    assert facilities["type"].tolist() == ["aed", "clinic", "emergency_shelter"]
    assert facilities["type_zh"].iloc[1] == "社区卫生服务站"
    assert facilities["capacity"].iloc[2] == 900 and facilities["area_m2"].iloc[2] == 1800
    assert np.isnan(facilities["capacity"].iloc[0]) and (facilities["source"] == "user").all()


def test_facility_polygons_get_their_area_and_a_point(area, rules, tmp_path):
    d = 0.0005  # about 47 m by 55 m at 32°N
    point = {"type": "Point", "coordinates": [area.lon[2], area.lat[2]]}
    features = [
        ({"name": "场地", "type": "fixed_shelter"}, _square(area.lon[0], area.lat[0], d)),
        ({"name": "场地", "type": "emergency_shelter", "area": 100}, _square(*area_at(area, 1), d)),
        ({"name": "AED", "type": "aed", "sample": 1}, point),
    ]
    path = tmp_path / "f.geojson"
    path.write_text(_feature_collection(features), "utf-8")
    facilities = read_facilities(path, rules, area.study_area)
    assert set(facilities.geom_type) == {"Point"}
    assert 9_000 < facilities["area_m2"].iloc[0] < 11_000
    assert facilities["area_m2"].iloc[1] == 100 and np.isnan(facilities["area_m2"].iloc[2])
    assert facilities["source"].tolist() == ["user", "user", "sample"]


def test_unknown_facility_types_name_rows_and_list_accepted(area, rules, tmp_path):
    rows = _facility_rows(area)
    rows[1]["类型"] = "药店"
    msg = _raises(read_facilities, _csv(tmp_path / "f.csv", rows), rules, area.study_area)
    assert "f.csv" in msg and "row 3" in msg and "药店" in msg and "消防站 (fire_station)" in msg


def test_negative_capacity_or_area_name_rows(area, rules, tmp_path):
    rows = _facility_rows(area)
    rows[0]["面积"] = -5
    msg = _raises(read_facilities, _csv(tmp_path / "neg.csv", rows), rules, area.study_area)
    assert "neg.csv" in msg and "row 2" in msg and "area" in msg
    rows = _facility_rows(area)
    rows[1]["容量"] = -1
    msg = _raises(read_facilities, _csv(tmp_path / "neg2.csv", rows), rules, area.study_area)
    assert "row 3" in msg and "capacity" in msg


def test_non_numeric_capacity_names_rows(area, rules, tmp_path):
    rows = _facility_rows(area)
    rows[0]["容量"] = "约100人"
    msg = _raises(read_facilities, _csv(tmp_path / "cap.csv", rows), rules, area.study_area)
    assert "cap.csv" in msg and "row 2" in msg and "容量" in msg


def test_facilities_outside_the_area_name_rows(area, rules, tmp_path):
    rows = _facility_rows(area)
    rows[2]["经度"] = 118.5
    msg = _raises(read_facilities, _csv(tmp_path / "o.csv", rows), rules, area.study_area)
    assert "o.csv" in msg and "row 4" in msg and "outside" in msg


def test_duplicate_facility_names_within_a_type_name_rows(area, rules, tmp_path):
    rows = _facility_rows(area)
    rows.append({**rows[0], "经度": area.lon[3], "纬度": area.lat[3]})
    rows[1]["名称"] = rows[0]["名称"]  # same name, other type: allowed
    msg = _raises(read_facilities, _csv(tmp_path / "d.csv", rows), rules, area.study_area)
    assert "d.csv" in msg and "row 2, 5" in msg and "row 3" not in msg


def test_facility_file_without_a_type_column_is_refused(area, rules, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "类型"} for r in _facility_rows(area)]
    msg = _raises(read_facilities, _csv(tmp_path / "t.csv", rows), rules, area.study_area)
    assert "t.csv" in msg and "row 1" in msg and "设施类型" in msg


# ---------------------------------------------------------------- vulnerable-person counts


def test_vulnerable_counts_by_building_id(area, tmp_path):
    rows = [
        {"building_id": area.ids[0], "老年人": 12, "残疾人": 1, "sample": 1},
        {"building_id": area.ids[1], "老年人": 3, "残疾人": None, "sample": 1},
    ]
    counts = read_vulnerable(_csv(tmp_path / "v.csv", rows), area.buildings)
    assert list(counts.columns) == ["elderly", "disabled", "alone"]
    assert counts.loc[area.ids[0]].tolist() == [12, 1, 0]
    assert counts.loc[area.ids[1]].tolist() == [3, 0, 0]
    assert all(counts[c].dtype.kind == "i" for c in counts)
    assert counts.attrs["sample"] is True


def test_vulnerable_counts_by_location_add_up_per_building(area, tmp_path):
    rows = [
        {"lon": area.lon[i % 3], "lat": area.lat[i % 3], "elderly": 1, "alone": i} for i in range(6)
    ]
    counts = read_vulnerable(_csv(tmp_path / "v.csv", rows), area.buildings)
    assert sorted(counts.index) == sorted(area.ids[:3])
    assert counts.loc[area.ids[0], "elderly"] == 2 and counts.loc[area.ids[0], "alone"] == 3
    assert counts.loc[area.ids[2], "alone"] == 2 + 5
    assert counts.attrs["sample"] is False


@pytest.mark.parametrize("column", ["姓名", "name", "身份证号", "联系电话", "phone", "手机"])
def test_personal_data_columns_are_refused(area, tmp_path, column):
    rows = [{"building_id": area.ids[0], "老年人": 1, column: "x"}]
    msg = _raises(read_vulnerable, _csv(tmp_path / "p.csv", rows), area.buildings)
    assert "p.csv" in msg and column in msg and "aggregated counts" in msg


def test_negative_or_fractional_counts_name_rows(area, tmp_path):
    rows = [
        {"building_id": area.ids[0], "老年人": 2},
        {"building_id": area.ids[1], "老年人": -1},
        {"building_id": area.ids[2], "老年人": 1.5},
    ]
    msg = _raises(read_vulnerable, _csv(tmp_path / "n.csv", rows), area.buildings)
    assert "n.csv" in msg and "row 3, 4" in msg


def test_file_without_count_columns_is_refused(area, tmp_path):
    rows = [{"building_id": area.ids[0], "households": 2}]
    msg = _raises(read_vulnerable, _csv(tmp_path / "c.csv", rows), area.buildings)
    assert "c.csv" in msg and "老年人" in msg and "残疾人" in msg and "独居" in msg
