"""Crash tests' tools: a child that saves into a store and says when its transaction is
open, a parent that SIGKILLs it there, and the checks of what the store kept.

The child is this file run as a script. ``import`` runs the real ``wangge import``
command in-process; ``edit`` loads an :class:`~wangge.editing.Editor` and moves one
boundary unit back and forth between two neighbouring grids, saving a version per move.
Both first install :func:`install_probe`, which changes nothing the save does: it only
writes a marker line when the save's transaction holds the plan's lock
(``@@crash inside``), just before COMMIT (``@@crash commit``) and once ``Store.save``
has returned (``@@crash saved N``), so the parent can kill at a chosen point *inside*
the transaction instead of guessing from a start-up time that varies by seconds.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

TOOLS = Path(__file__).resolve()
MARK = re.compile(r"@@crash (\w+)(?: (\d+))?")
#: Saves an edit child makes at most, should nobody kill it.
EDIT_LIMIT = 40


# the child ----------------------------------------------------------------------------


def say(word: str, number: int | None = None) -> None:
    """One marker line, written straight to fd 1 (no buffer to lose to SIGKILL)."""
    os.write(1, f"@@crash {word}{'' if number is None else f' {number}'}\n".encode())


def install_probe() -> None:
    """Mark the save's transaction in both stores: ``inside`` once the version number is
    taken under the plan's lock, ``commit`` just before COMMIT, ``saved N`` after."""
    import sqlalchemy as sa

    from wangge.data import gpkg_store, postgis_store
    from wangge.data.store import Store

    state = {"open": False}

    def closing() -> None:
        if state["open"]:
            state["open"] = False
            say("commit")

    for module in (gpkg_store, postgis_store):

        def numbered(plan_id, latest, base_version, real=module.next_version):
            number = real(plan_id, latest, base_version)
            state["open"] = True
            say("inside")
            return number

        module.next_version = numbered

    real_extent = gpkg_store._update_extent

    def extent(conn):  # the GeoPackage store's last statement before COMMIT
        real_extent(conn)
        closing()

    gpkg_store._update_extent = extent
    sa.event.listen(sa.engine.Engine, "commit", lambda conn: closing())

    real_save = Store.save

    def save(self, *args, **kwargs):
        version = real_save(self, *args, **kwargs)
        say("saved", version.version)
        return version

    Store.save = save


def pick_move(store, plan_id: str) -> tuple[str, str, str]:
    """A unit with households on the edge of its grid in version 1, the micro-grid it is
    in (which keeps other units when it leaves) and a neighbouring basic grid of the same
    community: moving it there and back never retires or creates a part."""
    units = pd.DataFrame(store.query(plan_id, 1, "units").frame.drop(columns="geometry"))
    edges = store.query(plan_id, 1, "unit_edges").frame
    by_pos = {int(c): r for c, r in zip(units["code"], units.itertuples(), strict=True)}
    per_grid = units["grid_code"].value_counts()
    per_micro = units["parent_code"].value_counts()
    for a, b in zip(edges["a"], edges["b"], strict=True):
        for u, w in ((by_pos[int(a)], by_pos[int(b)]), (by_pos[int(b)], by_pos[int(a)])):
            if (
                u.grid_code != w.grid_code
                and u.grid_code[:12] == w.grid_code[:12]
                and u.households > 0
                and per_grid[u.grid_code] > 2
                and per_micro[u.parent_code] > 1
                # basic grids only: dedicated ones (coded from 901) are outside the bands
                and max(u.grid_code[-3:], w.grid_code[-3:]) < "900"
            ):
                return str(u.code), str(u.parent_code), str(w.grid_code)
    raise AssertionError(f"no movable boundary unit in plan {plan_id}")


def edit_loop(target: str, plan_id: str) -> None:
    """Toggle the picked unit between its home micro-grid and the neighbouring grid, one
    saved version per move, each based on the latest."""
    from wangge.data.store import open_store
    from wangge.editing import Editor

    store = open_store(target)
    unit, home, away = pick_move(store, plan_id)
    editor = Editor(store)
    for _ in range(EDIT_LIMIT):
        latest = store.latest(plan_id)
        s = editor.state(plan_id, latest)
        here = s.micro[s.units.index[unit]]
        editor.edit(plan_id, latest, [(unit, away if here == home else home)])


def main(argv: list[str]) -> None:
    install_probe()
    if argv[0] == "import":  # import PLAN TARGET PLAN_ID: the real command line
        plan, target, plan_id = argv[1:]
        from wangge.cli import main as cli

        sys.argv = ["wangge", "import", plan, "--store", target, "--plan-id", plan_id]
        cli()
    elif argv[0] == "edit":  # edit TARGET PLAN_ID
        edit_loop(*argv[1:])
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")


# the parent ---------------------------------------------------------------------------


@dataclass
class Child:
    """A child process and the markers it wrote, read by a thread as they come."""

    args: list[str]
    log: Path
    proc: subprocess.Popen = field(init=False)
    events: queue.Queue = field(init=False, default_factory=queue.Queue)
    saved: list[int] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(TOOLS), *self.args], stdout=subprocess.PIPE, stderr=err
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            m = MARK.search(raw.decode("utf-8", "replace"))
            if m:
                self.events.put((time.monotonic(), m[1], int(m[2]) if m[2] else None))
        self.events.put((time.monotonic(), "eof", None))

    def stderr(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]

    def wait_for(self, word: str, timeout: float = 120) -> float:
        """The time the child wrote ``word`` (noting saves on the way)."""
        end = time.monotonic() + timeout
        while True:
            try:
                at, got, number = self.events.get(timeout=max(end - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no {word!r} from {self.args} in {timeout} s") from None
            if got == "saved":
                self.saved.append(number)
            if got == word:
                return at
            if got == "eof":
                self.proc.wait()
                raise AssertionError(
                    f"{self.args} ended (exit {self.proc.returncode}) before {word!r}:\n"
                    + self.stderr()
                )

    def kill(self) -> None:
        """SIGKILL, then collect every marker the child wrote before it died."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=10)
        while not self.events.empty():
            _, got, number = self.events.get()
            if got == "saved":
                self.saved.append(number)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:  # a test that failed leaves no child saving on
            self.kill()


def kill_in_save(child: Child, delay: float | None) -> float | None:
    """Wait until the child's next save opens its transaction, then SIGKILL it ``delay``
    seconds later, or, when ``delay`` is None, as soon as it says it commits (and return
    how long the transaction had been open then)."""
    inside = child.wait_for("inside")
    if delay is not None:
        time.sleep(max(inside + delay - time.monotonic(), 0))
        child.kill()
        return None
    window = child.wait_for("commit") - inside
    child.kill()
    return window


def spread(rng, n: int) -> list[float]:
    """``n`` fractions of a window, one drawn in each of ``n`` equal slices of (0, 0.9)."""
    return [(i + rng.random()) * 0.9 / n for i in range(n)]


# what the store kept --------------------------------------------------------------------


def fingerprint(store, plan_id: str, version: int) -> dict[str, tuple[int, str]]:
    """Every layer of a version as loaded: its row count and a hash of all its values
    and geometries, in code order."""
    out = {}
    for info in store.layers(plan_id, version):
        frame = store.query(plan_id, version, info.name).frame
        h = hashlib.sha256(frame.drop(columns="geometry").to_json().encode())
        geoms = frame.geometry.to_numpy()
        present = ~shapely.is_missing(geoms)
        h.update(present.tobytes())
        for wkb in shapely.to_wkb(geoms[present], byte_order=1):
            h.update(wkb)
        out[info.name] = (len(frame), h.hexdigest())
    return out


def assert_listed_complete(store, plan_id: str) -> int:
    """Only whole versions are listed: numbered 1…latest without a gap, the latest the
    one plans() shows, every layer of each holding exactly its rows, and no layer of the
    number after. Returns the latest."""
    numbers = [v.version for v in store.versions(plan_id)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    latest = numbers[-1]
    assert store.latest(plan_id) == latest
    shown = {p.plan_id: p.version for p in store.plans()}
    assert shown.get(plan_id) == latest, shown.get(plan_id)
    for number in numbers:
        infos = store.layers(plan_id, number)
        assert infos, f"version {number} is listed without layers"
        for info in infos:
            rows = store.query(plan_id, number, info.name, limit=0).number_matched
            assert rows == info.count, (number, info.name, rows, info.count)
    assert store.layers(plan_id, latest + 1) == []
    # each version has its audit entry, written in its transaction, and nothing else has
    audited = store.book.log(plan_id)["version"].tolist()
    assert audited == numbers, f"audit log versions {audited}, listed {numbers}"
    return latest


def stored_rows(store, plan_id: str) -> tuple[int, int]:
    """(feature rows the plan has on disk, rows its listed versions account for): a save
    cut short must leave no row written, or retired, by a version that is not listed."""
    listed = [v.version for v in store.versions(plan_id)] or [0]
    marks = ",".join(str(int(n)) for n in listed)
    sql = "SELECT count(*), sum(CASE WHEN version IN ({0}) AND (until IS NULL OR until IN ({0}))"
    sql = sql.format(marks) + " THEN 1 ELSE 0 END) FROM wg_features WHERE plan_id = "
    if hasattr(store, "engine"):
        import sqlalchemy as sa

        with store.engine.connect() as conn:
            rows, own = conn.execute(sa.text(sql + ":p"), {"p": plan_id}).one()
    else:
        with sqlite3.connect(store.path) as conn:
            rows, own = conn.execute(sql + "?", (plan_id,)).fetchone()
    return int(rows), int(own or 0)


def assert_gpkg_sound(path: Path) -> None:
    """The file after a reopen: no journal left, SQLite's integrity check passes, its
    R-tree has one entry per geometry, and GDAL reads the feature layer."""
    import pyogrio

    assert not Path(f"{path}-journal").exists(), "a hot journal survived the reopen"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (geoms,) = conn.execute("SELECT count(*) FROM wg_features WHERE geom IS NOT NULL")
        (index,) = conn.execute("SELECT count(*) FROM rtree_wg_features_geom")
        assert geoms == index, (geoms, index)
        (rows,) = conn.execute("SELECT count(*) FROM wg_features").fetchone()
    finally:
        conn.close()
    assert pyogrio.read_info(path, layer="wg_features")["features"] == rows


def micro_of(store, plan_id: str, version: int) -> dict[str, str]:
    """Each unit's micro-grid in a version."""
    units = store.query(plan_id, version, "units").frame
    return dict(zip(units["code"].astype(str), units["parent_code"].astype(str), strict=True))


def records(frame: pd.DataFrame) -> list[tuple]:
    """Violations as sorted (level, code, check, severity) rows, to compare."""
    cols = ["level", "code", "check", "severity"]
    return sorted(tuple(str(x) for x in row) for row in frame[cols].to_numpy().tolist())


def revalidate(store, plan_id: str, version: int) -> list[tuple]:
    """Validate a stored version afresh, as an import does."""
    from wangge.data.plan import read_stored
    from wangge.geo.validate import validate

    plan = read_stored(store, plan_id, version)
    return records(validate(plan.metric_layers(), plan.limits))


def recheck(store, plan_id: str, version: int) -> tuple[list[tuple], np.ndarray]:
    """An edit's live checks on a version loaded afresh, and its assignment."""
    from wangge.editing import Editor
    from wangge.geo import assignment as ge

    s = Editor(store).state(plan_id, version)
    found = ge.check(s.units, s.micro, s.limits, s.flags)
    frame = pd.DataFrame([asdict(v) for v in found], columns=["level", "code", "check", "severity"])
    return records(frame), s.micro


if __name__ == "__main__":
    main(sys.argv[1:])
