"""Seeded synthetic districts with given communities: a synthetic street cut by straight lines."""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely

from wangge.data.synthetic import synthetic_street
from wangge.geo.blocks import assign_to_blocks, block_adjacency, polygonize_blocks

#: A cutting line: a point as fractions of the street's side (x, y) and an angle (radians).
Cut = tuple[float, float, float]
#: District and street codes of the synthetic district (Xuanwu's, as a stand-in).
DISTRICT = "320102"
STREET = DISTRICT + "001"


def _faces(area: shapely.Polygon, cuts: Sequence[Cut]) -> list[shapely.Polygon]:
    """The faces ``cuts`` make of ``area``; a face under 4 % of the area joins the neighbour
    it shares most boundary with, so that every community holds some blocks."""
    x0, y0, x1, y1 = area.bounds
    reach = 2 * max(x1 - x0, y1 - y0)
    lines = []
    for fx, fy, angle in cuts:
        cx, cy = x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)
        dx, dy = math.cos(angle) * reach, math.sin(angle) * reach
        lines.append(shapely.LineString([(cx - dx, cy - dy), (cx + dx, cy + dy)]))
    noded = shapely.union_all([area.boundary, *(shapely.intersection(g, area) for g in lines)])
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    faces = [f for f in faces if area.covers(f.point_on_surface())]
    while len(faces) > 1:
        small = min(range(len(faces)), key=lambda k: faces[k].area)
        if faces[small].area >= 0.04 * area.area:
            break
        tiny = faces.pop(small)
        shared = [shapely.intersection(tiny.boundary, f.boundary).length for f in faces]
        best = int(np.argmax(shared))
        faces[best] = shapely.union(faces[best], tiny)
    return faces


def synthetic_district(
    households: int, seed: int, cuts: Sequence[Cut]
) -> tuple[dict[str, gpd.GeoDataFrame], gpd.GeoDataFrame]:
    """A synthetic street of about ``households`` households inside given communities.

    The street of :func:`wangge.data.synthetic.synthetic_street` is cut by ``cuts`` into
    communities (faces of the lines; tiny faces merged), numbered ``STREET`` + 001… west to
    east. Its blocks are re-cut along the community boundaries (``polygonize_blocks`` with
    ``zones``), each building goes to the block holding most of it (a building crossing a
    community line stays whole, as real ones do), and the blocks carry ``street_row`` and
    ``community_row`` as ingest labels them.

    Returns
    -------
    (units, communities)
        The layers ``wangge.delineate.delineate_units`` takes (EPSG:4549), including
        ``given_streets`` and ``given_communities``; and the communities on their own.
    """
    units = synthetic_street(households, seed)
    area = units["study_area"].geometry.iloc[0]
    crs = units["blocks"].crs
    faces = sorted(_faces(area, cuts), key=lambda f: (f.centroid.x, f.centroid.y))
    communities = gpd.GeoDataFrame(
        {
            "code": [f"{STREET}{k + 1:03d}" for k in range(len(faces))],
            "name": [f"合成社区{k + 1}" for k in range(len(faces))],
            "households": np.nan,
            "population": np.nan,
            "street_row": 0,
        },
        geometry=faces,
        crs=crs,
    )
    buildings = units["buildings"].copy()
    roads = units["roads"]
    points = buildings.representative_point()
    blocks = polygonize_blocks(
        area, roads.geometry, points, zones=communities.geometry.to_numpy()
    ).reset_index(drop=True)
    blocks.insert(0, "block_id", [f"B{i + 1:05d}" for i in range(len(blocks))])
    where = assign_to_blocks(buildings.geometry, blocks.geometry)
    buildings["block_id"] = blocks["block_id"].to_numpy()[where]
    hh = buildings.groupby("block_id")["households"].sum()
    pop = buildings.groupby("block_id")["population"].sum()
    blocks["households"] = hh.reindex(blocks["block_id"]).fillna(0).astype(int).to_numpy()
    blocks["population"] = pop.reindex(blocks["block_id"]).fillna(0).astype(int).to_numpy()
    blocks["compound_id"] = None
    blocks["street_row"] = 0
    blocks["community_row"] = blocks.pop("zone").astype(int)
    street = gpd.GeoDataFrame(
        {"code": [STREET], "name": ["合成街道"], "households": [np.nan], "population": [np.nan]},
        geometry=[area],
        crs=crs,
    )
    units.update(
        buildings=buildings,
        blocks=blocks,
        adjacency=block_adjacency(blocks, roads, units["barriers"].geometry),
        given_streets=street,
        given_communities=communities,
    )
    return units, communities
