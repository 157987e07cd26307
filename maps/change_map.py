"""The change map (网格变更图) of two versions of a plan as an offline web map (folium; see
:mod:`wangge.maps.webmap`), and the words and figures it shares with the change sheet.

The later version's grids lie at the bottom, filled by their status (created, changed,
recounted; kept ones faint); above them the earlier outlines of the grids that changed or
were retired, dashed; between the two the units that moved, hatched (dark across grids,
light inside one). Every grid's tooltip gives its new code, the earlier codes its units
came from and its households before → after; labels on the map name the created, changed
and retired grids by old and new code. Before, after, moved and the labels are layers of
the layer control; the title carries the report's counts and the legend its tables. The
report is :class:`wangge.changes.Changes`.
"""

from __future__ import annotations

import html
from pathlib import Path

import folium
import numpy as np
import pandas as pd
import shapely
from shapely.ops import polylabel

from wangge.changes import STATUSES, Changes
from wangge.maps.webmap import (
    features,
    finish,
    geojson,
    hatch_pattern,
    legend_block,
    new_map,
    records,
    save,
    swatch_hatch,
    swatch_rect,
    text,
)

__all__ = ["STATUS", "change_map", "grid_rows", "households_text", "lineage", "moves_between"]
__all__ += ["summary_line", "summary_parts", "write_change_map"]

#: A status in Chinese and English.
STATUS = {
    "created": ("新建", "created"),
    "changed": ("调整", "changed"),
    "retired": ("撤销", "retired"),
    "recounted": ("户数更新", "recounted"),
    "kept": ("未变", "kept"),
}
#: Fill and outline of a status (the sheet uses the same).
FILL = {
    "created": "#74c476",
    "changed": "#fdae6b",
    "retired": "#f4a6a6",
    "recounted": "#9ecae1",
    "kept": "#e0e0e0",
}
EDGE = {
    "created": "#006d2c",
    "changed": "#a63603",
    "retired": "#b2182b",
    "recounted": "#3a6ea5",
    "kept": "#9a9a9a",
}
#: Moved units: across grids, and between micro-grids of one grid.
ACROSS, WITHIN = "#54278f", "#9e9ac8"
DASH = "6 4"
#: The layers of the layer control.
AFTER, BEFORE, MOVED, LABELS = (
    "后 after: 网格 grids",
    "前 before: 原边界 earlier outlines",
    "移动单元 moved units",
    "编码标注 code labels",
)
AFTER_TIP = [
    ("code", "新编码 new code"),
    ("old", "原编码 old code"),
    ("name", "名称 name"),
    ("hh", "户数 households"),
    ("units", "单元 units"),
    ("status", "状态 status"),
    ("moves", "移动 moves"),
    ("side", "版本 version"),
]
BEFORE_TIP = [
    ("code", "原编码 old code"),
    ("new", "新编码 new code"),
    ("name", "名称 name"),
    ("hh", "户数 households"),
    ("status", "状态 status"),
    ("side", "版本 version"),
]
MOVED_TIP = [
    ("unit", "单元 unit"),
    ("grid", "网格 grid"),
    ("micro", "微网格 micro-grid"),
    ("hh", "户数 households"),
    ("status", "状态 status"),
    ("side", "版本 version"),
]
#: What a moved unit's status says, by whether it changed grid.
MOVED_STATUS = {True: "跨网格 to another grid", False: "网格内 within its grid"}


# --- words and figures shared with the change sheet ------------------------------------------


def status_text(status: str) -> str:
    """``"调整 changed"``."""
    zh, en = STATUS.get(status, (status, status))
    return f"{zh} {en}"


def households_text(v) -> str:
    """Households as printed: thousands separated, at most two decimals (a rebalance's
    estimates can be halves), ``–`` where the grid is absent."""
    if v is None or pd.isna(v):
        return "–"
    return f"{float(v):,.2f}".rstrip("0").rstrip(".")


def change_text(a, b) -> str:
    """``"458 → 447"``, or one figure when the two are equal."""
    one, two = households_text(a), households_text(b)
    return one if one == two else f"{one} → {two}"


def grid_rows(report: Changes) -> dict[str, dict]:
    """The report's row of each grid code (level grid), by code."""
    grids = report.codes[report.codes["level"] == "grid"]
    return {str(r["code"]): r for r in grids.to_dict("records")}


def moves_between(report: Changes) -> pd.DataFrame:
    """The units that changed grid, by pair of grids: ``from_grid``, ``to_grid``,
    ``units``, ``households`` (as the later version counts them), largest first."""
    moved = report.moved
    across = moved[moved["from_grid"] != moved["to_grid"]]
    out = (
        across.groupby(["from_grid", "to_grid"], as_index=False)
        .agg(units=("unit", "size"), households=("households", "sum"))
        .sort_values(["households", "units", "from_grid"], ascending=[False, False, True])
    )
    return out.reset_index(drop=True)


def lineage(report: Changes) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per grid of the later version, the other grids of the earlier one whose units it
    took; per grid of the earlier version, the other grids its units went to."""
    pairs = moves_between(report)
    came_from: dict[str, list[str]] = {}
    went_to: dict[str, list[str]] = {}
    for a, b in sorted(zip(pairs["from_grid"], pairs["to_grid"], strict=True)):
        came_from.setdefault(b, []).append(a)
        went_to.setdefault(a, []).append(b)
    return came_from, went_to


def summary_parts(report: Changes) -> tuple[str, str, str]:
    """The report's counts in Chinese and English: the grids, the micro-grids, what moved."""
    s = report.summary
    g, m = s["grid"], s["microgrid"]
    grids = " · ".join(f"{g[k]} {status_text(k)}" for k in STATUSES)
    micro = " · ".join(f"{m[k]} {STATUS[k][0]}" for k in STATUSES[:3])
    return (
        f"网格 grids: {grids}",
        f"微网格 micro-grids: {micro}",
        f"移动 moved: {s['units_moved']} 单元 units, "
        f"{households_text(s['households_moved'])} 户 households",
    )


def summary_line(report: Changes) -> str:
    """The report's grid counts and what moved, in one line."""
    grids, _, moved = summary_parts(report)
    return f"{grids}; {moved}"


def _codes(codes: list[str]) -> str:
    return ", ".join(codes) if codes else "–"


def _name(row: dict | None) -> str:
    if row is None:
        return ""
    a, b = text(row.get("name_a")), text(row.get("name_b"))
    return f"{a} → {b}" if a and b and a != b else a or b


# --- the map ----------------------------------------------------------------------------------


def change_map(report: Changes, credit: str, sample: bool = False) -> folium.Map:
    """The change map of ``report``: the later grids by status, the earlier outlines of
    the changed and retired grids dashed, the moved units hatched, code labels.

    Parameters
    ----------
    report
        The change report of versions ``a`` → ``b`` (:func:`wangge.changes.changes`).
    credit
        The credit of the plan's sources (``Plan.attribution``), shown as the attribution.
    sample
        Whether the plan holds sample data (a banner says so).

    Returns
    -------
    folium.Map
        The finished map (:func:`wangge.maps.webmap.finish`).
    """
    before, after, moved = report.before, report.after, report.moved_units
    rows = grid_rows(report)
    came_from, went_to = lineage(report)
    m = new_map(after, before)

    props, styles = [], []
    for r in records(after):
        code, status = text(r.get("code")), text(r.get("status"))
        row = rows.get(code, {})
        old = [code] if status != "created" else []
        old += [c for c in came_from.get(code, []) if c != code]
        moves = []
        if came_from.get(code):
            moves.append(f"移入 in ← {_codes(came_from[code])}")
        if went_to.get(code):
            moves.append(f"移出 out → {_codes(went_to[code])}")
        props.append(
            {
                "code": code,
                "old": _codes(old),
                "name": _name(row) or text(r.get("name")),
                "hh": f"{change_text(row.get('households_a'), row.get('households_b'))} 户",
                "units": f"{row.get('units_a', 0)} → {row.get('units_b', 0)}",
                "status": status_text(status),
                "moves": "; ".join(moves) or "–",
                "side": f"v{report.b} 后 after",
            }
        )
        styles.append(_after_style(status))
    geojson(features(after, props), AFTER, styles, AFTER_TIP).add_to(m)

    moved_units = moved.reset_index(drop=True)
    props, styles = [], []
    for r in records(moved_units):
        across = text(r.get("from_grid")) != text(r.get("to_grid"))
        building = text(r.get("building_id"))
        props.append(
            {
                "unit": f"{r.get('unit')}" + (f" · {building}" if building else ""),
                "grid": f"{text(r.get('from_grid'))} → {text(r.get('to_grid'))}",
                "micro": f"{text(r.get('from'))} → {text(r.get('to'))}",
                "hh": f"{households_text(r.get('households'))} 户",
                "status": MOVED_STATUS[across],
                "side": f"v{report.a} → v{report.b} 移动 moved",
            }
        )
        colour = ACROSS if across else WITHIN
        pattern = "hatch-across" if across else "hatch-within"
        styles.append(
            {"color": colour, "weight": 1, "fillColor": f"url(#{pattern})", "fillOpacity": 1}
        )
    geojson(features(moved_units, props), MOVED, styles, MOVED_TIP, role="upper").add_to(m)

    earlier = before[before["status"].isin(["changed", "retired"])].reset_index(drop=True)
    props, styles = [], []
    for r in records(earlier):
        code, status = text(r.get("code")), text(r.get("status"))
        row = rows.get(code, {})
        new = [code] if status != "retired" else []
        new += [c for c in went_to.get(code, []) if c != code]
        props.append(
            {
                "code": code,
                "new": _codes(new),
                "name": _name(row) or text(r.get("name")),
                "hh": f"{change_text(row.get('households_a'), row.get('households_b'))} 户",
                "status": status_text(status),
                "side": f"v{report.a} 前 before",
            }
        )
        styles.append({"color": EDGE[status], "weight": 2.5, "dashArray": DASH, "fill": False})
    geojson(features(earlier, props), BEFORE, styles, BEFORE_TIP, role="lines").add_to(m)

    _labels(report, rows, came_from, went_to).add_to(m)
    defs = hatch_pattern("hatch-across", ACROSS, spacing=6, width=2) + hatch_pattern(
        "hatch-within", WITHIN, spacing=8, width=1.5
    )
    title = f"网格变更 Grid changes · {report.plan_id} v{report.a} → v{report.b}"
    title += f" · {summary_line(report)}"
    return finish(m, title, _legend(report), sample=sample, defs=defs, credit=credit)


def _after_style(status: str) -> dict:
    if status == "kept":
        return {"color": EDGE[status], "weight": 0.6, "fillColor": FILL[status], "fillOpacity": 0.3}
    weight = 1.2 if status == "recounted" else 2.5
    return {"color": EDGE[status], "weight": weight, "fillColor": FILL[status], "fillOpacity": 0.6}


#: Where a label sits against its grid's centre: a created grid's below it, a changed
#: one's above, so that a grid split off and the grid it left do not hide each other's.
SHIFT = {("after", "created"): "4px", ("after", "changed"): "calc(-100% - 4px)"}
SHIFT |= {("before", "retired"): "-50%"}


def _labels(report: Changes, rows: dict, came_from: dict, went_to: dict) -> folium.FeatureGroup:
    """Labels with old and new code and households on the created, changed and retired
    grids; they let the mouse through to the tooltips."""
    group = folium.FeatureGroup(name=LABELS)
    after = report.after[report.after["status"].isin(["created", "changed"])]
    retired = report.before[report.before["status"] == "retired"]
    for frame, side in ((after, "after"), (retired, "before")):
        for code, status, geom in zip(frame["code"], frame["status"], frame.geometry, strict=True):
            if geom is None or geom.is_empty:
                continue
            row = rows.get(code, {})
            if side == "after" and status == "created":
                second = f"新建 ← {_codes(came_from.get(code, []))}"
            elif side == "after":
                second = "调整 changed"
            else:
                second = f"撤销 → {_codes(went_to.get(code, []))}"
            hh = change_text(row.get("households_a"), row.get("households_b"))
            body = "<br>".join(html.escape(s) for s in (code, second, f"{hh} 户"))
            style = (
                f"position:absolute;transform:translate(-50%,{SHIFT[side, status]});"
                "white-space:nowrap;"
                "font:11px/1.25 sans-serif;text-align:center;pointer-events:none;"
                f"background:rgba(255,255,255,.8);border:1px solid {EDGE[status]};"
                "border-radius:3px;padding:1px 4px"
            )
            at = _centre(geom)
            folium.Marker(
                [at.y, at.x],
                icon=folium.DivIcon(
                    html=f'<div class="wg-change-label" style="{style}">{body}</div>',
                    icon_size=(0, 0),
                    class_name="wg-label",
                ),
                interactive=False,
            ).add_to(group)
    return group


def _centre(geom) -> shapely.Point:
    """The visual centre of a grid's largest part (WGS84)."""
    part = max(shapely.get_parts(geom), key=lambda p: p.area)
    try:
        return polylabel(part, tolerance=max(np.sqrt(part.area) / 200, 1e-7))
    except Exception:  # a degenerate ring: a point surely inside
        return part.representative_point()


def _legend(report: Changes) -> str:
    statuses = [s for s in STATUSES if s != "retired"]
    out = legend_block(
        f"后 after v{report.b}: 网格状态 grid status",
        [
            (
                swatch_rect(FILL[s], EDGE[s], opacity=0.3 if s == "kept" else 0.6, width=2),
                status_text(s),
            )
            for s in statuses
        ],
    )
    out += legend_block(
        f"前 before v{report.a}: 原边界 earlier outline (虚线 dashed)",
        [
            (swatch_rect("none", EDGE["changed"], dash="4 2", width=2), status_text("changed")),
            (swatch_rect("none", EDGE["retired"], dash="4 2", width=2), status_text("retired")),
        ],
    )
    out += legend_block(
        "移动单元 moved units",
        [(swatch_hatch(ACROSS), MOVED_STATUS[True]), (swatch_hatch(WITHIN), MOVED_STATUS[False])],
    )
    s = report.summary
    head = "".join(f"<th>{html.escape(status_text(k))}</th>" for k in STATUSES)
    body = "".join(
        f"<tr><td>{zh}</td>" + "".join(f"<td>{s[level][k]}</td>" for k in STATUSES) + "</tr>"
        for level, zh in (("grid", "网格 grids"), ("microgrid", "微网格 micro-grids"))
    )
    out += (
        '<h4>变更统计 counts</h4><table id="change-counts">'
        f"<tr><th></th>{head}</tr>{body}</table>"
        f"<div>移动 moved: {s['units_moved']} 单元 units, "
        f"{html.escape(households_text(s['households_moved']))} 户 households · "
        f"总户数 total {html.escape(change_text(s['households_a'], s['households_b']))}</div>"
    )
    grids = report.codes[
        (report.codes["level"] == "grid") & report.codes["status"].isin(STATUSES[:4])
    ]
    lines = "".join(
        f"<tr><td>{html.escape(str(r.code))}</td><td>{html.escape(status_text(r.status))}</td>"
        f"<td>{html.escape(households_text(r.households_a))}</td>"
        f"<td>{html.escape(households_text(r.households_b))}</td></tr>"
        for r in grids.itertuples()
    )
    out += (
        f"<details><summary>变更网格 grids changed ({len(grids)})</summary>"
        '<table id="change-grids"><tr><th>网格 grid</th><th>状态 status</th>'
        f"<th>户数 v{report.a}</th><th>户数 v{report.b}</th></tr>{lines}</table></details>"
    )
    return out


def write_change_map(report: Changes, path: str | Path, credit: str, sample: bool = False) -> Path:
    """Write the page of :func:`change_map` to ``path`` and return it."""
    return save(path, change_map(report, credit, sample))
