"""One planner edit's round trip over HTTP: move a unit, revalidate, save a version.

Serves the demo plan from each store with `wangge serve` (a real uvicorn process), then
moves one boundary unit to its neighbouring grid and back, ``--edits`` times, through
``POST /plans/{id}/edits``; and the same moves with ``dry_run`` (move and revalidation
only, nothing saved). Reports p50 and p95 of the whole round trip and of each step the
server times (apply, check = the revalidation, derive = re-dissolving the touched parts,
save = writing the version).

Reproduce (PostGIS on 127.0.0.1:5432 for the second store):

    python bench/bench_edit.py --edits 60
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/wangge_bench_edit"
out = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(work: Path) -> Path:
    """The demo plan, delineated and overlaid (`wangge demo`), as plan.gpkg."""
    subprocess.run(["wangge", "demo"], cwd=work, check=True, capture_output=True)
    return work / "out" / "demo" / "plan.gpkg"


def fresh_pg() -> None:
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS wangge_bench_edit")
        conn.execute("CREATE DATABASE wangge_bench_edit")


def serve(store: str, plan: Path) -> tuple[subprocess.Popen, str, str]:
    subprocess.run(
        ["wangge", "import", str(plan), "--store", store, "--plan-id", "demo"],
        check=True,
        capture_output=True,
    )
    # every edit goes with an API key, as a planner's does
    made = subprocess.run(
        ["wangge", "users", "add", f"bench-{os.getpid()}", "--role", "admin", "--store", store],
        check=True,
        capture_output=True,
        text=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        ["wangge", "serve", "--store", store, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base, key
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server on {store} did not start")


def boundary_move(http: httpx.Client) -> tuple[str, str, str]:
    """A unit with households on a grid edge, its grid and a neighbouring grid."""
    units = http.get("/collections/units/items", params={"plan": "demo", "limit": 10000})
    edges = http.get("/collections/unit_edges/items", params={"plan": "demo", "limit": 10000})
    by_pos = {int(f["properties"]["code"]): f["properties"] for f in units.json()["features"]}
    for e in edges.json()["features"]:
        a, b = by_pos[e["properties"]["a"]], by_pos[e["properties"]["b"]]
        if a["grid_code"] != b["grid_code"] and a["households"] > 0:
            return a["code"], a["grid_code"], b["grid_code"]
    raise SystemExit("no boundary unit")


def run(base: str, key: str, edits: int, dry_run: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"round trip": []}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
        unit, src, dst = boundary_move(http)
        version = http.get("/plans/demo/state").json()["version"]
        label = "dry run" if dry_run else "saved"
        for i in track(range(edits), description=f"{label} edits", console=out):
            body = {
                "base_version": version,
                "moves": [{"unit": unit, "to": dst if i % 2 == 0 else src}],
                "dry_run": dry_run,
            }
            t = time.perf_counter()
            r = http.post("/plans/demo/edits", json=body)
            times["round trip"].append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            answer = r.json()
            if not dry_run:
                version = answer["version"]["version"]
            for step, ms in answer["timings"].items():
                times.setdefault(step, []).append(ms)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=60)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-postgis", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with out.status("wangge demo (the plan to edit)"):
            plan = prepare(work)
        stores = {"GeoPackage": str(work / "bench.gpkg")}
        if not args.no_postgis:
            fresh_pg()
            stores["PostGIS"] = PG
        for name, store in stores.items():
            proc, base, key = serve(store, plan)
            try:
                for dry in (True, False):
                    times = run(base, key, args.edits, dry)
                    for step, values in times.items():
                        v = np.asarray(values[2:])  # the first two load the plan state
                        rows.append(
                            {
                                "store": name,
                                "mode": "dry run" if dry else "saved",
                                "step": step,
                                "p50_ms": float(np.percentile(v, 50)),
                                "p95_ms": float(np.percentile(v, 95)),
                                "n": len(v),
                            }
                        )
            finally:
                proc.terminate()
                proc.wait()
    table = Table(title=f"edit round trip, {args.edits} edits per row (ms)")
    for col in ("store", "mode", "step", "p50", "p95", "n"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["store"],
            r["mode"],
            r["step"],
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            str(r["n"]),
        )
    out.print(table)
    print("| store | mode | step | p50 ms | p95 ms |")
    print("|---|---|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['store']} | {r['mode']} | {r['step']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
