"""Walking distance from every building to the nearest facility of each type.

The walking network (``geo/network.walk_network``) becomes a sparse graph, its edges
followed along their lines in pieces of at most 25 m. Buildings and facilities snap to
their nearest node with a KD-tree, and the snap distance is added at both ends. Each
facility type is one multi-source Dijkstra (``geo/_dijkstra.py``, compiled, GIL-free so
types run on threads side by side) that starts every facility at its snap distance and
records which facility each node is nearest to. Where the network is missing (a building
or facility farther than ``max_snap_m`` from any node, or a component with no facility of
the type) the straight-line distance times a detour factor is used and flagged.

A search may be bounded by a ``horizon``, the reach of the type: the distance beyond which
a target counts as uncovered. The search then settles only the nodes within it (a 300 m
kindergarten search touches about a sixth of a city's nodes), and every target within
the horizon gets exactly the answer of the unbounded search; a target beyond it is left at
infinity with no facility, which every reader of the answer already counts as uncovered.
Which network component holds a facility, the one thing a bounded search cannot see, is
labelled once per graph (:meth:`WalkGraph.components`).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


@dataclass
class WalkGraph:
    """An undirected walking graph: CSR lengths in metres and node coordinates."""

    csr: sparse.csr_matrix
    xy: np.ndarray
    tree: cKDTree = field(repr=False)
    _labels: np.ndarray | None = field(default=None, init=False, repr=False)
    _buckets: tuple[float, int] | None = field(default=None, init=False, repr=False)

    @property
    def n(self) -> int:
        return len(self.xy)

    def buckets(self) -> tuple[float, int]:
        """The search queue's bucket width (metres) and ring size, chosen once per graph.

        The width is the 10th percentile of the edge lengths: an edge shorter than it may
        queue a node twice in one bucket, so few do (on the demo's and Beijing's streets,
        cut at 25 m, under 1 % more nodes are looked at than a heap looks at), while a
        bucket holds many nodes. The ring holds every bucket an edge can reach ahead, at
        most 8,192 of them (a longer edge widens the buckets instead), so a search steps
        over at most that many empty buckets between two entries."""
        if self._buckets is None:
            w = self.csr.data[self.csr.data > 0]
            width, top = 1.0, 0.0
            if len(w):
                top = float(w.max())
                width = max(float(np.quantile(w[:: max(1, len(w) // 65536)], 0.1)), top / 2**12)
            ring = 2
            while ring < top / width + 2:
                ring *= 2
            self._buckets = (width, ring)
        return self._buckets

    def components(self) -> np.ndarray:
        """Each node's connected component, labelled once and shared by every search: a
        target its search did not reach is beyond the horizon if its component holds a
        facility of the type, and off to a straight line if not."""
        if self._labels is None:
            self._labels = connected_components(self.csr, directed=False)[1]
        return self._labels

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
    width, ring = graph.buckets()
    return multi_source(
        csr.indptr,
        csr.indices,
        csr.data,
        np.asarray(source_node, dtype=np.int64),
        np.asarray(source_snap, dtype=float),
        np.inf if horizon is None else float(horizon),
        width,
        ring,
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

    With ``horizon`` (the type's reach) the search stops there. A target within it gets
    exactly the unbounded answer (the nearest facility may differ only between facilities
    at the same distance); a target beyond it gets inf, facility -1 and no flag.
    """
    fac = np.asarray(facilities_xy, dtype=float).reshape(-1, 2)
    return _nearest(graph, targets, fac, *graph.snap(fac), max_snap_m, detour, horizon)


def _nearest(
    graph: WalkGraph,
    targets: Snapped,
    fac: np.ndarray,
    f_node: np.ndarray,
    f_snap: np.ndarray,
    max_snap_m: float,
    detour: float,
    horizon: float | None,
) -> Nearest:
    """:func:`nearest` with the facilities already snapped (``f_node``, ``f_snap``).

    Past the search, only the targets it left without an answer are looked at again:
    every pass over all of them is one more pass per type over a city's households."""
    from wangge.geo._dijkstra import at_targets

    m = len(targets.node)
    if len(fac) == 0:
        return Nearest(np.full(m, np.inf), np.zeros(m, dtype=bool), np.full(m, -1))
    limit = np.inf if horizon is None else float(horizon)
    f_on = f_snap <= max_snap_m
    on_idx = np.flatnonzero(f_on)
    if len(on_idx) and targets.on_network.any():
        dn, origin = node_distances(graph, f_node[on_idx], f_snap[on_idx], horizon)
        labels = graph.components()
        has = np.zeros(int(labels.max()) + 1, dtype=bool)
        has[labels[f_node[on_idx]]] = True
        # cand: off to a straight line (off the network, or a component with no facility)
        dist, which, cand = at_targets(
            dn, origin, targets.node, targets.snap_m, targets.on_network, on_idx, limit, labels, has
        )
    else:
        dist, which = np.full(m, np.inf), np.full(m, -1)
        cand = np.arange(m)
    straight = np.zeros(m, dtype=bool)
    # only a straight line shorter than the horizon can give a bounded answer
    far = np.inf if horizon is None or detour <= 0 else horizon / detour * (1 + 1e-9)
    if len(cand):
        d, i = cKDTree(fac).query(targets.xy[cand], workers=-1, distance_upper_bound=far)
        ok = d * detour <= limit
        cand, d, i = cand[ok], d[ok], i[ok]
        dist[cand], which[cand], straight[cand] = d * detour, i, True
    off_fac = np.flatnonzero(~f_on)
    if len(off_fac):
        d, i = cKDTree(fac[off_fac]).query(targets.xy, workers=-1, distance_upper_bound=far)
        better = np.flatnonzero((d * detour < dist) & (d * detour <= limit))
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
    horizon: float | Mapping[str, float] | None = None,
    workers: int = 1,
) -> dict[str, Nearest]:
    """:func:`nearest` for every facility type, ``workers`` types at a time on threads
    (the compiled search releases the GIL). ``horizon`` is one bound for every type or a
    bound per type (its reach; a type not named is searched unbounded). Every type's
    facilities are snapped in one query of the node tree."""
    bound = horizon if isinstance(horizon, Mapping) else dict.fromkeys(facilities, horizon)
    if graph.n:  # worked out once, before the threads share the graph
        graph.buckets()
        graph.components()
    xy = {k: np.asarray(v, dtype=float).reshape(-1, 2) for k, v in facilities.items()}
    cut = np.cumsum([0, *(len(v) for v in xy.values())])
    node, snap = graph.snap(np.concatenate([*xy.values(), np.zeros((0, 2))]))
    snapped = {k: (node[a:b], snap[a:b]) for k, a, b in zip(xy, cut[:-1], cut[1:], strict=True)}

    def one(key):
        f_node, f_snap = snapped[key]
        args = (max_snap_m, detour, bound.get(key))
        return key, _nearest(graph, targets, xy[key], f_node, f_snap, *args)

    if workers <= 1 or len(facilities) < 2:
        return dict(map(one, xy))
    with ThreadPoolExecutor(workers) as ex:
        return dict(ex.map(one, xy))
