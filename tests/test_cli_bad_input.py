"""End-to-end tests of the ``wangge`` console script on bad input.

Bad input must end with ``error: <file>: <problem>`` on stderr and exit status 2, never a
Python traceback, and must leave an earlier ``units.gpkg`` as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import osmium
import pytest

from wangge.cli import app

DEMO_OSM = Path(__file__).resolve().parent.parent / "data" / "demo" / "nanjing-xinjiekou.osm"
#: The console script installed with this interpreter (a venv's bin), else the one on PATH.
_BESIDE = Path(sys.executable).parent / "wangge"
WANGGE = str(_BESIDE) if _BESIDE.exists() else shutil.which("wangge")
#: Two buildings of the bundled demo (a way and a relation), for households files.
DEMO_IDS = ("w88780394", "r7090284")
#: Subcommand names as typer derives them from the registered callbacks.
COMMANDS = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]


def wangge(*args: object) -> subprocess.CompletedProcess[str]:
    assert WANGGE is not None, "the wangge console script is not on PATH"
    return subprocess.run(
        [WANGGE, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=300,
    )


def assert_input_error(proc: subprocess.CompletedProcess[str], path: Path, *problem: str) -> None:
    """Exit status 2, no traceback, and one ``error: <file>: ... <problem>`` line."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}: "), proc.stderr
    for words in problem:
        assert words in lines[0], proc.stderr


def _feature_collection(*geometries: dict | None) -> str:
    features = [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]
    return json.dumps({"type": "FeatureCollection", "features": features})


def _ring(*corners: tuple[float, float]) -> dict:
    return {"type": "Polygon", "coordinates": [[*map(list, corners), list(corners[0])]]}


# A box around the centre of the demo (lon 118.762–118.797, lat 32.035–32.052) and a bow-tie
# on the same corners: the ring crosses itself in the middle.
W, S, E, N = 118.770, 32.038, 118.790, 32.049
BOX = _ring((W, S), (E, S), (E, N), (W, N))
BOWTIE = _ring((W, S), (E, N), (E, S), (W, N))


def _no_buildings_pbf(path: Path) -> Path:
    writer = osmium.SimpleWriter(str(path))
    try:
        for obj in osmium.FileProcessor(str(DEMO_OSM)):
            if "building" not in obj.tags:
                writer.add(obj)
    finally:
        writer.close()
    return path


# Each case writes its bad input into a folder and returns (the arguments after
# ``wangge ingest``, the file the error must name, words the problem must contain).
Case = Callable[[Path], tuple[list[object], Path, tuple[str, ...]]]


def _missing(tmp: Path):
    path = tmp / "nowhere.osm"
    return [path], path, ("file not found",)


def _empty(tmp: Path):
    path = tmp / "empty.osm"
    path.touch()
    return [path], path, ("file is empty",)


def _truncated(tmp: Path):
    path = tmp / "truncated.osm"
    path.write_bytes(DEMO_OSM.read_bytes()[:700_000])
    return [path], path, ("cannot be read as OSM data", "truncated")


def _not_osm_xml(tmp: Path):
    path = tmp / "page.osm"
    path.write_text("<!DOCTYPE html>\n<html><body><p>not a map</p></body></html>\n")
    return [path], path, ("no <osm> root element",)


def _not_xml(tmp: Path):
    path = tmp / "notes.osm"
    path.write_text("lon,lat\n118.78,32.04\n")
    return [path], path, ("is not XML",)


def _pbf_without_buildings(tmp: Path):
    path = _no_buildings_pbf(tmp / "roads-only.osm.pbf")
    return [path], path, ("holds no buildings",)


def _households_swapped(tmp: Path):
    path = tmp / "households.csv"
    path.write_text("lon,lat,households\n32.041,118.781,3\n32.043,118.779,4\n")
    return [DEMO_OSM, "--households", path], path, ("row 2, 3", "look swapped")


def _households_gbk(tmp: Path):
    path = tmp / "households.csv"
    text = f"building_id,households,小区\n{DEMO_IDS[0]},12,金陵小区\n{DEMO_IDS[1]},30,新街口花园\n"
    path.write_bytes(text.encode("gbk"))
    return [DEMO_OSM, "--households", path], path, ("GBK", "--encoding gbk")


def _households_duplicate_ids(tmp: Path):
    path = tmp / "households.csv"
    path.write_text(f"building_id,households\n{DEMO_IDS[0]},3\n{DEMO_IDS[1]},4\n{DEMO_IDS[0]},5\n")
    return [DEMO_OSM, "--households", path], path, ("row 2, 4", "duplicate building ids")


def _boundary_empty_geometry(tmp: Path):
    path = tmp / "boundary.geojson"
    path.write_text(_feature_collection(BOX, None))
    return [DEMO_OSM, "--boundary", path], path, ("feature 2", "empty or missing geometry")


BAD_INPUTS: dict[str, Case] = {
    "missing-file": _missing,
    "empty-file": _empty,
    "truncated-osm-xml": _truncated,
    "xml-but-not-osm": _not_osm_xml,
    "not-xml": _not_xml,
    "pbf-without-buildings": _pbf_without_buildings,
    "households-lat-lon-swapped": _households_swapped,
    "households-in-gbk": _households_gbk,
    "households-duplicate-ids": _households_duplicate_ids,
    "boundary-empty-geometry": _boundary_empty_geometry,
}


@pytest.fixture(scope="module")
def good_out(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One good ingest of the demo: the output folder and the finished process."""
    out = tmp_path_factory.mktemp("good") / "out"
    return out, wangge("ingest", DEMO_OSM, "--out", out)


def test_console_script_is_installed():
    assert WANGGE is not None
    assert Path(WANGGE).exists()


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_naming_file_and_problem(tmp_path, case):
    args, path, problem = case(tmp_path)
    out = tmp_path / "out"
    proc = wangge("ingest", *args, "--out", out)
    assert_input_error(proc, path, *problem)
    assert not (out / "units.gpkg").exists()


def test_pbf_without_buildings_still_holds_the_other_objects(tmp_path):
    # the bad input above must be bad for the right reason: a readable PBF, just no buildings
    path = _no_buildings_pbf(tmp_path / "roads-only.osm.pbf")
    kinds = {"n": 0, "w": 0, "building": 0}
    for obj in osmium.FileProcessor(str(path)):
        kinds[obj.type_str()] = kinds.get(obj.type_str(), 0) + 1
        kinds["building"] += "building" in obj.tags
    assert kinds["n"] > 10_000
    assert kinds["w"] > 100
    assert kinds["building"] == 0


def test_unknown_encoding_exits_2_naming_the_households_file(tmp_path):
    args, path, _ = _households_gbk(tmp_path)
    proc = wangge(*["ingest", *args], "--encoding", "no-such-codec", "--out", tmp_path / "out")
    assert_input_error(proc, path, "unknown text encoding 'no-such-codec'")


def test_error_keeps_square_brackets_in_file_names(tmp_path):
    # rich would read "[final]" as a style tag and "[/b]" as a closing tag
    folder = tmp_path / "survey [final]" / "[/b]"
    folder.mkdir(parents=True)
    path = folder / "empty.osm"
    path.touch()
    proc = wangge("ingest", path, "--out", tmp_path / "out")
    assert_input_error(proc, path, "file is empty")


def test_bowtie_boundary_is_repaired_and_ingest_succeeds(tmp_path):
    boundary = tmp_path / "boundary.geojson"
    boundary.write_text(_feature_collection(BOWTIE))
    out = tmp_path / "out"
    proc = wangge("ingest", DEMO_OSM, "--boundary", boundary, "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"boundary geometries repaired\W+1\b", proc.stdout), proc.stdout
    assert re.search(r"buildings outside the boundary, dropped\W+[1-9]", proc.stdout)
    assert (out / "units.gpkg").stat().st_size > 0


def test_good_ingest_writes_units_gpkg(good_out):
    out, proc = good_out
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "wrote" in proc.stdout
    assert (out / "units.gpkg").stat().st_size > 0


def test_failed_ingest_leaves_existing_units_gpkg_intact(good_out, tmp_path):
    out, proc = good_out
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target = out / "units.gpkg"
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    mtime = target.stat().st_mtime_ns
    # fails late: after the OSM file is read and households are estimated
    args, path, problem = _households_duplicate_ids(tmp_path)
    bad = wangge("ingest", *args, "--out", out)
    assert_input_error(bad, path, *problem)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    assert target.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in out.iterdir()) == ["units.gpkg"]  # no temp files left


def test_top_level_help_exits_0():
    proc = wangge("--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    for name in COMMANDS:
        assert name in proc.stdout


def test_commands_are_discovered():
    assert "ingest" in COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_subcommand_help_exits_0(name):
    proc = wangge(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"wangge {name}" in proc.stdout
