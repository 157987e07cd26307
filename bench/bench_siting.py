"""Benchmark: where to build next, 20,000 demand points × 1,000 candidate sites.

Run:  python bench/bench_siting.py [--demand 20000] [--candidates 1000] [--k 10 25 50]
          [--long 60]

A seeded synthetic city (data/synthetic.synthetic_network, 10,000 nodes, 80 m blocks, 64 km²);
demand points are household points with 1–60 households; a candidate covers a point
within 500 m of walking (geo/siting.coverage_matrix). For each k, wangge's greedy plus
swap runs with a 1 s limit; HiGHS (scipy.optimize.milp) then solves the same MILP with
the same time limit, and again with ``--long`` seconds for the optimum or a bound, from
which the gap of each answer is reported.
Target (issue 5): ≤ 1 s, with coverage at least HiGHS's at the same time limit.
"""

from __future__ import annotations

import argparse
import time

from wangge.data.synthetic import synthetic_network
from wangge.geo.access import graph_from_arrays, snap_targets
from wangge.geo.siting import coverage_matrix, exact_highs, greedy_swap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demand", type=int, default=20_000)
    ap.add_argument("--candidates", type=int, default=1_000)
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--reach", type=float, default=500.0)
    ap.add_argument("--k", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--long", type=float, default=60.0)
    args = ap.parse_args()
    city = synthetic_network(args.nodes, args.demand, {"cand": args.candidates}, seed=5)
    g = graph_from_arrays(city["xy"], city["u"], city["v"], city["length"])
    demand = snap_targets(g, city["homes"], 250.0)
    cands = snap_targets(g, city["fac_cand"], 250.0)
    t = time.perf_counter()
    a = coverage_matrix(g, demand, cands, args.reach)
    build = time.perf_counter() - t
    w = city["households"]
    print(
        f"{args.demand:,} demand points ({int(w.sum()):,} households) × {args.candidates:,} "
        f"candidates, reach {args.reach:.0f} m: coverage matrix {a.nnz:,} pairs in {build:.2f} s"
    )
    print("| k | wangge s | wangge covered | HiGHS same limit | HiGHS long | bound | gap wangge |")
    print("|---|---|---|---|---|---|---|")
    for k in args.k:
        ours = greedy_swap(a, w, k, time_limit=1.0)
        limit = max(1.0, ours.seconds)
        same, _, same_status, _ = exact_highs(a, w, k, time_limit=limit)
        long_best, bound, long_status, _ = exact_highs(a, w, k, time_limit=args.long)
        gap = (bound - ours.covered) / bound if bound else float("nan")
        same_text = "no solution" if same is None else f"{same:,.0f}"
        long_text = "no solution" if long_best is None else f"{long_best:,.0f} ({long_status})"
        print(
            f"| {k} | {ours.seconds:.3f} | {ours.covered:,.0f} ({ours.swaps} swaps) | "
            f"{same_text} ({same_status}, {limit:.1f} s) | {long_text} | "
            f"{bound:,.0f} | {gap:.2%} |"
        )


if __name__ == "__main__":
    main()
