"""Seeded synthetic clustered districts (labelled synthetic; no real place).

A clipped extract of a Chinese city often holds its homes in detached clusters: a few
blocks of slabs here, an estate of towers there, open land between them, and now and then
a lane of a few houses that joins two clusters by a thin strip. Clusters hold totals that
no whole number of grids fits (250 households, or 550) and towers above the grid ceiling
that no cut can divide. This module draws such districts from a seed, in the layers of a
units.gpkg (as :func:`wangge.data.synthetic.synthetic_street` does), so that the grid
partition can be measured against its peers where it is hardest.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from wangge.data.synthetic import BLOCK_M, CRS, ORIGIN, _building
from wangge.geo.blocks import block_adjacency

#: Open land between the slots that hold the clusters (metres).
GAP_M = 180.0
#: Width of a lane that joins two clusters (metres): a thin link of one cell.
LANE_M = 12.0
#: Households of a tower above the grid ceiling of 500: indivisible, flagged oversize.
TOWER_HH = (510, 900)
#: Households of a cluster (besides its towers), by kind: below the floor, between one and
#: two grids (no whole count fits), and ordinary.
CLUSTER_HH = {"small": (120, 295), "awkward": (505, 595), "ordinary": (650, 2400)}


def synthetic_clusters(seed: int, clusters: int = 9) -> dict[str, gpd.GeoDataFrame]:
    """A seeded district of ``clusters`` detached clusters of homes, some joined by lanes.

    Each cluster is a lattice of 1–3 × 1–3 blocks of ``BLOCK_M`` (roads on the block
    edges), set in its own slot of a 3-wide grid of slots ``GAP_M`` apart, so clusters
    touch nothing. A cluster's households (towers apart) are drawn by kind: a quarter
    below the grid floor, a fifth between one and two grids, the rest ordinary
    (``CLUSTER_HH``). Half the clusters hold one or two towers of ``TOWER_HH`` households,
    alone in a block or beside slabs. Two clusters in neighbouring slots are joined with
    probability 0.4 by a lane ``LANE_M`` wide (a block of its own, with up to two houses of
    3–15 households): the thin link.

    Returns
    -------
    dict
        ``buildings``, ``blocks``, ``adjacency``, ``compounds``, ``roads``, ``barriers`` and
        ``study_area`` in EPSG:4549, as :func:`wangge.data.synthetic.synthetic_street`.
    """
    rng = np.random.default_rng(seed)
    pitch = 3 * BLOCK_M + GAP_M
    x0, y0 = ORIGIN
    blocks: list[dict] = []
    rows: list[dict] = []
    roads: list[shapely.LineString] = []
    boxes: list[tuple[float, float, float, float]] = []
    kinds = list(CLUSTER_HH)
    for c in range(clusters):
        nbx, nby = (int(v) for v in rng.integers(1, 4, 2))
        cx = x0 + (c % 3) * pitch + rng.uniform(0, (3 - nbx) * BLOCK_M + 1)
        cy = y0 + (c // 3) * pitch + rng.uniform(0, (3 - nby) * BLOCK_M + 1)
        boxes.append((cx, cy, cx + nbx * BLOCK_M, cy + nby * BLOCK_M))
        kind = kinds[int(np.searchsorted([0.25, 0.45], rng.random(), side="right"))]
        want = int(rng.integers(*CLUSTER_HH[kind]))
        towers = int(rng.integers(1, 3)) if rng.random() < 0.5 else 0
        tower_blocks = set(rng.choice(nbx * nby, size=min(towers, nbx * nby), replace=False))
        slabs: list[dict] = []
        for j in range(nby):
            for i in range(nbx):
                bx, by = cx + i * BLOCK_M, cy + j * BLOCK_M
                block_id = f"C{c + 1:02d}B{j * nbx + i + 1:02d}"
                blocks.append(
                    {
                        "block_id": block_id,
                        "geometry": shapely.box(bx, by, bx + BLOCK_M, by + BLOCK_M),
                    }
                )
                alone = False
                if j * nbx + i in tower_blocks:
                    hh = int(rng.integers(*TOWER_HH))
                    rows.append(_building(rng, bx + 100, by + 100, 40, 40, hh, block_id))
                    # alone in its block while another block holds the slabs
                    alone = nbx * nby > len(tower_blocks) and rng.random() < 0.5
                if alone:
                    continue
                n_rows = int(rng.integers(3, 6))
                for r in range(n_rows):
                    y = by + 15 + r * (BLOCK_M - 30) / n_rows
                    for k in range(2 if j * nbx + i not in tower_blocks else 1):
                        x = bx + 12 + k * 72
                        slabs.append(
                            _building(rng, x, y, 62, 11, int(rng.poisson(17)) + 2, block_id)
                        )
        hh = np.array([s["households"] for s in slabs], float)
        hh = np.maximum(np.round(hh * want / hh.sum()), 1).astype(int)
        for s, h in zip(slabs, hh, strict=True):
            s["households"] = int(h)
        rows.extend(slabs)
        for k in range(nbx + 1):
            x = cx + k * BLOCK_M
            roads.append(shapely.LineString([(x, cy), (x, cy + nby * BLOCK_M)]))
        for k in range(nby + 1):
            y = cy + k * BLOCK_M
            roads.append(shapely.LineString([(cx, y), (cx + nbx * BLOCK_M, y)]))
    lanes = 0
    for c in range(clusters):
        for d in (c + 1, c + 3):  # the slot east, the slot north
            if d >= clusters or (d == c + 1 and c % 3 == 2) or rng.random() >= 0.4:
                continue
            lane = _lane(boxes[c], boxes[d], d == c + 1)
            if lane is None:
                continue
            lanes += 1
            block_id = f"L{lanes:02d}"
            blocks.append({"block_id": block_id, "geometry": lane})
            lx0, ly0, lx1, ly1 = lane.bounds
            for _ in range(int(rng.integers(0, 3))):
                # a house in the lane, small enough to sit inside it
                fx = rng.uniform(0.15, 0.8)
                hx, hy = lx0 + fx * (lx1 - lx0), ly0 + fx * (ly1 - ly0)
                w, h = (8.0, 6.0) if d == c + 1 else (6.0, 8.0)
                house = _building(rng, hx, hy, w, h, int(rng.integers(3, 16)), block_id)
                house["geometry"] = shapely.box(
                    max(hx, lx0 + 2), max(hy, ly0 + 2), min(hx + w, lx1 - 2), min(hy + h, ly1 - 2)
                )
                rows.append(house)
            mid = lane.centroid
            if d == c + 1:
                roads.append(shapely.LineString([(lx0, mid.y), (lx1, mid.y)]))
            else:
                roads.append(shapely.LineString([(mid.x, ly0), (mid.x, ly1)]))
    return _layers(blocks, rows, roads)


def _lane(a, b, east: bool) -> shapely.Polygon | None:
    """A lane ``LANE_M`` wide from box ``a`` to box ``b`` (east or north of it) where their
    sides face each other, or None where they do not."""
    if east:
        lo, hi = max(a[1], b[1]), min(a[3], b[3])
        if hi - lo < LANE_M + 10:
            return None
        mid = (lo + hi) / 2
        return shapely.box(a[2], mid - LANE_M / 2, b[0], mid + LANE_M / 2)
    lo, hi = max(a[0], b[0]), min(a[2], b[2])
    if hi - lo < LANE_M + 10:
        return None
    mid = (lo + hi) / 2
    return shapely.box(mid - LANE_M / 2, a[3], mid + LANE_M / 2, b[1])


def _layers(blocks: list[dict], rows: list[dict], roads: list) -> dict[str, gpd.GeoDataFrame]:
    """The units.gpkg layers of the blocks, buildings and road lines drawn."""
    buildings = gpd.GeoDataFrame(rows, crs=CRS)
    buildings["population"] = np.round(buildings["households"] * 2.62).astype(int)
    buildings["building_id"] = [f"k{i + 1}" for i in range(len(buildings))]
    buildings["compound_id"] = None
    blocks = gpd.GeoDataFrame(blocks, crs=CRS)
    hh = buildings.groupby("block_id")["households"].sum()
    blocks["households"] = hh.reindex(blocks["block_id"]).fillna(0).astype(int).to_numpy()
    blocks["compound_id"] = None
    roads = gpd.GeoDataFrame(
        {
            "road_id": [f"r{i + 1}" for i in range(len(roads))],
            "rank": 5,
            "cuts_blocks": True,
            "walk": True,
            "highway": "residential",
        },
        geometry=roads,
        crs=CRS,
    )
    barriers = gpd.GeoDataFrame({"barrier_id": [], "kind": []}, geometry=[], crs=CRS)
    area = shapely.union_all(blocks.geometry.to_numpy())
    return {
        "buildings": buildings,
        "blocks": blocks,
        "adjacency": block_adjacency(blocks, roads, barriers.geometry),
        "compounds": gpd.GeoDataFrame({"compound_id": [], "households": []}, geometry=[], crs=CRS),
        "roads": roads,
        "barriers": barriers,
        "study_area": gpd.GeoDataFrame({"area_km2": [area.area / 1e6]}, geometry=[area], crs=CRS),
    }


def describe_clusters(units: dict[str, gpd.GeoDataFrame], hi: float = 500) -> dict:
    """Counts of a clustered district for benchmark tables: households, buildings, blocks,
    lanes and towers above ``hi``."""
    b = units["buildings"]
    return {
        "households": int(b["households"].sum()),
        "buildings": len(b),
        "blocks": len(units["blocks"]),
        "lanes": int(units["blocks"]["block_id"].str.startswith("L").sum()),
        "towers": int((b["households"] > hi).sum()),
        "area_km2": math.fsum(units["study_area"]["area_km2"]),
    }
