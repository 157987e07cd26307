"""The editor shows the server's messages in Chinese (maps/editor/messages.js): the
violations of a plan (``0 households < 15``), the 401, 403, 409 and 422 answers of the
API. Every message here is made by the server's own checks and routes, on the demo plan
broken at test time in each way a check looks for, and each must come out in Chinese;
then the real editor, in a real browser against a real server, shows a violation and a
refused key in Chinese."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import shapely
from apitools import auth
from e2e_server import ADMIN, add_accounts, chromium, import_plan, start_server
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings

EDITOR = Path(__file__).resolve().parent.parent / "maps" / "editor"
#: English that must not be left in a Chinese message (codes, figures, account names and
#: the command `wangge users add` may stay).
ENGLISH = re.compile(
    r"\b(households|people|than|but|the|is|are|not|no|its|lies|leave|overlaps|twice|"
    r"pieces|unknown|revoked|expired|needs|account|scope|latest|reload|locked|unlock|"
    r"layer|column|parent|outside|saved|given|fit)\b"
)


@pytest.fixture(scope="module")
def plan(plan_dir):
    from wangge.data.plan import read_plan

    return read_plan(plan_dir / "plan.gpkg").stored()


def _reasons(layers: dict, meta: dict) -> list[str]:
    from wangge.data.plan import plan_from_frames
    from wangge.geo.validate import validate

    p = plan_from_frames(layers, meta, "broken")
    return validate(p.metric_layers(), p.limits)["reason"].tolist()


def _broken(layers: dict) -> dict:
    """The demo plan broken once for each check: sizes, flags, cover, nesting, codes,
    overlap, contiguity, household sums, district."""
    out = {k: v.copy() for k, v in layers.items()}
    streets, communities = out["streets"], out["communities"]
    grids, micro = out["grids"], out["microgrids"]
    streets.loc[0, "area_km2"] = 9_999.0
    streets.loc[0, "code"] = "110101001"  # not under the plan's district
    communities.loc[0, ["households", "population"]] = [99_999, 999_999]
    grids.loc[0, "households"] = 1
    grids.loc[1, "households"] = 5_000
    grids.loc[2, ["households", "flag", "note"]] = [
        900,
        "oversize",
        "an indivisible unit of 900 households > grid ceiling 500",
    ]
    grids.loc[3, ["households", "flag"]] = [1, "given"]
    far = grids.geometry.iloc[-1]
    grids.loc[4, "geometry"] = shapely.union(grids.geometry.iloc[4], far)  # two pieces
    micro.loc[0, "households"] = 0
    micro.loc[6, "parent_code"] = "320102999999999"
    micro.loc[9, "geometry"] = micro.geometry.iloc[9].buffer(0.0005)  # overlaps, outside
    out["microgrids"] = micro.drop(index=5).reset_index(drop=True)  # a hole in the cover
    return out


@pytest.fixture(scope="module")
def messages(plan) -> list[str]:
    """Every kind of message the editor can be shown, as the server makes it."""
    layers, meta = plan
    found = _reasons(_broken(layers), meta)
    # a code used twice, without buildings (geo/validate.buildings_whole cannot index
    # micro-grids by a code used twice, and fails)
    twice = {k: v for k, v in layers.items() if k != "buildings"}
    micro = twice["microgrids"].copy()
    micro.loc[7, "code"] = micro.loc[8, "code"]
    found += _reasons({**twice, "microgrids": micro}, meta)
    found += _reasons({k: v for k, v in layers.items() if k != "microgrids"}, meta)
    no_hh = {**layers, "grids": layers["grids"].drop(columns="households")}
    found += _reasons(no_hh, meta)
    found += list(_http_messages(layers, meta))
    return sorted(set(found))


def _http_messages(layers: dict, meta: dict):
    from wangge.data.gpkg_store import GpkgStore
    from wangge.data.plan import plan_from_frames
    from wangge.importing import save_plan

    with tempfile.TemporaryDirectory() as tmp:
        store = GpkgStore(Path(tmp) / "store.gpkg")
        save_plan(store, plan_from_frames(layers, meta, "demo"), "demo", None, "t", "")
        units = layers["units"]
        communities = sorted(layers["communities"]["code"])
        mine, other = communities[0], communities[1]
        theirs = units[units["parent_code"].astype(str).str.startswith(other)].iloc[0]
        grid = str(theirs["parent_code"])[:15]
        codes = sorted(layers["grids"]["code"].astype(str))
        to = next(g for g in codes if g.startswith(other) and g != grid)
        app = create_app(Settings(plan="demo"), store)
        with TestClient(app) as client:
            yield client.get("/plans", headers={"Authorization": "Bearer wg_nope"}).json()["error"]
            yield client.get("/plans").json()["error"]
            edit = {"base_version": 1, "moves": [{"unit": str(theirs["code"]), "to": to}]}
            viewer = auth(store, "viewer")
            yield client.post("/plans/demo/edits", json=edit, headers=viewer).json()["error"]
            planner = auth(store, "planner", (mine,))
            yield client.post("/plans/demo/edits", json=edit, headers=planner).json()["error"]
            admin = auth(store)
            locked = {"base_version": 1, "moves": [], "locks": [grid]}
            assert client.post("/plans/demo/edits", json=locked, headers=admin).status_code == 201
            yield client.post("/plans/demo/edits", json=edit, headers=admin).json()["error"]
            edit["base_version"] = 2
            yield client.post("/plans/demo/edits", json=edit, headers=admin).json()["error"]
            bad = {"base_version": 2, "moves": [{"unit": "999999999", "to": grid}]}
            yield client.post("/plans/demo/edits", json=bad, headers=admin).json()["error"]
            state = client.get("/plans/demo/state", headers=admin).json()
            yield from (v["reason"] for v in state["violations"])
        store.close()


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def _translate(browser, texts: list[str], lang: str = "zh") -> list[str]:
    """serverText of each text, run in chromium on the editor's own module (served from
    maps/editor/ by an intercepted route: no server needed)."""
    page = browser.new_page()

    def serve(route):
        name = route.request.url.split("/editor/", 1)[1]
        path = EDITOR / name
        if not path.is_file():
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, body=path.read_bytes(), content_type="text/javascript")

    page.route("http://editor.test/editor/**", serve)
    page.route(
        "http://editor.test/",
        lambda route: route.fulfill(status=200, body="<html></html>", content_type="text/html"),
    )
    page.goto("http://editor.test/")
    out = page.evaluate(
        """async ([texts, lang]) => {
             const m = await import("/editor/messages.js");
             return texts.map((t) => m.serverText(t, lang));
           }""",
        [texts, lang],
    )
    page.close()
    return out


def test_every_message_the_server_makes_is_shown_in_chinese(browser, messages):
    assert len(messages) >= 25, messages
    for words in ("households <", "households >", "pieces", "outside the scope", "based on"):
        assert any(words in m for m in messages), words  # the checks were all met
    shown = _translate(browser, messages)
    left = []
    for english, chinese in zip(messages, shown, strict=True):
        if chinese == english or not re.search(r"[\u4e00-\u9fff]", chinese):
            left.append(f"untranslated: {english}")
        elif ENGLISH.search(chinese.replace("wangge users add", "")):
            left.append(f"English left in: {chinese!r} (from {english!r})")
        for figure in re.findall(r"\b\d{3,}\b", english):  # codes and counts carried over
            if figure not in chinese:
                left.append(f"{figure} lost: {chinese!r} (from {english!r})")
    assert not left, "\n".join(left)
    assert _translate(browser, messages, "en") == messages  # English as the server sent it


def test_the_known_shapes_read_as_meant(browser):
    got = _translate(
        browser,
        [
            "0 households < 15",
            "demo: base_version: based on version 3, but the latest is 5; reload and redo the "
            "change",
            "oversize: 672 households > 500 (an indivisible unit of 672 households > grid "
            "ceiling 500)",
            "something the editor has never seen",
        ],
    )
    assert got[0] == "0 户，低于下限 15 户"
    assert got[1] == "demo: base_version：修改基于版本 3，但最新版本已是 5；请重新加载后再修改"
    assert got[2].startswith("超大（不可再分）：672 户，超过上限 500 户（不可分单元 672 户")
    assert got[3] == "something the editor has never seen"


def test_the_editor_shows_violations_and_a_refused_key_in_chinese(plan_dir, tmp_path, browser):
    """The real editor in Chinese (its default) against a real server: the checks list a
    violation's reason in Chinese, and a wrong key is refused in Chinese."""
    store = tmp_path / "store.gpkg"
    import_plan(plan_dir, store, "demo")
    keys = add_accounts(store, "demo")
    server = start_server(store, tmp_path / "server.log", keys)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 860})
        page.goto(f"{server.url}/editor?plan=demo")
        page.locator("#signin-key").fill("wg_not-a-key")
        page.locator("#signin-ok").click()
        page.wait_for_function(
            "() => document.querySelector('#signin-msg').textContent.includes('401')"
        )
        refused = page.locator("#signin-msg").inner_text()
        assert "密钥无效" in refused and "已吊销" in refused and "unknown" not in refused, refused
        page.locator("#signin-key").fill(keys[ADMIN])
        page.locator("#signin-ok").click()
        page.wait_for_function("() => !!(window.wanggeEditor && window.wanggeEditor.ready)")
        page.locator("#tab-btn-checks").click()
        reasons = page.locator("#violations .violation .reason").all_inner_texts()
        state = server.get("/plans/demo/state")
        assert len(reasons) == len(state["violations"]) > 0
        for reason, violation in zip(reasons, state["violations"], strict=True):
            assert re.search(r"[\u4e00-\u9fff]", reason), (reason, violation["reason"])
            assert "households" not in reason, reason
        page.close()
    finally:
        server.stop()
