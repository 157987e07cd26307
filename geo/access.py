"""Walking distance from every building to the nearest facility of each type.

The walking network (``geo/network.walk_network``) becomes a sparse graph. Buildings and
facilities snap to their nearest network node with a KD-tree, and the snap distance is
added at both ends. Each facility type is one Dijkstra run (``scipy.sparse.csgraph``)
from a virtual source joined to the type's facility nodes by their snap distances, which
is exactly a multi-source search with offsets. Where the network is missing (a building
or facility farther than ``max_snap_m`` from any node, or a component with no facility of
the type) the straight-line distance times a detour factor is used and flagged.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree


@dataclass
class WalkGraph:
    """An undirected walking graph: CSR lengths in metres and node coordinates."""

    csr: sparse.csr_matrix
    xy: np.ndarray
    tree: cKDTree = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.xy)

    def snap(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node of each point and the straight distance to it (metres)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.n == 0:
            return np.full(len(xy), -1), np.full(len(xy), np.inf)
        dist, node = self.tree.query(xy, workers=-1)
        return node.astype(np.int64), dist


def graph_from_arrays(
    xy: np.ndarray, u: np.ndarray, v: np.ndarray, length: np.ndarray
) -> WalkGraph:
    """Build a :class:`WalkGraph` from node coordinates and edges (node positions).

    Parallel edges keep their shortest length and self-loops are dropped, so the graph
    means the same to any shortest-path code that reads it.
    """
    xy = np.asarray(xy, dtype=float)
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    length = np.asarray(length, dtype=float)
    keep = u != v
    a, b = np.minimum(u, v)[keep], np.maximum(u, v)[keep]
    w = length[keep]
    order = np.lexsort((w, b, a))
    a, b, w = a[order], b[order], w[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    a, b, w = a[first], b[first], w[first]
    n = len(xy)
    csr = sparse.csr_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    return WalkGraph(csr=csr, xy=xy, tree=cKDTree(xy) if n else None)


def walk_graph(nodes, edges, step_m: float | None = 25.0) -> WalkGraph:
    """A :class:`WalkGraph` from the ``network_nodes`` and ``network_edges`` layers.

    Each edge is followed along its line, not as a straight chord, and is cut into
    pieces of at most ``step_m`` metres whose ends become nodes too. Snapping to the
    nearest node is then within ``step_m / 2`` of snapping to the nearest point of the
    street, so long blocks do not push their buildings to a far junction.
    """
    ids = nodes["node_id"].to_numpy()
    pos = pd.Series(np.arange(len(ids)), index=ids)
    xy = np.column_stack([nodes.geometry.x.to_numpy(), nodes.geometry.y.to_numpy()])
    u = pos.reindex(edges["u"].to_numpy()).to_numpy()
    v = pos.reindex(edges["v"].to_numpy()).to_numpy()
    ok = ~(np.isnan(u) | np.isnan(v))
    u, v = u[ok].astype(np.int64), v[ok].astype(np.int64)
    lines = edges.geometry.to_numpy()[ok]
    if step_m:
        lines = shapely.segmentize(lines, step_m)
    coords, part = shapely.get_coordinates(lines, return_index=True)
    starts = np.r_[0, np.flatnonzero(np.diff(part)) + 1] if len(part) else np.zeros(0, int)
    ends = np.r_[starts[1:] - 1, len(coords) - 1] if len(part) else np.zeros(0, int)
    # each vertex of a line is a node: its ends are the edge's u and v, inner vertices
    # are new nodes numbered after the junctions
    node_of = np.full(len(coords), -1, dtype=np.int64)
    node_of[starts] = u[part[starts]]
    node_of[ends] = v[part[ends]]
    inner = node_of < 0
    node_of[inner] = len(xy) + np.arange(int(inner.sum()))
    xy = np.vstack([xy, coords[inner]])
    same = part[1:] == part[:-1]
    a, b = node_of[:-1][same], node_of[1:][same]
    seg = np.hypot(*(coords[1:][same] - coords[:-1][same]).T)
    return graph_from_arrays(xy, a, b, seg)


@dataclass
class Nearest:
    """Distance from each target to the nearest facility of one type."""

    distance: np.ndarray  # metres; inf where the type has no facility at all
    straight: np.ndarray  # True where measured by straight line (times the detour)
    facility: np.ndarray  # index of the nearest facility, -1 where none


@dataclass
class Snapped:
    """Targets snapped to the graph once, for any number of facility types."""

    xy: np.ndarray
    node: np.ndarray
    snap_m: np.ndarray
    on_network: np.ndarray


def snap_targets(graph: WalkGraph, xy: np.ndarray, max_snap_m: float) -> Snapped:
    node, snap_m = graph.snap(xy)
    return Snapped(np.asarray(xy, dtype=float), node, snap_m, snap_m <= max_snap_m)


def _augmented(graph: WalkGraph, node: np.ndarray, snap_m: np.ndarray) -> sparse.csr_matrix:
    """The graph plus one virtual node (index n) with an arc to each source node whose
    weight is the smallest snap distance of the facilities at that node."""
    n = graph.n
    order = np.lexsort((snap_m, node))
    node, snap_m = node[order], snap_m[order]
    first = np.r_[True, node[1:] != node[:-1]] if len(node) else np.zeros(0, dtype=bool)
    node, snap_m = node[first], snap_m[first]
    # a zero weight would read as "no arc" in a sparse matrix
    snap_m = np.maximum(snap_m, 1e-9)
    coo = graph.csr.tocoo()
    rows = np.r_[coo.row, np.full(len(node), n)]
    cols = np.r_[coo.col, node]
    data = np.r_[coo.data, snap_m]
    return sparse.csr_matrix((data, (rows, cols)), shape=(n + 1, n + 1))


def _root(pred: np.ndarray, virtual: int) -> np.ndarray:
    """For each node, the first node on its shortest path from the virtual source (-1 if
    unreached), by pointer doubling over the predecessor array."""
    parent = pred.astype(np.int64).copy()
    roots = parent == virtual
    unreached = parent < 0
    parent[roots | unreached] = np.flatnonzero(roots | unreached)
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    parent[unreached] = -1
    return parent


def node_distances(
    graph: WalkGraph,
    source_node: np.ndarray,
    source_snap: np.ndarray,
    horizon: float | None = None,
    want_source: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Network distance from every node to the nearest source (with its snap offset).

    Returns the distances (inf where unreachable or beyond ``horizon``) and, when
    ``want_source``, the node each shortest path starts from (-1 where none).
    """
    aug = _augmented(graph, np.asarray(source_node), np.asarray(source_snap, dtype=float))
    limit = np.inf if horizon is None else float(horizon)
    if want_source:
        dist, pred = dijkstra(
            aug, directed=True, indices=graph.n, limit=limit, return_predecessors=True
        )
        return dist[: graph.n], _root(pred, graph.n)[: graph.n]
    dist = dijkstra(aug, directed=True, indices=graph.n, limit=limit)
    return dist[: graph.n], None


def nearest(
    graph: WalkGraph,
    targets: Snapped,
    facilities_xy: np.ndarray,
    max_snap_m: float,
    detour: float,
    horizon: float | None = None,
    want_facility: bool = False,
) -> Nearest:
    """Distance from each snapped target to the nearest of ``facilities_xy``.

    On the network the distance is ``snap(target) + path + snap(facility)``. A target
    off the network, a facility off the network, or a target whose component holds no
    facility, is measured by straight line × ``detour`` and flagged ``straight``.
    """
    m = len(targets.node)
    fac = np.asarray(facilities_xy, dtype=float).reshape(-1, 2)
    if len(fac) == 0:
        return Nearest(np.full(m, np.inf), np.zeros(m, dtype=bool), np.full(m, -1))
    f_node, f_snap = graph.snap(fac)
    f_on = f_snap <= max_snap_m
    dist = np.full(m, np.inf)
    which = np.full(m, -1)
    if f_on.any() and targets.on_network.any():
        dn, root = node_distances(graph, f_node[f_on], f_snap[f_on], horizon, want_facility)
        t = np.flatnonzero(targets.on_network)
        dist[t] = dn[targets.node[t]] + targets.snap_m[t]
        if want_facility:
            # the facility at each root node with the smallest snap distance
            on_idx = np.flatnonzero(f_on)
            order = np.lexsort((f_snap[on_idx], f_node[on_idx]))
            best = pd.Series(on_idx[order], index=f_node[on_idx][order])
            best = best[~best.index.duplicated()]
            r = root[targets.node[t]]
            which[t] = np.where(r >= 0, best.reindex(r).fillna(-1).to_numpy(), -1)
    straight = np.zeros(m, dtype=bool)
    # straight line: targets off the network or unreached, and facilities off the network
    need = ~np.isfinite(dist)
    if horizon is not None:
        # beyond the horizon is not the same as unreachable: only off-network targets
        need &= ~targets.on_network
    off_fac = np.flatnonzero(~f_on)
    cand = np.flatnonzero(need)
    if len(cand):
        d, i = cKDTree(fac).query(targets.xy[cand], workers=-1)
        dist[cand], which[cand], straight[cand] = d * detour, i, True
    if len(off_fac):
        d, i = cKDTree(fac[off_fac]).query(targets.xy, workers=-1)
        better = d * detour < dist
        dist[better], which[better], straight[better] = (
            d[better] * detour,
            off_fac[i[better]],
            True,
        )
    return Nearest(dist, straight, which)


_SHARED: dict = {}


def _nearest_job(args):
    key, fac_xy, want = args
    g, targets, max_snap_m, detour, horizon = _SHARED["job"]
    return key, nearest(g, targets, fac_xy, max_snap_m, detour, horizon, want)


def nearest_all(
    graph: WalkGraph,
    targets: Snapped,
    facilities: dict[str, np.ndarray],
    max_snap_m: float,
    detour: float,
    horizon: float | None = None,
    want_facility: set[str] | frozenset = frozenset(),
    workers: int = 1,
) -> dict[str, Nearest]:
    """:func:`nearest` for every facility type; ``workers`` > 1 forks processes that
    share the graph copy-on-write (Dijkstra in scipy holds the GIL, so threads do not
    help)."""
    jobs = [(k, xy, k in want_facility) for k, xy in facilities.items()]
    if workers <= 1 or len(jobs) < 2 or "fork" not in mp.get_all_start_methods():
        return {k: nearest(graph, targets, xy, max_snap_m, detour, horizon, w) for k, xy, w in jobs}
    _SHARED["job"] = (graph, targets, max_snap_m, detour, horizon)
    try:
        ctx = mp.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(jobs), os.cpu_count() or 1), ctx) as ex:
            return dict(ex.map(_nearest_job, jobs))
    finally:
        _SHARED.pop("job", None)
