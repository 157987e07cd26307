"""Coverage and risk of a whole city plan in the store, street by street as Dask tasks.

A city plan (:mod:`wangge.city`) is too large to measure in one process, so its coverage
and risk run street by street, as the delineation does (:mod:`wangge.city_runner`): the
client reads the plan version from the store (:func:`read_city`), cuts its inputs once into
one file per street, and each task, carrying only the street's code and its cut's path,
measures that street. Results are joined in street-code order, so they do not depend on
the number of workers; the layers can be saved as the plan's next version.

Coverage
    :func:`city_coverage`: walking access street by street, each street with a halo that
    makes its distances equal one process's within reach
    (:func:`wangge.city_access.access_by_street`), then shelter load and coverage per grid
    on the whole city.

Risk and the hot spots
    Risk per grid is :func:`wangge.geo.risk.grid_risk` on each street's grids, with the risk
    points inside and the risk zones touching the street's grids and its buildings: counts,
    score, colour and exposure are a grid's own. Getis-Ord Gi* weighs each grid against its
    neighbours, which may be in the next street, so the client computes it once more on the
    whole city's grid layer (queen contiguity over every grid, the grid itself included) and
    it replaces the streets' own: cheap (one sparse product) and the same as one process.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.city_access import STREET_DIGITS, access_by_street, street_codes
from wangge.city_runner import check_run_dir, guarded, load_cut, run_cuts
from wangge.data.plan import Plan, read_stored
from wangge.data.store import Store, Version, open_store
from wangge.errors import InputError
from wangge.facilities import plan_facilities
from wangge.geo import coverage as geo_coverage
from wangge.geo import risk as geo_risk
from wangge.geo.access import Nearest
from wangge.geo.rules import Rules, load_rules, rules_from_raw
from wangge.overlay import read_register, score_register
from wangge.plan_layers import read_units

# the city from the store ---------------------------------------------------------------


@dataclass
class CityInputs:
    """A city plan's layers (metric CRS), its network and its typed facilities."""

    store: Store
    version: Version
    plan: Plan
    facilities: gpd.GeoDataFrame
    units: dict[str, gpd.GeoDataFrame]
    rules: Rules

    @property
    def crs(self) -> str:
        return self.plan.crs


def read_city(
    store_target: str | Path | Store,
    plan_id: str,
    units: str | Path | None = None,
    *,
    version: int | None = None,
    facilities: list[str | Path] | None = None,
    rules: Rules | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
    network: bool = True,
) -> CityInputs:
    """A city plan version from the store (its grids, buildings and boundaries, in the
    plan's metric CRS) and from ``units`` (the units.gpkg of ``wangge ingest --streets``,
    or the OSM file) its walking network and OSM facilities, typed by the rules, plus the
    user's ``facilities`` files, as :func:`wangge.coverage.coverage` reads them (the plan's
    own ``facilities`` layer, when it has one, stands for the OSM ones)."""
    store = store_target if isinstance(store_target, Store) else open_store(store_target)
    rules = rules or load_rules()
    plan = read_stored(store, plan_id, version)
    v, crs = plan.version, plan.crs
    if not v.meta.get("metric_crs"):
        raise InputError("the plan's meta has no metric_crs", where=f"plan {plan_id}")
    for need in ("grids", "buildings"):
        if need not in plan.layers:
            raise InputError(f"the plan has no {need!r} layer", where=f"plan {plan_id}")
    if units is None:
        if network:
            raise InputError("coverage needs the city's units.gpkg or OSM file", where="units")
        units_data = {"facilities": None, "crs": crs}
    else:
        units_data = read_units(plan, units, network=network)
    fac = plan_facilities(plan, units_data, rules, facilities, encoding, gcj02)
    return CityInputs(store, v, plan, fac, units_data, rules)


@dataclass
class CityCoverage:
    """A city's coverage: ``access`` per building, the results per type (``found``, aligned
    with ``access``; facility positions in ``facilities``), ``facilities`` with shelter
    load, ``grid_coverage``, the streets' figures, the halo, and the version saved."""

    access: gpd.GeoDataFrame
    found: dict[str, Nearest]
    facilities: gpd.GeoDataFrame
    grid_coverage: gpd.GeoDataFrame
    streets: pd.DataFrame
    halo_m: float
    version: Version | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "streets": len(self.streets),
            "buildings": len(self.access),
            "facilities": len(self.facilities),
            "halo m": round(self.halo_m, 1),
        }
        hh = int(pd.to_numeric(self.access["households"], errors="coerce").fillna(0).sum())
        for col in self.grid_coverage.columns:
            if col.startswith("unc_"):
                unc = int(self.grid_coverage[col].sum())
                out[f"{col[4:]} covered / uncovered households"] = f"{hh - unc:,} / {unc:,}"
        out["beyond the halo (building × type)"] = int(self.streets["beyond_halo"].sum())
        return out


def city_coverage(
    store_target: str | Path | Store,
    plan_id: str,
    units: str | Path,
    *,
    version: int | None = None,
    facilities: list[str | Path] | None = None,
    rules_path: str | Path | None = None,
    halo_m: float | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
    run_dir: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    threads: int = 1,
    save: bool = False,
    author: str = "",
    progress: bool = True,
) -> CityCoverage:
    """Walking coverage of a city plan, street by street (:func:`access_by_street`), then
    shelter load and coverage per grid on the whole city.

    With ``save`` the ``facilities``, ``access`` and ``grid_coverage`` layers become the
    plan's next version, every other layer kept as it was (the gaps, siting and network
    layers of ``wangge coverage`` are not made for a city yet).
    """
    t: dict[str, float] = {}
    start = time.perf_counter()
    rules = load_rules(rules_path)
    city = read_city(
        store_target,
        plan_id,
        units,
        version=version,
        facilities=facilities,
        rules=rules,
        encoding=encoding,
        gcj02=gcj02,
    )
    t["read"] = time.perf_counter() - start
    res = access_by_street(
        city.plan.layers["buildings"],
        city.facilities,
        city.units["network_nodes"],
        city.units["network_edges"],
        rules,
        halo_m=halo_m,
        run_dir=run_dir,
        workers=workers,
        scheduler=scheduler,
        client=client,
        threads=threads,
        progress=progress,
    )
    t.update(res.timings)
    start = time.perf_counter()
    fac = geo_coverage.shelter_load(city.facilities, res.access, res.found, rules)
    grid_cov = geo_coverage.grid_coverage(city.plan.layers["grids"], res.access, fac, rules)
    t["grids"] = time.perf_counter() - start
    saved = None
    if save:
        start = time.perf_counter()
        layers = {"facilities": fac, "access": res.access, "grid_coverage": grid_cov}
        extra = {"coverage": {"halo_m": res.halo_m, "streets": len(res.streets)}}
        comment = f"coverage of {len(res.streets)} streets (halo {res.halo_m:,.0f} m)"
        saved = _save(city, layers, extra, comment, "city_coverage", author)
        t["save"] = time.perf_counter() - start
    return CityCoverage(res.access, res.found, fac, grid_cov, res.streets, res.halo_m, saved, t)


def _save(city: CityInputs, layers: dict, extra: dict, comment: str, action: str, author: str):
    """``layers`` as the plan's next version on top of the one read, the rest kept."""
    from wangge.data.accounts import audit_entry, local_actor

    v = city.version
    keep = tuple(
        info.name for info in city.store.layers(v.plan_id, v.version) if info.name not in layers
    )
    meta = {**v.meta, "rules_json": json.dumps(city.rules.raw, ensure_ascii=False), **extra}
    who = author or local_actor()
    entry = audit_entry(who, action, v.plan_id, v.version, source="wangge.city_overlay")
    return city.store.save(v.plan_id, layers, meta, v.version, who, comment, keep=keep, audit=entry)


# risk ----------------------------------------------------------------------------------


def cut_risk(
    grids: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
) -> dict[str, dict]:
    """Per street: its grids (with their rows in ``grids``), the risk points and zones
    touching their extent, and its buildings."""
    g_street = grids["code"].astype(str).str[:STREET_DIGITS].to_numpy()
    b_street = street_codes(buildings)
    p_tree = shapely.STRtree(shapely.point_on_surface(points.geometry.to_numpy()))
    z_tree = shapely.STRtree(zones.geometry.to_numpy())
    out = {}
    for code in sorted(set(g_street)):
        rows = np.flatnonzero(g_street == code)
        mine = grids.iloc[rows]
        extent = shapely.box(*mine.total_bounds)
        out[code] = {
            "grids": mine,
            "grid_rows": rows,
            "points": points.iloc[np.sort(p_tree.query(extent, predicate="intersects"))],
            "zones": zones.iloc[np.sort(z_tree.query(extent, predicate="intersects"))],
            "buildings": buildings[b_street == code],
        }
    return out


def risk_task(spec: dict) -> dict:
    """:func:`wangge.geo.risk.grid_risk` on one street's cut; returns its status with it."""
    return guarded(spec, _street_risk)


def _street_risk(spec: dict) -> dict:
    rules = rules_from_raw(json.loads(spec["rules_json"]), "rules")
    cut = load_cut(spec)
    frame = geo_risk.grid_risk(cut["grids"], cut["points"], cut["zones"], cut["buildings"], rules)
    return {"grid_risk": frame, "grid_rows": cut["grid_rows"]}


def grid_risk_by_street(
    grids: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    rules: Rules,
    *,
    run_dir: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    progress: bool = False,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """:func:`wangge.geo.risk.grid_risk` street by street, the hot spots on the whole city.

    Same arguments as ``grid_risk`` (scored points and zones); returns the grid risk in the
    order of ``grids`` and the streets' figures. Gi* is computed again on every grid of
    the city (queen contiguity), so a grid on a street's edge counts the neighbours across.
    """
    check_run_dir(run_dir, scheduler)
    grids = grids.reset_index(drop=True)
    cuts = cut_risk(grids, points, zones, buildings)
    settings = {"rules_json": json.dumps(rules.raw, ensure_ascii=False)}
    results = run_cuts(
        risk_task,
        cuts,
        settings,
        "risk",
        "risk",
        run_dir=run_dir,
        workers=workers,
        scheduler=scheduler,
        client=client,
        progress=progress,
    )
    codes = sorted(results)
    frame = pd.concat([results[c]["grid_risk"] for c in codes], ignore_index=True)
    order = np.concatenate([results[c]["grid_rows"] for c in codes])
    out = gpd.GeoDataFrame(frame.iloc[np.argsort(order)].reset_index(drop=True), crs=grids.crs)
    z, p = geo_risk.getis_ord_star(
        out["score"].to_numpy(dtype=float), geo_risk.contiguity(out.geometry.to_numpy())
    )
    out["gi_z"] = z.round(4)
    out["gi_p"] = p.round(5)
    out["hotspot"] = np.where(
        z >= rules.hotspot_z, "hot", np.where(z <= -rules.hotspot_z, "cold", "")
    )
    streets = pd.DataFrame(
        [
            {
                "street": c,
                "grids": len(results[c]["grid_rows"]),
                "seconds": results[c]["seconds"],
                "worker": results[c]["worker"],
            }
            for c in codes
        ]
    )
    return out, streets


@dataclass
class CityRisk:
    """A city's risk layers (metric CRS), the streets' figures and the version saved."""

    grid_risk: gpd.GeoDataFrame
    risk_points: gpd.GeoDataFrame
    risk_zones: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    streets: pd.DataFrame
    version: Version | None
    timings: dict[str, float] = field(default_factory=dict)


def city_risk(
    store_target: str | Path | Store,
    plan_id: str,
    risks: str | Path,
    zones: str | Path | None = None,
    vulnerable: str | Path | None = None,
    *,
    version: int | None = None,
    rules_path: str | Path | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
    run_dir: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    save: bool = False,
    author: str = "",
    progress: bool = True,
) -> CityRisk:
    """Score a risk register against a city plan, risk per grid street by street
    (:func:`grid_risk_by_street`), as :func:`wangge.overlay.overlay` does for a district.

    With ``save`` the ``risk_points``, ``risk_zones`` and ``grid_risk`` layers (and the
    ``buildings`` with their vulnerable counts, when given) become the plan's next
    version, every other layer kept.
    """
    t: dict[str, float] = {}
    start = time.perf_counter()
    rules = load_rules(rules_path)
    city = read_city(store_target, plan_id, None, version=version, rules=rules, network=False)
    plan = city.plan
    register = read_register(plan, rules, risks, zones, vulnerable, encoding, gcj02)
    register = score_register(register, plan, rules)
    points, zf, buildings = register.points, register.zones, register.buildings
    t["read"] = time.perf_counter() - start
    start = time.perf_counter()
    grid_risk, streets = grid_risk_by_street(
        plan.layers["grids"],
        points,
        zf,
        buildings,
        rules,
        run_dir=run_dir,
        workers=workers,
        scheduler=scheduler,
        client=client,
        progress=progress,
    )
    grid_risk["sample"] = register.sample
    buildings["vulnerable_sample"] = register.vulnerable_sample
    t["streets"] = time.perf_counter() - start
    saved = None
    if save:
        start = time.perf_counter()
        layers = {"risk_points": points, "risk_zones": zf, "grid_risk": grid_risk}
        if vulnerable is not None:
            layers["buildings"] = buildings
        comment = f"risk of {len(streets)} streets, {len(points)} points, {len(zf)} zones"
        saved = _save(city, layers, {}, comment, "city_risk", author)
        t["save"] = time.perf_counter() - start
    return CityRisk(grid_risk, points, zf, buildings, streets, saved, t)
