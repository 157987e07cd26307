"""Risk maps as offline HTML: the four-colour grid map, a risk heatmap and coverage gaps.

Each page is self-contained (inline SVG, a little inline JS where there is a selector), so
it opens the same on an intranet with no internet. Frames are GeoDataFrames in one metric
CRS; the columns each function reads are those ``geo/risk.py`` and ``geo/access.py`` write.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from wangge.geo.rules import LEVEL_COLOURS, LEVEL_ZH, LEVELS
from wangge.maps._svg import (
    Viewport,
    anchor,
    fmt,
    hatch_pattern,
    legend_block,
    marker,
    page,
    path_d,
    png_data_uri,
    polygon,
    sample_banner,
    swatch_hatch,
    swatch_marker,
    swatch_rect,
    union_bounds,
)

LEVEL_EN = {
    "red": "major risk",
    "orange": "significant risk",
    "yellow": "general risk",
    "blue": "low risk",
}
#: Outline colours of Gi* hot and cold spots.
HOT, COLD = "#8b0000", "#08519c"
#: Colour ramp of the heatmap, low → high (ColorBrewer YlOrRd).
RAMP = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
#: Largest heatmap raster; a finer ``cell_m`` is coarsened to stay under it.
MAX_CELLS = 250_000
DEFAULT_WEIGHTS = {"red": 9, "orange": 4, "yellow": 2, "blue": 1}
#: Colours of the gap map.
BEYOND, MISSING, OVER, FACILITY, VULNERABLE = "#d7301f", "#6a3d9a", "#c51b7d", "#1a9850", "#3f007d"
EXPOSED = "exposed_vulnerable"


def _grid_outlines(grids, vp, stroke: str) -> list[str]:
    """Unfilled grid outlines with a tooltip giving code and households."""
    out = []
    for row, geom in _records(grids):
        text = f"网格 grid {row.get('code', '')} · {fmt(row.get('households'))} 户 households"
        out.append(
            polygon(
                geom,
                vp,
                text,
                class_="grid",
                fill="#ffffff",
                fill_opacity=0,
                stroke=stroke,
                stroke_width=1,
            )
        )
    return out


def _records(frame: gpd.GeoDataFrame | None) -> list[tuple[dict, object]]:
    """``(attributes, geometry)`` of each row; none for a missing or empty frame."""
    if frame is None or not len(frame):
        return []
    rows = frame.drop(columns=frame.geometry.name).to_dict("records")
    return list(zip(rows, frame.geometry.to_numpy(), strict=True))


def _true(v) -> bool:
    """A flag read from a record: NaN and None are false."""
    return False if v is None or (not isinstance(v, str) and pd.isna(v)) else bool(v)


def _colour(row: Mapping) -> str:
    c = row.get("colour")
    if isinstance(c, str) and c:
        return c
    return LEVEL_COLOURS.get(row.get("level"), "#bbbbbb")


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.write_text(text, "utf-8")
    return path


def _level_legend(opacity: float) -> list[tuple[str, str]]:
    return [
        (swatch_rect(LEVEL_COLOURS[lv], fill_opacity=opacity), f"{LEVEL_ZH[lv]} {LEVEL_EN[lv]}")
        for lv in LEVELS
    ]


def _point_tip(row: Mapping, what: str) -> str:
    sample = " · 样例 sample" if _true(row.get("sample")) else ""
    return (
        f"{what} {row.get('risk_id', '')} {row.get('name', '') or ''} · "
        f"{row.get('category_zh', '') or ''} · {row.get('level_zh', '')} {row.get('level', '')}"
        f" · 风险值 score {fmt(row.get('score'))} ({row.get('method', '')}){sample}"
    )


# --- four-colour risk map -------------------------------------------------------------------


def risk_map_html(
    grid_risk: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    title: str = "网格风险四色图 Grid risk map",
    width: int = 1100,
) -> str:
    """Render the four-colour risk map of grids with hot spots, risk points and zones.

    Parameters
    ----------
    grid_risk
        Per-grid risk (``geo.risk.grid_risk``): ``code``, ``name``, ``households``,
        ``n_red``…``n_blue``, ``score``, ``score_per_100hh``, ``level``, ``level_zh``,
        ``colour``, ``exposed_households``, ``exposed_vulnerable``, ``gi_z``, ``gi_p``,
        ``hotspot`` (hot, cold or ''), ``sample``; polygons.
    points, zones
        Scored risk points and zones (``geo.risk.score``), same CRS.
    title
        Heading of the page.
    width
        Width of the map in pixels.

    Returns
    -------
    str
        The HTML page.
    """
    vp = Viewport.fit(union_bounds(grid_risk, points, zones), width, pad=12)
    defs = "".join(hatch_pattern(f"hatch-{lv}", LEVEL_COLOURS[lv]) for lv in LEVELS)
    grids, outlines, zone_shapes, dots = [], [], [], []
    for row, geom in _records(grid_risk):
        spot = row.get("hotspot") or ""
        spot_txt = {"hot": " · 热点 hot spot", "cold": " · 冷点 cold spot"}.get(spot, "")
        text = (
            f"网格 grid {row.get('code', '')} {row.get('name', '') or ''} · "
            f"{fmt(row.get('households'))} 户 households · "
            f"风险点 points 重大/较大/一般/低 {fmt(row.get('n_red'))}/{fmt(row.get('n_orange'))}/"
            f"{fmt(row.get('n_yellow'))}/{fmt(row.get('n_blue'))} · "
            f"风险分 score {fmt(row.get('score'), '.1f')} "
            f"({fmt(row.get('score_per_100hh'), '.1f')} /100户 per 100 hh) · "
            f"{row.get('level_zh', '')} {row.get('level', '')} · "
            f"暴露 exposed {fmt(row.get('exposed_households'))} 户 hh, "
            f"重点人群 vulnerable {fmt(row.get('exposed_vulnerable'))} · "
            f"Gi* z {fmt(row.get('gi_z'), '.2f')} p {fmt(row.get('gi_p'), '.3f')}{spot_txt}"
        )
        grids.append(
            polygon(
                geom,
                vp,
                text,
                class_="grid",
                data_code=row.get("code"),
                fill=_colour(row),
                fill_opacity=0.55,
                stroke="#444",
                stroke_width=1,
            )
        )
        if spot in ("hot", "cold"):
            outlines.append(
                polygon(
                    geom,
                    vp,
                    class_=spot,
                    fill="none",
                    stroke=HOT if spot == "hot" else COLD,
                    stroke_width=4 if spot == "hot" else 3,
                    stroke_dasharray="10 5",
                    pointer_events="none",
                )
            )
    for row, geom in _records(zones):
        level = row.get("level")
        fill = f"url(#hatch-{level})" if level in LEVEL_COLOURS else _colour(row)
        text = _point_tip(row, f"风险区 zone ({row.get('kind', '')})")
        zone_shapes.append(
            polygon(
                geom,
                vp,
                text,
                class_="zone",
                fill=fill,
                fill_opacity=0.8,
                stroke=_colour(row),
                stroke_width=1.5,
            )
        )
    # blue first, so that red points are drawn on top
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    ordered = sorted(_records(points), key=lambda rg: -rank.get(rg[0].get("level"), 9))
    for row, geom in ordered:
        xy = anchor(geom, vp)
        if xy is None:
            continue
        dots.append(
            marker(
                *xy,
                5,
                title=_point_tip(row, "风险点 risk point"),
                class_="point",
                data_level=row.get("level"),
                fill=_colour(row),
                stroke="#222",
                stroke_width=1.2,
            )
        )
    svg = (
        f"{vp.svg_open()}<defs>{defs}</defs>"
        f'<g id="grids">{"".join(grids)}</g><g id="zones">{"".join(zone_shapes)}</g>'
        f'<g id="hotspots">{"".join(outlines)}</g><g id="points">{"".join(dots)}</g></svg>'
    )
    legend = (
        legend_block("风险等级 risk level (网格 grid)", _level_legend(0.55))
        + legend_block(
            "冷热点 hot and cold spots (Getis-Ord Gi*)",
            [
                (swatch_rect("none", HOT, "5 2", stroke_width=2.5), "热点 hot spot (Gi*)"),
                (swatch_rect("none", COLD, "5 2", stroke_width=2), "冷点 cold spot (Gi*)"),
            ],
        )
        + legend_block(
            "风险点与风险区 risk points and zones",
            [
                (
                    swatch_marker("circle", 5, fill=LEVEL_COLOURS["red"], stroke="#222"),
                    "风险点 risk point (颜色=等级 colour = level)",
                ),
                (
                    swatch_hatch(LEVEL_COLOURS["orange"]),
                    "风险区 risk zone (阴影=等级 hatch = level)",
                ),
            ],
        )
    )
    body = (
        f"{sample_banner(grid_risk, points, zones)}"
        f'<div class="legend">{legend}{_risk_summary(grid_risk, points, zones)}</div>\n{svg}'
    )
    return page(title, body)


def _risk_summary(grid_risk, points, zones) -> str:
    """A table of grids, households, points and zones per level, with the hot-spot count."""

    def count(frame, level) -> int:
        if frame is None or "level" not in frame:
            return 0
        return int((frame["level"] == level).sum())

    rows = []
    for lv in LEVELS:
        sel = grid_risk["level"] == lv if "level" in grid_risk else np.zeros(len(grid_risk), bool)
        hh = pd.to_numeric(grid_risk.loc[sel, "households"], errors="coerce").sum()
        rows.append(
            f"<tr><td>{LEVEL_ZH[lv]} {lv}</td><td>{int(sel.sum())}</td><td>{hh:g}</td>"
            f"<td>{count(points, lv)}</td><td>{count(zones, lv)}</td></tr>"
        )
    hh = pd.to_numeric(grid_risk.get("households"), errors="coerce").sum()
    n_pt = 0 if points is None else len(points)
    n_zn = 0 if zones is None else len(zones)
    rows.append(
        f"<tr><th>合计 total</th><th>{len(grid_risk)}</th><th>{hh:g}</th>"
        f"<th>{n_pt}</th><th>{n_zn}</th></tr>"
    )
    spots = grid_risk["hotspot"] if "hotspot" in grid_risk else pd.Series(dtype=object)
    return (
        '<h4>各级网格 grids per level</h4><table class="summary" id="summary">'
        "<tr><th>等级 level</th><th>网格 grids</th><th>户数 households</th>"
        f"<th>风险点 points</th><th>风险区 zones</th></tr>{''.join(rows)}</table>"
        f"<div>热点网格 hot-spot grids: {int((spots == 'hot').sum())} · "
        f"冷点网格 cold-spot grids: {int((spots == 'cold').sum())}</div>"
    )


def write_risk_map(
    path: str | Path,
    grid_risk: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    title: str = "网格风险四色图 Grid risk map",
) -> Path:
    """Write :func:`risk_map_html` to ``path`` and return it."""
    return _write(path, risk_map_html(grid_risk, points, zones, title))


# --- heatmap --------------------------------------------------------------------------------


def density_raster(bounds, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a raster of ``cell_m`` cells that covers ``bounds``.

    Parameters
    ----------
    bounds
        ``(xmin, ymin, xmax, ymax)`` in metres.
    cell_m
        Side of a cell in metres.

    Returns
    -------
    tuple of numpy.ndarray
        ``xs`` (west → east) and ``ys`` (north → south, the order of image rows). The
        raster starts at ``(xmin, ymax)`` and may reach up to one cell beyond the bounds.
    """
    x0, y0, x1, y1 = (float(v) for v in bounds)
    if cell_m <= 0:
        raise ValueError(f"cell_m must be positive, got {cell_m}")
    nx = max(1, math.ceil((x1 - x0) / cell_m))
    ny = max(1, math.ceil((y1 - y0) / cell_m))
    return x0 + (np.arange(nx) + 0.5) * cell_m, y1 - (np.arange(ny) + 0.5) * cell_m


def kernel_density(
    points_xy: np.ndarray,
    weights: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    bandwidth_m: float,
    cutoff: float = 3.0,
) -> np.ndarray:
    """Weighted Gaussian kernel density of points at the cells of a raster.

    Each point spreads its weight with a Gaussian of standard deviation ``bandwidth_m``,
    cut off at ``cutoff`` bandwidths (found with a KD-tree) and rescaled so that the
    truncated kernel still integrates to one. The raster's sum times the cell area is
    therefore the sum of the weights, less what falls outside the raster.

    Parameters
    ----------
    points_xy
        ``(n, 2)`` point coordinates in metres.
    weights
        ``n`` weights (e.g. 9/4/2/1 for red/orange/yellow/blue).
    grid
        ``(xs, ys)`` cell centres, as :func:`density_raster` gives.
    bandwidth_m
        Standard deviation of the kernel in metres.
    cutoff
        Radius of the kernel, in bandwidths.

    Returns
    -------
    numpy.ndarray
        ``(len(ys), len(xs))`` density in weight per square metre.
    """
    if bandwidth_m <= 0:
        raise ValueError(f"bandwidth_m must be positive, got {bandwidth_m}")
    xs, ys = (np.asarray(a, dtype=float) for a in grid)
    out = np.zeros(len(ys) * len(xs))
    xy = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    w = np.asarray(weights, dtype=float).reshape(-1)
    keep = np.isfinite(xy).all(axis=1) & np.isfinite(w) & (w != 0)
    xy, w = xy[keep], w[keep]
    if not len(xy) or not len(out):
        return out.reshape(len(ys), len(xs))
    gx, gy = np.meshgrid(xs, ys)
    cells = cKDTree(np.column_stack([gx.ravel(), gy.ravel()]))
    pairs = cKDTree(xy).sparse_distance_matrix(cells, cutoff * bandwidth_m, output_type="ndarray")
    norm = 2 * np.pi * bandwidth_m**2 * (1 - np.exp(-0.5 * cutoff**2))
    k = np.exp(-0.5 * (pairs["v"] / bandwidth_m) ** 2) / norm
    out += np.bincount(pairs["j"], weights=w[pairs["i"]] * k, minlength=len(out))
    return out.reshape(len(ys), len(xs))


def _ramp_rgba(v: np.ndarray) -> np.ndarray:
    """RGBA of values in [0, 1] on :data:`RAMP`, fading to transparent at the low end."""
    anchors = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in RAMP], dtype=float)
    stops = np.linspace(0, 1, len(RAMP))
    v = np.clip(np.nan_to_num(v), 0, 1)
    rgb = np.stack([np.interp(v, stops, anchors[:, i]) for i in range(3)], axis=-1)
    alpha = 0.85 * np.clip((v - 0.02) / 0.25, 0, 1)
    return np.concatenate([rgb, alpha[..., None] * 255], axis=-1).round().astype(np.uint8)


def heatmap_html(
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    weights: Mapping[str, float] | None = None,
    cell_m: float = 25.0,
    bandwidth_m: float = 200.0,
    title: str = "风险热力图 Risk heatmap",
    width: int = 1100,
) -> str:
    """Render a kernel-density heatmap of risk points, with grids, zones and points on top.

    Parameters
    ----------
    points
        Scored risk points (``level``, ``colour``, point geometry).
    zones
        Scored risk zones, drawn as outlines.
    grids
        The grids: their extent is the raster's, their outlines are drawn.
    weights
        Weight of one point of each level (default red 9, orange 4, yellow 2, blue 1).
    cell_m
        Raster cell in metres; coarsened if the raster would exceed :data:`MAX_CELLS`.
    bandwidth_m
        Kernel bandwidth (standard deviation) in metres.
    title
        Heading of the page.
    width
        Width of the map in pixels.

    Returns
    -------
    str
        The HTML page.
    """
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    bounds = union_bounds(grids)
    vp = Viewport.fit(bounds, width, pad=12)
    area = max(bounds[2] - bounds[0], 1.0) * max(bounds[3] - bounds[1], 1.0)
    cell_m = max(float(cell_m), math.sqrt(area / MAX_CELLS))
    xs, ys = density_raster(bounds, cell_m)
    pts = [(row, geom) for row, geom in _records(points) if geom is not None and not geom.is_empty]
    pts = [(row, geom) for row, geom in pts if geom.geom_type == "Point"]
    xy = np.array([[g.x, g.y] for _, g in pts]).reshape(-1, 2)
    w = np.array([float(weights.get(row.get("level"), 0.0)) for row, _ in pts])
    dens = kernel_density(xy, w, (xs, ys), bandwidth_m)
    peak = float(dens.max()) if dens.size else 0.0
    parts = [vp.svg_open()]
    if peak > 0:
        ((left, top),) = vp(np.array([[xs[0] - cell_m / 2, ys[0] + cell_m / 2]]))
        parts.append(
            f'<image href="{png_data_uri(_ramp_rgba(dens / peak))}" x="{left:.1f}" '
            f'y="{top:.1f}" width="{len(xs) * cell_m * vp.scale:.1f}" '
            f'height="{len(ys) * cell_m * vp.scale:.1f}" preserveAspectRatio="none"/>'
        )
    for row, geom in _records(zones):
        text = _point_tip(row, f"风险区 zone ({row.get('kind', '')})")
        parts.append(
            polygon(
                geom,
                vp,
                text,
                class_="zone",
                fill="none",
                stroke=_colour(row),
                stroke_width=1.5,
                stroke_dasharray="4 3",
            )
        )
    parts.extend(_grid_outlines(grids, vp, "#333"))
    for row, geom in pts:
        ((x, y),) = vp(np.array([[geom.x, geom.y]]))
        parts.append(
            marker(
                x,
                y,
                2.5,
                title=_point_tip(row, "风险点 risk point"),
                class_="point",
                fill=_colour(row),
                stroke="#222",
                stroke_width=0.6,
            )
        )
    parts.append("</svg>")
    ramp = ",".join(RAMP)
    wtxt = " · ".join(f"{LEVEL_ZH[lv]} {lv} {fmt(weights.get(lv, 0))}" for lv in LEVELS)
    legend = (
        "<h4>风险核密度 risk kernel density</h4>"
        f'<div style="width:220px;height:14px;border:1px solid #666;'
        f'background:linear-gradient(to right,{ramp})"></div>'
        '<div style="width:222px;display:flex;justify-content:space-between">'
        "<span>低 low</span><span>高 high</span></div>"
        f"<div>峰值 peak {peak * 1e4:.2f} 加权点/公顷 weighted points per ha</div>"
        f"<div>高斯核 Gaussian kernel · 带宽 bandwidth {bandwidth_m:g} m</div>"
        f"<div>栅格 cell {cell_m:g} m</div>"
        f"<div>权重 weights: {html.escape(wtxt)}</div>"
        + legend_block(
            "图层 layers",
            [
                (
                    swatch_marker("circle", 3, fill=LEVEL_COLOURS["red"], stroke="#222"),
                    "风险点 risk point (颜色=等级 colour = level)",
                ),
                (swatch_rect("none", LEVEL_COLOURS["orange"], "4 3"), "风险区 risk zone"),
                (swatch_rect("none", "#333"), "网格 grid"),
            ],
        )
    )
    if not len(pts):
        legend += "<div>无风险点 no risk points</div>"
    body = (
        f'{sample_banner(points, zones, grids)}<div class="legend">{legend}</div>\n{"".join(parts)}'
    )
    return page(title, body)


def write_heatmap(
    path: str | Path,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    weights: Mapping[str, float] | None = None,
    cell_m: float = 25.0,
    bandwidth_m: float = 200.0,
    title: str = "风险热力图 Risk heatmap",
) -> Path:
    """Write :func:`heatmap_html` to ``path`` and return it."""
    return _write(path, heatmap_html(points, zones, grids, weights, cell_m, bandwidth_m, title))


# --- coverage gaps --------------------------------------------------------------------------

_SCRIPT = """
function show(k){
 document.querySelectorAll('[data-layer]').forEach(function(e){
  var on=e.getAttribute('data-layer')===k;
  if(e.tagName.toLowerCase()==='g'){e.style.display=on?'':'none';}
  else{e.classList.toggle('on',on);}
 });
 document.querySelectorAll('[data-show]').forEach(function(b){
  b.classList.toggle('on',b.getAttribute('data-show')===k);
 });
 window.wanggeLayer=k;
}
document.querySelectorAll('[data-show]').forEach(function(b){
 b.addEventListener('click',function(){show(b.getAttribute('data-show'));});
});
var first=document.querySelector('[data-show]');
if(first){window.wanggeLayer=first.getAttribute('data-show');}
"""
_CSS = """
.selector button{margin:0 4px 6px 0;padding:4px 10px;border:1px solid #888;background:#f4f4f4;
cursor:pointer} .selector button.on{background:#333;color:#fff}
table.summary tr.on td{background:#fff3cd;font-weight:bold}
"""


def _radius(n) -> float:
    n = 0.0 if n is None or pd.isna(n) else max(float(n), 0.0)
    return min(1.5 + 0.7 * math.sqrt(n), 12.0)


def _num(frame: pd.DataFrame | None, column: str) -> float:
    if frame is None or column not in frame or not len(frame):
        return 0.0
    return float(pd.to_numeric(frame[column], errors="coerce").fillna(0).sum())


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(False, index=frame.index)
    return frame[column].fillna(False).astype(bool)


def gap_maps_html(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    types: Mapping[str, Mapping],
    title: str = "设施覆盖缺口 Facility coverage gaps",
    width: int = 1100,
) -> str:
    """Render coverage gaps of every facility type in one page with a type selector.

    Parameters
    ----------
    grids
        The grids (``code``, ``households``), outlined.
    buildings
        ``building_id``, ``households``, ``grid_code``; polygons, drawn lightly.
    facilities
        ``facility_id``, ``type``, ``type_zh``, ``name``, ``source``, ``sample``,
        ``capacity``, ``load``, ``over_capacity``; points.
    gaps
        ``gap_id``, ``kind`` (beyond_reach, missing_required, over_capacity,
        exposed_vulnerable), ``type``, ``type_zh``, ``grid_code``, ``households``,
        ``people``, ``distance_m``, ``reach_m``, ``straight``, ``reason``, ``sample``;
        points for buildings, polygons for grids missing a required type.
    types
        Facility key → ``{"zh", "en", "reach_m"}``, in the order of the selector. A type
        that only the gaps name is added after them.
    title
        Heading of the page.
    width
        Width of the map in pixels.

    Returns
    -------
    str
        The HTML page. Each type is one ``<g data-layer="key">`` (only the first shown
        without JS), plus ``exposed_vulnerable``; buttons switch between them.
    """
    types = {k: dict(v) for k, v in types.items()}
    gaps = gaps if gaps is not None else gpd.GeoDataFrame({"kind": []}, geometry=[])
    kind = gaps["kind"] if "kind" in gaps else pd.Series("", index=gaps.index)
    gtype = gaps["type"].fillna("") if "type" in gaps else pd.Series("", index=gaps.index)
    for key in pd.unique(gtype[(kind != EXPOSED) & (gtype != "")]):
        if key not in types:
            first = gaps[gtype == key].iloc[0]
            types[key] = {
                "zh": first.get("type_zh", key),
                "en": key,
                "reach_m": first.get("reach_m"),
            }
    fac = facilities if facilities is not None else gpd.GeoDataFrame({"type": []}, geometry=[])
    ftype = fac["type"] if "type" in fac else pd.Series("", index=fac.index)

    vp = Viewport.fit(union_bounds(grids, buildings), width, pad=12)
    b_path = "".join(path_d(g, vp) for _, g in _records(buildings))
    base = [f'<path class="buildings" d="{b_path}" fill="#d0d0d0" stroke="none"/>']
    base.extend(_grid_outlines(grids, vp, "#666"))
    total_hh = _num(buildings, "households") or _num(grids, "households")

    groups, buttons, rows = [], [], []
    keys = [*types, EXPOSED]
    for i, key in enumerate(keys):
        hidden = ' style="display:none"' if i else ""
        on = "" if i else ' class="on"'
        if key == EXPOSED:
            label = "重点人群暴露 exposed vulnerable people"
            sel = gaps[kind == EXPOSED]
            shapes = _exposed_shapes(sel, vp)
            row = (
                f"<td>{html.escape(label)}</td><td>–</td>"
                f"<td>{len(sel)} 栋 buildings, {_num(sel, 'people'):g} 人 people</td>"
                "<td>–</td><td>–</td><td>–</td>"
            )
        else:
            info = types[key]
            label = f"{info.get('zh', key)} {info.get('en', key)}"
            sel = gaps[gtype == key]
            shapes, row = _type_layer(key, info, sel, fac[ftype == key], total_hh, vp)
        k = html.escape(str(key))
        groups.append(f'<g class="layer" data-layer="{k}"{hidden}>{"".join(shapes)}</g>')
        buttons.append(f'<button type="button" data-show="{k}"{on}>{html.escape(label)}</button>')
        rows.append(f'<tr data-layer="{k}"{on}>{row}</tr>')

    defs = hatch_pattern("hatch-missing", MISSING, spacing=8, width=2.5)
    svg = f"{vp.svg_open()}<defs>{defs}</defs>{''.join(base)}{''.join(groups)}</svg>"
    table = (
        '<table class="summary" id="summary"><tr><th>设施 facility type</th>'
        "<th>服务半径 reach</th><th>未覆盖户数 uncovered households</th>"
        "<th>缺少设施的网格 grids missing</th><th>设施 facilities</th>"
        f"<th>超容量 over capacity</th></tr>{''.join(rows)}</table>"
    )
    body = (
        f"{sample_banner(grids, buildings, facilities, gaps)}"
        f'<div class="selector">{"".join(buttons)}</div>'
        f'<div class="legend">{_gap_legend()}</div>{table}\n{svg}'
    )
    return page(title, body, script=_SCRIPT, css=_CSS)


def _type_layer(key, info, sel, fac, total_hh, vp) -> tuple[list[str], str]:
    """The shapes of one facility type's layer and its summary row."""
    zh = info.get("zh", key)
    kind = sel["kind"] if "kind" in sel else pd.Series("", index=sel.index)
    missing, beyond, over = (
        sel[kind == k] for k in ("missing_required", "beyond_reach", "over_capacity")
    )
    shapes = []
    for row, geom in _records(missing):
        text = (
            f"网格 grid {row.get('grid_code', '')} 缺少必配设施 lacks a required {zh} · "
            f"{fmt(row.get('households'))} 户 households · {row.get('reason', '') or ''}"
        )
        shapes.append(
            polygon(
                geom,
                vp,
                text,
                class_="missing",
                fill="url(#hatch-missing)",
                stroke=MISSING,
                stroke_width=2,
            )
        )
    for row, geom in _records(beyond):
        xy = anchor(geom, vp)
        if xy is None:
            continue
        straight = _true(row.get("straight"))
        how = " (直线距离 straight line, no network)" if straight else ""
        text = (
            f"楼栋 building · {fmt(row.get('households'))} 户 households, "
            f"{fmt(row.get('people'))} 人 people · {zh} 距离 distance "
            f"{fmt(row.get('distance_m'), '.0f')} m > {fmt(row.get('reach_m'), '.0f')} m{how}"
            f" · {row.get('reason', '') or ''}"
        )
        look = (
            {"fill": "none", "stroke": BEYOND, "stroke_width": 1.5, "stroke_dasharray": "2 1.5"}
            if straight
            else {"fill": BEYOND, "fill_opacity": 0.75, "stroke": "#7f0000", "stroke_width": 0.6}
        )
        shapes.append(
            marker(
                *xy,
                _radius(row.get("households")),
                title=text,
                class_="beyond straight" if straight else "beyond",
                **look,
            )
        )
    for row, geom in _records(over):
        xy = anchor(geom, vp)
        if xy is None:
            continue
        text = (
            f"楼栋 building · {fmt(row.get('households'))} 户 households · 所属{zh}超容量 "
            f"assigned {zh} is over capacity · {row.get('reason', '') or ''}"
        )
        shapes.append(marker(*xy, 5, "triangle", text, class_="over", fill=OVER, stroke="#fff"))
    n_sample = 0
    n_over = 0
    for row, geom in _records(fac):
        xy = anchor(geom, vp)
        if xy is None:
            continue
        sample = _true(row.get("sample"))
        over_cap = _true(row.get("over_capacity"))
        n_sample += sample
        n_over += over_cap
        text = (
            f"{row.get('type_zh', zh)} {row.get('name', '') or ''} ({row.get('facility_id', '')})"
            f" · 来源 source {row.get('source', '')}{' · 样例 sample' if sample else ''}"
            f" · 容量 capacity {fmt(row.get('capacity'))} · 负荷 load {fmt(row.get('load'), '.2f')}"
            f"{' · 超容量 over capacity' if over_cap else ''}"
        )
        if over_cap:
            shapes.append(
                marker(*xy, 10, class_="over-ring", fill="none", stroke=OVER, stroke_width=3)
            )
        look = (
            {"fill": "#ffffff", "stroke": FACILITY, "stroke_width": 2, "stroke_dasharray": "2 1"}
            if sample
            else {"fill": FACILITY, "stroke": "#ffffff", "stroke_width": 1}
        )
        cls = "facility sample" if sample else "facility"
        shapes.append(marker(*xy, 5, "square", text, class_=cls, **look))
    uncovered = _num(beyond, "households")
    straight_hh = _num(beyond[_flag(beyond, "straight")], "households")
    pct = f" ({100 * uncovered / total_hh:.1f}%)" if total_hh else ""
    label = html.escape(f"{zh} {info.get('en', key)}")
    row = (
        f"<td>{label}</td><td>{fmt(info.get('reach_m'))} m</td>"
        f'<td class="uncovered">{uncovered:g} / {total_hh:g}{pct}'
        f"{f', 直线 straight-line {straight_hh:g}' if straight_hh else ''}</td>"
        f"<td>{len(missing)}</td>"
        f"<td>{len(fac)}{f' (样例 sample {n_sample})' if n_sample else ''}</td>"
        f"<td>{n_over} 处 facilities, {_num(over, 'households'):g} 户 households</td>"
    )
    return shapes, row


def _exposed_shapes(sel: gpd.GeoDataFrame, vp: Viewport) -> list[str]:
    shapes = []
    for row, geom in _records(sel):
        xy = anchor(geom, vp)
        if xy is None:
            continue
        text = (
            f"楼栋 building · 重点人群 vulnerable {fmt(row.get('people'))} 人 people · "
            f"{fmt(row.get('households'))} 户 households · {row.get('reason', '') or ''}"
        )
        shapes.append(
            marker(
                *xy,
                _radius(row.get("people")),
                title=text,
                class_="exposed",
                fill=VULNERABLE,
                fill_opacity=0.7,
                stroke="#fff",
                stroke_width=0.8,
            )
        )
    return shapes


def _gap_legend() -> str:
    sizes = "".join(
        f'<svg width="28" height="28" aria-hidden="true"><circle cx="14" cy="14" '
        f'r="{_radius(n):.1f}" fill="{BEYOND}" fill-opacity="0.75"/></svg>{n} '
        for n in (10, 50, 150)
    )
    return (
        legend_block(
            "服务缺口 coverage gaps",
            [
                (
                    swatch_marker("circle", 5, fill=BEYOND, fill_opacity=0.75, stroke="#7f0000"),
                    "超出服务范围的楼栋 building beyond reach (步行网络 walking network)",
                ),
                (
                    swatch_marker(
                        "circle",
                        5,
                        fill="none",
                        stroke=BEYOND,
                        stroke_width=1.5,
                        stroke_dasharray="2 1.5",
                    ),
                    "直线距离 straight-line (no network)",
                ),
                (swatch_hatch(MISSING), "缺少必配设施的网格 grid missing a required facility"),
                (
                    swatch_marker("triangle", 6, fill=OVER, stroke="#fff"),
                    "所属避难场所超容量 building of an over-capacity shelter",
                ),
            ],
        )
        + f"<div>圆大小=户数 circle size = households: {sizes}</div>"
        + legend_block(
            "设施 facilities",
            [
                (swatch_marker("square", 5, fill=FACILITY, stroke="#fff"), "设施 facility"),
                (
                    swatch_marker(
                        "square",
                        5,
                        fill="#fff",
                        stroke=FACILITY,
                        stroke_width=2,
                        stroke_dasharray="2 1",
                    ),
                    "样例设施 sample facility",
                ),
                (
                    swatch_marker("circle", 6, fill="none", stroke=OVER, stroke_width=2.5),
                    "超容量 over capacity",
                ),
            ],
        )
        + legend_block(
            "重点人群 vulnerable people",
            [
                (
                    swatch_marker("circle", 5, fill=VULNERABLE, fill_opacity=0.7),
                    "重点人群暴露 exposed vulnerable people (圆大小=人数 size = people)",
                )
            ],
        )
        + legend_block(
            "底图 base",
            [
                (swatch_rect("#d0d0d0", "none"), "楼栋 building"),
                (swatch_rect("none", "#666"), "网格 grid"),
            ],
        )
    )


def write_gap_maps(
    path: str | Path,
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    types: Mapping[str, Mapping],
    title: str = "设施覆盖缺口 Facility coverage gaps",
) -> Path:
    """Write :func:`gap_maps_html` to ``path`` and return it."""
    return _write(path, gap_maps_html(grids, buildings, facilities, gaps, types, title))
