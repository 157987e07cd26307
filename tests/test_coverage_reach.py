"""Coverage bounded by reach: the same answer as the unbounded search wherever it is within
reach, and uncovered beyond it, on seeded synthetic networks and the demo's streets."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from wangge.data.synthetic import synthetic_network
from wangge.geo._dijkstra import multi_source
from wangge.geo.access import (
    Nearest,
    graph_from_arrays,
    nearest,
    nearest_all,
    node_distances,
    snap_targets,
    walk_graph,
)
from wangge.geo.rules import load_rules, osm_facility_types

MAX_SNAP, DETOUR = 250.0, 1.3


def assert_bounded_agrees(bounded: Nearest, full: Nearest, horizon: float, graph, targets, fac):
    """Within ``horizon`` the bounded answer is the unbounded one (the facility named may
    differ only for one at the same distance); beyond it, inf, no facility, no flag; and
    both say the same households are uncovered."""
    within = full.distance <= horizon
    np.testing.assert_array_equal(bounded.distance[within], full.distance[within])
    np.testing.assert_array_equal(bounded.straight[within], full.straight[within])
    np.testing.assert_array_equal(~(bounded.distance <= horizon), ~within)
    assert np.isinf(bounded.distance[~within]).all()
    assert (bounded.facility[~within] == -1).all() and not bounded.straight[~within].any()
    for i in np.flatnonzero(within & (bounded.facility != full.facility)):
        alone = nearest(graph, targets, fac[[bounded.facility[i]]], MAX_SNAP, DETOUR)
        assert alone.distance[i] == full.distance[i]


@pytest.fixture(scope="module")
def city():
    """A seeded city of 40 × 40 junctions with 6 % of its streets removed (dead ends and
    cut-off pieces), plus an island of streets far off, homes on and off the network, and
    facilities on it, off it and on the island."""
    c = synthetic_network(1600, 3000, {"a": 6, "b": 40, "c": 1}, seed=3)
    xy, u, v, length = c["xy"], c["u"], c["v"], c["length"]
    island = xy[:4] + np.array([10_000.0, 0.0])  # four junctions 10 km east, joined in a path
    k = len(xy)
    xy = np.vstack([xy, island])
    u = np.r_[u, k, k + 1, k + 2]
    v = np.r_[v, k + 1, k + 2, k + 3]
    length = np.r_[length, 80.0, 80.0, 80.0]
    g = graph_from_arrays(xy, u, v, length)
    lo = xy[:k].min(axis=0)
    homes = np.vstack([c["homes"], lo - [600.0, 0.0], island[1] + [0.0, 5.0]])
    fac = {
        "a": np.vstack([c["fac_a"], lo - [400.0, 0.0]]),  # one off the network
        "b": c["fac_b"],
        "c": np.vstack([c["fac_c"], island[3] + [3.0, 0.0]]),  # one on the island
    }
    return g, snap_targets(g, homes, MAX_SNAP), fac


@pytest.mark.parametrize("horizon", [0.0, 90.0, 300.0, 1000.0, 5000.0])
def test_bounded_equals_unbounded_within_reach(city, horizon):
    g, targets, fac = city
    for xy in fac.values():
        full = nearest(g, targets, xy, MAX_SNAP, DETOUR)
        bounded = nearest(g, targets, xy, MAX_SNAP, DETOUR, horizon)
        assert_bounded_agrees(bounded, full, horizon, g, targets, xy)
    if horizon >= 1000:
        # the cases are there: reached by the network, and by straight line
        full = nearest(g, targets, fac["a"], MAX_SNAP, DETOUR)
        assert (full.straight & (full.distance <= horizon)).any()
        assert (~full.straight & (full.distance <= horizon)).any()


def test_per_type_reach_on_threads_equals_each_type_alone(city):
    g, targets, fac = city
    reach = {"a": 500.0, "b": 300.0}  # "c" not named: searched unbounded
    both = nearest_all(g, targets, fac, MAX_SNAP, DETOUR, reach, workers=2)
    for key, xy in fac.items():
        alone = nearest(g, targets, xy, MAX_SNAP, DETOUR, reach.get(key))
        np.testing.assert_array_equal(both[key].distance, alone.distance)
        np.testing.assert_array_equal(both[key].facility, alone.facility)
    assert np.isfinite(both["c"].distance).all()  # unbounded: every home has a distance


def test_kernel_matches_scipy_with_the_same_limit(city):
    """Node distances within the limit are scipy's, from a virtual source joined to the
    sources by their offsets; nothing farther is reached."""
    g, _, fac = city
    node, snap = g.snap(fac["b"])
    n = g.n
    coo = g.csr.tocoo()
    aug = sparse.csr_matrix(
        (
            np.r_[coo.data, snap + 1e-9],  # + 1e-9: an explicit zero is no edge to scipy
            (np.r_[coo.row, np.full(len(node), n)], np.r_[coo.col, node]),
        ),
        shape=(n + 1, n + 1),
    )
    for limit in (0.0, 150.0, 700.0):
        d, origin = node_distances(g, node, snap, limit)
        ref = dijkstra(aug, indices=n, limit=limit + 1e-9)[:n] - 1e-9
        within = d <= limit
        at_limit = np.abs(ref - limit) < 1e-6  # the 1e-9 may tip a node across it
        assert ((ref <= limit) == within)[~at_limit].all()
        np.testing.assert_allclose(d[within], ref[within], rtol=0, atol=1e-6)
        assert (origin[~within] == -1).all() and np.isinf(d[~within]).all()
        # each reached node's origin is a source at that distance's start
        assert (origin[within] >= 0).all()


def _random_streets(seed: int, n: int = 2000):
    """A seeded graph of ``n`` points each joined to its three nearest (islands included),
    its lengths in whole metres on odd seeds (many ties) and with a tenth of the edges cut
    to a millimetre (far shorter than a bucket)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 2000, (n, 2))
    near = cKDTree(xy).query(xy, 4)[1][:, 1:]
    u, v = np.repeat(np.arange(n), 3), near.ravel()
    length = np.hypot(*(xy[u] - xy[v]).T)
    length = np.round(length) + 1 if seed % 2 else length
    length[rng.random(len(u)) < 0.1] = 1e-3
    return rng, graph_from_arrays(xy, u, v, length)


@pytest.mark.parametrize("seed", range(4))
def test_buckets_give_dijkstras_distances_to_the_bit(seed):
    """The bucket queue against scipy's Dijkstra on seeded graphs, with every bucket width
    from a hundredth of a millimetre to wider than the longest edge (an entry queued again
    in its own bucket, or never): the same distance at every node to the bit, islands left
    unreached, and every node naming a source as near as the nearest (ties may name
    either). Sources start at 0 m (scipy's min_only, and networkx) and at offsets far
    beyond the ring (scipy from a virtual source joined to them by their offsets)."""
    rng, g = _random_streets(seed)
    c = g.csr
    sources = rng.choice(g.n, 25, replace=False)
    offsets = rng.uniform(1.0, 1500.0, len(sources))
    n = g.n
    aug = sparse.csr_matrix(
        (np.r_[c.data, offsets], (np.r_[c.tocoo().row, np.full(25, n)], np.r_[c.indices, sources])),
        shape=(n + 1, n + 1),
    )
    widths = (1e-5, g.buckets()[0], 2.0 * c.data.max())
    streets = nx.Graph()
    streets.add_nodes_from(range(n))
    coo = c.tocoo()
    streets.add_weighted_edges_from(
        zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )
    for limit in (np.inf, 300.0):
        zero = dijkstra(c, indices=sources, min_only=True, limit=limit)
        off = dijkstra(aug, indices=n, limit=limit)[:n]
        assert np.isinf(zero).any() and np.isfinite(zero).sum() > 100
        # networkx, a third opinion, agrees with scipy to the bit
        by_nx = nx.multi_source_dijkstra_path_length(streets, set(sources.tolist()), cutoff=limit)
        np.testing.assert_array_equal(np.array([by_nx.get(v, np.inf) for v in range(n)]), zero)
        for width in widths:
            ring = 2
            while ring < c.data.max() / width + 2:
                ring *= 2
            for start, ref in ((np.zeros(25), zero), (offsets, off)):
                d, origin = multi_source(
                    c.indptr, c.indices, c.data, sources, start, limit, width, ring
                )
                np.testing.assert_array_equal(d, ref)
                reached = np.flatnonzero(np.isfinite(d))
                assert (origin[np.isinf(d)] == -1).all()
                # the named source alone is as near (to the last bit of a sum taken
                # in another order where it starts at an offset)
                alone = dijkstra(c, indices=sources, limit=limit) + start[:, None]
                np.testing.assert_allclose(
                    alone[origin[reached], reached], d[reached], rtol=1e-15, atol=0
                )


def test_a_zero_length_edge_joins_its_nodes():
    """0 —0 m— 1 —100 m— 2: a zero-length piece of street is still a street."""
    g = graph_from_arrays(np.array([[0.0, 0], [0, 0], [100, 0]]), [0, 1], [1, 2], [0.0, 100.0])
    d, origin = node_distances(g, np.array([0]), np.array([5.0]), 1000.0)
    assert d.tolist() == [5.0, 5.0, 105.0] and origin.tolist() == [0, 0, 0]


def _line_graph():
    """0 —100— 1 —100— 2   3 (no edges)   4 —50— 5 (another component)."""
    xy = np.array([[0, 0], [100, 0], [200, 0], [0, 500], [1000, 0], [1050, 0]], dtype=float)
    return graph_from_arrays(xy, [0, 1, 4], [1, 2, 5], [100.0, 100.0, 50.0])


def test_a_source_with_no_edges_covers_only_its_own_node():
    g = _line_graph()
    targets = snap_targets(g, np.array([[0.0, 510.0], [0.0, 0.0], [100.0, 0.0]]), 20.0)
    got = nearest(g, targets, np.array([[0.0, 505.0]]), 20.0, DETOUR, horizon=300.0)
    assert got.distance[0] == pytest.approx(15.0) and not got.straight[0]
    # the others are on a component with no facility: straight line × detour, as unbounded
    full = nearest(g, targets, np.array([[0.0, 505.0]]), 20.0, DETOUR)
    assert full.straight[1:].all()
    assert np.isinf(got.distance[1:]).all()  # those straight lines exceed 300 m
    wide = nearest(g, targets, np.array([[0.0, 505.0]]), 20.0, DETOUR, horizon=1000.0)
    np.testing.assert_array_equal(wide.distance, full.distance)
    assert wide.straight[1:].all()


def test_reach_zero_covers_only_what_sits_on_a_facility():
    g = _line_graph()
    targets = snap_targets(g, np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 1.0]]), 20.0)
    got = nearest(g, targets, np.array([[0.0, 0.0]]), 20.0, DETOUR, horizon=0.0)
    assert got.distance.tolist() == [0.0, np.inf, np.inf]
    assert got.facility.tolist() == [0, -1, -1]


def test_sources_beyond_reach_reach_nothing():
    g = _line_graph()
    targets = snap_targets(g, np.array([[0.0, 0.0], [200.0, 0.0]]), 200.0)
    # a facility 150 m off node 2: within the snapping distance, beyond the 100 m reach
    got = nearest(g, targets, np.array([[200.0, 150.0]]), 200.0, DETOUR, horizon=100.0)
    assert np.isinf(got.distance).all() and (got.facility == -1).all()
    d, origin = node_distances(g, np.array([2]), np.array([150.0]), 100.0)
    assert np.isinf(d).all() and (origin == -1).all()


def test_disconnected_components_keep_their_answer():
    """A home on a component with a facility but beyond reach is uncovered, never sent to
    a straight line; one on a component without is measured by straight line, as the
    unbounded search measures it."""
    g = _line_graph()
    homes = np.array([[200.0, 0.0], [1050.0, 0.0]])
    targets = snap_targets(g, homes, 20.0)
    fac = np.array([[0.0, 0.0]])
    full = nearest(g, targets, fac, 20.0, DETOUR)
    assert full.distance[0] == 200.0 and not full.straight[0]
    assert full.straight[1] and full.distance[1] == pytest.approx(1050.0 * DETOUR)
    for horizon in (150.0, 200.0, 1365.0, 2000.0):
        got = nearest(g, targets, fac, 20.0, DETOUR, horizon)
        assert_bounded_agrees(got, full, horizon, g, targets, fac)


@pytest.fixture(scope="module")
def demo(demo_metric):
    rules = load_rules()
    fac = demo_metric["facilities"].copy()
    fac["type"] = osm_facility_types(fac, rules)
    fac = fac[fac["type"].notna()]
    graph = walk_graph(demo_metric["network_nodes"], demo_metric["network_edges"])
    b_xy = shapely.get_coordinates(shapely.point_on_surface(demo_metric["buildings"].geometry))
    targets = snap_targets(graph, b_xy, rules.max_snap_m)
    by_type = {t: shapely.get_coordinates(g.geometry) for t, g in fac.groupby("type")}
    return graph, targets, by_type, rules, demo_metric["network_edges"]


def test_demo_bounded_by_each_reach_equals_unbounded(demo):
    graph, targets, by_type, rules, _ = demo
    reach = {k: rules.facilities[k].reach_m for k in by_type}
    full = nearest_all(graph, targets, by_type, rules.max_snap_m, rules.detour)
    bounded = nearest_all(graph, targets, by_type, rules.max_snap_m, rules.detour, reach, 2)
    assert len(by_type) >= 4
    for key, xy in by_type.items():
        assert_bounded_agrees(bounded[key], full[key], reach[key], graph, targets, xy)
        assert (full[key].distance <= reach[key]).any()  # something is covered
        assert (full[key].distance > reach[key]).any()  # and something is not


def test_demo_bounded_agrees_with_networkx(demo):
    """networkx's unbounded Dijkstra on the demo's streets, apart from wangge's graph
    code: the bounded answer agrees to 1e-6 m within reach and is uncovered beyond."""
    graph, targets, by_type, rules, _ = demo
    coo = graph.csr.tocoo()
    ref = nx.Graph()
    ref.add_weighted_edges_from(
        zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )
    for key in ("clinic", "kindergarten"):
        if key not in by_type:
            continue
        xy = by_type[key]
        node, snap = graph.snap(xy)
        on = snap <= rules.max_snap_m
        g = ref.copy()
        for n, s in zip(node[on].tolist(), snap[on].tolist(), strict=True):
            w = g.get_edge_data("src", n, {"weight": np.inf})["weight"]
            g.add_edge("src", n, weight=min(w, s))
        dist = nx.single_source_dijkstra_path_length(g, "src")
        expect = np.array([dist.get(n, np.inf) for n in targets.node.tolist()]) + targets.snap_m
        reach = rules.facilities[key].reach_m
        got = nearest(graph, targets, xy, rules.max_snap_m, rules.detour, reach)
        net = targets.on_network & np.isfinite(expect) & ~got.straight
        within = net & (expect <= reach)
        assert within.sum() > 10
        np.testing.assert_allclose(got.distance[within], expect[within], rtol=0, atol=1e-6)
        assert not (got.distance[net & (expect > reach + 1e-6)] <= reach).any()
