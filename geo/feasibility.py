"""Check before solving: which units the limits cannot hold as they are, and what will happen."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from wangge.geo.limits import Limits
from wangge.geo.partition import choose_k

COLUMNS = ["unit", "kind", "households", "finding", "action"]


def feasibility(
    buildings: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame, limits: Limits
) -> pd.DataFrame:
    """One row per unit that does not fit a level's limits as it stands.

    Parameters
    ----------
    buildings
        With ``building_id`` and ``households``.
    compounds
        With ``compound_id`` and ``households``.
    limits
        The bands.

    Returns
    -------
    pandas.DataFrame
        ``unit``, ``kind`` (building, compound, study area), ``households``, ``finding`` and
        the ``action`` the solver takes, so a planner sees them before any grid is drawn.
    """
    rows = []
    g, m, c = limits.grid, limits.microgrid, limits.community
    for bid, hh in zip(buildings["building_id"], buildings["households"], strict=True):
        if hh > g.hi:
            rows.append(
                (
                    bid,
                    "building",
                    hh,
                    f"{hh:g} households > grid ceiling {g.hi:g}",
                    "own grid, flagged oversize; divided by floors into micro-grids",
                )
            )
        elif hh > m.hi:
            k, _ = choose_k(hh, m)
            rows.append(
                (
                    bid,
                    "building",
                    hh,
                    f"{hh:g} households > micro-grid ceiling {m.hi:g}",
                    f"vertical micro-grids: {k} floor ranges of one footprint",
                )
            )
    for cid, hh in zip(compounds["compound_id"], compounds["households"], strict=True):
        if hh > c.hi:
            rows.append(
                (
                    cid,
                    "compound",
                    hh,
                    f"{hh:g} households > community ceiling {c.hi:g}",
                    "split along its buildings across communities",
                )
            )
        elif hh > g.hi:
            rows.append(
                (
                    cid,
                    "compound",
                    hh,
                    f"{hh:g} households > grid ceiling {g.hi:g}",
                    "split along its buildings across grids",
                )
            )
    total = float(buildings["households"].sum())
    if total < g.lo:
        rows.append(
            (
                "study area",
                "study area",
                total,
                f"{total:g} households < grid floor {g.lo:g}",
                "one grid below the floor; no arrangement can meet it",
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
