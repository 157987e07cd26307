"""Risk scoring (L×S matrix and LEC) and per-grid risk: levels, scores, exposure, hot spots."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.stats import norm

from wangge.geo.rules import LEVEL_COLOURS, LEVEL_ZH, LEVELS, Rules

#: Vulnerable-person columns (重点人群), aggregated counts per building.
VULNERABLE = ("elderly", "disabled", "alone")


def score(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Score each register row and give it its level.

    A row with ``S`` is scored by the matrix (R = L × S); a row with ``E`` and ``C`` by
    LEC (D = L × E × C). Columns ``L``, ``S``, ``E``, ``C`` are numbers or NaN; readers
    have already checked their ranges.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with ``method`` (``matrix`` or ``lec``), ``score``, ``level`` (red,
        orange, yellow, blue), ``level_zh`` and ``colour``.
    """
    out = frame.copy()
    L = pd.to_numeric(out.get("L"), errors="coerce").to_numpy(dtype=float)
    S = _column(out, "S")
    E, C = _column(out, "E"), _column(out, "C")
    is_matrix = ~np.isnan(S)
    r = L * S
    d = L * E * C
    m, lec = rules.matrix, rules.lec
    level_m = np.select(
        [r >= m["red"], r >= m["orange"], r >= m["yellow"]], ["red", "orange", "yellow"], "blue"
    )
    level_l = np.select(
        [d > lec["red"], d >= lec["orange"], d >= lec["yellow"]],
        ["red", "orange", "yellow"],
        "blue",
    )
    out["method"] = np.where(is_matrix, "matrix", "lec")
    out["score"] = np.where(is_matrix, r, d)
    out["level"] = np.where(is_matrix, level_m, level_l)
    out["level_zh"] = out["level"].map(LEVEL_ZH)
    out["colour"] = out["level"].map(LEVEL_COLOURS)
    return out


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)


def contiguity(geoms: np.ndarray) -> sparse.csr_matrix:
    """Binary queen contiguity of polygons, each polygon its own neighbour (as Gi* asks)."""
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    n = len(geoms)
    w = sparse.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    w.data[:] = 1.0
    return w


def getis_ord_star(x: np.ndarray, w: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Getis-Ord Gi* z-scores and two-sided normal p-values.

    Getis & Ord (1995), eq. for Gi*: with binary weights that include i itself,
    ``z_i = (Σ_j w_ij x_j − x̄ W_i) / (s √((n S1_i − W_i²) / (n − 1)))`` where ``W_i``
    is the row sum, ``S1_i`` the row sum of squares and ``s`` the population standard
    deviation of ``x``. A constant ``x`` has no hot spots: z is 0 and p is 1.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2:
        return np.zeros(n), np.ones(n)
    mean = x.mean()
    s = np.sqrt((x**2).mean() - mean**2)
    wi = np.asarray(w.sum(axis=1)).ravel()
    s1 = np.asarray(w.multiply(w).sum(axis=1)).ravel()
    denom = s * np.sqrt(np.maximum(n * s1 - wi**2, 0) / (n - 1))
    num = w @ x - mean * wi
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(denom > 0, num / np.where(denom > 0, denom, 1), 0.0)
    p = 2 * norm.sf(np.abs(z))
    return z, p


def grid_risk(
    grids: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    rules: Rules,
) -> gpd.GeoDataFrame:
    """Risk per grid: counts by level, weighted score, colour, exposure and hot spots.

    Parameters
    ----------
    grids
        The plan's grids (``code``, ``households``), in a metric CRS.
    points, zones
        Scored risk points and zones (see :func:`score`), same CRS.
    buildings
        The plan's buildings with ``households``, ``population``, ``grid_code`` and the
        vulnerable counts (:data:`VULNERABLE`, 0 where unknown).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per grid: ``code``, ``parent_code``, ``name``, ``households``, ``n_red``…
        ``n_blue`` (points and zones touching the grid), ``score`` (weighted sum),
        ``score_per_100hh``, ``level``/``level_zh``/``colour`` (the grid's four-colour
        level), ``exposed_households``, ``exposed_population``, ``exposed_<group>``,
        ``exposed_vulnerable``, ``gi_z``, ``gi_p`` and ``hotspot`` (hot, cold or '').
    """
    keep = [c for c in ("code", "parent_code", "name", "households") if c in grids]
    out = gpd.GeoDataFrame(grids[keep].copy(), geometry=grids.geometry.to_numpy(), crs=grids.crs)
    out = out.reset_index(drop=True)
    geoms = out.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    counts = np.zeros((len(out), len(LEVELS)))
    for frame, predicate in ((points, "within"), (zones, "intersects")):
        if len(frame) == 0:
            continue
        src = frame.geometry.to_numpy()
        if predicate == "within":
            src = shapely.point_on_surface(src)
        f, g = tree.query(src, predicate=predicate)
        level_idx = pd.Categorical(frame["level"].to_numpy()[f], categories=LEVELS).codes
        np.add.at(counts, (g, level_idx), 1)
    for k, level in enumerate(LEVELS):
        out[f"n_{level}"] = counts[:, k].astype(int)
    weights = np.array([rules.weights[lv] for lv in LEVELS])
    out["score"] = counts @ weights
    hh = pd.to_numeric(out.get("households"), errors="coerce").fillna(0).to_numpy()
    per100 = np.where(hh > 0, out["score"] / np.maximum(hh, 1) * 100, out["score"])
    out["score_per_100hh"] = per100.round(3)
    gl = rules.grid_levels
    by_score = np.select(
        [per100 >= gl["red"], per100 >= gl["orange"], per100 >= gl["yellow"]],
        [0, 1, 2],
        3,
    )
    # a grid is at least as high as its highest point or zone
    by_point = np.where(counts > 0, np.arange(len(LEVELS)), len(LEVELS)).min(axis=1)
    level = np.minimum(by_score, np.where(by_point < len(LEVELS), by_point, 3))
    out["level"] = np.asarray(LEVELS)[level]
    out["level_zh"] = out["level"].map(LEVEL_ZH)
    out["colour"] = out["level"].map(LEVEL_COLOURS)
    _exposure(out, zones, buildings)
    z, p = getis_ord_star(out["score"].to_numpy(dtype=float), contiguity(geoms))
    out["gi_z"] = z.round(4)
    out["gi_p"] = p.round(5)
    out["hotspot"] = np.where(
        z >= rules.hotspot_z, "hot", np.where(z <= -rules.hotspot_z, "cold", "")
    )
    return out


def exposed_buildings(buildings: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> np.ndarray:
    """Whether each building's footprint touches a risk zone."""
    hit = np.zeros(len(buildings), dtype=bool)
    if len(zones) and len(buildings):
        b, _ = shapely.STRtree(zones.geometry.to_numpy()).query(
            buildings.geometry.to_numpy(), predicate="intersects"
        )
        hit[b] = True
    return hit


def _exposure(out: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame):
    hit = exposed_buildings(buildings, zones)
    cols = ["households", "population", *VULNERABLE]
    exp = pd.DataFrame(
        {c: pd.to_numeric(buildings.get(c, 0), errors="coerce") for c in cols},
        index=buildings.index,
    ).fillna(0)
    exp = exp[hit].groupby(buildings["grid_code"].to_numpy()[hit]).sum()
    exp = exp.reindex(out["code"].to_numpy()).fillna(0)
    out["exposed_households"] = exp["households"].to_numpy().astype(int)
    out["exposed_population"] = exp["population"].to_numpy().round().astype(int)
    for c in VULNERABLE:
        out[f"exposed_{c}"] = exp[c].to_numpy().astype(int)
    out["exposed_vulnerable"] = exp[list(VULNERABLE)].sum(axis=1).to_numpy().astype(int)
