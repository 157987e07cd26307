"""The overlay and coverage jobs: risk register and facilities onto a delineated plan.

``overlay`` reads a risk register (points, zones), vulnerable-person counts and facility
files, scores the risks and adds per-grid risk. ``coverage`` measures walking distance
from every building to every facility type, and writes coverage per grid, shelter load,
the gaps and the suggested sites. Both add layers to the plan's ``plan.gpkg`` (rewritten
beside itself and renamed over it, so a failure leaves the plan as it was) and write
their maps next to it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from wangge.errors import InputError, NotFound
from wangge.geo import coverage as geo_coverage
from wangge.geo import risk as geo_risk
from wangge.geo.access import snap_targets, walk_graph
from wangge.geo.rules import Rules, load_rules, osm_facility_types
from wangge.geo.siting import coverage_matrix, suggest
from wangge.steps import Steps

#: Layers the overlay job writes.
OVERLAY_LAYERS = ("risk_points", "risk_zones", "grid_risk", "facilities", "buildings")
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


@dataclass
class PlanData:
    """A plan.gpkg read into its metric CRS."""

    path: Path
    crs: str
    layers: dict[str, gpd.GeoDataFrame]
    meta: dict[str, str]

    @property
    def study_area_wgs84(self) -> shapely.Geometry:
        area = self.layers.get("study_area")
        if area is None or not len(area):
            area = self.layers["grids"]
        return shapely.union_all(area.to_crs(4326).geometry.to_numpy())


@dataclass
class JobResult:
    """Layers written (metric CRS), maps written, counts to print and step timings."""

    layers: dict[str, pd.DataFrame]
    maps: list[Path]
    summary: dict[str, object]
    timings: dict[str, float] = field(default_factory=dict)


def plan_path(plan: str | Path) -> Path:
    path = Path(plan)
    return path / "plan.gpkg" if path.is_dir() else path


def read_plan_data(plan: str | Path) -> PlanData:
    """The plan's layers with geometry, in its metric CRS."""
    path = plan_path(plan)
    if not path.exists():
        raise InputError("file not found (run wangge delineate first)", path)
    try:
        names = [n for n, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise InputError(f"cannot be read as a GeoPackage: {exc}", path) from exc
    for need in ("grids", "communities", "buildings", "meta"):
        if need not in names:
            raise InputError(f"is not a plan.gpkg: it has no {need!r} layer", path)
    meta_frame = pyogrio.read_dataframe(path, layer="meta")
    meta = dict(zip(meta_frame["key"], meta_frame["value"], strict=True))
    crs = meta.get("metric_crs")
    if not crs:
        raise InputError("its meta has no metric_crs", path)
    layers = {}
    for name in names:
        if name == "meta":
            continue
        frame = pyogrio.read_dataframe(path, layer=name)
        if isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None:
            layers[name] = frame.to_crs(crs)
    return PlanData(path, crs, layers, meta)


def update_plan(path: Path, layers: dict[str, pd.DataFrame]) -> None:
    """Add or replace ``layers`` in plan.gpkg (stored in WGS84) in one atomic rename.

    The copy's name is new on every run, never only the pid's: a run killed mid-write
    leaves its copy and SQLite's hot journal beside it, and a later run that reused the
    name (same pid, as in a container) would have that journal rolled back into its fresh
    copy and renamed over the plan, losing its layers.
    """
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.gpkg")
    shutil.copyfile(path, tmp)
    try:
        for name, frame in layers.items():
            if isinstance(frame, gpd.GeoDataFrame):
                frame = frame.to_crs(4326)
            pyogrio.write_dataframe(
                frame, tmp, layer=name, driver="GPKG", layer_options={"OVERWRITE": "YES"}
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _meta(data: PlanData, rules: Rules) -> pd.DataFrame:
    """The plan's meta with the rules used, so the API scores and sites by the same."""
    meta = {**data.meta, "rules_json": json.dumps(rules.raw, ensure_ascii=False)}
    return pd.DataFrame({"key": list(meta), "value": [str(v) for v in meta.values()]})


def _locate(frame: gpd.GeoDataFrame, plan: PlanData) -> gpd.GeoDataFrame:
    """Add ``grid_code`` and ``community_code`` of the grid each feature lies in."""
    out = frame.copy()
    grids = plan.layers["grids"]
    pts = shapely.point_on_surface(out.geometry.to_numpy())
    f, g = shapely.STRtree(grids.geometry.to_numpy()).query(pts, predicate="within")
    code = np.full(len(out), "", dtype=object)
    code[f] = grids["code"].astype(str).to_numpy()[g]
    out["grid_code"] = code
    out["community_code"] = [c[:12] for c in code]
    return out


def _touching(zones: gpd.GeoDataFrame, plan: PlanData) -> gpd.GeoDataFrame:
    """Add ``grid_codes``: the grids each zone touches, comma separated."""
    out = zones.copy()
    grids = plan.layers["grids"]
    z, g = shapely.STRtree(grids.geometry.to_numpy()).query(
        out.geometry.to_numpy(), predicate="intersects"
    )
    codes = (
        pd.Series(grids["code"].astype(str).to_numpy()[g])
        .groupby(z)
        .agg(lambda c: ",".join(sorted(c)))
    )
    out["grid_codes"] = codes.reindex(range(len(out))).fillna("").to_numpy()
    return out


def _typed_osm_facilities(units: dict[str, gpd.GeoDataFrame], rules: Rules) -> gpd.GeoDataFrame:
    osm = units.get("facilities")
    if osm is None or not len(osm):
        return _empty_facilities(units["crs"])
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


def _empty_facilities(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(columns=list(FACILITY_COLUMNS)), geometry=[], crs=crs)


def _user_facilities(paths, rules, plan, encoding, gcj02) -> list[gpd.GeoDataFrame]:
    from wangge.data.registers import read_facilities

    out = []
    for p in paths or []:
        f = read_facilities(p, rules, plan.study_area_wgs84, encoding=encoding, gcj02=gcj02)
        out.append(f[[*FACILITY_COLUMNS, "geometry"]].to_crs(plan.crs))
    return out


def read_units(
    plan: PlanData, units: str | Path | None, network: bool = True
) -> dict[str, gpd.GeoDataFrame]:
    """OSM facilities, and with ``network`` the walking network and blocks, from
    units.gpkg (default: beside the plan) or straight from an OSM file (the same one the
    plan was made from)."""
    source = Path(units) if units else plan.path.with_name("units.gpkg")
    if not source.exists():
        raise InputError(
            "not found; pass --units with the units.gpkg of wangge ingest or the OSM file",
            source,
        )
    if source.suffix.lower() == ".gpkg":
        have = {n for n, _ in pyogrio.list_layers(source)}
        need = ("network_nodes", "network_edges", "facilities") if network else ("facilities",)
        missing = [n for n in need if n not in have]
        if missing:
            raise InputError(f"is not a units.gpkg: missing {', '.join(missing)}", source)
        wanted = (*need, "blocks") if network else need
        out = {
            n: pyogrio.read_dataframe(source, layer=n).to_crs(plan.crs) for n in wanted if n in have
        }
    else:
        from wangge.data.osm import read_osm
        from wangge.geo.network import walk_network

        extract = read_osm(source)
        out = {"facilities": extract.facilities.to_crs(plan.crs)}
        if network:
            nodes, edges = walk_network(extract.roads.to_crs(plan.crs))
            out |= {"network_nodes": nodes, "network_edges": edges}
    out["crs"] = plan.crs
    return out


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
    from wangge.data.registers import read_risks, read_vulnerable

    steps = Steps(
        ["read plan", "read register", "score", "grid risk", "write"], progress, "overlay"
    )
    data = read_plan_data(plan)
    rules = load_rules(rules_path)
    steps.done("read plan")
    area = data.study_area_wgs84
    points = read_risks(risks, rules, area, encoding=encoding, gcj02=gcj02).to_crs(data.crs)
    if zones is not None:
        zone_frame = read_risks(zones, rules, area, zones=True, encoding=encoding, gcj02=gcj02)
        zone_frame = zone_frame.to_crs(data.crs)
    else:
        zone_frame = gpd.GeoDataFrame(points.iloc[:0].copy(), crs=data.crs)
    buildings = data.layers["buildings"].copy()
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
    units_data = read_units(data, units, network=False)
    fac = [_typed_osm_facilities(units_data, rules)]
    fac += _user_facilities(facilities, rules, data, encoding, gcj02)
    fac_frame = gpd.GeoDataFrame(pd.concat(fac, ignore_index=True), crs=data.crs)
    steps.done("read register")
    points = _locate(geo_risk.score(points, rules), data)
    zone_frame = _touching(geo_risk.score(zone_frame, rules), data)
    fac_frame = _locate(fac_frame, data)
    steps.done("score")
    grid_risk = geo_risk.grid_risk(data.layers["grids"], points, zone_frame, buildings, rules)
    any_sample = bool(points["sample"].any() or (len(zone_frame) and zone_frame["sample"].any()))
    grid_risk["sample"] = any_sample or vul_sample
    buildings["vulnerable_sample"] = vul_sample
    steps.done("grid risk")
    layers = {
        "risk_points": points,
        "risk_zones": zone_frame,
        "grid_risk": grid_risk,
        "facilities": fac_frame,
        "buildings": buildings,
    }
    update_plan(data.path, {**layers, "meta": _meta(data, rules)})
    written = []
    if maps:
        from wangge.maps.heatmap import write_heatmap
        from wangge.maps.risk_maps import write_risk_map

        title = f"wangge 网格风险四色图 grid risk · {data.meta.get('district_code', '')}"
        written.append(
            write_risk_map(
                data.path.with_name("risk_map.html"), grid_risk, points, zone_frame, title=title
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
        "sample data": "yes" if any_sample or vul_sample else "no",
    }
    return JobResult(layers, written, summary, steps.timings)


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
    if "facilities" in data.layers and "type" in data.layers["facilities"]:
        fac = data.layers["facilities"][[*FACILITY_COLUMNS, "geometry"]]
    else:
        fac = _typed_osm_facilities(units_data, rules)
    extra = _user_facilities(facilities, rules, data, encoding, gcj02)
    fac = gpd.GeoDataFrame(pd.concat([fac, *extra], ignore_index=True), crs=data.crs)
    fac = _locate(fac[fac["type"].isin(list(rules.facilities))].reset_index(drop=True), data)
    cand = _candidates(candidates, units_data, data)
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
    sites, siting = _siting(graph, snapped, access, cand, rules, k, types=types)
    sample_types = geo_coverage.sample_types(fac)
    sites["sample"] = sites["type"].isin(sample_types)
    if types:
        # only the types asked for are sited again; the others' earlier answers stay
        sites = _keep_others(data.layers.get("suggestions"), sites, types, data.crs)
        have = {n for n, _ in pyogrio.list_layers(data.path)}
        old = pyogrio.read_dataframe(data.path, layer="siting") if "siting" in have else None
        if old is not None:
            old = pd.DataFrame(old.drop(columns="geometry", errors="ignore"))
        siting = _keep_others(old, siting, types, None)
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
    update_plan(data.path, {**layers, "meta": _meta(data, rules)})
    written = []
    if maps:
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
    return JobResult(layers, written, summary, steps.timings)


def _keep_others(old, new, types, crs):
    """``new`` rows plus the rows of ``old`` for types not in ``types``."""
    if old is None or "type" not in old:
        return new
    kept = old[~old["type"].isin(types)]
    frame = pd.concat([kept[new.columns.intersection(kept.columns)], new], ignore_index=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=crs) if crs else frame


def _candidates(path, units_data, data: PlanData) -> gpd.GeoDataFrame:
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
    return _locate(frame, data)


def _siting(graph, snapped, access, cand, rules: Rules, k: int, types=None, exact=True):
    """Suggested sites per type: the k candidates covering most uncovered households."""
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
    sites, summary = _siting(
        inputs.graph, inputs.snapped, inputs.access, inputs.candidates, rules, k, types={ftype}
    )
    sites["sample"] = ftype in inputs.sample_types
    return sites.to_crs(4326), summary.iloc[0].to_dict()


def suggest_sites(
    layers: dict[str, gpd.GeoDataFrame], crs: str, rules: Rules, ftype: str, k: int
) -> tuple[gpd.GeoDataFrame, dict]:
    """:func:`suggest_prepared` straight from a stored plan's layers."""
    return suggest_prepared(prepare_siting(layers, crs, rules), rules, ftype, k)
