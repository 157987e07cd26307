"""Twenty planners editing one plan at once through a real two-worker server, on each store:
a stale edit gets 409 and is retried, no 201 is ever lost, and nothing answers 5xx.

The planners (tests/concurrencytools.py) each own two neighbouring grids of a community,
with an account scoped to it, and a few boundary units nobody else moves, so the last 201
for a unit says exactly where the latest version must hold it. Two saves that fail under
contention are checked on their own: a GeoPackage COMMIT that times out behind a reader,
and a PostGIS ANALYZE that times out after the version is committed.
"""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest
from concurrencytools import (
    assign,
    check_versions,
    cpu_seconds,
    lost_updates,
    serve,
    storm,
    worker_pids,
)
from conftest import PG_URL, need

from wangge.data.plan import plan_from_frames, read_plan
from wangge.importing import save_plan

PLANNERS = 20
#: How long the planners edit, per store; on a slow (shared) machine they go on until
#: AT_LEAST edits were saved. LONGEST is a guard against a hang, not a figure: the count of
#: saves, not the time they took, is what the test asserts.
SECONDS = float(os.environ.get("WANGGE_CONCURRENCY_SECONDS", "20"))
AT_LEAST, LONGEST = 6, 15 * SECONDS


@pytest.fixture(params=["gpkg", "postgis"])
def shared_plan(request, tmp_path, plan_dir):
    """(store kind, what WANGGE_STORE names, the store, a fresh copy of the demo plan's id);
    on PostGIS the plan and the planners' accounts are removed afterwards."""
    plan = f"conc-{uuid.uuid4().hex[:8]}"
    if request.param == "gpkg":
        from wangge.data.gpkg_store import GpkgStore

        target = str(tmp_path / "store.gpkg")
        store = GpkgStore(tmp_path / "store.gpkg")
    else:
        from wangge.data.postgis_store import PostgisStore
        from wangge.errors import InputError

        target = PG_URL
        try:
            store = PostgisStore(PG_URL)
        except InputError as exc:
            need("PostGIS", str(exc))
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(
        store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "for concurrency"
    )
    try:
        yield request.param, target, store, plan
    finally:
        if request.param == "postgis":
            _drop(store, plan)
        store.close()


def _drop(store, plan: str) -> None:
    """Remove a plan and its planners' accounts from the shared test database."""
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        for table in ("wg_features", "wg_layers", "wg_versions", "wg_plans"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE plan_id = :p"), {"p": plan})
        conn.execute(sa.text("DELETE FROM wg_accounts WHERE name LIKE :n"), {"n": f"{plan}-p%"})


def test_planners_at_once_lose_no_update(shared_plan, tmp_path):
    kind, target, store, plan = shared_plan
    first = store.latest(plan)
    planners = assign(store, plan, PLANNERS)
    clock = time.perf_counter()
    server = serve(target, tmp_path / "server.log", workers=2)
    try:
        # create_app as a factory read WANGGE_STORE: it serves the store made here
        assert httpx.get(server.url + "/healthz").json()["store"] == type(store).__name__
        workers = worker_pids(server.proc.pid)
        before = cpu_seconds(workers)
        up = time.perf_counter() - clock
        clock = time.perf_counter()
        tally = storm(server.url, plan, planners, SECONDS, AT_LEAST, LONGEST)
        took = time.perf_counter() - clock
        after = cpu_seconds(workers)
    finally:
        server.stop()
    clock = time.perf_counter()
    lost = lost_updates(store, plan, first, tally)
    history = check_versions(store, plan, first, tally)
    cpu = [round(after[p] - before[p], 1) for p in workers]
    print(
        f"\n{kind}: {PLANNERS} planners for {took:.1f} s: {tally.line()}, "
        f"lost updates {len(lost)}, versions {first}→{store.latest(plan)}; "
        f"CPU s by worker {cpu}; server up in {up:.1f} s, "
        f"checked in {time.perf_counter() - clock:.1f} s"
    )
    log = server.log_tail()
    assert not lost, "lost updates:\n" + "\n".join(lost[:20])
    assert not history, "history:\n" + "\n".join(history[:20])
    assert not tally.anomalies, "\n".join(tally.anomalies[:20])
    fives = {c: n for c, n in tally.other.items() if str(c)[-3:].startswith("5")}
    assert not fives, f"5xx answers {fives}: {tally.samples}\n{log}"
    assert not tally.other, f"answers other than 201 and 409: {tally.samples}\n{log}"
    assert not tally.failures, f"requests that got no answer: {tally.failures}\n{log}"
    assert tally.created >= 3, tally.line()
    assert tally.conflicts > 0, "twenty planners at once and never a 409: is the check on?"
    assert min(cpu) > 0.2 * sum(cpu), f"one worker served nearly everything: CPU s {cpu}"


def test_gpkg_save_that_cannot_commit_leaves_no_lock_behind(tmp_path):
    """A GeoPackage save whose COMMIT waits past the busy timeout on a reader (another
    process, QGIS with the file open) fails, and its connection keeps neither the
    transaction nor the write lock: the next save, on it or on another worker's, goes
    through, and nobody reads the version that was never saved."""
    import sqlite3

    import geopandas as gpd
    import shapely

    from wangge.data.gpkg_store import GpkgStore
    from wangge.errors import VersionConflict

    path = tmp_path / "store.gpkg"
    frame = gpd.GeoDataFrame(
        {"code": ["320102001"], "parent_code": ["320102"]},
        geometry=[shapely.box(118.7, 32.0, 118.8, 32.1)],
        crs=4326,
    )
    store = GpkgStore(path)
    store.save("p", {"streets": frame})
    store._conn().execute("PRAGMA busy_timeout = 200")  # not the 10 s a server waits
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM wg_plans").fetchall()  # holds a shared lock
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.save("p", {"streets": frame}, base_version=1)
    reader.execute("ROLLBACK")
    reader.close()
    assert not store._conn().in_transaction
    assert store.latest("p") == 1  # not the unsaved version 2
    other = GpkgStore(path)  # another worker
    try:
        assert other.save("p", {"streets": frame}, base_version=1).version == 2
        with pytest.raises(VersionConflict):
            store.save("p", {"streets": frame}, base_version=1)
        assert store.save("p", {"streets": frame}, base_version=2).version == 3
    finally:
        other.close()
        store.close()


def test_postgis_statistics_that_cannot_be_refreshed_do_not_fail_a_saved_version():
    """After a save commits, PostGIS may refresh the table's statistics (ANALYZE). If that
    waits past the statement timeout, behind a VACUUM or an index built concurrently, the
    version is saved all the same, and its caller must not be told that it failed."""
    import sqlalchemy as sa

    from wangge.data.postgis_store import PostgisStore
    from wangge.errors import InputError

    try:
        store = PostgisStore(PG_URL, statement_timeout_ms=300)
    except InputError as exc:
        need("PostGIS", str(exc))
    blocker = store.engine.connect()  # holds what ANALYZE needs, as VACUUM does
    try:
        blocker.execute(sa.text("LOCK TABLE wg_features IN SHARE UPDATE EXCLUSIVE MODE"))
        store._analyze_if_stale(added=10**12)  # a save large enough to want fresh statistics
    finally:
        blocker.rollback()
        blocker.close()
        store.close()


def test_a_save_behind_another_on_the_same_base_is_refused_before_its_work(
    tmp_path, plan_dir, monkeypatch
):
    """Two saves on one version in one server process: the second waits for the first,
    then gets 409 at once, without re-dissolving grids for a version the store would
    refuse (twenty planners on one version did twenty saves' work for one 201)."""
    import threading

    import wangge.editing as editing
    from wangge.data.gpkg_store import GpkgStore
    from wangge.errors import VersionConflict

    store = GpkgStore(tmp_path / "store.gpkg")
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(store, plan_from_frames(layers, meta, "plan.gpkg"), "p", None, "tests", "")
    first, second = assign(store, "p", 2)
    editor = editing.Editor(store)
    derived, entered, gate = [], threading.Event(), threading.Event()
    real = editing.derive

    def held(*args, **kwargs):
        derived.append(threading.current_thread().name)
        entered.set()
        assert gate.wait(30), "the test never let the first save go on"
        return real(*args, **kwargs)

    monkeypatch.setattr(editing, "derive", held)
    outcome: dict[str, object] = {}

    def save(me, name):
        unit = sorted(me.units)[0]
        to = me.grids[1] if me.units[unit] == me.grids[0] else me.grids[0]
        try:
            outcome[name] = editor.edit("p", 1, [(unit, to)]).version.version
        except VersionConflict as exc:
            outcome[name] = exc

    one = threading.Thread(target=save, args=(first, "one"), name="one")
    one.start()
    assert entered.wait(30)
    two = threading.Thread(target=save, args=(second, "two"), name="two")
    two.start()
    two.join(0.5)
    assert two.is_alive(), "the second save did not wait for the first"
    gate.set()
    one.join(30)
    two.join(30)
    store.close()
    assert outcome["one"] == 2
    assert isinstance(outcome["two"], VersionConflict), outcome
    assert "latest is 2" in str(outcome["two"])
    assert derived == ["one"], derived
