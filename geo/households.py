"""Estimate households per building from footprint, levels and residential use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.osm import parse_height, parse_levels
from wangge.geo._config import load_layered

#: The order in which the residential rule decides a building; each label names one step.
RULE_STEPS = (
    "tag: residential type",
    "tag: non-residential type",
    "tag: building:use / own use tag",
    "name: non-residential word",
    "name: residential word",
    "footprint: too small",
    "footprint: too large or deep",
    "context: inside non-residential land use",
    "context: inside residential land use",
    "shape: slab or tower footprint",
    "shape: not a dwelling footprint",
)


@dataclass(frozen=True)
class HouseholdParams:
    """Parameters of the household model, read from ``households.toml``."""

    raw: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def floor_area(self) -> float:
        return float(self.raw["dwelling"]["mean_floor_area_m2"])

    @property
    def persons(self) -> float:
        return float(self.raw["dwelling"]["persons_per_household"])


def load_params(path: str | Path | None = None) -> HouseholdParams:
    """Load the household parameters: the bundled defaults, or a user's TOML file.

    A user file need only hold the values it changes; the rest come from the defaults.
    """
    return HouseholdParams(load_layered("households.toml", path))


def building_levels(buildings: gpd.GeoDataFrame, params: HouseholdParams) -> pd.DataFrame:
    """Return ``levels`` and ``levels_source`` (tag, height or default) for each building."""
    lv = params["levels"]
    by_tag = buildings["levels_tag"].map(parse_levels).astype(float)
    by_height = buildings["height_tag"].map(parse_height).astype(float)
    by_height = (by_height / float(lv["metres_per_level"])).clip(lower=1).round()
    default = buildings["building"].map(lv["by_type"]).fillna(lv["default"]).astype(float)
    levels = by_tag.combine_first(by_height).combine_first(default)
    source = np.where(by_tag.notna(), "tag", np.where(by_height.notna(), "height", "default"))
    return pd.DataFrame(
        {"levels": levels.astype(float), "levels_source": source}, index=buildings.index
    )


def footprint_shape(geoms: np.ndarray) -> pd.DataFrame:
    """Depth, length and long-axis bearing of each footprint's minimum rotated rectangle.

    Returns
    -------
    pandas.DataFrame
        ``depth`` and ``length`` in CRS units (short and long side) and ``axis_deg``, the
        angle of the long side from east–west, in degrees within [0, 90].
    """
    ring = shapely.get_exterior_ring(shapely.minimum_rotated_rectangle(geoms))
    n = shapely.get_num_coordinates(ring)
    coords = shapely.get_coordinates(ring)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    ok = n >= 4
    p0 = coords[np.where(ok, starts, 0)]
    p1 = coords[np.where(ok, starts + 1, 0)]
    p2 = coords[np.where(ok, starts + 2, 0)]
    a, b = p1 - p0, p2 - p1
    la, lb = np.hypot(*a.T), np.hypot(*b.T)
    long_vec = np.where((la >= lb)[:, None], a, b)
    angle = np.degrees(np.arctan2(np.abs(long_vec[:, 1]), np.abs(long_vec[:, 0])))
    return pd.DataFrame(
        {
            "depth": np.where(ok, np.minimum(la, lb), 0.0),
            "length": np.where(ok, np.maximum(la, lb), 0.0),
            "axis_deg": np.where(ok, angle, 0.0),
        }
    )


def _smallest_context(points: gpd.GeoSeries, landuse: gpd.GeoDataFrame) -> pd.Series:
    """Kind of the smallest land-use polygon containing each point (NaN where none)."""
    if landuse.empty:
        return pd.Series(np.nan, index=points.index, dtype=object)
    lu = landuse[["kind", "geometry"]].copy()
    lu["lu_area"] = lu.area
    hits = gpd.sjoin(gpd.GeoDataFrame(geometry=points), lu, predicate="within", how="inner")
    hits = hits.sort_values("lu_area")
    first = hits[~hits.index.duplicated(keep="first")]
    return first["kind"].reindex(points.index)


def classify_residential(
    buildings: gpd.GeoDataFrame,
    landuse: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    params: HouseholdParams,
) -> pd.DataFrame:
    """Decide, for each building, whether it houses households and by which rule.

    Parameters
    ----------
    buildings
        Footprints in a metric CRS with ``building``, ``name``, ``building_use`` and
        ``own_use`` columns (as read by :func:`wangge.data.osm.read_osm`).
    landuse
        Context polygons (``kind`` such as ``landuse=residential``) in the same CRS.
    pois
        Facility points (``key`` column) in the same CRS, used to spot ground-floor shops.
    params
        The household parameters.

    Returns
    -------
    pandas.DataFrame
        ``residential`` (bool), ``rule`` (one of :data:`RULE_STEPS`) and ``ground_floor_shops``
        (bool), indexed like ``buildings``.
    """
    r = params["residential"]
    n = len(buildings)
    btype = buildings["building"].fillna("yes").str.lower()
    generic = btype.isin(r["generic_types"])
    names = buildings["name"].fillna("")
    area = buildings.area.to_numpy()
    shape = footprint_shape(buildings.geometry.to_numpy())
    depth = shape["depth"].to_numpy()
    context = _smallest_context(buildings.representative_point(), landuse)
    ctx_res = context.isin(r["residential_landuse"])
    ctx_nonres = context.notna() & ~ctx_res & ~context.isin(r["neutral_landuse"])

    def has_word(words: list[str]) -> pd.Series:
        if not len(names):
            return names.astype(bool)
        return names.apply(lambda s: any(w in s for w in words))

    use = buildings["building_use"].fillna("")
    own = buildings["own_use"].fillna("")
    conditions = [
        (btype.isin(r["types"]), True),
        (~generic & ~btype.isin(r["types"]), False),
        ((use != "") | (own != ""), None),  # resolved below: building:use=residential is housing
        (has_word(r["non_residential_name_words"]), False),
        (has_word(r["residential_name_words"]), True),
        (pd.Series(area < r["min_footprint_m2"], index=buildings.index), False),
        (
            pd.Series(
                (area > r["max_footprint_m2"]) | (depth > r["max_depth_m"]), index=buildings.index
            ),
            False,
        ),
        (ctx_nonres, False),
        (ctx_res, True),
    ]
    rule = np.full(n, "", dtype=object)
    res = np.zeros(n, dtype=bool)
    undecided = np.ones(n, dtype=bool)
    for (cond, value), label in zip(conditions, RULE_STEPS, strict=False):
        hit = undecided & cond.to_numpy(dtype=bool)
        rule[hit] = label
        if value is None:
            res[hit] = use[hit].str.startswith("residential").to_numpy()
        else:
            res[hit] = value
        undecided &= ~hit
    elongated = shape["length"].to_numpy() >= r["slab_min_elongation"] * depth
    slab = (
        elongated
        & (shape["axis_deg"].to_numpy() <= r["slab_max_axis_deg"])
        & (area <= r["shape_max_footprint_m2"])
    )
    tower = ~elongated & (area <= r["tower_max_footprint_m2"])
    shape_ok = (
        (slab | tower)
        & (area >= r["shape_min_footprint_m2"])
        & (depth >= r["shape_min_depth_m"])
        & (depth <= r["shape_max_depth_m"])
    )
    rule[undecided & shape_ok] = RULE_STEPS[9]
    rule[undecided & ~shape_ok] = RULE_STEPS[10]
    res[undecided] = shape_ok[undecided]

    shops = pd.Series(False, index=buildings.index)
    if len(pois):
        keyed = pois[pois["key"].isin(r["ground_floor_poi_keys"])]
        if len(keyed):
            hits = gpd.sjoin(keyed[["geometry"]], buildings[["geometry"]], predicate="within")
            shops.loc[hits["index_right"].unique()] = True
    return pd.DataFrame(
        {"residential": res, "rule": rule, "ground_floor_shops": shops.to_numpy() & res},
        index=buildings.index,
    )


def estimate_households(
    buildings: gpd.GeoDataFrame,
    landuse: gpd.GeoDataFrame,
    pois: gpd.GeoDataFrame,
    params: HouseholdParams,
) -> gpd.GeoDataFrame:
    """Add the household estimate to each building.

    Parameters
    ----------
    buildings, landuse, pois
        As for :func:`classify_residential`, in a metric CRS.
    params
        The household parameters.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``buildings`` with ``footprint_m2``, ``levels``, ``levels_source``,
        ``residential``, ``rule``, ``ground_floor_shops``, ``residential_share``,
        ``households`` (int), ``population`` (int), ``estimated`` (True) and
        ``household_source``.
    """
    out = buildings.copy()
    out["footprint_m2"] = out.area
    out = out.join(building_levels(out, params))
    out = out.join(classify_residential(out, landuse, pois, params))
    share = out["residential"].astype(float)
    shop_floor = out["ground_floor_shops"] & (out["levels"] > 1)
    share = share.where(~shop_floor, (out["levels"] - 1) / out["levels"])
    out["residential_share"] = share
    est = out["footprint_m2"] * out["levels"] * share / params.floor_area
    out["households"] = np.round(est).astype(int)
    out["population"] = np.round(out["households"] * params.persons).astype(int)
    out["estimated"] = True
    out["household_source"] = "estimate"
    return out


def apply_imported(
    buildings: gpd.GeoDataFrame, counts: pd.DataFrame, params: HouseholdParams, source: str
) -> gpd.GeoDataFrame:
    """Override estimates with imported counts.

    Parameters
    ----------
    buildings
        Output of :func:`estimate_households`.
    counts
        Indexed by ``building_id`` with a ``households`` column and optionally
        ``population``; one row per building.
    params
        For persons per household where no population was imported.
    source
        Name of the imported file, recorded in ``household_source``.
    """
    out = buildings.copy()
    hit = out["building_id"].isin(counts.index)
    ids = out.loc[hit, "building_id"]
    out.loc[hit, "households"] = counts.loc[ids, "households"].to_numpy().astype(int)
    pop = counts.loc[ids, "population"] if "population" in counts else pd.Series(np.nan, index=ids)
    fallback = np.round(out.loc[hit, "households"] * params.persons)
    out.loc[hit, "population"] = np.where(pop.isna(), fallback, pop).astype(int)
    out.loc[hit, "estimated"] = False
    out.loc[hit, "household_source"] = f"imported: {source}"
    return out
