"""Benchmark: 100 concurrent clients on a mixed read workload against a real server (issue 13).

Reproduce (2 cores; PostgreSQL 15 + PostGIS 3.3 on 127.0.0.1:5432, trust auth, for the
PostGIS rows; without it they are skipped with a note):
    bash scripts/ensure_services.sh postgis
    python bench/bench_load.py                         # ~4 min: 2 stores × 1 and 2 workers
    python bench/bench_load.py --duration 10 --warmup 2 --stores gpkg   # a quick look

The demo plan is built once into a temporary directory (``wangge demo --out DIR --store
DIR/wangge.gpkg``, ~12 s) and imported into the PostGIS database ``--db`` (created, with
the postgis extension, when missing; ``wangge import``) unless that database already
holds the plan. A viewer account (``load-viewer``, scope 320104) is made in each store
before its server starts, and every request carries its key as ``Authorization: Bearer``
(the server runs without ``WANGGE_PUBLIC_READS``, so the reads pay for the key check
wherever the API enforces it; the report says whether it did).

For each store (GeoPackage, PostGIS) and each uvicorn worker count (``--workers``, default 1
and 2, started in turn, never two servers at once, through bench_tiles' launcher that
gives the listener TCP_NODELAY, uvicorn#3149), ``--clients`` coroutines (default 100) in one
asyncio process each hold one keep-alive httpx connection and issue requests back to back
for ``--warmup`` seconds (not counted; the tile cache fills, connections and statement
caches are made) and then for ``--duration`` seconds. Each request is drawn from a seeded
random mix (``--mix``, default 50 % tiles, 30 % points, 20 % items):

- tile: ``GET /tiles/{layer}/{z}/{x}/{y}.mvt`` of buildings, grids or micro-grids, a zoom
  drawn from z12–z16, a tile drawn from those over the plan's extent at that zoom;
- point: ``GET /coverage/point?lon=&lat=``, a point drawn from 2,000 seeded points inside
  the plan's micro-grids (every one answers 200);
- items: ``GET /collections/{layer}/items?bbox=&limit=`` of grids, micro-grids or
  buildings, a box of 100–600 m on a side inside the extent and a limit of 10, 50 or 100.

An error is a status other than 2xx or 304, or an exception (timeout ``--timeout`` s,
connection refused or reset). Latency is from sending the request to reading the whole
body, in the client, so it includes the client's own queueing when the client is short of
CPU: the client's, the server's and the whole machine's CPU use over the measured
seconds are reported beside the figures for that reason (the client shares the 2 cores).

``--public-reads`` serves with ``WANGGE_PUBLIC_READS=true`` and sends no key, to price the
key check; ``--mix 1 0 0`` (and so on) measures one kind alone.

The table is printed as markdown (for docs/BENCHMARKS.md) and written beside ``--out``
(``.md``); the raw figures are in ``--out`` (JSON). ``--report JSON`` prints a saved run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import psycopg
import shapely
from bench_tiles import UVICORN_NODELAY, Server, running, tiles_over
from psycopg import sql

from wangge.data.accounts import make_account, new_key
from wangge.data.store import open_store
from wangge.errors import InputError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KINDS = ("tile", "point", "items")
TILE_LAYERS = ("buildings", "grids", "microgrids")
ITEM_LAYERS = ("grids", "microgrids", "buildings")
ITEM_LIMITS = (10, 50, 100)
ACCOUNT = "load-viewer"
PLAN = "demo"
#: Metres per degree of latitude (and of longitude at the equator), for box sizes.
M_PER_DEG = 111_320.0


# --- the demo plan and the stores ------------------------------------------------------------


def build_demo(scratch: Path) -> Path:
    """``wangge demo`` into ``scratch``: the plan directory and the GeoPackage store."""
    store = scratch / "wangge.gpkg"
    subprocess.run(
        ["wangge", "demo", "--out", str(scratch / "demo"), "--store", str(store)],
        cwd=scratch,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return store


def ensure_postgis(db: str, plan_dir: Path) -> str | None:
    """Create ``db`` with postgis when missing and import the demo plan when it lacks it.
    Returns why PostGIS cannot be used, or None."""
    dbname = db.rsplit("/", 1)[1]
    admin = db.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname])
            if found.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            table = conn.execute("SELECT to_regclass('public.wg_features')").fetchone()[0]
            has_plan = (
                table
                and conn.execute(
                    "SELECT 1 FROM wg_features WHERE plan_id = %s LIMIT 1", [PLAN]
                ).fetchone()
            )
    except psycopg.OperationalError as exc:
        return f"cannot reach {db} ({str(exc).strip().splitlines()[0]})"
    if not has_plan:
        subprocess.run(
            ["wangge", "import", str(plan_dir), "--store", wangge_url(db), "--plan-id", PLAN],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return None


def wangge_url(db: str) -> str:
    return db.replace("postgresql://", "postgresql+psycopg://", 1)


def viewer_key(target: str) -> str:
    """A fresh key for the viewer account in the store (an earlier run's is revoked)."""
    store = open_store(target)
    try:
        key = new_key()
        try:
            store.book.add(make_account(ACCOUNT, "viewer", ["320104"]), key)
        except InputError:  # the account of an earlier run: revoke it and make it anew
            store.book.revoke(ACCOUNT)
            store.book.add(make_account(ACCOUNT, "viewer", ["320104"]), key)
    finally:
        store.close()
    return key


# --- the workload --------------------------------------------------------------------------


@dataclass
class Workload:
    """What the clients draw from: tiles by zoom, points inside the plan, the extent."""

    bbox: tuple[float, float, float, float]
    tiles: dict[int, list[tuple[int, int, int]]]
    points: list[tuple[float, float]]
    mix: tuple[float, float, float]

    def draw(self, rng: random.Random) -> tuple[str, str]:
        """One request: its kind and its path."""
        kind = rng.choices(KINDS, weights=self.mix)[0]
        if kind == "tile":
            layer = rng.choice(TILE_LAYERS)
            z, x, y = rng.choice(self.tiles[rng.choice(list(self.tiles))])
            return kind, f"/tiles/{layer}/{z}/{x}/{y}.mvt?plan={PLAN}"
        if kind == "point":
            lon, lat = rng.choice(self.points)
            return kind, f"/coverage/point?plan={PLAN}&lon={lon:.6f}&lat={lat:.6f}"
        x0, y0, x1, y1 = self.bbox
        w = rng.uniform(100, 600) / (M_PER_DEG * np.cos(np.radians((y0 + y1) / 2)))
        h = rng.uniform(100, 600) / M_PER_DEG
        bx, by = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - h)
        box = f"{bx:.6f},{by:.6f},{bx + w:.6f},{by + h:.6f}"
        layer, limit = rng.choice(ITEM_LAYERS), rng.choice(ITEM_LIMITS)
        return kind, f"/collections/{layer}/items?plan={PLAN}&bbox={box}&limit={limit}"


def make_workload(plan_gpkg: Path, zooms: list[int], mix: list[float], seed: int) -> Workload:
    """Tiles over the micro-grids' extent and 2,000 seeded points inside micro-grids."""
    micro = gpd.read_file(plan_gpkg, layer="microgrids").to_crs(4326)
    bbox = tuple(float(v) for v in micro.total_bounds)
    rng = np.random.default_rng(seed)
    # each point: a micro-grid drawn at random, then a point inside it by rejection
    points: list[tuple[float, float]] = []
    geoms = micro.geometry.to_numpy()
    shapely.prepare(geoms)
    while len(points) < 2000:
        g = geoms[rng.integers(len(geoms))]
        gx0, gy0, gx1, gy1 = g.bounds
        x, y = rng.uniform(gx0, gx1), rng.uniform(gy0, gy1)
        if shapely.contains_xy(g, x, y):
            points.append((float(x), float(y)))
    tiles = {z: tiles_over(bbox, z) for z in zooms}
    return Workload(bbox, tiles, points, tuple(mix))


# --- load --------------------------------------------------------------------------------


@dataclass
class Load:
    """Each request's kind, latency (s) and outcome (a status, or an exception's name)."""

    kinds: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    wall: float = 0.0


def _ok(outcome: str) -> bool:
    return outcome.isdigit() and (200 <= int(outcome) < 300 or outcome == "304")


async def _run(clients: list[httpx.AsyncClient], work: Workload, seconds: float, seed: str) -> Load:
    load = Load()
    t_start = time.perf_counter()
    deadline = t_start + seconds

    async def one_client(i: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(f"{seed}/{i}")
        while time.perf_counter() < deadline:
            kind, path = work.draw(rng)
            t0 = time.perf_counter()
            try:
                r = await client.get(path)
                outcome = str(r.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            load.latencies.append(time.perf_counter() - t0)
            load.kinds.append(kind)
            load.outcomes.append(outcome)

    await asyncio.gather(*(one_client(i, c) for i, c in enumerate(clients)))
    load.wall = time.perf_counter() - t_start
    return load


async def drive(
    base: str, key: str, work: Workload, args: argparse.Namespace, tag: str, db: str | None
) -> tuple[Load, dict]:
    """Warm-up, then the measured load; the CPU the client, the server and the machine
    spent in the measured part. Each client is its own httpx client with one keep-alive
    connection: one shared pool of 100 connections costs the load process several ms of
    CPU per request (httpcore matches requests to connections by scanning them), which
    on 2 cores would be taken from the server."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Accept-Encoding": "identity"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base, limits=limits, timeout=args.timeout, headers=headers
                )
            )
            for _ in range(args.clients)
        ]
        if args.warmup > 0:
            await _run(clients, work, args.warmup, f"{args.seed}/{tag}/warmup")
        cpu0 = _cpu_now(args.server_pid, db)
        load = await _run(clients, work, args.duration, f"{args.seed}/{tag}")
        cpu1 = _cpu_now(args.server_pid, db)
    return load, _cpu_use(cpu0, cpu1, load.wall)


# --- CPU (from /proc: the machine, this process, the server's process tree) ----------------

TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and every descendant still running."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _proc_stat(int(entry))
            if found:
                parents[int(entry)], cpu[int(entry)] = found
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [p for p, parent in parents.items() if parent == pid]
    return total


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # user … steal (guest time is already inside user)
    return (total - idle) / TICK, total / TICK


def _pg_stats(db: str | None) -> dict[str, float]:
    """The database's counters (pg_stat_database): sessions opened, ms spent running
    statements, transactions. Backends that come and go are counted too, which
    /proc cannot do."""
    if not db:
        return {}
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions, active_time, xact_commit + xact_rollback"
            " FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return {"sessions": float(row[0]), "active_ms": float(row[1]), "xacts": float(row[2])}


def _cpu_now(server_pid: int | None, db: str | None) -> dict:
    return {
        "client": time.process_time(),
        "server": _tree_cpu(server_pid) if server_pid else 0.0,
        "db": _pg_stats(db),
        "machine": _machine(),
    }


def _cpu_use(a: dict, b: dict, wall: float) -> dict:
    """CPU used over ``wall`` seconds, in cores (2.0 = both cores all the time)."""
    busy = b["machine"][0] - a["machine"][0]
    out = {
        "client_cores": (b["client"] - a["client"]) / wall,
        "server_cores": (b["server"] - a["server"]) / wall,
        "machine_cores": busy / wall,
    }
    if a["db"] and b["db"]:
        out["db_active_cores"] = (b["db"]["active_ms"] - a["db"]["active_ms"]) / 1000 / wall
        # less the one session the second snapshot opened
        out["db_sessions_per_s"] = (b["db"]["sessions"] - a["db"]["sessions"] - 1) / wall
        out["db_xacts_per_s"] = (b["db"]["xacts"] - a["db"]["xacts"]) / wall
    return out


# --- figures -----------------------------------------------------------------------------


def figures(load: Load) -> dict[str, dict]:
    """Count, throughput, p50/p95/p99 and errors per kind and overall."""
    kinds = np.array(load.kinds)
    lat = np.array(load.latencies) * 1000
    ok = np.array([_ok(o) for o in load.outcomes], dtype=bool)
    out = {}
    for kind in (*KINDS, "all"):
        sel = np.ones(len(kinds), bool) if kind == "all" else kinds == kind
        n = int(sel.sum())
        errors = Counter(
            o for o, s, good in zip(load.outcomes, sel, ok, strict=True) if s and not good
        )
        out[kind] = {
            "requests": n,
            "rps": n / load.wall if load.wall else None,
            "p50_ms": float(np.percentile(lat[sel], 50)) if n else None,
            "p95_ms": float(np.percentile(lat[sel], 95)) if n else None,
            "p99_ms": float(np.percentile(lat[sel], 99)) if n else None,
            "errors": int(sum(errors.values())),
            "error_rate": sum(errors.values()) / n if n else None,
            "errors_by_kind": dict(errors),
        }
    return out


def enforced(base: str) -> str:
    """Whether the server asks reads for a key: the status of a read sent without one."""
    try:
        status = httpx.get(f"{base}/collections?plan={PLAN}", timeout=10).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return {401: "enforced (401 without a key)", 200: "not enforced (200 without a key)"}.get(
        status, f"{status} without a key"
    )


def server_errors(log: Path, offset: int) -> int:
    """Tracebacks the server wrote to its log since ``offset``."""
    with contextlib.suppress(OSError), log.open("rb") as f:
        f.seek(offset)
        return f.read().count(b"Traceback")
    return 0


# --- run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="wangge-load-"))
    print(f"building the demo plan in {scratch} (wangge demo, ~12 s)", file=sys.stderr)
    gpkg = build_demo(scratch)
    work = make_workload(scratch / "demo" / "plan.gpkg", args.zooms, args.mix, args.seed)
    targets: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in args.stores:
        if name == "gpkg":
            targets[name] = str(gpkg)
        else:
            why = ensure_postgis(args.db, scratch / "demo")
            if why:
                skipped[name] = why
                print(f"skipping PostGIS: {why}", file=sys.stderr)
            else:
                targets[name] = wangge_url(args.db)
    meta = environment(args, work)
    rows: list[dict] = []
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("WANGGE_")}
    public = {"WANGGE_PUBLIC_READS": "true"} if args.public_reads else {}
    runs = [(name, target, None) for name, target in targets.items()]
    if args.pools and "postgis" in targets:  # the same PostGIS store at each pool size
        runs = [r for r in runs if r[0] != "postgis"] + [
            (f"postgis pool {p}", targets["postgis"], p) for p in args.pools
        ]
    for rnd in range(args.rounds):
        for name, target, pool in runs:
            key = None if args.public_reads else viewer_key(target)
            db = args.db if name.startswith("postgis") else None
            sized = {}
            if pool:
                kept, extra = pool.split(":")
                sized = {"WANGGE_DB_POOL_SIZE": kept, "WANGGE_DB_POOL_OVERFLOW": extra}
            for workers in args.workers:
                server = Server(
                    name=f"wangge-{name.replace(' ', '-').replace(':', '+')}-{workers}w",
                    argv=uvicorn_argv(workers),
                    env={
                        **base_env,
                        "WANGGE_STORE": target,
                        "WANGGE_PLAN": PLAN,
                        **public,
                        **sized,
                    },
                    tile_template="",
                    tilejson_template="",
                    ready_path="/healthz",
                )
                log = scratch / f"{server.name}.log"
                offset = log.stat().st_size if log.exists() else 0
                print(
                    f"{server.name}: {args.warmup:g} s warm-up, {args.duration:g} s",
                    file=sys.stderr,
                )
                with running(server, scratch, workers):
                    args.server_pid = server.proc.pid
                    auth = enforced(server.base)
                    load, cpu = asyncio.run(
                        drive(server.base, key, work, args, f"{name}/{workers}/{rnd}", db)
                    )
                row = {
                    "store": name,
                    "workers": workers,
                    "round": rnd,
                    "seconds": load.wall,
                    "auth": auth,
                    "cpu": cpu,
                    "server_tracebacks": server_errors(log, offset),
                    "kinds": figures(load),
                }
                rows.append(row)
                a = row["kinds"]["all"]
                print(
                    f"  {a['requests']:,} requests, {a['rps']:,.0f} req/s, p50 {a['p50_ms']:.1f}"
                    f" p95 {a['p95_ms']:.1f} p99 {a['p99_ms']:.1f} ms, {a['errors']} errors;"
                    f" cores: client {cpu['client_cores']:.2f}, server {cpu['server_cores']:.2f},"
                    f" machine {cpu['machine_cores']:.2f}",
                    file=sys.stderr,
                )
    meta["loadavg_end"] = os.getloadavg()
    meta["scratch"] = str(scratch)
    return {"meta": meta, "rows": rows, "skipped": skipped}


def uvicorn_argv(workers: int) -> list[str]:
    """uvicorn through bench_tiles' launcher (a listener with TCP_NODELAY, uvicorn#3149)."""
    return [
        sys.executable,
        "-c",
        UVICORN_NODELAY,
        "--factory",
        "wangge.api.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "info",  # bench_tiles.start counts the workers' "Application startup complete."
    ]


def environment(args: argparse.Namespace, work: Workload) -> dict:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    rev = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "wangge": importlib.metadata.version("wangge"),
        "wangge_rev": rev,
        "uvicorn": importlib.metadata.version("uvicorn"),
        "httpx": importlib.metadata.version("httpx"),
        "clients": args.clients,
        "duration": args.duration,
        "warmup": args.warmup,
        "mix": dict(zip(KINDS, args.mix, strict=True)),
        "seed": args.seed,
        "public_reads": args.public_reads,
        "zooms": args.zooms,
        "tiles": {z: len(t) for z, t in work.tiles.items()},
        "bbox": work.bbox,
        "argv": sys.argv[1:],
        "loadavg_start": os.getloadavg(),
    }


# --- report ------------------------------------------------------------------------------


def _f(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def merged(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """Rows of the same store and workers over rounds: requests and seconds add up;
    percentiles are the rounds' median (each round's own are in the JSON)."""
    out: dict[tuple[str, int], dict] = {}
    for row in rows:
        out.setdefault((row["store"], row["workers"]), []).append(row)
    result = {}
    for k, group in out.items():
        seconds = sum(r["seconds"] for r in group)
        kinds = {}
        for kind in (*KINDS, "all"):
            cells = [r["kinds"][kind] for r in group]
            n = sum(c["requests"] for c in cells)
            errors = sum(c["errors"] for c in cells)
            by = Counter()
            for c in cells:
                by.update(c["errors_by_kind"])
            kinds[kind] = {
                "requests": n,
                "rps": n / seconds if seconds else None,
                **{
                    p: float(np.median([c[p] for c in cells if c[p] is not None]))
                    if any(c[p] is not None for c in cells)
                    else None
                    for p in ("p50_ms", "p95_ms", "p99_ms")
                },
                "errors": errors,
                "error_rate": errors / n if n else None,
                "errors_by_kind": dict(by),
            }
        cpu = {c: float(np.mean([r["cpu"][c] for r in group])) for c in group[0]["cpu"]}
        result[k] = {
            "rounds": len(group),
            "seconds": seconds,
            "kinds": kinds,
            "cpu": cpu,
            "auth": sorted({r["auth"] for r in group}),
            "server_tracebacks": sum(r["server_tracebacks"] for r in group),
        }
    return result


def markdown(result: dict) -> str:
    meta = result["meta"]
    cells = merged(result["rows"])
    mix = ", ".join(
        f"{100 * v / sum(meta['mix'].values()):.0f} % {k}" for k, v in meta["mix"].items()
    )
    lines = [
        f"Load, {meta['date']}: {meta['cores']} × {meta['cpu']} (shared, noisy); wangge"
        f" {meta['wangge']} ({meta['wangge_rev']}), uvicorn {meta['uvicorn']} (TCP_NODELAY"
        f" listener), client httpx {meta['httpx']} in one asyncio process on the same machine."
        f" {meta['clients']} clients back to back, {meta['warmup']:g} s warm-up then"
        f" {meta['duration']:g} s per configuration; mix {mix} (seed {meta['seed']});"
        + (
            " public reads (WANGGE_PUBLIC_READS=true), no key sent;"
            if meta.get("public_reads")
            else " a viewer's key (Authorization: Bearer) on every request;"
        )
        + " tiles"
        " z" + ", z".join(f"{z} {n}" for z, n in meta["tiles"].items()) + " per layer."
        f" Load average at start and end: {meta['loadavg_start'][0]:.1f},"
        f" {meta['loadavg_end'][0]:.1f}.",
        "",
        "| store | workers | kind | requests | req/s | p50 ms | p95 ms | p99 ms | errors"
        " | req/s vs 1 worker |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (store, workers), cell in cells.items():
        for kind in (*KINDS, "all"):
            c = cell["kinds"][kind]
            if not c["requests"] and kind != "all":
                continue  # a kind the mix leaves out
            ratio = ""
            one = cells.get((store, 1))
            if workers != 1 and one and one["kinds"][kind]["rps"] and c["rps"]:
                ratio = f"{c['rps'] / one['kinds'][kind]['rps']:.2f}×"
            errors = f"{c['errors']} ({100 * (c['error_rate'] or 0):.2f} %)"
            if c["errors_by_kind"]:
                errors += " " + ", ".join(f"{k}: {v}" for k, v in c["errors_by_kind"].items())
            name = f"**{kind}**" if kind == "all" else kind
            lines.append(
                f"| {store} | {workers} | {name} | {c['requests']:,} | {_f(c['rps'], 0)}"
                f" | {_f(c['p50_ms'])} | {_f(c['p95_ms'])} | {_f(c['p99_ms'])} | {errors}"
                f" | {ratio} |"
            )
    lines.append("")
    for (store, workers), cell in cells.items():
        cpu, rps = cell["cpu"], cell["kinds"]["all"]["rps"] or float("nan")
        db = ""
        if "db_sessions_per_s" in cpu:
            db = (
                f"; PostgreSQL: {cpu['db_xacts_per_s']:,.0f} transactions/s,"
                f" {cpu['db_sessions_per_s']:,.0f} new sessions/s, statements running"
                f" {cpu['db_active_cores']:.2f} cores' worth of time"
            )
        lines.append(
            f"- {store}, {workers} worker{'s' if workers > 1 else ''}: CPU in cores over the"
            f" measured seconds: server {cpu['server_cores']:.2f}, load client"
            f" {cpu['client_cores']:.2f}, whole machine {cpu['machine_cores']:.2f} of"
            f" {meta['cores']}; {1000 * cpu['server_cores'] / rps:.1f} ms of server CPU per"
            f" request{db}; key check {', '.join(cell['auth'])}; tracebacks in the server"
            f" log: {cell['server_tracebacks']}."
        )
    stores = sorted({s for s, _ in cells})
    if "gpkg" in stores and "postgis" in stores:
        for w in sorted({w for _, w in cells}):
            a, b = cells.get(("postgis", w)), cells.get(("gpkg", w))
            if a and b and b["kinds"]["all"]["rps"]:
                ratio = a["kinds"]["all"]["rps"] / b["kinds"]["all"]["rps"]
                lines.append(f"- PostGIS / GeoPackage throughput, {w} worker(s): {ratio:.2f}×.")
    for name, why in result.get("skipped", {}).items():
        lines.append(f"- {name} skipped: {why}.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=100, help="concurrent clients (default 100)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    p.add_argument("--warmup", type=float, default=5.0, help="uncounted seconds first (default 5)")
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="uvicorn workers")
    p.add_argument("--stores", nargs="+", choices=["gpkg", "postgis"], default=["gpkg", "postgis"])
    p.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/wangge_load")
    p.add_argument(
        "--mix",
        nargs=3,
        type=float,
        default=[50.0, 30.0, 20.0],
        metavar=("TILES", "POINTS", "ITEMS"),
        help="weights of the request kinds (default 50 30 20)",
    )
    p.add_argument("--zooms", nargs="+", type=int, default=[12, 13, 14, 15, 16])
    p.add_argument("--rounds", type=int, default=1, help="run every configuration this often")
    p.add_argument(
        "--public-reads",
        action="store_true",
        help="serve with WANGGE_PUBLIC_READS=true and send no key (the key check's cost)",
    )
    p.add_argument(
        "--pools",
        nargs="+",
        metavar="KEPT:EXTRA",
        help="run PostGIS once per connection pool (WANGGE_DB_POOL_SIZE:WANGGE_DB_POOL_OVERFLOW)"
        ", e.g. 8:16 20:20 40:0",
    )
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--out", default="/tmp/wangge-bench/load.json")
    p.add_argument("--report", metavar="JSON", help="print the table of a saved run and stop")
    args = p.parse_args(argv)
    args.server_pid = None
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = run(args)
    out.write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    print(f"raw results: {out}; table: {out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
