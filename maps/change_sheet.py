"""The change sheet (网格变更对照表): two versions of a plan side by side on one A3 page, as PDF.

The earlier version is drawn on the left and the later on the right, at one scale and over
one extent: the extent of every grid that was created, changed, recounted or retired and of
every unit that moved (the whole plan when nothing did). Grids are filled by their status,
as on the change map (:mod:`wangge.maps.change_map`); the created, changed and retired ones
are outlined in their status's colour, the later side also shows the earlier outlines
dashed, and the units that moved are hatched on both. Labels give the old code and
households on the left, the new code, the codes a created grid came from and households
before → after on the right (placed without overlaps by the notice maps' placer). Below the
maps, a table lists every created, changed, retired and recounted grid with its households
and units in both versions, and a second the moves between grids. The page carries the
report's counts, a scale bar, a north arrow, the print date and the plan's credit, and is
drawn by matplotlib with the notice maps' CJK font embedded as TrueType, so its text can be
searched and copied.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import shapely
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from wangge.changes import STATUSES, Changes
from wangge.geo.crs import metric_crs
from wangge.maps._notice_font import cjk_font, notice_font
from wangge.maps._notice_text import Table, flow_tables, place_labels
from wangge.maps.change_map import (
    ACROSS,
    EDGE,
    FILL,
    MOVED_STATUS,
    WITHIN,
    change_text,
    grid_rows,
    households_text,
    lineage,
    moves_between,
    status_text,
    summary_parts,
)
from wangge.maps.notice import (
    SAMPLE_BANNER,
    credit_text,
    frame_map,
    sample_mark,
    scale_and_north,
    sheet_legend,
    view_limits,
)

__all__ = ["A3", "change_sheet_texts", "write_change_sheet"]

#: A3 in inches, landscape.
A3 = (420 / 25.4, 297 / 25.4)
#: The statuses outlined in their colour, by side.
OUTLINED = {"before": ("changed", "retired"), "after": ("created", "changed")}
HATCH = {True: "////", False: "\\\\\\"}


def _title(report: Changes) -> str:
    return f"{report.plan_id} 网格变更对照图 Grid changes v{report.a} → v{report.b}"


def change_sheet_texts(report: Changes, credit: str) -> list[str]:
    """The text the sheet shows (for :func:`wangge.maps._notice_font.notice_font`): its own
    wording (this module and the change map's) and the report's."""
    own = [
        Path(__file__).read_text("utf-8"),
        Path(__file__).with_name("change_map.py").read_text("utf-8"),
    ]
    names = report.codes[["name_a", "name_b"]].fillna("").astype(str).to_numpy().ravel()
    return [*own, _title(report), *summary_parts(report), credit_text(credit), *names]


def write_change_sheet(
    report: Changes, path: str | Path, credit: str, sample: bool = False, printed: str = ""
) -> Path:
    """Draw the change sheet of ``report`` and write it as a one-page PDF at ``path``.

    Parameters
    ----------
    report
        The change report of versions ``a`` → ``b`` (:func:`wangge.changes.changes`).
    path
        The PDF to write (its folder is made).
    credit
        The credit of the plan's sources (``Plan.attribution``); OpenStreetMap's is
        printed in Chinese and English.
    sample
        Whether the plan holds sample data (a banner says so).
    printed
        The print date shown (today's by default).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = font_manager.FontProperties(fname=str(cjk_font())).get_name()
    family = notice_font(change_sheet_texts(report, credit))
    style = {
        "font.family": [family, full, "DejaVu Sans"],  # each glyph from the first that has it
        "axes.unicode_minus": False,
        "pdf.fonttype": 42,
        "hatch.linewidth": 0.6,
    }
    with matplotlib.rc_context(style):
        fig = _draw(report, credit, sample, printed)
        fig.savefig(path, metadata={"Title": _title(report)})
    return path


def _draw(report: Changes, credit: str, sample: bool, printed: str) -> Figure:
    pw, ph = A3
    fig = Figure(figsize=(pw, ph))
    margin, top, foot, band = 0.5, 1.65 + 0.35 * sample, 0.6, 3.0
    gap = 0.3
    map_w = (pw - 2 * margin - gap) / 2
    map_h = ph - top - foot - band - 0.35
    y_map = foot + band + 0.35

    lon, lat = _centre_lonlat(report)
    crs = metric_crs(lon, lat)
    sides = {
        "before": (report.before.to_crs(crs), report.a, "前 Before"),
        "after": (report.after.to_crs(crs), report.b, "后 After"),
    }
    moved = report.moved_units.to_crs(crs)
    view = _view(sides["before"][0], sides["after"][0], moved)
    xlim, ylim = view_limits(view, map_w, map_h)
    rows = grid_rows(report)
    came_from, went_to = lineage(report)
    FigureCanvasAgg(fig)  # text is measured from here on
    handles = []
    for n, (side, (grids, version, word)) in enumerate(sides.items()):
        x = margin + n * (map_w + gap)
        ax = fig.add_axes([x / pw, y_map / ph, map_w / pw, map_h / ph])
        handles = _draw_side(ax, side, grids, moved, sides["before"][0], xlim, ylim)
        ax.set_title(f"{word} · v{version}", fontsize=13, loc="left")
        _, reserved = scale_and_north(ax, crs, xlim, ylim, paper="A3")
        labelled = _label_frame(side, grids, rows, came_from, went_to)
        first = place_labels(ax, labelled[labelled["main"]].reset_index(drop=True), reserved)
        taken = reserved + [lab.box for lab in first if lab.box is not None]
        place_labels(ax, labelled[~labelled["main"]].reset_index(drop=True), taken, zorder=7.5)
        if sample:
            sample_mark(ax, fontsize=40)

    inch = fig.dpi_scale_trans
    fig.text(margin, ph - 0.35, _title(report), transform=inch, fontsize=20, va="top")
    grids_line, micro_line, moved_line = summary_parts(report)
    fig.text(margin, ph - 0.8, grids_line, transform=inch, fontsize=10, va="top", color="#222")
    fig.text(
        margin,
        ph - 1.05,
        f"{micro_line} · {moved_line}",
        transform=inch,
        fontsize=10,
        va="top",
        color="#222",
    )
    if sample:
        fig.text(
            margin,
            ph - 1.35,
            SAMPLE_BANNER,
            transform=inch,
            fontsize=9,
            va="top",
            color="#6b4e00",
            bbox={"boxstyle": "round,pad=0.35", "fc": "#fff3cd", "ec": "#d39e00", "lw": 1.2},
        )
    footer = (
        f"方案 Plan: {report.plan_id} v{report.a} → v{report.b} · "
        f"打印日期 Printed: {printed or date.today()}"
    )
    fig.text(margin, 0.36, footer, transform=inch, fontsize=8, va="bottom", color="#333")
    fig.text(margin, 0.18, credit_text(credit), transform=inch, fontsize=8, va="bottom")

    legend_w = 3.1
    sheet_legend(fig, (margin, foot, legend_w, band), handles, 8)
    box = (margin + legend_w + 0.3, foot, pw - 2 * margin - legend_w - 0.3, band)
    flow_tables(fig, box, _tables(report), font_manager.FontProperties())
    return fig


def _centre_lonlat(report: Changes) -> tuple[float, float]:
    frames = [f for f in (report.after, report.before) if len(f)]
    x0, y0, x1, y1 = pd.concat(frames).to_crs(4326).total_bounds
    return (x0 + x1) / 2, (y0 + y1) / 2


def _view(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, moved: gpd.GeoDataFrame):
    """The bounds of whatever changed: grids not kept on either side and moved units; of
    every grid when nothing changed."""
    parts = [f.geometry[f["status"] != "kept"] for f in (before, after)] + [moved.geometry]
    geoms = pd.concat(parts)
    geoms = geoms[geoms.notna() & ~geoms.is_empty]
    if not len(geoms):
        geoms = pd.concat([before.geometry, after.geometry])
    return tuple(shapely.total_bounds(geoms.to_numpy()))


def _draw_side(ax, side, grids, moved, earlier, xlim, ylim) -> list:
    """Draw one version's grids and the moved units; return the legend's handles."""
    view = shapely.box(xlim[0], ylim[0], xlim[1], ylim[1])
    grids = grids[grids.intersects(view)]
    status = grids["status"]
    ax.set_facecolor("white")
    for s in STATUSES:
        these = grids[status == s]
        if len(these):
            alpha = 0.35 if s == "kept" else 0.6
            these.plot(ax=ax, color=FILL[s], alpha=alpha, lw=0, zorder=1, aspect=None)
    grids.boundary.plot(ax=ax, color="#8a8a8a", lw=0.4, zorder=2, aspect=None)
    recounted = grids[status == "recounted"]
    if len(recounted):
        recounted.boundary.plot(ax=ax, color=EDGE["recounted"], lw=0.9, zorder=3, aspect=None)
    for s in OUTLINED[side]:
        these = grids[status == s]
        if len(these):
            these.boundary.plot(ax=ax, color=EDGE[s], lw=2.0, zorder=5, aspect=None)
    if side == "after":
        old = earlier[earlier["status"].isin(OUTLINED["before"]) & earlier.intersects(view)]
        for s in OUTLINED["before"]:
            these = old[old["status"] == s]
            if len(these):
                these.boundary.plot(ax=ax, color=EDGE[s], lw=1.3, ls="--", zorder=6, aspect=None)
    across = moved["from_grid"] != moved["to_grid"]
    for flag, colour in ((True, ACROSS), (False, WITHIN)):
        these = moved[across == flag]
        if len(these):
            these.plot(
                ax=ax, fc="none", ec=colour, hatch=HATCH[flag], lw=0.5, zorder=4, aspect=None
            )
    frame_map(ax, xlim, ylim)

    handles = [
        Patch(fc=FILL[s], ec=EDGE[s], alpha=0.6, label=status_text(s))
        for s in ("created", "changed", "retired", "recounted")
    ]
    handles.append(Patch(fc=FILL["kept"], alpha=0.35, label=status_text("kept")))
    handles.append(
        Line2D(
            [],
            [],
            color=EDGE["changed"],
            lw=1.3,
            ls="--",
            label="原边界 Earlier outline (后 after)",
        )
    )
    handles += [
        Patch(
            fc="white",
            ec=colour,
            hatch=HATCH[flag],
            label=f"移动单元 Moved unit: {MOVED_STATUS[flag]}",
        )
        for flag, colour in ((True, ACROSS), (False, WITHIN))
    ]
    return handles


def _label_frame(side, grids, rows, came_from, went_to) -> gpd.GeoDataFrame:
    """The grids a side labels, with the line above the code (``name``, as the placer
    reads it); ``main`` for the created, changed and retired ones, placed first."""
    wanted = (*OUTLINED[side], "recounted") if side == "after" else OUTLINED[side]
    chosen = grids[grids["status"].isin(wanted)]
    names, main = [], []
    for code, status in zip(chosen["code"], chosen["status"], strict=True):
        row = rows.get(code, {})
        a, b = row.get("households_a"), row.get("households_b")
        if side == "before":
            line = f"{households_text(a)} 户"
            if status == "retired":
                line = f"撤销 → {', '.join(went_to.get(code, [])) or '–'}\n{line}"
        elif status == "created":
            line = f"新建 ← {', '.join(came_from.get(code, [])) or '–'}\n{households_text(b)} 户"
        else:
            line = f"{change_text(a, b)} 户"
        names.append(line)
        main.append(status != "recounted")
    out = chosen[["code", chosen.geometry.name]].reset_index(drop=True)
    return out.assign(name=names, main=np.array(main, dtype=bool))


def _tables(report: Changes) -> list[Table]:
    """Every grid created, changed, retired or recounted; the moves between grids."""
    grids = report.codes[
        (report.codes["level"] == "grid") & report.codes["status"].isin(STATUSES[:4])
    ]
    rows = [
        (
            str(r.code),
            status_text(r.status),
            households_text(r.households_a),
            households_text(r.households_b),
            f"{r.units_a} → {r.units_b}",
        )
        for r in grids.itertuples()
    ]
    a, b = report.a, report.b
    out = [
        Table(
            f"变更网格 Grids changed ({len(rows)})",
            ("编码 Code", "状态 Status", f"户数 v{a}", f"户数 v{b}", "单元 Units"),
            rows,
            ("left", "left", "right", "right", "right"),
        )
    ]
    pairs = moves_between(report)
    moves = [
        (str(r.from_grid), str(r.to_grid), str(r.units), households_text(r.households))
        for r in pairs.itertuples()
    ]
    if moves:
        out.append(
            Table(
                f"跨网格移动 Moves between grids ({len(moves)})",
                ("原网格 From", "新网格 To", "单元 Units", "户数 Households"),
                moves,
                ("left", "left", "right", "right"),
            )
        )
    return out
