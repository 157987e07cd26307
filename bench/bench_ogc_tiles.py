"""Benchmark: cutting a tile in CGCS2000Quad against WebMercatorQuad, on both stores.

A CGCS2000Quad tile (OGC API – Tiles, api/ogc_tiles.py) is cut where its grid puts it:
in degrees, with no projection, from a second index the GeoPackage store builds on first
use, and by the same PostGIS query with the geometry taken as it is instead of
ST_Transform'd. This measures what one tile costs the store (``Store.tile``: no HTTP, no
cache) in either grid at about the same scale, WebMercatorQuad level 16 and CGCS2000Quad
level 15 (a tile 611 m and 0.0055° wide), over every tile of the demo's extent, for the
layers served as collections' tiles, the two grids taking turns tile by tile so that other
load on the machine falls on both.

Reproduce (2 cores; PostgreSQL + PostGIS on 127.0.0.1:5432, trust auth):
    wangge demo --out /tmp/wangge-bench/demo --store /tmp/wangge-bench/demo.gpkg
    python bench/bench_ogc_tiles.py --gpkg /tmp/wangge-bench/demo.gpkg \\
        --postgis postgresql+psycopg://postgres@127.0.0.1:5432/wangge_ogc_tiles --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

from wangge.data.store import open_store
from wangge.data.tiles import TileRequest
from wangge.maps.tile_grids import CGCS2000_QUAD, WEB_MERCATOR_QUAD

LAYERS = ("grids", "microgrids", "units", "buildings")
LEVELS = {WEB_MERCATOR_QUAD.id: 16, CGCS2000_QUAD.id: 15}


def tiles(store, plan: str, version: int, layer: str, grid) -> list[TileRequest]:
    bbox = store.layer_infos(plan, version)[layer].bbox
    z = LEVELS[grid.id]
    c0, r0, c1, r1 = grid.tiles_over(z, bbox)
    return [
        TileRequest(layer, z, c, r, grid=grid) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)
    ]


def run(store, plan: str, rounds: int) -> dict[str, dict[str, list[float]]]:
    version = store.latest(plan)
    times: dict[str, dict[str, list[float]]] = {}
    for layer in LAYERS:
        asks = {
            g.id: tiles(store, plan, version, layer, g) for g in (WEB_MERCATOR_QUAD, CGCS2000_QUAD)
        }
        for req in (asks[WEB_MERCATOR_QUAD.id][0], asks[CGCS2000_QUAD.id][0]):
            store.tile(
                plan, version, req
            )  # the layer held, the index built, the statement prepared
        per = times.setdefault(layer, {g: [] for g in asks})
        for _ in range(rounds):
            n = max(len(v) for v in asks.values())
            for i in range(n):
                for gid, reqs in asks.items():
                    req = reqs[i % len(reqs)]
                    start = time.perf_counter()
                    store.tile(plan, version, req)
                    per[gid].append((time.perf_counter() - start) * 1000)
    return times


def report(name: str, times: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n{name}: ms per tile, min / median / max (tiles), CGCS2000Quad ÷ WebMercatorQuad")
    for layer, per in times.items():
        cells = []
        for gid, ms in per.items():
            cells.append(
                f"{gid} {min(ms):.2f} / {statistics.median(ms):.2f} / {max(ms):.2f} ({len(ms)})"
            )
        ratio = statistics.median(per[CGCS2000_QUAD.id]) / statistics.median(
            per[WEB_MERCATOR_QUAD.id]
        )
        print(f"  {layer}: {' | '.join(cells)} | ratio of medians {ratio:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gpkg", required=True, help="a GeoPackage store holding the demo plan")
    p.add_argument("--postgis", help="a database URL to copy the plan into and measure too")
    p.add_argument("--plan", default="demo")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    gpkg = open_store(args.gpkg)
    try:
        stores = [("GeoPackage", gpkg)]
        if args.postgis:
            pg = open_store(args.postgis)
            if pg.latest(args.plan) is None:
                v = gpkg.resolve(args.plan)
                frames = {i.name: gpkg.query(args.plan, v.version, i.name).frame
                          for i in gpkg.layers(args.plan, v.version)}  # fmt: skip
                pg.save(args.plan, frames, v.meta, author="bench")
            stores.append(("PostGIS", pg))
        for name, store in stores:
            report(name, run(store, args.plan, args.rounds))
    finally:
        for _, store in stores:
            store.close()


if __name__ == "__main__":
    main()
