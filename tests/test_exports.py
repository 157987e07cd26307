"""Layer exports: GeoJSON, GeoPackage and zipped Shapefiles in the CRSs and encodings asked for."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Geod, Transformer

from wangge.data.exports import (
    DBF_NAMES,
    EXPORT_CRS,
    EXPORT_FORMATS,
    dbf_field_names,
    export_layer,
)
from wangge.errors import InputError
from wangge.geo.crs import wgs84_to_gcj02

NAMES = ["新街口社区第一网格", "湖南路社区第二网格", "华侨路社区第三网格"]


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    """Three grid polygons around Xinjiekou, Nanjing, in EPSG:4549 (CGCS2000 GK CM 120°E)."""
    lon, lat, step = 118.78, 32.04, 0.004
    boxes = [shapely.box(lon + i * step, lat, lon + (i + 1) * step, lat + step) for i in range(3)]
    frame = gpd.GeoDataFrame(
        {
            "code": ["320106001001001", "320106001001002", "320106001002001"],
            "name": NAMES,
            "households": [412, 388, 1203],
            "parent_code": ["320106001001", "320106001001", "320106001002"],
            "deviation_pct": [3.0, -3.0, 20.3],
        },
        geometry=boxes,
        crs=4326,
    )
    return frame.to_crs(4549)


def _unzip(content: bytes, where: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        zf.extractall(where)
    return where


def _coords(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Vertices in a canonical order (a Shapefile turns exterior rings clockwise)."""
    return shapely.get_coordinates(shapely.normalize(frame.geometry.to_numpy()))


def _shifted(frame: gpd.GeoDataFrame, shift) -> np.ndarray:
    """Vertices of ``frame`` in EPSG:4326 moved by ``shift(lon, lat) -> (x, y)``."""
    geoms = frame.to_crs(4326).geometry.to_numpy()
    moved = shapely.transform(geoms, lambda xy: np.column_stack(shift(xy[:, 0], xy[:, 1])))
    return shapely.get_coordinates(shapely.normalize(moved))


def _read(content: bytes, suffix: str, tmp_path: Path) -> gpd.GeoDataFrame:
    path = tmp_path / f"read.{suffix}"
    path.write_bytes(content)
    return gpd.read_file(path)


def test_gbk_shapefile_round_trips_chinese_names(grids, tmp_path):
    export = export_layer(grids, "grids", "shp", "EPSG:4326", "GBK")
    assert export.filename == "grids.zip"
    assert export.media_type == "application/zip"
    folder = _unzip(export.content, tmp_path / "shp")
    names = {p.name for p in folder.iterdir()}
    assert {"grids.shp", "grids.shx", "grids.dbf", "grids.prj", "grids.cpg", "fields.csv"} <= names
    assert (folder / "grids.cpg").read_bytes() == b"GBK"

    back = gpd.read_file(folder / "grids.shp", encoding="GBK")
    assert back["name"].tolist() == NAMES
    assert back["code"].tolist() == grids["code"].tolist()
    assert back["hh"].tolist() == grids["households"].tolist()
    assert back["parent"].tolist() == grids["parent_code"].tolist()
    assert np.allclose(back["dev_pct"], grids["deviation_pct"])
    assert back.crs.to_epsg() == 4326

    dbf = (folder / "grids.dbf").read_bytes()
    assert NAMES[0].encode("gbk") in dbf
    assert NAMES[0].encode("utf-8") not in dbf  # really GBK, not UTF-8
    # the .cpg alone tells GDAL the encoding
    assert gpd.read_file(folder / "grids.shp")["name"].tolist() == NAMES


def test_utf8_shapefile_has_short_unique_fields_and_a_field_table(grids, tmp_path):
    wide = grids.assign(
        polsby_popper=0.7,
        road_share=0.5,
        record_codes=["320106001001001001,320106001001001002", "", ""],
        a_very_long_column_one=1,
        a_very_long_column_two=2,
        社区名称很长的字段=["甲", "乙", "丙"],
    )
    export = export_layer(wide, "microgrids", "shp", "EPSG:4326", "UTF-8")
    folder = _unzip(export.content, tmp_path / "shp")
    assert (folder / "microgrids.cpg").read_bytes() == b"UTF-8"
    assert NAMES[0].encode("utf-8") in (folder / "microgrids.dbf").read_bytes()

    info = pyogrio.read_info(folder / "microgrids.shp")
    fields = list(info["fields"])
    assert all(len(f.encode("utf-8")) <= 10 for f in fields)
    assert len({f.casefold() for f in fields}) == len(fields)

    with open(folder / "fields.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = {row["name"]: row["dbf_name"] for row in rows}
    assert list(table) == [c for c in wide.columns if c != "geometry"]
    assert sorted(table.values()) == sorted(fields)
    assert table["households"] == "hh"
    assert table["parent_code"] == "parent"
    assert table["deviation_pct"] == "dev_pct"
    assert table["polsby_popper"] == "pp"
    assert table["road_share"] == "road_share"
    assert table["record_codes"] == "rec_codes"

    back = gpd.read_file(folder / "microgrids.shp").rename(columns={v: k for k, v in table.items()})
    assert back["name"].tolist() == NAMES
    assert back["社区名称很长的字段"].tolist() == ["甲", "乙", "丙"]
    # consecutive record codes shrink to a range that fits the DBF's 254 bytes
    assert back["record_codes"].iloc[0] == "320106001001001001-002"
    assert back["a_very_long_column_one"].tolist() == [1, 1, 1]
    assert back["a_very_long_column_two"].tolist() == [2, 2, 2]


def test_dbf_field_names_are_short_unique_and_deterministic():
    columns = [
        "households",
        "hh",
        "HH_1",
        "a_very_long_column",
        "a_very_long_column_2",
        "code",
        "CODE",
        "社区名称很长的字段",
    ]
    for encoding in ("UTF-8", "GBK"):
        codec = "gbk" if encoding == "GBK" else "utf-8"
        names = dbf_field_names(columns, encoding)
        assert list(names) == columns
        assert all(len(n.encode(codec)) <= 10 for n in names.values())
        assert len({n.casefold() for n in names.values()}) == len(columns)
        assert names == dbf_field_names(columns, encoding)
        assert names["hh"] == "hh"  # a name that fits keeps it
        assert names["households"] == "hh_2"  # its short name is taken, so it is numbered
        assert names["a_very_long_column"] == "a_very_lon"
        assert names["a_very_long_column_2"] == "a_very_l_1"
    assert dbf_field_names(["社区名称很长的字段"], "GBK") == {"社区名称很长的字段": "社区名称很"}
    assert dbf_field_names(["社区名称很长的字段"], "UTF-8") == {"社区名称很长的字段": "社区名"}
    assert all(len(v) <= 10 for v in DBF_NAMES.values())


def test_geojson_is_rfc7946_in_wgs84(grids, tmp_path):
    export = export_layer(grids, "grids")
    assert export.media_type == "application/geo+json"
    assert export.filename == "grids.geojson"
    doc = json.loads(export.content.decode("utf-8"))
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc and "crs_note" not in doc
    props = [f["properties"] for f in doc["features"]]
    assert [p["name"] for p in props] == NAMES
    assert [p["code"] for p in props] == grids["code"].tolist()
    assert [p["households"] for p in props] == grids["households"].tolist()
    assert NAMES[0].encode("utf-8") in export.content  # not \u escapes
    ring = shapely.geometry.shape(doc["features"][0]["geometry"]).exterior
    assert ring.is_ccw  # right-hand rule
    back = _read(export.content, "geojson", tmp_path)
    assert back.crs.to_epsg() == 4326
    expected = grids.to_crs(4326)
    assert np.allclose(_coords(back), _coords(expected), rtol=0, atol=1e-9)


def test_gpkg_in_cgcs2000_reads_back_as_4490(grids, tmp_path):
    export = export_layer(grids, "grids", "gpkg", "EPSG:4490")
    assert export.media_type == "application/geopackage+sqlite3"
    assert export.filename == "grids.gpkg"
    back = _read(export.content, "gpkg", tmp_path)
    assert back.crs.to_epsg() == 4490
    assert pyogrio.list_layers(tmp_path / "read.gpkg")[0][0] == "grids"
    assert back["name"].tolist() == NAMES
    wgs = _coords(grids.to_crs(4326))
    to_cgcs = Transformer.from_crs(4326, 4490, always_xy=True)
    expected = _shifted(grids, to_cgcs.transform)
    assert np.allclose(_coords(back), expected, rtol=0, atol=1e-9)
    # pyproj knows no datum shift WGS84 -> CGCS2000 (a "ballpark" transformation), so the
    # degrees are the same; the two datums differ by centimetres, below that ballpark
    assert "Ballpark" in to_cgcs.description
    assert np.allclose(_coords(back), wgs, rtol=0, atol=1e-9)


def test_epsg_4547_gives_gauss_kruger_metres(grids, tmp_path):
    expected = _shifted(grids, Transformer.from_crs(4326, 4547, always_xy=True).transform)
    # CM 114°E without a zone prefix: Nanjing lies ~4.8° east of it, so x is far from 500 km
    assert expected[:, 0].min() > 940_000 and expected[:, 0].max() < 960_000
    assert expected[:, 1].min() > 3_550_000 and expected[:, 1].max() < 3_560_000

    doc = json.loads(export_layer(grids, "grids", "geojson", "EPSG:4547").content)
    assert doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4547"
    got = gpd.GeoDataFrame.from_features(doc["features"])
    assert np.allclose(_coords(got), expected, rtol=0, atol=1e-6)

    back = _read(export_layer(grids, "grids", "gpkg", "EPSG:4547").content, "gpkg", tmp_path)
    assert back.crs.to_epsg() == 4547
    assert np.allclose(_coords(back), expected, rtol=0, atol=1e-6)

    folder = _unzip(export_layer(grids, "grids", "shp", "EPSG:4547").content, tmp_path / "shp")
    shp = gpd.read_file(folder / "grids.shp")
    assert shp.crs.to_epsg() == 4547
    assert np.allclose(_coords(shp), expected, rtol=0, atol=1e-6)


def test_other_epsg_codes_are_accepted(grids, tmp_path):
    back = _read(export_layer(grids, "grids", "gpkg", "epsg:4548").content, "gpkg", tmp_path)
    assert back.crs.to_epsg() == 4548  # CGCS2000 GK CM 117°E


def test_gcj02_shifts_every_vertex_by_hundreds_of_metres(grids, tmp_path):
    wgs = _coords(grids.to_crs(4326))
    expected = _shifted(grids, wgs84_to_gcj02)

    export = export_layer(grids, "grids", "geojson", "GCJ02")
    doc = json.loads(export.content)
    assert "GCJ-02" in doc["crs_note"]
    assert "crs" not in doc
    back = _read(export.content, "geojson", tmp_path)
    got = _coords(back)
    assert np.allclose(got, expected, rtol=0, atol=1e-12)
    _, _, shift_m = Geod(ellps="WGS84").inv(wgs[:, 0], wgs[:, 1], got[:, 0], got[:, 1])
    assert (shift_m > 100).all() and (shift_m < 1000).all()

    gpkg = export_layer(grids, "grids", "gpkg", "GCJ02").content
    (tmp_path / "g.gpkg").write_bytes(gpkg)
    info = pyogrio.read_info(tmp_path / "g.gpkg")
    assert info["crs"] == "EPSG:4326"
    assert "GCJ-02" in info["layer_metadata"]["DESCRIPTION"]
    assert np.allclose(_coords(gpd.read_file(tmp_path / "g.gpkg")), got, rtol=0, atol=1e-12)

    folder = _unzip(export_layer(grids, "grids", "shp", "GCJ02").content, tmp_path / "shp")
    assert "GCJ-02" in (folder / "crs_note.txt").read_text(encoding="utf-8")
    assert np.allclose(_coords(gpd.read_file(folder / "grids.shp")), got, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_empty_layer_gives_a_valid_file(grids, fmt, tmp_path):
    export = export_layer(grids.iloc[:0], "grids", fmt, "EPSG:4490")
    if fmt == "geojson":
        doc = json.loads(export.content)
        assert doc["features"] == []
        assert doc["crs"]["properties"]["name"].endswith("4490")
        return
    if fmt == "shp":
        path = _unzip(export.content, tmp_path / "shp") / "grids.shp"
        assert pyogrio.read_info(path)["geometry_type"] == "Polygon"
    else:
        path = tmp_path / "grids.gpkg"
        path.write_bytes(export.content)
    back = gpd.read_file(path)
    assert len(back) == 0
    assert back.crs.to_epsg() == 4490


def test_lists_dicts_and_datetimes_become_text(grids, tmp_path):
    frame = grids.assign(
        parts=[["a", "乙"], {"floors": "1-6"}, None],
        updated=pd.to_datetime(["2024-05-01 08:30", "2024-05-02 00:00", None]),
    )
    doc = json.loads(export_layer(frame, "grids").content)
    props = [f["properties"] for f in doc["features"]]
    assert [p["parts"] for p in props] == ['["a", "乙"]', '{"floors": "1-6"}', None]
    assert [p["updated"] for p in props] == ["2024-05-01T08:30:00", "2024-05-02T00:00:00", None]
    for fmt, suffix in (("gpkg", "gpkg"), ("shp", "zip")):
        content = export_layer(frame, "grids", fmt).content
        if fmt == "shp":
            back = gpd.read_file(_unzip(content, tmp_path / "shp") / "grids.shp")
        else:
            back = _read(content, suffix, tmp_path)
        assert back["parts"].iloc[0] == '["a", "乙"]'
        assert back["updated"].iloc[0] == "2024-05-01T08:30:00"


@pytest.mark.parametrize(
    ("kwargs", "where", "listed"),
    [
        ({"fmt": "kml"}, "format", "geojson, gpkg, shp"),
        ({"crs": "EPSG:999999"}, "crs", ", ".join(EXPORT_CRS)),
        ({"crs": "foo"}, "crs", ", ".join(EXPORT_CRS)),
        ({"crs": "EPSG:5773"}, "crs", ", ".join(EXPORT_CRS)),  # a vertical CRS
        ({"fmt": "shp", "encoding": "latin-1"}, "encoding", "UTF-8, GBK"),
    ],
)
def test_unknown_arguments_list_the_allowed_values(grids, kwargs, where, listed):
    with pytest.raises(InputError) as err:
        export_layer(grids, "grids", **kwargs)
    assert err.value.where == where
    assert listed in str(err.value)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_gbk_applies_to_shapefiles_only(grids, fmt):
    with pytest.raises(InputError, match="encoding GBK applies to Shapefile exports only") as err:
        export_layer(grids, "grids", fmt, encoding="GBK")
    assert err.value.where == "encoding"


@pytest.mark.parametrize("text", ["𠀀", "🏠"])
def test_text_outside_gbk_names_the_feature_and_field(grids, text):
    frame = grids.copy()
    frame.loc[1, "name"] = f"湖南路{text}网格"
    with pytest.raises(InputError) as err:
        export_layer(frame, "grids", "shp", encoding="GBK")
    assert err.value.where == "feature 320106001001002"
    assert "'name'" in str(err.value) and "GBK" in str(err.value)
    # the same text is fine in UTF-8
    assert export_layer(frame, "grids", "shp", encoding="UTF-8").content


def test_unencodable_text_without_a_code_names_the_row(grids):
    frame = grids.drop(columns="code")
    frame.loc[2, "name"] = "🏠"
    with pytest.raises(InputError) as err:
        export_layer(frame, "grids", "shp", encoding="GBK")
    assert err.value.where == "feature 3 (counting from 1)"


def test_text_longer_than_a_dbf_field_is_refused(grids):
    frame = grids.assign(note=["x" * 300, "", ""])
    with pytest.raises(InputError, match="254") as err:
        export_layer(frame, "grids", "shp")
    assert err.value.where == "feature 320106001001001"
    assert export_layer(frame, "grids", "gpkg").content  # a GeoPackage holds it


def test_mixed_geometry_types_are_refused_for_shapefiles(grids):
    mixed = grids.copy()
    mixed.loc[2, "geometry"] = mixed.geometry.iloc[2].centroid
    with pytest.raises(InputError, match="point and polygon") as err:
        export_layer(mixed, "grids", "shp")
    assert err.value.source == "grids"
    assert export_layer(mixed, "grids", "gpkg").content  # other formats hold both
    multi = grids.copy()
    multi.loc[0, "geometry"] = shapely.MultiPolygon([grids.geometry.iloc[0]])
    assert export_layer(multi, "grids", "shp").content  # polygons and multipolygons mix


def test_frame_without_crs_is_refused(grids):
    with pytest.raises(InputError, match="no CRS"):
        export_layer(grids.set_crs(None, allow_override=True), "grids")


def test_coordinates_a_crs_cannot_represent_name_the_feature():
    far = gpd.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=[shapely.Point(114, 30), shapely.Point(-156, 0)], crs=4326
    )  # b is 90° from the central meridian of EPSG:4547, where Gauss-Kruger is infinite
    with pytest.raises(InputError, match="outside the area EPSG:4547") as err:
        export_layer(far, "points", "geojson", "EPSG:4547")
    assert err.value.where == "feature b"


def test_table_without_geometry_is_refused(grids):
    with pytest.raises(InputError, match="no geometry"):
        export_layer(pd.DataFrame(grids.drop(columns="geometry")), "vertical_microgrids")


def test_layer_name_must_be_safe_for_a_file_name(grids):
    with pytest.raises(InputError) as err:
        export_layer(grids, "../grids")
    assert err.value.where == "layer"


def test_compact_codes_only_shortens_one_run_of_codes():
    from wangge.data.exports import compact_codes

    run = ",".join(f"320102001004004{i:03d}" for i in range(1, 16))
    assert compact_codes(run) == "320102001004004001-015"
    assert compact_codes("320102001004004001,320102001004004003") == (
        "320102001004004001,320102001004004003"
    )
    assert compact_codes("320102001004004001") == "320102001004004001"
    assert compact_codes("") == "" and compact_codes(None) is None


def test_the_export_crs_schema_lists_exactly_what_an_export_takes():
    """Unseeded fuzzing sent ``crs=exposed_vulnerable``, valid to a free-string schema and
    refused by the server: the schema's enum is now the list the check takes, no more."""
    from fastapi.testclient import TestClient

    from wangge.api.app import create_app
    from wangge.api.settings import Settings
    from wangge.data.exports import _check_crs, accepted_crs
    from wangge.data.gpkg_store import GpkgStore

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(plan="p"), GpkgStore(Path(tmp) / "s.gpkg"))
        doc = TestClient(app).get("/api").json()
    (param,) = [
        p for p in doc["paths"]["/export/{layer}"]["get"]["parameters"] if p["name"] == "crs"
    ]
    assert param["schema"]["enum"] == list(accepted_crs())
    for crs in accepted_crs():
        assert _check_crs(crs)[0] == crs
    assert {"EPSG:4326", "EPSG:4490", "EPSG:4548", "EPSG:3857", "EPSG:32650", "GCJ02"} <= set(
        accepted_crs()
    )
    for outside in ("EPSG:3395", "EPSG:5773", "exposed_vulnerable"):
        with pytest.raises(InputError, match="unknown or unusable CRS"):
            _check_crs(outside)
