"""Blocks: a gap-free, overlap-free tiling of the study area, buildings kept whole, adjacency."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.geo.blocks import (
    assign_to_blocks,
    classify_edges,
    order_codes,
    polygonize_blocks,
    shared_edges,
    study_area,
)

CRS = "EPSG:4549"


def _grid_roads(n=3, step=100.0, extent=400.0):
    at = [i * step for i in range(1, n + 1)]
    lines = [shapely.LineString([(-50, v), (extent + 50, v)]) for v in at]
    lines += [shapely.LineString([(v, -50), (v, extent + 50)]) for v in at]
    return gpd.GeoSeries(lines, crs=CRS)


def test_street_grid_gives_its_blocks():
    area = shapely.box(0, 0, 400, 400)
    blocks = polygonize_blocks(area, _grid_roads())
    assert len(blocks) == 16
    assert blocks.area.sum() == np.float64(160_000)
    assert shapely.union_all(blocks.geometry.to_numpy()).equals(area)


def test_dangling_road_does_not_split():
    area = shapely.box(0, 0, 100, 100)
    cul_de_sac = gpd.GeoSeries([shapely.LineString([(50, 0), (50, 60)])], crs=CRS)
    blocks = polygonize_blocks(area, cul_de_sac)
    assert len(blocks) == 1
    assert blocks.geometry[0].equals(area)


def test_dual_carriageway_median_is_merged():
    area = shapely.box(0, 0, 200, 100)
    roads = gpd.GeoSeries(
        [shapely.LineString([(100, 0), (100, 100)]), shapely.LineString([(103, 0), (103, 100)])],
        crs=CRS,
    )
    blocks = polygonize_blocks(area, roads)
    assert len(blocks) == 2  # the 3 m median joins a side
    assert np.isclose(blocks.area.sum(), 20_000)
    # but a face holding a building is never merged away
    kiosk = gpd.GeoSeries([shapely.Point(101.5, 50)], crs=CRS)
    assert len(polygonize_blocks(area, roads, kiosk)) == 3


def test_study_area_is_the_extract_not_a_hull_around_clusters():
    # two clusters of buildings 600 m apart: the land between them belongs to the area
    # (全覆盖: every piece of the district belongs to some grid), not only hulls round each
    west = [shapely.box(x, y, x + 20, y + 10) for x in range(0, 200, 50) for y in range(0, 200, 50)]
    east = [shapely.box(x, y, x + 20, y + 10) for x in range(800, 1000, 50) for y in (0, 50)]
    buildings = gpd.GeoSeries(west + east, crs=CRS)
    area = study_area(buildings)
    assert shapely.contains(area, shapely.Point(500, 100))  # between the clusters
    assert shapely.contains(area, shapely.union_all(buildings.to_numpy()))
    assert area.bounds == (-50.0, -50.0, 1020.0, 210.0)
    # the extract's own bounds win, grown only to take in a footprint that crosses them
    extent = shapely.box(-100, -100, 960, 400)
    assert study_area(buildings, extent).bounds == (-100.0, -100.0, 970.0, 400.0)


def test_building_across_a_road_goes_to_its_larger_side():
    area = shapely.box(0, 0, 200, 100)
    blocks = polygonize_blocks(
        area, gpd.GeoSeries([shapely.LineString([(100, 0), (100, 100)])], crs=CRS)
    )
    house = gpd.GeoSeries([shapely.box(90, 40, 130, 60)], crs=CRS)
    where = assign_to_blocks(house, blocks.geometry)
    assert blocks.geometry[where[0]].contains(shapely.Point(150, 50))


def test_shared_edges_and_their_kind():
    area = shapely.box(0, 0, 400, 400)
    roads = gpd.GeoDataFrame(
        {"rank": [2, 5, 5, 5, 5, 5]}, geometry=_grid_roads().to_numpy(), crs=CRS
    )
    blocks = polygonize_blocks(area, roads.geometry)
    edges = shared_edges(blocks.geometry)
    assert len(edges) == 24  # a 4 × 4 lattice has 2 × 4 × 3 rook adjacencies
    assert np.allclose(edges["length_m"], 100)
    kinds = classify_edges(
        gpd.GeoSeries(edges["geometry"], crs=CRS), roads, gpd.GeoSeries([], crs=CRS)
    )
    assert (kinds["along"] == "road").all()
    assert set(kinds["road_rank"]) == {2.0, 5.0}
    assert (kinds["road_rank"] == 2).sum() == 4  # the four edges along the y = 100 primary


def test_order_reads_north_to_south_then_west_to_east():
    boxes = gpd.GeoSeries(
        [shapely.box(x, y, x + 10, y + 10) for x, y in [(500, 0), (0, 0), (500, 1000), (0, 1000)]],
        crs=CRS,
    )
    assert order_codes(boxes).tolist() == [3, 2, 1, 0]


def test_demo_blocks_tile_the_study_area(demo_metric):
    blocks = demo_metric["blocks"]
    area = demo_metric["study_area"].geometry.iloc[0]
    union = shapely.union_all(blocks.geometry.to_numpy())
    assert union.symmetric_difference(area).area < 0.001 * area.area
    tree = shapely.STRtree(blocks.geometry.to_numpy())
    a, b = tree.query(blocks.geometry.to_numpy(), predicate="intersects")
    keep = a < b
    overlap = shapely.area(
        shapely.intersection(
            blocks.geometry.to_numpy()[a[keep]], blocks.geometry.to_numpy()[b[keep]]
        )
    ).sum()
    assert overlap < 0.0001 * area.area
    assert blocks["block_id"].is_unique
    assert (blocks["households"] == 0).any()  # empty blocks still belong to the tiling


def test_demo_every_building_in_exactly_one_block(demo_metric):
    buildings, blocks = demo_metric["buildings"], demo_metric["blocks"]
    assert len(buildings) >= 1200
    assert buildings["block_id"].notna().all()
    assert set(buildings["block_id"]) <= set(blocks["block_id"])
    # households add up per block, and nothing is lost between the layers
    per_block = buildings.groupby("block_id")["households"].sum()
    got = blocks.set_index("block_id")["households"]
    assert (got.reindex(per_block.index) == per_block).all()
    assert got.sum() == buildings["households"].sum()
    # the assigned block holds most of each building
    joined = buildings.merge(
        pd.DataFrame({"block_id": blocks["block_id"], "bgeom": blocks.geometry}), on="block_id"
    )
    inside = shapely.area(
        shapely.intersection(joined.geometry.to_numpy(), joined["bgeom"].to_numpy())
    )
    assert (inside >= 0.5 * joined.area.to_numpy() - 1e-6).mean() > 0.99


def test_demo_adjacency(demo_metric):
    adj, blocks = demo_metric["adjacency"], demo_metric["blocks"]
    assert (adj["length_m"] > 0).all()
    assert not adj.duplicated(["block_a", "block_b"]).any()
    assert set(adj["along"]) <= {"road", "barrier", "none"}
    assert (adj["along"] == "barrier").sum() >= 1  # the Qinhuai river and city wall
    assert (adj["along"] != "none").mean() > 0.95
    # the graph reaches every block
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(blocks["block_id"])
    g.add_edges_from(zip(adj["block_a"], adj["block_b"], strict=True))
    assert nx.number_connected_components(g) == 1


def test_demo_compounds_are_recorded(demo_metric):
    comp, buildings = demo_metric["compounds"], demo_metric["buildings"]
    assert len(comp) >= 5
    assert comp["households"].sum() > 0
    in_comp = buildings["compound_id"].notna()
    assert in_comp.sum() == comp["n_buildings"].sum()
