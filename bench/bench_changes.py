"""Benchmark: the change report of two versions of a city plan, read as a query against
read from both versions' states (issue 23, deliver 3: "the diff of two versions is a
query, not a comparison of two copies").

Run:  python bench/bench_city.py --workers 2 --rounds 1     # makes the plan bench-city-w2
      python bench/bench_changes.py [--store URL] [--plan bench-city-w2] [--runs 3]

For the latest version L of the plan, the pairs (L-1, L) and (1, L) are reported by
``wangge.changes.changes`` (the query) ``--runs`` times, each with a fresh editor (nothing
cached), then once the long way (``_by_states``: both versions loaded whole). Prints the
seconds, the report's line and whether the two ways agree.
"""

from __future__ import annotations

import argparse
import statistics
import time

from wangge.changes import _by_states, changes
from wangge.data.store import open_store
from wangge.editing import Editor

DEFAULT_STORE = "postgresql+psycopg://postgres@127.0.0.1:5432/wangge_bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=DEFAULT_STORE)
    ap.add_argument("--plan", default="bench-city-w2")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    store = open_store(args.store)
    latest = store.latest(args.plan)
    if latest is None or latest < 2:
        raise SystemExit(f"{args.plan}: needs two versions (run bench/bench_city_serving.py)")
    for a, b in ((latest - 1, latest), (1, latest)):
        took = []
        for _ in range(args.runs):
            t = time.perf_counter()
            report = changes(Editor(store), args.plan, a, b)
            took.append(time.perf_counter() - t)
        t = time.perf_counter()
        slow = _by_states(Editor(store), args.plan, a, b)
        states = time.perf_counter() - t
        agree = report.summary == slow.summary and report.codes["status"].tolist() == (
            slow.codes["status"].tolist()
        )
        print(
            f"v{a} → v{b}: query {statistics.median(took):.2f} s (min {min(took):.2f}, max"
            f" {max(took):.2f}, {args.runs} runs); both states {states:.2f} s"
            f" ({states / statistics.median(took):.1f}×); agree: {agree}\n  {report.line()}"
        )
    store.close()


if __name__ == "__main__":
    main()
