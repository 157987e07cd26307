"""Benchmark: what the basemap (issue 24) costs where it is made and where it is served.

Reproduce (2 cores):
    python bench/bench_basemap.py                 # ~1 min: both cities, 5 rounds; the demo's tiles
    python bench/bench_basemap.py --rounds 3 --store out/wangge.gpkg

"made" times :func:`wangge.data.basemap.basemap_layers` on each city's ingested layers
(the Nanjing demo and ../shared/data/beijing-cau.osm), and gives the size of the basemap
as a web map inlines it (gzip, base64). "served" asks ``/basemap/{z}/{x}/{y}.mvt`` for
every tile over the plan of ``--store`` (``wangge demo`` makes one) at z13, z15 and z17,
in a fresh app per round: cold is each tile's first request (the round's very first also
builds the layers' in-memory index), warm the second.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
warnings.filterwarnings("ignore")


def made(rounds: int) -> None:
    from cities_osm import BEIJING_OSM, real_file

    from wangge.data.basemap import basemap_layers
    from wangge.ingest import ingest
    from wangge.maps.basemap_page import _packed

    for name, src in (("nanjing", ROOT / "data/demo/nanjing-xinjiekou.osm"), ("beijing", None)):
        result = ingest(src or real_file(BEIJING_OSM), progress=False)
        units = {k: v.to_crs(result.crs) for k, v in result.layers.items()}
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            layers = basemap_layers(units)
            times.append(time.perf_counter() - start)
        counts = {k.removeprefix("basemap_"): len(v) for k, v in layers.items()}
        print(
            f"made {name}: {counts}, s min/median/max {min(times):.3f} / "
            f"{statistics.median(times):.3f} / {max(times):.3f}, "
            f"inlined {len(_packed(layers)) / 1024:.0f} KB"
        )


def _xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ column and row of the tile at ``z`` holding a point."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def served(store: str, rounds: int) -> None:
    from fastapi.testclient import TestClient

    from wangge.api.app import create_app
    from wangge.api.settings import Settings

    for r in range(rounds):
        with TestClient(create_app(Settings(store=store, public_reads=True))) as client:
            west, south, east, north = client.get("/basemap/style.json").json()["sources"][
                "basemap"
            ]["bounds"]
            for z in (13, 15, 17):
                (x0, y0), (x1, y1) = _xy(west, north, z), _xy(east, south, z)
                tiles = [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
                cold, warm, size = [], [], 0
                for times in (cold, warm):
                    for t in tiles:
                        start = time.perf_counter()
                        answer = client.get("/basemap/{}/{}/{}.mvt".format(*t))
                        times.append(time.perf_counter() - start)
                        size += len(answer.content) if times is cold else 0
                print(
                    f"served round {r} z{z}: {len(tiles)} tiles, cold median "
                    f"{statistics.median(cold) * 1e3:.1f} ms (max {max(cold) * 1e3:.0f}), warm "
                    f"median {statistics.median(warm) * 1e3:.2f} ms, mean tile "
                    f"{size / len(tiles) / 1024:.1f} KB"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", default=str(ROOT / "out" / "wangge.gpkg"))
    args = parser.parse_args()
    made(args.rounds)
    if Path(args.store).exists():
        served(args.store, min(args.rounds, 3))
    else:
        print(f"no store at {args.store}: run `wangge demo` first for the tile figures")


if __name__ == "__main__":
    main()
