"""Benchmark: serving a city-sized plan from PostGIS: tiles, point lookups, the editor.

Issue 14 item 5 ("serving a city"): the targets of the demo hold on the city plan made by
``bench/bench_city.py`` (64 streets, 1,000,371 households, ~46k units, 2,493 grids):
cold z14 tiles ≤ 100 ms (p95) and the editor's revalidation ≤ 50 ms (p95).

Reproduce (2 cores; PostgreSQL 15 + PostGIS on 127.0.0.1:5432, trust auth; 2.5–3.5 min):

    python bench/bench_city.py --workers 2          # the plan bench-city-w2, if missing
    python bench/bench_city_serving.py --out /tmp/wangge-bench/city_serving.json
    python bench/bench_city_serving.py --analyze --out /tmp/wangge-bench/city_serving_an.json

The planner's statistics decide how a point lookup runs: a version written after the last
ANALYZE is taken for empty, and the lookup tests every micro-grid of the version per point.
The store analyzes only after a save that adds a fifth of the table, which one city version
of several (or one edit) does not, and autovacuum may be off (conf.d/90-ci.conf here), so
the first command measures the statistics as found (the header says what the planner
expects) and ``--analyze`` runs ``ANALYZE wg_features`` first, as autovacuum would.

Each saved edit is a new version of the plan (on the city it rewrites units, micro-grids,
grids and buildings: ~135k rows); the unit ends where it was, but the versions stay.

Three parts, each on its own freshly started server, one at a time:

- tiles: as in ``bench/bench_tiles.py`` (its launcher and helpers are imported):
  ``uvicorn --factory wangge.api.app:create_app`` with ``--workers`` processes (2),
  reads public, the plan's latest version. For each layer (grids, buildings) and zoom
  (12, 14, 16), the tiles over the layer's extent (at most ``--max-tiles`` of them, a
  seeded sample) are asked by one client on one keep-alive connection of a fresh server
  that has first served its TileJSON and some z15 tiles (so the tile path has run):
  each tile once (cold: a cache miss, cut from PostGIS), then each again (warm: from the
  tile cache of the worker that cut it). A zoom with few tiles gets several fresh servers
  (rounds) until it has ``--cold-min-requests`` cold samples. Also: If-None-Match on a
  warm z14 tile (304, the browser's revalidation of a tile).
- lookups: ``wangge serve --public-reads`` (one process). ``GET /coverage/point`` for
  ``--points`` points on the surface of random micro-grids (each inside), one at a time;
  then ``POST /coverage/points`` with ``--batch`` (1,000) points uniform over the city's
  box, ``--batch-runs`` times. The first request of each kind is reported apart (the first
  lookup reads the four levels' attributes once per version).
- editor: ``wangge serve`` (one process) and an admin API key made for the run (revoked at
  the end). A unit with households on a grid edge, whose micro-grid keeps other units, is
  moved to the neighbouring grid (preferably in the same community). The first request is
  a dry run on the fresh server: it loads the version's state (``Editor._load``: units,
  unit edges, the polygon layers and buildings of the whole city); its round trip and the
  server process's resident memory before and after it (VmRSS, and VmHWM for the peak)
  are reported. Then ``--dry-runs`` dry runs of the same move (apply + revalidation, the
  50 ms target is the server's ``check`` step) and ``--saved`` saved edits, the unit
  moved there and back to its own micro-grid in turn (so the plan's last version has the
  assignment it started with; each saved edit adds a version to the plan). Steps are the
  server's own timings; the round trip is the client's.
- load profile (in this process, not over HTTP; ``--no-profile`` skips it): each layer
  ``Editor._load`` reads, timed through ``Store.query``, and ``Editor.state`` as a whole.

Errors (any status >= 400, a timeout, a connection error) are counted and the first few
are kept with route, status and body. The table is printed as markdown and written beside
``--out`` (``.md``); raw figures in ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_tiles import (  # noqa: E402  (the tiles benchmark's launcher and helpers)
    _free_port,
    centre_tile,
    layer_bbox,
    layer_version,
    make_servers,
    prewarm,
    prime,
    revalidate,
    running,
    tiles_over,
)

REPO = HERE.parent
TIMEOUT_S = 120.0
#: Errors kept with their text, per part.
KEEP_ERRORS = 5


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values, q: float) -> float | None:
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else None


def stats(values) -> dict:
    return {"n": len(values), "p50_ms": pct(values, 50), "p95_ms": pct(values, 95)}


class Errors:
    """Counts errors and keeps the first few with what was asked and what came back."""

    def __init__(self) -> None:
        self.count = 0
        self.kept: list[dict] = []

    def note(self, part: str, method: str, path: str, status: int | None, text: str) -> None:
        self.count += 1
        if len(self.kept) < KEEP_ERRORS:
            self.kept.append(
                {
                    "part": part,
                    "request": f"{method} {path[:200]}",
                    "status": status,
                    "error": text[:600],
                }
            )
            log(f"ERROR {part}: {method} {path[:120]} → {status}: {text[:300]}")


def timed(client: httpx.Client, errors: Errors, part: str, method: str, path: str, **kw):
    """One request: (seconds, response or None)."""
    t = time.perf_counter()
    try:
        r = client.request(method, path, **kw)
    except httpx.HTTPError as exc:
        dt = time.perf_counter() - t
        errors.note(part, method, path, None, f"{type(exc).__name__}: {exc}")
        return dt, None
    dt = time.perf_counter() - t
    if r.status_code >= 400:
        errors.note(part, method, path, r.status_code, r.text)
    return dt, r


# --- the plan ---------------------------------------------------------------------------


def plan_facts(db: str, plan: str) -> dict:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT max(version) FROM wg_versions WHERE plan_id = %s", [plan]
        ).fetchone()
        if row[0] is None:
            sys.exit(
                f"plan {plan!r} is not in {db}; make it with `python bench/bench_city.py"
                " --workers 2`"
            )
        version = int(row[0])
        counts = dict(
            conn.execute(
                "SELECT layer, count FROM wg_layers WHERE plan_id = %s AND version = %s",
                [plan, version],
            ).fetchall()
        )
        households = conn.execute(
            "SELECT meta->'city'->>'households' FROM wg_versions"
            " WHERE plan_id = %s AND version = %s",
            [plan, version],
        ).fetchone()[0]
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        planner = planner_state(conn, plan, version)
        rows = conn.execute(
            "SELECT count(*) FROM wg_features WHERE plan_id = %s", [plan]
        ).fetchone()[0]
        table_rows = conn.execute("SELECT count(*) FROM wg_features").fetchone()[0]
    return {
        "plan": plan,
        "version": version,
        "households": int(households) if households else None,
        "layers": counts,
        "postgis": postgis,
        "plan_rows_all_versions": int(rows),
        "wg_features_rows": int(table_rows),
        **planner,
    }


def planner_state(conn: psycopg.Connection, plan: str, version: int) -> dict:
    """What the planner believes of the version's micro-grids (its estimate decides between
    the GiST index and a scan of every micro-grid per point), and how fresh that is."""
    sv = stored_version(conn, plan, version, "microgrids")
    (plan_json,) = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM wg_features"
        " WHERE plan_id = %s AND version = %s AND layer = 'microgrids'",
        [plan, sv],
    ).fetchone()
    stat = conn.execute(
        "SELECT n_live_tup, n_mod_since_analyze, last_analyze, last_autoanalyze"
        " FROM pg_stat_user_tables WHERE relname = 'wg_features'"
    ).fetchone()
    return {
        "microgrids_planner_estimate": int(plan_json[0]["Plan"]["Plan Rows"]),
        "autovacuum": conn.execute("SHOW autovacuum").fetchone()[0],
        "rows_modified_since_analyze": int(stat[1]),
        "last_analyze": str(stat[2]),
        "last_autoanalyze": str(stat[3]),
    }


def stored_version(conn: psycopg.Connection, plan: str, version: int, layer: str) -> int:
    """The version whose rows hold ``layer`` of ``version`` (a layer may be kept)."""
    row = conn.execute(
        "SELECT coalesce(source, version) FROM wg_layers"
        " WHERE plan_id = %s AND version = %s AND layer = %s",
        [plan, version, layer],
    ).fetchone()
    return int(row[0])


def lookup_points(db: str, plan: str, version: int, n: int, seed: int) -> list[tuple]:
    """``n`` points on the surface of random micro-grids (each inside the plan)."""
    with psycopg.connect(db, autocommit=True) as conn:
        sv = stored_version(conn, plan, version, "microgrids")
        conn.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        rows = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM wg_features"
            " WHERE plan_id = %s AND version = %s AND layer = 'microgrids'"
            " ORDER BY random() LIMIT %s) s",
            [plan, sv, n],
        ).fetchall()
    return [(float(x), float(y)) for x, y in rows]


def boundary_move(db: str, plan: str, version: int, seed: int) -> dict:
    """A unit with households on a grid edge whose micro-grid keeps other units, and the
    neighbouring grid it moves to (one in the same community when there is one)."""
    with psycopg.connect(db, autocommit=True) as conn:
        su = stored_version(conn, plan, version, "units")
        se = stored_version(conn, plan, version, "unit_edges")
        # two plain reads joined here: a join in SQL is at the mercy of the statistics
        # (a version newer than the last ANALYZE is taken for empty: a nested loop)
        units = {
            code: (micro, grid, community, float(hh or 0))
            for code, micro, grid, community, hh in conn.execute(
                "SELECT code, parent_code, properties->>'grid_code',"
                " properties->>'community_code', (properties->>'households')::float8"
                " FROM wg_features WHERE plan_id = %s AND version = %s AND layer = 'units'",
                [plan, su],
            )
        }
        edges = conn.execute(
            "SELECT properties->>'a', properties->>'b' FROM wg_features"
            " WHERE plan_id = %s AND version = %s AND layer = 'unit_edges'",
            [plan, se],
        ).fetchall()
    per_micro: dict[str, int] = {}
    for micro, *_ in units.values():
        per_micro[micro] = per_micro.get(micro, 0) + 1
    rows = []
    for a, b in edges:
        for x, y in ((a, b), (b, a)):
            ux, uy = units[x], units[y]
            if ux[1] != uy[1] and ux[3] > 0 and per_micro[ux[0]] >= 3:
                rows.append((x, ux[0], ux[1], uy[1], ux[2] == uy[2]))
    if not rows:
        sys.exit("no boundary unit to move")
    same = [r for r in rows if r[4]] or rows
    unit, micro, src, dst, same_community = random.Random(seed).choice(sorted(set(same)))
    return {
        "unit": unit,
        "micro": micro,
        "from_grid": src,
        "to_grid": dst,
        "same_community": bool(same_community),
        "street": micro[:9],
        "candidates": len(rows),
    }


def unit_micro(db: str, plan: str, unit: str) -> tuple[int, str]:
    """The latest version of the plan and the micro-grid ``unit`` has in it."""
    with psycopg.connect(db, autocommit=True) as conn:
        version = conn.execute(
            "SELECT max(version) FROM wg_versions WHERE plan_id = %s", [plan]
        ).fetchone()[0]
        su = stored_version(conn, plan, version, "units")
        micro = conn.execute(
            "SELECT parent_code FROM wg_features WHERE plan_id = %s AND version = %s"
            " AND layer = 'units' AND code = %s",
            [plan, su, unit],
        ).fetchone()[0]
    return int(version), micro


# --- wangge serve -----------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("WANGGE_", "TIPG_"))}


@contextlib.contextmanager
def wangge_serve(store: str, logdir: Path, public_reads: bool):
    """``wangge serve`` (one process, ``python -m wangge``, so its pid is the server's)."""
    port = _free_port()
    argv = [sys.executable, "-m", "wangge", "serve", "--store", store, "--port", str(port)]
    if public_reads:
        argv.append("--public-reads")
    logf = open(logdir / "wangge-serve.log", "ab")  # noqa: SIM115 (kept by the child)
    proc = subprocess.Popen(
        argv, env=_env(), cwd=logdir, stdout=logf, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    logf.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"wangge serve exited; see {logdir / 'wangge-serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("wangge serve did not start in 90 s")
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process now (VmRSS) and at its peak (VmHWM), MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0]) / 1024
    return out


# --- tiles ------------------------------------------------------------------------------


def part_tiles(args: argparse.Namespace, scratch: Path, errors: Errors) -> dict:
    targs = argparse.Namespace(db=args.db, plan=args.plan, workers=args.workers, nodelay=True)
    (server,) = make_servers(["wangge"], targs)
    rng = random.Random(args.seed)
    cells, etags = [], {}
    with psycopg.connect(args.db, autocommit=True) as conn:
        bboxes = {}
        for layer in args.layers:
            v = layer_version(conn, args.plan, layer)
            bboxes[layer] = layer_bbox(conn, args.plan, v, layer)
        prewarm(conn, args.plan)  # PostgreSQL's buffers warm, as in the tiles benchmark
    for layer in args.layers:
        for z in args.zooms:
            every = tiles_over(bboxes[layer], z)
            tiles = every if len(every) <= args.max_tiles else rng.sample(every, args.max_tiles)
            rounds = max(
                1, min(args.cold_max_rounds, math.ceil(args.cold_min_requests / len(tiles)))
            )
            cold, warm, sizes = [], [], []
            for _ in range(rounds):
                with running(server, scratch, args.workers):
                    prime(server, layer, tiles_over(bboxes[layer], 15))
                    paths = [server.tile_path(layer, *t) for t in tiles]
                    headers = {"Accept-Encoding": "identity"}
                    with httpx.Client(
                        base_url=server.base, timeout=TIMEOUT_S, headers=headers
                    ) as client:  # one keep-alive connection: one worker cuts and caches
                        for phase, out in (("cold", cold), ("warm", warm)):
                            for path in paths:
                                dt, r = timed(client, errors, f"tiles {phase}", "GET", path)
                                out.append(dt * 1000)
                                if phase == "cold" and r is not None and r.status_code == 200:
                                    sizes.append(len(r.content))
                    if z == 14 and layer not in etags:
                        mid = centre_tile(bboxes[layer], 14)
                        etags[layer] = revalidate(
                            server.base, server.tile_path(layer, *mid), args.etag_requests
                        )
            for phase, values in (("cold", cold), ("warm", warm)):
                cells.append(
                    {
                        "layer": layer,
                        "zoom": z,
                        "phase": phase,
                        "tiles": len(tiles),
                        "tiles_over_extent": len(every),
                        "rounds": rounds,
                        **stats(values),
                        "max_ms": max(values) if values else None,
                        "mean_bytes": float(np.mean(sizes)) if sizes else None,
                        "max_bytes": max(sizes) if sizes else None,
                    }
                )
                c = cells[-1]
                log(
                    f"tiles {layer} z{z} {phase}: {c['n']} requests, p50 {c['p50_ms']:.1f} ms,"
                    f" p95 {c['p95_ms']:.1f} ms, max {c['max_ms']:.1f} ms"
                )
    return {"cells": cells, "etag": etags}


# --- point lookups ----------------------------------------------------------------------


def part_lookups(args: argparse.Namespace, scratch: Path, facts: dict, errors: Errors) -> dict:
    pts = lookup_points(args.db, args.plan, facts["version"], args.points + 1, args.seed)
    with psycopg.connect(args.db, autocommit=True) as conn:
        x0, y0, x1, y1 = layer_bbox(
            conn, args.plan, layer_version(conn, args.plan, "grids"), "grids"
        )
    rng = np.random.default_rng(args.seed)
    lon, lat = rng.uniform(x0, x1, args.batch), rng.uniform(y0, y1, args.batch)
    body = {
        "points": [
            {"id": i, "lon": float(a), "lat": float(b)}
            for i, (a, b) in enumerate(zip(lon, lat, strict=True))
        ]
    }
    q = f"plan={args.plan}"
    out: dict = {}
    with wangge_serve(args.store, scratch, public_reads=True) as (proc, base):
        mem0 = memory_mb(proc.pid)
        with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
            single = []
            for i, (x, y) in enumerate(pts):
                path = f"/coverage/point?{q}&lon={x:.7f}&lat={y:.7f}"
                dt, r = timed(client, errors, "lookup", "GET", path)
                if i == 0:
                    out["point_first_ms"] = dt * 1000
                    out["memory_after_first_point_mb"] = memory_mb(proc.pid)
                else:
                    single.append(dt * 1000)
            out["point"] = stats(single)
            batch, inside = [], None
            for i in range(args.batch_runs + 1):
                dt, r = timed(
                    client, errors, "lookup batch", "POST", f"/coverage/points?{q}", json=body
                )
                if r is not None and r.status_code == 200:
                    inside = r.json()["inside"]
                if i == 0:
                    out["batch_first_ms"] = dt * 1000
                else:
                    batch.append(dt * 1000)
            out["batch"] = {**stats(batch), "points": args.batch, "inside": inside}
        out["memory_idle_mb"] = mem0
        out["memory_end_mb"] = memory_mb(proc.pid)
    log(
        f"lookups: first {out['point_first_ms']:.0f} ms, then p50 {out['point']['p50_ms']:.1f} ms,"
        f" p95 {out['point']['p95_ms']:.1f} ms; batch of {args.batch}: first"
        f" {out['batch_first_ms']:.0f} ms, then p50 {out['batch']['p50_ms']:.0f} ms"
    )
    return out


# --- the editor -------------------------------------------------------------------------


def make_key(store: str, name: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "wangge", "users", "add", name, "--role", "admin", "--store", store],
        env=_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return made.stdout.strip().splitlines()[-1].strip()


def revoke_key(store: str, name: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "wangge", "users", "revoke", name, "--store", store],
        env=_env(), check=False, capture_output=True,
    )  # fmt: skip


def part_editor(args: argparse.Namespace, scratch: Path, facts: dict, errors: Errors) -> dict:
    move = boundary_move(args.db, args.plan, facts["version"], args.seed)
    log(
        f"editor: unit {move['unit']} ({move['micro']}) from grid {move['from_grid']} to"
        f" {move['to_grid']} (street {move['street']}, same community: {move['same_community']})"
    )
    name = f"bench-city-serving-{os.getpid()}"
    key = make_key(args.store, name)
    out: dict = {"move": move}
    route = f"/plans/{args.plan}/edits"
    try:
        with wangge_serve(args.store, scratch, public_reads=False) as (proc, base):
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, timeout=TIMEOUT_S, headers=headers) as client:
                version = facts["version"]
                to_dst = {"unit": move["unit"], "to": move["to_grid"]}
                to_src = {"unit": move["unit"], "to": move["micro"]}
                # the first edit on a fresh server loads the version's state
                out["memory_idle_mb"] = memory_mb(proc.pid)
                body = {"base_version": version, "moves": [to_dst], "dry_run": True}
                dt, r = timed(client, errors, "first edit", "POST", route, json=body)
                out["first_edit_ms"] = dt * 1000
                out["memory_after_load_mb"] = memory_mb(proc.pid)
                if r is not None and r.status_code < 400:
                    out["first_edit_timings"] = r.json()["timings"]
                    out["first_edit_violations"] = len(r.json()["violations"])
                log(
                    f"first edit (loads the state): {dt:.2f} s; memory"
                    f" {out['memory_idle_mb']['VmRSS']:.0f} →"
                    f" {out['memory_after_load_mb']['VmRSS']:.0f} MB"
                    f" (peak {out['memory_after_load_mb']['VmHWM']:.0f} MB)"
                )
                for mode, n in (("dry run", args.dry_runs), ("saved", args.saved)):
                    times: dict[str, list[float]] = {"round trip": [], "rest": []}
                    for i in range(n):
                        dry = mode == "dry run"
                        moves = [to_dst if (dry or i % 2 == 0) else to_src]
                        body = {"base_version": version, "moves": moves, "dry_run": dry}
                        dt, r = timed(client, errors, f"edit {mode}", "POST", route, json=body)
                        if r is None or r.status_code >= 400:
                            continue
                        times["round trip"].append(dt * 1000)
                        answer = r.json()
                        if not dry:
                            version = answer["version"]["version"]
                        for step, ms in answer["timings"].items():
                            times.setdefault(step, []).append(ms)
                        # what the server's steps do not cover: the request, the answer
                        # (grid rows, violations with boxes, JSON) and the tile refresh
                        times["rest"].append(dt * 1000 - sum(answer["timings"].values()))
                    rest = times.pop("rest")
                    out[mode] = {step: stats(v) for step, v in times.items()}
                    out[mode]["rest"] = stats(rest)
                    rt = out[mode]["round trip"]
                    log(
                        f"{mode}: {rt['n']} edits, round trip p50 {rt['p50_ms']},"
                        f" p95 {rt['p95_ms']}"
                    )
            out["memory_end_mb"] = memory_mb(proc.pid)
    finally:
        revoke_key(args.store, name)
    last, micro = unit_micro(args.db, args.plan, move["unit"])
    out["after"] = {"latest_version": last, "unit_micro": micro, "restored": micro == move["micro"]}
    return out


# --- what Editor._load reads, in this process -------------------------------------------


def part_profile(args: argparse.Namespace, facts: dict) -> dict:
    from wangge.data.store import open_store
    from wangge.editing import Editor
    from wangge.plan_state import POLYGONS

    store = open_store(args.store)
    try:
        v = store.resolve(args.plan)
        out: dict = {"version": v.version, "layers": {}}
        for layer in ("units", "unit_edges", *POLYGONS, "buildings"):
            t = time.perf_counter()
            frame = store.query(v.plan_id, v.version, layer).frame
            out["layers"][layer] = {"rows": len(frame), "s": time.perf_counter() - t}
        del frame
        t = time.perf_counter()
        Editor(store).state(v.plan_id, v.version)
        out["state_s"] = time.perf_counter() - t
    finally:
        store.close()
    log(f"Editor.state in process: {out['state_s']:.2f} s")
    return out


# --- report -----------------------------------------------------------------------------


def _f(v, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def markdown(result: dict) -> str:
    m, f = result["meta"], result["facts"]
    shown = ("units", "unit_edges", "grids", "microgrids", "buildings")
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(f["layers"].items()) if k in shown)
    lines = [
        f"City plan {f['plan']!r} v{f['version']} ({_f(f['households'], 0)} households;"
        f" {counts})"
        f" in PostGIS {f['postgis']} ({f['wg_features_rows']:,} rows in wg_features);"
        f" {m['date']}, {m['cores']} × {m['cpu']}, wangge {m['rev']}, load average"
        f" {m['loadavg_start'][0]:.1f} at start, {m['loadavg_end'][0]:.1f} at end;"
        f" {m['seconds']:.0f} s in all.",
        "",
        f"Planner statistics: autovacuum {f['autovacuum']}, last ANALYZE {f['last_analyze']}"
        f" (autoanalyze {f['last_autoanalyze']}), {f['rows_modified_since_analyze']:,} rows"
        f" written since; the planner expects {f['microgrids_planner_estimate']:,} rows for"
        f" the version's micro-grids (it has {f['layers'].get('microgrids', 0):,})"
        + (f"; ANALYZE run first ({m['analyze_s']:.1f} s)" if "analyze_s" in m else "")
        + ".",
        "",
    ]
    t = result.get("tiles")
    if t:
        lines += [
            f"Tiles: uvicorn with {m['workers']} workers (as bench_tiles.py), one client on one"
            " connection; cold = first request of the tile on a fresh, primed server; warm = the"
            " same tile again (tile cache).",
            "",
            "| layer | zoom | tiles (of extent) | rounds | phase | requests | p50 ms | p95 ms"
            " | max ms | mean KB |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for c in t["cells"]:
            kb = None if c["mean_bytes"] is None else c["mean_bytes"] / 1024
            lines.append(
                f"| {c['layer']} | {c['zoom']} | {c['tiles']} ({c['tiles_over_extent']}) |"
                f" {c['rounds']} | {c['phase']} | {c['n']} | {_f(c['p50_ms'])} | {_f(c['p95_ms'])}"
                f" | {_f(c['max_ms'])} | {_f(kb)} |"
            )
        for layer, e in t["etag"].items():
            if e.get("etag"):
                lines.append(
                    f"- {layer} z14 If-None-Match, {e['requests']} requests: {e['statuses']},"
                    f" p50 {e['p50_ms']:.2f} ms, p95 {e['p95_ms']:.2f} ms"
                )
        lines.append("")
    lk = result.get("lookups")
    if lk:
        lines += [
            "Point lookups: `wangge serve --public-reads` (one process).",
            "",
            "| request | first ms | n | p50 ms | p95 ms |",
            "|---|---:|---:|---:|---:|",
            f"| GET /coverage/point | {_f(lk['point_first_ms'])} | {lk['point']['n']} |"
            f" {_f(lk['point']['p50_ms'])} | {_f(lk['point']['p95_ms'])} |",
            f"| POST /coverage/points ({lk['batch']['points']:,} points,"
            f" {lk['batch']['inside']} inside)"
            f" | {_f(lk['batch_first_ms'])} | {lk['batch']['n']} | {_f(lk['batch']['p50_ms'])} |"
            f" {_f(lk['batch']['p95_ms'])} |",
            "",
            f"Server memory (VmRSS): {lk['memory_idle_mb']['VmRSS']:.0f} MB idle,"
            f" {lk['memory_after_first_point_mb']['VmRSS']:.0f} MB after the first lookup,"
            f" {lk['memory_end_mb']['VmRSS']:.0f} MB at the end"
            f" (peak {lk['memory_end_mb']['VmHWM']:.0f} MB).",
            "",
        ]
    ed = result.get("editor")
    if ed:
        mv = ed["move"]
        lines += [
            f"Editor: `wangge serve` (one process), admin key; unit {mv['unit']} moved from"
            f" grid {mv['from_grid']} to {mv['to_grid']} (street {mv['street']}, same community:"
            f" {mv['same_community']}) and, for saved edits, back to micro-grid {mv['micro']}.",
            "",
            "- first edit on a fresh server (dry run; loads the state):"
            f" {ed['first_edit_ms'] / 1000:.2f} s"
            f" round trip (server steps {ed.get('first_edit_timings')});"
            f" server memory {ed['memory_idle_mb']['VmRSS']:.0f} MB →"
            f" {ed['memory_after_load_mb']['VmRSS']:.0f} MB"
            f" (+{ed['memory_after_load_mb']['VmRSS'] - ed['memory_idle_mb']['VmRSS']:.0f} MB;"
            f" peak {ed['memory_after_load_mb']['VmHWM']:.0f} MB);"
            f" {ed['memory_end_mb']['VmRSS']:.0f} MB after all edits"
            f" (peak {ed['memory_end_mb']['VmHWM']:.0f} MB)",
            "",
            "| mode | step | n | p50 ms | p95 ms |",
            "|---|---|---:|---:|---:|",
        ]
        for mode in ("dry run", "saved"):
            for step, s in ed.get(mode, {}).items():
                if isinstance(s, dict):
                    lines.append(
                        f"| {mode} | {step} | {s['n']} | {_f(s['p50_ms'])} | {_f(s['p95_ms'])} |"
                    )
        lines.append("")
        lines.append(
            "- rest = round trip − the server's steps: the request and the answer (every"
            " grid's row, violations with their boxes, JSON) and, when saved, the tile refresh"
        )
        a = ed["after"]
        lines.append(
            f"- after the run: latest version {a['latest_version']}, the unit in {a['unit_micro']}"
            f" ({'as before' if a['restored'] else 'NOT as before'})"
        )
        lines.append("")
    pr = result.get("profile")
    if pr:
        parts = ", ".join(f"{k} {v['rows']:,} rows {v['s']:.2f} s" for k, v in pr["layers"].items())
        lines += [
            f"What `Editor._load` reads (in process, Store.query per layer): {parts};"
            f" `Editor.state` in all {pr['state_s']:.2f} s.",
            "",
        ]
    lines += targets(result)
    errs = result["errors"]
    lines.append(f"- errors: {errs['count']}")
    for e in errs["kept"]:
        lines.append(f"  - {e['part']}: {e['request']} → {e['status']}: {e['error']}")
    return "\n".join(lines)


def targets(result: dict) -> list[str]:
    out = ["Targets:"]
    t = result.get("tiles")
    if t:
        cold14 = [c for c in t["cells"] if c["zoom"] == 14 and c["phase"] == "cold"]
        if cold14:
            worst = max(c["p95_ms"] for c in cold14)
            out.append(
                f"- cold z14 ≤ 100 ms (p95): worst layer {worst:.1f} ms —"
                f" {'met' if worst <= 100 else 'NOT met'}"
            )
        cold = [c for c in t["cells"] if c["phase"] == "cold"]
        worst = max(cold, key=lambda c: c["p95_ms"])
        out.append(
            f"  (worst cold cell z12–z16: {worst['layer']} z{worst['zoom']}"
            f" p95 {worst['p95_ms']:.1f} ms)"
        )
    ed = result.get("editor")
    if ed:
        for mode in ("dry run", "saved"):
            check = ed.get(mode, {}).get("check")
            if check and check["n"]:
                out.append(
                    f"- revalidation ≤ 50 ms (p95, server's check step, {mode}):"
                    f" {check['p95_ms']:.1f} ms — {'met' if check['p95_ms'] <= 50 else 'NOT met'}"
                )
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/wangge_bench")
    p.add_argument("--plan", default="bench-city-w2")
    p.add_argument("--parts", nargs="+", default=["tiles", "lookups", "editor", "profile"])
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--layers", nargs="+", default=["grids", "buildings"])
    p.add_argument("--zooms", nargs="+", type=int, default=[12, 14, 16])
    p.add_argument("--workers", type=int, default=2, help="uvicorn workers of the tile server")
    p.add_argument("--max-tiles", type=int, default=256, help="tiles per layer and zoom")
    p.add_argument("--cold-min-requests", type=int, default=18)
    p.add_argument("--cold-max-rounds", type=int, default=4)
    p.add_argument("--etag-requests", type=int, default=100)
    p.add_argument("--points", type=int, default=200, help="single point lookups")
    p.add_argument("--batch", type=int, default=1000, help="points in one batch lookup")
    p.add_argument("--batch-runs", type=int, default=5)
    p.add_argument("--dry-runs", type=int, default=40)
    p.add_argument("--saved", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE wg_features first (as autovacuum would; default: the statistics as found)",
    )
    p.add_argument("--out", default="/tmp/wangge-bench/city_serving.json")
    p.add_argument("--report", metavar="JSON", help="print the table of a saved run and stop")
    args = p.parse_args(argv)
    if args.no_profile and "profile" in args.parts:
        args.parts.remove("profile")
    if 15 in args.zooms:
        p.error("z15 primes the tile servers: measure other zooms")
    args.store = args.db.replace("postgresql://", "postgresql+psycopg://", 1)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = out.parent / "bench_city_serving_run"
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
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
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpu": re.sub(r"\s+", " ", cpu),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "rev": rev,
        "workers": args.workers,
        "argv": sys.argv[1:],
        "loadavg_start": os.getloadavg(),
    }
    if args.analyze:  # what autovacuum would have done by now (it is off on some machines)
        with psycopg.connect(args.db, autocommit=True) as conn:
            t = time.perf_counter()
            conn.execute("ANALYZE wg_features")
            meta["analyze_s"] = time.perf_counter() - t
        log(f"ANALYZE wg_features: {meta['analyze_s']:.1f} s")
    facts = plan_facts(args.db, args.plan)
    log(f"plan {args.plan} v{facts['version']}: {facts['layers']}")
    errors = Errors()
    result: dict = {"meta": meta, "facts": facts}
    if "tiles" in args.parts:
        result["tiles"] = part_tiles(args, scratch, errors)
    if "lookups" in args.parts:
        result["lookups"] = part_lookups(args, scratch, facts, errors)
    if "editor" in args.parts:
        result["editor"] = part_editor(args, scratch, facts, errors)
    if "profile" in args.parts:
        result["profile"] = part_profile(args, facts)
    meta["loadavg_end"] = os.getloadavg()
    meta["seconds"] = time.perf_counter() - t0
    result["errors"] = {"count": errors.count, "kept": errors.kept}
    out.write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    log(f"raw results: {out}; table: {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
