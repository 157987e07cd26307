"""`wangge import`, `wangge export` and `wangge serve` as a user runs them: real processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import geopandas as gpd
import pytest
from clitools import WANGGE, run

from wangge.data.store import open_store


@pytest.fixture(scope="module")
def imported(plan_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "wangge.gpkg"
    res = run("import", plan_dir, "--store", store, "--plan-id", "xw", "--author", "测试")
    assert res.returncode == 0, res.stderr
    assert "plan xw version 1" in res.stdout
    return store


def test_import_twice_makes_two_versions_and_a_bad_file_fails_cleanly(imported, plan_dir, tmp_path):
    res = run("import", plan_dir / "plan.gpkg", "--store", imported, "--plan-id", "xw")
    assert res.returncode == 0 and "version 2" in res.stdout
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"SQLite format 3\x00 but cut short")
    res = run("import", bad, "--store", imported)
    assert res.returncode == 2 and "bad.gpkg" in res.stderr and "Traceback" not in res.stderr


def test_export_writes_a_gbk_shapefile(imported, tmp_path):
    out = tmp_path / "grids.zip"
    res = run(
        "export", "grids", "--store", imported, "--format", "shp", "--encoding", "GBK",
        "--crs", "EPSG:4549", "--out", out,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    back = gpd.read_file(out, engine="pyogrio", encoding="GBK")
    assert back.crs.to_epsg() == 4549 and back["name"].str.contains("网格").all()
    res = run("export", "nope", "--store", imported, "--out", tmp_path / "x")
    assert res.returncode == 2 and "no layer 'nope'" in res.stderr


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("metric_crs", "EPSG:99999", "unknown metric_crs 'EPSG:99999'"),
        ("metric_crs", "EPSG:4490", "metric_crs 'EPSG:4490' is not projected"),
        ("limits_json", '{"grid": {"min_households": 300}}', "the limits lack the key"),
        ("limits_json", "[1, 2]", "table of tables"),
    ],
)
def test_a_plan_gpkg_with_bad_meta_is_named_and_saves_nothing(
    imported, plan_dir, tmp_path, key, value, needle
):
    bad = tmp_path / "plan.gpkg"
    shutil.copy(plan_dir / "plan.gpkg", bad)
    with sqlite3.connect(bad) as db:
        assert db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key)).rowcount == 1
    before = open_store(imported).versions("xw")
    res = run("import", bad, "--store", imported, "--plan-id", "xw")
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in res.stderr and "plan.gpkg" in res.stderr and "Traceback" not in res.stderr
    assert len(open_store(imported).versions("xw")) == len(before)


@pytest.mark.parametrize(
    "command",
    [
        ("export", "grids", "--out", "x.geojson"),
        ("print", "--out", "sheets"),
        ("adopt", "grids.geojson", "--plan-id", "xw"),
    ],
)
def test_a_read_from_a_missing_store_names_it_and_makes_no_file(command, tmp_path):
    missing = tmp_path / "nowhere" / "wangge.gpkg"
    res = run(*command, "--store", missing)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no store here" in res.stderr and "nowhere" in res.stderr
    assert not missing.exists() and not missing.parent.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_over_http(imported):
    name = f"viewer-{os.getpid()}-{time.monotonic_ns()}"
    made = run("users", "add", name, "--role", "viewer", "--store", imported)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    port = _free_port()
    env = {**os.environ, "WANGGE_PLAN": "xw"}
    proc = subprocess.Popen(
        [WANGGE, "serve", "--store", str(imported), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as r:
                    assert json.load(r)["status"] == "ok"
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.1)
        else:
            pytest.fail("wangge serve did not answer /healthz within 15 s")
        # reads need a key: 401 without one, the page with one
        items = f"{base}/collections/grids/items?limit=2"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(items)
        assert info.value.code == 401
        signed = {"Authorization": f"Bearer {key}"}
        with urllib.request.urlopen(urllib.request.Request(items, headers=signed)) as r:
            body = json.load(r)
        assert body["plan"] == "xw" and body["numberReturned"] == 2
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(
                urllib.request.Request(f"{base}/collections/nope/items", headers=signed)
            )
        assert info.value.code == 404 and json.load(info.value)["where"] == "layer"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
