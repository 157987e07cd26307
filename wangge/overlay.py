"""The overlay job: a risk register scored onto a delineated plan, risk per grid and its maps.

``overlay`` reads a risk register (points, zones), vulnerable-person counts and facility
files, scores the risks and adds per-grid risk. It adds its layers to the plan's
``plan.gpkg`` (:func:`wangge.plan_layers.update_plan`) and writes its maps next to it.
The register is read and scored by :func:`read_register` and :func:`score_register`,
which the city's risk (:func:`wangge.city_overlay.city_risk`) shares.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import pandas as pd

from wangge.data.plan import Plan
from wangge.facilities import typed_osm_facilities, user_facilities
from wangge.geo import risk as geo_risk
from wangge.geo.rules import Rules, load_rules
from wangge.plan_layers import (
    JobResult,
    locate,
    read_plan_data,
    read_units,
    rules_meta,
    touching,
    update_plan,
)
from wangge.steps import Steps

#: Layers the overlay job writes.
OVERLAY_LAYERS = ("risk_points", "risk_zones", "grid_risk", "facilities", "buildings")


@dataclass
class Register:
    """A risk register read onto a plan (metric CRS): its points and zones, and the plan's
    buildings with their vulnerable counts (0 where none are given)."""

    points: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    vulnerable_sample: bool

    @property
    def sample(self) -> bool:
        """Whether any of it is sample data."""
        zone_sample = len(self.zones) and self.zones["sample"].any()
        return bool(self.points["sample"].any() or zone_sample) or self.vulnerable_sample


def read_register(
    plan: Plan,
    rules: Rules,
    risks: str | Path,
    zones: str | Path | None = None,
    vulnerable: str | Path | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
) -> Register:
    """The risk points and zones within the plan's study area, and its buildings with the
    vulnerable counts of ``vulnerable``."""
    from wangge.data.registers import read_risks, read_vulnerable

    area = plan.study_area_wgs84
    points = read_risks(risks, rules, area, encoding=encoding, gcj02=gcj02).to_crs(plan.crs)
    if zones is not None:
        zone_frame = read_risks(zones, rules, area, zones=True, encoding=encoding, gcj02=gcj02)
        zone_frame = zone_frame.to_crs(plan.crs)
    else:
        zone_frame = gpd.GeoDataFrame(points.iloc[:0].copy(), crs=plan.crs)
    buildings = plan.layers["buildings"].copy()
    for col in geo_risk.VULNERABLE:
        buildings[col] = 0
    vul_sample = False
    if vulnerable is not None:
        counts = read_vulnerable(vulnerable, buildings, encoding=encoding, gcj02=gcj02)
        vul_sample = bool(counts.attrs.get("sample", False))
        joined = counts.reindex(buildings["building_id"].to_numpy()).fillna(0)
        for col in geo_risk.VULNERABLE:
            if col in joined:
                buildings[col] = joined[col].astype(int).to_numpy()
    return Register(points, zone_frame, buildings, vul_sample)


def score_register(register: Register, plan: Plan, rules: Rules) -> Register:
    """The register scored by the rules, each point with its grid and each zone with the
    grids it touches."""
    return replace(
        register,
        points=locate(geo_risk.score(register.points, rules), plan),
        zones=touching(geo_risk.score(register.zones, rules), plan),
    )


def overlay(
    plan: str | Path,
    risks: str | Path,
    zones: str | Path | None = None,
    facilities: list[str | Path] | None = None,
    vulnerable: str | Path | None = None,
    rules_path: str | Path | None = None,
    units: str | Path | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
    progress: bool = True,
    maps: bool = True,
) -> JobResult:
    """Score a risk register against a plan and write the risk layers and maps.

    Writes ``risk_points``, ``risk_zones``, ``grid_risk``, ``facilities`` (OSM POIs typed
    by the rules' tag table plus the user's files) and ``buildings`` (with vulnerable
    counts) into plan.gpkg, and ``risk_map.html`` and ``risk_heatmap.html`` beside it.
    """
    steps = Steps(
        ["read plan", "read register", "score", "grid risk", "write"], progress, "overlay"
    )
    data = read_plan_data(plan)
    rules = load_rules(rules_path)
    steps.done("read plan")
    register = read_register(data, rules, risks, zones, vulnerable, encoding, gcj02)
    units_data = read_units(data, units, network=False)
    fac = [typed_osm_facilities(units_data, rules)]
    fac += user_facilities(facilities, rules, data, encoding, gcj02)
    fac_frame = gpd.GeoDataFrame(pd.concat(fac, ignore_index=True), crs=data.crs)
    steps.done("read register")
    register = score_register(register, data, rules)
    points, zone_frame, buildings = register.points, register.zones, register.buildings
    fac_frame = locate(fac_frame, data)
    steps.done("score")
    grid_risk = geo_risk.grid_risk(data.layers["grids"], points, zone_frame, buildings, rules)
    grid_risk["sample"] = register.sample
    buildings["vulnerable_sample"] = register.vulnerable_sample
    steps.done("grid risk")
    layers = {
        "risk_points": points,
        "risk_zones": zone_frame,
        "grid_risk": grid_risk,
        "facilities": fac_frame,
        "buildings": buildings,
    }
    update_plan(data.path, {**layers, "meta": rules_meta(data, rules)})
    written = []
    if maps:
        from wangge.maps.basemap_page import basemap_of
        from wangge.maps.heatmap import write_heatmap
        from wangge.maps.risk_maps import write_risk_map

        title = f"wangge 网格风险四色图 grid risk · {data.meta.get('district_code', '')}"
        written.append(
            write_risk_map(
                data.path.with_name("risk_map.html"),
                grid_risk,
                points,
                zone_frame,
                title=title,
                credit=data.attribution,
                basemap=basemap_of(data.layers),
            )
        )
        w = rules.weights
        written.append(
            write_heatmap(
                data.path.with_name("risk_heatmap.html"),
                points,
                zone_frame,
                data.layers["grids"],
                weights=w,
                title="wangge 风险热力图 risk heatmap",
                credit=data.attribution,
                basemap=basemap_of(data.layers),
            )
        )
    steps.done("write")
    steps.close()
    levels = points["level"].value_counts()
    summary = {
        "risk points": len(points),
        "risk zones": len(zone_frame),
        **{f"points {lv}": int(levels.get(lv, 0)) for lv in ("red", "orange", "yellow", "blue")},
        "grids red / orange / yellow / blue": " / ".join(
            str(int((grid_risk["level"] == lv).sum())) for lv in ("red", "orange", "yellow", "blue")
        ),
        "hot spots (Gi*)": int((grid_risk["hotspot"] == "hot").sum()),
        "households in risk zones": int(grid_risk["exposed_households"].sum()),
        "vulnerable people in risk zones": int(grid_risk["exposed_vulnerable"].sum()),
        "facilities (OSM / user / sample)": " / ".join(
            str(int((fac_frame["source"] == s).sum())) for s in ("osm", "user", "sample")
        ),
        "sample data": "yes" if register.sample else "no",
    }
    credit = data.attribution
    return JobResult(layers, written, summary, steps.timings, credit)
