"""Siting: per facility type, the candidate sites that cover the most uncovered households.

The coverage job (:func:`wangge.coverage.coverage`) sites every type after measuring
walking distance; the API's ``/coverage/suggest`` sites one type on a stored plan's
coverage layers (:func:`prepare_siting` once per version, then :func:`suggest_prepared`).
The maximal-covering model and its solver are :mod:`wangge.geo.siting`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.plan import Plan
from wangge.errors import InputError, NotFound
from wangge.geo import coverage as geo_coverage
from wangge.geo.access import snap_targets, walk_graph
from wangge.geo.rules import Rules
from wangge.geo.siting import coverage_matrix, suggest
from wangge.plan_layers import locate


def candidate_sites(
    path: str | Path | None, units_data: dict[str, gpd.GeoDataFrame], data: Plan
) -> gpd.GeoDataFrame:
    """Candidate sites, placed in the plan's grids: the points of the file at ``path``,
    else the blocks' points on surface, else the micro-grids'."""
    if path is not None:
        from wangge.data.userfiles import read_table, read_vector, table_points

        p = Path(path)
        if p.suffix.lower() in (".csv", ".xlsx", ".xls", ".txt"):
            frame = table_points(read_table(p), p)
        else:
            frame, _ = read_vector(p)
        pts = shapely.point_on_surface(frame.to_crs(data.crs).geometry.to_numpy())
        ids = frame["id"].astype(str).to_numpy() if "id" in frame else None
        source = "user"
    elif "blocks" in units_data and len(units_data["blocks"]):
        blocks = units_data["blocks"]
        pts = shapely.point_on_surface(blocks.geometry.to_numpy())
        ids = blocks["block_id"].astype(str).to_numpy() if "block_id" in blocks else None
        source = "block"
    else:
        micro = data.layers["microgrids"]
        pts = shapely.point_on_surface(micro.geometry.to_numpy())
        ids = micro["code"].astype(str).to_numpy()
        source = "microgrid"
    if ids is None:
        ids = np.array([f"C{i + 1:04d}" for i in range(len(pts))])
    frame = gpd.GeoDataFrame({"candidate_id": ids, "source": source}, geometry=pts, crs=data.crs)
    return locate(frame, data)


def keep_other_types(old, new, types, crs):
    """``new`` rows plus the rows of ``old`` for types not in ``types``."""
    if old is None or "type" not in old:
        return new
    kept = old[~old["type"].isin(types)]
    frame = pd.concat([kept[new.columns.intersection(kept.columns)], new], ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=crs) if crs else frame


def site_types(
    graph, snapped, access, cand, rules: Rules, k: int, types=None, exact=True
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Suggested sites per type: the k candidates covering most uncovered households.

    Returns the sites (one row per type and rank) and the summary per type (the solver's
    bound and gap, its method and time).
    """
    rows, summary = [], []
    cand_xy = shapely.get_coordinates(cand.geometry.to_numpy())
    cand_snap = snap_targets(graph, cand_xy, rules.max_snap_m)
    hh = pd.to_numeric(access["households"], errors="coerce").fillna(0).to_numpy()
    for key, t in rules.facilities.items():
        if types is not None and key not in types:
            continue
        d = access[f"d_{key}"].to_numpy()
        need = np.flatnonzero(~(d <= t.reach_m) & (hh > 0))
        demand = replace(
            snapped,
            xy=snapped.xy[need],
            node=snapped.node[need],
            snap_m=snapped.snap_m[need],
            on_network=snapped.on_network[need],
        )
        a = coverage_matrix(graph, demand, cand_snap, t.reach_m)
        result = suggest(a, hh[need], k, exact_below=200_000 if exact else 0)
        cum = np.cumsum(result.gains)
        for rank, (j, g, c) in enumerate(zip(result.chosen, result.gains, cum, strict=True), 1):
            rows.append(
                {
                    "type": key,
                    "type_zh": t.zh,
                    "rank": rank,
                    "candidate_id": cand["candidate_id"].iat[j],
                    "grid_code": cand["grid_code"].iat[j],
                    "gain_households": int(g),
                    "cumulative_households": int(c),
                    "geometry": cand.geometry.iat[j],
                }
            )
        summary.append(
            {
                "type": key,
                "type_zh": t.zh,
                "k": k,
                "uncovered_households": int(hh[need].sum()),
                "coverable_households": int(result.total),
                "covered_households": int(result.covered),
                "exact_households": None if result.exact is None else int(result.exact),
                "bound_households": None if result.bound is None else round(result.bound, 1),
                "gap": None if result.gap is None else round(result.gap, 4),
                "exact_status": result.exact_status,
                "method": result.method,
                "swaps": result.swaps,
                "seconds": round(result.seconds, 4),
            }
        )
    cols = [
        "type",
        "type_zh",
        "rank",
        "candidate_id",
        "grid_code",
        "gain_households",
        "cumulative_households",
    ]
    sites = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=[*cols, "geometry"]), geometry="geometry", crs=cand.crs
    )
    return sites, pd.DataFrame(summary)


@dataclass
class SitingInputs:
    """What siting needs from a stored plan, built once per plan version."""

    graph: object
    snapped: object
    access: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    sample_types: set[str]


def prepare_siting(layers: dict[str, gpd.GeoDataFrame], crs: str, rules: Rules) -> SitingInputs:
    """The walking graph and snapped buildings from a stored plan's coverage layers.

    ``layers`` holds ``network_nodes``, ``network_edges``, ``access``, ``candidates`` and
    optionally ``facilities`` (any CRS; they are taken to ``crs``).
    """
    need = ("network_nodes", "network_edges", "access", "candidates")
    missing = [n for n in need if n not in layers]
    if missing:
        raise NotFound(
            f"the plan has no {', '.join(missing)} layer; run wangge coverage on it and import it",
            where="plan",
        )
    m = {n: layers[n].to_crs(crs) for n in need}
    graph = walk_graph(m["network_nodes"], m["network_edges"])
    points = shapely.get_coordinates(m["access"].geometry.to_numpy())
    fac = layers.get("facilities")
    return SitingInputs(
        graph,
        snap_targets(graph, points, rules.max_snap_m),
        m["access"],
        m["candidates"],
        geo_coverage.sample_types(fac) if fac is not None else set(),
    )


def suggest_prepared(
    inputs: SitingInputs, rules: Rules, ftype: str, k: int
) -> tuple[gpd.GeoDataFrame, dict]:
    """Suggest ``k`` sites for ``ftype``; returns the sites (WGS84) and the summary."""
    if ftype not in rules.facilities:
        raise InputError(
            f"unknown facility type {ftype!r}; use one of {', '.join(rules.facilities)}",
            where="type",
        )
    if f"d_{ftype}" not in inputs.access:
        raise InputError(f"the plan's coverage did not measure {ftype!r}", where="type")
    sites, summary = site_types(
        inputs.graph, inputs.snapped, inputs.access, inputs.candidates, rules, k, types={ftype}
    )
    sites["sample"] = ftype in inputs.sample_types
    return sites.to_crs(4326), summary.iloc[0].to_dict()


def suggest_sites(
    layers: dict[str, gpd.GeoDataFrame], crs: str, rules: Rules, ftype: str, k: int
) -> tuple[gpd.GeoDataFrame, dict]:
    """:func:`suggest_prepared` straight from a stored plan's layers."""
    return suggest_prepared(prepare_siting(layers, crs, rules), rules, ftype, k)
