"""Benchmark: a whole synthetic city delineated street by street on Dask, 1 and 2 workers.

Run:  python bench/bench_city.py [--streets 64] [--households 1000000] [--seed 1]
                                 [--workers 1 2] [--db postgresql+psycopg://…/wangge_bench]

The city (data/synthetic.synthetic_city: a seeded lattice, streets given, no real place) is
written once to a units.gpkg, as ``wangge ingest --streets`` would leave it. Each run is what
``wangge city units.gpkg --store DB --workers N`` does, from a fresh run table: read the
file, cut it per street, delineate and validate every street on a LocalCluster of N
single-threaded worker processes (each writing its street to PostGIS), and assemble the
city plan's version. Runs alternate worker counts ``--rounds`` times; the table gives each
run's wall time and its parts, the peak memory of the busiest worker, and the share of
grids within 300–500 households (flagged grids, dedicated or indivisible, counted apart).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from wangge.city import run_city
from wangge.data.store import open_store
from wangge.data.synthetic import CRS, synthetic_city
from wangge.ingest import write_unit_layers


def ensure_db(url: str) -> None:
    """Create the benchmark database with PostGIS if it is missing."""
    base, name = url.rsplit("/", 1)
    admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if (
            conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            is None
        ):
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def write_city(streets: int, households: int, seed: int, folder: Path) -> tuple[Path, dict]:
    t = time.perf_counter()
    units = synthetic_city(streets, households, seed)
    layers = {k: v for k, v in units.items() if k != "study_area"} | {
        "study_area": units["study_area"]
    }
    summary = {
        "source": f"synthetic city (data/synthetic.synthetic_city, seed {seed}); no real place",
        "metric CRS": CRS,
        "attribution": "synthetic data",
    }
    path = write_unit_layers(layers, {}, summary, folder)
    facts = {
        "households": int(units["buildings"]["households"].sum()),
        "buildings": len(units["buildings"]),
        "blocks": len(units["blocks"]),
        "streets": len(units["given_streets"]),
        "generate_s": time.perf_counter() - t,
    }
    return path, facts


def grid_figures(store, plan_id: str, version: int) -> dict:
    grids = store.query(plan_id, version, "grids", limit=10**7).frame
    flag = grids["flag"].fillna("").astype(str) if "flag" in grids else None
    flagged = flag.str.len().gt(0).to_numpy() if flag is not None else np.zeros(len(grids), bool)
    hh = grids["households"].to_numpy(float)
    basic = ~flagged
    in_band = (hh[basic] >= 300) & (hh[basic] <= 500)
    return {
        "grids": len(grids),
        "flagged": int(flagged.sum()),
        "in_band_pct": 100.0 * in_band.mean() if basic.any() else float("nan"),
    }


def one_run(path: Path, db: str, workers: int, tag: str) -> dict:
    plan_id = f"bench-city-{tag}"
    store = open_store(db)
    store.runs.drop(plan_id)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        result = run_city(path, db, plan_id, workers=workers, run_dir=run_dir, progress=False)
    wall = time.perf_counter() - t
    if result.version is None:
        raise SystemExit(f"streets failed: {[(s.street, s.error) for s in result.failed][:3]}")
    streets = result.streets
    peak = max(s.figures["peak_rss_mb"] or 0 for s in streets)
    errors = sum(s.figures["errors"] or 0 for s in streets)
    return {
        "workers": workers,
        "wall_s": wall,
        **{f"{k}_s": v for k, v in result.timings.items()},
        "street_s_sum": sum(s.figures["seconds"] or 0 for s in streets),
        "peak_worker_mb": peak,
        "errors": errors,
        **grid_figures(store, plan_id, result.version.version),
        "plan": f"{plan_id} v{result.version.version}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streets", type=int, default=64)
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/wangge_bench")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "wangge-bench-city")
    args = ap.parse_args()
    ensure_db(args.db)
    path, facts = write_city(args.streets, args.households, args.seed, args.dir)
    print(
        f"city: {facts['streets']} streets, {facts['households']:,} households, "
        f"{facts['buildings']:,} buildings, {facts['blocks']:,} blocks "
        f"(generated and written in {facts['generate_s']:.1f} s) → {path}"
    )
    runs = []
    for r in range(args.rounds):
        for n in args.workers:
            row = one_run(path, args.db, n, f"w{n}")
            row["round"] = r + 1
            runs.append(row)
            print(
                f"round {r + 1}  workers {n}: {row['wall_s']:.1f} s "
                f"(cut {row['cut_s']:.1f}, streets {row['streets_s']:.1f}, "
                f"assemble {row['assemble_s']:.1f}; "
                f"street work {row['street_s_sum']:.0f} s), "
                f"peak worker {row['peak_worker_mb']:.0f} MB, "
                f"grids {row['grids']:,} ({row['in_band_pct']:.1f} % of unflagged in 300–500, "
                f"{row['flagged']} flagged), errors {row['errors']}, {row['plan']}",
                flush=True,
            )
    print()
    head = "workers | wall s (median) | runs | µs per household | peak worker MB | grids"
    print(f"| {head} | in 300–500 % | flagged | errors |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    med = {}
    for n in args.workers:
        rows = [r for r in runs if r["workers"] == n]
        walls = [r["wall_s"] for r in rows]
        med[n] = statistics.median(walls)
        last = rows[-1]
        print(
            f"| {n} | {med[n]:.1f} | {', '.join(f'{w:.1f}' for w in walls)} | "
            f"{1e6 * med[n] / facts['households']:.0f} | "
            f"{max(r['peak_worker_mb'] for r in rows):.0f} | "
            f"{last['grids']:,} | {last['in_band_pct']:.1f} | {last['flagged']} | "
            f"{last['errors']} |"
        )
    if len(med) >= 2:
        lo, hi = min(med), max(med)
        print(f"\nspeed-up {hi} workers vs {lo}: {med[lo] / med[hi]:.2f}×")


if __name__ == "__main__":
    main()
