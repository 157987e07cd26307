"""The documented commands chain on a city the demo never saw: `wangge delineate` from an
OSM file leaves what `wangge coverage` and `wangge overlay` read, and no summary prints a
`nan`. Also `wangge --version`."""

from __future__ import annotations

import re

import pyogrio
import pytest
from cities_osm import BEIJING_OSM as BEIJING
from clitools import run

from wangge import __version__

NAN = re.compile(r"\bnan\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def beijing_plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("chain") / "plan"
    res = run("delineate", BEIJING, "--out", out, "--district-code", "110108")
    assert res.returncode == 0, res.stderr
    return out, res


def test_delineate_from_osm_leaves_units_for_coverage_and_overlay(beijing_plan):
    out, res = beijing_plan
    units = {n for n, _ in pyogrio.list_layers(out / "units.gpkg")}
    assert {"buildings", "blocks", "network_nodes", "network_edges", "facilities"} <= units
    assert not NAN.search(res.stdout + res.stderr), res.stdout

    cov = run("coverage", out)
    assert cov.returncode == 0, cov.stderr
    assert "Traceback" not in cov.stderr and not NAN.search(cov.stdout)
    plan = {n for n, _ in pyogrio.list_layers(out / "plan.gpkg")}
    assert {"access", "grid_coverage", "gaps"} <= plan

    from wangge.data.samples import write_samples

    samples = write_samples(out, seed=3)
    ovl = run("overlay", out, "--risks", samples["risks"])
    assert ovl.returncode == 0, ovl.stderr
    assert not NAN.search(ovl.stdout)
    assert "grid_risk" in {n for n, _ in pyogrio.list_layers(out / "plan.gpkg")}


def test_units_gpkg_from_delineate_reproduces_the_plan(beijing_plan, tmp_path):
    """The units.gpkg delineate leaves is the one it drew from: delineating it again gives
    the same grids."""
    out, _ = beijing_plan
    res = run("delineate", out / "units.gpkg", "--out", tmp_path, "--district-code", "110108")
    assert res.returncode == 0, res.stderr
    a = pyogrio.read_dataframe(out / "plan.gpkg", layer="grids", read_geometry=False)
    b = pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer="grids", read_geometry=False)
    assert a["code"].tolist() == b["code"].tolist()
    assert a["households"].tolist() == b["households"].tolist()


def test_version():
    for args in (["--version"], ["--version", "demo"]):
        res = run(*args)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == f"wangge {__version__}"


def test_summary_counts_basic_grids_and_their_band_apart_from_dedicated(beijing_plan):
    out, res = beijing_plan
    grids = pyogrio.read_dataframe(out / "plan.gpkg", layer="grids")
    basic = grids[grids["grid_type"] == "basic"]
    row = next(line for line in res.stdout.splitlines() if "│ grids" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    dedicated = len(grids) - len(basic)
    assert cells[0] == "grids" + (f" (+{dedicated} dedicated)" if dedicated else "")
    low, high = basic["households"].min(), basic["households"].max()
    assert cells[1] == f"{len(basic):,}" and cells[2] == f"{low:,.0f}–{high:,.0f}"
    assert "…" not in res.stdout  # nothing cut short in a log
