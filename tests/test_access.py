"""Walking distances: agreement with an independent networkx reference on the demo."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pyogrio
import pytest
import shapely

from wangge.geo.access import graph_from_arrays, nearest, nearest_all, snap_targets, walk_graph
from wangge.geo.coverage import building_access
from wangge.geo.rules import load_rules, osm_facility_types


@pytest.fixture(scope="module")
def demo_units(plan_dir):
    path = plan_dir / "units.gpkg"
    meta = pyogrio.read_dataframe(path, layer="meta").set_index("key")["value"]
    crs = meta["metric CRS"]
    layers = {
        n: gpd.read_file(path, layer=n).to_crs(crs)
        for n in ("network_nodes", "network_edges", "buildings", "facilities")
    }
    rules = load_rules()
    fac = layers["facilities"]
    fac["type"] = osm_facility_types(fac, rules)
    layers["facilities"] = fac[fac["type"].notna()].reset_index(drop=True)
    return layers, rules


def _reference_graph(edges: gpd.GeoDataFrame, step: float) -> nx.Graph:
    """The network as networkx sees it, built apart from wangge's code: each edge line
    cut into ≤ ``step`` m pieces, nodes keyed by their coordinates to the millimetre."""
    graph = nx.Graph()
    for line in shapely.segmentize(edges.geometry.to_numpy(), step):
        xy = shapely.get_coordinates(line)
        keys = [tuple(k) for k in np.round(xy, 3)]
        for k0, k1, a, b in zip(keys[:-1], keys[1:], xy[:-1], xy[1:], strict=True):
            if k0 == k1:
                continue
            w = float(np.hypot(*(b - a)))
            old = graph.get_edge_data(k0, k1)
            if old is None or w < old["weight"]:
                graph.add_edge(k0, k1, weight=w)
            graph.nodes[k0]["xy"], graph.nodes[k1]["xy"] = a, b
    return graph


def test_distances_agree_with_networkx_for_every_building(demo_units):
    """Every building, every facility type present in OSM: the same distance as a
    networkx multi-source Dijkstra with brute-force snapping, to 1e-6 m."""
    layers, rules = demo_units
    graph = walk_graph(layers["network_nodes"], layers["network_edges"])
    ref = _reference_graph(layers["network_edges"], 25.0)
    assert ref.number_of_nodes() == graph.n
    keys = list(ref.nodes)
    node_xy = np.array([ref.nodes[k]["xy"] for k in keys])

    def brute_snap(xy):
        d = np.hypot(xy[:, None, 0] - node_xy[None, :, 0], xy[:, None, 1] - node_xy[None, :, 1])
        return d.argmin(axis=1), d.min(axis=1)

    b_xy = shapely.get_coordinates(shapely.point_on_surface(layers["buildings"].geometry))
    targets = snap_targets(graph, b_xy, rules.max_snap_m)
    b_node, b_snap = brute_snap(b_xy)
    assert np.allclose(b_snap, targets.snap_m, atol=1e-6)
    checked = 0
    for _, group in layers["facilities"].groupby("type"):
        f_xy = shapely.get_coordinates(group.geometry)
        f_node, f_snap = brute_snap(f_xy)
        g = ref.copy()
        for n, s in zip(f_node, f_snap, strict=True):
            key = keys[n]
            old = g.get_edge_data("src", key)
            if old is None or s < old["weight"]:
                g.add_edge("src", key, weight=float(s))
        dist = nx.single_source_dijkstra_path_length(g, "src")
        expect = np.array([dist.get(keys[n], np.inf) for n in b_node]) + b_snap
        got = nearest(graph, targets, f_xy, np.inf, rules.detour)
        on_net = np.isfinite(expect)
        assert not got.straight[on_net].any()
        np.testing.assert_allclose(got.distance[on_net], expect[on_net], rtol=0, atol=1e-6)
        # unreachable by the network: straight line × detour, flagged
        assert got.straight[~on_net].all()
        checked += int(on_net.sum())
    n_types = layers["facilities"]["type"].nunique()
    assert n_types >= 4 and checked >= 0.9 * n_types * len(b_xy)


def test_nearest_facility_index_is_the_nearest(demo_units):
    layers, rules = demo_units
    graph = walk_graph(layers["network_nodes"], layers["network_edges"])
    b_xy = shapely.get_coordinates(shapely.point_on_surface(layers["buildings"].geometry))
    targets = snap_targets(graph, b_xy, rules.max_snap_m)
    clinics = layers["facilities"][layers["facilities"]["type"] == "clinic"]
    f_xy = shapely.get_coordinates(clinics.geometry)
    got = nearest(graph, targets, f_xy, rules.max_snap_m, rules.detour)
    ok = ~got.straight
    # the distance to the facility named equals the distance to the nearest
    for j in np.unique(got.facility[ok]):
        alone = nearest(graph, targets, f_xy[[j]], rules.max_snap_m, rules.detour)
        mine = ok & (got.facility == j)
        np.testing.assert_allclose(alone.distance[mine], got.distance[mine], atol=1e-6)


def test_threads_give_the_same_answer(demo_units):
    layers, rules = demo_units
    graph = walk_graph(layers["network_nodes"], layers["network_edges"])
    b_xy = shapely.get_coordinates(shapely.point_on_surface(layers["buildings"].geometry))
    targets = snap_targets(graph, b_xy, rules.max_snap_m)
    fac = layers["facilities"]
    by_type = {t: shapely.get_coordinates(g.geometry) for t, g in fac.groupby("type")}
    one = nearest_all(graph, targets, by_type, rules.max_snap_m, rules.detour, workers=1)
    two = nearest_all(graph, targets, by_type, rules.max_snap_m, rules.detour, workers=2)
    for key in by_type:
        np.testing.assert_array_equal(one[key].distance, two[key].distance)
        np.testing.assert_array_equal(one[key].facility, two[key].facility)


def test_parallel_edges_keep_the_shortest_and_loops_are_dropped():
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]])
    g = graph_from_arrays(xy, [0, 1, 0, 1, 2], [1, 0, 1, 2, 2], [150.0, 120.0, 100.0, 100.0, 5])
    assert g.csr[0, 1] == 100.0 and g.csr[1, 0] == 100.0
    assert g.csr[2, 2] == 0
    targets = snap_targets(g, np.array([[200.0, 10.0]]), 50.0)
    got = nearest(g, targets, np.array([[0.0, -3.0]]), 50.0, 1.3)
    assert got.distance[0] == pytest.approx(10 + 200 + 3)
    assert not got.straight[0]


def test_off_network_is_straight_line_times_detour_and_flagged():
    xy = np.array([[0.0, 0.0], [100.0, 0.0]])
    g = graph_from_arrays(xy, [0], [1], [100.0])
    # a building 1 km from the network, and a facility on it
    targets = snap_targets(g, np.array([[50.0, 1000.0], [100.0, 1.0]]), 250.0)
    got = nearest(g, targets, np.array([[0.0, 0.0]]), 250.0, 1.3)
    assert got.straight.tolist() == [True, False]
    assert got.distance[0] == pytest.approx(np.hypot(50, 1000) * 1.3)
    assert got.distance[1] == pytest.approx(101.0)
    # a type with no facility at all: infinite, not a made-up number
    none = nearest(g, targets, np.zeros((0, 2)), 250.0, 1.3)
    assert np.isinf(none.distance).all() and (none.facility == -1).all()


def test_building_access_marks_uncovered_types(demo_units):
    layers, rules = demo_units
    graph = walk_graph(layers["network_nodes"], layers["network_edges"])
    b = layers["buildings"].copy()
    b["grid_code"] = "x"
    access, _, _ = building_access(b, layers["facilities"], graph, rules)
    for key, t in rules.facilities.items():
        d = access[f"d_{key}"].to_numpy()
        beyond = ~(d <= t.reach_m)
        listed = access["uncovered"].str.split(",").map(lambda s, k=key: k in s).to_numpy()
        assert (beyond == listed).all(), key
