"""The planner's editor in a real browser against a real server: select a unit on the map,
move it to a neighbouring grid, undo and redo, save a named version, reload, and meet a
conflicting edit from a second browser. Also: the page loads nothing from outside, and the
editor's routes answer 503, 304 and 404 where they should.

Screenshots of each step go to artifacts/screenshots/ (CI keeps artifacts/).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import need
from e2e_server import CHROMIUM, CHROMIUM_ARGS, Server, import_plan, start_server

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
PLAN = "demo"
VIEWPORT = {"width": 1400, "height": 860}
CANVAS = "#map canvas.maplibregl-canvas"
READY = "() => !!(window.wanggeEditor && window.wanggeEditor.ready)"
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
    """The demo plan imported into a fresh GeoPackage store and served by uvicorn.
    WANGGE_E2E_URL points the tests at a server already running (plan ``demo``) instead."""
    from wangge.api import editor

    missing = editor._missing_vendor()
    if missing:
        need("vendored MapLibre", f"{missing} missing; run `bash scripts/vendor.sh`")
    if os.environ.get("WANGGE_E2E_URL"):
        yield Server(os.environ["WANGGE_E2E_URL"].rstrip("/"))
        return
    d = tmp_path_factory.mktemp("e2e")
    store = d / "store.gpkg"
    import_plan(plan_dir, store, PLAN)
    SHOTS.parent.mkdir(parents=True, exist_ok=True)
    srv = start_server(store, SHOTS.parent / "e2e-server.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        need("chromium", f"{CHROMIUM} is missing; run `bash scripts/ensure_services.sh chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        need("playwright", f"{exc}; install the test extras: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# --- helpers --------------------------------------------------------------------------


def shot(page, name: str) -> None:
    """Screenshot once the map has finished moving and drawing (at most 5 s later)."""
    map_idle(page, timeout_ms=5000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def open_editor(browser, server: Server, query: str = ""):
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.url}/editor?plan={PLAN}{query}")
    try:
        page.wait_for_function(READY, timeout=60_000)
    except Exception as exc:
        state = page.evaluate("() => window.wanggeEditor && window.wanggeEditor.lastError")
        raise AssertionError(f"editor not ready: {state}; page errors: {errors}") from exc
    page.errors = errors
    return context, page


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


def pick_move(server: Server) -> dict:
    """A unit with households on the boundary of its grid, and the neighbouring grid across
    that boundary; preferably one whose move takes a grid out of its limits, so that a
    known violation appears."""
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
        for n in g["neighbours"]:
            if grids[n]["locked"] or n not in shapes.index:
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
    if editor._missing_vendor():
        need("vendored MapLibre", "run `bash scripts/vendor.sh`")
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
    assert body["detail"]["run"] == "bash scripts/vendor.sh"


# --- the browser tests ----------------------------------------------------------------


def test_editor_loads_nothing_from_outside(server, browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    start = time.perf_counter()
    page.goto(f"{server.url}/editor?plan={PLAN}")
    page.wait_for_function(READY, timeout=60_000)
    ready_s = time.perf_counter() - start
    page.wait_for_load_state("networkidle")
    outside = [
        u for u in requested if not u.startswith((server.url + "/", "data:", "blob:", "about:"))
    ]
    assert not outside, f"requests leaving the server: {outside}"
    assert any("/tiles/units/" in u and ".mvt" in u for u in requested), "no unit tiles loaded"
    attribution = page.locator(".maplibregl-ctrl-attrib")
    assert "OpenStreetMap contributors" in attribution.inner_text()
    assert attribution.is_visible()
    assert page.locator("#btn-save").inner_text() == "保存版本"
    shot(page, "00-editor-zh")
    page.locator("#lang-en").click()
    assert page.locator("#btn-save").inner_text() == "Save version"
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
    shot(page, "12-compare")

    # restore the first version: every grid's count is back
    page.locator(f'#version-list li[data-version="{v0}"] button[data-action="restore"]').click()
    s5 = wait_version(page, v0 + 5)
    assert s5["grids"] == s0["grids"]
    shot(page, "13-restored")
    assert not page.errors, page.errors
    ctx.close()
    print(f"complete took {complete_s:.2f} s; diff of {len(diff)} units")
