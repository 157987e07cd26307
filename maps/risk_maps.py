"""The four-colour grid risk map (网格风险四色图) as an offline web map (folium).

Grids are filled in the colour of their risk level, hot and cold spots (Getis-Ord Gi*) are
dashed outlines, risk zones are hatched in their level's colour and risk points are circles,
red drawn last. Each is a layer of the layer control, with a tooltip; the legend carries a
table of grids, households, points and zones per level. Frames are GeoDataFrames in any one
CRS, with the columns ``geo/risk.py`` writes. The heatmap is :mod:`wangge.maps.heatmap`, the
coverage gaps :mod:`wangge.maps.gap_map`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data.osm import ATTRIBUTION as OSM_CREDIT
from wangge.geo.rules import LEVEL_COLOURS, LEVEL_ZH, LEVELS
from wangge.maps.webmap import (
    features,
    finish,
    fmt,
    geojson,
    has_sample,
    hatch_pattern,
    legend_block,
    new_map,
    page,
    records,
    save,
    swatch_circle,
    swatch_hatch,
    swatch_rect,
    text,
    true,
)

LEVEL_EN = {
    "red": "major risk",
    "orange": "significant risk",
    "yellow": "general risk",
    "blue": "low risk",
}
#: Outline colours of Gi* hot and cold spots.
HOT, COLD = "#8b0000", "#08519c"
#: Tooltip rows of a risk point or zone: (property, label).
RISK_TIP = [
    ("what", "风险 risk"),
    ("category", "类别 category"),
    ("level", "等级 level"),
    ("score", "风险值 score"),
]


def colour(row: Mapping) -> str:
    """The row's ``colour``, else its level's colour, else grey."""
    c = row.get("colour")
    if isinstance(c, str) and c:
        return c
    return LEVEL_COLOURS.get(row.get("level"), "#bbbbbb")


def level_text(row: Mapping) -> str:
    """``重大风险 red (major risk)``: the level in Chinese and English."""
    lv = text(row.get("level"))
    zh = text(row.get("level_zh")) or LEVEL_ZH.get(lv, "")
    en = LEVEL_EN.get(lv)
    return " ".join(v for v in (zh, lv, f"({en})" if en else "") if v)


def risk_props(row: Mapping, what: str) -> dict:
    """Tooltip properties of a risk point or zone (:data:`RISK_TIP`)."""
    sample = " · 样例 sample" if true(row.get("sample")) else ""
    name = " ".join(v for v in (text(row.get("risk_id")), text(row.get("name"))) if v)
    method = text(row.get("method"))
    return {
        "what": f"{what} {name}{sample}",
        "category": text(row.get("category_zh")) or text(row.get("category")),
        "level": level_text(row),
        "score": f"{fmt(row.get('score'))}{f' ({method})' if method else ''}",
    }


def risk_points(points: gpd.GeoDataFrame | None, radius: float, weight: float, name: str):
    """The risk points as circles in their level's colour, lower levels drawn first."""
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    if points is not None and "level" in points:
        order = np.argsort([-rank.get(lv, 9) for lv in points["level"]], kind="stable")
        points = points.iloc[order]
    rows = records(points)
    props = [risk_props(r, "风险点 risk point") for r in rows]
    styles = [
        {"color": "#222", "weight": weight, "fillColor": colour(r), "fillOpacity": 1} for r in rows
    ]
    layer = features(points, props)
    return geojson(layer, name, styles, RISK_TIP, radius=radius, role="points")


def _hatch(level) -> str | None:
    """The fill of a zone of ``level``: the hatch pattern of its colour (see ``defs``)."""
    return f"url(#hatch-{level})" if level in LEVEL_COLOURS else None


def level_legend(opacity: float) -> list[tuple[str, str]]:
    """Legend entries of the four levels (Chinese and English)."""
    return [
        (swatch_rect(LEVEL_COLOURS[lv], opacity=opacity), f"{LEVEL_ZH[lv]} {LEVEL_EN[lv]}")
        for lv in LEVELS
    ]


def risk_map(
    grid_risk: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    title: str = "网格风险四色图 Grid risk map",
    credit: str = OSM_CREDIT,
    basemap: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> folium.Map:
    """The four-colour risk map of grids with hot spots, risk points and zones.

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
    credit
        The credit of the plan's sources (``Plan.attribution``).
    basemap
        The plan's basemap layers (:func:`wangge.maps.basemap_page.basemap_of`), drawn
        beneath the map; none by default.

    Returns
    -------
    folium.Map
        The finished map (:func:`wangge.maps.webmap.finish`).
    """
    m = new_map(grid_risk, points, zones)
    rows = records(grid_risk)
    props, styles = [], []
    for r in rows:
        spot = text(r.get("hotspot"))
        counts = "/".join(fmt(r.get(f"n_{lv}")) for lv in LEVELS)
        props.append(
            {
                "code": " ".join(v for v in (text(r.get("code")), text(r.get("name"))) if v),
                "hh": f"{fmt(r.get('households'))} 户",
                "points": counts,
                "score": f"{fmt(r.get('score'), '.1f')} "
                f"({fmt(r.get('score_per_100hh'), '.1f')} /100户 per 100 hh)",
                "level": level_text(r),
                "exposed": f"{fmt(r.get('exposed_households'))} 户 hh, 重点人群 vulnerable "
                f"{fmt(r.get('exposed_vulnerable'))}",
                "gi": f"z {fmt(r.get('gi_z'), '.2f')} p {fmt(r.get('gi_p'), '.3f')}"
                + {"hot": " · 热点 hot spot", "cold": " · 冷点 cold spot"}.get(spot, ""),
            }
        )
        styles.append({"color": "#444", "weight": 1, "fillColor": colour(r), "fillOpacity": 0.55})

    tip = [
        ("code", "网格 grid"),
        ("hh", "户数 households"),
        ("points", "风险点 重大/较大/一般/低 points red/orange/yellow/blue"),
        ("score", "风险分 score"),
        ("level", "等级 level"),
        ("exposed", "风险区暴露 exposed"),
        ("gi", "Gi* 冷热点 hot/cold spot"),
    ]
    geojson(features(grid_risk, props), "网格风险 grid risk", styles, tip).add_to(m)

    zone_rows = records(zones)
    zone_props = [risk_props(r, f"风险区 zone ({text(r.get('kind'))})") for r in zone_rows]
    zone_styles = [
        {
            "color": colour(r),
            "weight": 1.5,
            "fillColor": _hatch(r.get("level")) or colour(r),
            "fillOpacity": 0.8,
        }
        for r in zone_rows
    ]
    zone_layer = features(zones, zone_props)
    geojson(zone_layer, "风险区 risk zones", zone_styles, RISK_TIP, role="upper").add_to(m)

    spots = grid_risk.iloc[:0]
    if "hotspot" in grid_risk:
        spots = grid_risk[grid_risk["hotspot"].isin(["hot", "cold"])]
    spot_styles = [
        {"color": HOT, "weight": 4, "dashArray": "10 5", "fill": False}
        if r.get("hotspot") == "hot"
        else {"color": COLD, "weight": 3, "dashArray": "10 5", "fill": False}
        for r in records(spots)
    ]
    geojson(
        features(spots),
        "冷热点 hot and cold spots (Gi*)",
        spot_styles,
        interactive=False,
        role="lines",
    ).add_to(m)
    risk_points(points, 5, 1.2, "风险点 risk points").add_to(m)

    legend = (
        legend_block("风险等级 risk level (网格 grid)", level_legend(0.55))
        + legend_block(
            "冷热点 hot and cold spots (Getis-Ord Gi*)",
            [
                (swatch_rect("none", HOT, "5 2", width=2.5), "热点 hot spot (Gi*)"),
                (swatch_rect("none", COLD, "5 2", width=2), "冷点 cold spot (Gi*)"),
            ],
        )
        + legend_block(
            "风险点与风险区 risk points and zones",
            [
                (
                    swatch_circle(LEVEL_COLOURS["red"], "#222"),
                    "风险点 risk point (颜色=等级 colour = level)",
                ),
                (
                    swatch_hatch(LEVEL_COLOURS["orange"]),
                    "风险区 risk zone (阴影=等级 hatch = level)",
                ),
            ],
        )
        + _risk_summary(grid_risk, points, zones)
    )
    defs = "".join(hatch_pattern(f"hatch-{lv}", LEVEL_COLOURS[lv]) for lv in LEVELS)
    sample = has_sample(grid_risk, points, zones)
    return finish(m, title, legend, sample=sample, defs=defs, credit=credit, basemap=basemap)


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
        f"<h4>{html.escape('各级网格 grids per level')}</h4>"
        '<table class="summary" id="summary">'
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
    credit: str = OSM_CREDIT,
    basemap: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> Path:
    """Write the page of :func:`risk_map` to ``path`` and return it."""
    return save(path, risk_map(grid_risk, points, zones, title, credit, basemap))


def risk_map_html(
    grid_risk: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    title: str = "网格风险四色图 Grid risk map",
    credit: str = OSM_CREDIT,
) -> str:
    """The page of :func:`risk_map`."""
    return page(risk_map(grid_risk, points, zones, title, credit))
