"""Crashes (issue 13): ``kill -9`` during an import, an edit save and an overlay write.

Each store (the GeoPackage file and PostGIS) is saved into by a child process that is
SIGKILLed inside the save's transaction: at the moment it opens, at points spread over
its measured length, and as it commits (tests/crashtools.py says how the child marks
those moments). After every kill the store is opened afresh, as the next process would:
the last committed version must load whole and unchanged (every layer, row for row),
only whole versions may be listed, each with its audit entry, no row may be left that
no version owns, and the next save must succeed with the next number.

An overlay write is the ``wangge overlay`` job rewriting plan.gpkg by copy and rename
(killed mid-write: the plan is untouched, and the copy it leaves behind must not spoil a
later run). On the stores, the overlay's layers arrive by an import of the overlaid
plan, the heaviest save, which is the save the import test kills.
"""

from __future__ import annotations

import glob
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pyogrio
from clitools import WANGGE
from crashtools import (
    Child,
    assert_gpkg_sound,
    assert_listed_complete,
    fingerprint,
    kill_in_save,
    micro_of,
    pick_move,
    recheck,
    records,
    revalidate,
    spread,
    stored_rows,
)

from wangge import overlay as overlay_job
from wangge.data.gpkg_store import GpkgStore
from wangge.data.plan import plan_from_frames, read_plan
from wangge.data.samples import write_samples
from wangge.data.store import open_store
from wangge.editing import Editor
from wangge.importing import save_plan

#: Randomised kill points, reproducible: WANGGE_CRASH_SEED=<n> repeats a run.
SEED = int(os.environ.get("WANGGE_CRASH_SEED", time.time_ns() % 1_000_000))


def pid(kind: str) -> str:
    return f"crash-{kind}-{uuid.uuid4().hex[:8]}"


def reopen(store, target: str):
    """The store as the next process finds it (a GeoPackage's hot journal is rolled back
    by this open), and whether the kill left such a journal."""
    hot = isinstance(store, GpkgStore) and Path(f"{target}-journal").exists()
    return open_store(target), hot


def assert_sound(fresh, target: str, *plans: str) -> dict[str, int]:
    """Only whole versions listed and no orphan rows, for each plan; a sound file."""
    latest = {}
    for plan in plans:
        latest[plan] = assert_listed_complete(fresh, plan)
        rows, own = stored_rows(fresh, plan)
        assert rows == own, f"{plan}: {rows} feature rows on disk, versions own {own}"
    if isinstance(fresh, GpkgStore):
        assert_gpkg_sound(Path(target))
    return latest


def test_kill_during_import_leaves_the_last_version_whole(store, plan_dir, risk_plan_dir, tmp_path):
    """`wangge import` of the overlaid plan killed four times inside its save: as the
    transaction opens, as it commits (which measures how long it stays open), and at two
    points spread over that length."""
    rng = random.Random(SEED)
    target = store.url
    plain, heavy = plan_dir / "plan.gpkg", risk_plan_dir / "plan.gpkg"
    plan = pid("import")
    layers, meta = read_plan(plain).stored()
    v1, violations = save_plan(
        store, plan_from_frames(layers, dict(meta), str(plain)), plan, None, "t", "base"
    )
    assert v1.version == 1
    committed = {1: fingerprint(store, plan, 1)}
    # version 1 holds the file: every layer, its rows, and the units' micro-grids
    assert {k: n for k, (n, _) in committed[1].items()} == {
        **{k: len(f) for k, f in layers.items()},
        "violations": len(violations),
    }
    units = layers["units"]
    assert micro_of(store, plan, 1) == dict(
        zip(units["code"].astype(str), units["parent_code"].astype(str), strict=True)
    )

    window = None
    fractions = spread(rng, 2)
    landed = []  # versions whose commit beat the kill: whole imports of the overlaid plan
    for i in range(4):
        before = max(committed)
        if i == 0:
            delay = 0.0
        elif i == 1:
            delay = None
        else:
            delay = fractions[i - 2] * window
        with Child(["import", str(heavy), target, plan], tmp_path / f"kill{i}.log") as child:
            took = kill_in_save(child, delay)
        window = window or took
        fresh, hot = reopen(store, target)
        try:
            where = f"seed {SEED}, kill {i} ({delay=}, {window=}, {hot=})"
            latest = assert_sound(fresh, target, plan)[plan]
            assert latest in (before, before + 1), where
            # a version the child said it saved is there; one it did not may be, if its
            # commit landed just before the kill
            assert all(n <= latest for n in child.saved), (child.saved, latest, where)
            if latest > before:
                landed.append(latest)
            for number, expected in committed.items():
                assert fingerprint(fresh, plan, number) == expected, (number, where)
            for number in landed:
                committed.setdefault(number, fingerprint(fresh, plan, number))
        finally:
            fresh.close()
    # the kills were inside the transaction: at least one cut it short
    assert len(landed) < 4, (landed, SEED)

    fresh, _ = reopen(store, target)
    try:
        heavy_layers, heavy_meta = read_plan(heavy).stored()
        nxt, _ = save_plan(
            fresh, plan_from_frames(heavy_layers, heavy_meta, str(heavy)), plan, None, "t", "next"
        )
        assert nxt.version == max(committed) + 1
        # an import that beat its kill holds exactly what an import run to its end holds
        heavy_print = fingerprint(fresh, plan, nxt.version)
        # (the file's own violations are replaced by those the import finds)
        rows = {k: n for k, (n, _) in heavy_print.items() if k != "violations"}
        assert rows == {k: len(f) for k, f in heavy_layers.items() if k != "violations"}
        assert "violations" in heavy_print
        for number in landed:
            assert committed[number] == heavy_print, number
        # validating the version that outlived the kills gives what the import found
        assert revalidate(fresh, plan, 1) == records(violations)
        assert_sound(fresh, target, plan)
    finally:
        fresh.close()


def test_kill_during_edit_saves_keeps_the_last_committed_edit(store, plan_dir, tmp_path):
    """An editor saving one move after another, killed three times mid-loop: inside a
    save as its transaction opens, part-way through, and as it commits."""
    rng = random.Random(SEED + 1)
    target = store.url
    plan = pid("edit")
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(store, plan_from_frames(layers, dict(meta), "plan.gpkg"), plan, None, "t", "base")
    unit, home, away = pick_move(store, plan)
    first = micro_of(store, plan, 1)
    counts = {k: n for k, (n, _) in fingerprint(store, plan, 1).items() if k != "violations"}
    assert first[unit] == home

    delays = [0.0, 0.2 + 0.7 * rng.random(), None]  # × the child's first save's length
    landed = []
    moved_to = None
    for i, fraction in enumerate(delays):
        with Child(["edit", target, plan], tmp_path / f"edit{i}.log") as child:
            opened = child.wait_for("inside")
            window = child.wait_for("commit") - opened
            child.wait_for("saved")
            for _ in range(rng.randrange(2)):  # let one more save through, or not
                child.wait_for("saved")
            kill_in_save(child, None if fraction is None else fraction * window)
        fresh, hot = reopen(store, target)
        try:
            where = f"seed {SEED}, kill {i} ({fraction=}, window {window:.3f} s, {hot=})"
            latest = assert_sound(fresh, target, plan)[plan]
            last = max(child.saved)
            assert latest in (last, last + 1), (latest, child.saved, where)
            landed.append(latest > last)
            # every unit where version 1 had it, the moved one home after an even number
            # of moves and in the neighbouring grid after an odd one
            micro = micro_of(fresh, plan, latest)
            if moved_to is None:
                moved_to = micro_of(fresh, plan, 2)[unit]
                assert moved_to.startswith(away), (moved_to, away)
            assert micro == {**first, unit: home if latest % 2 else moved_to}, where
            # the live checks on it, loaded afresh, are those saved with it
            checks, _ = recheck(fresh, plan, latest)
            assert checks == records(fresh.query(plan, latest, "violations").frame), where
            infos = fresh.layers(plan, latest)
            assert {x.name: x.count for x in infos if x.name != "violations"} == counts, where
            if latest >= 4:  # the same assignment saved two versions apart: the same rows
                assert fingerprint(fresh, plan, latest) == fingerprint(fresh, plan, latest - 2)
        finally:
            fresh.close()
    assert not all(landed), (landed, SEED)

    fresh, _ = reopen(store, target)
    try:
        latest = fresh.latest(plan)
        to = away if latest % 2 else home
        result = Editor(fresh).edit(plan, latest, [(unit, to)])
        assert result.version.version == latest + 1
        assert micro_of(fresh, plan, latest + 1)[unit] == (moved_to if latest % 2 else home)
        assert_sound(fresh, target, plan)
    finally:
        fresh.close()


def _counts(path: Path) -> dict[str, int]:
    return {n: pyogrio.read_info(path, layer=n)["features"] for n, _ in pyogrio.list_layers(path)}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plan_copy(plan_dir: Path, where: Path) -> tuple[Path, dict]:
    where.mkdir()
    for name in ("plan.gpkg", "units.gpkg"):
        shutil.copyfile(plan_dir / name, where / name)
    samples = write_samples(where, seed=0)
    return where, samples


def _job_args(samples: dict) -> dict:
    return {
        "zones": samples["zones"],
        "facilities": [samples["facilities"]],
        "vulnerable": samples["vulnerable"],
        "progress": False,
        "maps": False,
    }


def _hot(copy: str) -> bool:
    """Whether a copy matching the pattern ``copy`` has a hot journal beside it: one whose
    header SQLite has written, which it does only once it starts overwriting the file,
    and which SQLite rolls back into whatever file it then finds under that name."""
    for name in glob.glob(copy + "-journal"):
        try:
            with open(name, "rb") as fh:
                if fh.read(8).strip(b"\0"):
                    return True
        except FileNotFoundError:  # its transaction just committed
            pass
    return False


def _kill_overlay(cli: list[str], d: Path, log: Path, ready) -> int:
    """Run `wangge overlay`, SIGKILL it once ``ready(pattern of its copy)`` holds, and
    return its pid."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cli, stdout=out, stderr=out)
    copy = f"{d}/.plan.{proc.pid}.*gpkg"  # the name holds the pid, whatever follows
    while not ready(copy):
        assert proc.poll() is None, log.read_text()
        time.sleep(0.0005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.pid


def _strays(d: Path) -> set[str]:
    return {p.name for p in d.iterdir() if p.name.startswith(".plan.")}


def test_kill_during_overlay_write_keeps_the_plan_and_its_leftovers_are_harmless(
    plan_dir, tmp_path, monkeypatch
):
    """`wangge overlay` killed three times while it rewrites plan.gpkg: plan.gpkg is
    untouched each time, and the copy and journal a killed run leaves behind spoil no
    later run, not even one that reuses its name (the same pid, as a container's job has
    on every run)."""
    rng = random.Random(SEED + 2)
    # one run in-process measures the write: copy, layers written, rename
    ref_dir, samples = _plan_copy(plan_dir, tmp_path / "ref")
    spans = []
    real = overlay_job.update_plan

    def timed(path, layers):
        start = time.monotonic()
        real(path, layers)
        spans.append(time.monotonic() - start)

    monkeypatch.setattr(overlay_job, "update_plan", timed)
    overlay_job.overlay(ref_dir, samples["risks"], **_job_args(samples))
    monkeypatch.undo()
    window = spans[0]
    overlaid = _counts(ref_dir / "plan.gpkg")

    d, samples = _plan_copy(plan_dir, tmp_path / "plan")
    plan = d / "plan.gpkg"
    before, before_counts = _sha(plan), _counts(plan)
    assert set(overlaid) > set(before_counts)  # the job adds layers: a rename would show
    cli = [WANGGE, "overlay", str(d), "--risks", str(samples["risks"])]
    cli += ["--zones", str(samples["zones"]), "--facilities", str(samples["facilities"])]
    cli += ["--vulnerable", str(samples["vulnerable"])]

    def wrote(delay):  # the copy has been there for ``delay`` seconds
        seen = []

        def ready(copy):
            if not seen and glob.glob(copy):
                seen.append(time.monotonic())
            return bool(seen) and time.monotonic() >= seen[0] + delay

        return ready

    # killed once while SQLite overwrites the copy (a hot journal beside it; a kill may
    # miss that moment, so up to five tries), then at points spread over the write
    killed = []
    for i, delay in enumerate([None, *(f * window for f in spread(rng, 2))]):
        for attempt in range(5 if delay is None else 1):
            log = tmp_path / f"overlay{i}-{attempt}.log"
            dead = _kill_overlay(cli, d, log, _hot if delay is None else wrote(delay))
            killed.append(dead)
            where = f"seed {SEED}, kill {i} ({delay=}, window {window:.3f} s)"
            if _sha(plan) == before:
                assert _counts(plan) == before_counts, where
            else:  # the rename landed before the kill: the whole new plan, then
                assert _counts(plan) == overlaid, where
                before, before_counts = _sha(plan), overlaid
            with sqlite3.connect(plan) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
            if delay is not None or _hot(f"{d}/.plan.{dead}.*gpkg"):
                break
    hot = [p for p in killed if _hot(f"{d}/.plan.{p}.*gpkg")]
    assert hot, f"no kill left a hot journal: {sorted(_strays(d))}"
    dead = str(hot[0])

    # the next run succeeds beside the leftovers, and the plan gains the overlay's layers
    overlay_job.overlay(d, samples["risks"], **_job_args(samples))
    assert _counts(plan) == overlaid
    # a run reusing a killed run's pid: its leftovers are renamed to this process's pid
    for name in _strays(d):
        if f".{dead}." in name:
            os.replace(d / name, d / name.replace(f".{dead}.", f".{os.getpid()}."))
    overlay_job.overlay(d, samples["risks"], **_job_args(samples))
    assert _counts(plan) == overlaid
    for name in overlaid:  # every layer reads whole
        assert len(pyogrio.read_dataframe(plan, layer=name)) == overlaid[name], name
    with sqlite3.connect(plan) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
