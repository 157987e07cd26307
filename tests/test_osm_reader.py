"""The OSM reader on the real demo extract and on its other encodings (.bz2, .pbf)."""

from __future__ import annotations

import bz2
import hashlib

import osmium
import pytest

from wangge.data.osm import check_osm_file, parse_height, parse_levels, read_osm
from wangge.errors import InputError


def test_demo_file_is_the_shipped_extract(demo_osm):
    digest = hashlib.sha256(demo_osm.read_bytes()).hexdigest()
    attribution = (demo_osm.parent / "ATTRIBUTION").read_text("utf-8")
    assert digest in attribution
    assert "© OpenStreetMap contributors" in attribution
    assert "ODbL" in attribution


def test_demo_counts(demo_extract):
    e = demo_extract
    assert len(e.buildings) == 1277
    assert e.buildings["building_id"].is_unique
    assert (e.buildings["building"] == "yes").sum() == 1061
    assert e.buildings["levels_tag"].notna().sum() == 131
    assert set(e.buildings.geom_type) <= {"Polygon", "MultiPolygon"}
    assert e.buildings.is_valid.all()
    # 296 POIs per the data README: nodes, plus areas with facility tags as points
    assert len(e.facilities) == 296
    assert e.facilities["facility_id"].str.startswith("n").sum() == 225
    assert {"school", "hospital", "clinic", "shelter", "police"} <= set(e.facilities["value"])
    assert (e.facilities.geom_type == "Point").all()
    assert len(e.roads) >= 380
    assert {"river", "water", "city_wall"} <= {k.split("=")[-1] for k in e.barriers["kind"]}
    assert (e.compounds["kind"] == "landuse=residential").sum() == 11


def test_roads_flags(demo_extract):
    roads = demo_extract.roads
    assert not roads.loc[roads["highway"] == "footway", "cuts_blocks"].any()
    assert roads.loc[roads["highway"] == "footway", "walk"].all()
    primary = roads[(roads["highway"] == "primary") & ~roads["tunnel"]]
    assert primary["cuts_blocks"].all()
    assert (primary["rank"] == 2).all()


def _convert(src, dst):
    with osmium.SimpleWriter(str(dst)) as writer:
        for obj in osmium.FileProcessor(str(src)):
            writer.add(obj)


@pytest.mark.parametrize("suffix", [".osm.pbf", ".osm.bz2"])
def test_other_encodings_give_the_same_buildings(demo_osm, demo_extract, tmp_path, suffix):
    path = tmp_path / f"demo{suffix}"
    if suffix == ".osm.bz2":
        path.write_bytes(bz2.compress(demo_osm.read_bytes()))
    else:
        _convert(demo_osm, path)
    other = read_osm(path)
    assert sorted(other.buildings["building_id"]) == sorted(demo_extract.buildings["building_id"])
    assert len(other.roads) == len(demo_extract.roads)
    assert len(other.facilities) == len(demo_extract.facilities)
    a = demo_extract.buildings.set_index("building_id").geometry
    b = other.buildings.set_index("building_id").geometry.reindex(a.index)
    assert (a.geom_equals_exact(b, tolerance=1e-6)).all()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty"),
        (b"hello", "not XML"),
        (b'<?xml version="1.0"?><html><body/></html>', "no <osm> root"),
    ],
)
def test_check_rejects(tmp_path, content, problem):
    path = tmp_path / "x.osm"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as info:
        check_osm_file(path)
    assert str(path) in str(info.value)


def test_truncated_file_is_named(demo_osm, tmp_path):
    path = tmp_path / "cut.osm"
    path.write_bytes(demo_osm.read_bytes()[:500_000])
    with pytest.raises(InputError, match="truncated") as info:
        read_osm(path)
    assert str(path) in str(info.value)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "city.shp"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match="unknown OSM file type"):
        read_osm(path)


def test_no_buildings(tmp_path):
    path = tmp_path / "roads.osm"
    path.write_text(
        '<?xml version="1.0"?><osm version="0.6">'
        '<node id="1" lat="32.0" lon="118.0"/><node id="2" lat="32.001" lon="118.0"/>'
        '<way id="5"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way></osm>'
    )
    with pytest.raises(InputError, match="no buildings"):
        read_osm(path)


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("6", 6.0),
        ("5;7", 6.0),
        ("6F", 6.0),
        ("0", None),
        ("abc", None),
        (None, None),
        ("2.5", 2.5),
        ("999", None),
    ],
)
def test_parse_levels(text, levels):
    assert parse_levels(text) == levels


@pytest.mark.parametrize(
    ("text", "height"),
    [("30", 30.0), ("30 m", 30.0), ("100 ft", 30.48), ("-3", 3.0), ("x", None), (None, None)],
)
def test_parse_height(text, height):
    got = parse_height(text)
    assert got == pytest.approx(height) if height is not None else got is None
