"""Walking access of a city's buildings, street by street with a halo, as Dask tasks.

A city plan (:mod:`wangge.city`) is too large to measure in one process, so its walking
access is measured street by street, as the delineation runs (:mod:`wangge.city_runner`):
the client cuts the city's buildings, network and facilities once into one file per
street, and each task, carrying only the street's code and its cut's path, measures that
street (:func:`coverage_task`). Results are joined in street-code order, so they do not
depend on the number of workers. :func:`wangge.city_overlay.city_coverage` runs it on a
city plan from the store.

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
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from wangge.city_runner import check_run_dir, guarded, load_cut, run_cuts
from wangge.errors import InputError
from wangge.geo import coverage as geo_coverage
from wangge.geo.access import Nearest, WalkGraph, walk_graph
from wangge.geo.rules import Rules, rules_from_raw

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
    return guarded(spec, _measure_street)


def _measure_street(spec: dict) -> dict:
    rules = rules_from_raw(json.loads(spec["rules_json"]), "rules")
    access, found, figures = street_access(load_cut(spec), rules, int(spec.get("threads", 1)))
    return {"access": access, "found": found, **figures}


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
    if not len(buildings):
        raise InputError("the city has no buildings to measure", where="buildings")
    check_run_dir(run_dir, scheduler)
    t: dict[str, float] = {}
    start = time.perf_counter()
    cuts = cut_coverage(buildings, facilities, nodes, edges, rules, halo_m)
    halo = coverage_halo(rules) if halo_m is None else float(halo_m)
    rows = {code: cut.pop("rows") for code, cut in cuts.items()}
    settings = {
        "rules_json": json.dumps(rules.raw, ensure_ascii=False),
        "threads": threads,
    }
    t["cut"] = time.perf_counter() - start
    results = run_cuts(
        coverage_task,
        cuts,
        settings,
        "coverage",
        "cov",
        run_dir=run_dir,
        workers=workers,
        scheduler=scheduler,
        client=client,
        progress=progress,
        timings=t,
    )
    start = time.perf_counter()
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
