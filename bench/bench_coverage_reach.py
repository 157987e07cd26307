"""Benchmark: coverage bounded by each type's reach, side by side with scipy (issue 25).

Run:  python bench/bench_coverage_reach.py [--nodes 1000000] [--households 1000000]
          [--workers 2] [--runs 5] [--nx-nodes 100000]

The city is bench/bench_access.py's (seeded, synthetic: 10⁶ nodes, 10⁶ household points,
10 types, 47,700 facilities), each type's reach from the bundled rules (geo/rules.toml).
The graph and the snapped households are built once, as the coverage job builds them once
for all its types, and are reported apart. Every run then times, interleaved so that the
machine's noise falls on both sides alike:

- **one type, the search alone** (every type in turn): wangge's compiled multi-source
  search (``geo/_dijkstra.multi_source``: distances and each node's nearest facility)
  against scipy.sparse.csgraph's ``dijkstra`` from a virtual source joined to the type's
  facilities by their snap distances (distances only; its graph is built before the clock
  starts), both unbounded and with ``limit`` = the reach;
- **one type, the whole answer**: wangge's :func:`wangge.geo.access.nearest` bounded by the
  reach, every household's distance, nearest facility and straight-line fallback;
- **10 types**: :func:`wangge.geo.access.nearest_all` bounded, on 1 and on ``--workers``
  threads, unbounded on ``--workers`` (the earlier figure), and scipy's 10 searches
  (it holds the GIL, so threads would not overlap them).

Every run checks that wangge and scipy give the same distance at every node within reach.
networkx, the usual peer, checks the bounded answer on a smaller city of ``--nx-nodes``:
within reach the same distance, beyond it uncovered.
"""

from __future__ import annotations

import argparse
import statistics
import time

import networkx as nx
import numpy as np
from bench_access import COUNTS
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from wangge.data.synthetic import synthetic_network
from wangge.geo.access import graph_from_arrays, nearest, nearest_all, node_distances, snap_targets
from wangge.geo.rules import load_rules

MAX_SNAP_M, DETOUR = 250.0, 1.3


def virtual_source(csr: sparse.csr_matrix, node: np.ndarray, snap: np.ndarray):
    """``csr`` with one more node joined to ``node`` by ``snap`` (the shortest where several
    facilities share a node): scipy's dijkstra takes no offset per source."""
    n = csr.shape[0]
    order = np.lexsort((snap, node))
    first = np.r_[True, node[order][1:] != node[order][:-1]]
    node, snap = node[order][first], snap[order][first]
    coo = csr.tocoo()
    row = np.r_[coo.row, np.full(len(node), n)]
    col = np.r_[coo.col, node]
    w = np.r_[coo.data, np.maximum(snap, 1e-300)]  # an explicit zero is no edge to scipy
    return sparse.csr_matrix((w, (row, col)), shape=(n + 1, n + 1))


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def one_run(g, targets, fac_xy, fac, aug, reach, workers) -> dict[str, float]:
    """One run: every single-type timing, then the 10-type ones. Returns seconds by cell."""
    out: dict[str, float] = {}
    for key in COUNTS:
        f_node, f_snap = fac[key]
        n = g.n
        out[f"{key}/wangge"], (dn, _) = timed(node_distances, g, f_node, f_snap, reach[key])
        out[f"{key}/scipy"], _ = timed(dijkstra, aug[key], indices=n)
        out[f"{key}/scipy_limit"], ds = timed(dijkstra, aug[key], indices=n, limit=reach[key])
        within = dn <= reach[key]
        assert np.array_equal(within, ds[:n] <= reach[key]), key
        assert np.allclose(ds[:n][within], dn[within], rtol=0, atol=1e-9), key
        out[f"{key}/wangge_unbounded"], _ = timed(node_distances, g, f_node, f_snap)
        out[f"{key}/answer"], _ = timed(
            nearest_all, g, targets, {key: fac_xy[key]}, MAX_SNAP_M, DETOUR, reach, workers=1
        )
    xy = fac_xy
    for w in sorted({1, workers}):
        out[f"10/wangge_w{w}"], _ = timed(
            nearest_all, g, targets, xy, MAX_SNAP_M, DETOUR, reach, workers=w
        )
    out[f"10/wangge_unbounded_w{workers}"], _ = timed(
        nearest_all, g, targets, xy, MAX_SNAP_M, DETOUR, workers=workers
    )
    out["10/scipy"] = sum(out[f"{k}/scipy"] for k in COUNTS)
    out["10/scipy_limit"] = sum(out[f"{k}/scipy_limit"] for k in COUNTS)
    return out


def networkx_check(nodes: int, reach: dict[str, float], seed: int = 1) -> dict:
    """One type on a smaller city: the bounded answer against networkx's unbounded one."""
    key = "clinic"
    city = synthetic_network(nodes, nodes, {key: max(10, nodes // 400)}, seed)
    g = graph_from_arrays(city["xy"], city["u"], city["v"], city["length"])
    targets = snap_targets(g, city["homes"], MAX_SNAP_M)
    fac = city[f"fac_{key}"]
    ours = nearest(g, targets, fac, MAX_SNAP_M, DETOUR, reach[key])
    coo = g.csr.tocoo()
    graph = nx.Graph()
    graph.add_weighted_edges_from(
        zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )
    for node, snap in zip(*g.snap(fac), strict=True):
        w = graph.get_edge_data("src", int(node), {"weight": np.inf})["weight"]
        graph.add_edge("src", int(node), weight=min(w, float(snap)))
    dist = nx.single_source_dijkstra_path_length(graph, "src")
    ref = np.array([dist.get(n, np.inf) for n in targets.node.tolist()]) + targets.snap_m
    net = np.isfinite(ref) & targets.on_network
    within = net & (ref <= reach[key])
    return {
        "nodes": nodes,
        "within": int(within.sum()),
        "max_abs_diff_m": float(np.abs(ref[within] - ours.distance[within]).max()),
        "beyond_agree": bool((~(ours.distance[net & ~within] <= reach[key])).all()),
        "straight_within": int(ours.straight[within].sum()),
    }


def summary(rows: list[dict[str, float]], cell: str) -> tuple[float, float, float]:
    values = [r[cell] for r in rows]
    return statistics.median(values), min(values), max(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--nx-nodes", type=int, default=100_000)
    args = ap.parse_args()
    rules = load_rules()
    reach = {k: float(rules.facilities[k].reach_m) for k in COUNTS}
    city = synthetic_network(args.nodes, args.households, COUNTS, 0)
    t_graph, g = timed(graph_from_arrays, city["xy"], city["u"], city["v"], city["length"])
    t_snap, targets = timed(snap_targets, g, city["homes"], MAX_SNAP_M)
    t_comp, _ = timed(g.components)
    fac_xy = {k: city[f"fac_{k}"] for k in COUNTS}
    fac, aug = {}, {}
    for key in COUNTS:
        node, snap = g.snap(fac_xy[key])
        on = snap <= MAX_SNAP_M
        fac[key] = (node[on], snap[on])
        aug[key] = virtual_source(g.csr, node[on], snap[on])
    node_distances(g, fac["aed"][0][:1], fac["aed"][1][:1], 1.0)  # compile
    print(
        f"synthetic city: {g.n:,} nodes, {len(targets.node):,} household points, 10 types, "
        f"{sum(COUNTS.values()):,} facilities; once: graph {t_graph:.2f} s, snap "
        f"{t_snap:.2f} s, components {t_comp:.3f} s; {args.runs} runs"
    )
    rows = [one_run(g, targets, fac_xy, fac, aug, reach, args.workers) for _ in range(args.runs)]
    print("\none type, the search alone: median s [min–max]; scipy / wangge")
    print(
        f"{'type':<18}{'reach':>6}  {'wangge bounded':>20}  {'scipy unbounded':>20}  "
        f"{'scipy bounded':>20}  {'vs unb.':>7}  {'vs bnd.':>7}  {'wangge answer':>20}"
    )
    for key in COUNTS:
        w, s, sl, a = (
            summary(rows, f"{key}/{c}") for c in ("wangge", "scipy", "scipy_limit", "answer")
        )
        print(
            f"{key:<18}{reach[key]:>6.0f}  {fmt(w)}  {fmt(s)}  {fmt(sl)}  "
            f"{s[0] / w[0]:>6.1f}×  {sl[0] / w[0]:>6.1f}×  {fmt(a)}"
        )
    print("\n10 types, every household's answer: median s [min–max]")
    for cell, label in (
        ("10/wangge_w1", "wangge bounded, 1 thread"),
        (f"10/wangge_w{args.workers}", f"wangge bounded, {args.workers} threads"),
        (f"10/wangge_unbounded_w{args.workers}", f"wangge unbounded, {args.workers} threads"),
        ("10/scipy", "scipy unbounded, 10 searches alone"),
        ("10/scipy_limit", "scipy bounded, 10 searches alone"),
    ):
        print(f"{label:<40}{fmt(summary(rows, cell))}")
    best = summary(rows, f"10/wangge_w{args.workers}")[0]
    for cell in ("10/scipy", "10/scipy_limit"):
        print(f"{cell} / wangge {args.workers} threads: {summary(rows, cell)[0] / best:.1f}×")
    check = networkx_check(args.nx_nodes, reach)
    print(
        f"\nnetworkx on {check['nodes']:,} nodes (clinic, {reach['clinic']:.0f} m): "
        f"{check['within']:,} households within reach, max difference "
        f"{check['max_abs_diff_m']:.2e} m; beyond reach all uncovered: "
        f"{check['beyond_agree']}; straight lines within reach {check['straight_within']}"
    )


def fmt(cell: tuple[float, float, float]) -> str:
    med, lo, hi = cell
    return f"{med:>6.3f} [{lo:.3f}–{hi:.3f}]"


if __name__ == "__main__":
    main()
