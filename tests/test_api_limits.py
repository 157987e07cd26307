"""Limits a shared deployment needs: PostgreSQL cancels a statement past the configured
time, and the caller gets a clear 4xx instead of a hung connection or a 500."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import PG_URL
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings


def test_a_statement_past_the_timeout_is_cancelled_and_answered_413(postgis_store, monkeypatch):
    from wangge.data.postgis_store import PostgisStore

    slow = PostgisStore(PG_URL, statement_timeout_ms=100)
    try:
        with slow.engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "100ms"
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.execute(sa.text("SELECT pg_sleep(1)"))

        def heavy(*args, **kwargs):
            with slow.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(1)"))

        monkeypatch.setattr(slow, "plans", heavy)
        client = TestClient(
            create_app(Settings(public_reads=True), slow), raise_server_exceptions=False
        )
        r = client.get("/plans")
        assert r.status_code == 413, r.text
        assert "WANGGE_STATEMENT_TIMEOUT_MS" in r.json()["error"]
    finally:
        slow.close()


def test_the_setting_reaches_the_store(monkeypatch):
    monkeypatch.setenv("WANGGE_STATEMENT_TIMEOUT_MS", "2500")
    assert Settings().statement_timeout_ms == 2500


# every other cap, each exceeded once: a clear 4xx naming what to change -------------------


@pytest.fixture(scope="module")
def capped(plan_dir, tmp_path_factory):
    """An app on a GeoPackage store with the demo plan, its caps set low, and an admin key."""
    from apitools import auth

    from wangge.data.gpkg_store import GpkgStore, read_plan_file
    from wangge.importing import save_plan

    store = GpkgStore(tmp_path_factory.mktemp("caps") / "store.gpkg")
    layers, meta = read_plan_file(plan_dir / "plan.gpkg")
    save_plan(store, layers, meta, "plan.gpkg", "caps", None, "tests", "caps")
    settings = Settings(
        plan="caps",
        max_upload_mb=1.0,
        max_upload_features=3,
        max_bbox_km2=3.0,
        max_limit=20,
        max_batch=2,
        request_timeout_s=0.5,
    )
    with TestClient(create_app(settings, store), headers=auth(store)) as client:
        yield client, store, plan_dir


def _refused(r, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()


def test_upload_size(capped):
    client, _, _ = capped
    _refused(client.post("/plans", params={"plan": "x"}, content=b"0" * 1_100_000), 413, "limit")


def test_features_per_upload(capped):
    client, _, plan_dir = capped
    grids = client.get("/export/grids", params={"format": "geojson"}).content
    _refused(
        client.post("/plans/caps/adopt", params={"filename": "g.geojson"}, content=grids),
        413,
        "WANGGE_MAX_UPLOAD_FEATURES",
    )
    code = client.get("/collections/grids/items", params={"limit": 1}).json()["features"][0]["id"]
    rows = "".join(f"{code},专职网格员,员{i},1391234567{i}\n" for i in range(4))
    csv = ("编码,职务,姓名,电话\n" + rows).encode()
    r = client.post("/plans/caps/roster/import", content=csv)
    assert r.status_code == 413 and "员0" not in r.text and "13912345670" not in r.text
    small = (plan_dir / "plan.gpkg").read_bytes()
    if len(small) <= 1_048_576:  # the demo plan fits the size cap: the feature cap refuses it
        _refused(client.post("/plans", params={"plan": "x"}, content=small), 413, "FEATURES")


def test_page_size(capped):
    """Items above the page cap get the cap and a next link (OGC API – Features: a limit
    above the maximum SHALL NOT be an error); the audit log's page refuses it."""
    client, _, _ = capped
    r = client.get("/collections/grids/items", params={"limit": 10_001})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberReturned"] == 20 < body["numberMatched"]
    after = next(x["href"] for x in body["links"] if x["rel"] == "next")
    assert "limit=20" in after and "offset=20" in after and "version=1" in after
    r = client.get("/audit", params={"limit": 10_001})
    assert r.status_code == 422 and r.json()["where"] == "limit"


def test_bbox_area(capped):
    """The cap counts the part of a bbox over the plan: a client zoomed out to a province
    is answered, and only a bbox whose overlap with the plan passes the cap is refused."""
    client, _, _ = capped
    ok = client.get("/collections/grids/items", params={"bbox": "118.775,32.035,118.785,32.045"})
    assert ok.status_code == 200 and ok.json()["numberReturned"] > 0
    beijing = client.get("/collections/grids/items", params={"bbox": "115,39,117,41"})
    assert beijing.status_code == 200 and beijing.json()["numberReturned"] == 0
    china = client.get("/collections/grids/items", params={"bbox": "73,18,135,53"})
    _refused(china, 413, "WANGGE_MAX_BBOX_KM2")


def test_batch_size(capped):
    client, _, _ = capped
    points = [{"lon": 118.78, "lat": 32.04}] * 3
    _refused(client.post("/coverage/points", json={"points": points}), 413, "at most 2")


def test_tile_zoom_range(capped):
    client, _, _ = capped
    assert client.get("/tiles/grids/14/13597/6660.mvt").status_code in (200, 204)
    r = client.get("/tiles/grids/23/1/1.mvt")
    assert r.status_code == 422 and r.json()["where"] == "z"


def test_request_time(capped, monkeypatch):
    import time

    client, store, _ = capped
    real = store.plans

    def slow():
        time.sleep(1.5)
        return real()

    monkeypatch.setattr(store, "plans", slow)
    _refused(client.get("/plans"), 413, "WANGGE_REQUEST_TIMEOUT_S")


def test_a_locked_geopackage_is_503_with_retry_after(capped, monkeypatch):
    import sqlite3

    client, store, _ = capped

    def locked():
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "plans", locked)
    r = client.get("/plans")
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert "busy" in r.json()["error"]


def test_head_answers_wherever_get_does(capped):
    client, _, _ = capped
    for url in ("/healthz", "/", "/collections/grids/items?limit=2", "/tiles/grids.json"):
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code == 200, url
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
    assert client.head("/collections/nope/items").status_code == 404


def test_cors_only_for_the_origins_set(capped):
    from apitools import auth

    from wangge.api.app import create_app
    from wangge.api.settings import Settings

    client, store, _ = capped
    ask = {
        "Origin": "https://dash.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = client.options("/collections/grids/items", headers=ask)
    assert "access-control-allow-origin" not in closed.headers
    app = create_app(Settings(plan="caps", cors_origins="https://dash.example"), store)
    with TestClient(app) as browser:
        pre = browser.options("/collections/grids/items", headers=ask)
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == "https://dash.example"
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        r = browser.get(
            "/collections/grids/items",
            headers={"Origin": "https://dash.example", **auth(store, "viewer")},
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"]
        other = browser.options("/collections/grids/items", headers={**ask, "Origin": "https://x"})
        assert other.status_code == 400


def test_a_browser_is_asked_for_the_key_and_no_error_shows_the_store(capped):
    """A page opened in a browser gets a Basic challenge (it prompts; the key is the
    password); a script gets Bearer only (a prompt in the editor would be wrong). No error
    names the server's store path."""
    from wangge.api.app import create_app
    from wangge.api.settings import Settings

    client, store, _ = capped
    with TestClient(create_app(Settings(plan="caps"), store)) as anonymous:
        page = anonymous.get("/collections", headers={"Accept": "text/html,*/*;q=0.8"})
        assert page.status_code == 401 and "Basic" in page.headers["www-authenticate"]
        script = anonymous.get("/collections", headers={"Accept": "application/json"})
        assert script.headers["www-authenticate"] == 'Bearer realm="wangge"'
    missing = client.get("/collections/grids/items", params={"version": 99})
    assert missing.status_code == 404 and "has versions 1–" in missing.json()["error"]
    assert str(store.url) not in missing.text and "store.gpkg" not in missing.text
