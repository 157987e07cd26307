"""Benchmark: wangge's vector tiles against tipg 1.x serving the same PostGIS table, in one run.

Reproduce (2 cores; PostgreSQL 15 + PostGIS 3.3 on 127.0.0.1:5432, trust auth):
    apt-get install -y wrk
    bash scripts/ensure_services.sh postgis
    bash bench/tipg_env.sh                      # tipg 1.x in /tmp/wangge-bench/tipg
    python bench/bench_tiles.py --setup --out /tmp/wangge-bench/tiles.json   # ~25 min
    python bench/bench_tiles.py --quick         # buildings only, shorter cells: ~5 min

``--setup`` creates the database ``wangge_bench`` (postgis, btree_gist) and loads the demo
plan into it with ``wangge demo --store …`` when the plan is missing. wangge keeps every
plan layer in one table, ``wg_features``; tipg is given one view per layer over that table
(``public.bench_<layer>``: ``fid AS id``, the attributes wangge's tiles of the layer carry
(``wangge.data.tiles.TILE_FIELDS``) as typed columns, ``geom``), so both servers read the
same rows through the same GiST index ``(plan_id, version, layer, geom)``. tipg is asked
for those attributes only (``?properties=``, which keeps ``id`` out of its tiles) and clips
with wangge's margin (``TIPG_TILE_BUFFER``); extent 4096 for both. wangge simplifies at low
zooms and tipg, by default, does not.

Each server runs alone (never both at once, so they do not share the 2 cores; they take
turns cell by cell, so that other load on the machine falls on both) under uvicorn with
``--workers`` processes (default 2, one per core) and no access log. uvicorn is started
through a small launcher that gives its listening socket ``IPPROTO_TCP``: uvicorn's own
socket for ``--workers`` > 1 leaves Nagle on (Kludex/uvicorn#3149), which adds ~40 ms to
every keep-alive response; ``--stock-uvicorn`` measures that. wrk runs on the same machine.
For every layer, zoom (z12, z14, z16: every tile over the layer's extent) and number of
clients (1, 10, 100):
- cold: a freshly started server (wangge's tile cache empty; PostgreSQL's buffers stay
  warm for both) that has first served its TileJSON and some tiles of ``--prime-zoom``
  (z15) over a few connections, so that each worker has run the tile path once, is asked
  for each tile once by a Python client with that many concurrent connections (at most one
  per tile): the cost of a cache miss on a running server. A zoom with few tiles gets
  several fresh servers (rounds) until it has ``--cold-min-requests`` samples; req/s is
  the requests over the time spent in them.
- first: the same with one client and without the priming: the first tiles a new process
  serves (worker threads, database connections and statement caches made on the way).
- warm: the same tiles cycled by wrk (``-t2 -cN``, tiles_load.lua) for ``--warm-seconds``
  after ``--warmup-seconds`` of the same load that is not counted.
Errors are connection errors, timeouts (10 s) and statuses >= 400. Also checked in passing:
both servers answer 200 with a non-empty MVT for a tile in the middle of the layer at z14
and z16, with the same features within the tile and the same attributes (a warning
otherwise), and a warm tile is asked for again with If-None-Match (wangge: expect 304; its
latency is reported).

The table is printed as markdown (for docs/BENCHMARKS.md) and written beside ``--out``
(``.md``); the raw figures are in ``--out`` (JSON). ``--servers wangge tipg wangge-nocache``
adds wangge started with ``WANGGE_TILE_CACHE_MB=0``, to compare the query paths alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import mapbox_vector_tile
import numpy as np
import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from shapely.geometry import box, shape

try:  # the attributes and buffer of wangge's tiles, so that tipg's tiles carry the same
    from wangge.data.tiles import TILE_FIELDS, TileRequest

    TILE_BUFFER = TileRequest.buffer
except ImportError:  # an older wangge: every property, and tipg's default buffer
    TILE_FIELDS, TILE_BUFFER = {}, 256

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LUA = HERE / "tiles_load.lua"
TMS = "WebMercatorQuad"
#: The phases in the order the table shows them.
PHASES = ("first", "cold", "warm")
#: Per-request time limit, for the Python client and for wrk.
TIMEOUT_S = 10.0
console = Console(stderr=True)


@dataclass
class Server:
    """How to start one tile server and where its tiles are."""

    name: str
    argv: list[str]
    env: dict[str, str]
    #: ``{layer}``, ``{z}``, ``{x}``, ``{y}`` and ``{query}`` are filled in.
    tile_template: str
    tilejson_template: str
    ready_path: str
    #: Query strings by layer, for ``{query}``.
    queries: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tile_path(self, layer: str, z: int, x: int, y: int) -> str:
        query = self.queries.get(layer, "")
        return self.tile_template.format(layer=layer, z=z, x=x, y=y, query=query)


# --- database ---------------------------------------------------------------------------


def _with_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


def setup_database(db_url: str, plan: str, scratch: Path) -> None:
    """Create the database and load the demo plan into it when they are missing."""
    dbname = db_url.rsplit("/", 1)[1]
    with psycopg.connect(_with_db(db_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            console.print(f"creating database {dbname}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        has_table = conn.execute("SELECT to_regclass('public.wg_features')").fetchone()[0]
        has_plan = (
            has_table
            and conn.execute(
                "SELECT 1 FROM wg_features WHERE plan_id = %s LIMIT 1", [plan]
            ).fetchone()
        )
    if has_plan:
        console.print(f"plan {plan!r} is already in {dbname}")
        return
    if plan != "demo":
        sys.exit(f"plan {plan!r} is not in {dbname}; --setup can only load the demo")
    store = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    console.print(f"loading the demo plan into {dbname} (wangge demo, about 15 s)")
    subprocess.run(
        ["wangge", "demo", "--out", "out/demo", "--store", store],
        cwd=scratch / "demo",
        check=True,
        stdout=subprocess.DEVNULL,
    )


def layer_version(conn: psycopg.Connection, plan: str, layer: str) -> int:
    """The newest version that holds rows of the layer (a later one may keep them)."""
    row = conn.execute(
        "SELECT max(version) FROM wg_features WHERE plan_id = %s AND layer = %s", [plan, layer]
    ).fetchone()
    if row[0] is None:
        sys.exit(f"plan {plan!r} has no layer {layer!r}; for the demo, run with --setup")
    return int(row[0])


def create_view(conn: psycopg.Connection, plan: str, version: int, layer: str) -> list[str]:
    """Create ``public.bench_<layer>`` over wg_features for tipg; return its attributes.

    The attributes wangge puts in the layer's tiles (all, for a layer it does not list)
    become columns typed from their JSON values (bigint, float8, boolean, else text), so
    that tipg's tiles carry the same attributes as wangge's.
    """
    rows = conn.execute(
        """
        SELECT key,
               array_agg(DISTINCT jsonb_typeof(value)) FILTER (WHERE jsonb_typeof(value) <> 'null'),
               bool_and(jsonb_typeof(value) <> 'number' OR value::text ~ '^-?[0-9]+$')
          FROM wg_features, jsonb_each(properties)
         WHERE plan_id = %s AND version = %s AND layer = %s
         GROUP BY key ORDER BY key
        """,
        [plan, version, layer],
    ).fetchall()
    fields = TILE_FIELDS.get(layer)
    attrs = [c for c in ("code", "parent_code") if fields is None or c in fields]
    cols = [sql.SQL("fid AS id"), *(sql.Identifier(c) for c in attrs)]
    for key, types, integral in rows:
        if key in {"id", "code", "parent_code", "geom"} or (fields and key not in fields):
            continue
        types = set(types or [])
        value = sql.SQL("properties->>{}").format(sql.Literal(key))
        if types == {"number"}:
            cast = "bigint" if integral else "double precision"
        elif types == {"boolean"}:
            cast = "boolean"
        else:
            cast = "text"
        cols.append(sql.SQL("({})::{} AS {}").format(value, sql.SQL(cast), sql.Identifier(key)))
        attrs.append(key)
    cols.append(sql.SQL("geom"))
    view = f"bench_{layer}"
    conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(view)))
    conn.execute(
        sql.SQL(
            "CREATE VIEW {} AS SELECT {} FROM wg_features"
            " WHERE plan_id = {} AND version = {} AND layer = {}"
        ).format(
            sql.Identifier(view),
            sql.SQL(", ").join(cols),
            sql.Literal(plan),
            sql.Literal(version),
            sql.Literal(layer),
        )
    )
    return attrs


def layer_bbox(
    conn: psycopg.Connection, plan: str, version: int, layer: str
) -> tuple[float, float, float, float]:
    row = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e"
        " FROM wg_features WHERE plan_id = %s AND version = %s AND layer = %s) s",
        [plan, version, layer],
    ).fetchone()
    return tuple(float(v) for v in row)


def prewarm(conn: psycopg.Connection, plan: str) -> None:
    """Read the plan's rows once, so that neither server meets cold PostgreSQL buffers."""
    conn.execute(
        "SELECT count(*), sum(ST_NPoints(geom)), sum(length(properties::text)) FROM wg_features"
        " WHERE plan_id = %s",
        [plan],
    ).fetchone()


# --- tiles ------------------------------------------------------------------------------


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tiles_over(bbox: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    """Every WebMercatorQuad tile at zoom ``z`` that meets the lon/lat box."""
    x0, y0 = _tile_of(bbox[0], bbox[3], z)
    x1, y1 = _tile_of(bbox[2], bbox[1], z)
    return [(z, x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]


def centre_tile(bbox: tuple[float, float, float, float], z: int) -> tuple[int, int, int]:
    x, y = _tile_of((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, z)
    return z, x, y


# --- servers ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Runs uvicorn with its listening socket marked IPPROTO_TCP. asyncio sets TCP_NODELAY on an
#: accepted connection only when the listener says so, and uvicorn's own socket, bound for
#: ``--workers`` > 1, does not (Kludex/uvicorn#3149): every keep-alive response that goes out
#: in two writes (headers, then body) then waits ~40 ms for the client's delayed ACK, which
#: would hide everything else measured here. Both servers start through it alike.
UVICORN_NODELAY = """
import socket, sys
from uvicorn import config, main
_bind = config.Config.bind_socket
def bind_socket(self):
    sock = _bind(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock
config.Config.bind_socket = bind_socket
sys.argv[0] = "uvicorn"
main.main()
"""


def _uvicorn(python: str, app: list[str], args: argparse.Namespace) -> list[str]:
    launch = ["-c", UVICORN_NODELAY] if args.nodelay else ["-m", "uvicorn"]
    return [
        python,
        *launch,
        *app,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(args.workers),
        "--no-access-log",
        "--log-level",
        "info",  # start() counts the workers' "Application startup complete."
    ]


def make_servers(names: list[str], args: argparse.Namespace) -> list[Server]:
    wangge_url = args.db.replace("postgresql://", "postgresql+psycopg://", 1)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("WANGGE_", "TIPG_"))}
    servers = []
    for name in names:
        if name in {"wangge", "wangge-nocache"}:
            # reads open to all, as Martin and tipg serve them (they have no keys)
            env = {
                **base_env,
                "WANGGE_DATABASE_URL": wangge_url,
                "WANGGE_PLAN": args.plan,
                "WANGGE_PUBLIC_READS": "true",
            }
            if name == "wangge-nocache":
                env["WANGGE_TILE_CACHE_MB"] = "0"
            servers.append(
                Server(
                    name=name,
                    argv=_uvicorn(sys.executable, ["--factory", "wangge.api.app:create_app"], args),
                    env=env,
                    tile_template="/tiles/{layer}/{z}/{x}/{y}.mvt?plan=" + args.plan,
                    tilejson_template="/tiles/{layer}.json?plan=" + args.plan,
                    ready_path="/healthz",
                )
            )
        elif name == "tipg":
            python = str(Path(args.tipg_venv) / "bin" / "python")
            if not Path(python).exists():
                sys.exit(f"no tipg venv at {args.tipg_venv}: run bash bench/tipg_env.sh")
            env = {
                **base_env,
                "DATABASE_URL": args.db,
                "TIPG_DB_SCHEMAS": '["public"]',
                "TIPG_DB_TABLES": json.dumps([f"public.bench_{la}" for la in args.layers]),
                "TIPG_DB_FUNCTIONS": "[]",
                # 0 turns off the catalog refresh that would otherwise run every 300 s
                # inside a request's background task, in the middle of a warm phase
                "TIPG_CATALOG_TTL": "0",
                "TIPG_MAX_FEATURES_PER_TILE": "100000",
                # the same clip margin as wangge's tiles (tipg's default is 256 of 4096)
                "TIPG_TILE_BUFFER": str(TILE_BUFFER),
            }
            servers.append(
                Server(
                    name=name,
                    argv=_uvicorn(python, ["tipg.main:app"], args),
                    env=env,
                    # ?properties= keeps the view's id column out of the tiles, as wangge's
                    tile_template=(
                        f"/collections/public.bench_{{layer}}/tiles/{TMS}/{{z}}/{{x}}/{{y}}{{query}}"
                    ),
                    tilejson_template=f"/collections/public.bench_{{layer}}/tiles/{TMS}/tilejson.json",
                    ready_path="/healthz",
                )
            )
        else:
            sys.exit(f"unknown server {name!r}")
    return servers


def start(server: Server, logdir: Path, workers: int) -> None:
    """Start the server on a free port and wait until every worker has started and one
    answers, so that no worker is still importing while the first cell is timed."""
    server.port = _free_port()
    argv = [a.replace("{port}", str(server.port)) for a in server.argv]
    logpath = logdir / f"{server.name}.log"
    offset = logpath.stat().st_size if logpath.exists() else 0
    log = open(logpath, "ab")  # noqa: SIM115 (kept open by the child)
    server.proc = subprocess.Popen(
        argv,
        env=server.env,
        cwd=logdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=server.base, timeout=2.0) as client:
        while True:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited; see {logdir / server.name}.log")
            with logpath.open("rb") as f:
                f.seek(offset)
                started = f.read().count(b"Application startup complete")
            if started >= workers:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(server.ready_path).status_code == 200:
                        break
            if time.monotonic() > deadline:
                stop(server)
                raise RuntimeError(f"{server.name} did not start in 60 s")
            time.sleep(0.1)
    # a few concurrent calls that need no tile, so that each worker has answered once
    asyncio.run(_touch(server, 4 * workers))


async def _touch(server: Server, n: int) -> None:
    async with httpx.AsyncClient(base_url=server.base, timeout=TIMEOUT_S) as client:
        await asyncio.gather(*(client.get(server.ready_path) for _ in range(n)))


def stop(server: Server) -> None:
    """Stop the server's process group (uvicorn's supervisor and its workers)."""
    proc = server.proc
    if proc is None or proc.poll() is not None:
        server.proc = None
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    server.proc = None


@contextlib.contextmanager
def running(server: Server, logdir: Path, workers: int):
    start(server, logdir, workers)
    try:
        yield server
    finally:
        stop(server)


# --- load -------------------------------------------------------------------------------


@dataclass
class Sample:
    """Latencies (s) and errors of one load, and the wall time it took."""

    latencies: list[float]
    errors: int
    wall: float


async def _load(base: str, paths: list[str], clients: int, seconds: float | None) -> Sample:
    """Ask for ``paths`` over ``clients`` connections: once each, or cycling for ``seconds``."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Accept-Encoding": "identity"}  # as wrk: no compression from either server
    latencies: list[float] = []
    errors = 0
    counter = 0
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=TIMEOUT_S, headers=headers
    ) as client:
        t_start = time.perf_counter()
        deadline = None if seconds is None else t_start + seconds

        async def worker() -> None:
            nonlocal errors, counter
            while True:
                if deadline is None:
                    if counter >= len(paths):
                        return
                elif time.perf_counter() >= deadline:
                    return
                path = paths[counter % len(paths)]
                counter += 1
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                    ok = r.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        n = clients if seconds is not None else min(clients, len(paths))
        await asyncio.gather(*(worker() for _ in range(n)))
        wall = time.perf_counter() - t_start
    return Sample(latencies, errors, wall)


def _wrk(base: str, paths_file: Path, clients: int, seconds: float) -> dict:
    threads = min(2, clients)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={int(TIMEOUT_S)}s",
            "-s",
            str(LUA),
            base,
            "--",
            str(paths_file),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return json.loads(line.removeprefix("BENCH_JSON "))


def _cell(samples: list[Sample]) -> dict:
    lat = np.array([t for s in samples for t in s.latencies]) * 1000
    wall = sum(s.wall for s in samples)
    n = len(lat)
    return {
        "requests": n,
        "errors": sum(s.errors for s in samples),
        "p50_ms": float(np.percentile(lat, 50)) if n else None,
        "p95_ms": float(np.percentile(lat, 95)) if n else None,
        "rps": n / wall if wall else None,
        "seconds": wall,
    }


def warm_cell(base: str, paths: list[str], clients: int, args: argparse.Namespace) -> dict:
    """Warm-up, then the measured load, with wrk if there is one, else the Python client."""
    if args.wrk:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("\n".join(paths) + "\n")
        try:
            if args.warmup_seconds > 0:
                _wrk(base, Path(f.name), clients, args.warmup_seconds)
            r = _wrk(base, Path(f.name), clients, args.warm_seconds)
        finally:
            os.unlink(f.name)
        secs = r["duration_us"] / 1e6
        return {
            "requests": r["requests"],
            "errors": sum(r["errors"].values()),
            "errors_by_kind": r["errors"],
            "p50_ms": r["latency_us"]["p50"] / 1000,
            "p95_ms": r["latency_us"]["p95"] / 1000,
            "rps": r["requests"] / secs,
            "seconds": secs,
            "client": "wrk",
        }
    if args.warmup_seconds > 0:
        asyncio.run(_load(base, paths, clients, args.warmup_seconds))
    return {**_cell([asyncio.run(_load(base, paths, clients, args.warm_seconds))]), "client": "py"}


# --- checks -----------------------------------------------------------------------------


def inspect_tile(base: str, path: str) -> dict:
    """Status, size, layers, feature count and property names of one tile."""
    r = httpx.get(base + path, headers={"Accept-Encoding": "identity"}, timeout=TIMEOUT_S)
    info = {"path": path, "status": r.status_code, "bytes": len(r.content)}
    info["etag"] = r.headers.get("etag")
    info["cache_control"] = r.headers.get("cache-control")
    if r.status_code == 200 and r.content:
        try:
            layers = mapbox_vector_tile.decode(r.content)
        except Exception as exc:  # a broken tile is a finding, not a crash
            info["decode_error"] = repr(exc)
            return info
        info["layers"] = {name: len(layer["features"]) for name, layer in layers.items()}
        info["features"] = sum(info["layers"].values())
        # the servers differ in what they keep in the clip margin (tipg: what meets the
        # tile; wangge: what meets the tile and its margin): compare what meets the tile
        square = {
            name: box(0, 0, layer["extent"], layer["extent"]) for name, layer in layers.items()
        }
        info["features_in_tile"] = sum(
            1
            for name, layer in layers.items()
            for f in layer["features"]
            if _meets(shape(f["geometry"]), square[name])
        )
        info["properties"] = sorted(
            {k for layer in layers.values() for f in layer["features"] for k in f["properties"]}
        )
    return info


def _meets(geom, square) -> bool:
    """True when ``geom`` shares more than a boundary with the tile's square."""
    return geom.intersects(square) and not geom.touches(square)


def revalidate(base: str, path: str, n: int) -> dict:
    """Latency of ``n`` warm requests carrying the tile's ETag in If-None-Match."""
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        first = client.get(path)
        etag = first.headers.get("etag")
        if not etag:
            return {"etag": None, "note": "no ETag header"}
        statuses: dict[int, int] = {}
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get(path, headers={"If-None-Match": etag})
            lat.append((time.perf_counter() - t0) * 1000)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    return {
        "etag": etag,
        "requests": n,
        "statuses": statuses,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
    }


def has_tiles(server: Server, layer: str) -> bool:
    r = httpx.get(server.base + server.tilejson_template.format(layer=layer), timeout=TIMEOUT_S)
    return r.status_code == 200


def compare_tiles(checks: dict) -> list[str]:
    """Warnings where the servers' middle tiles differ more than clipping explains."""
    warnings = []
    by_tile: dict[tuple, dict] = {}
    for server, per_tile in checks.items():
        for key, info in per_tile.items():
            by_tile.setdefault(key, {})[server] = info
            if info["status"] != 200 or not info.get("features"):
                warnings.append(
                    f"{server} {key}: status {info['status']}, {info['bytes']} bytes,"
                    f" {info.get('features', 0)} features {info.get('decode_error', '')}"
                    " (expected a 200 MVT with features)"
                )
    for key, infos in by_tile.items():
        counts = {s: i["features_in_tile"] for s, i in infos.items() if i.get("features")}
        if len(counts) > 1:
            lo, hi = min(counts.values()), max(counts.values())
            if hi - lo > max(2, 0.02 * hi):
                warnings.append(f"{key}: features within the tile differ {counts}")
        props = {s: tuple(i.get("properties", ())) for s, i in infos.items() if i.get("features")}
        if len(set(props.values())) > 1:
            warnings.append(f"{key}: attributes differ {props}")
    return warnings


# --- run --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    """Every cell for every server; the servers take turns, one running at a time."""
    scratch = Path(args.out).parent / "bench_tiles_run"
    (scratch / "demo").mkdir(parents=True, exist_ok=True)
    if args.setup:
        setup_database(args.db, args.plan, scratch)
    try:
        conn = psycopg.connect(args.db, autocommit=True)
    except psycopg.OperationalError as exc:
        sys.exit(f"cannot reach {args.db} ({exc}); run with --setup to create it")
    with conn:
        versions: dict[str, int] = {}
        tiles: dict[str, dict[int, list]] = {}
        centres: dict[str, dict[int, tuple]] = {}
        attrs: dict[str, list[str]] = {}
        bboxes: dict[str, tuple] = {}
        for layer in args.layers:
            version = versions[layer] = layer_version(conn, args.plan, layer)
            attrs[layer] = create_view(conn, args.plan, version, layer)
            bbox = bboxes[layer] = layer_bbox(conn, args.plan, version, layer)
            tiles[layer] = {z: tiles_over(bbox, z) for z in args.zooms}
            centres[layer] = {z: centre_tile(bbox, z) for z in (14, 16)}
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        prewarm(conn, args.plan)
    meta = environment(args, versions, postgis, tiles)
    console.print(
        "tiles per zoom: "
        + "; ".join(
            f"{la}: " + ", ".join(f"z{z} {len(t)}" for z, t in zs.items())
            for la, zs in tiles.items()
        )
    )

    # which servers serve the layers; their middle tiles and revalidation, from a fresh start
    servers, checks, etags, skipped = [], {}, {}, {}
    for server in make_servers(args.servers, args):
        if server.name == "tipg":
            server.queries = {la: "?properties=" + ",".join(a) for la, a in attrs.items()}
        with running(server, scratch, args.workers):
            missing = [la for la in args.layers if not has_tiles(server, la)]
            if missing:
                skipped[server.name] = f"no tiles for {', '.join(missing)} (TileJSON not 200)"
                console.print(f"[yellow]skipping {server.name}: {skipped[server.name]}[/]")
                continue
            checks[server.name] = {
                f"{layer} z{z}": inspect_tile(server.base, server.tile_path(layer, *t))
                for layer in args.layers
                for z, t in centres[layer].items()
            }
            layer = args.layers[0]
            etags[server.name] = revalidate(
                server.base, server.tile_path(layer, *centres[layer][14]), args.etag_requests
            )
        servers.append(server)
    warnings = compare_tiles(checks)
    for w in warnings:
        console.print(f"[red]WARNING: {w}[/]")

    cells: list[dict] = []
    # first: the first tiles a fresh process serves, one client; cold: the same after the
    # process has served tiles of another zoom (a cache miss on a running server)
    cold = [
        (phase, layer, z, c, rounds_for(len(tiles[layer][z]), args))
        for phase, counts in (("first", [1] if args.first else []), ("cold", args.clients))
        for layer in args.layers
        for z in args.zooms
        for c in counts
    ]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        # first and cold: a fresh server for every round of every cell
        task = progress.add_task("cold", total=sum(r for *_, r in cold) * len(servers))
        for phase, layer, z, clients, rounds in cold:
            samples: dict[str, list[Sample]] = {s.name: [] for s in servers}
            for _ in range(rounds):
                for server in servers:
                    paths = [server.tile_path(layer, *t) for t in tiles[layer][z]]
                    with running(server, scratch, args.workers):
                        if phase == "cold":
                            prime(server, layer, tiles_over(bboxes[layer], args.prime_zoom))
                        samples[server.name].append(
                            asyncio.run(_load(server.base, paths, clients, None))
                        )
                    progress.advance(task)
            for server in servers:
                cells.append(
                    {
                        "server": server.name,
                        "layer": layer,
                        "zoom": z,
                        "clients": clients,
                        "phase": phase,
                        "tiles": len(tiles[layer][z]),
                        "rounds": rounds,
                        **_cell(samples[server.name]),
                        "client": "py",
                    }
                )
                _note(cells[-1])
        # warm: one server start per layer and zoom, every client count in turn
        task = progress.add_task(
            "warm", total=len(args.layers) * len(args.zooms) * len(args.clients) * len(servers)
        )
        for layer in args.layers:
            for z in args.zooms:
                for server in servers:
                    paths = [server.tile_path(layer, *t) for t in tiles[layer][z]]
                    with running(server, scratch, args.workers):
                        for clients in args.clients:
                            cells.append(
                                {
                                    "server": server.name,
                                    "layer": layer,
                                    "zoom": z,
                                    "clients": clients,
                                    "phase": "warm",
                                    "tiles": len(paths),
                                    **warm_cell(server.base, paths, clients, args),
                                }
                            )
                            _note(cells[-1])
                            progress.advance(task)
    meta["loadavg_end"] = os.getloadavg()
    return {
        "meta": meta,
        "cells": cells,
        "checks": checks,
        "warnings": warnings,
        "etag": etags,
        "skipped": skipped,
    }


def prime(server: Server, layer: str, tiles: list[tuple[int, int, int]]) -> None:
    """Serve the layer's TileJSON and some tiles over a few connections, so that every
    worker has run the tile path (threads, connections, statement caches) before it is
    timed on tiles it has not cut yet."""
    paths = [server.tilejson_template.format(layer=layer)] * 4
    paths += [server.tile_path(layer, *t) for t in tiles[:24]]
    asyncio.run(_load(server.base, paths, 4, None))


def _note(cell: dict) -> None:
    """One line per finished cell when the progress bars cannot be drawn (output to a file)."""
    if not console.is_terminal:
        console.print(
            f"{cell['phase']} {cell['server']} {cell['layer']} z{cell['zoom']} c{cell['clients']}:"
            f" {cell['requests']} requests, {cell['errors']} errors, p50 {_f(cell['p50_ms'])} ms,"
            f" {_f(cell['rps'], 0)} req/s"
        )


def rounds_for(n_tiles: int, args: argparse.Namespace) -> int:
    return max(1, min(args.cold_max_rounds, math.ceil(args.cold_min_requests / max(n_tiles, 1))))


def environment(
    args: argparse.Namespace, versions: dict[str, int], postgis: str, tiles: dict
) -> dict:
    def _version(python: str, dist: str) -> str | None:
        try:
            return subprocess.run(
                [python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            return None

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
    tipg_python = str(Path(args.tipg_venv) / "bin" / "python")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "wangge": importlib.metadata.version("wangge"),
        "wangge_rev": rev,
        "tipg": _version(tipg_python, "tipg"),
        "uvicorn": importlib.metadata.version("uvicorn"),
        "postgis": postgis,
        "workers": args.workers,
        "tcp_nodelay_fix": args.nodelay,
        "client": "wrk" if args.wrk else "python (httpx)",
        "plan": args.plan,
        "layer_versions": versions,
        "layers": args.layers,
        "tiles": {la: {z: len(t) for z, t in zs.items()} for la, zs in tiles.items()},
        "warm_seconds": args.warm_seconds,
        "warmup_seconds": args.warmup_seconds,
        "cold_min_requests": args.cold_min_requests,
        "cold_max_rounds": args.cold_max_rounds,
        "prime_zoom": args.prime_zoom,
        "argv": sys.argv[1:],
        "loadavg_start": os.getloadavg(),
    }


# --- report -----------------------------------------------------------------------------


def _f(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def markdown(result: dict) -> str:
    meta = result["meta"]
    cells = result["cells"]
    index = {(c["server"], c["layer"], c["zoom"], c["clients"], c["phase"]): c for c in cells}
    order = {name: i for i, name in enumerate(dict.fromkeys(c["server"] for c in cells))}
    cells = sorted(
        cells,
        key=lambda c: (
            c["layer"],
            PHASES.index(c["phase"]),
            c["zoom"],
            c["clients"],
            order[c["server"]],
        ),
    )
    lines = [
        f"Vector tiles, {meta['date']}: {meta['cores']} × {meta['cpu']}; wangge {meta['wangge']}"
        f" ({meta['wangge_rev']}), tipg {meta['tipg']}, uvicorn {meta['uvicorn']} with"
        f" {meta['workers']} workers each"
        + (" (listener with TCP_NODELAY, uvicorn#3149)" if meta.get("tcp_nodelay_fix") else "")
        + f", PostGIS {meta['postgis']}; load from {meta['client']}"
        f" on the same machine. Plan {meta['plan']!r}"
        + "".join(f", {la} v{v}" for la, v in meta.get("layer_versions", {}).items())
        + "; tiles per zoom: "
        + "; ".join(
            f"{la} " + ", ".join(f"z{z} {n}" for z, n in zs.items())
            for la, zs in meta["tiles"].items()
        )
        + f". Warm: {meta['warm_seconds']:g} s per cell after {meta['warmup_seconds']:g} s"
        " of warm-up. Cold: each tile once from a fresh server that has served"
        f" z{meta.get('prime_zoom', '?')} tiles first (a cache miss); first: the same without"
        " those, the first tiles a new process serves. Load average at start and end:"
        f" {meta['loadavg_start'][0]:.1f}, {meta['loadavg_end'][0]:.1f}.",
        "",
        "| layer | zoom | clients | phase | server | requests | errors | p50 ms | p95 ms"
        " | req/s | wangge/tipg req/s |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        ratio = ""
        peer = index.get(("tipg", c["layer"], c["zoom"], c["clients"], c["phase"]))
        if c["server"] != "tipg" and peer and peer["rps"] and c["rps"]:
            ratio = f"{c['rps'] / peer['rps']:.2f}×"
        lines.append(
            f"| {c['layer']} | {c['zoom']} | {c['clients']} | {c['phase']} | {c['server']}"
            f" | {c['requests']:,} | {c['errors']} | {_f(c['p50_ms'])} | {_f(c['p95_ms'])}"
            f" | {_f(c['rps'], 0)} | {ratio} |"
        )
    lines.append("")
    for name, e in result["etag"].items():
        if e.get("etag"):
            lines.append(
                f"- {name}: If-None-Match on a warm z14 tile, {e['requests']} sequential requests:"
                f" statuses {e['statuses']}, p50 {e['p50_ms']:.2f} ms, p95 {e['p95_ms']:.2f} ms."
            )
        else:
            lines.append(f"- {name}: {e.get('note', 'no ETag')}.")
    for name, per_tile in result["checks"].items():
        desc = ", ".join(
            f"{k}: {i['status']}, {i['bytes']:,} B, {i.get('features', 0)} features"
            f" ({i.get('features_in_tile', 0)} within the tile)"
            for k, i in per_tile.items()
        )
        lines.append(f"- {name} middle tiles: {desc}.")
    for w in result["warnings"]:
        lines.append(f"- WARNING: {w}")
    for name, why in result["skipped"].items():
        lines.append(f"- {name} skipped: {why}.")
    lines += targets(result)
    return "\n".join(lines)


def targets(result: dict) -> list[str]:
    """DESIGN.md's tile targets, checked on the wangge rows."""
    rows = [c for c in result["cells"] if c["server"] == "wangge"]
    if not rows:
        return []
    warm = [c for c in rows if c["phase"] == "warm" and c["clients"] == 1]
    cold14 = [c for c in rows if c["phase"] == "cold" and c["zoom"] == 14 and c["clients"] == 1]
    first14 = [c for c in rows if c["phase"] == "first" and c["zoom"] == 14]
    at100 = [c for c in rows if c["clients"] == 100]
    peers = {
        (c["layer"], c["zoom"], c["clients"], c["phase"]): c
        for c in result["cells"]
        if c["server"] == "tipg"
    }
    ahead: dict[str, list[bool]] = {}
    for c in rows:
        k = (c["layer"], c["zoom"], c["clients"], c["phase"])
        if k in peers and c["rps"] and peers[k]["rps"]:
            ahead.setdefault(c["phase"], []).append(c["rps"] > peers[k]["rps"])
    out = ["", "Targets (DESIGN.md):"]
    if warm:
        worst = max(c["p50_ms"] for c in warm)
        verdict = "met" if worst <= 5 else "NOT met"
        out.append(f"- warm p50 ≤ 5 ms (1 client): worst cell {worst:.1f} ms — {verdict}")
    if cold14:
        p50 = max(c["p50_ms"] for c in cold14)
        p95 = max(c["p95_ms"] for c in cold14)
        verdict = "met" if p95 <= 100 else "NOT met"
        out.append(
            f"- cold z14 ≤ 100 ms (1 client): p50 {p50:.1f} ms, p95 {p95:.1f} ms — {verdict} (p95)"
        )
    if first14:
        p50 = max(c["p50_ms"] for c in first14)
        p95 = max(c["p95_ms"] for c in first14)
        out.append(f"  (first z14 tiles of a new process: p50 {p50:.1f} ms, p95 {p95:.1f} ms)")
    if at100:
        errs = sum(c["errors"] for c in at100)
        out.append(f"- 0 errors at 100 clients: {errs} — {'met' if errs == 0 else 'NOT met'}")
    if ahead:
        every = [a for per in ahead.values() for a in per]
        by_phase = ", ".join(f"{phase} {sum(a)} of {len(a)}" for phase, a in ahead.items())
        verdict = "met" if all(every) else "NOT met"
        out.append(f"- throughput ahead of tipg: {by_phase} cells — {verdict}")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/wangge_bench")
    p.add_argument("--plan", default="demo")
    p.add_argument("--setup", action="store_true", help="create the database and load the demo")
    p.add_argument(
        "--servers",
        nargs="+",
        default=["wangge", "tipg"],
        choices=["wangge", "tipg", "wangge-nocache"],
    )
    p.add_argument("--layers", nargs="+", default=None, help="default: buildings grids")
    p.add_argument("--zooms", nargs="+", type=int, default=[12, 14, 16])
    p.add_argument("--clients", nargs="+", type=int, default=[1, 10, 100])
    p.add_argument("--workers", type=int, default=2, help="uvicorn workers for each server")
    p.add_argument("--warm-seconds", type=float, default=None, help="default 10 (quick 3)")
    p.add_argument("--warmup-seconds", type=float, default=None, help="default 2 (quick 1)")
    p.add_argument("--cold-min-requests", type=int, default=None, help="default 20 (quick 5)")
    p.add_argument("--cold-max-rounds", type=int, default=None, help="default 10 (quick 2)")
    p.add_argument(
        "--prime-zoom",
        type=int,
        default=15,
        help="zoom of the tiles that warm a fresh process before a cold cell (not measured)",
    )
    p.add_argument(
        "--no-first",
        dest="first",
        action="store_false",
        help="skip the first-requests phase (fresh process, not primed, 1 client)",
    )
    p.add_argument("--etag-requests", type=int, default=200)
    p.add_argument("--tipg-venv", default=os.environ.get("TIPG_VENV", "/tmp/wangge-bench/tipg"))
    p.add_argument(
        "--no-wrk",
        dest="wrk",
        action="store_false",
        help="warm load from the Python client instead of wrk",
    )
    p.add_argument(
        "--stock-uvicorn",
        dest="nodelay",
        action="store_false",
        help="start uvicorn as it is, without TCP_NODELAY under --workers > 1 (uvicorn#3149)",
    )
    p.add_argument("--quick", action="store_true", help="short run: buildings, fewer seconds")
    p.add_argument("--out", default="/tmp/wangge-bench/tiles.json")
    p.add_argument("--report", metavar="JSON", help="print the table of a saved run and stop")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "layers": ["buildings"] if quick else ["buildings", "grids"],
        "warm_seconds": 3.0 if quick else 10.0,
        "warmup_seconds": 1.0 if quick else 2.0,
        "cold_min_requests": 5 if quick else 20,
        "cold_max_rounds": 2 if quick else 10,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.prime_zoom in args.zooms:
        p.error("--prime-zoom must differ from the measured zooms")
    if args.wrk and not shutil.which("wrk"):
        console.print("[yellow]wrk not found (apt-get install -y wrk): warm load from Python[/]")
        args.wrk = False
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
    console.print(f"raw results: {out}; table: {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
