"""The change map and the change sheet (issue 23) of a real report, on each store: the demo
plan saved, rebalanced on a seeded drift (a few units ×2.5, a few emptied) into version 2,
and compared 1 → 2 and back, 2 → 1 (where the grid the rebalance created is retired).

The map is opened from its file in chromium with every other request aborted, as the other
maps are (tests/test_maps_offline.py): it asks for nothing; the features of each status in
the page are as many as the report counts; the labels name old and new codes; hovering a
changed grid gives its codes and households before → after; each layer of the switch
removes its own paths; title, legend, counts and attribution are there; a screenshot goes
to artifacts/screenshots/. The sheet is read back with pypdf, as the notice sheets are
(tests/test_print.py): one A3 page whose text holds every changed grid's row with its
households, the moves between grids, the counts and the credit.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
import shapely
import shapely.ops
from e2e_server import chromium
from pypdf import PdfReader
from test_maps_offline import PATHS, SHOTS, hover_grid, labels, open_map, untick
from test_print import _pdf_text
from test_rebalance import drift

from wangge.changes import STATUSES, Changes, changes
from wangge.data.plan import plan_from_frames, read_plan
from wangge.editing import Editor
from wangge.importing import save_plan
from wangge.maps import notice, webmap
from wangge.maps.change_map import (
    AFTER,
    BEFORE,
    LABELS,
    MOVED,
    MOVED_STATUS,
    change_map,
    change_text,
    households_text,
    status_text,
    write_change_map,
)
from wangge.maps.change_sheet import write_change_sheet
from wangge.rebalancing import rebalance_version

#: The drift's seed: on the demo, its rebalance creates a grid and changes five.
SEED = 1
USERS_FILE = "buildings: 楼栋.geojson (the user's file)"
#: Features in the page by version and status (their tooltip's rows).
COUNTS = """() => {
  const map = window[document.querySelector('.folium-map').id];
  const out = {};
  map.eachLayer((l) => {
    if (l._path && l.feature) {
      const p = l.feature.properties;
      out[`${p.side}|${p.status}`] = (out[`${p.side}|${p.status}`] || 0) + 1;
    }
  });
  return out;
}"""
DASHED = "document.querySelectorAll('.leaflet-wg-lines-pane path[stroke-dasharray]').length"
CELLS = """(id) => [...document.querySelectorAll(`#${id} tr`)].map(
  (tr) => [...tr.children].map((c) => c.textContent.trim()))"""


@dataclass
class Reports:
    forward: Changes  # 1 → 2
    back: Changes  # 2 → 1
    credit: str
    store: str


@pytest.fixture()
def reports(store, plan_dir) -> Reports:
    plan = read_plan(plan_dir / "plan.gpkg")
    plan_id = f"changes-{uuid.uuid4().hex[:8]}"
    layers, meta = plan.stored()
    frames = plan_from_frames(layers, meta, "plan.gpkg")
    save_plan(store, frames, plan_id, None, "tests", "for the change maps")
    rebalance_version(Editor(store), plan_id, 1, drift(plan, SEED), dry_run=False)
    forward = changes(Editor(store), plan_id, 1, 2)
    back = changes(Editor(store), plan_id, 2, 1)
    return Reports(forward, back, plan.attribution, type(store).__name__)


@pytest.fixture(scope="module")
def browser():
    yield from chromium(["--headless=new"])


# --- what the report says, read from its tables ------------------------------------------


def expected_counts(rep: Changes) -> dict[str, int]:
    """Features by ``side|status`` as the report counts them."""
    out = {}
    for s in ("created", "changed", "recounted", "kept"):
        out[f"v{rep.b} 后 after|{status_text(s)}"] = rep.count(s)
    for s in ("changed", "retired"):
        out[f"v{rep.a} 前 before|{status_text(s)}"] = rep.count(s)
    across = rep.moved["from_grid"] != rep.moved["to_grid"]
    side = f"v{rep.a} → v{rep.b} 移动 moved"
    out[f"{side}|{MOVED_STATUS[True]}"] = int(across.sum())
    out[f"{side}|{MOVED_STATUS[False]}"] = int((~across).sum())
    return {k: v for k, v in out.items() if v}


def grids_of(rep: Changes, *statuses: str) -> list[dict]:
    rows = rep.codes[(rep.codes["level"] == "grid") & rep.codes["status"].isin(statuses)]
    return rows.to_dict("records")


def sources(rep: Changes, code: str) -> list[str]:
    """The other grids of version a whose units moved into ``code``."""
    m = rep.moved
    return sorted(set(m.loc[m["to_grid"] == code, "from_grid"]) - {code})


def destinations(rep: Changes, code: str) -> list[str]:
    m = rep.moved
    return sorted(set(m.loc[m["from_grid"] == code, "to_grid"]) - {code})


def inner_points(rep: Changes, statuses) -> list[tuple[str, float, float]]:
    """A point well inside each later grid of ``statuses`` (largest first)."""
    out = []
    chosen = rep.after[rep.after["status"].isin(statuses)]
    for code, geom in zip(chosen["code"], chosen.geometry, strict=True):
        part = max(shapely.get_parts(geom), key=lambda g: g.area)
        p = shapely.ops.polylabel(part, tolerance=1e-7)
        out.append((part.area, code, p.y, p.x))
    return [(c, lat, lon) for _, c, lat, lon in sorted(out, reverse=True)]


# --- the map -------------------------------------------------------------------------------


def test_change_map_offline_in_a_browser(browser, reports, tmp_path):
    rep = reports.forward
    assert rep.count("created") + rep.count("changed") > 0  # the drift moved lines
    path = write_change_map(rep, tmp_path / "change_map.html", reports.credit)
    outlines = rep.count("changed") + rep.count("retired")
    n_paths = len(rep.after) + outlines + len(rep.moved_units)
    opened = open_map(browser, path, n_paths)
    page = opened.page
    try:
        assert opened.fetched == [], opened.fetched
        assert page.errors == [], page.errors
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"change-map-{reports.store}.png"))
        assert page.evaluate(PATHS) == n_paths

        # each status as many times as the report counts it
        assert page.evaluate(COUNTS) == expected_counts(rep)

        # a label on each created and changed grid: new code, where a created one came
        # from, households before → after
        texts = page.locator(".wg-change-label").all_inner_texts()
        assert len(texts) == rep.count("created") + rep.count("changed") + rep.count("retired")
        for row in grids_of(rep, "created", "changed"):
            label = next(t for t in texts if t.startswith(row["code"]))
            assert change_text(row["households_a"], row["households_b"]) in label, label
            for old in sources(rep, row["code"]) if row["status"] == "created" else []:
                assert old in label, label

        # the layer switch; with the moved units off, a changed grid's tooltip gives its
        # codes, the grids it took units from and its households before → after
        assert labels(page, "overlays") == [AFTER, MOVED, BEFORE, LABELS]
        assert untick(page, MOVED) == len(rep.moved_units)
        code, tip = hover_grid(page, inner_points(rep, ("created", "changed")))
        row = next(r for r in grids_of(rep, "created", "changed") if r["code"] == code)
        assert f"{change_text(row['households_a'], row['households_b'])} 户" in tip, tip
        assert status_text(row["status"]) in tip, tip
        assert all(old in tip for old in sources(rep, code)), tip
        assert untick(page, BEFORE) == outlines
        assert untick(page, AFTER) == len(rep.after)
        assert page.evaluate(PATHS) == 0

        # the title's and the legend's counts, the attribution, no sample banner
        title = page.locator(".wg-title h1").inner_text()
        for s in STATUSES:
            assert f"{rep.count(s)} {status_text(s)}" in title, title
        assert f"{len(rep.moved)} 单元 units" in title
        cells = page.evaluate(CELLS, "change-counts")
        assert cells[1] == ["网格 grids", *(str(rep.count(s)) for s in STATUSES)]
        assert cells[2][1:] == [str(rep.count(s, "microgrid")) for s in STATUSES]
        listed = page.evaluate(CELLS, "change-grids")[1:]
        assert sorted(r[0] for r in listed) == sorted(
            r["code"] for r in grids_of(rep, *STATUSES[:4])
        )
        legend = page.locator("#legend").inner_text()
        assert "调整 changed" in legend and "跨网格 to another grid" in legend
        attribution = page.locator("#attribution")
        assert webmap.ATTRIBUTION in attribution.inner_text()
        assert attribution.locator("a").get_attribute("href") == webmap.OSM_COPYRIGHT
        assert page.locator(".wg-banner").count() == 0
    finally:
        opened.context.close()


def test_retired_grids_show_dashed_with_where_they_went(browser, reports, tmp_path):
    """Back from version 2 to 1, the grid the rebalance created is retired: its earlier
    outline is dashed and its label names the grid its units went to."""
    rep = reports.back
    assert rep.count("retired") == reports.forward.count("created") > 0
    path = write_change_map(rep, tmp_path / "back.html", reports.credit)
    outlines = rep.count("changed") + rep.count("retired")
    opened = open_map(browser, path, len(rep.after) + outlines + len(rep.moved_units))
    page = opened.page
    try:
        assert opened.fetched == [] and page.errors == []
        assert page.evaluate(COUNTS) == expected_counts(rep)
        assert page.evaluate(DASHED) == outlines
        texts = page.locator(".wg-change-label").all_inner_texts()
        for row in grids_of(rep, "retired"):
            label = next(t for t in texts if t.startswith(row["code"]))
            went = destinations(rep, row["code"])
            assert went and all(code in label for code in went), label
    finally:
        opened.context.close()


def test_change_map_credits_only_the_sources_used(reports):
    """The attribution is the credit passed: a plan of the user's own files names them
    and not OpenStreetMap; a plan of sample data carries the banner."""
    own = webmap.page(change_map(reports.forward, USERS_FILE))
    shown = re.search(r'<div class="wg-attribution" id="attribution">(.*?)</div>', own)[1]
    assert "楼栋.geojson" in shown and "OpenStreetMap" not in shown
    assert webmap.SAMPLE_BANNER not in own
    sample = webmap.page(change_map(reports.forward, reports.credit, sample=True))
    assert webmap.SAMPLE_BANNER in sample


# --- the sheet -----------------------------------------------------------------------------


def row_pattern(row: dict) -> str:
    cells = (
        row["code"],
        status_text(row["status"]),
        households_text(row["households_a"]),
        households_text(row["households_b"]),
    )
    return r"\s+".join(map(re.escape, cells))


def test_change_sheet_prints(reports, tmp_path):
    rep = reports.forward
    path = write_change_sheet(rep, tmp_path / "changes.pdf", reports.credit)
    text = _pdf_text(path)  # one page
    box = PdfReader(path).pages[0].mediabox
    assert [round(float(v) / 72 * 25.4) for v in (box.width, box.height)] == [420, 297]  # A3

    # every grid created, changed or recounted in the table, with households before, after
    rows = grids_of(rep, *STATUSES[:4])
    assert rows
    for row in rows:
        assert re.search(row_pattern(row), text), row
    # each move between grids, with its units
    m = rep.moved[rep.moved["from_grid"] != rep.moved["to_grid"]]
    for (a, b), units in m.groupby(["from_grid", "to_grid"]).size().items():
        assert re.search(rf"{a}\s+{b}\s+{units}\s", text), (a, b)
    # a changed grid's label: households before → after
    changed = grids_of(rep, "changed", "created")
    assert any(f"{change_text(r['households_a'], r['households_b'])} 户" in text for r in changed)
    for s in STATUSES:
        assert f"{rep.count(s)} {status_text(s)}" in text
    assert f"{rep.plan_id} 网格变更对照图" in text
    assert notice.ATTRIBUTION in text
    assert "SAMPLE DATA" not in text


def test_change_sheet_of_a_retired_grid_and_the_users_files(reports, tmp_path):
    """Back from 2 to 1 the retired grid is listed with its households and none after;
    the credit is the user's file, so OpenStreetMap is not named."""
    rep = reports.back
    path = write_change_sheet(rep, tmp_path / "back.pdf", USERS_FILE, sample=True)
    text = _pdf_text(path)
    retired = grids_of(rep, "retired")
    assert retired
    for row in retired:
        assert re.search(row_pattern(row), text), row
        assert households_text(row["households_b"]) == "–"
    assert "楼栋.geojson" in text and "OpenStreetMap" not in text
    assert "SAMPLE DATA" in text
