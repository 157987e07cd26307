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

    from wangge.data.gpkg_store import GpkgStore
    from wangge.data.plan import plan_from_frames, read_plan
    from wangge.importing import save_plan

    store = GpkgStore(tmp_path_factory.mktemp("caps") / "store.gpkg")
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(store, plan_from_frames(layers, meta, "plan.gpkg"), "caps", None, "tests", "caps")
    settings = Settings(
        plan="caps",
        max_upload_mb=1.0,
        max_upload_features=3,
        max_bbox_km2=3.0,
        max_limit=20,
        max_batch=2,
    )  # the request time cap keeps its default here: see test_request_time
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
    export = client.get("/export/grids", params={"format": "geojson"})
    assert export.status_code == 200, export.text
    grids = export.content
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
    """A read that has not begun to answer within the cap is refused. The read here waits
    until the test lets it go, after the answer came, so the outcome does not hang on how
    fast the machine is. The cap is set on an app of its own: set on ``capped`` (0.5 s),
    every read of the module shared it, and on a loaded machine an export became this 413
    (test_features_per_upload then uploaded the error as a GeoJSON file)."""
    import threading

    from apitools import auth

    _, store, _ = capped
    real = store.plans
    release = threading.Event()

    def held():
        release.wait(60)  # a guard, not a figure: the answer comes well before it
        return real()

    monkeypatch.setattr(store, "plans", held)
    app = create_app(Settings(plan="caps", request_timeout_s=0.2), store)
    with TestClient(app, headers=auth(store)) as client:
        try:
            _refused(client.get("/plans"), 413, "WANGGE_REQUEST_TIMEOUT_S")
        finally:
            release.set()


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


# untrusted files and the time cap on uploads -------------------------------------------


def test_a_zip_bomb_roster_is_refused_413_before_it_is_opened(capped):
    """A workbook whose shared strings expand a thousandfold (the attack held the server
    80 s and 1.8 GB) is refused naming the file and the limit, before openpyxl opens it;
    nothing of it is saved or echoed."""
    from test_untrusted import bomb, roster_rows

    client, store, _ = capped
    code = client.get("/collections/grids/items", params={"limit": 1}).json()["features"][0]["id"]
    data = bomb(roster_rows(2, code))
    r = client.post("/plans/caps/roster/import", params={"filename": "名册.xlsx"}, content=data)
    _refused(r, 413, "名册.xlsx: xl/sharedStrings.xml expands")
    assert "times" in r.json()["error"] and "员0" not in r.text
    assert store.roster.get("caps", [code])[code] == []


def test_a_zip_bomb_grid_layer_is_refused_413_before_gdal_opens_it(capped):
    from test_untrusted import _zip

    client, _, _ = capped
    data = _zip({"grids.shp": b"\x00" * 100, "grids.dbf": b" " * (40 * 1024 * 1024)})
    r = client.post("/plans/caps/adopt", params={"filename": "grids.zip"}, content=data)
    _refused(r, 413, "grids.zip: the zip expands to 40.0 MB; the limit is 20.0 MB")


def test_an_upload_still_being_read_is_answered_413_at_the_time_cap(capped, monkeypatch):
    """The time cap holds for uploads until they write: the plan's reader here waits
    until the test lets it go (after the answer came)."""
    import json
    import threading

    from apitools import auth

    from wangge.api import plans

    _, store, _ = capped
    release = threading.Event()
    real = plans.read_plan_bytes
    feature = {"type": "Feature", "geometry": None, "properties": {"level": "street"}}
    body = json.dumps({"type": "FeatureCollection", "features": [feature]})

    def held(data, source):
        release.wait(60)  # a guard, not a figure: the answer comes well before it
        return real(data, source)

    monkeypatch.setattr(plans, "read_plan_bytes", held)
    app = create_app(Settings(plan="caps", request_timeout_s=0.2), store)
    with TestClient(app, headers=auth(store)) as client:
        try:
            r = client.post("/plans", params={"plan": "late"}, content=body)
            _refused(r, 413, "WANGGE_REQUEST_TIMEOUT_S")
            assert "send a smaller file" in r.json()["error"]
        finally:
            release.set()


def test_a_write_claimed_before_the_cap_finishes_and_one_after_is_never_made():
    """The cap and the write meet under one lock: a claimed write is no longer capped, and
    a claim after the 413 raises, so no write follows an answer that said it failed."""
    from wangge.api.caps import Deadline
    from wangge.errors import TooLarge

    reading = Deadline(1.0, armed=False).arm()
    reading.claim()
    assert not reading.expire()  # writing: the middleware lets it finish
    late = Deadline(1.0, armed=True)
    assert late.expire()
    with pytest.raises(TooLarge, match="nothing was saved"):
        late.claim()
    write = Deadline(1.0, armed=False)  # a write that reads no upload is never capped
    assert not write.expire()


def test_tiles_name_an_origin_only_where_cors_admits_it(capped):
    """Tiles sent ``Access-Control-Allow-Origin: *`` though CORS is off by default: any
    page could read a signed-in caller's tiles. Now only the origins set are named."""
    from apitools import auth

    client, store, _ = capped
    url, origin = "/tiles/grids/14/13597/6660.mvt", "https://dash.example"
    r = client.get(url, headers={"Origin": origin})
    assert r.status_code in (200, 204) and "access-control-allow-origin" not in r.headers
    app = create_app(Settings(plan="caps", cors_origins=origin), store)
    with TestClient(app, headers=auth(store, "viewer")) as browser:
        mine = browser.get(url, headers={"Origin": origin})
        assert mine.headers["access-control-allow-origin"] == origin
        other = browser.get(url, headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_key_in_the_address_is_not_written_to_the_access_log(tmp_path):
    """A client that puts its key in the query string (``?api_key=``, ``?token=``, or a
    key anywhere in the address) has it redacted in uvicorn's access log, read here as
    the server wrote it; the request itself is answered as without the key."""
    from e2e_server import start_server

    from wangge.data.accounts import make_account, new_key
    from wangge.data.gpkg_store import GpkgStore

    store = tmp_path / "store.gpkg"
    key = new_key()
    st = GpkgStore(store)
    st.book.add(make_account("logged", "viewer", []), key)
    st.close()
    log = tmp_path / "server.log"
    server = start_server(store, log, log_level="info")
    try:
        for path in (f"/plans?api_key={key}&x=1", f"/plans?token={key}", f"/collections/{key}"):
            status, _ = server.call("GET", path, key=None)
            assert status == 401, path
    finally:
        server.stop()
    text = log.read_text(errors="replace")
    assert "GET /plans?api_key=[redacted]&x=1 HTTP" in text, text[-2000:]
    assert "GET /plans?token=[redacted] HTTP" in text and "/collections/wg_[redacted]" in text
    assert key not in text and key[3:20] not in text
