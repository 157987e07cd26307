"""Benchmark: coverage bounded by each type's reach, side by side with scipy (issue 25).

Run:  python bench/bench_coverage_reach.py [--nodes 1000000] [--households 1000000]
          [--workers 2] [--runs 5] [--nx-nodes 100000]

The city is bench/bench_access.py's (seeded, synthetic: 10⁶ nodes, 10⁶ household points,
10 types, 47,700 facilities), each type's reach from the bundled rules (geo/rules.toml).
The graph and the snapped households are built once, as the coverage job builds them once
for all its types, and are reported apart, as is the first call of the compiled search
(numba's cached machine code loaded from disk). Every run then times, interleaved so that
the machine's noise falls on both sides alike (which side goes first alternates by run),
each cell as wall time and as the CPU time of the process (less open to other people's
load on a shared machine):

- **one type, the search alone** (every type in turn), bounded by the reach:
  wangge's compiled search (``geo/_dijkstra.multi_source``: distances and each node's
  nearest facility) against scipy.sparse.csgraph's ``dijkstra`` asked the same two ways:
  from a virtual source joined to the type's facilities by their snap distances
  (distances only, ``limit`` = the reach), and ``indices=<facility nodes>, min_only=True,
  return_predecessors=True, limit=<reach>`` (distances and each node's nearest source,
  every source at 0 m, against wangge's search with 0 m offsets). scipy's graphs are built
  before the clock starts;
- **one type unbounded**: both searches with no limit (the issue's first comparison);
- **one type, the whole answer**: :func:`wangge.geo.access.nearest_all` on that type
  alone, bounded: every household's distance, nearest facility and straight-line fallback;
- **10 types**: :func:`wangge.geo.access.nearest_all` bounded, on 1 and on ``--workers``
  threads, unbounded on ``--workers``, and scipy's 10 searches (it holds the GIL, so
  threads would not overlap them).

Every run checks that wangge and scipy give the same distance at every node (to the bit),
and the same nearest source wherever no other source is as near. networkx, the usual
peer, checks the bounded answer on a smaller city of ``--nx-nodes``: within reach the same
distance, beyond it uncovered.
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
    """(wall seconds, CPU seconds of the process, fn's result)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, time.process_time() - c, out


def one_run(g, targets, fac_xy, fac, aug, reach, workers, first) -> dict[str, tuple]:
    """One run: every single-type timing, then the 10-type ones; ``first`` says whether
    wangge or scipy goes first in each pair. Returns (wall, CPU) seconds by cell."""
    out: dict[str, tuple] = {}

    def cell(name, fn, *args, **kwargs):
        wall, cpu, res = timed(fn, *args, **kwargs)
        out[name] = (wall, cpu)
        return res

    n = g.n
    for key in COUNTS:
        f_node, f_snap = fac[key]
        nodes = np.unique(f_node)
        zero = np.zeros(len(nodes))
        lim = reach[key]
        # (cell, function, args, keyword args): wangge's side, then scipy's
        pairs = [
            (
                ("wangge", node_distances, (g, f_node, f_snap, lim), {}),
                ("scipy", dijkstra, (aug[key],), {"indices": n, "limit": lim}),
            ),
            (
                ("wangge0", node_distances, (g, nodes, zero, lim), {}),
                (
                    "scipy0",
                    dijkstra,
                    (g.csr,),
                    {"indices": nodes, "min_only": True, "return_predecessors": True, "limit": lim},
                ),
            ),
            (
                ("wangge_unbounded", node_distances, (g, f_node, f_snap), {}),
                ("scipy_unbounded", dijkstra, (aug[key],), {"indices": n}),
            ),
        ]
        got = []
        for ours, theirs in pairs:
            sides = (ours, theirs) if first == "wangge" else (theirs, ours)
            res = {name: cell(f"{key}/{name}", fn, *a, **kw) for name, fn, a, kw in sides}
            got.append((res[ours[0]], res[theirs[0]]))
        (dn, _), ds = got[0]
        assert np.array_equal(dn, ds[:n]), key
        (d0, o0), (s0, _, src) = got[1]
        assert np.array_equal(d0, s0), key
        named = nodes[np.maximum(o0, 0)]
        differ = np.flatnonzero(np.isfinite(d0) & (named != src))
        # a node may name either of two sources only where both are equally near
        for v in differ[:50]:
            alone = dijkstra(g.csr, indices=[named[v], src[v]], limit=lim)[:, v]
            assert alone[0] == alone[1] == d0[v], key
        (du, _), su = got[2]
        assert np.array_equal(du, su[:n]), key
        cell(
            f"{key}/answer",
            nearest_all,
            g,
            targets,
            {key: fac_xy[key]},
            MAX_SNAP_M,
            DETOUR,
            reach,
            workers=1,
        )
    xy = fac_xy
    for w in sorted({1, workers}):
        cell(f"10/wangge_w{w}", nearest_all, g, targets, xy, MAX_SNAP_M, DETOUR, reach, workers=w)
    cell(
        f"10/wangge_unbounded_w{workers}",
        nearest_all,
        g,
        targets,
        xy,
        MAX_SNAP_M,
        DETOUR,
        workers=workers,
    )
    for c in ("scipy", "scipy0", "scipy_unbounded"):
        out[f"10/{c}"] = tuple(sum(out[f"{k}/{c}"][i] for k in COUNTS) for i in (0, 1))
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


def summary(rows: list[dict], cell: str, part: int = 0) -> tuple[float, float, float]:
    """Median, min and max over the runs of a cell's wall (``part`` 0) or CPU (1) time."""
    values = [r[cell][part] for r in rows]
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
    t_graph, _, g = timed(graph_from_arrays, city["xy"], city["u"], city["v"], city["length"])
    t_snap, _, targets = timed(snap_targets, g, city["homes"], MAX_SNAP_M)
    t_comp, _, _ = timed(g.components)
    t_buck, _, (width, ring) = timed(g.buckets)
    fac_xy = {k: city[f"fac_{k}"] for k in COUNTS}
    fac, aug = {}, {}
    for key in COUNTS:
        node, snap = g.snap(fac_xy[key])
        on = snap <= MAX_SNAP_M
        fac[key] = (node[on], snap[on])
        aug[key] = virtual_source(g.csr, node[on], snap[on])
    t_jit, _, _ = timed(node_distances, g, fac["aed"][0][:1], fac["aed"][1][:1], 1.0)
    print(
        f"synthetic city: {g.n:,} nodes, {len(targets.node):,} household points, 10 types, "
        f"{sum(COUNTS.values()):,} facilities; once: graph {t_graph:.2f} s, snap "
        f"{t_snap:.2f} s, components {t_comp:.3f} s, buckets {t_buck:.3f} s ({width:.1f} m, "
        f"ring {ring}), first search (compiled code loaded) {t_jit:.3f} s; {args.runs} runs"
    )
    rows = [
        one_run(g, targets, fac_xy, fac, aug, reach, args.workers, ("wangge", "scipy")[r % 2])
        for r in range(args.runs)
    ]
    for part, what in ((0, "wall"), (1, "CPU")):
        print(f"\none type, the search alone, {what} time: median s [min–max]; scipy / wangge")
        print(
            f"{'type':<18}{'reach':>6}  {'wangge':>20}  {'scipy virtual src':>20}  "
            f"{'ratio':>6}  {'wangge 0 m':>20}  {'scipy min_only':>20}  {'ratio':>6}  "
            f"{'wangge unbounded':>20}  {'scipy unbounded':>20}  {'ratio':>6}  "
            f"{'wangge answer':>20}"
        )
        for key in COUNTS:
            c = {
                x: summary(rows, f"{key}/{x}", part)
                for x in (
                    "wangge",
                    "scipy",
                    "wangge0",
                    "scipy0",
                    "wangge_unbounded",
                    "scipy_unbounded",
                    "answer",
                )
            }
            print(
                f"{key:<18}{reach[key]:>6.0f}  {fmt(c['wangge'])}  {fmt(c['scipy'])}  "
                f"{c['scipy'][0] / c['wangge'][0]:>5.1f}×  {fmt(c['wangge0'])}  "
                f"{fmt(c['scipy0'])}  {c['scipy0'][0] / c['wangge0'][0]:>5.1f}×  "
                f"{fmt(c['wangge_unbounded'])}  {fmt(c['scipy_unbounded'])}  "
                f"{c['scipy_unbounded'][0] / c['wangge_unbounded'][0]:>5.1f}×  "
                f"{fmt(c['answer'])}"
            )
        print(f"\n10 types, every household's answer, {what} time: median s [min–max]")
        for cell, label in (
            ("10/wangge_w1", "wangge bounded, 1 thread"),
            (f"10/wangge_w{args.workers}", f"wangge bounded, {args.workers} threads"),
            (f"10/wangge_unbounded_w{args.workers}", f"wangge unbounded, {args.workers} threads"),
            ("10/scipy", "scipy bounded (virtual source), 10 searches alone"),
            ("10/scipy0", "scipy bounded (min_only), 10 searches alone"),
            ("10/scipy_unbounded", "scipy unbounded, 10 searches alone"),
        ):
            print(f"{label:<52}{fmt(summary(rows, cell, part))}")
        best = summary(rows, f"10/wangge_w{args.workers}", part)[0]
        for cell in ("10/scipy", "10/scipy0"):
            print(
                f"{cell} / wangge {args.workers} threads: "
                f"{summary(rows, cell, part)[0] / best:.1f}×"
            )
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
