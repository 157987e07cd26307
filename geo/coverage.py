"""Facility coverage: per building, per grid, shelter capacity, and the gaps layer.

Everything here works on frames in one metric CRS and on a :class:`WalkGraph`; the
distances come from :mod:`wangge.geo.access`.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.geo.access import Nearest, Snapped, WalkGraph, nearest_all, snap_targets
from wangge.geo.risk import VULNERABLE, exposed_buildings
from wangge.geo.rules import Rules


def _xy(geoms) -> np.ndarray:
    pts = shapely.point_on_surface(np.asarray(geoms))
    return shapely.get_coordinates(pts)


def building_access(
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    graph: WalkGraph,
    rules: Rules,
    workers: int = 1,
) -> tuple[gpd.GeoDataFrame, dict[str, Nearest], Snapped]:
    """Walking distance from each building to the nearest facility of every type.

    Parameters
    ----------
    buildings
        ``building_id``, ``households``, ``population``, ``grid_code`` and footprints.
    facilities
        ``facility_id``, ``type`` (a rules key) and points.

    Returns
    -------
    (access, nearest, snapped)
        ``access``: one point per building (its footprint's point on surface) with
        ``building_id``, ``grid_code``, ``microgrid_code``, ``households``,
        ``population``, ``snap_m``, ``d_<type>`` in metres (NaN where the study area has
        no facility of the type), ``straight`` (types measured by straight line, comma
        separated) and ``uncovered`` (types beyond reach); the raw results per type; and
        the buildings snapped to the graph.
    """
    xy = _xy(buildings.geometry.to_numpy())
    snapped = snap_targets(graph, xy, rules.max_snap_m)
    fxy = _xy(facilities.geometry.to_numpy()) if len(facilities) else np.zeros((0, 2))
    ftype = facilities["type"].to_numpy() if len(facilities) else np.array([])
    by_type = {key: fxy[ftype == key] for key in rules.facilities}
    found = nearest_all(
        graph,
        snapped,
        by_type,
        rules.max_snap_m,
        rules.detour,
        workers=workers,
    )
    cols = ["building_id", "grid_code", "microgrid_code", "households", "population"]
    access = pd.DataFrame({c: buildings[c].to_numpy() for c in cols if c in buildings})
    access["snap_m"] = snapped.snap_m.round(2)
    straight = np.full(len(access), "", dtype=object)
    uncovered = np.full(len(access), "", dtype=object)
    for key, res in found.items():
        d = np.where(np.isfinite(res.distance), res.distance, np.nan)
        access[f"d_{key}"] = d
        straight = _append(straight, res.straight & np.isfinite(res.distance), key)
        beyond = ~(res.distance <= rules.facilities[key].reach_m)
        uncovered = _append(uncovered, beyond, key)
    access["straight"] = straight
    access["uncovered"] = uncovered
    # map facility positions within each type back to the facilities frame's rows
    for key, res in found.items():
        rows = np.flatnonzero(ftype == key)
        if not len(rows):
            continue
        res.facility = np.where(res.facility >= 0, rows[np.maximum(res.facility, 0)], -1)
    out = gpd.GeoDataFrame(access, geometry=shapely.points(xy), crs=buildings.crs)
    return out, found, snapped


def _append(text: np.ndarray, mask: np.ndarray, key: str) -> np.ndarray:
    add = np.where(text == "", key, np.char.add(text.astype(str), "," + key))
    return np.where(mask, add, text).astype(object)


def grid_coverage(
    grids: gpd.GeoDataFrame, access: pd.DataFrame, facilities: gpd.GeoDataFrame, rules: Rules
) -> gpd.GeoDataFrame:
    """Per grid and type: households covered and uncovered, and required types missing.

    Columns: ``code``, ``parent_code``, ``name``, ``households``, ``cov_<type>`` and
    ``unc_<type>`` (households within and beyond reach), ``n_<type>`` (facilities inside
    the grid), ``missing`` (required types with no facility inside, comma separated) and
    ``uncovered_households`` (households beyond reach of at least one type).
    """
    keep = [c for c in ("code", "parent_code", "name", "households") if c in grids]
    out = gpd.GeoDataFrame(
        grids[keep].reset_index(drop=True), geometry=grids.geometry.to_numpy(), crs=grids.crs
    )
    hh = pd.to_numeric(access["households"], errors="coerce").fillna(0)
    inside = _inside(out, facilities)
    any_unc = np.zeros(len(access), dtype=bool)
    for key, ftype in rules.facilities.items():
        d = access[f"d_{key}"].to_numpy()
        within = d <= ftype.reach_m
        any_unc |= ~within
        by = (
            pd.DataFrame(
                {"code": access["grid_code"].to_numpy(), "c": hh * within, "u": hh * ~within}
            )
            .groupby("code")
            .sum()
        )
        out[f"cov_{key}"] = out["code"].map(by["c"]).fillna(0).astype(int).to_numpy()
        out[f"unc_{key}"] = out["code"].map(by["u"]).fillna(0).astype(int).to_numpy()
        out[f"n_{key}"] = inside.get(key, np.zeros(len(out), dtype=int))
    missing = np.full(len(out), "", dtype=object)
    for key in rules.required["grid"]:
        missing = _append(missing, out[f"n_{key}"].to_numpy() == 0, key)
    out["missing"] = missing
    unc = pd.Series(hh * any_unc).groupby(access["grid_code"].to_numpy()).sum()
    out["uncovered_households"] = out["code"].map(unc).fillna(0).astype(int).to_numpy()
    return out


def _inside(polys: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
    """Count of facilities of each type inside each polygon."""
    out: dict[str, np.ndarray] = {}
    if not len(facilities):
        return out
    f, p = shapely.STRtree(polys.geometry.to_numpy()).query(
        facilities.geometry.to_numpy(), predicate="within"
    )
    types = facilities["type"].to_numpy()[f]
    for key in np.unique(types):
        out[str(key)] = np.bincount(p[types == key], minlength=len(polys))
    return out


def shelter_load(
    facilities: gpd.GeoDataFrame, access: pd.DataFrame, found: dict[str, Nearest], rules: Rules
) -> gpd.GeoDataFrame:
    """Each facility with the people assigned to it (buildings within reach whose
    nearest facility of its type it is) against its capacity.

    For shelters, capacity in persons is the ``capacity`` given, else usable area
    (``area_m2 × usable_share``) / ``m2_per_person``; it must reach ``capacity_share`` of
    the population assigned. For types with ``m2_per_100_households`` (community
    centres) the area must reach that many m² per 100 households assigned.

    Adds ``assigned_households``, ``assigned_population``, ``capacity_persons``,
    ``needed``, ``load`` (needed / capacity) and ``over_capacity``.
    """
    out = facilities.copy()
    for col in ("assigned_households", "assigned_population"):
        out[col] = 0
    for col in ("capacity_persons", "needed", "load"):
        out[col] = np.nan
    out["over_capacity"] = False
    hh = pd.to_numeric(access["households"], errors="coerce").fillna(0).to_numpy()
    pop = pd.to_numeric(access["population"], errors="coerce").fillna(0).to_numpy()
    for key, res in found.items():
        t = rules.facilities[key]
        if not (t.is_shelter or t.m2_per_100_households):
            continue
        ok = (res.facility >= 0) & (res.distance <= t.reach_m)
        rows = res.facility[ok]
        a_hh = np.bincount(rows, weights=hh[ok], minlength=len(out))
        a_pop = np.bincount(rows, weights=pop[ok], minlength=len(out))
        mask = (out["type"] == key).to_numpy()
        idx = np.flatnonzero(mask)
        out.iloc[idx, out.columns.get_loc("assigned_households")] = a_hh[idx].round().astype(int)
        out.iloc[idx, out.columns.get_loc("assigned_population")] = a_pop[idx].round().astype(int)
        area = pd.to_numeric(out["area_m2"], errors="coerce").to_numpy()[idx]
        given = pd.to_numeric(out["capacity"], errors="coerce").to_numpy()[idx]
        if t.is_shelter:
            cap = np.where(np.isfinite(given), given, area * t.usable_share / t.m2_per_person)
            need = (t.capacity_share or 1.0) * a_pop[idx]
        else:
            cap = area
            need = t.m2_per_100_households * a_hh[idx] / 100.0
        with np.errstate(invalid="ignore", divide="ignore"):
            load = np.where(cap > 0, need / np.where(cap > 0, cap, 1), np.inf)
        known = np.isfinite(cap)
        out.iloc[idx, out.columns.get_loc("capacity_persons")] = np.round(cap, 1)
        out.iloc[idx, out.columns.get_loc("needed")] = np.round(need, 1)
        out.iloc[idx, out.columns.get_loc("load")] = np.where(known, np.round(load, 3), np.nan)
        out.iloc[idx, out.columns.get_loc("over_capacity")] = known & (need > cap)
    return out


def gaps(
    buildings: gpd.GeoDataFrame,
    access: gpd.GeoDataFrame,
    grid_cov: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    rules: Rules,
) -> gpd.GeoDataFrame:
    """The ``gaps`` layer: one feature per gap, each with its reason.

    Kinds: ``beyond_reach`` (a building with households beyond a type's reach; its
    point), ``missing_required`` (a grid or community with no facility of a required
    type inside; its polygon), ``over_capacity`` (a shelter or centre short of capacity;
    its point) and ``exposed_vulnerable`` (a building in a risk zone where vulnerable
    people live; its point).
    """
    rows: list[dict] = []
    geoms: list = []
    hh = pd.to_numeric(access["households"], errors="coerce").fillna(0).to_numpy()
    pop = pd.to_numeric(access["population"], errors="coerce").fillna(0).to_numpy()
    straight_sets = [set(s.split(",")) if s else set() for s in access["straight"]]
    sample_fac = sample_types(facilities)
    for key, t in rules.facilities.items():
        d = access[f"d_{key}"].to_numpy()
        beyond = np.flatnonzero(~(d <= t.reach_m) & (hh > 0))
        for i in beyond:
            straight = key in straight_sets[i]
            # from the distance as stored (0.1 m), so the public form (data/privacy.py) agrees
            reason = reach_reason(hh[i], round(d[i], 1), t.reach_m, t.zh, t.en, straight)
            rows.append(
                _gap(
                    "beyond_reach",
                    key,
                    t,
                    "building",
                    access["building_id"].iat[i],
                    access["grid_code"].iat[i],
                    hh[i],
                    pop[i],
                    d[i],
                    straight,
                    reason,
                    key in sample_fac,
                )
            )
            geoms.append(access.geometry.iat[i])
    for level, polys in (("grid", grid_cov), ("community", communities)):
        inside = _inside(polys, facilities)
        for key in rules.required[level]:
            t = rules.facilities[key]
            none = np.flatnonzero(inside.get(key, np.zeros(len(polys), dtype=int)) == 0)
            for i in none:
                code = str(polys["code"].iat[i])
                h = float(polys["households"].iat[i]) if "households" in polys else 0.0
                reason = missing_reason(level, code, t.zh, t.en)
                grid_code = code if level == "grid" else ""
                rows.append(
                    _gap(
                        "missing_required",
                        key,
                        t,
                        level,
                        code,
                        grid_code,
                        h,
                        0,
                        np.nan,
                        False,
                        reason,
                        key in sample_fac,
                    )
                )
                geoms.append(polys.geometry.iat[i])
    if "over_capacity" in facilities:
        for i in np.flatnonzero(facilities["over_capacity"].to_numpy(dtype=bool)):
            f = facilities.iloc[i]
            t = rules.facilities[f["type"]]
            unit = "m²" if not t.is_shelter else "人 persons"
            reason = (
                f"{t.zh}「{f.get('name') or f['facility_id']}」需 {f['needed']:,.0f} {unit}，"
                f"容量 {f['capacity_persons']:,.0f} / {t.en} needs {f['needed']:,.0f} "
                f"{unit.split()[-1]} for {int(f['assigned_population'])} people assigned, "
                f"holds {f['capacity_persons']:,.0f}"
            )
            rows.append(
                _gap(
                    "over_capacity",
                    f["type"],
                    t,
                    "facility",
                    f["facility_id"],
                    f.get("grid_code", ""),
                    f["assigned_households"],
                    f["assigned_population"],
                    np.nan,
                    False,
                    reason,
                    bool(f.get("sample", False)),
                )
            )
            geoms.append(f.geometry)
    if len(zones):
        hit = exposed_buildings(buildings, zones)
        vul = buildings.reindex(columns=list(VULNERABLE)).fillna(0).to_numpy().sum(axis=1)
        zone_sample = bool(zones["sample"].any()) if "sample" in zones else False
        if "vulnerable_sample" in buildings:
            zone_sample |= bool(buildings["vulnerable_sample"].astype(bool).any())
        for i in np.flatnonzero(hit & (vul > 0)):
            b = buildings.iloc[i]
            reason = vulnerable_reason({c: int(b.get(c, 0) or 0) for c in VULNERABLE})
            rows.append(
                _gap(
                    "exposed_vulnerable",
                    "",
                    None,
                    "building",
                    b["building_id"],
                    b.get("grid_code", ""),
                    b.get("households", 0),
                    vul[i],
                    np.nan,
                    False,
                    reason,
                    zone_sample,
                )
            )
            geoms.append(access.geometry.iat[i])
    frame = pd.DataFrame(
        rows, columns=list(_gap("", "", None, "", "", "", 0, 0, 0, False, "", False))
    )
    frame.insert(0, "gap_id", [f"G{i + 1:05d}" for i in range(len(frame))])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=access.crs), crs=access.crs)


def reach_reason(
    households: float, distance: float, reach: float, zh: str, en: str, straight: bool
) -> str:
    """Why a building is a ``beyond_reach`` gap: its households and the walk (or straight
    line) to the nearest facility of the type, or that the study area has none. Built from
    values every reader may see (a building's households, distances)."""
    hh = int(households)
    if distance is None or np.isnan(distance):
        return f"研究区内没有{zh} / no {en} in the study area; {hh} 户 households uncovered"
    how = "直线距离 straight line" if straight else "步行 walk"
    return (
        f"{hh} 户距最近的{zh} {distance:,.0f} m（{how}），超出 {reach:,.0f} m"
        f" / {hh} households {distance:,.0f} m ({how}) from the nearest {en}, beyond "
        f"{reach:,.0f} m"
    )


def missing_reason(level: str, code: str, zh: str, en: str) -> str:
    """Why a grid or community is a ``missing_required`` gap."""
    name = "网格 grid" if level == "grid" else "社区 community"
    return f"{name} {code} 内没有{zh} / no {en} inside this {level} (required per {level})"


def vulnerable_reason(counts: dict[str, int] | None = None) -> str:
    """Why a building is an ``exposed_vulnerable`` gap. The counts of its elderly, disabled
    and lone residents are restricted (data/privacy.py): without ``counts`` the reason says
    that vulnerable people live there and no more, as a reader outside the building's
    territory may read it."""
    if counts is None:
        return "风险区内的建筑有重点人群 / vulnerable people live in a building in a risk zone"
    total = sum(counts.values())
    parts = ", ".join(f"{n} {c}" for c, n in counts.items())
    return (
        f"风险区内的建筑有重点人群 {total} 人 / {total} vulnerable people ({parts}) "
        "live in a risk zone"
    )


def _gap(
    kind, key, t, level, ref, grid_code, households, people, distance, straight, reason, sample
) -> dict:
    return {
        "kind": kind,
        "type": key,
        "type_zh": t.zh if t is not None else "重点人群",
        "level": level,
        "ref": str(ref),
        "grid_code": ""
        if grid_code is None or (isinstance(grid_code, float) and np.isnan(grid_code))
        else str(grid_code),
        "households": round(float(households or 0)),
        "people": round(float(people or 0)),
        "distance_m": None if distance is None or np.isnan(distance) else round(float(distance), 1),
        "reach_m": float(t.reach_m) if t is not None else None,
        "straight": bool(straight),
        "reason": reason,
        "sample": bool(sample),
    }


def sample_types(facilities: gpd.GeoDataFrame) -> set[str]:
    """Types for which some facility is sample data: their gaps depend on it."""
    if "sample" not in facilities or not len(facilities):
        return set()
    return set(facilities.loc[facilities["sample"].astype(bool), "type"])
