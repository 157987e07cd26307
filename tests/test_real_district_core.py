"""The pure parts of a real district: bridges, given levels, dedicated grids, calibration,
the blocking-unit proof, exact household accounting and presets, on seeded lattices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import shapely
from test_partition import GRID, lattice

from wangge.errors import InputError
from wangge.geo import calibration
from wangge.geo.codes import free_codes
from wangge.geo.delineation import bridge, solve
from wangge.geo.limits import load_limits, presets
from wangge.geo.partition import SolverParams, _blocking_unit, components, partition
from wangge.geo.validate import household_sums


def two_islands(gap_units: int = 0, seed: int = 0):
    """Two lattices 2 km apart with no edge between them (a clipped extract's clusters)."""
    a = lattice(12, 12, seed, 5, 15)
    b = lattice(3, 3, seed + 1, 5, 15)
    n = a.n
    b.xy = b.xy + 2000.0
    g = dataclasses.replace(a)
    for name in ("households", "population", "area", "perimeter", "length", "along", "compound"):
        setattr(g, name, np.concatenate([getattr(a, name), getattr(b, name)]))
    g.xy = np.vstack([a.xy, b.xy])
    g.eu = np.concatenate([a.eu, b.eu + n]).astype(np.int64)
    g.ev = np.concatenate([a.ev, b.ev + n]).astype(np.int64)
    return g, n


def test_bridge_joins_detached_pieces_with_cheap_cuts():
    g, n = two_islands()
    everything = np.arange(len(g.eu))
    assert len(components(g, np.arange(g.n), everything)) == 2
    assert bridge(g, [np.arange(g.n)]) == 1
    assert len(components(g, np.arange(g.n), np.arange(len(g.eu)))) == 1
    assert g.along[-1] == 4 and g.length[-1] == 0
    # the bridge runs between the nearest units of the two pieces
    u, v = g.eu[-1], g.ev[-1]
    assert (u < n) != (v < n)


def test_a_small_detached_cluster_is_not_a_grid_of_its_own():
    g, n = two_islands()
    small = g.households[n:].sum()
    assert small < GRID.lo  # too small to stand alone
    nested = solve(g, load_limits())
    # the island's units share their grid with units of the main piece (a flagged exclave)
    island_grids = set(nested.grid[n:])
    assert all((nested.grid[:n] == k).any() for k in island_grids)
    assert len(set(nested.street)) == 1 and len(set(nested.community)) == 1


def test_given_levels_are_kept_and_grids_stay_inside_them():
    g = lattice(20, 20, 3, 5, 15)
    com = (g.xy[:, 0] >= 1000).astype(int)  # two given communities, west and east
    street = np.zeros(g.n, dtype=int)
    nested = solve(g, load_limits(), {"street": street, "community": com})
    assert set(nested.flags["community"].values()) == {"given"}
    for grid in np.unique(nested.grid):
        assert len(set(com[nested.grid == grid])) == 1
    assert sorted(nested.given["community"].values()) == [0, 1]


def test_dedicated_units_become_their_own_grid_outside_the_band():
    g = lattice(20, 20, 4, 5, 15)
    site = np.full(g.n, -1)
    campus = (g.xy[:, 0] < 500) & (g.xy[:, 1] < 500)
    site[campus] = 0
    g.households[campus] = 0
    limits = load_limits()
    nested = solve(g, limits, None, site, {0: "amenity=university 大学"})
    dedicated = [p for p, f in nested.flags["grid"].items() if f == "dedicated"]
    assert len(dedicated) == 1
    assert set(np.flatnonzero(nested.grid == dedicated[0])) == set(np.flatnonzero(campus))
    assert nested.notes["grid"][dedicated[0]].endswith("大学")
    for p in set(np.unique(nested.grid)) - set(dedicated):
        assert GRID.lo <= g.households[nested.grid == p].sum() <= GRID.hi


def test_a_unit_that_makes_the_band_impossible_is_proven_and_named():
    weight = np.array([478.0, 100, 100, 72])  # 750: two grids would need a part of 272
    assert _blocking_unit(weight, np.arange(4), weight.sum(), GRID) == 0
    fine = np.array([300.0, 200, 100, 150])
    assert _blocking_unit(fine, np.arange(4), fine.sum(), GRID) is None
    g = lattice(4, 1)
    g.households[:] = weight
    parts, issues = partition(
        g, np.arange(4), g.households, GRID, SolverParams(), np.random.default_rng(0)
    )
    assert issues and "478" in issues[0].reason
    assert all(p.flag == "infeasible" for p in parts if not GRID.lo <= weight[p.units].sum())


def test_calibration_meets_known_totals_exactly_and_keeps_imported_counts():
    rng = np.random.default_rng(0)
    n = 200
    b = pd.DataFrame(
        {
            "households": rng.integers(5, 60, n),
            "population": 0,
            "estimated": rng.random(n) > 0.1,
            "household_source": "estimate",
        }
    )
    imported_before = b.loc[~b["estimated"], "households"].copy()
    unit_of = rng.integers(0, 3, n)
    units = pd.DataFrame(
        {
            "code": ["110108001001", "110108001002", "110108001003"],
            "name": ["甲", "乙", "丙"],
            "households": [3000.0, np.nan, 900.0],
            "population": [np.nan, np.nan, 2500.0],
        }
    )
    cover = np.array([1.0, 1.0, 0.6])
    # unit 2's factor (about 0.23) is outside 0.5–2: applied only when asked
    out, report = calibration.calibrate(b, unit_of, units, cover, "community", 2.62, True)
    assert out.loc[unit_of == 0, "households"].sum() == 3000
    # partly covered: prorated by area, said so
    assert out.loc[unit_of == 2, "households"].sum() == round(900 * 0.6)
    assert out.loc[unit_of == 2, "population"].sum() == round(2500 * 0.6)
    assert "partly covered" in report.set_index("code").loc["110108001003", "finding"]
    # the unit with no total is left as it was, imported counts never change
    assert (out.loc[unit_of == 1, "households"] == b.loc[unit_of == 1, "households"]).all()
    assert (out.loc[~b["estimated"], "households"] == imported_before).all()
    assert len(report) == 2 and report["factor"].notna().all()
    wild = units.assign(households=[50000.0, np.nan, np.nan], population=np.nan)
    _, report = calibration.calibrate(b, unit_of, wild, cover, "community", 2.62)
    assert "outside 0.5–2" in report["finding"].iloc[0]


def test_household_sums_check_names_the_unit_that_does_not_add_up():
    def frame(codes, parents, hh):
        return pd.DataFrame({"code": codes, "parent_code": parents, "households": hh})

    layers = {
        "streets": frame(["320102001"], ["320102"], [100.0]),
        "communities": frame(["320102001001"], ["320102001"], [100.0]),
        "grids": frame(["320102001001001"], ["320102001001"], [100.0]),
        "microgrids": frame(
            ["320102001001001001", "320102001001001002"], ["320102001001001"] * 2, [60.0, 40.0]
        ),
        "buildings": pd.DataFrame(
            {"microgrid_code": ["320102001001001001", "320102001001001002", None]},
        ).assign(households=[60.0, 35.0, 5.0]),
    }
    found = household_sums(layers, load_limits())
    assert [v.code for v in found] == ["320102001001001002", ""]
    assert "5 households" in found[-1].reason


def test_presets_and_free_codes():
    assert {"tongxiang", "zhoushan"} <= set(presets())
    z = load_limits(preset="zhoushan")
    assert (z.microgrid.lo, z.microgrid.hi) == (50, 80) and z.raw["preset"] == "zhoushan"
    with pytest.raises(InputError, match="unknown preset"):
        load_limits(preset="atlantis")
    assert free_codes("320102001001", 3, "grid", {"320102001001901"}, 901) == [
        "320102001001902",
        "320102001001903",
        "320102001001904",
    ]


def test_nested_buildings_are_counted_in_the_cell_that_holds_them():
    import geopandas as gpd

    from wangge.geo.tessellation import cell_of, nested_buildings, tessellate

    big = shapely.box(0, 0, 40, 20)
    part = shapely.box(5, 5, 15, 15)  # a part drawn on top of its building
    other = shapely.box(60, 0, 80, 20)
    b = gpd.GeoDataFrame(
        {"building_id": ["a", "b", "c"], "block_id": "B1", "households": [30, 10, 20]},
        geometry=[big, part, other],
        crs=4549,
    )
    inside = nested_buildings(b)
    assert inside.tolist() == [False, True, False]
    blocks = gpd.GeoDataFrame(
        {"block_id": ["B1"]}, geometry=[shapely.box(-10, -10, 90, 30)], crs=4549
    )
    cells = tessellate(blocks, b[~inside])
    where = cell_of(cells, b)
    assert len(cells) == 2 and where[1] == where[0] != where[2]
    hh = np.bincount(where, b["households"].to_numpy(float), len(cells))
    assert hh.sum() == 60


def test_a_part_an_edit_makes_is_named_under_its_parent():
    from types import SimpleNamespace

    from wangge.plan_state import new_name as _new_name

    s = SimpleNamespace(
        layers={"communities": pd.DataFrame({"code": ["320102001004"], "name": ["丹凤街社区"]})}
    )
    assert _new_name("grid", "320102001004007", s) == "丹凤街社区第7网格"
    assert _new_name("microgrid", "320102001004007002", s) == "第2微网格"  # no grids layer
