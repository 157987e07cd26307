"""A whole city on Dask distributed (wangge/city.py): the same answer at any scale, resuming
a killed run, losing a worker, a failing street, and real cities from their OSM files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from cities_bounds import beijing_communities, demo_communities, demo_streets
from conftest import PG_URL

from wangge.city import run_city
from wangge.data.store import open_store
from wangge.data.synthetic import CRS, synthetic_city
from wangge.ingest import write_unit_layers

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _plan_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def small_city():
    """Four streets of a seeded synthetic city, about 9,000 households."""
    return synthetic_city(4, 9000, seed=3)


@pytest.fixture(scope="module")
def city_file(tmp_path_factory):
    """Nine streets written as a units.gpkg, as `wangge ingest --streets` leaves a city."""
    units = synthetic_city(9, 13_500, seed=5)
    folder = tmp_path_factory.mktemp("city9")
    summary = {"source": "synthetic city, seed 5", "metric CRS": CRS}
    return write_unit_layers(units, {}, summary, folder), units


def _in_process(units: dict, target, run_dir, plan: str = "c"):
    """A synthetic city run street by street in this process."""
    return run_city(
        None, target, plan, units=(units, CRS), workers=0, run_dir=run_dir, progress=False
    )


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order: streets stage their rows as they finish, so two runs store
    a layer's rows in different orders; what must agree is the set of rows."""
    cols = [c for c in frame.columns if c != "geometry"]
    key = frame[cols].astype(str).astype(object).agg(lambda r: "|".join(map(str, r)), axis=1)
    if "geometry" in frame:
        wkb = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
        key = key + "|" + pd.Series([w or "" for w in wkb], index=frame.index)
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def _same_plans(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        fa, fb = _canonical(a[name]), _canonical(b[name])
        assert len(fa) == len(fb), name
        cols = [c for c in fa.columns if c != "geometry"]
        pd.testing.assert_frame_equal(
            pd.DataFrame(fa[cols]).reset_index(drop=True),
            pd.DataFrame(fb[cols]).reset_index(drop=True),
            check_dtype=False,
            obj=name,
        )
        if "geometry" in fa:
            ga, gb = fa.geometry.to_numpy(), fb.geometry.to_numpy()
            assert (shapely.is_missing(ga) == shapely.is_missing(gb)).all(), name
            present = ~shapely.is_missing(ga)
            assert shapely.equals_exact(ga[present], gb[present], 0).all(), name


def _check_city(store, plan_id: str, units: dict) -> dict[str, pd.DataFrame]:
    """The city plan holds every household once, its codes are unique, nothing is an
    error, and every level nests in the given street it was drawn in."""
    plan = store.load(plan_id)
    total = int(units["buildings"]["households"].sum())
    for level in ("streets", "communities", "grids", "microgrids"):
        frame = plan[level]
        assert frame["code"].is_unique, level
        assert round(frame["households"].sum()) == total, level
    assert set(plan["streets"]["code"]) == set(units["given_streets"]["code"])
    assert (plan["grids"]["code"].str[:9].isin(set(plan["streets"]["code"]))).all()
    assert not (plan["violations"]["severity"] == "error").any()
    assert plan["units"]["code"].is_unique
    ends = set(plan["unit_edges"][["a", "b"]].to_numpy().ravel().tolist())
    assert ends <= set(plan["units"]["code"].astype(np.int64).tolist())
    return plan


def test_same_answer_in_one_process_and_on_a_cluster(small_city, tmp_path, postgis_store):
    """Codes and polygons do not depend on the number of workers, the order in which
    streets finish, or the store: one process into a GeoPackage against a LocalCluster of
    two workers into PostGIS."""
    one = run_city(
        None,
        tmp_path / "one.gpkg",
        "city4",
        units=(small_city, CRS),
        workers=0,
        run_dir=tmp_path / "run-one",
        progress=False,
    )
    pid = _plan_id("city4")
    two = run_city(
        None,
        PG_URL,
        pid,
        units=(small_city, CRS),
        workers=2,
        run_dir=tmp_path / "run-two",
        progress=False,
    )
    assert one.version is not None and two.version is not None
    assert sorted(one.ran) == sorted(two.ran) == sorted(small_city["given_streets"]["code"])
    workers = {s.worker for s in two.streets}
    assert len(workers) == 2, "both workers of the cluster drew streets"
    a = _check_city(open_store(tmp_path / "one.gpkg"), "city4", small_city)
    b = _check_city(postgis_store, pid, small_city)
    _same_plans(a, b)


def test_city_plan_is_editable(small_city, tmp_path):
    """Unit codes and graph positions are offset street by street: the editor loads the
    city and a move inside a street's grid is checked like on any plan."""
    from wangge.editing import Editor

    target = tmp_path / "e.gpkg"
    _in_process(small_city, target, tmp_path / "r")
    store = open_store(target)
    editor = Editor(store)
    state = editor.state("c")
    assert len(state.unit_frame) == len(store.load("c")["units"])
    view = editor.overview("c")
    assert not [v for v in view["violations"] if v.get("severity") == "error"]


@pytest.mark.parametrize("kind", ["gpkg", "postgis"])
def test_rerun_skips_done_streets_and_redoes_changed_ones(small_city, tmp_path, kind, request):
    """A rerun skips what is done; a changed street runs again on a fresh stage, the
    others' rows copied to it, and the earlier version still reads as it was saved."""
    if kind == "postgis":
        request.getfixturevalue("postgis_store")
        target, plan = PG_URL, _plan_id("rerun")
    else:
        target, plan = tmp_path / "s.gpkg", "c"
    run = tmp_path / "run"
    first = run_city(
        None, target, plan, units=(small_city, CRS), workers=0, run_dir=run, progress=False
    )
    before = open_store(target).load(plan, first.version.version)
    again = run_city(
        None, target, plan, units=(small_city, CRS), workers=0, run_dir=run, progress=False
    )
    assert again.ran == [] and len(again.skipped) == 4
    assert again.version.version == first.version.version + 1
    # one street's buildings change: only that street runs again
    changed = {k: v.copy() for k, v in small_city.items()}
    b = changed["buildings"]
    street_of = changed["blocks"].set_index("block_id")["street_row"]
    first_street = (b["block_id"].map(street_of) == 0).to_numpy()
    b.loc[np.flatnonzero(first_street)[:3], "households"] += 5
    third = run_city(
        None, target, plan, units=(changed, CRS), workers=0, run_dir=run, progress=False
    )
    code0 = changed["given_streets"]["code"].iat[0]
    assert third.ran == [code0]
    assert int(store_households(target, plan)) == int(b["households"].sum())
    _check_city(open_store(target), plan, changed)
    _same_plans(before, open_store(target).load(plan, first.version.version))


def store_households(target, plan_id) -> float:
    return open_store(target).load(plan_id)["grids"]["households"].sum()


def test_failing_street_is_reported_and_the_others_finish(small_city, tmp_path, monkeypatch):
    import wangge.city as city

    bad = small_city["given_streets"]["code"].iat[2]
    real = city.draw_street

    def draw(spec):
        if spec["street"] == bad:
            raise ValueError("a broken street")
        return real(spec)

    monkeypatch.setattr(city, "draw_street", draw)
    target, run = tmp_path / "f.gpkg", tmp_path / "run"
    result = _in_process(small_city, target, run)
    assert result.version is None
    assert [s.street for s in result.failed] == [bad]
    assert "ValueError: a broken street" in result.failed[0].error
    assert sum(s.state == "done" for s in result.streets) == 3
    assert open_store(target).plans() == []  # no half city saved
    monkeypatch.setattr(city, "draw_street", real)
    fixed = _in_process(small_city, target, run)
    assert fixed.ran == [bad] and fixed.version is not None


def _done(target: Path, plan_id: str) -> set[str]:
    try:
        return {s.street for s in open_store(target).runs.streets(plan_id) if s.state == "done"}
    except Exception:  # the store is being made by the run
        return set()


def test_killed_run_resumes_with_only_the_unfinished_streets(city_file, tmp_path):
    """kill -9 the client and its LocalCluster midway; the rerun runs only the streets
    that were not done, and the plan equals an uninterrupted run's."""
    path, units = city_file
    target = tmp_path / "k.gpkg"
    cmd = [
        sys.executable,
        "-m",
        "wangge",
        "city",
        str(path),
        "--plan",
        "c",
        "--store",
        str(target),
        "--workers",
        "1",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 600  # a guard against a hang: a loaded machine is slow
    try:
        while len(_done(target, "c")) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run did not get going"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = _done(target, "c")
    codes = set(units["given_streets"]["code"])
    assert 3 <= len(done) < len(codes)
    assert open_store(target).plans() == []
    resumed = run_city(path, target, "c", workers=0, run_dir=tmp_path / "run", progress=False)
    assert set(resumed.ran) == codes - done
    assert set(resumed.skipped) == done
    fresh = run_city(
        path, tmp_path / "ref.gpkg", "c", workers=0, run_dir=tmp_path / "ref", progress=False
    )
    _same_plans(
        _check_city(open_store(target), "c", units),
        open_store(tmp_path / "ref.gpkg").load("c"),
    )
    assert fresh.version is not None


def test_lost_worker_reruns_its_street_elsewhere(city_file, tmp_path):
    """A worker process killed while it draws a street: Dask runs the task again on a
    fresh worker, the street is done after two attempts, and the city is whole."""
    from distributed import Client, LocalCluster

    path, units = city_file
    target = tmp_path / "w.gpkg"
    killed: list[tuple[str, int]] = []

    def assassin(client):
        deadline = time.monotonic() + 600  # a guard against a hang, not a figure
        while time.monotonic() < deadline and not killed:
            try:
                rows = open_store(target).runs.streets("c")
            except Exception:
                rows = []
            done = sum(r.state == "done" for r in rows)
            for r in rows:
                if r.state == "running" and r.attempts == 1 and done >= 1:
                    pid = int(r.worker.rsplit(":", 1)[1])
                    os.kill(pid, signal.SIGKILL)
                    killed.append((r.street, pid))
                    return
            time.sleep(0.02)

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        watcher = threading.Thread(target=assassin, args=(client,), daemon=True)
        watcher.start()
        result = run_city(
            path, target, "c", client=client, run_dir=tmp_path / "run", progress=False
        )
        watcher.join(5)
    assert killed, "no street was caught running"
    street, pid = killed[0]
    row = next(s for s in result.streets if s.street == street)
    assert row.state == "done" and row.attempts >= 2
    assert not row.worker.endswith(f":{pid}")
    assert result.version is not None, [(s.street, s.state, s.error) for s in result.failed]
    _check_city(open_store(target), "c", units)


@pytest.mark.parametrize("city", ["nanjing", "beijing"])
def test_real_city_from_its_osm_file(city, tmp_path):
    """A real city from one OSM file and its given boundaries: each street is cut from the
    file once, ingested and drawn on a worker; the city holds the same households as
    `wangge delineate` over the whole area with the same boundaries."""
    from wangge.delineate import delineate

    if city == "nanjing":
        osm = DATA / "nanjing-xinjiekou.osm"
        given = {
            "streets": demo_streets(osm, tmp_path / "s.geojson"),
            "communities": demo_communities(osm, tmp_path / "c.geojson"),
        }
    else:
        osm = DATA / "beijing-cau.osm"
        given = {"communities": beijing_communities(osm, tmp_path / "c.geojson")}
    target = tmp_path / "city.gpkg"
    result = run_city(
        osm, target, "c", workers=0, run_dir=tmp_path / "run", progress=False, **given
    )
    assert result.version is not None, [s.error for s in result.failed]
    plan = open_store(target).load("c")
    whole = delineate(osm, **given)
    assert int(plan["buildings"]["households"].sum()) == int(
        whole.layers["buildings"]["households"].sum()
    )
    assert set(plan["communities"]["code"]) == set(whole.layers["communities"]["code"])
    assert not (plan["violations"]["severity"] == "error").any()
    assert plan["grids"]["code"].is_unique


def test_cli_city_reports_and_resumes(city_file, tmp_path):
    path, _ = city_file
    cmd = [
        sys.executable,
        "-m",
        "wangge",
        "city",
        str(path),
        "--plan",
        "cli",
        "--store",
        str(tmp_path / "c.gpkg"),
        "--workers",
        "0",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "9 run now" in first.stdout and "saved plan cli version 1" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "0 run now, 9 already done" in again.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "wangge",
            "city",
            str(DATA / "beijing-cau.osm"),
            "--store",
            str(tmp_path / "b.gpkg"),
            "--workers",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "--streets or --communities" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_street_check_equals_the_whole_check(small_city, tmp_path):
    """On a city, an edit re-checks only the streets it touches (the revalidation target
    holds however many streets the city has); after any run of moves the findings equal
    a check of the whole plan."""
    from dataclasses import astuple

    from wangge.editing import Editor
    from wangge.geo import assignment as ge

    target = tmp_path / "v.gpkg"
    _in_process(small_city, target, tmp_path / "r")
    s = Editor(open_store(target)).state("c")
    assert s.city and s.found is not None
    units, micro, found, cache = s.units, s.micro.copy(), list(s.found), {}
    rng = np.random.default_rng(7)
    kinds = set()
    for _ in range(60):
        u = int(rng.integers(units.n))
        nb = units.nbrs[units.indptr[u] : units.indptr[u + 1]]
        nb = [v for v in nb if micro[v] != micro[u] and micro[v][:9] == micro[u][:9]]
        if not nb:
            continue
        before, after = micro[u], micro[int(rng.choice(nb))]
        micro[u] = after
        part = ge.check_streets(units, micro, s.limits, s.flags, found, {before[:9]}, cache)
        whole = ge.check(units, micro, s.limits, s.flags)
        assert sorted(map(astuple, part)) == sorted(map(astuple, whole))
        kinds |= {v.check for v in whole}
        found = part
    assert kinds, "the moves broke nothing: the comparison proved little"


def test_dropped_run_never_writes_into_a_saved_version(small_city, tmp_path):
    """Forgetting a run (its table and stage) and running the city again stages the new
    rows apart: the version the first run saved reads exactly as before."""
    target = tmp_path / "d.gpkg"
    first = _in_process(small_city, target, tmp_path / "r")
    before = open_store(target).load("c", first.version.version)
    open_store(target).runs.drop("c")
    second = _in_process(small_city, target, tmp_path / "r")
    assert len(second.ran) == 4
    store = open_store(target)
    _same_plans(before, store.load("c", first.version.version))
    _same_plans(before, store.load("c", second.version.version))


def test_cli_city_coverage_on_a_real_city(tmp_path):
    """Beijing ingested with its communities, run as a city, then its walking coverage
    street by street from the command line: a new version with access per building."""
    osm = DATA / "beijing-cau.osm"
    comm = beijing_communities(osm, tmp_path / "c.geojson")
    store = str(tmp_path / "b.gpkg")

    def wangge(*args):
        done = subprocess.run(
            [sys.executable, "-m", "wangge", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    wangge("ingest", osm, "--communities", comm, "--out", tmp_path / "u")
    units = tmp_path / "u" / "units.gpkg"
    wangge(
        "city",
        units,
        "--plan",
        "bj",
        "--store",
        store,
        "--workers",
        "0",
        "--run-dir",
        tmp_path / "r",
    )
    said = wangge(
        "city-coverage",
        "bj",
        "--units",
        units,
        "--store",
        store,
        "--workers",
        "0",
        "--run-dir",
        tmp_path / "rc",
    )
    assert "saved plan bj version 2" in said
    plan = open_store(store).load("bj")
    assert len(plan["access"]) == len(plan["buildings"])
    assert {"grid_coverage", "facilities"} <= set(plan)


def test_a_task_run_again_after_its_street_is_stored_writes_nothing(small_city, tmp_path):
    """A worker that dies after storing its street but before answering: Dask runs the
    task again, and the second run finds the street done and leaves it as it is."""
    from wangge.city import street_task

    target = tmp_path / "t.gpkg"
    first = _in_process(small_city, target, tmp_path / "r")
    store = open_store(target)
    row = store.runs.streets("c")[0]
    stage, _ = store.runs.pieces("c")
    spec = {
        "run_id": "c",
        "street": row.street,
        "hash": row.input_hash,
        "stage": stage,
        "store": str(target),
        "cut": str(tmp_path / "r" / "cuts" / f"{row.street}.pkl"),
        "limits_json": "{}",
    }
    status = street_task(spec)
    assert status["state"] == "done" and status.get("again")
    after = store.runs.streets("c")[0]
    assert after.state == "done" and after.attempts == row.attempts
    _same_plans(store.load("c", first.version.version), store.load("c"))


def test_a_city_without_given_streets_or_with_a_street_code_twice_is_named(small_city):
    from wangge.city import cut_units
    from wangge.errors import InputError

    bare = {k: v for k, v in small_city.items() if k != "given_streets"}
    with pytest.raises(InputError, match="a city needs its streets") as got:
        cut_units(bare, CRS)
    assert got.value.where == "given_streets"
    twice = dict(small_city)
    streets = small_city["given_streets"].copy()
    streets.loc[streets.index[1], "code"] = streets["code"].iat[0]
    twice["given_streets"] = streets
    with pytest.raises(InputError, match=f"street code {streets['code'].iat[0]} is given twice"):
        cut_units(twice, CRS)
