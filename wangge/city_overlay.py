"""Risk per grid and walking coverage per street for a whole city, streets as Dask tasks.

A city plan (:mod:`wangge.city`) is too large to measure in one process, so its coverage
runs street by street, as the delineation does: the client cuts the city's inputs once
into one file per street, and each task, carrying only the street's code and its cut's
path, measures that street (:func:`coverage_task`, :func:`risk_task`). Results are joined
in street-code order, so they do not depend on the number of workers.

Coverage and the halo
    A building's nearest facility may lie in the next street, so each street's task takes
    its buildings and, around the convex hull of their points, a **halo** of
    ``max(reach_m) / min(1, detour) + max_snap_m`` (:func:`coverage_halo`; 2,250 m with the
    bundled rules, whose longest reach is the fixed shelter's 2 km): the walking-network
    edges that cross it (whole, as :func:`wangge.geo.access.walk_graph` cuts them) and the
    facilities inside it. Every walk of at most the reach from a building stays within the
    reach of it, so inside the halo; a facility inside the halo whose nearest node lies
    outside it is at least ``max(reach_m)`` from every building of the street, so snapping
    it to another node cannot bring it within reach. Whether a building's network
    component holds a facility of a type (if not, the distance is the straight line times
    the detour, as :func:`wangge.geo.access.nearest` does) is decided on the whole city's
    network, labelled once by the client; a street cannot see that on its cut.

    Hence, for every building and type, the distance is **the same as one process over the
    whole city finds wherever that distance is within the type's reach**; beyond the reach
    both say "beyond reach" (tests/test_city_overlay.py). Beyond the reach the value is the
    distance inside the halo, which may be longer than the whole city's; where the halo
    holds no way to a facility of a type the city has, ``d_<type>`` is NaN and the type is
    listed in the ``beyond_halo`` column (the distance is only known to exceed the halo).

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
import math
import os
import pickle
import secrets
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from wangge.data.store import Store, Version, open_store
from wangge.errors import InputError, WanggeError
from wangge.geo import coverage as geo_coverage
from wangge.geo import risk as geo_risk
from wangge.geo.access import Nearest, WalkGraph, walk_graph
from wangge.geo.rules import Rules, load_rules, rules_from_raw
from wangge.overlay import (
    FACILITY_COLUMNS,
    PlanData,
    _locate,
    _touching,
    _typed_osm_facilities,
    _user_facilities,
    read_units,
)

#: Digits of a street's code: the prefix of every grid and micro-grid code inside it.
STREET_DIGITS = 9
#: Building columns a coverage task needs.
_BUILDING_COLUMNS = ("building_id", "grid_code", "microgrid_code", "households", "population")
#: Segments per quarter circle of the halo's buffer (its polygon is grown to hold the circle).
_QUAD_SEGS = 8


# the halo ------------------------------------------------------------------------------


def coverage_halo(rules: Rules) -> float:
    """How far around a street's buildings its network and facilities are taken (m): the
    longest reach, over the detour factor where that is below 1 (a straight line times
    the detour must stay within reach), plus the snapping distance."""
    reach = max(t.reach_m for t in rules.facilities.values())
    return reach / min(1.0, rules.detour) + rules.max_snap_m


def street_codes(buildings: pd.DataFrame) -> np.ndarray:
    """The street of each building: the first nine digits of its grid (or micro-grid)
    code, '' where it has neither."""
    code = pd.Series("", index=buildings.index, dtype=object)
    for col in ("microgrid_code", "grid_code"):
        if col in buildings:
            have = buildings[col].fillna("").astype(str)
            code = code.where(have.str.len() < STREET_DIGITS, have)
    return code.str[:STREET_DIGITS].to_numpy(dtype=object)


def _reach(points: np.ndarray, halo_m: float) -> shapely.Geometry:
    """The convex hull of ``points`` grown by ``halo_m``, its polygon holding the circle."""
    hull = shapely.convex_hull(shapely.multipoints(points))
    if halo_m <= 0:
        return hull
    grow = halo_m / math.cos(math.pi / (4 * _QUAD_SEGS))
    return shapely.buffer(hull, grow, quad_segs=_QUAD_SEGS)


def _xy(geoms) -> np.ndarray:
    """A feature's point as :func:`wangge.geo.coverage.building_access` measures it."""
    geoms = np.asarray(geoms)
    if not len(geoms):
        return np.zeros((0, 2))
    return shapely.get_coordinates(shapely.point_on_surface(geoms))


# the whole city's network components ---------------------------------------------------


def network_components(nodes: pd.DataFrame, edges: pd.DataFrame) -> np.ndarray:
    """The connected component of each node of the whole walking network (labels)."""
    ids = nodes["node_id"].to_numpy()
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pos = pd.Series(np.arange(n), index=ids)
    u = pos.reindex(edges["u"].to_numpy()).to_numpy()
    v = pos.reindex(edges["v"].to_numpy()).to_numpy()
    ok = ~(np.isnan(u) | np.isnan(v))
    adj = sparse.coo_matrix(
        (np.ones(int(ok.sum())), (u[ok].astype(np.int64), v[ok].astype(np.int64))), shape=(n, n)
    )
    return connected_components(adj, directed=False)[1]


def _graph_components(graph: WalkGraph, junction_labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each node's component in ``graph`` (a cut of the city's network) and in the whole
    network. ``graph``'s first nodes are the junctions, labelled ``junction_labels``; every
    component of a cut holds a junction (an edge's inner nodes lie between two)."""
    if graph.n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cc = connected_components(graph.csr, directed=False)[1]
    whole = np.full(cc.max() + 1, -1, dtype=np.int64)
    whole[cc[: len(junction_labels)]] = junction_labels
    return cc, whole[cc]


def _sub_nodes(nodes: pd.DataFrame, edges: pd.DataFrame, extra: np.ndarray) -> np.ndarray:
    """Positions (in order) of the nodes ``edges`` join, plus those at ``extra``."""
    ends = np.r_[edges["u"].to_numpy(), edges["v"].to_numpy()]
    keep = nodes["node_id"].isin(ends).to_numpy().copy()
    keep[extra] = True
    return np.flatnonzero(keep)


def facility_components(
    facilities: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    labels: np.ndarray,
    max_snap_m: float,
) -> np.ndarray:
    """The whole network's component each facility snaps into, -1 where it is off the
    network (no node within ``max_snap_m``): its nearest node is found on the edges and
    nodes within that distance of it, which hold the whole network's nearest."""
    fxy = _xy(facilities.geometry.to_numpy())
    out = np.full(len(fxy), -1, dtype=np.int64)
    if not len(fxy) or not len(nodes):
        return out
    pts = shapely.points(fxy)
    near = max_snap_m + 1.0
    ei = np.unique(
        shapely.STRtree(edges.geometry.to_numpy()).query(pts, "dwithin", distance=near)[1]
    )
    ni = np.unique(
        shapely.STRtree(nodes.geometry.to_numpy()).query(pts, "dwithin", distance=near)[1]
    )
    sub_edges = edges.iloc[ei]
    keep = _sub_nodes(nodes, sub_edges, ni)
    graph = walk_graph(nodes.iloc[keep], sub_edges)
    if graph.n == 0:
        return out
    node, dist = graph.snap(fxy)
    whole = _graph_components(graph, labels[keep])[1]
    on = dist <= max_snap_m
    out[on] = whole[node[on]]
    return out


# 1. cut --------------------------------------------------------------------------------


def cut_coverage(
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    rules: Rules,
    halo_m: float | None = None,
) -> dict[str, dict]:
    """The city's coverage inputs cut per street (see the module's docstring), keyed by
    street code: the street's buildings, the network edges crossing its halo and their
    nodes (with each node's component in the whole network), the facilities inside it
    (with their rows in ``facilities``), and, per type, the whole network's components
    that hold a facility of the type on the network."""
    halo = coverage_halo(rules) if halo_m is None else float(halo_m)
    labels = network_components(nodes, edges)
    fac_comp = facility_components(facilities, nodes, edges, labels, rules.max_snap_m)
    ftype = facilities["type"].to_numpy() if len(facilities) else np.array([], dtype=object)
    comps_with = {
        key: np.unique(fac_comp[(ftype == key) & (fac_comp >= 0)]) for key in rules.facilities
    }
    city_types = sorted({str(t) for t in ftype if t in rules.facilities})
    codes = street_codes(buildings)
    bxy = _xy(buildings.geometry.to_numpy())
    fxy = _xy(facilities.geometry.to_numpy())
    edge_tree = shapely.STRtree(edges.geometry.to_numpy())
    node_tree = shapely.STRtree(nodes.geometry.to_numpy())
    fac_tree = shapely.STRtree(shapely.points(fxy))
    cols = [c for c in _BUILDING_COLUMNS if c in buildings]
    fac_cols = [c for c in ("facility_id", "type") if c in facilities]
    node_frame = gpd.GeoDataFrame(
        {"node_id": nodes["node_id"].to_numpy(), "comp": labels},
        geometry=nodes.geometry.to_numpy(),
        crs=nodes.crs,
    )
    edge_frame = edges[["u", "v", edges.geometry.name]]
    out = {}
    for code in sorted(set(codes)):
        rows = np.flatnonzero(codes == code)
        reach = _reach(bxy[rows], halo)
        ei = np.sort(edge_tree.query(reach, predicate="intersects"))
        ni = node_tree.query(reach, predicate="intersects")
        sub_edges = edge_frame.iloc[ei]
        fi = np.sort(fac_tree.query(reach, predicate="intersects"))
        out[code or "-"] = {
            "buildings": buildings.iloc[rows][[*cols, buildings.geometry.name]],
            "rows": rows,
            "nodes": node_frame.iloc[_sub_nodes(nodes, sub_edges, ni)],
            "edges": sub_edges,
            "facilities": facilities.iloc[fi][[*fac_cols, facilities.geometry.name]],
            "facility_rows": fi,
            "comps_with": {k: v for k, v in comps_with.items() if len(v)},
            "city_types": city_types,
            "halo_m": halo,
        }
    return out


# 2. one street, on a worker ------------------------------------------------------------


def coverage_task(spec: dict) -> dict:
    """Measure one street from its cut; returns its status with its results.

    ``spec`` holds plain values only: the street's code, the cut's path and the rules as
    JSON. A street that raises returns ``failed`` with its error; the others go on.
    """
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        rules = rules_from_raw(json.loads(spec["rules_json"]), "rules")
        with open(spec["cut"], "rb") as fh:
            cut = pickle.load(fh)
        access, found, figures = street_access(cut, rules, int(spec.get("threads", 1)))
        figures["seconds"] = round(time.perf_counter() - start, 3)
        return {
            "street": spec["street"],
            "state": "done",
            "worker": worker,
            "access": access,
            "found": found,
            **figures,
        }
    except Exception as exc:  # a street's failure is its own: reported, the others go on
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return {
            "street": spec["street"],
            "state": "failed",
            "worker": worker,
            "error": detail,
            "seconds": round(time.perf_counter() - start, 3),
        }


def street_access(
    cut: dict, rules: Rules, threads: int = 1
) -> tuple[gpd.GeoDataFrame, dict[str, Nearest], dict]:
    """Walking access of one street's buildings on its cut (:func:`cut_coverage`).

    Returns ``access`` as :func:`wangge.geo.coverage.building_access` gives it plus
    ``beyond_halo``, the results per type with facility positions in the city's
    facilities, and the street's figures.
    """
    buildings, fac = cut["buildings"], cut["facilities"]
    graph = walk_graph(cut["nodes"], cut["edges"])
    access, found, snapped = geo_coverage.building_access(buildings, fac, graph, rules, threads)
    cc, whole = _graph_components(graph, cut["nodes"]["comp"].to_numpy())
    fxy = _xy(fac.geometry.to_numpy())
    f_node, f_snap = graph.snap(fxy)
    f_on = f_snap <= rules.max_snap_m
    ftype = fac["type"].to_numpy() if len(fac) else np.array([], dtype=object)
    on = snapped.on_network
    b_cc = np.where(on, cc[np.maximum(snapped.node, 0)] if graph.n else -1, -1)
    b_whole = np.where(on, whole[np.maximum(snapped.node, 0)] if graph.n else -1, -1)
    beyond: dict[str, np.ndarray] = {}
    empty = np.zeros(0, dtype=np.int64)
    for key, t in rules.facilities.items():
        if key not in cut["city_types"]:
            continue  # the city has none: NaN, as one process says
        res = found[key]
        flag = np.zeros(len(access), dtype=bool)
        rows = np.flatnonzero(ftype == key)
        if not len(rows):
            flag[:] = True  # the nearest is farther than the halo
        else:
            reached = np.isin(b_cc, cc[f_node[rows[f_on[rows]]]]) & on
            whole_has = np.isin(b_whole, cut["comps_with"].get(key, empty)) & on
            # reached in the cut through a facility the whole network snaps into another
            # component: the city measures this building by straight line
            x = np.flatnonzero(reached & ~whole_has)
            if len(x):
                d, i = cKDTree(fxy[rows]).query(snapped.xy[x])
                res.distance[x], res.facility[x], res.straight[x] = d * rules.detour, rows[i], True
            # the city's network joins it to a facility, by a walk longer than the halo:
            # only a facility off the network can be within reach
            a = np.flatnonzero(~reached & whole_has)
            if len(a):
                off = rows[~f_on[rows]]
                v, which = np.full(len(a), np.inf), np.full(len(a), -1)
                if len(off):
                    d, i = cKDTree(fxy[off]).query(snapped.xy[a])
                    v, which = d * rules.detour, off[i]
                ok = v <= t.reach_m
                res.distance[a[ok]], res.facility[a[ok]], res.straight[a[ok]] = (
                    v[ok],
                    which[ok],
                    True,
                )
                flag[a[~ok]] = True
        res.distance[flag], res.straight[flag], res.facility[flag] = np.inf, False, -1
        beyond[key] = flag
    _columns(access, found, beyond, rules)
    fac_rows = np.asarray(cut["facility_rows"], dtype=np.int64)
    for res in found.values():
        res.facility = np.where(res.facility >= 0, fac_rows[np.maximum(res.facility, 0)], -1)
    figures = {
        "buildings": len(access),
        "facilities": len(fac),
        "nodes": graph.n,
        "edges": len(cut["edges"]),
        "beyond_halo": int(sum(int(f.sum()) for f in beyond.values())),
    }
    return access, found, figures


def _columns(access, found: dict[str, Nearest], beyond: dict[str, np.ndarray], rules: Rules):
    """``d_<type>``, ``straight``, ``uncovered`` and ``beyond_halo`` from ``found``, as
    :func:`wangge.geo.coverage.building_access` writes the first three."""
    straight = np.full(len(access), "", dtype=object)
    uncovered = np.full(len(access), "", dtype=object)
    far = np.full(len(access), "", dtype=object)
    for key, res in found.items():
        access[f"d_{key}"] = np.where(np.isfinite(res.distance), res.distance, np.nan)
        straight = _append(straight, res.straight & np.isfinite(res.distance), key)
        uncovered = _append(uncovered, ~(res.distance <= rules.facilities[key].reach_m), key)
        far = _append(far, beyond.get(key, np.zeros(len(access), dtype=bool)), key)
    access["straight"] = straight
    access["uncovered"] = uncovered
    access["beyond_halo"] = far


def _append(text: np.ndarray, mask: np.ndarray, key: str) -> np.ndarray:
    add = np.where(text == "", key, np.char.add(text.astype(str), "," + key))
    return np.where(mask, add, text).astype(object)


# 3. the run ----------------------------------------------------------------------------


@dataclass
class StreetAccess:
    """Walking access of a city's buildings, street by street.

    ``access`` is one row per building in street-code order (the input order within a
    street) with ``street``; ``found`` holds, per type, the distance, whether it is a
    straight line, and the nearest facility's row in the facilities given, aligned with
    ``access``; ``streets`` one row per street with its figures; ``rows`` the position of
    each row of ``access`` in the buildings given."""

    access: gpd.GeoDataFrame
    found: dict[str, Nearest]
    streets: pd.DataFrame
    halo_m: float
    rows: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


def access_by_street(
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    nodes: gpd.GeoDataFrame,
    edges: gpd.GeoDataFrame,
    rules: Rules,
    *,
    halo_m: float | None = None,
    run_dir: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    threads: int = 1,
    progress: bool = False,
) -> StreetAccess:
    """Walking access of every building, one task per street (frames in one metric CRS).

    Parameters
    ----------
    buildings
        ``building_id``, ``grid_code`` (or ``microgrid_code``: its first nine digits name
        the street), ``households``, ``population`` and footprints.
    facilities
        ``facility_id``, ``type`` (a rules key) and geometry.
    nodes, edges
        The whole city's ``network_nodes`` and ``network_edges``.
    halo_m
        Default :func:`coverage_halo`; another value is for tests (0: no halo).
    run_dir
        Where the cuts are written (default: a temporary directory, removed after); with
        ``scheduler``, a path every worker can read.
    workers, scheduler, client
        As :func:`wangge.city.run_city`: ``workers=0`` runs every street in this process.
    threads
        Facility types measured side by side within a street.
    """
    from wangge.city import write_cuts

    if not len(buildings):
        raise InputError("the city has no buildings to measure", where="buildings")
    _check_run_dir(run_dir, scheduler)
    t: dict[str, float] = {}
    start = time.perf_counter()
    cuts = cut_coverage(buildings, facilities, nodes, edges, rules, halo_m)
    halo = coverage_halo(rules) if halo_m is None else float(halo_m)
    rows = {code: cut.pop("rows") for code, cut in cuts.items()}
    settings = {
        "rules_json": json.dumps(rules.raw, ensure_ascii=False),
        "threads": threads,
    }
    with _folder(run_dir, "coverage") as folder:
        specs = write_cuts(cuts, folder, settings)
        del cuts
        t["cut"] = time.perf_counter() - start
        start = time.perf_counter()
        results = _run_tasks(coverage_task, specs, workers, scheduler, client, progress, "cov")
        t["streets"] = time.perf_counter() - start
    start = time.perf_counter()
    _raise_failed(results)
    codes = sorted(results)
    frames = [results[c]["access"].assign(street=c) for c in codes]
    access = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=buildings.crs)
    found = {}
    for key in rules.facilities:
        parts = [results[c]["found"][key] for c in codes]
        found[key] = Nearest(
            np.concatenate([p.distance for p in parts]),
            np.concatenate([p.straight for p in parts]),
            np.concatenate([p.facility for p in parts]),
        )
    figures = ("buildings", "facilities", "nodes", "edges", "beyond_halo", "seconds", "worker")
    streets = pd.DataFrame(
        [{"street": c, **{k: results[c][k] for k in figures}} for c in codes],
        columns=["street", *figures],
    )
    order = np.concatenate([rows[c] for c in codes]) if codes else np.zeros(0, dtype=np.int64)
    t["assemble"] = time.perf_counter() - start
    return StreetAccess(access, found, streets, halo, order, t)


def _check_run_dir(run_dir, scheduler) -> None:
    if scheduler is not None and run_dir is None:
        raise InputError(
            "with a scheduler, give run_dir: a path every worker can read", where="run_dir"
        )


class _folder:
    """``run_dir/sub`` made, or a temporary directory removed on exit."""

    def __init__(self, run_dir: str | Path | None, sub: str):
        self.tmp = None if run_dir else tempfile.TemporaryDirectory(prefix=f"wangge-{sub}-")
        self.path = Path(self.tmp.name) if self.tmp else Path(run_dir) / sub

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


def _run_tasks(fn, specs, workers, scheduler, client, progress: bool, label: str) -> dict:
    """Run ``fn`` on every spec (as :func:`wangge.city.run_city` runs streets) and return
    the statuses by street. ``workers=0`` runs them in this process."""
    from wangge.city import _Bar, _client, close_own

    bar = _Bar(len(specs), 0, progress)
    out: dict[str, dict] = {}
    try:
        if not specs:
            return out
        if workers == 0 and scheduler is None and client is None:
            for spec in specs:
                out[spec["street"]] = status = fn(spec)
                bar.update(status)
            return out
        from distributed import as_completed

        own = None
        if client is None:
            own = client = _client(workers, scheduler)
        token = secrets.token_hex(4)
        try:
            futures = {
                client.submit(
                    fn,
                    spec,
                    key=f"{label}-{spec['street']}-{spec['hash'][:12]}-{token}",
                    retries=2,
                    pure=False,
                ): spec
                for spec in specs
            }
            for future in as_completed(list(futures)):
                spec = futures[future]
                try:
                    status = future.result()
                except Exception as exc:  # the worker died more often than Dask allows
                    detail = f"{type(exc).__name__}: {exc}"
                    status = {"street": spec["street"], "state": "failed", "error": detail}
                out[spec["street"]] = status
                bar.update(status)
        finally:
            close_own(own)
    finally:
        bar.close()
    return out


def _raise_failed(results: dict[str, dict]) -> None:
    failed = {c: s.get("error", "") for c, s in results.items() if s["state"] != "done"}
    if failed:
        first = next(iter(sorted(failed)))
        raise WanggeError(
            f"{len(failed)} street(s) failed; street {first}: {failed[first]}", where="streets"
        )


# the city from the store ---------------------------------------------------------------


@dataclass
class CityInputs:
    """A city plan's layers (metric CRS), its network and its typed facilities."""

    store: Store
    version: Version
    plan: PlanData
    facilities: gpd.GeoDataFrame
    units: dict[str, gpd.GeoDataFrame]
    rules: Rules

    @property
    def crs(self) -> str:
        return self.plan.crs


_PLAN_LAYERS = ("grids", "buildings", "communities", "streets", "study_area", "facilities")


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
    user's ``facilities`` files, as :func:`wangge.overlay.coverage` reads them (the plan's
    own ``facilities`` layer, when it has one, stands for the OSM ones)."""
    store = store_target if isinstance(store_target, Store) else open_store(store_target)
    rules = rules or load_rules()
    v = store.resolve(plan_id, version)
    crs = v.meta.get("metric_crs")
    if not crs:
        raise InputError("the plan's meta has no metric_crs", where=f"plan {plan_id}")
    have = {info.name for info in store.layers(plan_id, v.version)}
    layers = {
        name: store.query(plan_id, v.version, name).frame.to_crs(crs)
        for name in _PLAN_LAYERS
        if name in have
    }
    for need in ("grids", "buildings"):
        if need not in layers:
            raise InputError(f"the plan has no {need!r} layer", where=f"plan {plan_id}")
    plan = PlanData(Path(str(store.url)), crs, layers, {k: str(x) for k, x in v.meta.items()})
    if units is None:
        if network:
            raise InputError("coverage needs the city's units.gpkg or OSM file", where="units")
        units_data = {"facilities": None, "crs": crs}
    else:
        units_data = read_units(plan, units, network=network)
    if "facilities" in layers and "type" in layers["facilities"]:
        fac = layers["facilities"][[*FACILITY_COLUMNS, "geometry"]]
    else:
        fac = _typed_osm_facilities(units_data, rules)
    extra = _user_facilities(facilities, rules, plan, encoding, gcj02)
    fac = gpd.GeoDataFrame(pd.concat([fac, *extra], ignore_index=True), crs=crs)
    fac = _locate(fac[fac["type"].isin(list(rules.facilities))].reset_index(drop=True), plan)
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
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        rules = rules_from_raw(json.loads(spec["rules_json"]), "rules")
        with open(spec["cut"], "rb") as fh:
            cut = pickle.load(fh)
        frame = geo_risk.grid_risk(
            cut["grids"], cut["points"], cut["zones"], cut["buildings"], rules
        )
        return {
            "street": spec["street"],
            "state": "done",
            "worker": worker,
            "grid_risk": frame,
            "grid_rows": cut["grid_rows"],
            "seconds": round(time.perf_counter() - start, 3),
        }
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return {
            "street": spec["street"],
            "state": "failed",
            "worker": worker,
            "error": detail,
            "seconds": round(time.perf_counter() - start, 3),
        }


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
    from wangge.city import write_cuts

    _check_run_dir(run_dir, scheduler)
    grids = grids.reset_index(drop=True)
    cuts = cut_risk(grids, points, zones, buildings)
    settings = {"rules_json": json.dumps(rules.raw, ensure_ascii=False)}
    with _folder(run_dir, "risk") as folder:
        specs = write_cuts(cuts, folder, settings)
        del cuts
        results = _run_tasks(risk_task, specs, workers, scheduler, client, progress, "risk")
    _raise_failed(results)
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
    from wangge.data.registers import read_risks, read_vulnerable

    t: dict[str, float] = {}
    start = time.perf_counter()
    rules = load_rules(rules_path)
    city = read_city(store_target, plan_id, None, version=version, rules=rules, network=False)
    plan = city.plan
    area = plan.study_area_wgs84
    points = read_risks(risks, rules, area, encoding=encoding, gcj02=gcj02).to_crs(plan.crs)
    if zones is not None:
        zf = read_risks(zones, rules, area, zones=True, encoding=encoding, gcj02=gcj02)
        zf = zf.to_crs(plan.crs)
    else:
        zf = gpd.GeoDataFrame(points.iloc[:0].copy(), crs=plan.crs)
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
    points = _locate(geo_risk.score(points, rules), plan)
    zf = _touching(geo_risk.score(zf, rules), plan)
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
    any_sample = bool(points["sample"].any() or (len(zf) and zf["sample"].any()))
    grid_risk["sample"] = any_sample or vul_sample
    buildings["vulnerable_sample"] = vul_sample
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
