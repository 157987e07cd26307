"""The planner's editor in a real browser against a real server: sign in with an API key,
select a unit on the map, move it to a neighbouring grid, undo and redo, save a named
version, reload, and meet a conflicting edit from a second browser. Accounts: without a key
the page asks for one and calls nothing; a planner changes only the grids of their
community (others are read-only, and the API refuses them with 403 too); a viewer changes
nothing; sign-out and a revoked key go back to the sign-in form and forget the key. Also:
the page loads nothing from outside, and the editor's routes answer 503, 304 and 404 where
they should.

Screenshots of each step go to artifacts/screenshots/ (CI keeps artifacts/).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import need
from e2e_server import (
    ADMIN,
    REVOCABLE,
    VIEWER,
    Server,
    add_accounts,
    chromium,
    import_plan,
    planner_of,
    start_server,
)

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
PLAN = "demo"
VIEWPORT = {"width": 1400, "height": 860}
CANVAS = "#map canvas.maplibregl-canvas"
READY = "() => !!(window.wanggeEditor && window.wanggeEditor.ready)"
#: Where the editor keeps the key (sessionStorage, this tab only).
KEY_ITEM = "wangge.apiKey"
STORED_KEY = f"() => sessionStorage.getItem({json.dumps(KEY_ITEM)})"
#: What the page shows of its state (the map object itself does not serialise).
SNAPSHOT = """() => {
  const s = window.wanggeEditor;
  const grids = {};
  for (const [code, g] of Object.entries(s.grids)) grids[code] = g.households;
  return {version: s.version, busy: s.busy, conflict: s.conflict, lastError: s.lastError,
          selected: s.selected, undo: s.undo, redo: s.redo, changed: s.changed,
          renderedVersion: s.renderedVersion, latest: s.latest, grids,
          violations: s.violations.map(v => [v.level, v.code, v.check]),
          versions: s.versions.map(v => [v.version, v.name || ""]), lastWrite: s.lastWrite,
          locks: s.locks, mode: s.mode, message: s.message,
          diff: s.diff && s.diff.moved.map(m => String(m.unit))};
}"""


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(plan_dir, tmp_path_factory):
    """The demo plan imported into a fresh GeoPackage store, accounts added (an admin, a
    viewer, a planner per community), served by uvicorn with reads behind a key.
    WANGGE_E2E_URL points the tests at a server already running (plan ``demo``) instead,
    with an admin's key in WANGGE_E2E_KEY; the tests of other accounts skip there."""
    from wangge.api import editor

    assert not editor._missing_vendor(), "maps/static/vendor is committed and shipped"
    if os.environ.get("WANGGE_E2E_URL"):
        keys = {ADMIN: os.environ["WANGGE_E2E_KEY"]} if os.environ.get("WANGGE_E2E_KEY") else {}
        yield Server(os.environ["WANGGE_E2E_URL"].rstrip("/"), keys=keys)
        return
    d = tmp_path_factory.mktemp("e2e")
    store = d / "store.gpkg"
    import_plan(plan_dir, store, PLAN)
    keys = add_accounts(store, PLAN)
    SHOTS.parent.mkdir(parents=True, exist_ok=True)
    srv = start_server(store, SHOTS.parent / "e2e-server.log", keys)
    yield srv
    srv.stop()


def need_account(server: Server, label: str) -> None:
    if label not in server.keys:
        # an outside server (WANGGE_E2E_URL) brings only its admin key; in CI this fails
        need("an account", f"no {label} key for {server.url}: these tests add accounts")


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


# --- helpers --------------------------------------------------------------------------


def shot(page, name: str) -> None:
    """Screenshot once the map has finished moving and drawing (at most 5 s later)."""
    map_idle(page, timeout_ms=5000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def sign_in(page, key: str) -> None:
    """Type the key into the sign-in form and send it, as a planner would."""
    page.locator("#signin").wait_for(state="visible", timeout=30_000)
    page.locator("#signin-key").fill(key)
    page.locator("#signin-ok").click()


def wait_ready(page) -> None:
    try:
        page.wait_for_function(READY, timeout=60_000)
    except Exception as exc:
        state = page.evaluate(
            "() => [window.wanggeEditor && window.wanggeEditor.lastError,"
            " document.querySelector('#signin-msg').textContent]"
        )
        raise AssertionError(f"editor not ready: {state}; page errors: {page.errors}") from exc


def new_page(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return context, page


def open_editor(browser, server: Server, query: str = "", account: str = ADMIN):
    """A new browser context on the editor, signed in as ``account`` (a key label)."""
    need_account(server, account)
    context, page = new_page(browser)
    page.goto(f"{server.url}/editor?plan={PLAN}{query}")
    sign_in(page, server.keys[account])
    wait_ready(page)
    return context, page


def api_calls(urls: list[str], server: Server) -> list[str]:
    """The requests to the API among ``urls``: everything of the server but the page and
    its static files."""
    return [
        u
        for u in urls
        if u.startswith(server.url + "/") and not urlparse(u).path.startswith("/editor")
    ]


def page_fetch(page, method: str, path: str, body=None) -> dict:
    """A request from the page with the key it signed in with: {status, body}."""
    return page.evaluate(
        """async ([method, path, body, item]) => {
             const key = sessionStorage.getItem(item);
             const res = await fetch(path, {method, body: body && JSON.stringify(body),
               headers: {"Content-Type": "application/json", Authorization: `Bearer ${key}`}});
             return {status: res.status, body: await res.json()};
           }""",
        [method, path, body, KEY_ITEM],
    )


def snapshot(page) -> dict:
    return page.evaluate(SNAPSHOT)


def wait_version(page, version: int, timeout: float = 30_000) -> dict:
    """Wait until the page has adopted ``version``, finished writing and drawn its tiles."""
    try:
        page.wait_for_function(
            """(v) => { const s = window.wanggeEditor;
                        return s.version === v && !s.busy && s.renderedVersion === v; }""",
            arg=version,
            timeout=timeout,
        )
    except Exception as exc:
        s = snapshot(page)
        s.pop("grids")
        raise AssertionError(f"the editor did not reach version {version}: {s}") from exc
    return snapshot(page)


def map_idle(page, timeout_ms: int = 30_000) -> None:
    """Wait for the map's next ``idle``: no camera move, every visible tile drawn."""
    page.evaluate(
        """(ms) => new Promise((resolve) => {
             const m = window.wanggeEditor && window.wanggeEditor.map;
             if (!m) return resolve();
             m.once('idle', resolve); m.triggerRepaint(); setTimeout(resolve, ms); })""",
        timeout_ms,
    )


def zoom_to(page, lonlat) -> tuple[float, float]:
    """Centre the map on a point at a street-level zoom; the point's pixel on the canvas."""
    page.evaluate("(p) => window.wanggeEditor.map.jumpTo({center: p, zoom: 17.5})", list(lonlat))
    map_idle(page)
    return page.evaluate(
        "(p) => { const q = window.wanggeEditor.map.project(p); return [q.x, q.y]; }",
        list(lonlat),
    )


def click_lonlat(page, lonlat, modifiers=None) -> None:
    """Zoom the map onto a point and click it on the canvas, as a planner would."""
    x, y = zoom_to(page, lonlat)
    page.locator(CANVAS).click(position={"x": x, "y": y}, modifiers=modifiers or [])


def panel_households(page, grid: str) -> int:
    text = page.locator(f'#grid-table tr[data-code="{grid}"] td.hh .v').inner_text()
    return int("".join(ch for ch in text if ch.isdigit()))


def pick_move(server: Server, scoped: bool = False) -> dict:
    """A unit with households on the boundary of its grid, and the neighbouring grid across
    that boundary; preferably one whose move takes a grid out of its limits, so that a
    known violation appears. ``scoped``: the neighbouring grid is in the unit's community,
    and the unit's grid also borders a grid of another community (``outside``, with a
    point inside it, ``outside_point``)."""
    import geopandas as gpd

    state = server.get(f"/plans/{PLAN}/state")
    v = state["version"]
    fc = server.get(f"/collections/units/items?plan={PLAN}&version={v}&limit=10000")
    units = gpd.GeoDataFrame.from_features(fc["features"], crs=4326)
    assert len(units) == fc.get("numberMatched", len(units)), "units did not fit one page"
    units["grid_code"] = units["parent_code"].astype(str).str[:15]
    units["households"] = units["households"].astype(float)
    grids = {g["code"]: g for g in state["grids"]}
    shapes = units.dissolve("grid_code").geometry
    sizes = units.groupby("grid_code").size()
    lim = state["limits"]["grid"]
    existing = {(x["code"], x["check"]) for x in state["violations"]}
    best = None
    for u in units[units["households"] > 0].itertuples():
        g = grids.get(u.grid_code)
        if g is None or g["locked"]:
            continue
        h = u.households
        if sizes[u.grid_code] < 2 or g["households"] - h <= 0:
            continue  # the grid's only unit: moving it would empty the grid
        outside = sorted(
            (x[-3] == "9", x)  # a basic grid first, then a dedicated one
            for x in g["neighbours"]
            if x[:12] != g["code"][:12] and x in shapes.index
        )
        if scoped and not outside:
            continue
        for n in g["neighbours"]:
            if grids[n]["locked"] or n not in shapes.index:
                continue
            if scoped and n[:12] != g["code"][:12]:
                continue
            shared = u.geometry.boundary.intersection(shapes[n].boundary).length
            if shared < 2e-5:  # about 2 m: a real shared edge, not a corner
                continue
            flips = None
            if g["households"] - h < lim["lo"] <= g["households"]:
                flips = g["code"]
            elif n_hh_over(grids[n]["households"], h, lim):
                flips = n
            if flips and (flips, "limits") in existing:
                flips = None
            same_community = n[:12] == g["code"][:12]
            modest = 5 <= h <= 150
            score = (flips is not None, same_community, modest, u.geometry.area)
            if best is None or score > best[0]:
                point = u.geometry.representative_point()
                inside_n = shapes[n].representative_point()
                best = (
                    score,
                    {
                        "unit": str(u.code),
                        "from": g["code"],
                        "to": n,
                        "households": round(h),
                        "point": [point.x, point.y],
                        "to_point": [inside_n.x, inside_n.y],
                        "flips": flips,
                        "version": v,
                        "community": g["code"][:12],
                        "outside": outside[0][1] if outside else None,
                        "outside_point": (
                            list(shapes[outside[0][1]].representative_point().coords[0])
                            if outside
                            else None
                        ),
                    },
                )
    assert best is not None, "no unit on a grid boundary with households"
    return best[1]


def n_hh_over(households: float, h: float, lim: dict) -> bool:
    return households <= lim["hi"] < households + h


# --- the editor's routes without a browser ---------------------------------------------


def _editor_app():
    from fastapi import FastAPI

    from wangge.api import editor, errors

    app = FastAPI()
    errors.install(app)
    app.include_router(editor.router)
    return app


def test_editor_routes(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from wangge.api import editor

    client = TestClient(_editor_app())
    # committed and shipped as package data: a missing file is a broken checkout or wheel
    assert not editor._missing_vendor()
    page = client.get("/editor?plan=demo&lang=en")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/editor/static/vendor/maplibre-gl.js" in page.text
    assert 'lang="en"' in page.text and "__ROOT__" not in page.text
    for path, kind in [
        ("/editor/static/editor.js", "text/javascript"),
        ("/editor/static/editor.css", "text/css"),
        ("/editor/static/vendor/maplibre-gl.js", "text/javascript"),
        ("/editor/static/vendor/maplibre-gl.css", "text/css"),
    ]:
        res = client.get(path)
        assert res.status_code == 200, path
        assert res.headers["content-type"].startswith(kind), path
        assert res.headers["cache-control"] == "no-cache"
        again = client.get(path, headers={"If-None-Match": res.headers["etag"]})
        assert again.status_code == 304 and not again.content
    for path in [
        "/editor/static/package.json",
        "/editor/static/../api.py",
        "/editor/static/%2e%2e/%2e%2e/api/editor.py",
        "/editor/static/vendor/%2e%2e/editor/editor.js",
        "/editor/static/node_modules/maplibre-gl/dist/maplibre-gl.js",
        "/editor/static/vendor/nothing.js",
    ]:
        res = client.get(path)
        assert res.status_code == 404, path
        assert set(res.json()) == {"error", "detail", "where"}
    # without the vendored build the page says which command to run
    monkeypatch.setattr(editor, "VENDOR_DIR", tmp_path)
    res = client.get("/editor")
    assert res.status_code == 503
    body = res.json()
    assert "bash scripts/vendor.sh" in body["error"]
    assert body["detail"]["run"] == "bash scripts/vendor.sh --update"


# --- the browser tests ----------------------------------------------------------------


def test_editor_loads_nothing_from_outside(server, browser):
    need_account(server, ADMIN)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    tiles: list = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("response", lambda r: "/tiles/" in r.url and tiles.append(r))
    page.on("pageerror", lambda e: errors.append(str(e)))
    start = time.perf_counter()
    page.goto(f"{server.url}/editor?plan={PLAN}")
    sign_in(page, server.keys[ADMIN])
    page.wait_for_function(READY, timeout=60_000)
    ready_s = time.perf_counter() - start
    page.wait_for_load_state("networkidle")
    outside = [
        u for u in requested if not u.startswith((server.url + "/", "data:", "blob:", "about:"))
    ]
    assert not outside, f"requests leaving the server: {outside}"
    assert any("/tiles/units/" in u and ".mvt" in u for u in requested), "no unit tiles loaded"
    # every TileJSON and tile request MapLibre made carried the key, and was answered
    mvt = [r for r in tiles if ".mvt" in r.url]
    assert mvt and all(r.status in (200, 204, 304) for r in tiles), [
        (r.url, r.status) for r in tiles if r.status not in (200, 204, 304)
    ]
    bearer = f"Bearer {server.keys[ADMIN]}"
    assert all(r.request.all_headers().get("authorization") == bearer for r in tiles)
    # an admin may change every grid: none is drawn read-only
    drawn = page.evaluate(
        """() => ['grids-fill', 'grids-readonly'].map(l =>
             window.wanggeEditor.map.queryRenderedFeatures({layers: [l]}).length)"""
    )
    assert drawn[0] > 0 and drawn[1] == 0, drawn
    assert page.locator("#account-role").inner_text() == "管理员"
    # the key is kept in this tab's session only: not in localStorage, not in the address
    assert page.evaluate(STORED_KEY) == server.keys[ADMIN]
    assert page.evaluate("() => localStorage.length") == 0
    assert server.keys[ADMIN] not in page.url
    # exports are fetched with the key and handed over as a file
    page.locator("#export-menu summary").click()
    with page.expect_download() as download:
        page.locator("#export-geojson").click()
    saved = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert saved["type"] == "FeatureCollection" and saved["features"]
    assert download.value.suggested_filename.startswith(f"{PLAN}-v")
    attribution = page.locator(".maplibregl-ctrl-attrib")
    assert "OpenStreetMap contributors" in attribution.inner_text()
    assert attribution.is_visible()
    assert page.locator("#btn-save").inner_text() == "保存版本"
    shot(page, "00-editor-zh")
    page.locator("#lang-en").click()
    assert page.locator("#btn-save").inner_text() == "Save version"
    assert page.locator("#btn-signout").inner_text() == "Sign out"
    assert page.evaluate("() => window.wanggeEditor.lang") == "en"
    assert "lang=en" in page.url
    shot(page, "00-editor-en")
    assert not errors, errors
    print(f"editor ready in {ready_s:.2f} s with {len(requested)} requests, all local")
    context.close()


def test_move_undo_save_reload_and_conflict(server, browser):
    timings: dict[str, float] = {}
    move = pick_move(server)
    unit, g, n, h = move["unit"], move["from"], move["to"], move["households"]

    start = time.perf_counter()
    ctx1, page = open_editor(browser, server)
    timings["ready_s"] = time.perf_counter() - start
    s0 = snapshot(page)
    v0 = s0["version"]
    assert v0 == move["version"]
    hg, hn = s0["grids"][g], s0["grids"][n]
    assert panel_households(page, g) == hg and panel_households(page, n) == hn
    shot(page, "01-loaded")

    # select the unit by clicking it on the map
    click_lonlat(page, move["point"])
    page.wait_for_function("(u) => window.wanggeEditor.selected.join() === u", arg=unit)
    target = page.locator(f'#sel-targets button[data-grid="{n}"]')
    assert target.is_enabled()
    shot(page, "02-selected")

    # move it to the neighbouring grid with the panel's button
    start = time.perf_counter()
    target.click()
    s1 = wait_version(page, v0 + 1)
    timings["move_s"] = time.perf_counter() - start
    timings["move_request_ms"] = s1["lastWrite"]["ms"]
    assert s1["grids"][g] == hg - h and s1["grids"][n] == hn + h
    assert panel_households(page, g) == hg - h and panel_households(page, n) == hn + h
    assert {g, n} <= set(s1["changed"])
    assert page.locator(f'#grid-table tr.changed[data-code="{n}"]').count() == 1
    if move["flips"]:
        assert [["grid", move["flips"], "limits"]] == [
            v for v in s1["violations"] if v[1] == move["flips"] and v[2] == "limits"
        ]
        assert page.locator(f'#violations li[data-code="{move["flips"]}"]').count() >= 1
    assert s1["violations"] != s0["violations"] or not move["flips"]
    assert s1["undo"] == 1 and s1["redo"] == 0
    shot(page, "03-moved")
    page.locator("#tab-btn-checks").click()
    shot(page, "04-checks")
    if move["flips"]:
        page.locator(f'#violations li[data-code="{move["flips"]}"]').first.click()
        page.wait_for_timeout(500)
        shot(page, "04b-violation-zoomed")
    page.locator("#tab-btn-grids").click()

    # undo and redo from the keyboard: two more versions, the counts back and forth
    page.locator(CANVAS).focus()
    page.keyboard.press("Control+z")
    s2 = wait_version(page, v0 + 2)
    assert s2["grids"][g] == hg and s2["grids"][n] == hn
    assert s2["undo"] == 0 and s2["redo"] == 1
    page.keyboard.press("Control+y")
    s3 = wait_version(page, v0 + 3)
    assert s3["grids"][g] == hg - h and s3["grids"][n] == hn + h
    assert s3["undo"] == 1 and s3["redo"] == 0

    # a second planner opens the plan now, before the save
    ctx2, page2 = open_editor(browser, server)
    assert snapshot(page2)["version"] == v0 + 3

    # save a named version through the dialog
    name = "街道审核稿 e2e"
    page.locator("#btn-save").click()
    page.locator("#save-name").fill(name)
    page.locator("#save-comment").fill("moved one unit")
    start = time.perf_counter()
    page.locator("#save-comment").press("Enter")  # submits with the save button
    s4 = wait_version(page, v0 + 4)
    timings["save_s"] = time.perf_counter() - start
    page.wait_for_function("(n) => window.wanggeEditor.versions.some(v => v.name === n)", arg=name)
    page.locator("#tab-btn-versions").click()
    assert name in page.locator("#version-list").inner_text()
    assert s4["grids"][n] == hn + h
    shot(page, "05-saved")

    # reload: the unit is in its new grid, and the version list shows the name
    start = time.perf_counter()
    page.reload()
    page.wait_for_function(READY, timeout=60_000)
    timings["reload_s"] = time.perf_counter() - start
    s5 = snapshot(page)
    assert s5["version"] == v0 + 4
    assert s5["grids"][g] == hg - h and s5["grids"][n] == hn + h
    assert [v0 + 4, name] in s5["versions"]
    item = server.get(f"/collections/units/items/{unit}?plan={PLAN}&version={v0 + 4}")
    props = item["properties"] if "properties" in item else item["features"][0]["properties"]
    assert str(props["parent_code"]).startswith(n)
    drawn = page.evaluate(
        """(u) => window.wanggeEditor.map.querySourceFeatures('units', {sourceLayer: 'units'})
                 .filter(f => String(f.properties.code) === u)
                 .map(f => String(f.properties.parent_code))""",
        unit,
    )
    assert drawn and all(code.startswith(n) for code in drawn), drawn
    page.locator("#tab-btn-versions").click()
    assert name in page.locator("#version-list").inner_text()
    shot(page, "06-reloaded")

    # the second planner, still on the old version, moves the unit back: 409, shown
    click_lonlat(page2, move["point"])
    page2.wait_for_function("(u) => window.wanggeEditor.selected.join() === u", arg=unit)
    page2.locator(f'#sel-targets button[data-grid="{g}"]').click()
    page2.wait_for_function("() => window.wanggeEditor.conflict && !window.wanggeEditor.busy")
    banner = page2.locator("#conflict")
    assert banner.is_visible()
    assert "冲突" in banner.inner_text() and f"最新版本 {v0 + 4}" in banner.inner_text()
    c = snapshot(page2)
    assert c["lastError"]["status"] == 409 and c["version"] == v0 + 3
    assert page2.locator("#btn-undo").is_disabled() and page2.locator("#btn-save").is_disabled()
    shot(page2, "07-conflict")
    # nothing was overwritten
    assert server.get(f"/plans/{PLAN}/versions")[-1]["version"] == v0 + 4
    assert server.get(f"/plans/{PLAN}/state")["grids"] and snapshot(page)["version"] == v0 + 4

    # reload from the banner: the latest version, editable again
    page2.locator("#btn-reload").click()
    s6 = wait_version(page2, v0 + 4)
    assert not s6["conflict"] and s6["grids"][n] == hn + h
    assert banner.is_hidden()
    shot(page2, "08-after-conflict-reload")

    assert not page.errors and not page2.errors, page.errors + page2.errors
    ctx2.close()
    ctx1.close()
    print("editor e2e timings:", {k: round(v, 3) for k, v in timings.items()})


def test_box_lock_move_mode_complete_compare_restore(server, browser):
    move = pick_move(server)
    unit, g, n, h = move["unit"], move["from"], move["to"], move["households"]
    ctx, page = open_editor(browser, server)
    s0 = snapshot(page)
    v0 = s0["version"]

    # box selection: shift-drag a small box around the unit
    x, y = zoom_to(page, move["point"])
    box = page.locator(CANVAS).bounding_box()
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + x - 12, box["y"] + y - 12)
    page.mouse.down()
    page.mouse.move(box["x"] + x + 12, box["y"] + y + 12, steps=6)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function("(u) => window.wanggeEditor.selected.includes(u)", arg=unit)
    shot(page, "09-box-selected")
    page.keyboard.press("Escape")
    assert snapshot(page)["selected"] == []

    # lock the neighbouring grid from the table: the move there is then refused in the panel
    page.locator(f'#grid-table tr[data-code="{n}"] button.lock-toggle').click()
    s1 = wait_version(page, v0 + 1)
    assert n in s1["locks"]
    assert page.locator(f'#grid-table tr.locked[data-code="{n}"]').count() == 1
    click_lonlat(page, move["point"])
    page.wait_for_function("(u) => window.wanggeEditor.selected.join() === u", arg=unit)
    assert page.locator(f'#sel-targets button[data-grid="{n}"]').is_disabled()
    shot(page, "10-locked")
    page.locator("#btn-undo").click()  # undo the lock
    s2 = wait_version(page, v0 + 2)
    assert n not in s2["locks"] and s2["redo"] == 1

    # "move to…" mode from the keyboard, then click the target grid on the map
    page.keyboard.press("m")
    assert snapshot(page)["mode"] == "moveto"
    click_lonlat(page, move["to_point"])
    s3 = wait_version(page, v0 + 3)
    assert s3["grids"][g] == s0["grids"][g] - h and s3["grids"][n] == s0["grids"][n] + h
    assert s3["mode"] == "select"

    # complete: re-solve around the edit and say what changed
    start = time.perf_counter()
    page.locator("#btn-complete").click()
    s4 = wait_version(page, v0 + 4, timeout=60_000)
    complete_s = time.perf_counter() - start
    assert s4["lastWrite"]["kind"] == "complete"
    assert "自动补全" in s4["message"]
    assert page.locator("#grid-changed").is_checked()
    shot(page, "11-completed")

    # compare the first version with the current one, from the versions tab
    page.locator("#tab-btn-versions").click()
    page.select_option("#cmp-a", str(v0))
    page.select_option("#cmp-b", str(v0 + 4))
    page.locator("#btn-compare").click()
    page.wait_for_function("() => window.wanggeEditor.diff !== null")
    diff = snapshot(page)["diff"]
    assert diff, "no moved units between the versions"
    assert f"版本 {v0} → {v0 + 4}" in page.locator("#diff-result").inner_text()
    # the change report: counts of grids by status, a row per changed grid, and the
    # changed grids' outlines before (dashed) and after drawn from its GeoJSON
    summary = page.evaluate("() => window.wanggeEditor.diff.changes.summary")
    report, micro = summary["grid"], summary["microgrid"]
    # units moved, so micro-grids changed (grids too, unless completion drew them back)
    assert micro["created"] + micro["changed"] + micro["retired"] >= 1, summary
    assert summary["units_moved"] == len(diff), summary
    grids_line = page.locator("#diff-result .diff-grids").inner_text()
    assert f"调整 {report['changed']}" in grids_line and f"不变 {report['kept']}" in grids_line
    rows = page.locator("#diff-result .diff-grid-table tbody tr")
    assert rows.count() == sum(report[k] for k in ("created", "changed", "retired", "recounted"))
    # the outlines come from the report's GeoJSON, which the map's worker loads in turn
    outlined = """() => window.wanggeEditor.map.querySourceFeatures("changes")
                 .filter(f => ["changed", "created"].includes(f.properties.status)).length"""
    if report["changed"] + report["created"]:
        page.wait_for_function(f"() => ({outlined})() > 0", timeout=30_000)
    else:
        assert page.evaluate(outlined) == 0
    shot(page, "12-compare")

    # restore the first version: every grid's count is back
    page.locator(f'#version-list li[data-version="{v0}"] button[data-action="restore"]').click()
    s5 = wait_version(page, v0 + 5)
    assert s5["grids"] == s0["grids"]
    shot(page, "13-restored")
    assert not page.errors, page.errors
    ctx.close()
    print(f"complete took {complete_s:.2f} s; diff of {len(diff)} units")


# --- accounts: signing in, territory, read-only, signing out ----------------------------


def test_without_a_key_the_editor_asks_for_one(server, browser):
    """(a) No key: the sign-in form, and not one call to the API; the data routes answer
    401 without a key; a wrong key is refused with the server's message, and not kept."""
    context, page = new_page(browser)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{server.url}/editor?plan={PLAN}")
    page.locator("#signin").wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    assert page.locator("#signin-key").get_attribute("type") == "password"
    assert page.locator("#map").is_hidden() and page.locator("#btn-save").is_hidden()
    assert not api_calls(requested, server), api_calls(requested, server)
    assert page.evaluate(STORED_KEY) is None
    shot(page, "20-signin")
    # what the page would have asked answers 401 (with the reason) without a key
    for path in [
        "/plans",
        f"/plans/{PLAN}/state",
        f"/plans/{PLAN}/versions",
        f"/tiles?plan={PLAN}",
        f"/tiles/units.json?plan={PLAN}",
        f"/tiles/units/14/13722/6693.mvt?plan={PLAN}",
        f"/export/grids?plan={PLAN}",
        "/me",
    ]:
        status, body = server.call("GET", path, key=None)
        assert status == 401, (path, status, body)
        assert set(body) == {"error", "detail", "where"} and "API key" in body["error"]
    # a wrong key: /me says 401, the form says so, nothing else is asked and nothing kept
    page.locator("#signin-key").fill("wg_not-a-real-key")
    page.locator("#signin-ok").click()
    msg = page.locator("#signin-msg")
    page.wait_for_function(
        "() => document.querySelector('#signin-msg').textContent.includes('401')"
    )
    assert "已吊销" in msg.inner_text()  # the server's reason, in Chinese
    assert page.locator("#signin-key").input_value() == ""
    assert [urlparse(u).path for u in api_calls(requested, server)] == ["/me"]
    assert page.evaluate(STORED_KEY) is None
    assert "wg_not-a-real-key" not in page.url
    # the form speaks English too
    page.locator("#lang-en").click()
    assert page.locator("#signin-ok").inner_text() == "Sign in"
    assert "refused" in msg.inner_text() and "unknown, revoked or expired" in msg.inner_text()
    shot(page, "21-signin-refused-en")
    assert not page.errors, page.errors
    context.close()


def rendered_codes(page, lonlat, layer: str) -> list[str]:
    """The codes of the features of a map layer drawn at a point."""
    return page.evaluate(
        """([p, layer]) => { const m = window.wanggeEditor.map;
             return m.queryRenderedFeatures(m.project(p), {layers: [layer]})
                     .map(f => String(f.properties.code)); }""",
        [list(lonlat), layer],
    )


def test_planner_edits_only_inside_their_community(server, browser):
    """(b) A planner scoped to one community: their name, role and scope on screen; a move
    between two grids of the community is saved (201); a grid of another community is
    greyed, has no lock toggle and cannot be a move's target, on the panel or the map; the
    API refuses the move there with the page's own key (403), and a restore across it shows
    the server's 403 message."""
    move = pick_move(server, scoped=True)
    unit, g, n, h = move["unit"], move["from"], move["to"], move["households"]
    other, community = move["outside"], move["community"]
    need_account(server, planner_of(community))
    assert other and other[:12] != community and n[:12] == community

    # the admin locks the other community's grid: a version the planner cannot restore past
    state = server.get(f"/plans/{PLAN}/state")
    locked = server.post(
        f"/plans/{PLAN}/edits",
        {"base_version": state["version"], "moves": [], "locks": sorted({*state["locks"], other})},
    )
    before_lock = state["version"]

    ctx, page = open_editor(browser, server, account=planner_of(community))
    s0 = snapshot(page)
    v0 = s0["version"]
    assert v0 == locked["version"]["version"]

    # who is signed in
    me = page.evaluate("() => window.wanggeEditor.me")
    assert me["name"] == f"e2e-planner-{community}" and me["role"] == "planner"
    assert me["scopes"] == [community]
    assert page.locator("#account-name").inner_text() == me["name"]
    assert page.locator("#account-role").inner_text() == "规划员"
    assert community in page.locator("#account-scopes").inner_text()
    assert community in page.locator("#access-note").inner_text()
    assert page.locator("#btn-signout").is_visible()

    # the other community's grid: read-only in the table, no lock toggle; ours has one
    assert page.locator(f'#grid-table tr.readonly[data-code="{other}"]').count() == 1
    assert page.locator(f'#grid-table tr[data-code="{other}"] button.lock-toggle').count() == 0
    assert page.locator(f'#grid-table tr[data-code="{g}"] button.lock-toggle').count() == 1
    assert page.locator(f'#grid-table tr.readonly[data-code="{g}"]').count() == 0
    # and hatched on the map
    zoom_to(page, move["outside_point"])
    assert other in rendered_codes(page, move["outside_point"], "grids-readonly")
    zoom_to(page, move["point"])
    assert rendered_codes(page, move["point"], "grids-readonly") == []
    assert g in rendered_codes(page, move["point"], "grids-fill")
    # its units cannot be selected
    click_lonlat(page, move["outside_point"])
    page.wait_for_function("() => window.wanggeEditor.message.includes('管辖范围')")
    assert snapshot(page)["selected"] == []
    shot(page, "22-planner-readonly-grid")

    # select a unit of ours: the neighbour in the community is a target, the other is not
    click_lonlat(page, move["point"])
    page.wait_for_function("(u) => window.wanggeEditor.selected.join() === u", arg=unit)
    inside = page.locator(f'#sel-targets button[data-grid="{n}"]')
    across = page.locator(f'#sel-targets button[data-grid="{other}"]')
    assert inside.is_enabled()
    assert across.is_disabled()
    assert "不在你的管辖范围" in across.get_attribute("title")
    assert "只读" in across.inner_text()
    shot(page, "23-planner-targets")
    # nor by clicking it on the map in "move to…" mode
    page.keyboard.press("m")
    assert snapshot(page)["mode"] == "moveto"
    click_lonlat(page, move["outside_point"])
    page.wait_for_function("() => window.wanggeEditor.message.includes('不能移入')")
    s = snapshot(page)
    assert s["version"] == v0 and s["selected"] == [unit] and not s["busy"]
    page.keyboard.press("Escape")
    assert snapshot(page)["mode"] == "select"

    # the move inside the community is saved
    with page.expect_response(
        lambda r: r.url.endswith(f"/plans/{PLAN}/edits") and r.request.method == "POST"
    ) as answer:
        inside.click()
    assert answer.value.status == 201
    s1 = wait_version(page, v0 + 1)
    assert s1["grids"][g] == s0["grids"][g] - h and s1["grids"][n] == s0["grids"][n] + h
    assert s1["lastError"] is None
    shot(page, "24-planner-moved")

    # the API refuses the move across with the page's own key, and saves nothing
    refused = page_fetch(
        page,
        "POST",
        f"/plans/{PLAN}/edits",
        {"base_version": v0 + 1, "moves": [{"unit": unit, "to": other}]},
    )
    assert refused["status"] == 403, refused
    assert refused["body"]["where"] == "scope" and other in refused["body"]["error"]
    assert server.get(f"/plans/{PLAN}/versions")[-1]["version"] == v0 + 1

    # a restore across the other community's lock: the server's 403 message is shown
    page.locator("#tab-btn-versions").click()
    page.locator(
        f'#version-list li[data-version="{before_lock}"] button[data-action="restore"]'
    ).click()
    page.wait_for_function(
        "() => { const s = window.wanggeEditor;"
        " return !s.busy && s.lastError && s.lastError.status === 403; }"
    )
    banner = page.locator("#error")
    assert banner.is_visible()
    # the server's reason, in Chinese (maps/editor/messages.js)
    assert "无权操作（403）" in banner.inner_text() and "管辖范围" in banner.inner_text()
    assert snapshot(page)["version"] == v0 + 1
    assert server.get(f"/plans/{PLAN}/versions")[-1]["version"] == v0 + 1
    shot(page, "25-planner-restore-403")
    assert not page.errors, page.errors
    ctx.close()

    # put the other community's grid back as it was
    state = server.get(f"/plans/{PLAN}/state")
    server.post(
        f"/plans/{PLAN}/edits",
        {
            "base_version": state["version"],
            "moves": [],
            "locks": sorted(set(state["locks"]) - {other}),
        },
    )


def test_viewer_sees_everything_read_only(server, browser):
    """A viewer: every grid read-only, no lock toggle, no selection, the edit buttons
    disabled and saying why; exports still work."""
    ctx, page = open_editor(browser, server, account=VIEWER)
    assert page.locator("#account-role").inner_text() == "查看者"
    assert "只读" in page.locator("#access-note").inner_text()
    assert page.locator("#grid-table button.lock-toggle").count() == 0
    rows = page.locator("#grid-table tr.grid").count()
    assert rows and page.locator("#grid-table tr.grid.readonly").count() == rows
    for button in ["#btn-save", "#btn-complete", "#btn-undo", "#btn-lock", "#btn-moveto"]:
        assert page.locator(button).is_disabled(), button
        assert "只读" in page.locator(button).get_attribute("title"), button
    move = pick_move(server)
    click_lonlat(page, move["point"])
    page.wait_for_function("() => window.wanggeEditor.message.includes('只读')")
    assert snapshot(page)["selected"] == []
    assert move["from"] in rendered_codes(page, move["point"], "grids-readonly")
    page.locator("#tab-btn-versions").click()
    restores = page.locator('#version-list button[data-action="restore"]')
    assert restores.count() and all(restores.nth(i).is_disabled() for i in range(restores.count()))
    with page.expect_download() as download:
        page.locator('#tab-versions button[data-export="geojson"]').click()
    assert json.loads(Path(download.value.path()).read_text(encoding="utf-8"))["features"]
    shot(page, "26-viewer")
    assert not page.errors, page.errors
    ctx.close()


def test_sign_out_forgets_the_key(server, browser):
    """(c) Sign-out forgets the key: the sign-in form again, no key in the tab, and a reload
    stays signed out without calling the API."""
    need_account(server, planner_of("320102001001"))
    ctx, page = open_editor(browser, server, account=planner_of("320102001001"))
    key = server.keys[planner_of("320102001001")]
    assert page.evaluate(STORED_KEY) == key
    page.locator("#btn-signout").click()
    page.locator("#signin").wait_for(state="visible")
    assert "已退出登录" in page.locator("#signin-msg").inner_text()
    assert page.evaluate(STORED_KEY) is None
    assert page.evaluate("() => window.wanggeEditor.me") is None
    assert page.evaluate("() => localStorage.length") == 0
    assert key not in page.url and key not in page.content()
    assert page.locator("#account").is_hidden() and page.locator("#map").is_hidden()
    shot(page, "27-signed-out")
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.reload()
    page.locator("#signin").wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    assert not api_calls(requested, server), api_calls(requested, server)
    assert page.locator("#signin-msg").inner_text() == ""
    # and signing in again works
    sign_in(page, key)
    wait_ready(page)
    assert not page.errors, page.errors
    ctx.close()


def test_revoked_key_returns_to_sign_in(server, browser):
    """A key revoked while the page is open: the next request answers 401, and the page goes
    back to the sign-in form with the server's message, the key forgotten."""
    need_account(server, REVOCABLE)
    if server.store is None:
        need("the server's store", "revoking a key needs it")
    from wangge.data.store import open_store

    ctx, page = open_editor(browser, server, account=REVOCABLE)
    st = open_store(str(server.store))
    try:
        st.book.revoke("e2e-revocable")
    finally:
        st.close()
    page.locator("#tab-btn-versions").click()
    page.locator("#btn-compare").click()
    page.locator("#signin").wait_for(state="visible")
    msg = page.locator("#signin-msg").inner_text()
    assert "登录已失效" in msg and "401" in msg and "已吊销" in msg, msg
    assert page.evaluate(STORED_KEY) is None
    assert page.locator("#map").is_hidden()
    shot(page, "28-revoked")
    ctx.close()


def test_planner_names_a_grid_and_sets_its_staff(server, browser):
    """A planner of one community renames a grid of it in the "名称与人员" section (a new
    version, the name in the state) and sets its staff (网格长 with a phone), which is there
    again after a reload of the page; a grid of another community shows its name disabled."""
    state = server.get(f"/plans/{PLAN}/state")
    codes = sorted(g["code"] for g in state["grids"])
    grid = codes[0]
    community = grid[:12]
    other = next(c for c in codes if c[:12] != community)
    need_account(server, planner_of(community))
    ctx, page = open_editor(browser, server, account=planner_of(community))
    v0 = snapshot(page)["version"]
    assert v0 == state["version"]

    # rename the grid of our community
    page.locator(f'#grid-table tr[data-code="{grid}"] td.name').click()
    name_field = page.locator("#gi-name")
    page.locator("#gi-staff-add").wait_for(state="visible")  # the roster is loaded
    assert name_field.is_enabled()
    new_name = "e2e测试网格"
    name_field.fill(new_name)
    with page.expect_response(
        lambda r: r.url.endswith(f"/plans/{PLAN}/names") and r.request.method == "POST"
    ) as answer:
        page.locator("#gi-name-save").click()
    assert answer.value.status == 201
    wait_version(page, v0 + 1)
    after = server.get(f"/plans/{PLAN}/state")
    assert after["version"] == v0 + 1
    assert {g["code"]: g["name"] for g in after["grids"]}[grid] == new_name
    assert page.locator("#gi-name").input_value() == new_name

    # set one staff member: a grid head with a phone
    page.locator("#gi-staff-add").wait_for(state="visible")
    page.locator("#gi-staff li.gi-person").evaluate_all("rows => rows.forEach(r => r.remove())")
    page.locator("#gi-staff-add").click()
    row = page.locator("#gi-staff li.gi-person").last
    row.locator("select.gi-role").select_option("grid_head")
    row.locator("input.gi-person-name").fill("张三")
    row.locator("input.gi-phone").fill("13912345678")
    with page.expect_response(
        lambda r: f"/plans/{PLAN}/roster/{grid}" in r.url and r.request.method == "PUT"
    ) as answer:
        page.locator("#gi-staff-save").click()
    assert answer.value.status == 200, answer.value.text()
    roster = server.get(f"/plans/{PLAN}/roster")
    mine = [(r["role"], r["name"], r["phone"]) for r in roster["rows"] if r["code"] == grid]
    assert mine == [("grid_head", "张三", "13912345678")]
    assert not page.evaluate("() => JSON.stringify(localStorage)").count("1391234")
    assert "1391234" not in page.url and "张三" not in page.url

    # after a reload of the page (the key stays in this tab) the staff is there
    page.reload()
    wait_ready(page)
    page.locator(f'#grid-table tr[data-code="{grid}"] td.name').click()
    person = page.locator("#gi-staff li.gi-person")
    person.first.wait_for(state="visible")
    assert person.count() == 1
    assert person.locator("select.gi-role").input_value() == "grid_head"
    assert person.locator("input.gi-person-name").input_value() == "张三"
    assert person.locator("input.gi-phone").input_value() == "13912345678"
    shot(page, "40-planner-name-staff")

    # a grid of another community: its name shown, the field disabled, nothing to save
    page.locator(f'#grid-table tr[data-code="{other}"] td.name').click()
    page.wait_for_function(
        "(c) => document.querySelector('#gi-body .gi-code')?.textContent === c", arg=other
    )
    assert page.locator("#gi-name").is_disabled()
    assert page.locator("#gi-name-save").count() == 0
    assert page.locator("#gi-staff-save").count() == 0
    assert not page.errors, page.errors
    ctx.close()


# --- labels ---------------------------------------------------------------------------

LABEL_BOXES = """() => [...document.querySelectorAll('.wg-label')]
  .filter(el => getComputedStyle(el).display !== 'none')
  .map(el => { const r = el.getBoundingClientRect();
               return [el.dataset.code, el.classList.contains('wg-label-hidden'),
                       r.left, r.top, r.right, r.bottom]; })"""


def test_grid_labels_never_overlap(server, browser):
    """Zoomed out, labels that would pile on each other are hidden (most important first);
    zooming in brings them back. No two shown labels overlap at any zoom."""
    context, page = open_editor(browser, server)
    shown_at = {}
    for zoom in (14.0, 15.0, 16.5):
        page.evaluate(
            """(z) => { const m = window.wanggeEditor.map;
                        m.jumpTo({center: m.getCenter(), zoom: z}); }""",
            zoom,
        )
        map_idle(page)
        page.wait_for_timeout(100)  # moveend's declutter has run
        boxes = page.evaluate(LABEL_BOXES)
        shown = [b for b in boxes if not b[1]]
        assert shown, f"no label shown at z{zoom}"
        for i, a in enumerate(shown):
            for b in shown[i + 1 :]:
                overlap = a[2] < b[4] and b[2] < a[4] and a[3] < b[5] and b[3] < a[5]
                assert not overlap, f"z{zoom}: labels {a[0]} and {b[0]} overlap"
        on_screen = [b for b in shown if b[2] >= 0 and b[4] <= VIEWPORT["width"]]
        shown_at[zoom] = (len(on_screen), len(boxes) - len(shown))
    print(f"labels (shown on screen, hidden) by zoom: {shown_at}")
    shot(page, "30-labels-decluttered")
    # zoomed out, some labels had to give way; closer in, fewer do
    assert shown_at[14.0][1] > 0, shown_at
    assert shown_at[16.5][1] <= shown_at[14.0][1], shown_at
    context.close()


#: The style's layer ids in drawing order, and the basemap features drawn of some layers
#: (their ``name``s), in the whole view or at one pixel.
LAYER_ORDER = "() => window.wanggeEditor.map.getStyle().layers.map((l) => l.id)"
DRAWN_NAMES = """([layers, at]) => { const m = window.wanggeEditor.map;
  const found = at ? m.queryRenderedFeatures(m.project(at), {layers})
                   : m.queryRenderedFeatures({layers});
  return found.map((f) => f.properties.name || ''); }"""


def test_the_basemap_draws_under_the_plan_with_the_network_cut(server, browser, plan_dir):
    """The plan's own basemap (issue 24) beneath the grids, with every request that would
    leave the server aborted: roads drawn by class and named, from the district to one
    compound, their labels drawn with the browser's fonts (the style has no glyph URL),
    beneath the grid outlines."""
    import pyogrio

    need_account(server, ADMIN)
    context, page = new_page(browser)
    outside: list[str] = []

    def only_the_server(route):
        url = route.request.url
        if url.startswith((server.url + "/", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", only_the_server)
    page.goto(f"{server.url}/editor?plan={PLAN}")
    sign_in(page, server.keys[ADMIN])
    wait_ready(page)
    order = page.evaluate(LAYER_ORDER)
    base = [i for i, name in enumerate(order) if name.startswith("basemap-")]
    assert len(base) > 15, order
    labels = [order[i] for i in base if "label" in order[i] or "place" in order[i]]
    shapes = [i for i in base if order[i] not in labels]
    # roads, water and green beneath every plan layer; names under the grid outlines
    assert max(shapes) < order.index("grids-fill") and max(base) < order.index("grids-line")
    roads = pyogrio.read_dataframe(plan_dir / "plan.gpkg", layer="basemap_roads")
    named = roads[roads["name"].notna() & roads["class"].isin(["primary", "secondary"])]
    road_layers = [name for name in order if name.startswith("basemap-road-")]
    # the district: major roads drawn and named
    page.evaluate("() => { const m = window.wanggeEditor.map; m.jumpTo({zoom: 13.5}); }")
    map_idle(page)
    assert len(page.evaluate(DRAWN_NAMES, [road_layers, None])) > 20
    district = set(page.evaluate(DRAWN_NAMES, [labels, None]))
    assert district & set(named["name"]), district
    shot(page, "basemap-editor-district")
    # one compound: the road under a point of it drawn there, by its class, with its name
    road = named.iloc[0]
    p = road.geometry.interpolate(0.5, normalized=True)
    zoom_to(page, (p.x, p.y))
    at = page.evaluate(DRAWN_NAMES, [[f"basemap-road-{road['class']}"], [p.x, p.y]])
    assert road["name"] in at, (road["name"], at)
    compound = set(page.evaluate(DRAWN_NAMES, [labels, None]))
    assert compound & set(roads["name"].dropna()), compound
    assert any(any("\u4e00" <= c <= "\u9fff" for c in n) for n in compound)
    shot(page, "basemap-editor-compound")
    assert not outside, outside
    assert not page.errors, page.errors
    context.close()
