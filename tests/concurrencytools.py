"""Many planners editing one plan at once, against a real multi-worker server.

Each simulated planner holds an account scoped to one community, two neighbouring grids
of it and a few boundary units between them that no other planner touches. It loops
until a deadline: read the latest version (``GET /plans/{id}/state``), move one of its
units to the other grid (``POST /plans/{id}/edits`` with that ``base_version``), and on
409 read again and retry the same move. Since only its owner moves a unit, the last 201
for a unit says where the unit must be in the last version; a 201 whose move is missing
from the last version is a lost update (:func:`lost_updates`); :func:`check_versions`
checks every saved version the same way.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from e2e_server import Server, free_port, server_env, uvicorn_command

from wangge.data.accounts import make_account, new_key
from wangge.data.store import Store

#: Grid sequences from 901 are dedicated grids, outside the household bands: not edited.
DEDICATED = "901"


@dataclass
class Planner:
    """One simulated planner: its account, community, two grids and its own units."""

    name: str
    key: str
    community: str
    grids: tuple[str, str]
    #: unit code → the grid it starts in (one of ``grids``)
    units: dict[str, str]


@dataclass
class Tally:
    """What the planners saw, gathered under one lock."""

    attempted: int = 0
    created: int = 0
    conflicts: int = 0
    other: Counter = field(default_factory=Counter)
    #: client-side failures (timeouts, refused connections), by exception name
    failures: Counter = field(default_factory=Counter)
    #: saved version → (unit, micro-grid it was moved to), from each 201's answer
    saved: dict[int, tuple[str, str]] = field(default_factory=dict)
    #: 201s that did not report exactly the move asked for, or reused a version number
    anomalies: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    #: (unit, grid asked for, how it ended) of each POST that got neither 201 nor 409: such
    #: a request may still have saved, and a lost update then names it
    unanswered: list[tuple[str, str, str]] = field(default_factory=list)
    #: seconds each answer took: "state" (GET), "201" and "409" (POST)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self) -> str:
        other = dict(sorted(self.other.items()))
        return (
            f"attempted {self.attempted}, 201 {self.created}, 409 {self.conflicts}, "
            f"other {other or 0}, client failures {dict(self.failures) or 0}; median s "
            + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(self.seconds.items()))
        )


def serve(target: str, log: Path, workers: int = 2, timeout: float = 90) -> Server:
    """``uvicorn wangge.api.app:create_app --factory --workers N`` on ``target`` (a
    GeoPackage path or a database URL, given as ``WANGGE_STORE``), once ``/healthz``
    answers and every worker process is up."""
    port = free_port()
    env = server_env(target)
    cmd = uvicorn_command(port, workers)
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    start = time.perf_counter()
    try:
        while True:
            if proc.poll() is not None:
                code = proc.returncode
                raise RuntimeError(f"the server exited with {code}:\n{server.log_tail()}")
            try:
                up = httpx.get(server.url + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                up = False
            if up and len(worker_pids(proc.pid)) >= workers:
                return server
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"the server was not up in {timeout} s:\n{server.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        server.stop()  # never leave a server behind, whatever went wrong
        raise


def worker_pids(parent: int) -> list[int]:
    """The uvicorn worker processes under ``parent`` (Linux: read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU time each process has used so far, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def assign(store: Store, plan_id: str, planners: int, units_each: int = 2) -> list[Planner]:
    """Give ``planners`` planners each a distinct pair of neighbouring basic grids of one
    community (communities taken in turn) and ``units_each`` boundary units between them,
    alternately from either side, no unit given twice. Each planner gets an account scoped
    to its community, added to the store's book with a fresh key."""
    units = store.query(plan_id, store.latest(plan_id), "units").frame
    edges = store.query(plan_id, store.latest(plan_id), "unit_edges").frame
    grid = dict(zip(units["code"].astype(str), units["grid_code"].astype(str), strict=True))
    sizes = Counter(grid.values())
    # boundary units per ordered pair of basic grids of one community: (from, to) → units
    across: dict[tuple[str, str], list[str]] = {}
    for a, b in zip(edges["a"].astype(str), edges["b"].astype(str), strict=True):
        for u, v in ((a, b), (b, a)):
            gu, gv = grid[u], grid[v]
            if gu == gv or gu[:12] != gv[:12] or max(gu[-3:], gv[-3:]) >= DEDICATED:
                continue
            if sizes[gu] > 2 * units_each + 2:  # a grid never empties
                across.setdefault((gu, gv), []).append(u)
    pairs: dict[str, list[tuple[str, str]]] = {}
    for gu, gv in sorted(across):
        if gu < gv and (gv, gu) in across:
            pairs.setdefault(gu[:12], []).append((gu, gv))
    taken: set[str] = set()
    out: list[Planner] = []
    rng = random.Random(13)
    queue = {c: rng.sample(p, len(p)) for c, p in sorted(pairs.items())}
    while len(out) < planners and any(queue.values()):
        for community, left in queue.items():
            if len(out) == planners or not left:
                continue
            ga, gb = left.pop()
            # a unit of ga touching gb, and one of gb touching ga, and so on
            sides = [sorted(set(across[(ga, gb)]) - taken), sorted(set(across[(gb, ga)]) - taken)]
            if min(len(sides[0]), len(sides[1])) < (units_each + 1) // 2:
                continue
            mine = {}
            for i in range(units_each):
                side = sides[i % 2]
                u = side.pop(rng.randrange(len(side)))
                mine[u] = grid[u]
            taken |= set(mine)
            name = f"{plan_id}-p{len(out) + 1:02d}"
            key = new_key()
            store.book.add(make_account(name, "planner", [community]), key)
            out.append(Planner(name, key, community, (ga, gb), mine))
    if len(out) < planners:
        raise AssertionError(f"only {len(out)} planners could be given grids of their own")
    return out


def storm(
    url: str,
    plan_id: str,
    planners: list[Planner],
    seconds: float,
    at_least: int = 0,
    longest: float | None = None,
    timeout: float = 60,
) -> Tally:
    """Run every planner in its own thread for ``seconds``, and on past them (up to
    ``longest`` in all) while fewer than ``at_least`` edits were saved, so that a slow
    machine still gives the checks something to check; what the planners saw."""
    tally = Tally()
    start = time.monotonic()
    longest = max(seconds, longest or seconds)

    def going() -> bool:
        spent = time.monotonic() - start
        return spent < seconds or (spent < longest and tally.created < at_least)

    threads = [
        threading.Thread(target=_plan, args=(url, plan_id, p, going, timeout, tally), name=p.name)
        for p in planners
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(longest + 3 * timeout)
    assert not any(t.is_alive() for t in threads), "a planner did not stop"
    return tally


def _plan(
    url: str, plan_id: str, me: Planner, going: Callable[[], bool], timeout: float, tally: Tally
) -> None:
    """One planner's loop: read the latest version, move a unit, retry the same move on 409."""
    where = dict(me.units)  # unit → its grid now, as this planner's 201s left it
    order = sorted(me.units)
    rng = random.Random(me.name)
    turn = 0
    headers = {"Authorization": f"Bearer {me.key}"}
    # a fresh connection for every request, so that each may land on either worker
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, headers=headers, timeout=timeout, limits=fresh) as client:
        while going():
            unit = order[turn % len(order)]
            to = me.grids[1] if where[unit] == me.grids[0] else me.grids[0]
            try:
                clock = time.perf_counter()
                state = client.get(f"/plans/{plan_id}/state")
                read = time.perf_counter() - clock
                if state.status_code != 200:
                    _other(tally, state, "GET state")
                    time.sleep(0.2)
                    continue
                base = state.json()["version"]
                body = {
                    "base_version": base,
                    "moves": [{"unit": unit, "to": to}],
                    "comment": f"{me.name}: {unit} to {to}",
                }
            except httpx.HTTPError as exc:
                with tally.lock:
                    tally.failures[type(exc).__name__] += 1
                continue
            try:
                clock = time.perf_counter()
                r = client.post(f"/plans/{plan_id}/edits", json=body)
                wrote = time.perf_counter() - clock
            except httpx.HTTPError as exc:
                with tally.lock:
                    tally.failures[type(exc).__name__] += 1
                    tally.unanswered.append((unit, to, f"no answer ({type(exc).__name__})"))
                continue
            with tally.lock:
                tally.attempted += 1
                tally.seconds.setdefault("state", []).append(read)
                tally.seconds.setdefault(str(r.status_code), []).append(wrote)
                if r.status_code == 201:
                    tally.created += 1
                    answer = r.json()
                    number = answer["version"]["version"]
                    moved = [(m["unit"], m["to"]) for m in answer["moved"]]
                    if len(moved) != 1 or moved[0][0] != unit or moved[0][1][:15] != to:
                        tally.anomalies.append(f"v{number}: asked {unit}→{to}, moved {moved}")
                    if number != base + 1 or number in tally.saved:
                        tally.anomalies.append(f"v{number} saved on base {base}, seen twice?")
                    tally.saved[number] = (unit, moved[0][1] if moved else "")
                    where[unit] = to
                    turn += 1
                elif r.status_code == 409:
                    tally.conflicts += 1
                else:
                    tally.other[r.status_code] += 1
                    tally.unanswered.append((unit, to, f"answered {r.status_code}"))
                    if len(tally.samples) < 5:
                        tally.samples.append(f"POST edits {r.status_code}: {r.text[:300]}")
            time.sleep(rng.uniform(0, 0.2))  # a planner's hand, not a tight loop


def _other(tally: Tally, r: httpx.Response, what: str) -> None:
    with tally.lock:
        tally.other[f"{what} {r.status_code}"] += 1
        if len(tally.samples) < 5:
            tally.samples.append(f"{what} {r.status_code}: {r.text[:300]}")


def check_versions(store: Store, plan_id: str, first: int, tally: Tally) -> list[str]:
    """The history: the versions after ``first`` are exactly the 201s, and in each one
    every planner unit sits where the 201s up to it put it. Returns what is wrong."""
    versions = [v.version for v in store.versions(plan_id)]
    wrong = []
    expected = sorted(tally.saved)
    if versions[versions.index(first) + 1 :] != expected:
        wrong.append(f"versions after {first} are {versions}, the 201s made {expected}")
    where: dict[str, str] = {}
    owned = sorted({u for u, _ in tally.saved.values()})
    for number in expected:
        unit, micro = tally.saved[number]
        where[unit] = micro
        got = store.query(plan_id, number, "units", codes=owned).frame
        pairs = zip(got["code"].astype(str), got["parent_code"].astype(str), strict=True)
        for code, parent in pairs:
            if code in where and where[code] != parent:
                wrong.append(
                    f"v{number}: unit {code} is in {parent}, a 201 put it in {where[code]}"
                )
    return wrong


def lost_updates(store: Store, plan_id: str, first: int, tally: Tally) -> list[str]:
    """The 201s whose change is missing from the latest version: each unit's micro-grid
    there must be the one its last 201 moved it to, and every other unit must be where
    it was in version ``first``. Returns one line per unit out of place."""
    start = store.query(plan_id, first, "units").frame
    where = dict(zip(start["code"].astype(str), start["parent_code"].astype(str), strict=True))
    for number in sorted(tally.saved):
        unit, micro = tally.saved[number]
        where[unit] = micro
    last = store.query(plan_id, store.latest(plan_id), "units").frame
    lost = []
    for code, parent in zip(last["code"].astype(str), last["parent_code"].astype(str), strict=True):
        if where[code] == parent:
            continue
        why = [how for unit, to, how in tally.unanswered if unit == code and parent[:15] == to]
        carried = f"; saved by a request that was {why[-1]}" if why else ""
        lost.append(
            f"unit {code} is in {parent}, its last 201 (or the start) says {where[code]}{carried}"
        )
    return lost
