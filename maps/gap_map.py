"""The coverage-gap map (设施覆盖缺口) as an offline web map: one layer per facility type.

Buildings and grid outlines are the base. Each facility type is one choice of the layer
control's radio list (one type at a time, as planners read them): the buildings beyond its
reach (circles sized by households; dashed where the distance is a straight line because
the network did not reach), the grids that lack it where every grid must have one (hatched),
the buildings of its over-capacity shelters, and the facilities themselves. Vulnerable
people in risk zones are an overlay of their own. Every mark has a tooltip; the legend
carries a table of uncovered households per type. Frames are GeoDataFrames in any one CRS
with the columns ``geo/coverage.py`` writes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd

from wangge.data.osm import ATTRIBUTION as OSM_CREDIT
from wangge.maps.webmap import (
    features,
    finish,
    fmt,
    geojson,
    has_sample,
    hatch_pattern,
    legend_block,
    new_map,
    outlines,
    page,
    records,
    save,
    swatch_circle,
    swatch_hatch,
    swatch_rect,
    text,
    true,
)

#: Colours of the gap map.
BEYOND, MISSING, OVER, FACILITY, VULNERABLE = "#d7301f", "#6a3d9a", "#c51b7d", "#1a9850", "#3f007d"
BUILDING = "#d0d0d0"
EXPOSED = "exposed_vulnerable"
#: Tooltip rows of the marks of a facility type's layer (the reason names the facility).
GAP_TIP = [
    ("what", "缺口 gap"),
    ("distance", "距离 distance"),
    ("hh", "户数 households"),
    ("reason", "原因 reason"),
]
FACILITY_TIP = [
    ("name", "设施 facility"),
    ("source", "来源 source"),
    ("capacity", "容量 capacity"),
    ("load", "负荷 load"),
]


def radius(n) -> float:
    """Radius in pixels of a circle for ``n`` households or people."""
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


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series("", index=frame.index)
    return frame[column].fillna("")


def gap_map(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    types: Mapping[str, Mapping],
    title: str = "设施覆盖缺口 Facility coverage gaps",
    credit: str = OSM_CREDIT,
    basemap: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> folium.Map:
    """The coverage gaps of every facility type in one map, one type at a time.

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
        Facility key → ``{"zh", "en", "reach_m"}``, in the order of the layer control. A
        type that only the gaps name is added after them.
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
        The finished map (:func:`wangge.maps.webmap.finish`). Each type is one base layer
        (a radio button, the first shown), the exposed vulnerable people an overlay (off at
        first).
    """
    types = {k: dict(v) for k, v in types.items()}
    gaps = gaps if gaps is not None else gpd.GeoDataFrame({"kind": []}, geometry=[])
    kind, gtype = _column(gaps, "kind"), _column(gaps, "type")
    for key in pd.unique(gtype[(kind != EXPOSED) & (gtype != "")]):
        if key not in types:
            first = gaps[gtype == key].iloc[0]
            types[key] = {
                "zh": first.get("type_zh", key),
                "en": key,
                "reach_m": first.get("reach_m"),
            }
    fac = facilities if facilities is not None else gpd.GeoDataFrame({"type": []}, geometry=[])
    ftype = _column(fac, "type")
    total_hh = _num(buildings, "households") or _num(grids, "households")

    m = new_map(grids, buildings)
    geojson(
        features(buildings),
        "楼栋 buildings",
        {"color": BUILDING, "weight": 0, "fillColor": BUILDING, "fillOpacity": 1},
        interactive=False,
        canvas=True,
    ).add_to(m)
    outlines(grids, "网格 grids", "#666").add_to(m)
    rows = []
    for i, (key, info) in enumerate(types.items()):
        label = f"{info.get('zh', key)} {info.get('en', key)}"
        reach = f" ≤ {fmt(info.get('reach_m'), ',.0f')} m" if info.get("reach_m") else ""
        group = folium.FeatureGroup(name=label + reach, overlay=False, show=i == 0)
        row = _type_layer(group, key, info, gaps[gtype == key], fac[ftype == key], total_hh)
        group.add_to(m)
        rows.append(row)
    sel = gaps[kind == EXPOSED]
    _exposed_layer(sel).add_to(m)
    rows.append(
        "<tr><td>重点人群暴露 exposed vulnerable people</td><td>–</td>"
        f"<td>{len(sel)} 栋 buildings, {_num(sel, 'people'):g} 人 people</td>"
        "<td>–</td><td>–</td><td>–</td></tr>"
    )
    table = (
        "<details><summary>各类设施统计 per facility type</summary>"
        '<table class="summary" id="summary">'
        "<tr><th>设施 facility type</th><th>服务半径 reach</th>"
        "<th>未覆盖户数 uncovered households</th><th>缺少设施的网格 grids missing</th>"
        f"<th>设施 facilities</th><th>超容量 over capacity</th></tr>{''.join(rows)}</table>"
        "</details>"
    )
    defs = hatch_pattern("hatch-missing", MISSING, spacing=8, width=2.5)
    sample = has_sample(grids, buildings, facilities, gaps)
    return finish(
        m, title, _legend() + table, sample=sample, defs=defs, credit=credit, basemap=basemap
    )


def _type_layer(group, key, info, sel, fac, total_hh) -> str:
    """Add one facility type's marks to ``group``; return its row of the summary table."""
    zh = text(info.get("zh")) or key
    kind = _column(sel, "kind")
    missing, beyond, over = (
        sel[kind == k] for k in ("missing_required", "beyond_reach", "over_capacity")
    )
    facility = f"{zh} {text(info.get('en')) or key}"
    props = [
        {
            "what": f"网格 grid {text(r.get('grid_code'))} 缺少必配设施 lacks a required {zh}",
            "hh": f"{fmt(r.get('households'))} 户 households, {fmt(r.get('people'))} 人 people",
            "reason": text(r.get("reason")),
        }
        for r in records(missing)
    ]
    style = {"color": MISSING, "weight": 2, "fillColor": "url(#hatch-missing)", "fillOpacity": 1}
    tip = [t for t in GAP_TIP if t[0] != "distance"]
    geojson(features(missing, props), "missing", style, tip, role="upper").add_to(group)

    rows = records(beyond)
    props, styles = [], []
    for r in rows:
        straight = true(r.get("straight"))
        how = " (直线距离 straight line, no network)" if straight else ""
        props.append(
            {
                "what": f"楼栋 building {text(r.get('ref'))} 超出范围 beyond reach",
                "distance": f"{fmt(r.get('distance_m'), ',.0f')} m > "
                f"{fmt(r.get('reach_m'), ',.0f')} m{how}",
                "hh": f"{fmt(r.get('households'))} 户 households, {fmt(r.get('people'))} 人 people",
                "reason": text(r.get("reason")),
            }
        )
        look = (
            {"fill": False, "color": BEYOND, "weight": 1.5, "dashArray": "2 1.5"}
            if straight
            else {"fillColor": BEYOND, "fillOpacity": 0.75, "color": "#7f0000", "weight": 0.6}
        )
        styles.append({**look, "radius": radius(r.get("households"))})
    layer = features(beyond, props)
    geojson(layer, "beyond", styles, GAP_TIP, radius=5, role="points").add_to(group)

    props = [
        {
            "what": f"楼栋 building {text(r.get('ref'))} 所属{zh}超容量 "
            f"assigned {zh} is over capacity",
            "hh": f"{fmt(r.get('households'))} 户 households, {fmt(r.get('people'))} 人 people",
            "reason": text(r.get("reason")),
        }
        for r in records(over)
    ]
    style = {"color": "#ffffff", "weight": 1, "fillColor": OVER, "fillOpacity": 1}
    geojson(features(over, props), "over", style, tip, radius=4, role="points").add_to(group)

    frows = records(fac)
    over_cap = fac[_flag(fac, "over_capacity")]
    ring = {"color": OVER, "weight": 3, "fill": False}
    rings = features(over_cap)
    geojson(rings, "rings", ring, radius=10, interactive=False, role="points").add_to(group)
    props, styles = [], []
    for r in frows:
        sample = true(r.get("sample"))
        props.append(
            {
                "name": f"{text(r.get('type_zh')) or zh} {text(r.get('name'))} "
                f"({text(r.get('facility_id'))})",
                "source": text(r.get("source")) + (" · 样例 sample" if sample else ""),
                "capacity": fmt(r.get("capacity")),
                "load": fmt(r.get("load"), ".2f")
                + (" · 超容量 over capacity" if true(r.get("over_capacity")) else ""),
            }
        )
        styles.append(
            {"fillColor": "#ffffff", "fillOpacity": 1, "color": FACILITY, "weight": 2}
            | {"dashArray": "2 1"}
            if sample
            else {"fillColor": FACILITY, "fillOpacity": 1, "color": "#ffffff", "weight": 1.5}
        )
    layer = features(fac, props)
    geojson(layer, "facilities", styles, FACILITY_TIP, radius=6, role="points").add_to(group)

    n_sample = int(_flag(fac, "sample").sum())
    uncovered = _num(beyond, "households")
    straight_hh = _num(beyond[_flag(beyond, "straight")], "households")
    pct = f" ({100 * uncovered / total_hh:.1f}%)" if total_hh else ""
    return (
        f"<tr><td>{html.escape(facility)}</td><td>{fmt(info.get('reach_m'))} m</td>"
        f'<td class="uncovered">{uncovered:g} / {total_hh:g}{pct}'
        f"{f', 直线 straight-line {straight_hh:g}' if straight_hh else ''}</td>"
        f"<td>{len(missing)}</td>"
        f"<td>{len(fac)}{f' (样例 sample {n_sample})' if n_sample else ''}</td>"
        f"<td>{len(over_cap)} 处 facilities, {_num(over, 'households'):g} 户 households</td></tr>"
    )


def _exposed_layer(sel: gpd.GeoDataFrame) -> folium.GeoJson:
    rows = records(sel)
    props = [
        {
            "what": f"楼栋 building {text(r.get('ref'))}".strip(),
            "people": f"{fmt(r.get('people'))} 人 people",
            "hh": f"{fmt(r.get('households'))} 户 households",
            "reason": text(r.get("reason")),
        }
        for r in rows
    ]
    styles = [
        {
            "fillColor": VULNERABLE,
            "fillOpacity": 0.7,
            "color": "#ffffff",
            "weight": 0.8,
            "radius": radius(r.get("people")),
        }
        for r in rows
    ]
    tip = [
        ("what", "重点人群暴露 exposed"),
        ("people", "重点人群 vulnerable"),
        ("hh", "户数 households"),
        ("reason", "原因 reason"),
    ]
    name = "重点人群暴露 exposed vulnerable people"
    return geojson(features(sel, props), name, styles, tip, radius=5, show=False, role="points")


def _legend() -> str:
    sizes = "".join(
        f"{swatch_circle(BEYOND, BEYOND, r=radius(n), opacity=0.75)}{n} " for n in (10, 50, 150)
    )
    return (
        legend_block(
            "服务缺口 coverage gaps (图层选择设施类型 pick the type in the layer list)",
            [
                (
                    swatch_circle(BEYOND, "#7f0000", opacity=0.75),
                    "超出服务范围的楼栋 building beyond reach (步行网络 walking network)",
                ),
                (
                    swatch_circle("none", BEYOND, width=1.5, dash="2 1.5"),
                    "直线距离 straight-line (no network)",
                ),
                (swatch_hatch(MISSING), "缺少必配设施的网格 grid missing a required facility"),
                (
                    swatch_circle(OVER, "#ffffff", r=4),
                    "所属避难场所超容量 building of an over-capacity shelter",
                ),
            ],
        )
        + f"<div>圆大小=户数 circle size = households: {sizes}</div>"
        + legend_block(
            "设施 facilities",
            [
                (swatch_circle(FACILITY, "#ffffff", r=6, width=1.5), "设施 facility"),
                (swatch_circle("#ffffff", FACILITY, r=6, width=2, dash="2 1"), "样例设施 sample"),
                (swatch_circle("none", OVER, r=9, width=2.5), "超容量 over capacity"),
            ],
        )
        + legend_block(
            "重点人群 vulnerable people",
            [
                (
                    swatch_circle(VULNERABLE, "#ffffff", opacity=0.7),
                    "重点人群暴露 exposed vulnerable people (圆大小=人数 size = people)",
                )
            ],
        )
        + legend_block(
            "底图 base",
            [
                (swatch_rect(BUILDING, "none"), "楼栋 building"),
                (swatch_rect("none", "#666"), "网格 grid"),
            ],
        )
    )


def write_gap_maps(path: str | Path, *args, **kwargs) -> Path:
    """Write the page of :func:`gap_map` (same arguments after ``path``) and return it."""
    return save(path, gap_map(*args, **kwargs))


def gap_maps_html(*args, **kwargs) -> str:
    """The page of :func:`gap_map` (same arguments)."""
    return page(gap_map(*args, **kwargs))
