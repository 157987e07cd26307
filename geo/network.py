"""Build the walking network (nodes and edges split at junctions) from road lines."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def walk_network(roads: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Split walkable roads at junctions into an undirected graph.

    Two ways meet where they share an OSM node, which in the lines shows as the same
    vertex coordinate; crossings without a shared node (bridges, tunnels) do not connect.

    Parameters
    ----------
    roads
        Road lines in a metric CRS with ``road_id``, ``highway`` and ``walk`` columns.

    Returns
    -------
    (nodes, edges)
        ``nodes``: ``node_id`` and point geometry. ``edges``: ``u``, ``v`` (node ids),
        ``length_m``, ``road_id``, ``highway`` and line geometry. Walking is two-way, so
        each edge stands for both directions.
    """
    walk = roads[roads["walk"].astype(bool)]
    geoms = walk.geometry.to_numpy()
    coords, part = shapely.get_coordinates(geoms, return_index=True)
    if len(coords) == 0:
        empty = gpd.GeoDataFrame(pd.DataFrame(columns=["node_id"]), geometry=[], crs=roads.crs)
        return empty, gpd.GeoDataFrame(
            pd.DataFrame(columns=["u", "v", "length_m", "road_id", "highway"]),
            geometry=[],
            crs=roads.crs,
        )
    # a vertex is a junction if it is a way's end or is used more than once overall
    key = np.round(coords, 3)
    uniq, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    is_end = np.zeros(len(coords), dtype=bool)
    starts = np.r_[0, np.flatnonzero(np.diff(part)) + 1]
    ends = np.r_[starts[1:] - 1, len(coords) - 1]
    is_end[starts] = True
    is_end[ends] = True
    junction = is_end | (counts[inverse] > 1)
    road_ids = walk["road_id"].to_numpy()
    highway = walk["highway"].to_numpy()
    rows_u, rows_v, lines, owner = [], [], [], []
    for s, e in zip(starts, ends, strict=True):
        cut = s + np.flatnonzero(junction[s : e + 1])
        for a, b in itertools.pairwise(cut):
            if inverse[a] == inverse[b] and b - a < 2:
                continue  # a repeated vertex, not an edge
            rows_u.append(inverse[a])
            rows_v.append(inverse[b])
            lines.append(shapely.LineString(coords[a : b + 1]))
            owner.append(part[s])
    used = np.unique(np.r_[rows_u, rows_v]).astype(int)
    nodes = gpd.GeoDataFrame({"node_id": used}, geometry=shapely.points(uniq[used]), crs=roads.crs)
    owner = np.asarray(owner, dtype=int)
    edges = gpd.GeoDataFrame(
        {
            "u": np.asarray(rows_u, dtype=int),
            "v": np.asarray(rows_v, dtype=int),
            "length_m": shapely.length(np.asarray(lines, dtype=object)),
            "road_id": road_ids[owner],
            "highway": highway[owner],
        },
        geometry=lines,
        crs=roads.crs,
    )
    return nodes, edges
