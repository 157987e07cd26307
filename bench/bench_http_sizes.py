"""Benchmark: the bytes of representative answers with and without gzip, and GDAL's read.

Run:  python bench/bench_http_sizes.py [--plan out/demo/plan.gpkg] [--runs 5]

The demo plan (``wangge demo --out out/demo`` makes it when it is missing) is imported into
a fresh GeoPackage store, served by uvicorn as `wangge serve` would (public reads), and
asked over loopback for the grids as GeoJSON, a page of units, HTML pages, the collections,
the API description and a CSV lookup batch, each once as a client that accepts gzip and
once as one that does not (``Accept-Encoding: identity``). Sizes are the bytes on the
wire; times are the client's median over ``--runs``, on loopback, so they show the cost of
compressing and not the saving in transfer, which the last column estimates for a 10 Mbit/s
link (a field phone or a district intranet). GDAL's OAPIF driver (``ogr2ogr``, Debian's
gdal-bin) then copies the grids and the units with ``CPL_CURL_GZIP`` on (its default)
and off.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import numpy as np

from wangge.data.plan import read_plan
from wangge.data.store import open_store

LINK_BYTES_PER_S = 10e6 / 8
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


def _demo(plan: Path) -> Path:
    if not plan.exists():
        print(f"{plan} is missing: running wangge demo --out {plan.parent}", flush=True)
        store = plan.parent / "bench-demo.gpkg"
        subprocess.run(
            ["wangge", "demo", "--out", str(plan.parent), "--store", str(store)], check=True
        )
    return plan


def _serve(store: str, plan: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "WANGGE_STORE": store, "WANGGE_PLAN": plan}
    env["WANGGE_PUBLIC_READS"] = "true"
    cmd = [sys.executable, "-m", "uvicorn", "wangge.api.app:create_app", "--factory"]
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the server did not start")


def _csv(layers: dict, n: int) -> str:
    x0, y0, x1, y1 = layers["microgrids"].total_bounds
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    rows = (f"{i},{a:.6f},{b:.6f}\n" for i, (a, b) in enumerate(zip(lon, lat, strict=True)))
    return "id,lon,lat\n" + "".join(rows)


def _asks(layers: dict) -> list[tuple[str, dict]]:
    grids = len(layers["grids"])
    units = len(layers["units"])
    csv = _csv(layers, 2000)
    return [
        (f"{grids} grids, GeoJSON", {"url": "/collections/grids/items?limit=1000"}),
        (
            f"a page of {min(units, 1000)} units, GeoJSON",
            {"url": "/collections/units/items?limit=1000"},
        ),
        ("100 units (the default page)", {"url": "/collections/units/items"}),
        (f"{grids} grids, HTML page", {"url": "/collections/grids/items?limit=1000&f=html"}),
        ("landing page, HTML", {"url": "/?f=html"}),
        ("collections, JSON", {"url": "/collections"}),
        ("API description (OpenAPI 3.0)", {"url": "/api"}),
        (
            "2,000-point lookup, CSV",
            {
                "method": "POST",
                "url": "/coverage/points?format=csv",
                "content": csv,
                "headers": {"Content-Type": "text/csv"},
            },
        ),
    ]


def _fetch(http: httpx.Client, ask: dict, coding: dict, runs: int) -> tuple[int, float, str]:
    """Bytes on the wire, median seconds, the Content-Encoding."""
    ask = dict(ask)
    method = ask.pop("method", "GET")
    headers = {**ask.pop("headers", {}), **coding}
    times, size, encoding = [], 0, ""
    for _ in range(runs + 1):
        t = time.perf_counter()
        with http.stream(method, headers=headers, **ask) as r:
            r.raise_for_status()
            size = sum(len(chunk) for chunk in r.iter_raw())
            encoding = r.headers.get("content-encoding", "")
        times.append(time.perf_counter() - t)
    return size, statistics.median(times[1:]), encoding


def _gdal(url: str, layer: str, gzip_on: bool, runs: int, tmp: Path) -> float:
    ogr2ogr = shutil.which("ogr2ogr")
    env = {**os.environ, "CPL_CURL_GZIP": "YES" if gzip_on else "NO"}
    times = []
    for i in range(runs):
        out = tmp / f"{layer}-{gzip_on}-{i}.geojson"
        t = time.perf_counter()
        cmd = [ogr2ogr, "-f", "GeoJSON", str(out), f"OAPIF:{url}/", layer]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default="out/demo/plan.gpkg")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--port", type=int, default=8795)
    args = ap.parse_args()
    layers, meta = read_plan(_demo(Path(args.plan))).stored()
    with tempfile.TemporaryDirectory() as tmp:
        target = f"{tmp}/bench.gpkg"
        store = open_store(target)
        store.save("bench", layers, meta)
        store.close()
        proc = _serve(target, "bench", args.port)
        url = f"http://127.0.0.1:{args.port}"
        try:
            print(
                "| answer | identity bytes | gzip bytes | ratio | identity ms | gzip ms "
                "| saved at 10 Mbit/s, ms |"
            )
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            with httpx.Client(base_url=url, timeout=120) as http:
                for name, ask in _asks(layers):
                    plain, t_plain, _ = _fetch(http, ask, IDENTITY, args.runs)
                    packed, t_packed, coding = _fetch(http, ask, GZIP, args.runs)
                    ratio = plain / packed
                    saved = (plain - packed) / LINK_BYTES_PER_S * 1000
                    note = "" if coding == "gzip" else " (sent as is)"
                    print(
                        f"| {name}{note} | {plain:,} | {packed:,} | {ratio:.1f}× | "
                        f"{t_plain * 1000:.1f} | {t_packed * 1000:.1f} | {saved:,.0f} |"
                    )
            if shutil.which("ogr2ogr"):
                version = subprocess.run(
                    ["ogr2ogr", "--version"], capture_output=True, text=True
                ).stdout.strip()
                print(f"\n{version}, ogr2ogr OAPIF → GeoJSON, median of {args.runs}:")
                print("| layer | CPL_CURL_GZIP=NO s | CPL_CURL_GZIP=YES s |")
                print("| --- | ---: | ---: |")
                for layer in ("grids", "units"):
                    off = _gdal(url, layer, False, args.runs, Path(tmp))
                    on = _gdal(url, layer, True, args.runs, Path(tmp))
                    print(f"| {layer} | {off:.2f} | {on:.2f} |")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
