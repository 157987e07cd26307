"""The risk heatmap (风险热力图) as an offline web map: a kernel density of weighted risk points.

Each point spreads its level's weight (red 9, orange 4, yellow 2, blue 1 by default) with a
truncated Gaussian (:func:`kernel_density`) over a raster of square cells
(:func:`density_raster`) laid out in Web Mercator, the projection Leaflet draws in, so that
the raster drops onto the map as one image (a PNG ``data:`` URI in a folium ImageOverlay)
with no resampling. Cell and bandwidth are given in metres and scaled by the Mercator
factor at the raster's middle latitude. Grids, zones and points lie on top, each a layer
with tooltips.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
from pyproj import Transformer
from scipy.spatial import cKDTree

from wangge.data.osm import ATTRIBUTION as OSM_CREDIT
from wangge.geo.rules import LEVEL_COLOURS, LEVEL_ZH, LEVELS
from wangge.maps.risk_maps import RISK_TIP, colour, risk_points, risk_props
from wangge.maps.webmap import (
    features,
    finish,
    fmt,
    geojson,
    has_sample,
    legend_block,
    new_map,
    outlines,
    page,
    pane,
    records,
    save,
    swatch_circle,
    swatch_rect,
)

#: Colour ramp of the heatmap, low → high (ColorBrewer YlOrRd).
RAMP = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
#: Largest heatmap raster; a finer ``cell_m`` is coarsened to stay under it.
MAX_CELLS = 250_000
DEFAULT_WEIGHTS = {"red": 9, "orange": 4, "yellow": 2, "blue": 1}
_TO_LONLAT = Transformer.from_crs(3857, 4326, always_xy=True)


def density_raster(bounds, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a raster of ``cell_m`` cells that covers ``bounds``.

    Parameters
    ----------
    bounds
        ``(xmin, ymin, xmax, ymax)`` in metres (or any planar unit, with ``cell_m`` in it).
    cell_m
        Side of a cell.

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


def ramp_rgba(v: np.ndarray) -> np.ndarray:
    """RGBA of values in [0, 1] on :data:`RAMP`, fading to transparent at the low end."""
    anchors = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in RAMP], dtype=float)
    stops = np.linspace(0, 1, len(RAMP))
    v = np.clip(np.nan_to_num(v), 0, 1)
    rgb = np.stack([np.interp(v, stops, anchors[:, i]) for i in range(3)], axis=-1)
    alpha = 0.85 * np.clip((v - 0.02) / 0.25, 0, 1)
    return np.concatenate([rgb, alpha[..., None] * 255], axis=-1).round().astype(np.uint8)


def mercator_density(
    points: gpd.GeoDataFrame | None,
    extent: gpd.GeoDataFrame,
    weights: Mapping[str, float],
    cell_m: float,
    bandwidth_m: float,
) -> tuple[np.ndarray, list[list[float]], float]:
    """The weighted density of ``points`` over the extent of ``extent``, in Web Mercator.

    Parameters
    ----------
    points
        Risk points with ``level``; other geometry types are ignored.
    extent
        The frame whose bounds the raster covers (the grids).
    weights
        Weight of one point of each level.
    cell_m, bandwidth_m
        Cell side and kernel bandwidth in metres; the cell is coarsened to keep the raster
        under :data:`MAX_CELLS`.

    Returns
    -------
    tuple
        The density in weight per square metre (rows north → south), the image's
        ``[[south, west], [north, east]]`` in degrees, and the cell used in metres.
    """
    merc = extent.to_crs(3857)
    x0, y0, x1, y1 = merc.total_bounds
    lat = math.degrees(math.atan(math.sinh((y0 + y1) / 2 / 6378137.0)))
    scale = 1 / math.cos(math.radians(lat))  # Mercator units per metre on the ground
    area = max(x1 - x0, 1.0) * max(y1 - y0, 1.0) / scale**2
    cell_m = max(float(cell_m), math.sqrt(area / MAX_CELLS))
    xs, ys = density_raster((x0, y0, x1, y1), cell_m * scale)
    xy, w = np.empty((0, 2)), np.empty(0)
    if points is not None and len(points):
        pts = points[points.geometry.notna() & (points.geom_type == "Point")].to_crs(3857)
        xy = np.column_stack([pts.geometry.x, pts.geometry.y])
        lv = pts["level"] if "level" in pts else [None] * len(pts)
        w = np.array([float(weights.get(v, 0.0)) for v in lv])
    dens = kernel_density(xy, w, (xs, ys), bandwidth_m * scale) * scale**2
    half = cell_m * scale / 2
    (west, east), (north, south) = _TO_LONLAT.transform(
        [xs[0] - half, xs[-1] + half], [ys[0] + half, ys[-1] - half]
    )
    return dens, [[south, west], [north, east]], cell_m


def heatmap(
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    weights: Mapping[str, float] | None = None,
    cell_m: float = 25.0,
    bandwidth_m: float = 200.0,
    title: str = "风险热力图 Risk heatmap",
    credit: str = OSM_CREDIT,
    basemap: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> folium.Map:
    """A kernel-density heatmap of risk points, with grids, zones and points on top.

    Parameters
    ----------
    points
        Scored risk points (``level``, ``colour``, point geometry).
    zones
        Scored risk zones, drawn as dashed outlines.
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
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    m = new_map(grids)
    dens, box, cell_m = mercator_density(points, grids, weights, cell_m, bandwidth_m)
    peak = float(dens.max()) if dens.size else 0.0
    if peak > 0:
        folium.raster_layers.ImageOverlay(
            ramp_rgba(dens / peak),
            bounds=box,
            name="风险核密度 risk density",
            pixelated=False,
            interactive=False,
            pane=pane("image"),
        ).add_to(m)
    outlines(grids, "网格 grids", "#333").add_to(m)
    zone_rows = records(zones)
    zone_styles = [
        {"color": colour(r), "weight": 1.5, "dashArray": "4 3", "fill": False} for r in zone_rows
    ]
    zone_props = [risk_props(r, f"风险区 zone ({r.get('kind') or ''})") for r in zone_rows]
    zone_layer = features(zones, zone_props)
    geojson(zone_layer, "风险区 risk zones", zone_styles, RISK_TIP, role="upper").add_to(m)
    risk_points(points, 3, 0.6, "风险点 risk points").add_to(m)

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
                    swatch_circle(LEVEL_COLOURS["red"], "#222", r=3),
                    "风险点 risk point (颜色=等级 colour = level)",
                ),
                (swatch_rect("none", LEVEL_COLOURS["orange"], "4 3"), "风险区 risk zone"),
                (swatch_rect("none", "#333"), "网格 grid"),
            ],
        )
    )
    if points is None or not len(points):
        legend += "<div>无风险点 no risk points</div>"
    sample = has_sample(points, zones, grids)
    return finish(m, title, legend, sample=sample, credit=credit, basemap=basemap)


def write_heatmap(path: str | Path, *args, **kwargs) -> Path:
    """Write the page of :func:`heatmap` (same arguments after ``path``) and return it."""
    return save(path, heatmap(*args, **kwargs))


def heatmap_html(*args, **kwargs) -> str:
    """The page of :func:`heatmap` (same arguments)."""
    return page(heatmap(*args, **kwargs))
