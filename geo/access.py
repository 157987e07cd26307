"""Walking distance from every building to the nearest facility of each type.

The walking network (``geo/network.walk_network``) becomes a sparse graph, its edges
followed along their lines in pieces of at most 25 m. Buildings and facilities snap to
their nearest node with a KD-tree, and the snap distance is added at both ends. Each
facility type is one multi-source Dijkstra (``geo/_dijkstra.py``, compiled, GIL-free so
types run on threads side by side) that starts every facility at its snap distance and
records which facility each node is nearest to. Where the network is missing (a building
or facility farther than ``max_snap_m`` from any node, or a component with no facility of
the type) the straight-line distance times a detour factor is used and flagged.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
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
    n = len(xy)
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    length = np.asarray(length, dtype=float)
    keep = u != v
    # both directions of every edge, sorted by (tail, head); one sort builds the CSR
    tail = np.r_[u[keep], v[keep]]
    head = np.r_[v[keep], u[keep]]
    w = np.r_[length[keep], length[keep]]
    key = tail * max(n, 1) + head
    order = np.argsort(key, kind="stable")
    key, w = key[order], w[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(first)
    w = np.minimum.reduceat(w, starts) if len(starts) else w
    key = key[starts]
    tail, head = key // max(n, 1), key % max(n, 1)
    indptr = np.r_[0, np.cumsum(np.bincount(tail, minlength=n))]
    csr = sparse.csr_matrix((w, head.astype(np.int32), indptr.astype(np.int32)), shape=(n, n))
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
    # a junction sits where its lines end (the nodes layer rounds it to the millimetre)
    xy = xy.copy()
    xy[node_of[starts]] = coords[starts]
    xy[node_of[ends]] = coords[ends]
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


def node_distances(
    graph: WalkGraph,
    source_node: np.ndarray,
    source_snap: np.ndarray,
    horizon: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Network distance from every node to the nearest source, with its snap offset.

    Returns the distances (inf where unreachable or beyond ``horizon``) and, per node,
    the position in ``source_node`` of the source its shortest path starts from (-1
    where none).
    """
    from wangge.geo._dijkstra import multi_source

    csr = graph.csr
    return multi_source(
        csr.indptr,
        csr.indices,
        csr.data,
        np.asarray(source_node, dtype=np.int64),
        np.asarray(source_snap, dtype=float),
        np.inf if horizon is None else float(horizon),
    )


def nearest(
    graph: WalkGraph,
    targets: Snapped,
    facilities_xy: np.ndarray,
    max_snap_m: float,
    detour: float,
    horizon: float | None = None,
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
        on_idx = np.flatnonzero(f_on)
        dn, origin = node_distances(graph, f_node[on_idx], f_snap[on_idx], horizon)
        t = np.flatnonzero(targets.on_network)
        dist[t] = dn[targets.node[t]] + targets.snap_m[t]
        o = origin[targets.node[t]]
        which[t] = np.where(o >= 0, on_idx[np.maximum(o, 0)], -1)
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


def nearest_all(
    graph: WalkGraph,
    targets: Snapped,
    facilities: dict[str, np.ndarray],
    max_snap_m: float,
    detour: float,
    horizon: float | None = None,
    workers: int = 1,
) -> dict[str, Nearest]:
    """:func:`nearest` for every facility type, ``workers`` types at a time on threads
    (the compiled search releases the GIL)."""

    def one(item):
        key, xy = item
        return key, nearest(graph, targets, xy, max_snap_m, detour, horizon)

    if workers <= 1 or len(facilities) < 2:
        return dict(map(one, facilities.items()))
    with ThreadPoolExecutor(workers) as ex:
        return dict(ex.map(one, facilities.items()))
