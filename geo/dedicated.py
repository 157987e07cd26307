"""Find the large non-residential sites that become dedicated grids (专属网格).

Xi'an DB6101/T 3185-2024 divides grids into basic grids (基础网格) and dedicated grids
(专属网格); Zhoushan's 2023 grid regulation gives dedicated grids to government centres,
industrial parks, enterprises and institutions, office buildings and markets. Here a site
is a land-use or amenity polygon whose tag is listed in ``[dedicated] tags`` of limits.toml
at least ``min_area_m2`` large and holding at most ``max_households`` (more than that is
housing, whatever the tag says), or any polygon of the user's site file. Where sites nest,
the smallest holds. The units whose centre lies in a site form its dedicated grid inside
their community: outside the household bands, flagged ``dedicated`` and coded from 901.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

COLUMNS = ["site_id", "kind", "name", "area_m2", "households"]


def _matches(kind: str, tags: list[str]) -> bool:
    key = kind.split("=", 1)[0]
    return kind in tags or key in tags


def find_sites(
    landuse: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame,
    rules: dict[str, Any],
    given: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """The dedicated sites of a study area (metric CRS).

    Parameters
    ----------
    landuse
        Context polygons with ``kind`` (``key=value``) and ``name``, from the OSM file.
    buildings
        With ``households``, to leave out sites that are really housing.
    rules
        The ``[dedicated]`` table: ``enabled``, ``min_area_m2``, ``max_households``,
        ``tags``.
    given
        A user's site polygons (``kind`` and ``name`` if they have them): each is a site
        whatever its tag, size and households (the user says so).

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`COLUMNS` and the polygon, smallest first, ``site_id`` ``S001``…
    """
    empty = gpd.GeoDataFrame(pd.DataFrame(columns=COLUMNS), geometry=[], crs=buildings.crs)
    if not rules.get("enabled", True):
        return empty
    frames = []
    if landuse is not None and len(landuse):
        tags = list(rules.get("tags", []))
        hit = landuse["kind"].astype(str).map(lambda k: _matches(k, tags))
        frames.append(landuse.loc[hit.to_numpy(), ["kind", "name", "geometry"]])
    if given is not None and len(given):
        g = given.copy()
        g["kind"] = g.get("kind", "site")
        g["name"] = g.get("name", None)
        g["declared"] = True
        frames.append(g[["kind", "name", "declared", "geometry"]])
    if not frames:
        return empty
    sites = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=buildings.crs)
    if "declared" not in sites:
        sites["declared"] = False
    sites["declared"] = sites["declared"].astype(object).fillna(False).astype(bool)
    sites = sites[sites.geom_type.isin(["Polygon", "MultiPolygon"])]
    sites["area_m2"] = sites.area
    pts = buildings.representative_point().to_numpy()
    hh = buildings["households"].to_numpy(dtype=float)
    si, bi = shapely.STRtree(pts).query(sites.geometry.to_numpy(), predicate="contains")
    sites["households"] = np.bincount(si, hh[bi], len(sites))
    # a site the user declares is one whatever its size; one found by its tag must be
    # large, and not hold more homes than a grid (then it is housing)
    found = (sites["area_m2"] >= float(rules.get("min_area_m2", 30000))) & (
        sites["households"] <= float(rules.get("max_households", 500))
    )
    sites = sites[sites["declared"] | found]
    if sites.empty:
        return empty
    sites = sites.sort_values("area_m2").reset_index(drop=True)
    sites.insert(0, "site_id", [f"S{i + 1:03d}" for i in range(len(sites))])
    return sites[[*COLUMNS, "geometry"]]


def site_of(points: np.ndarray, sites: gpd.GeoDataFrame) -> np.ndarray:
    """Row of the smallest site holding each point (sites sorted smallest first); -1 for none."""
    out = np.full(len(points), -1)
    if len(sites) == 0:
        return out
    pi, si = shapely.STRtree(sites.geometry.to_numpy()).query(points, predicate="within")
    order = np.lexsort((si, pi))  # per point, the smallest site (lowest row) first
    pi, si = pi[order], si[order]
    first = np.unique(pi, return_index=True)[1]
    out[pi[first]] = si[first]
    return out
