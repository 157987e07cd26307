"""Any real OSM file reads: JOSM saves, gzip, clipped clusters; odd files end in exit 2, named."""

from __future__ import annotations

import copy
import gzip
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import osmium
import pytest
from cities_osm import (
    BEIJING_OSM,
    DEMO_OSM,
    clustered_variant,
    default_windows,
    gz_variant,
    josm_variant,
    real_file,
)
from clitools import run

from wangge.data.osm import read_osm
from wangge.errors import InputError
from wangge.geo.crs import metric_crs

CITIES = {"nanjing": DEMO_OSM, "beijing": BEIJING_OSM}


@pytest.fixture(scope="module", params=sorted(CITIES))
def city(request):
    """A real city file and what the reader makes of it as it is."""
    src = CITIES[request.param]
    return src, read_osm(real_file(src))


def _areas(buildings, crs) -> dict[str, float]:
    return dict(zip(buildings["building_id"], buildings.to_crs(crs).area, strict=True))


def _assert_same_layers(original, other, ids: dict[str, str] | None = None) -> None:
    """Same buildings (ids mapped 1:1, areas to 1e-6 relative), roads and facilities."""
    ids = ids or {}
    c = original.buildings.union_all().centroid
    crs = metric_crs(c.x, c.y)
    want = {ids.get(k, k): a for k, a in _areas(original.buildings, crs).items()}
    got = _areas(other.buildings, crs)
    assert len(other.buildings) == len(original.buildings)
    assert set(got) == set(want)
    bad = [k for k, a in want.items() if abs(got[k] - a) > 1e-6 * a]
    assert not bad, bad[:5]
    assert len(other.roads) == len(original.roads)
    assert sorted(other.roads["road_id"]) == sorted(
        ids.get(k, k) for k in original.roads["road_id"]
    )
    assert len(other.facilities) == len(original.facilities)
    assert other.stats == original.stats


def test_josm_variant_reads_as_the_original(city, tmp_path):
    src, original = city
    path = tmp_path / "josm.osm"
    ids = josm_variant(src, path, seed=7)
    head = path.read_text("utf-8")[:4000]
    assert 'action="modify"' in head and 'id="-' in head and "timestamp=" not in head
    josm = read_osm(path)
    assert josm.buildings["building_id"].str.match(r"^[wr]-\d+$").all()
    _assert_same_layers(original, josm, ids)


def test_gz_variant_reads_as_the_original(city, tmp_path):
    src, original = city
    _assert_same_layers(original, read_osm(gz_variant(src, tmp_path / "city.osm.gz")))


def test_pbf_that_claims_to_be_sorted_but_is_not(city, tmp_path):
    # a header may say Type_then_ID over unsorted data: the reader notices and sorts
    src, original = city
    josm = tmp_path / "josm.osm"
    ids = josm_variant(src, josm, seed=3)
    header = osmium.io.Header()
    header.set("sorting", "Type_then_ID")
    pbf = tmp_path / "josm.osm.pbf"
    with osmium.SimpleWriter(str(pbf), header=header) as writer:
        for obj in osmium.FileProcessor(str(josm)):
            writer.add(obj)
    _assert_same_layers(original, read_osm(pbf), ids)


def test_clustered_variant_reads_and_ingests(city, tmp_path):
    src, original = city
    path = clustered_variant(src, tmp_path / "clusters.osm", default_windows(src))
    clipped = read_osm(path)
    assert 0 < len(clipped.buildings) < len(original.buildings)
    assert set(clipped.buildings["building_id"]) <= set(original.buildings["building_id"])
    out = tmp_path / "out"
    proc = run("ingest", path, "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "units.gpkg").stat().st_size > 0


def test_downloads_joined_end_to_end_read_once_each_and_say_so(city, tmp_path):
    """Two Overpass downloads of overlapping areas pasted into one file: every object that
    both hold is read once (as `osmium merge` keeps it), and the count is reported."""
    src, original = city
    tree = ET.parse(real_file(src))
    root = tree.getroot()
    again = [copy.deepcopy(e) for e in root if e.tag in ("node", "way")][::3]
    root.extend(again)  # the second download, after the first
    path = tmp_path / "joined.osm"
    tree.write(path, encoding="utf-8", xml_declaration=True)
    joined = read_osm(path)
    notes = {k: n for k, n in joined.stats.items() if "more than once" in k}
    assert list(notes.values()) == [len(again)], joined.stats
    joined.stats = Counter({k: n for k, n in joined.stats.items() if k not in notes})
    _assert_same_layers(original, joined)


def test_an_object_twice_keeps_its_newest_version(tmp_path):
    path = tmp_path / "twice.osm"
    path.write_text(
        _osm(
            SQUARE,
            f'<way id="5" version="2">{HOUSE}<tag k="building" v="school"/></way>',
            f'<way id="5" version="1">{HOUSE}<tag k="building" v="yes"/></way>',
        )
    )
    extract = read_osm(path)
    assert extract.buildings["building_id"].tolist() == ["w5"]
    assert extract.buildings["building"].tolist() == ["school"]
    assert sum(n for k, n in extract.stats.items() if "more than once" in k) == 1


def test_a_file_of_buildings_alone_delineates(tmp_path):
    """No highway at all (an export of buildings): blocks come from the study area."""
    tree = ET.parse(real_file(BEIJING_OSM))
    root = tree.getroot()
    for e in [e for e in root if e.tag == "way" and e.find("tag[@k='highway']") is not None]:
        root.remove(e)
    path = tmp_path / "buildings-only.osm"
    tree.write(path, encoding="utf-8", xml_declaration=True)
    extract = read_osm(path)
    assert extract.roads.empty and "cuts_blocks" in extract.roads
    proc = run("delineate", path, "--out", tmp_path / "plan", "--district-code", "110108")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cov = run("coverage", tmp_path / "plan")
    assert cov.returncode == 0, cov.stdout + cov.stderr
    assert "straight line" in cov.stdout


def _osm(*body: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">' + "".join(body) + "</osm>"


SQUARE = (
    '<node id="1" lat="32.0400" lon="118.7800"/><node id="2" lat="32.0400" lon="118.7802"/>'
    '<node id="3" lat="32.0402" lon="118.7802"/><node id="4" lat="32.0402" lon="118.7800"/>'
)
HOUSE = '<nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>'


def test_mixed_signs_and_odd_nodes(tmp_path):
    # an edited download: a new node (-7) in an old building, an old way after new ones,
    # a node with no lat/lon, a byte-order mark; the building keeps all five corners
    path = tmp_path / "edited.osm"
    text = _osm(
        '<way id="-3" action="modify"><nd ref="11"/><nd ref="12"/>'
        '<tag k="highway" v="residential"/></way>',
        '<way id="5"><nd ref="1"/><nd ref="2"/><nd ref="-7"/><nd ref="3"/><nd ref="4"/>'
        '<nd ref="1"/><tag k="building" v="yes"/></way>',
        SQUARE,
        '<node id="-7" lat="32.0401" lon="118.7803" action="modify"/>',
        '<node id="11" lat="32.0405" lon="118.7800"/><node id="12"/>',
        '<node id="-9"><tag k="amenity" v="school"/></node>',
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    extract = read_osm(path)
    assert extract.buildings["building_id"].tolist() == ["w5"]
    assert len(extract.buildings.geometry.iloc[0].exterior.coords) == 6
    assert extract.roads.empty  # one node of w-3 has no location: fewer than 2 remain
    assert extract.stats["ways skipped: fewer than 2 nodes in the file"] == 1
    assert extract.stats["facility nodes without location"] == 1


def test_clipped_parts_are_counted(tmp_path):
    path = tmp_path / "clipped.osm"
    path.write_text(
        _osm(
            SQUARE,
            f'<way id="5">{HOUSE}<tag k="building" v="yes"/></way>',
            '<way id="6"><nd ref="1"/><nd ref="2"/><nd ref="88"/><nd ref="1"/>'
            '<tag k="building" v="yes"/></way>',
            '<way id="7"><nd ref="3"/><nd ref="89"/><nd ref="4"/>'
            '<tag k="highway" v="service"/></way>',
            '<relation id="9"><member type="way" ref="5" role="outer"/>'
            '<member type="way" ref="99" role="inner"/>'
            '<tag k="type" v="multipolygon"/><tag k="building" v="yes"/></relation>',
        )
    )
    extract = read_osm(path)
    assert extract.buildings["building_id"].tolist() == ["w5"]
    assert len(extract.roads) == 1
    assert extract.stats["areas skipped: way nodes missing from the file"] == 1
    assert extract.stats["ways cut short: nodes missing from the file"] == 1
    assert extract.stats["multipolygons skipped: member ways missing from the file"] == 1


def test_bad_coordinate_is_an_input_error(tmp_path):
    path = tmp_path / "badlat.osm"
    path.write_text(_osm('<node id="1" lat="abc" lon="118.0"/>'))
    with pytest.raises(InputError, match="coordinate") as info:
        read_osm(path)
    assert str(path) in str(info.value)


def _truncated_gz(path: Path) -> Path:
    path.write_bytes(gzip.compress(CITIES["nanjing"].read_bytes())[:100_000])
    return path


BAD = {
    "truncated.osm.gz": (_truncated_gz, "truncated"),
    "only-missing-nodes.osm": (
        lambda p: p.write_text(_osm(f'<way id="5">{HOUSE}<tag k="building" v="yes"/></way>')),
        "way nodes missing from the file: 1",
    ),
    "empty.osm": (lambda p: p.write_text(_osm()), "holds no buildings"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_exits_2_naming_it(tmp_path, name):
    make, words = BAD[name]
    path = tmp_path / name
    make(path)
    proc = run("ingest", path, "--out", tmp_path / "out")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"error: {path}: "), proc.stderr
    assert words in errors[0], proc.stderr
