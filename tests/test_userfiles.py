"""Tests of wangge.data.userfiles: boundary and household files joined to the demo buildings.

Every input file is written into ``tmp_path`` at test time; building ids and positions come
from the bundled Nanjing demo (© OpenStreetMap contributors, ODbL 1.0).
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from wangge.data.osm import read_osm
from wangge.data.userfiles import (
    read_boundary,
    read_households,
    read_table,
    read_vector,
    table_points,
)
from wangge.errors import InputError
from wangge.geo.crs import metric_crs, wgs84_to_gcj02

DEMO_OSM = Path(__file__).resolve().parent.parent / "data" / "demo" / "nanjing-xinjiekou.osm"
N_PICKS = 12


@dataclass(frozen=True)
class Demo:
    """The demo buildings in their metric CRS and a few picked buildings to aim at."""

    buildings: gpd.GeoDataFrame
    ids: list[str]  # picked building ids
    lon: np.ndarray  # WGS84 representative points of the picked buildings
    lat: np.ndarray
    points_m: gpd.GeoSeries  # the same points in the metric CRS


@pytest.fixture(scope="module")
def demo() -> Demo:
    extract = read_osm(DEMO_OSM)
    centre = extract.buildings.geometry.union_all().centroid
    crs = metric_crs(centre.x, centre.y)
    assert crs.to_epsg() == 4549
    buildings = extract.buildings.to_crs(crs).reset_index(drop=True)
    rep = buildings.representative_point()
    # Pick buildings whose representative point has 3 m of room inside that building and
    # whose 3 m disc touches no other building, so a point near it can only mean that one.
    discs = rep.buffer(3.0).to_numpy()
    tree = shapely.STRtree(buildings.geometry.to_numpy())
    hits = Counter(tree.query(discs, predicate="intersects")[0])
    roomy = shapely.within(discs, buildings.geometry.to_numpy())
    good = [i for i in range(len(buildings)) if roomy[i] and hits[i] == 1]
    picks = good[:: len(good) // N_PICKS][:N_PICKS]
    points_m = gpd.GeoSeries(rep.iloc[picks].to_numpy(), crs=crs)
    lonlat = points_m.to_crs(4326)
    return Demo(
        buildings=buildings,
        ids=buildings["building_id"].iloc[picks].tolist(),
        lon=lonlat.x.to_numpy(),
        lat=lonlat.y.to_numpy(),
        points_m=points_m,
    )


def _feature_collection(geometries: list[dict | None], households: list[int]) -> str:
    features = [
        {"type": "Feature", "properties": {"households": hh, "name": f"f{i}"}, "geometry": g}
        for i, (g, hh) in enumerate(zip(geometries, households, strict=True))
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


def _square(lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    return {"type": "Polygon", "coordinates": [ring]}


def _bowtie(lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    """A self-intersecting ring: two triangles meeting at the centre of the box."""
    ring = [[lon0, lat0], [lon1, lat1], [lon1, lat0], [lon0, lat1], [lon0, lat0]]
    return {"type": "Polygon", "coordinates": [ring]}


def _message(info: pytest.ExceptionInfo[InputError]) -> str:
    return str(info.value)


# ---------------------------------------------------------------- households by building id


def test_w_prefixed_ids_set_counts_of_exactly_those_buildings(demo, tmp_path):
    path = tmp_path / "hh.csv"
    chosen = demo.ids[:5]
    pd.DataFrame({"building_id": chosen, "households": [10, 20, 30, 40, 50]}).to_csv(
        path, index=False
    )
    imported = read_households(path, demo.buildings)
    assert sorted(imported.counts.index) == sorted(chosen)
    assert imported.counts["households"].to_dict() == dict(
        zip(chosen, [10, 20, 30, 40, 50], strict=True)
    )
    assert imported.notes["household rows matched by id"] == 5


def test_bare_numeric_way_ids_match_w_prefixed_buildings(demo, tmp_path):
    ways = [i for i in demo.ids if i.startswith("w")][:4]
    path = tmp_path / "hh.csv"
    path.write_text(
        "building_id,households\n" + "".join(f"{i[1:]},{n}\n" for n, i in enumerate(ways, 1))
    )
    assert pd.read_csv(path)["building_id"].dtype.kind == "i"  # really numeric in the file
    imported = read_households(path, demo.buildings)
    assert imported.counts["households"].to_dict() == {i: n for n, i in enumerate(ways, 1)}


def test_bare_and_prefixed_ids_mix_in_one_column(demo, tmp_path):
    ways = [i for i in demo.ids if i.startswith("w")][:2]
    path = tmp_path / "hh.csv"
    path.write_text(f"osm_id,hh\n{ways[0]},7\n{ways[1][1:]},9\n")
    imported = read_households(path, demo.buildings)
    assert imported.counts["households"].to_dict() == {ways[0]: 7, ways[1]: 9}


def test_population_column_is_carried_with_households(demo, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text(f"building_id,households,population\n{demo.ids[0]},12,30\n")
    counts = read_households(path, demo.buildings).counts
    assert counts.loc[demo.ids[0], "households"] == 12
    assert counts.loc[demo.ids[0], "population"] == 30


def test_unknown_ids_among_known_ones_are_ignored_and_noted(demo, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text(f"building_id,households\n{demo.ids[0]},5\nw1,6\nw2,7\n")
    imported = read_households(path, demo.buildings)
    assert list(imported.counts.index) == [demo.ids[0]]
    assert imported.notes["household rows with unknown building id, ignored"] == 2


# ---------------------------------------------------------------- households by location


def _points_csv(path: Path, lon, lat, households) -> Path:
    pd.DataFrame({"lon": lon, "lat": lat, "households": households}).to_csv(path, index=False)
    return path


def test_lonlat_points_land_in_their_buildings(demo, tmp_path):
    households = list(range(1, N_PICKS + 1))
    path = _points_csv(tmp_path / "pts.csv", demo.lon, demo.lat, households)
    imported = read_households(path, demo.buildings)
    assert imported.counts["households"].to_dict() == dict(zip(demo.ids, households, strict=True))
    assert imported.notes["household rows matched by location"] == N_PICKS


def test_several_points_in_one_building_add_up(demo, tmp_path):
    # three points within 2 m of the first pick's representative point, one at the second
    p = demo.points_m.iloc[0]
    near = gpd.GeoSeries(
        [p, shapely.Point(p.x + 1.5, p.y), shapely.Point(p.x, p.y - 1.5), demo.points_m.iloc[1]],
        crs=demo.points_m.crs,
    ).to_crs(4326)
    path = _points_csv(tmp_path / "pts.csv", near.x, near.y, [5, 7, 11, 3])
    counts = read_households(path, demo.buildings).counts
    assert counts["households"].to_dict() == {demo.ids[0]: 23, demo.ids[1]: 3}


def test_points_a_few_metres_outside_a_building_snap_to_it(demo, tmp_path):
    target = demo.buildings["building_id"] == demo.ids[0]
    footprint = demo.buildings.geometry[target].iloc[0]
    others = demo.buildings.geometry[~target].union_all()
    # a point 5 m outside the footprint and more than 10 m from any other building
    ring = shapely.get_exterior_ring(shapely.buffer(footprint, 5.0))
    q = next(
        pt
        for pt in (ring.interpolate(d) for d in np.arange(0.0, ring.length, 1.0))
        if pt.distance(others) > 10.0
    )
    assert 4.9 < q.distance(footprint) < 5.1
    ll = gpd.GeoSeries([q], crs=demo.points_m.crs).to_crs(4326)
    path = _points_csv(tmp_path / "pts.csv", ll.x, ll.y, [4])
    imported = read_households(path, demo.buildings)
    assert imported.counts["households"].to_dict() == {demo.ids[0]: 4}
    assert imported.notes["household rows matched by location"] == 1


def test_points_beyond_snap_distance_are_ignored_and_noted(demo, tmp_path):
    p = demo.points_m.iloc[0]
    centre = demo.buildings.geometry.union_all().centroid
    # 6 km east of the centre of the demo (about 3 km wide) is far from every building
    far = gpd.GeoSeries(
        [p, shapely.Point(centre.x + 6000, centre.y)], crs=demo.points_m.crs
    ).to_crs(4326)
    path = _points_csv(tmp_path / "pts.csv", far.x, far.y, [4, 5])
    imported = read_households(path, demo.buildings)
    assert imported.counts["households"].to_dict() == {demo.ids[0]: 4}
    assert imported.notes["household rows outside every building, ignored"] == 1


def test_gcj02_offset_in_nanjing_is_a_few_hundred_metres(demo):
    glon, glat = wgs84_to_gcj02(demo.lon, demo.lat)
    shifted = gpd.GeoSeries(shapely.points(glon, glat), crs=4326).to_crs(demo.points_m.crs)
    metres = shifted.distance(demo.points_m, align=False)
    assert ((metres > 200) & (metres < 1000)).all()


def test_gcj02_points_land_in_the_same_buildings_with_gcj02(demo, tmp_path):
    glon, glat = wgs84_to_gcj02(demo.lon, demo.lat)
    households = list(range(1, N_PICKS + 1))
    path = _points_csv(tmp_path / "gcj.csv", glon, glat, households)
    counts = read_households(path, demo.buildings, gcj02=True).counts
    assert counts["households"].to_dict() == dict(zip(demo.ids, households, strict=True))


def test_gcj02_points_read_as_wgs84_mostly_miss_their_buildings(demo, tmp_path):
    glon, glat = wgs84_to_gcj02(demo.lon, demo.lat)
    path = _points_csv(tmp_path / "gcj.csv", glon, glat, list(range(1, N_PICKS + 1)))
    counts = read_households(path, demo.buildings, gcj02=False).counts
    assert len(set(counts.index) & set(demo.ids)) < N_PICKS / 2


def test_xlsx_with_chinese_headers(demo, tmp_path):
    path = tmp_path / "户数.xlsx"
    households = [3 * i for i in range(1, N_PICKS + 1)]
    pd.DataFrame({"经度": demo.lon, "纬度": demo.lat, "户数": households}).to_excel(
        path, index=False
    )
    counts = read_households(path, demo.buildings).counts
    assert counts["households"].to_dict() == dict(zip(demo.ids, households, strict=True))


def _picked_polygons(demo: Demo, households: list[int]) -> gpd.GeoDataFrame:
    geoms = demo.buildings.set_index("building_id").geometry.loc[demo.ids].to_numpy()
    frame = gpd.GeoDataFrame({"households": households}, geometry=geoms, crs=demo.buildings.crs)
    return frame.to_crs(4326)


def test_geojson_polygons_land_in_their_buildings(demo, tmp_path):
    households = list(range(100, 100 + N_PICKS))
    path = tmp_path / "hh.geojson"
    _picked_polygons(demo, households).to_file(path, driver="GeoJSON", engine="pyogrio")
    imported = read_households(path, demo.buildings)
    assert imported.counts["households"].to_dict() == dict(zip(demo.ids, households, strict=True))
    assert "household file geometries repaired" not in imported.notes


def test_zipped_shapefile_lands_in_its_buildings(demo, tmp_path):
    households = list(range(50, 50 + N_PICKS))
    folder = tmp_path / "shp"
    folder.mkdir()
    _picked_polygons(demo, households).to_file(folder / "households.shp", engine="pyogrio")
    parts = sorted(folder.iterdir())
    assert {p.suffix for p in parts} >= {".shp", ".shx", ".dbf", ".prj"}
    path = tmp_path / "households.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for part in parts:
            zf.write(part, part.name)
    counts = read_households(path, demo.buildings).counts
    assert counts["households"].to_dict() == dict(zip(demo.ids, households, strict=True))


def test_bowtie_household_polygon_is_repaired_and_counted(demo, tmp_path):
    # a 2 m bow-tie centred on the first pick's representative point, and a plain square
    p, q = demo.points_m.iloc[0], demo.points_m.iloc[1]
    box = gpd.GeoSeries(
        [shapely.Point(p.x - 1, p.y - 1), shapely.Point(p.x + 1, p.y + 1)], crs=demo.points_m.crs
    ).to_crs(4326)
    sq = gpd.GeoSeries(
        [shapely.Point(q.x - 1, q.y - 1), shapely.Point(q.x + 1, q.y + 1)], crs=demo.points_m.crs
    ).to_crs(4326)
    path = tmp_path / "hh.geojson"
    path.write_text(
        _feature_collection(
            [
                _bowtie(box.x[0], box.y[0], box.x[1], box.y[1]),
                _square(sq.x[0], sq.y[0], sq.x[1], sq.y[1]),
            ],
            [8, 9],
        )
    )
    frame, repaired = read_vector(path)
    assert repaired == 1
    assert frame.is_valid.all()
    imported = read_households(path, demo.buildings)
    assert imported.notes["household file geometries repaired"] == 1
    assert imported.counts["households"].to_dict() == {demo.ids[0]: 8, demo.ids[1]: 9}


# ---------------------------------------------------------------- vectors and boundaries


def test_read_vector_returns_wgs84_features_and_no_repairs(tmp_path):
    path = tmp_path / "area.geojson"
    path.write_text(_feature_collection([_square(118.77, 32.04, 118.78, 32.045)], [1]))
    frame, repaired = read_vector(path)
    assert repaired == 0
    assert frame.crs.to_epsg() == 4326
    assert frame.total_bounds == pytest.approx([118.77, 32.04, 118.78, 32.045])


def test_boundary_is_the_union_of_polygons_in_the_metric_crs(demo, tmp_path):
    path = tmp_path / "area.geojson"
    path.write_text(
        _feature_collection(
            [_square(118.77, 32.04, 118.775, 32.045), _square(118.775, 32.04, 118.78, 32.045)],
            [0, 0],
        )
    )
    geom, repaired = read_boundary(path, demo.buildings.crs)
    assert repaired == 0
    assert geom.geom_type == "Polygon"  # the two halves merge
    # two halves of a box of about 944 m × 555 m
    assert 5.0e5 < geom.area < 5.5e5


def test_bowtie_boundary_is_repaired_into_two_triangles(demo, tmp_path):
    path = tmp_path / "area.geojson"
    path.write_text(_feature_collection([_bowtie(118.77, 32.04, 118.78, 32.045)], [0]))
    geom, repaired = read_boundary(path, demo.buildings.crs)
    assert repaired == 1
    assert geom.is_valid
    assert geom.geom_type == "MultiPolygon"
    assert len(geom.geoms) == 2
    # half of the roughly 940 m × 555 m box
    assert 2.4e5 < geom.area < 2.8e5


def test_boundary_of_only_lines_is_rejected(demo, tmp_path):
    path = tmp_path / "line.geojson"
    line = {"type": "LineString", "coordinates": [[118.77, 32.04], [118.78, 32.045]]}
    path.write_text(_feature_collection([line], [0]))
    with pytest.raises(InputError) as info:
        read_boundary(path, demo.buildings.crs)
    assert str(path) in _message(info)
    assert "no polygons" in _message(info)


# ---------------------------------------------------------------- tables and points


def test_table_points_use_lng_lat_aliases(tmp_path):
    frame = pd.DataFrame({"LNG": [118.78, 118.79], "Latitude": [32.04, 32.05], "hh": [1, 2]})
    pts = table_points(frame, tmp_path / "t.csv")
    assert pts.crs.to_epsg() == 4326
    assert list(pts.geometry.x) == [118.78, 118.79]
    assert list(pts.geometry.y) == [32.04, 32.05]
    assert list(pts["hh"]) == [1, 2]


def test_table_points_gcj02_round_trips_to_wgs84(demo, tmp_path):
    glon, glat = wgs84_to_gcj02(demo.lon, demo.lat)
    pts = table_points(pd.DataFrame({"lon": glon, "lat": glat}), tmp_path / "t.csv", gcj02=True)
    assert pts.geometry.x.to_numpy() == pytest.approx(demo.lon, abs=1e-7)
    assert pts.geometry.y.to_numpy() == pytest.approx(demo.lat, abs=1e-7)


def test_read_table_strips_header_whitespace_and_utf8_bom(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeff building_id , 户数\nw1,2\n".encode())
    frame = read_table(path)
    assert list(frame.columns) == ["building_id", "户数"]


def _gbk_csv(path: Path, ids: list[str]) -> Path:
    names = ["金陵小区", "新街口花园", "汉中门大街"]
    rows = "".join(f"{i},{n},{name}\n" for i, n, name in zip(ids, [4, 5, 6], names, strict=False))
    path.write_bytes(("building_id,households,小区名称\n" + rows).encode("gbk"))
    return path


def test_gbk_csv_reads_with_encoding_gbk_and_keeps_chinese(demo, tmp_path):
    path = _gbk_csv(tmp_path / "gbk.csv", demo.ids[:3])
    frame = read_table(path, encoding="gbk")
    assert list(frame.columns) == ["building_id", "households", "小区名称"]
    assert list(frame["小区名称"]) == ["金陵小区", "新街口花园", "汉中门大街"]
    counts = read_households(path, demo.buildings, encoding="gbk").counts
    assert counts["households"].to_dict() == dict(zip(demo.ids[:3], [4, 5, 6], strict=True))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("reader", "name"),
    [
        ("households", "missing.csv"),
        ("households", "missing.geojson"),
        ("boundary", "missing.geojson"),
        ("vector", "missing.zip"),
        ("table", "missing.xlsx"),
    ],
)
def test_missing_file_is_named(demo, tmp_path, reader, name):
    path = tmp_path / name
    calls = {
        "households": lambda: read_households(path, demo.buildings),
        "boundary": lambda: read_boundary(path, demo.buildings.crs),
        "vector": lambda: read_vector(path),
        "table": lambda: read_table(path),
    }
    with pytest.raises(InputError) as info:
        calls[reader]()
    assert _message(info) == f"{path}: file not found"


@pytest.mark.parametrize("name", ["hh.csv", "hh.xlsx", "hh.geojson", "area.zip"])
def test_empty_file_is_named(demo, tmp_path, name):
    path = tmp_path / name
    path.touch()
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert _message(info) == f"{path}: file is empty"


def test_csv_with_header_only_holds_no_rows(demo, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text("building_id,households\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert _message(info) == f"{path}: holds no rows"


def test_unsupported_file_type_is_named(demo, tmp_path):
    path = tmp_path / "hh.docx"
    path.write_text("not a table")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert str(path) in _message(info)
    assert "unsupported file type" in _message(info)


def test_unreadable_geojson_is_named(tmp_path):
    path = tmp_path / "area.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(InputError) as info:
        read_vector(path)
    assert _message(info).startswith(f"{path}: cannot be read as vector data")


@pytest.mark.parametrize(
    "empty",
    [
        None,
        {"type": "Polygon", "coordinates": []},
        {"type": "GeometryCollection", "geometries": []},
    ],
    ids=["null", "empty-polygon", "empty-collection"],
)
def test_geojson_with_empty_geometry_names_the_feature(demo, tmp_path, empty):
    path = tmp_path / "area.geojson"
    square = _square(118.77, 32.04, 118.78, 32.045)
    path.write_text(_feature_collection([square, square, empty], [1, 2, 3]))
    for call in (
        lambda: read_vector(path),
        lambda: read_boundary(path, demo.buildings.crs),
        lambda: read_households(path, demo.buildings),
    ):
        with pytest.raises(InputError) as info:
            call()
        msg = _message(info)
        assert msg.startswith(f"{path}: feature 3 ")
        assert "empty or missing geometry" in msg


def test_swapped_lat_lon_is_named_with_rows(demo, tmp_path):
    path = tmp_path / "pts.csv"
    pd.DataFrame({"lon": demo.lat[:3], "lat": demo.lon[:3], "households": [1, 2, 3]}).to_csv(
        path, index=False
    )
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    msg = _message(info)
    assert msg.startswith(f"{path}: row 2, 3, 4: ")
    assert "look swapped" in msg


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(118.78, 95.0), (118.78, -91.0), (218.78, 32.04), (-181.0, 32.04)],
    ids=["lat-high", "lat-low", "lon-high", "lon-low"],
)
def test_lon_or_lat_out_of_range_names_the_row(demo, tmp_path, lon, lat):
    path = tmp_path / "pts.csv"
    pd.DataFrame(
        {
            "lon": [demo.lon[0], demo.lon[1], lon],
            "lat": [demo.lat[0], demo.lat[1], lat],
            "households": [1, 2, 3],
        }
    ).to_csv(path, index=False)
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    msg = _message(info)
    assert msg.startswith(f"{path}: row 4: ")
    assert "out of range" in msg


def test_non_numeric_coordinates_name_the_row(demo, tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text(f"lon,lat,households\n{demo.lon[0]},{demo.lat[0]},1\n118.78,北纬32度,2\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert _message(info).startswith(f"{path}: row 3: ")
    assert "not numbers" in _message(info)


def test_gbk_csv_read_as_utf8_suggests_encoding_gbk(demo, tmp_path):
    path = _gbk_csv(tmp_path / "gbk.csv", demo.ids[:3])
    for call in (lambda: read_table(path), lambda: read_households(path, demo.buildings)):
        with pytest.raises(InputError) as info:
            call()
        msg = _message(info)
        assert msg.startswith(f"{path}: line 1: is not valid utf-8 text")
        assert "GBK" in msg
        assert "--encoding gbk" in msg


def test_gbk_hint_points_at_the_first_bad_line(demo, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(f"building_id,households,name\n{demo.ids[0]},3,A\nw1,4,金陵\n".encode("gbk"))
    with pytest.raises(InputError) as info:
        read_table(path)
    assert _message(info).startswith(f"{path}: line 3: ")
    assert "--encoding gbk" in _message(info)


def test_unknown_encoding_is_named(tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text("building_id,households\nw1,2\n")
    with pytest.raises(InputError) as info:
        read_table(path, encoding="no-such-codec")
    assert _message(info) == f"{path}: unknown text encoding 'no-such-codec'"


def test_duplicate_building_ids_name_the_rows(demo, tmp_path):
    path = tmp_path / "hh.csv"
    a, b = demo.ids[0], demo.ids[1]
    path.write_text(f"building_id,households\n{a},1\n{b},2\n{a},3\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    msg = _message(info)
    assert msg.startswith(f"{path}: row 2, 4: duplicate building ids")
    assert a in msg


def test_bare_and_prefixed_forms_of_one_id_are_duplicates(demo, tmp_path):
    way = next(i for i in demo.ids if i.startswith("w"))
    path = tmp_path / "hh.csv"
    path.write_text(f"building_id,households\n{way},1\n{way[1:]},2\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert _message(info).startswith(f"{path}: row 2, 3: duplicate building ids")


def test_missing_households_column_is_named(demo, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text(f"building_id,residents\n{demo.ids[0]},3\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    msg = _message(info)
    assert msg.startswith(f"{path}: has no households column")
    assert "户数" in msg


def test_negative_households_name_the_row(demo, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text(f"building_id,households\n{demo.ids[0]},3\n{demo.ids[1]},-2\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert _message(info) == f"{path}: row 3: households must be a count from 0 to 1,000,000"


@pytest.mark.parametrize("bad", ["inf", "1e400", "2000001", "nan"])
def test_households_past_any_count_name_the_row(demo, tmp_path, bad):
    """A count that is not finite, or more than any building holds, is refused with its
    row, not read as a number (inf passed the old check of ≥ 0)."""
    path = tmp_path / "hh.csv"
    path.write_text(f"building_id,households\n{demo.ids[0]},3\n{demo.ids[1]},{bad}\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert _message(info) == f"{path}: row 3: households must be a count from 0 to 1,000,000"


def test_ids_matching_no_building_are_rejected(demo, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text("building_id,households\nw1,3\n2,4\nr3,5\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    msg = _message(info)
    assert msg.startswith(f"{path}: none of the ids in column 'building_id' match")


def test_table_without_ids_or_coordinates_is_rejected(demo, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text("address,households\n中山路1号,3\n")
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    assert _message(info).startswith(f"{path}: has neither a building id column nor lon/lat")


def test_points_matching_no_building_are_rejected(demo, tmp_path):
    # Beijing, Tiananmen: a valid place, but nowhere near the Nanjing demo
    path = _points_csv(tmp_path / "pts.csv", [116.3975, 116.3980], [39.9087, 39.9090], [1, 2])
    with pytest.raises(InputError) as info:
        read_households(path, demo.buildings)
    msg = _message(info)
    assert msg.startswith(f"{path}: no row lies in or within 20 m of a building")
    assert "--gcj02" in msg


def test_generic_id_column_that_matches_no_building_falls_back_to_location(demo, tmp_path):
    # QGIS adds an "id" field of 1, 2, 3 …; those are not building ids
    polys = _picked_polygons(demo, list(range(7, 7 + N_PICKS)))
    polys.insert(0, "id", range(900000001, 900000001 + N_PICKS))
    path = tmp_path / "qgis.geojson"
    polys.to_file(path, driver="GeoJSON")
    got = read_households(path, demo.buildings)
    want = dict(zip(demo.ids, range(7, 7 + N_PICKS), strict=True))
    assert got.counts["households"].to_dict() == want
    assert any("joined by location" in k for k in got.notes)
