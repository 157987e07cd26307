"""Benchmark: a 10,000-point batch lookup (POST /coverage/points) on each store.

Run:  python bench/bench_coverage_points.py [--points 10000] [--runs 7]
          [--plan out/demo/plan.gpkg] [--database-url postgresql+psycopg://…]

The demo plan is imported into a fresh GeoPackage store and into PostGIS; the same
random points (seeded, over the plan's bounding box) go through the whole HTTP path
in process (request parsing, the store's lookup, the JSON answer). A geopandas
spatial join of the same points against the micro-grids, in memory, is the reference.
Target (issue 4): ≤ 1 s per batch on each store.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.plan import read_plan
from wangge.data.store import open_store

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wangge_test"


async def _batch(app, body: dict, runs: int) -> list[float]:
    times = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        for _ in range(runs + 1):  # the first run fills the store's caches: reported apart
            t = time.perf_counter()
            r = await http.post("/coverage/points", json=body, timeout=60)
            times.append(time.perf_counter() - t)
            r.raise_for_status()
    return times


def main() -> None:
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--plan", default="out/demo/plan.gpkg")
    ap.add_argument("--database-url", default=PG_URL)
    args = ap.parse_args()
    layers, meta = read_plan(Path(args.plan)).stored()
    micro = layers["microgrids"]
    x0, y0, x1, y1 = micro.total_bounds
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(x0, x1, args.points), rng.uniform(y0, y1, args.points)
    body = {
        "points": [
            {"id": i, "lon": a, "lat": b} for i, (a, b) in enumerate(zip(lon, lat, strict=True))
        ]
    }
    print(f"{args.points:,} points over {len(micro):,} micro-grids, {args.runs} runs each")
    print("store       first s   median s   min s   max s")
    with tempfile.TemporaryDirectory() as tmp:
        for name, target in (("GeoPackage", f"{tmp}/bench.gpkg"), ("PostGIS", args.database_url)):
            store = open_store(target)
            plan = f"bench{int(time.time())}"
            store.save(plan, layers, meta)
            app = create_app(Settings(plan=plan, max_batch=args.points, public_reads=True), store)
            times = asyncio.run(_batch(app, body, args.runs))
            rest = times[1:]
            print(
                f"{name:<10}  {times[0]:>7.3f}  {statistics.median(rest):>9.3f}  "
                f"{min(rest):>6.3f}  {max(rest):>6.3f}"
            )
            store.close()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        gpd.sjoin(pts, micro[["code", "geometry"]], predicate="intersects", how="left")
        times.append(time.perf_counter() - t)
    print(f"{'gpd.sjoin':<10}  {'':>7}  {statistics.median(times):>9.3f}  (in memory, reference)")


if __name__ == "__main__":
    main()
