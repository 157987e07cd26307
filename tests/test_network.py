"""The walking network: split at shared vertices, never at mere crossings."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from wangge.geo.network import walk_network

CRS = "EPSG:4549"


def _roads(lines, walk=None):
    n = len(lines)
    return gpd.GeoDataFrame(
        {
            "road_id": [f"w{i}" for i in range(n)],
            "highway": ["residential"] * n,
            "walk": walk if walk is not None else [True] * n,
        },
        geometry=lines,
        crs=CRS,
    )


def test_shared_vertex_connects_crossing_does_not():
    a = shapely.LineString([(0, 0), (50, 0), (100, 0)])
    b = shapely.LineString([(50, -50), (50, 0), (50, 50)])  # shares (50, 0): a junction
    bridge = shapely.LineString([(75, -50), (75, 50)])  # crosses a with no shared vertex
    nodes, edges = walk_network(_roads([a, b, bridge]))
    g = nx.Graph()
    g.add_edges_from(zip(edges["u"], edges["v"], strict=True))
    assert len(edges) == 5  # a and b split at the junction; the bridge stays whole
    assert nx.number_connected_components(g) == 2
    assert np.isclose(edges["length_m"].sum(), 100 + 100 + 100)
    assert len(nodes) == 7


def test_unwalkable_roads_are_left_out():
    a = shapely.LineString([(0, 0), (100, 0)])
    m = shapely.LineString([(0, 10), (100, 10)])
    _, edges = walk_network(_roads([a, m], walk=[True, False]))
    assert edges["road_id"].tolist() == ["w0"]


def test_demo_network_keeps_every_walkable_metre(demo_metric):
    roads, edges = demo_metric["roads"], demo_metric["network_edges"]
    walk = roads[roads["walk"].astype(bool)]
    assert np.isclose(edges["length_m"].sum(), walk.length.sum(), rtol=1e-6)
    assert np.allclose(edges["length_m"], edges.length, rtol=1e-6)
    g = nx.Graph()
    g.add_edges_from(zip(edges["u"], edges["v"], strict=True))
    biggest = max(nx.connected_components(g), key=len)
    assert len(biggest) > 0.8 * g.number_of_nodes()


def test_demo_network_matches_osmnx(demo_osm, demo_metric):
    """Junction count agrees with osmnx's simplified graph of the same file's walkable ways."""
    import osmnx as ox

    g = ox.graph_from_xml(demo_osm, simplify=False, retain_all=True, bidirectional=True)
    _, edges = walk_network(demo_metric["roads"])
    # both graphs hold every walkable way; compare the total length of undirected edges
    und = ox.convert.to_undirected(g)
    walk_ids = set(demo_metric["roads"].loc[demo_metric["roads"]["walk"], "road_id"])
    ours = edges["length_m"].sum()
    theirs = sum(d["length"] for *_, d in und.edges(data=True) if f"w{d['osmid']}" in walk_ids)
    assert abs(ours - theirs) / theirs < 0.005
