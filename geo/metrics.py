"""Per-unit metrics: households against target, area, compactness, boundary along roads."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def road_halo(lines: gpd.GeoSeries, tol_m: float = 2.0) -> shapely.Geometry:
    """The area within ``tol_m`` of roads and barriers: boundaries inside it follow them."""
    return shapely.buffer(shapely.union_all(lines.to_numpy()), tol_m, quad_segs=2)


def unit_metrics(
    units: gpd.GeoDataFrame,
    target: float | None,
    halo: shapely.Geometry,
    outline: shapely.Geometry,
    tol_m: float = 2.0,
) -> pd.DataFrame:
    """Metrics for each polygon of one level.

    Parameters
    ----------
    units
        Polygons (metric CRS) with ``households``.
    target
        Households each unit aims at (None for levels without one).
    halo
        :func:`road_halo` of the roads and barriers that boundaries should follow.
    outline
        The study area; its edge is not counted as an inner boundary.
    tol_m
        Width of the strip along the study-area edge that is not an inner boundary.

    Returns
    -------
    pandas.DataFrame
        ``deviation_pct`` (from target, per record for vertical micro-grids),
        ``polsby_popper`` (4πA/P², 1 for a circle) and
        ``road_share`` (share of the inner boundary within ``tol_m`` of a road or barrier).
    """
    geoms = units.geometry.to_numpy()
    area, perim = shapely.area(geoms), shapely.length(geoms)
    pp = 4 * math.pi * area / np.maximum(perim, 1e-9) ** 2
    inner = shapely.difference(shapely.boundary(geoms), shapely.buffer(outline.boundary, tol_m))
    along = shapely.length(shapely.intersection(inner, halo))
    inner_len = shapely.length(inner)
    share = np.where(inner_len > 0, along / np.maximum(inner_len, 1e-9), np.nan)
    hh = units["households"].to_numpy(dtype=float)
    if "record_codes" in units:  # a vertical micro-grid holds several records
        hh = hh / (units["record_codes"].str.count(",").to_numpy() + 1)
    dev = (hh - target) / target * 100 if target else np.nan
    return pd.DataFrame(
        {"deviation_pct": dev, "polsby_popper": pp, "road_share": share}, index=units.index
    )


def summarise(units: gpd.GeoDataFrame) -> dict[str, float]:
    """Mean and worst of the metrics of one level."""
    return {
        "units": len(units),
        "mean |deviation| %": float(np.nanmean(np.abs(units["deviation_pct"]))),
        "mean Polsby-Popper": float(units["polsby_popper"].mean()),
        "min Polsby-Popper": float(units["polsby_popper"].min()),
        "mean road share": float(np.nanmean(units["road_share"])),
    }
