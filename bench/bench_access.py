"""Benchmark: nearest facility of 10 types for 10⁶ households on a 10⁶-node network.

Run:  python bench/bench_access.py [--nodes 1000000] [--households 1000000] [--workers 2]
          [--nx-nodes 100000]

The city is synthetic and seeded (data/synthetic.synthetic_network). Timed from arrays
in memory: building the graph, snapping every household with a KD-tree, and one
multi-source Dijkstra per type (wangge's own compiled search, geo/_dijkstra.py, from the
type's facilities at their snap distances), then the per-household distances; scipy's
csgraph, side by side, is in bench/bench_coverage_reach.py.
Peak memory is the largest resident set of this process and of its forked workers.
networkx, the usual peer, is timed on a smaller network of ``--nx-nodes`` for one type,
side by side with the same code, and its answers are checked against ours.
Target (issue 5): ≤ 4 s and ≤ 2 GB for 10⁶ households, 10 types, 10⁶ nodes.
"""

from __future__ import annotations

import argparse
import resource
import time

import networkx as nx
import numpy as np

from wangge.data.synthetic import synthetic_network
from wangge.geo.access import graph_from_arrays, nearest, nearest_all, snap_targets

#: Facilities per type on the 10⁶-node city (1,000 × 80 m = 80 km a side, 6,400 km²).
COUNTS = {
    "emergency_shelter": 6000,
    "fixed_shelter": 400,
    "kindergarten": 8000,
    "primary_school": 4000,
    "middle_school": 1500,
    "community_centre": 2000,
    "clinic": 2500,
    "elderly_care": 3000,
    "fire_station": 300,
    "aed": 20000,
}


def peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def run(nodes: int, households: int, workers: int, seed: int = 0) -> dict:
    city = synthetic_network(nodes, households, COUNTS, seed)
    base_mb, _ = peak_mb()
    t0 = time.perf_counter()
    g = graph_from_arrays(city["xy"], city["u"], city["v"], city["length"])
    t1 = time.perf_counter()
    targets = snap_targets(g, city["homes"], max_snap_m=250.0)
    t2 = time.perf_counter()
    facilities = {k: city[f"fac_{k}"] for k in COUNTS}
    found = nearest_all(g, targets, facilities, 250.0, 1.3, workers=workers)
    t3 = time.perf_counter()
    own, kids = peak_mb()
    finite = np.mean([np.isfinite(r.distance).mean() for r in found.values()])
    return {
        "graph_s": t1 - t0,
        "snap_s": t2 - t1,
        "dijkstra_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_mb": own,
        "peak_worker_mb": kids,
        "input_mb": base_mb,
        "finite_share": finite,
        "median_aed_m": float(np.median(found["aed"].distance)),
    }


def networkx_side_by_side(nodes: int, households: int, seed: int = 1) -> dict:
    """One type on a smaller city: ours and networkx's multi-source Dijkstra."""
    city = synthetic_network(nodes, households, {"clinic": max(10, nodes // 400)}, seed)
    g = graph_from_arrays(city["xy"], city["u"], city["v"], city["length"])
    targets = snap_targets(g, city["homes"], 250.0)
    fac = city["fac_clinic"]
    t = time.perf_counter()
    ours = nearest(g, targets, fac, 250.0, 1.3)
    ours_s = time.perf_counter() - t
    coo = g.csr.tocoo()
    graph = nx.Graph()
    graph.add_weighted_edges_from(
        zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )
    f_node, f_snap = g.snap(fac)
    t = time.perf_counter()
    # networkx has no offsets per source: a virtual source joined by the snap distances
    for node, snap in zip(f_node.tolist(), f_snap.tolist(), strict=True):
        w = graph.get_edge_data("src", node, {"weight": np.inf})["weight"]
        graph.add_edge("src", node, weight=min(w, snap))
    dist = nx.single_source_dijkstra_path_length(graph, "src")
    ref = np.array([dist.get(n, np.inf) for n in targets.node.tolist()]) + targets.snap_m
    nx_s = time.perf_counter() - t
    ok = np.isfinite(ref) & ~ours.straight
    return {
        "nodes": nodes,
        "ours_s": ours_s,
        "networkx_s": nx_s,
        "ratio": nx_s / ours_s,
        "max_abs_diff_m": float(np.abs(ref[ok] - ours.distance[ok]).max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nx-nodes", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(
        f"synthetic city: {args.nodes:,} nodes, {args.households:,} household points, "
        f"10 types, {sum(COUNTS.values()):,} facilities"
    )
    for workers in sorted({1, args.workers}):
        rows = [run(args.nodes, args.households, workers) for _ in range(args.runs)]
        best = min(rows, key=lambda r: r["total_s"])
        med = sorted(r["total_s"] for r in rows)[len(rows) // 2]
        print(
            f"workers={workers}: total median {med:.2f} s, best {best['total_s']:.2f} s "
            f"(graph {best['graph_s']:.2f}, snap {best['snap_s']:.2f}, "
            f"10 Dijkstra {best['dijkstra_s']:.2f}); peak RSS {best['peak_mb']:.0f} MB "
            f"(inputs {best['input_mb']:.0f} MB), workers {best['peak_worker_mb']:.0f} MB each; "
            f"reached {best['finite_share']:.1%}; median AED distance {best['median_aed_m']:.0f} m"
        )
    side = networkx_side_by_side(args.nx_nodes, args.nx_nodes)
    print(
        f"one type on {side['nodes']:,} nodes: wangge {side['ours_s']:.3f} s, networkx "
        f"{side['networkx_s']:.2f} s ({side['ratio']:.0f}× slower); "
        f"max difference {side['max_abs_diff_m']:.2e} m"
    )


if __name__ == "__main__":
    main()
