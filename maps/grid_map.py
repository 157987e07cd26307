"""The plan map: grids coloured by households against the band, with micro-grids, communities
and streets, as an offline web map (folium; see :mod:`wangge.maps.webmap`).

Grids lie at the bottom, filled by their household class; micro-grids above them, outlined,
with a transparent fill so that hovering anywhere shows the micro-grid and the grid it lies in;
community and street boundaries on top, drawn only. Each level is a layer of the layer
control: switching micro-grids off shows the grids' own tooltips.
"""

from __future__ import annotations

from pathlib import Path

import folium
import geopandas as gpd
import numpy as np

from wangge.data.osm import attribution_of
from wangge.maps.basemap_page import basemap_of
from wangge.maps.webmap import (
    features,
    finish,
    fmt,
    geojson,
    legend_block,
    new_map,
    page,
    records,
    save,
    swatch_rect,
    text,
)

__all__ = ["DEDICATED", "PALETTE", "grid_map", "grid_map_html", "household_classes"]
__all__ += ["write_grid_map"]

#: Sequential colours (light → dark) for households, one per class.
PALETTE = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")
#: Dedicated grids (专属网格) stand apart: outside the household bands by rule.
DEDICATED = "#9fb1e0"
#: What a unit's flag means, in Chinese and English.
FLAGS = {
    "dedicated": "专属网格 dedicated grid",
    "vertical": "竖向微网格 vertical (by unit or floor)",
    "oversize": "超限 over the limit",
    "infeasible": "无法满足限制 limits infeasible",
    "empty": "无户 no households",
}
COMMUNITY, STREET, MICRO = "#08306b", "#000000", "#777777"


def household_classes(households, lo: float, hi: float) -> tuple[np.ndarray, list[str]]:
    """The class (index into :data:`PALETTE`) of each household count, and the class labels.

    The edges are 0, ``lo``, the band's middle, ``hi`` and 1.5 × ``hi``.
    """
    edges = [0, lo, 0.5 * (lo + hi), hi, hi * 1.5]
    values = np.asarray(households, dtype=float)
    classes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(PALETTE) - 1)
    labels = [
        f"< {lo:g}",
        f"{lo:g}–{0.5 * (lo + hi):g}",
        f"{0.5 * (lo + hi):g}–{hi:g}",
        f"{hi:g}–{1.5 * hi:g}",
        f"> {1.5 * hi:g}",
    ]
    return classes, labels


def _flag(v) -> str:
    v = text(v)
    return FLAGS.get(v, v)


def grid_map(layers: dict[str, gpd.GeoDataFrame], title: str, lo: float, hi: float) -> folium.Map:
    """The plan map: grids (fill by households against the band), micro-grids, communities
    and streets.

    Parameters
    ----------
    layers
        ``grids`` and ``microgrids``, optionally ``communities`` and ``streets``, in any
        one CRS (``code``, ``name``, ``households``, ``flag``, ``note``).
    title
        Heading of the page.
    lo, hi
        The grid band, marked in the legend.

    Returns
    -------
    folium.Map
        The finished map (:func:`wangge.maps.webmap.finish`).
    """
    grids = layers["grids"]
    micro = layers.get("microgrids")
    m = new_map(grids)
    basemap = basemap_of(layers)
    # over a basemap the fills are lighter, so road and place names read through them
    opacity = 0.5 if basemap else 0.75
    classes, labels = household_classes(grids["households"].to_numpy(), lo, hi)
    rows = records(grids)
    by_code = {text(r.get("code")): r for r in rows}
    props, styles = [], []
    for r, cls in zip(rows, classes, strict=True):
        dedicated = text(r.get("flag")) == "dedicated"
        props.append(
            {
                "code": text(r.get("code")),
                "name": text(r.get("name")),
                "hh": f"{fmt(r.get('households'))} 户",
                "flag": " · ".join(v for v in (_flag(r.get("flag")), text(r.get("note"))) if v),
            }
        )
        fill = DEDICATED if dedicated else PALETTE[int(cls)]
        styles.append({"color": "#444", "weight": 1, "fillColor": fill, "fillOpacity": opacity})

    tip = [
        ("code", "网格 grid"),
        ("name", "名称 name"),
        ("hh", "户数 households"),
        ("flag", "类型 flag"),
    ]
    geojson(features(grids, props), "网格 grids", styles, tip).add_to(m)

    micro_props = []
    for r in records(micro):
        grid = by_code.get(text(r.get("parent_code")), {})
        micro_props.append(
            {
                "code": text(r.get("code")),
                "hh": f"{fmt(r.get('households'))} 户",
                "flag": _flag(r.get("flag")),
                "grid": " ".join(
                    v
                    for v in (
                        text(r.get("parent_code")),
                        text(grid.get("name")),
                        f"· {fmt(grid.get('households'))} 户" if grid else "",
                    )
                    if v
                ),
            }
        )
    micro_style = {
        "color": MICRO,
        "weight": 0.6,
        "fill": True,
        "fillColor": "#ffffff",
        "fillOpacity": 0,
    }
    micro_tip = [
        ("code", "微网格 micro-grid"),
        ("hh", "户数 households"),
        ("flag", "类型 flag"),
        ("grid", "所属网格 grid"),
    ]
    if micro is not None:
        layer = features(micro, micro_props)
        geojson(layer, "微网格 micro-grids", micro_style, micro_tip, role="upper").add_to(m)
    for key, name, colour, weight in (
        ("communities", "社区 communities", COMMUNITY, 2.5),
        ("streets", "街道 streets", STREET, 3.5),
    ):
        frame = layers.get(key)
        if frame is None or not len(frame):
            continue
        style = {"color": colour, "weight": weight, "fill": False, "opacity": 0.9}
        geojson(features(frame), name, style, interactive=False, role="lines").add_to(m)

    legend = legend_block(
        f"户数 households per grid (band 标准 {lo:g}–{hi:g})",
        [(swatch_rect(c, "#444"), t) for c, t in zip(PALETTE, labels, strict=True)]
        + [(swatch_rect(DEDICATED, "#444"), "专属网格 dedicated grid")],
    ) + legend_block(
        "边界 boundaries",
        [
            (swatch_rect("none", STREET, width=3), "街道 street"),
            (swatch_rect("none", COMMUNITY, width=2.5), "社区 community"),
            (swatch_rect("none", "#444"), "网格 grid"),
            (swatch_rect("none", MICRO, width=0.8), "微网格 micro-grid"),
        ],
    )
    return finish(m, title, legend, credit=attribution_of(layers), basemap=basemap)


def grid_map_html(layers: dict[str, gpd.GeoDataFrame], title: str, lo: float, hi: float) -> str:
    """The page of :func:`grid_map`."""
    return page(grid_map(layers, title, lo, hi))


def write_grid_map(
    path: str | Path, layers: dict[str, gpd.GeoDataFrame], title: str, lo: float, hi: float
) -> Path:
    """Write the page of :func:`grid_map` to ``path`` and return it."""
    return save(path, grid_map(layers, title, lo, hi))
