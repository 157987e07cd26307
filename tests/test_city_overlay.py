"""Issue 14 item 4: risk per grid and walking coverage per street for a whole city.

Two real cities (the bundled Nanjing demo, four given streets; ../shared/data/beijing-cau.osm,
two) are ingested with their streets, delineated by ``wangge.city.run_city`` into a
GeoPackage store, and given the seeded SAMPLE facilities and risk register. Their coverage,
measured street by street with the halo (:mod:`wangge.city_access`), is compared with one
process over the whole area (:func:`wangge.geo.coverage.building_access` on the whole
network): per building and facility type the distances agree to 1e-6 m wherever the whole
area's is within the type's reach, and both say beyond reach otherwise. With the bundled
rules (halo 2,250 m) every street sees nearly the whole demo, so the comparison is run
again with short reaches (300 m, snapping 100 m: a halo of 400 m), where the cuts are a
fraction of the city. With no halo the distances differ near the streets' edges. Small
hand-made networks check the two cases a street cannot see on its own cut (a walk out of
the halo and back; a facility snapped to a node outside it). Risk per grid, street by
street with Gi* on the whole city, equals ``grid_risk`` on the whole city. One
LocalCluster of two workers gives what the in-process run gives.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from cities_bounds import beijing_streets, demo_streets
from cities_osm import BEIJING_OSM, DEMO_OSM, real_file

from wangge.city import run_city
from wangge.city_access import access_by_street, coverage_halo, street_codes
from wangge.city_overlay import city_coverage, city_risk, read_city
from wangge.data.gpkg_store import GpkgStore
from wangge.data.samples import write_samples
from wangge.geo import risk as geo_risk
from wangge.geo.access import walk_graph
from wangge.geo.coverage import building_access
from wangge.geo.rules import load_rules

#: Short reaches: every type 300 m at most, snapping 100 m, so the halo is 400 m.
SHORT_RULES = """
[network]
max_snap_m = 100.0
""" + "".join(
    f"[facilities.{key}]\nreach_m = 300\n"
    for key in (
        "emergency_shelter",
        "fixed_shelter",
        "primary_school",
        "middle_school",
        "community_centre",
        "clinic",
        "elderly_care",
        "fire_station",
    )
)
TOLERANCE_M = 1e-6


@dataclass
class City:
    name: str
    store: GpkgStore
    units: Path
    samples: dict[str, Path]
    root: Path

    def facilities(self) -> list[Path]:
        return [self.samples["facilities"]]


def _city(name: str, root: Path) -> City:
    osm = DEMO_OSM if name == "nanjing" else real_file(BEIJING_OSM)
    from wangge.ingest import ingest, write_units

    root.mkdir(parents=True, exist_ok=True)
    streets = (demo_streets if name == "nanjing" else beijing_streets)(osm, root / "s.geojson")
    units = write_units(ingest(osm, streets=streets, progress=False), root)
    result = run_city(
        units, root / "store.gpkg", name, workers=0, run_dir=root / "run", progress=False
    )
    store = GpkgStore(root / "store.gpkg")
    assert result.version is not None and not result.failed
    # the seeded SAMPLE facilities and register need a plan.gpkg beside the units; the
    # streets' communities repeat their names (社区001 in every street), so they go by code
    # (a community centre's name holds its community's, and names must be unique)
    plan_dir = root / "samples"
    plan_dir.mkdir()
    for layer in ("study_area", "buildings", "communities"):
        frame = store.query(name, result.version.version, layer).frame
        if layer == "communities":
            frame["name"] = frame["code"]
        frame.to_file(plan_dir / "plan.gpkg", layer=layer, driver="GPKG", engine="pyogrio")
    shutil.copy(units, plan_dir / "units.gpkg")
    return City(name, store, units, write_samples(plan_dir, seed=0), root)


@pytest.fixture(scope="module")
def cities(tmp_path_factory) -> dict[str, City]:
    root = tmp_path_factory.mktemp("city_overlay")
    out = {name: _city(name, root / name) for name in ("nanjing", "beijing")}
    yield out
    for city in out.values():
        city.store.close()


@pytest.fixture(scope="module")
def short_rules(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "short.toml"
    path.write_text(SHORT_RULES, "utf-8")
    return path


def _whole(city: City, rules):
    """One process over the whole area: building_access on the whole city's network."""
    inputs = read_city(city.store, city.name, city.units, facilities=city.facilities(), rules=rules)
    nodes, edges = inputs.units["network_nodes"], inputs.units["network_edges"]
    buildings = inputs.plan.layers["buildings"]
    access, found, _ = building_access(
        buildings, inputs.facilities, walk_graph(nodes, edges), rules
    )
    return inputs, access, found


def _compare(city_cov, whole_access, whole_found, rules, facilities) -> dict:
    """Assert agreement within reach and beyond it; return the figures."""
    access = city_cov.access
    assert access["building_id"].is_unique
    assert sorted(access["building_id"]) == sorted(whole_access["building_id"])
    # city rows in the order of the whole run's rows
    pos = pd.Series(np.arange(len(access)), index=access["building_id"].to_numpy())
    at = pos.reindex(whole_access["building_id"].to_numpy()).to_numpy()
    b_street = street_codes(whole_access)
    f_street = facilities["grid_code"].astype(str).str[:9].to_numpy()
    figures = {"buildings": len(access), "pairs within reach": 0, "across streets": 0}
    max_diff = 0.0
    for key, t in rules.facilities.items():
        dw = whole_access[f"d_{key}"].to_numpy()
        dc = access[f"d_{key}"].to_numpy()[at]
        within = dw <= t.reach_m
        np.testing.assert_array_equal(dc <= t.reach_m, within, err_msg=f"{key}: within reach")
        if not within.any():
            continue
        diff = np.abs(dc[within] - dw[within])
        max_diff = max(max_diff, float(diff.max()))
        assert diff.max() <= TOLERANCE_M, (key, diff.max())
        # the same facility, measured the same way
        fw = whole_found[key].facility[within]
        fc = city_cov.found[key].facility[at][within]
        np.testing.assert_array_equal(fc, fw, err_msg=f"{key}: nearest facility")
        sw = whole_found[key].straight[within]
        np.testing.assert_array_equal(city_cov.found[key].straight[at][within], sw)
        figures["pairs within reach"] += int(within.sum())
        figures["across streets"] += int((f_street[fw] != b_street[within]).sum())
    figures["max difference m"] = max_diff
    # beyond reach both say so (checked above); the lists agree where nothing is unknown
    known = access["beyond_halo"].to_numpy()[at] == ""
    np.testing.assert_array_equal(
        access["uncovered"].to_numpy()[at][known], whole_access["uncovered"].to_numpy()[known]
    )
    return figures


@pytest.mark.parametrize("city_name", ["nanjing", "beijing"])
@pytest.mark.parametrize("reach", ["bundled", "short"])
def test_city_coverage_agrees_with_one_process(cities, short_rules, city_name, reach):
    city = cities[city_name]
    rules_path = short_rules if reach == "short" else None
    rules = load_rules(rules_path)
    start = time.perf_counter()
    inputs, whole_access, whole_found = _whole(city, rules)
    whole_s = time.perf_counter() - start
    start = time.perf_counter()
    cov = city_coverage(
        city.store,
        city.name,
        city.units,
        facilities=city.facilities(),
        rules_path=rules_path,
        workers=0,
        progress=False,
    )
    city_s = time.perf_counter() - start
    assert cov.halo_m == pytest.approx(coverage_halo(rules))
    assert cov.halo_m == (2250.0 if reach == "bundled" else 400.0)
    figures = _compare(cov, whole_access, whole_found, rules, inputs.facilities)
    assert figures["pairs within reach"] > figures["buildings"]
    assert figures["across streets"] > 0, "no facility across a street's edge was needed"
    # the streets' cuts hold every building once, in street order
    assert cov.access["street"].is_monotonic_increasing
    assert list(cov.streets["street"]) == sorted(set(street_codes(inputs.plan.layers["buildings"])))
    if reach == "short":  # the cuts are parts of the city, not all of it
        assert (
            cov.streets["nodes"]
            < walk_graph(inputs.units["network_nodes"], inputs.units["network_edges"]).n
        ).all()
    assert len(cov.grid_coverage) == len(inputs.plan.layers["grids"])
    print(
        f"\n{city_name} {reach}: halo {cov.halo_m:.0f} m, {figures}, "
        f"whole {whole_s:.2f} s, city {city_s:.2f} s ({cov.timings})"
    )


def test_without_a_halo_the_distances_differ(cities):
    city = cities["nanjing"]
    rules = load_rules()
    inputs, whole_access, _ = _whole(city, rules)
    res = access_by_street(
        inputs.plan.layers["buildings"],
        inputs.facilities,
        inputs.units["network_nodes"],
        inputs.units["network_edges"],
        rules,
        halo_m=0,
        workers=0,
    )
    pos = pd.Series(np.arange(len(res.access)), index=res.access["building_id"].to_numpy())
    at = pos.reindex(whole_access["building_id"].to_numpy()).to_numpy()
    differ = np.zeros(len(whole_access), dtype=bool)
    for key, t in rules.facilities.items():
        dw = whole_access[f"d_{key}"].to_numpy()
        dc = res.access[f"d_{key}"].to_numpy()[at]
        within = dw <= t.reach_m
        differ |= within & ~(np.abs(np.nan_to_num(dc, nan=np.inf) - dw) <= TOLERANCE_M)
        differ |= ~within & (dc <= t.reach_m)
    assert differ.sum() > 0
    # and they are the buildings near another street: within the longest reach of one
    streets = street_codes(whole_access)
    xy = shapely.get_coordinates(whole_access.geometry.to_numpy())
    reach = max(t.reach_m for t in rules.facilities.values())
    for i in np.flatnonzero(differ):
        other = xy[streets != streets[i]]
        assert np.hypot(*(other - xy[i]).T).min() <= reach
    print(f"\nno halo: {int(differ.sum())} of {len(differ)} buildings differ")


# hand-made networks: what a street cannot see on its own cut ------------------------


def _square(x: float, y: float) -> shapely.Polygon:
    return shapely.box(x - 4, y - 4, x + 4, y + 4)


def test_walks_out_of_the_halo_and_facilities_snapped_outside_it():
    """AEDs (150 m) with a 400 m halo. Street 1: building B's network piece holds no AED
    in the whole city, but in its cut a far AED (F) snaps onto it; the nearest AED (G, on
    another piece) is 100 m away, so the whole city measures 130 m by straight line.
    Street 2: building B2 and AED H, 100 m apart, are joined by a 6 km loop that leaves
    the halo; the whole city says 6,100 m, beyond reach, not the straight line's 130 m."""
    crs = "EPSG:4549"
    rules = load_rules()
    nodes_xy = {
        1: (0, 10), 2: (200, 10),  # B's piece
        3: (560, 100), 4: (900, 100),  # F's piece, outside the halo
        5: (-100, -110), 6: (100, -110),  # G's piece
        7: (10000, 10), 8: (10000, 3000), 9: (10100, 3000), 10: (10100, 10),  # the loop
    }  # fmt: skip
    links = [(1, 2), (3, 4), (5, 6), (7, 8), (8, 9), (9, 10)]
    nodes = gpd.GeoDataFrame(
        {"node_id": list(nodes_xy)}, geometry=shapely.points(list(nodes_xy.values())), crs=crs
    )
    edges = gpd.GeoDataFrame(
        {"u": [a for a, _ in links], "v": [b for _, b in links]},
        geometry=[shapely.LineString([nodes_xy[a], nodes_xy[b]]) for a, b in links],
        crs=crs,
    )
    buildings = gpd.GeoDataFrame(
        {
            "building_id": ["B", "B2"],
            "grid_code": ["320102001001001", "320102002001001"],
            "microgrid_code": ["320102001001001001", "320102002001001001"],
            "households": [10, 10],
            "population": [25, 25],
        },
        geometry=[_square(0, 0), _square(10000, 0)],
        crs=crs,
    )
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["F", "G", "H"], "type": "aed"},
        geometry=shapely.points([(380, 100), (0, -100), (10100, 0)]),
        crs=crs,
    )
    whole, _, _ = building_access(buildings, facilities, walk_graph(nodes, edges), rules)
    assert whole["d_aed"].tolist() == pytest.approx([100 * rules.detour, 6100])
    res = access_by_street(buildings, facilities, nodes, edges, rules, halo_m=400, workers=0)
    got = res.access.set_index("building_id")
    assert got.loc["B", "d_aed"] == pytest.approx(100 * rules.detour, abs=TOLERANCE_M)
    assert got.loc["B", "straight"] == "aed"
    assert res.found["aed"].facility[0] == 1  # G
    assert np.isnan(got.loc["B2", "d_aed"])
    assert got.loc["B2", "beyond_halo"] == "aed"
    assert "aed" in got.loc["B2", "uncovered"].split(",")
    # and with the whole city in the halo, the city says what one process says
    res = access_by_street(buildings, facilities, nodes, edges, rules, halo_m=20000, workers=0)
    np.testing.assert_allclose(res.access["d_aed"], whole["d_aed"], atol=TOLERANCE_M)
    assert (res.access["beyond_halo"] == "").all()


# risk ---------------------------------------------------------------------------------


def test_city_risk_agrees_with_one_process(cities):
    city = cities["nanjing"]
    s = city.samples
    risk = city_risk(
        city.store,
        city.name,
        s["risks"],
        zones=s["zones"],
        vulnerable=s["vulnerable"],
        workers=0,
        progress=False,
    )
    rules = load_rules()
    grids = read_city(city.store, city.name, network=False).plan.layers["grids"]
    whole = geo_risk.grid_risk(grids, risk.risk_points, risk.risk_zones, risk.buildings, rules)
    got = pd.DataFrame(risk.grid_risk.drop(columns=["sample", "geometry"]))
    pd.testing.assert_frame_equal(got, pd.DataFrame(whole.drop(columns="geometry")))
    assert len(risk.streets) == 4 and (risk.grid_risk["hotspot"] != "").any()
    assert risk.grid_risk["exposed_households"].sum() > 0
    # a street alone would score its grids against its own grids only: Gi* must be the city's
    codes = grids["code"].str[:9].to_numpy()
    alone = geo_risk.grid_risk(
        grids[codes == codes[0]], risk.risk_points, risk.risk_zones, risk.buildings, rules
    )
    assert not np.allclose(alone["gi_z"], whole["gi_z"].to_numpy()[codes == codes[0]])


# a cluster and the store ----------------------------------------------------------------


def test_two_workers_give_what_one_process_gives_and_the_city_saves(cities, tmp_path):
    from distributed import Client, LocalCluster

    city = cities["beijing"]
    s = city.samples
    kwargs = {"facilities": city.facilities(), "progress": False}
    alone = city_coverage(city.store, city.name, city.units, workers=0, **kwargs)
    risk_alone = city_risk(city.store, city.name, s["risks"], s["zones"], workers=0, progress=False)
    start = time.perf_counter()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        up = time.perf_counter() - start
        cov = city_coverage(
            city.store, city.name, city.units, client=client, run_dir=tmp_path, **kwargs
        )
        risk = city_risk(
            city.store, city.name, s["risks"], s["zones"], client=client, progress=False
        )
        workers = set(cov.streets["worker"]) | set(risk.streets["worker"])
    print(f"\nLocalCluster: up in {up:.1f} s, all in {time.perf_counter() - start:.1f} s")
    assert workers and not any(w.endswith(f":{os.getpid()}") for w in workers)
    pd.testing.assert_frame_equal(cov.access, alone.access)
    pd.testing.assert_frame_equal(cov.grid_coverage, alone.grid_coverage)
    pd.testing.assert_frame_equal(risk.grid_risk, risk_alone.grid_risk)
    # saved as the plan's next version, the delineation kept
    before = city.store.resolve(city.name)
    saved = city_coverage(city.store, city.name, city.units, workers=0, save=True, **kwargs)
    assert saved.version.version == before.version + 1
    layers = {i.name for i in city.store.layers(city.name, saved.version.version)}
    assert {"access", "grid_coverage", "facilities", "grids", "buildings"} <= layers
    stored = city.store.query(city.name, saved.version.version, "access").frame
    assert len(stored) == len(alone.access)
    assert saved.version.meta["coverage"]["halo_m"] == 2250.0
