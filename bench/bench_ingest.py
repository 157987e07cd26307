"""Benchmark: ingesting the bundled demo, cold (a fresh `wangge ingest` process) and warm.

Run:  python bench/bench_ingest.py [--runs 5]

Cold runs time the whole command as a user meets it: Python start, imports, reading,
estimating, polygonizing and writing units.gpkg. Warm runs time the ``ingest`` function in
one process. For reference, the same run times osmnx reading the same file's buildings and
street graph (the tool a Python GIS user would otherwise reach for), so the figure can be
read as a ratio on this shared, noisy machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo" / "nanjing-xinjiekou.osm"


def _time(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    exe = shutil.which("wangge")
    if exe is None:
        sys.exit("wangge is not installed: pip install -e .")
    tmp = Path(tempfile.mkdtemp())

    def cold() -> None:
        subprocess.run(
            [exe, "ingest", str(DEMO), "--out", str(tmp / "cold")], check=True, capture_output=True
        )

    from wangge.ingest import ingest, write_units

    def warm() -> None:
        write_units(ingest(DEMO, progress=False), tmp / "warm")

    import osmnx as ox

    def osmnx_read() -> None:
        ox.features_from_xml(DEMO, tags={"building": True})
        ox.graph_from_xml(DEMO, simplify=True)

    rows = [
        ("wangge ingest, cold process (CLI, writes units.gpkg)", _time(cold, args.runs)),
        ("wangge ingest, warm (in process, writes units.gpkg)", _time(warm, args.runs)),
        ("osmnx: features_from_xml(buildings) + graph_from_xml", _time(osmnx_read, args.runs)),
    ]
    print(f"demo: {DEMO.name}, {args.runs} runs each, median (min–max) seconds")
    for name, t in rows:
        print(f"  {name:58s} {statistics.median(t):6.2f}  ({min(t):.2f}–{max(t):.2f})")
    ratio = statistics.median(rows[2][1]) / statistics.median(rows[0][1])
    print(f"  osmnx read alone ÷ wangge whole cold ingest: {ratio:.2f}×")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
