"""`wangge delineate` and `wangge validate` end to end on the demo's units.gpkg."""

from __future__ import annotations

import pyogrio
import pytest
from clitools import run

from wangge.maps.webmap import check_offline


def test_delineate_writes_every_layer_and_the_map(plan_dir):
    layers = {n for n, _ in pyogrio.list_layers(plan_dir / "plan.gpkg")}
    assert {
        "streets",
        "communities",
        "grids",
        "microgrids",
        "buildings",
        "vertical_microgrids",
        "violations",
    } <= layers
    for name in ("streets", "communities", "grids", "microgrids"):
        frame = pyogrio.read_dataframe(plan_dir / "plan.gpkg", layer=name)
        assert {
            "code",
            "parent_code",
            "households",
            "population",
            "area_km2",
            "polsby_popper",
            "road_share",
        } <= set(frame.columns)
        assert (plan_dir / f"{name}.geojson").exists()
    page = (plan_dir / "map.html").read_text("utf-8")
    assert "OpenStreetMap contributors" in page and "L.map(" in page  # a Leaflet web map
    check_offline(page)  # nothing fetched: tests/test_maps_offline.py opens it in chromium


def test_same_seed_same_codes(plan_dir, tmp_path):
    units = plan_dir / "units.gpkg"
    res = run("delineate", units, "--out", tmp_path, "--seed", 7, "--district-code", "320102")
    assert res.returncode == 0, res.stderr
    a = pyogrio.read_dataframe(plan_dir / "plan.gpkg", layer="grids", read_geometry=False)
    b = pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer="grids", read_geometry=False)
    assert a["code"].tolist() == b["code"].tolist()
    assert a["households"].tolist() == b["households"].tolist()


def test_validate_exit_status_follows_errors(plan_dir):
    res = run("validate", plan_dir / "plan.gpkg")
    violations = pyogrio.read_dataframe(plan_dir / "plan.gpkg", layer="violations")
    has_error = (violations["severity"] == "error").any()
    assert res.returncode == (1 if has_error else 0)
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("bad", ["missing.gpkg", "units-only"])
def test_validate_rejects_what_is_not_a_plan(plan_dir, tmp_path, bad):
    path = tmp_path / "missing.gpkg" if bad == "missing.gpkg" else plan_dir / "units.gpkg"
    res = run("validate", path)
    assert res.returncode == 2
    assert str(path) in res.stderr and "Traceback" not in res.stderr


def test_bad_district_code_is_named(plan_dir, tmp_path):
    res = run("delineate", plan_dir / "units.gpkg", "--out", tmp_path, "--district-code", "32")
    assert res.returncode == 2
    assert "6 digits" in res.stderr
