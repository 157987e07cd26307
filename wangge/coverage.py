"""The coverage job: walking distance from every building to each facility type on a plan.

``coverage`` measures walking distance from every building to every facility type, and
writes coverage per grid, shelter load, the gaps and the suggested sites
(:mod:`wangge.siting`). It adds its layers to the plan's ``plan.gpkg``
(:func:`wangge.plan_layers.update_plan`) and writes its map next to it.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from wangge.errors import InputError
from wangge.facilities import plan_facilities
from wangge.geo import coverage as geo_coverage
from wangge.geo.access import walk_graph
from wangge.geo.rules import load_rules
from wangge.plan_layers import JobResult, read_plan_data, read_units, rules_meta, update_plan
from wangge.siting import candidate_sites, keep_other_types, site_types
from wangge.steps import Steps

#: Layers the coverage job writes.
COVERAGE_LAYERS = (
    "facilities",
    "access",
    "grid_coverage",
    "gaps",
    "suggestions",
    "siting",
    "candidates",
    "network_nodes",
    "network_edges",
)


def coverage(
    plan: str | Path,
    types: list[str] | None = None,
    facilities: list[str | Path] | None = None,
    candidates: str | Path | None = None,
    k: int = 5,
    rules_path: str | Path | None = None,
    units: str | Path | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
    progress: bool = True,
    maps: bool = True,
    workers: int = 1,
) -> JobResult:
    """Walking-distance coverage of every building, per grid, shelter load, gaps and sites.

    Facilities are the plan's ``facilities`` layer (from ``wangge overlay``), or the OSM
    POIs typed by the rules, plus any ``facilities`` files given here. Candidate sites are
    the blocks' points on surface, or the points of a ``candidates`` file.
    """
    steps = Steps(
        ["read", "network", "distances", "grids", "gaps", "siting", "write"], progress, "coverage"
    )
    data = read_plan_data(plan)
    rules = load_rules(rules_path)
    if types:
        unknown = [t for t in types if t not in rules.facilities]
        if unknown:
            raise InputError(
                f"unknown facility type {', '.join(unknown)}; use one of "
                f"{', '.join(rules.facilities)}",
                where="--type",
            )
    units_data = read_units(data, units)
    fac = plan_facilities(data, units_data, rules, facilities, encoding, gcj02)
    cand = candidate_sites(candidates, units_data, data)
    steps.done("read")
    graph = walk_graph(units_data["network_nodes"], units_data["network_edges"])
    steps.done("network")
    buildings = data.layers["buildings"]
    access, found, snapped = geo_coverage.building_access(buildings, fac, graph, rules, workers)
    fac = geo_coverage.shelter_load(fac, access, found, rules)
    steps.done("distances")
    grid_cov = geo_coverage.grid_coverage(data.layers["grids"], access, fac, rules)
    steps.done("grids")
    zones = data.layers.get("risk_zones")
    if zones is None:
        zones = gpd.GeoDataFrame(geometry=[], crs=data.crs)
    gap_frame = geo_coverage.gaps(
        buildings, access, grid_cov, data.layers["communities"], fac, zones, rules
    )
    steps.done("gaps")
    sites, siting = site_types(graph, snapped, access, cand, rules, k, types=types)
    sample_types = geo_coverage.sample_types(fac)
    sites["sample"] = sites["type"].isin(sample_types)
    if types:
        # only the types asked for are sited again; the others' earlier answers stay
        sites = keep_other_types(data.layers.get("suggestions"), sites, types, data.crs)
        have = {n for n, _ in pyogrio.list_layers(data.path)}
        old = pyogrio.read_dataframe(data.path, layer="siting") if "siting" in have else None
        if old is not None:
            old = pd.DataFrame(old.drop(columns="geometry", errors="ignore"))
        siting = keep_other_types(old, siting, types, None)
    steps.done("siting")
    nodes, edges = units_data["network_nodes"], units_data["network_edges"]
    layers = {
        "facilities": fac,
        "access": access,
        "grid_coverage": grid_cov,
        "gaps": gap_frame,
        "suggestions": sites,
        "siting": siting,
        "candidates": cand,
        "network_nodes": nodes[["node_id", "geometry"]],
        "network_edges": edges[["u", "v", "length_m", "highway", "geometry"]],
    }
    update_plan(data.path, {**layers, "meta": rules_meta(data, rules)})
    written = []
    if maps:
        from wangge.maps.basemap_page import basemap_of
        from wangge.maps.gap_map import write_gap_maps

        kinds = {
            key: {"zh": t.zh, "en": t.en, "reach_m": t.reach_m}
            for key, t in rules.facilities.items()
        }
        written.append(
            write_gap_maps(
                data.path.with_name("gaps_map.html"),
                data.layers["grids"],
                buildings,
                fac,
                gap_frame,
                kinds,
                title="wangge 设施覆盖缺口 coverage gaps",
                credit=data.attribution,
                basemap=basemap_of(data.layers),
            )
        )
    steps.done("write")
    steps.close()
    hh = access["households"].sum()
    summary = {"buildings": len(access), "facilities": len(fac)}
    for key, t in rules.facilities.items():
        if types and key not in types:
            continue
        unc = int(grid_cov[f"unc_{key}"].sum())
        summary[f"{t.zh} {t.en} ≤ {t.reach_m:,.0f} m"] = (
            f"{int(hh) - unc:,} covered, {unc:,} uncovered households"
        )
    summary["buildings measured by straight line"] = int((access["straight"] != "").sum())
    summary["gaps"] = len(gap_frame)
    summary["shelters over capacity"] = int(fac["over_capacity"].sum())
    credit = data.attribution
    return JobResult(layers, written, summary, steps.timings, credit)
