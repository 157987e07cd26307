"""Seeded synthetic streets for tests and benchmarks (labelled synthetic; no real place).

A street is a lattice of square blocks with roads on the block edges (every fourth road
a main road). Blocks hold rows of east–west slabs, a few point towers, and some parks
with no homes. The same seed and size always give the same street.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.geo.blocks import block_adjacency

#: A made-up metric CRS (CGCS2000 / 3-degree GK CM 120E) so that lengths are in metres.
CRS = "EPSG:4549"
ORIGIN = (400_000.0, 3_500_000.0)
BLOCK_M = 160.0


def synthetic_street(households: int, seed: int = 0) -> dict[str, gpd.GeoDataFrame]:
    """Generate the atomic units of a synthetic street of about ``households`` households.

    Returns
    -------
    dict
        ``buildings``, ``blocks``, ``adjacency``, ``compounds``, ``roads``, ``barriers`` and
        ``study_area``, shaped like the layers of ``units.gpkg`` in EPSG:4549.
    """
    rng = np.random.default_rng(seed)
    per_block = 170.0
    n_blocks = max(4, math.ceil(households / per_block / 0.9))
    side = math.ceil(math.sqrt(n_blocks))
    x0, y0 = ORIGIN
    blocks, rows = [], []
    for j in range(side):
        for i in range(side):
            bx, by = x0 + i * BLOCK_M, y0 + j * BLOCK_M
            block_id = f"B{j * side + i + 1:05d}"
            blocks.append(
                {"block_id": block_id, "geometry": shapely.box(bx, by, bx + BLOCK_M, by + BLOCK_M)}
            )
            kind = rng.random()
            if kind < 0.1:
                continue  # a park
            if kind < 0.13:  # a point tower
                rows.append(
                    _building(rng, bx + 55, by + 55, 40, 40, int(rng.integers(120, 320)), block_id)
                )
                continue
            n_rows = int(rng.integers(3, 6))
            for r in range(n_rows):
                y = by + 15 + r * (BLOCK_M - 30) / n_rows
                for c in range(2):
                    x = bx + 12 + c * 72
                    rows.append(_building(rng, x, y, 62, 11, int(rng.poisson(17)) + 2, block_id))
    buildings = gpd.GeoDataFrame(rows, crs=CRS)
    scale = households / max(buildings["households"].sum(), 1)
    buildings["households"] = np.maximum(np.round(buildings["households"] * scale), 0).astype(int)
    buildings["population"] = np.round(buildings["households"] * 2.62).astype(int)
    buildings["building_id"] = [f"s{i + 1}" for i in range(len(buildings))]
    buildings["compound_id"] = None
    blocks = gpd.GeoDataFrame(blocks, crs=CRS)
    hh = buildings.groupby("block_id")["households"].sum()
    blocks["households"] = hh.reindex(blocks["block_id"]).fillna(0).astype(int).to_numpy()
    blocks["compound_id"] = None
    extent = side * BLOCK_M
    roads = []
    for k in range(side + 1):
        rank = 2 if k % 4 == 0 else 5
        roads.append(
            {
                "road_id": f"h{k}",
                "rank": rank,
                "cuts_blocks": True,
                "walk": True,
                "highway": "primary" if rank == 2 else "residential",
                "geometry": shapely.LineString(
                    [(x0, y0 + k * BLOCK_M), (x0 + extent, y0 + k * BLOCK_M)]
                ),
            }
        )
        roads.append(
            {
                "road_id": f"v{k}",
                "rank": rank,
                "cuts_blocks": True,
                "walk": True,
                "highway": "primary" if rank == 2 else "residential",
                "geometry": shapely.LineString(
                    [(x0 + k * BLOCK_M, y0), (x0 + k * BLOCK_M, y0 + extent)]
                ),
            }
        )
    roads = gpd.GeoDataFrame(roads, crs=CRS)
    barriers = gpd.GeoDataFrame({"barrier_id": [], "kind": []}, geometry=[], crs=CRS)
    adjacency = block_adjacency(blocks, roads, barriers.geometry)
    area = shapely.box(x0, y0, x0 + extent, y0 + extent)
    return {
        "buildings": buildings,
        "blocks": blocks,
        "adjacency": adjacency,
        "compounds": gpd.GeoDataFrame({"compound_id": [], "households": []}, geometry=[], crs=CRS),
        "roads": roads,
        "barriers": barriers,
        "study_area": gpd.GeoDataFrame({"area_km2": [area.area / 1e6]}, geometry=[area], crs=CRS),
    }


#: District code of the synthetic city (Xuanwu's, as a stand-in; no real place).
CITY_DISTRICT = "320102"


def synthetic_city(streets: int, households: int, seed: int = 0) -> dict[str, gpd.GeoDataFrame]:
    """A seeded synthetic city of about ``households`` households in ``streets`` given streets.

    The city is one lattice of :func:`synthetic_street` blocks. The streets are the cells
    of an ``s × s`` grid laid over the lattice (``s = ceil(sqrt(streets))``, rows north to
    south, west to east), so every street boundary runs along a road, and the first
    ``streets`` cells in that order are kept (the rest of the lattice is cut away). Streets
    are coded ``CITY_DISTRICT`` + 001…; the layers are those of a units.gpkg that
    ``wangge ingest --streets`` writes: ``given_streets``, and blocks labelled with their
    ``street_row`` (no given communities: each street's communities are drawn).
    """
    s = math.ceil(math.sqrt(streets))
    # size the lattice for the whole s × s grid, then keep the streets' share of it
    total = households * s * s / streets
    units = synthetic_street(round(total), seed)
    blocks = units["blocks"]
    x0, y0 = ORIGIN
    side = round(math.sqrt(len(blocks)))
    per = side / s
    centres = shapely.centroid(blocks.geometry.to_numpy())
    ci = np.minimum((shapely.get_x(centres) - x0) / BLOCK_M // per, s - 1).astype(int)
    # rows counted from the north, as codes are read
    cj = np.minimum((y0 + side * BLOCK_M - shapely.get_y(centres)) / BLOCK_M // per, s - 1)
    cell = cj.astype(int) * s + ci
    keep = cell < streets
    blocks = blocks[keep].reset_index(drop=True)
    blocks["street_row"] = cell[keep]
    blocks["community_row"] = -1
    ids = set(blocks["block_id"])
    buildings = units["buildings"][units["buildings"]["block_id"].isin(ids)].reset_index(drop=True)
    scale = households / max(int(buildings["households"].sum()), 1)
    buildings["households"] = np.round(buildings["households"] * scale).astype(int)
    buildings["population"] = np.round(buildings["households"] * 2.62).astype(int)
    hh = buildings.groupby("block_id")["households"].sum()
    blocks["households"] = hh.reindex(blocks["block_id"]).fillna(0).astype(int).to_numpy()
    adjacency = units["adjacency"]
    adjacency = adjacency[
        adjacency["block_a"].isin(ids) & adjacency["block_b"].isin(ids)
    ].reset_index(drop=True)
    polys = [
        shapely.union_all(blocks.geometry[blocks["street_row"] == k].to_numpy())
        for k in range(streets)
    ]
    given = gpd.GeoDataFrame(
        {
            "code": [f"{CITY_DISTRICT}{k + 1:03d}" for k in range(streets)],
            "name": [f"合成街道{k + 1}" for k in range(streets)],
            "households": np.nan,
            "population": np.nan,
        },
        geometry=polys,
        crs=CRS,
    )
    area = shapely.union_all(polys)
    return {
        **units,
        "buildings": buildings,
        "blocks": blocks,
        "adjacency": adjacency,
        "given_streets": given,
        "study_area": gpd.GeoDataFrame({"area_km2": [area.area / 1e6]}, geometry=[area], crs=CRS),
    }


def _building(rng, x, y, w, h, households, block_id) -> dict:
    return {
        "block_id": block_id,
        "building": "residential",
        "households": households,
        "levels": 6.0,
        "residential": True,
        "estimated": True,
        "geometry": shapely.box(x, y, x + w, y + h),
    }


def describe(units: dict[str, gpd.GeoDataFrame]) -> pd.Series:
    """Counts of a synthetic street, for benchmark tables."""
    return pd.Series(
        {
            "households": int(units["buildings"]["households"].sum()),
            "buildings": len(units["buildings"]),
            "blocks": len(units["blocks"]),
        }
    )


def synthetic_network(
    nodes: int, households: int, facility_counts: dict[str, int], seed: int = 0
) -> dict[str, np.ndarray]:
    """A seeded synthetic city network for the coverage benchmark (no real place).

    The streets are a square lattice of about ``nodes`` junctions 80 m apart, each
    junction jittered by up to 15 m and 6 % of the street segments removed (dead ends,
    superblocks), with edge length the jittered straight distance times a curvature
    factor in 1.00–1.15. Households are points spread uniformly over the city, 1 to 60
    per point; facilities of each type are points placed uniformly too.

    Returns
    -------
    dict
        ``xy`` (node coordinates), ``u``, ``v``, ``length`` (edges), ``homes`` (points),
        ``households`` (per point) and ``fac_<type>`` (points) for each type.
    """
    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(nodes))
    step = 80.0
    gx, gy = np.meshgrid(np.arange(side) * step, np.arange(side) * step)
    xy = np.column_stack([gx.ravel(), gy.ravel()])[:nodes]
    xy = xy + rng.uniform(-15, 15, xy.shape) + ORIGIN
    idx = np.arange(side * side).reshape(side, side)
    u = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    v = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    keep = (u < nodes) & (v < nodes) & (rng.random(len(u)) >= 0.06)
    u, v = u[keep], v[keep]
    length = np.hypot(*(xy[u] - xy[v]).T) * rng.uniform(1.0, 1.15, len(u))
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    out = {
        "xy": xy,
        "u": u,
        "v": v,
        "length": length,
        "homes": rng.uniform(lo, hi, (households, 2)),
        "households": rng.integers(1, 61, households),
    }
    for key, n in facility_counts.items():
        out[f"fac_{key}"] = rng.uniform(lo, hi, (n, 2))
    return out
