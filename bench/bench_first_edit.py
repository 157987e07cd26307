"""Benchmark: the first edit on a city of 10⁶ households, one street read against the whole.

Run:  python bench/bench_first_edit.py [--db postgresql+psycopg://…/wangge_bench]
                                       [--plan bench-city-w2] [--rounds 5]

The plan is the city ``bench/bench_city.py`` writes (64 streets, 1,000,371 households). Each
round starts two fresh processes in turn, each opening the store and then timing one dry-run
edit (a unit moved to a grid it touches, in its street) on a fresh ``Editor``: one as the
editor makes it, holding the street alone (wangge/street_state.py), one made to hold the
whole version as it did before. The time is the edit's (the state's load in it), after the
imports and the store's opening; the answers of the two are compared. Rounds alternate, so
a busy machine slows both alike: the ratio is the figure to quote.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from wangge.data.store import open_store
from wangge.editing import Editor
import wangge.editing as editing
db, plan, whole, moves = sys.argv[1], sys.argv[2], sys.argv[3] == "whole", json.loads(sys.argv[4])
store = open_store(db)
version = store.latest(plan)
if whole:  # the editor before it could hold one street
    editing.street_of_moves = lambda moves: None
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
result = Editor(store).edit(plan, version, [tuple(m) for m in moves], dry_run=True)
dt = time.perf_counter() - t
print(json.dumps({
    "seconds": dt,
    "load_ms": result.timings.get("load"),
    "peak_mb_added": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024,
    "violations": sorted(json.dumps(v, sort_keys=True) for v in result.violations),
    "grids": json.dumps(result.grids, sort_keys=True),
}))
"""


def a_move(db: str, plan: str) -> list[list[str]]:
    """A unit and a grid it touches in its own street, from the plan's middle street."""
    from wangge.data.store import open_store
    from wangge.geo import assignment as ge
    from wangge.street_state import load_street

    store = open_store(db)
    v = store.resolve(plan)
    light = store.unit_parents(plan, v.version)
    street = light["parent_code"].iat[len(light) // 2][:9]
    state = load_street(store, v, street)
    if state is None:
        raise SystemExit(f"street {street} of {plan} cannot be held alone")
    grid = ge.level_codes(state.micro, "grid")
    g = state.units.graph
    e = next(i for i in range(len(g.eu)) if grid[g.eu[i]] != grid[g.ev[i]])
    store.close()
    return [[str(state.units.codes[g.eu[e]]), str(grid[g.ev[e]])]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/wangge_bench")
    parser.add_argument("--plan", default="bench-city-w2")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    moves = a_move(args.db, args.plan)
    print(f"move: {moves}")
    runs: dict[str, list[dict]] = {"street": [], "whole": []}
    for r in range(args.rounds):
        for mode in ("street", "whole"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, args.db, args.plan, mode, json.dumps(moves)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {mode}: {runs[mode][-1]['seconds']:.3f} s", flush=True)
    same = all(
        a["violations"] == b["violations"] and a["grids"] == b["grids"]
        for a, b in zip(runs["street"], runs["whole"], strict=True)
    )
    print("\n| editor holds | first edit min / median / max s | peak memory added MB (median) |")
    print("|---|---:|---:|")
    for mode, rows in runs.items():
        s = sorted(r["seconds"] for r in rows)
        mb = statistics.median(r["peak_mb_added"] for r in rows)
        print(f"| {mode} | {s[0]:.2f} / {statistics.median(s):.2f} / {s[-1]:.2f} | {mb:.0f} |")
    ratios = [
        w["seconds"] / s["seconds"] for s, w in zip(runs["street"], runs["whole"], strict=True)
    ]
    print(f"\nwhole ÷ street, paired by round: {min(ratios):.1f}–{max(ratios):.1f}×")
    print(f"same answers: {same}")


if __name__ == "__main__":
    main()
