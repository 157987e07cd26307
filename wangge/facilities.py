"""Facilities for the risk and coverage jobs: OSM POIs typed by the rules, the user's files."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data.plan import Plan
from wangge.geo.rules import Rules, osm_facility_types
from wangge.plan_layers import locate

#: Columns of a job's ``facilities`` layer (besides its geometry), in order.
FACILITY_COLUMNS = (
    "facility_id",
    "name",
    "type",
    "type_zh",
    "capacity",
    "area_m2",
    "source",
    "sample",
)


def typed_osm_facilities(units: dict[str, gpd.GeoDataFrame], rules: Rules) -> gpd.GeoDataFrame:
    """The units' OSM facilities that the rules' tag table types, with their type."""
    osm = units.get("facilities")
    if osm is None or not len(osm):
        return empty_facilities(units["crs"])
    types = osm_facility_types(osm, rules)
    osm = osm[types.notna()].copy()
    types = types[types.notna()]
    frame = gpd.GeoDataFrame(
        {
            "facility_id": osm["facility_id"].astype(str).to_numpy(),
            "name": osm["name"].fillna("").astype(str).to_numpy(),
            "type": types.to_numpy(),
            "type_zh": [rules.facilities[t].zh for t in types],
            "capacity": pd.to_numeric(osm.get("capacity"), errors="coerce").to_numpy(),
            "area_m2": pd.to_numeric(osm.get("area_m2"), errors="coerce")
            .replace(0, np.nan)
            .to_numpy(),
            "source": "osm",
            "sample": False,
        },
        geometry=osm.geometry.to_numpy(),
        crs=osm.crs,
    )
    return frame


def empty_facilities(crs) -> gpd.GeoDataFrame:
    """A ``facilities`` layer with no row."""
    return gpd.GeoDataFrame(pd.DataFrame(columns=list(FACILITY_COLUMNS)), geometry=[], crs=crs)


def user_facilities(
    paths: list[str | Path] | None, rules: Rules, plan: Plan, encoding: str, gcj02: bool
) -> list[gpd.GeoDataFrame]:
    """The user's facility files, each read within the plan's study area, in its CRS."""
    from wangge.data.registers import read_facilities

    out = []
    for p in paths or []:
        f = read_facilities(p, rules, plan.study_area_wgs84, encoding=encoding, gcj02=gcj02)
        out.append(f[[*FACILITY_COLUMNS, "geometry"]].to_crs(plan.crs))
    return out


def plan_facilities(
    plan: Plan,
    units: dict[str, gpd.GeoDataFrame],
    rules: Rules,
    paths: list[str | Path] | None,
    encoding: str,
    gcj02: bool,
) -> gpd.GeoDataFrame:
    """The facilities coverage measures, placed in the plan's grids.

    They are the plan's own ``facilities`` layer (from ``wangge overlay``) when it has
    one, else the OSM POIs of ``units`` typed by the rules, plus the user's files at
    ``paths``; only the types the rules know are kept.
    """
    layers = plan.layers
    if "facilities" in layers and "type" in layers["facilities"]:
        fac = layers["facilities"][[*FACILITY_COLUMNS, "geometry"]]
    else:
        fac = typed_osm_facilities(units, rules)
    extra = user_facilities(paths, rules, plan, encoding, gcj02)
    fac = gpd.GeoDataFrame(pd.concat([fac, *extra], ignore_index=True), crs=plan.crs)
    return locate(fac[fac["type"].isin(list(rules.facilities))].reset_index(drop=True), plan)
