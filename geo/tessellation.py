"""Cut each block into one cell per building (a Voronoi tessellation of building outlines)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.geo._geom import GRID_M, on_grid, polygonal_all


def tessellate(
    blocks: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    spacing_m: float = 4.0,
    shrink_m: float = 0.5,
) -> gpd.GeoDataFrame:
    """Divide every block into cells, one per building it holds, and keep empty blocks whole.

    Points are laid along each building's outline every ``spacing_m``; the Voronoi regions
    of a block's points, clipped to the block and merged per building, give cells that
    tile the block exactly, follow the gaps between buildings, and hold their building
    whole (the same idea as momepy's enclosed tessellation, without its overlaps).

    Parameters
    ----------
    blocks
        Blocks with ``block_id`` in a metric CRS.
    buildings
        Buildings with ``building_id`` and ``block_id`` in the same CRS.
    spacing_m
        Distance between outline points.
    shrink_m
        Outlines are first shrunk by this much, so that buildings sharing a wall get
        separate points and the cell boundary runs along the wall.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id``, ``block_id``, ``building_id`` (None for a block without buildings).
    """
    cells_geom: list = []
    cells_block: list = []
    cells_bldg: list = []
    by_block = buildings.groupby("block_id").indices
    bgeoms = buildings.geometry.to_numpy()
    bids = buildings["building_id"].to_numpy()
    for block_id, block in zip(blocks["block_id"], blocks.geometry, strict=True):
        members = by_block.get(block_id)
        if members is None or len(members) == 0:
            cells_geom.append(block)
            cells_block.append(block_id)
            cells_bldg.append(None)
            continue
        if len(members) == 1:
            cells_geom.append(block)
            cells_block.append(block_id)
            cells_bldg.append(bids[members[0]])
            continue
        shrunk = shapely.buffer(bgeoms[members], -shrink_m, join_style="mitre")
        shrunk = np.where(shapely.is_empty(shrunk), bgeoms[members], shrunk)
        outlines = shapely.segmentize(shapely.boundary(shrunk), spacing_m)
        coords, owner = shapely.get_coordinates(outlines, return_index=True)
        coords, first = np.unique(np.round(coords, 2), axis=0, return_index=True)
        owner = owner[first]
        regions = _voronoi(coords, block)
        valid = shapely.is_valid(regions).all()
        if not valid:
            # cocircular outline points (grid-aligned footprints, square stand-ins) can
            # give Voronoi regions that are invalid and overlap, which a clip need not
            # notice: the points are moved by a millimetre or so (seeded), and tried again
            coords = coords + np.random.default_rng(0).uniform(-0.005, 0.005, coords.shape)
            regions = _voronoi(coords, block)
            valid = shapely.is_valid(regions).all()
        if valid:  # the regions come in the order of their points
            region_owner = owner
        else:  # each region holds exactly one of the points: find which
            seeds = shapely.points(coords)
            ri, si = shapely.STRtree(seeds).query(regions, predicate="contains")
            region_owner = np.full(len(regions), -1)
            region_owner[ri] = owner[si]
        try:
            if not valid:
                raise shapely.errors.GEOSException("invalid Voronoi regions")
            regions = _clip(regions, block)
        except shapely.errors.GEOSException:
            # still invalid: repaired (their polygonal part: a repair can leave lines too,
            # which GEOS will not overlay with polygons), clipped on a grid, and made to
            # tile the block again (a repair can leave overlaps and gaps)
            repaired = polygonal_all(shapely.make_valid(regions))
            clipped = polygonal_all(shapely.intersection(repaired, block, grid_size=GRID_M))
            regions = _tile(clipped, block)
        for o, group in _by_owner(region_owner, regions):
            try:
                cell = shapely.coverage_union_all(group)
            except shapely.errors.GEOSException:  # pieces clipped on the fine grid above
                cell = shapely.union_all(group, grid_size=GRID_M)
            cells_geom.append(cell)
            cells_block.append(block_id)
            cells_bldg.append(bids[members[o]])
    cells = gpd.GeoDataFrame(
        {"block_id": cells_block, "building_id": cells_bldg},
        geometry=cells_geom,
        crs=blocks.crs,
    )
    cells.insert(0, "cell_id", np.arange(len(cells)))
    return _hold_buildings_whole(cells, buildings, blocks.set_index("block_id").geometry)


def _clip(regions: np.ndarray, block: shapely.Geometry) -> np.ndarray:
    """``regions`` clipped to ``block``. Those wholly inside it are kept as they are
    (the overlay would give back the same polygon at a cost; most regions of a block
    lie inside it)."""
    shapely.prepare(block)
    cut = ~shapely.contains_properly(block, regions)
    out = regions.copy()
    out[cut] = shapely.intersection(regions[cut], block)
    return out


def _by_owner(owner: np.ndarray, regions: np.ndarray):
    """The non-empty regions of each owner (``-1``: none), owners ascending, regions in
    their order."""
    keep = np.flatnonzero((owner >= 0) & ~shapely.is_empty(regions))
    keep = keep[np.argsort(owner[keep], kind="stable")]
    owners, starts = np.unique(owner[keep], return_index=True)
    for o, part in zip(owners, np.split(keep, starts[1:]), strict=True):
        yield o, regions[part]


def _voronoi(coords: np.ndarray, block: shapely.Geometry) -> np.ndarray:
    """The Voronoi regions of ``coords`` (distinct points), reaching the whole of
    ``block``, in the order of the points."""
    points = shapely.multipoints(coords)
    return shapely.get_parts(shapely.voronoi_polygons(points, extend_to=block, ordered=True))


def _tile(regions: np.ndarray, block: shapely.Geometry) -> np.ndarray:
    """Repaired regions made to tile ``block`` again: a repair can make neighbours overlap
    (each keeps what no earlier region holds) and leave ground to none (each piece left
    goes to the region nearest it), so every cell stays one piece of one block."""
    out = np.asarray(regions, dtype=object).copy()
    taken = shapely.Polygon()
    for i, region in enumerate(out):
        if shapely.is_empty(region):
            continue
        mine = polygonal_all(np.array([shapely.difference(region, taken, grid_size=GRID_M)]))[0]
        out[i] = mine
        taken = shapely.union(taken, mine, grid_size=GRID_M)
    left = polygonal_all(np.array([shapely.difference(block, taken, grid_size=GRID_M)]))[0]
    pieces = [p for p in shapely.get_parts(left) if p.area > 0]
    if pieces:
        live = np.flatnonzero(~shapely.is_empty(out))
        tree = shapely.STRtree(out[live])
        for piece in pieces:
            j = live[int(tree.nearest(piece))]
            out[j] = shapely.union(out[j], piece, grid_size=GRID_M)
    return out


def _hold_buildings_whole(
    cells: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, blocks: gpd.GeoSeries
) -> gpd.GeoDataFrame:
    """Give each building's cell the whole footprint (within its block), taking it from others.

    Voronoi cells can cut a corner of a building that touches or overlaps another; where a
    building keeps less than 99 % of its footprint, its cell takes the rest of it inside the
    block, and the neighbouring cells give it up. Overlapping buildings are settled in
    order, so the later one keeps the shared part.
    """
    geoms = cells.geometry.to_numpy().copy()
    row = pd.Series(np.arange(len(cells)), index=cells["building_id"])
    row = row[row.index.notna()]
    # a building can be left without a cell of its own (its outline points all coincide
    # with another's, or its block was merged away): cell_of() accounts for it later
    b = buildings.set_index("building_id")
    b = b[b.index.isin(row.index)]
    own = geoms[row.loc[b.index].to_numpy()]
    share = shapely.area(shapely.intersection(b.geometry.to_numpy(), own)) / b.area.to_numpy()
    todo = np.flatnonzero(share < 0.99)
    if len(todo) == 0:
        cells.geometry = polygonal_all(on_grid(cells.geometry.to_numpy()))
        return cells
    tree = shapely.STRtree(geoms)
    # cells that took a piece have grown past the extent the tree knows them by: every
    # later piece is taken from them too, or two cells would hold the same ground
    grown: set[int] = set()
    for i in todo:
        bid = b.index[i]
        mine = int(row.loc[bid])
        piece = shapely.intersection(b.geometry.iloc[i], blocks.loc[cells["block_id"].iat[mine]])
        near = set(tree.query(piece, predicate="intersects").tolist()) | grown
        for j in near:
            if j != mine and shapely.intersects(geoms[j], piece):
                geoms[j] = shapely.difference(geoms[j], piece)
        geoms[mine] = shapely.union(geoms[mine], piece)
        grown.add(mine)
    out = cells.copy()
    geoms = polygonal_all(on_grid(geoms))
    out.geometry = geoms
    # a building wholly inside another (mapped twice) is left with no cell of its own
    out = out[~shapely.is_empty(geoms) & (shapely.area(geoms) > 0)].reset_index(drop=True)
    out["cell_id"] = np.arange(len(out))
    return out


def nested_buildings(buildings: gpd.GeoDataFrame, share: float = 0.5) -> np.ndarray:
    """True for each building that lies mostly (``share`` of its footprint) inside a larger
    one: a part mapped on top of its building, or the same building drawn twice. Such a
    building gets no cell of its own (a cell carved out of another building's footprint
    falls into shards); :func:`cell_of` counts it in the cell of the building holding it.
    """
    geoms = buildings.geometry.to_numpy()
    area = shapely.area(geoms)
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = a != b
    a, b = a[keep], b[keep]
    # b is the larger (ties: the earlier row keeps its cell)
    larger = (area[b] > area[a]) | ((area[b] == area[a]) & (b < a))
    a, b = a[larger], b[larger]
    out = np.zeros(len(geoms), dtype=bool)
    if len(a):
        inter = shapely.area(shapely.intersection(geoms[a], geoms[b]))
        hit = inter >= share * np.maximum(area[a], 1e-9)
        out[a[hit]] = True
    return out


def cell_of(cells: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """Position of the cell that counts each building's households: exactly one per building.

    A building's own cell where it has one; otherwise (a building drawn inside another, or
    one whose outline coincides with a neighbour's) the cell holding most of its footprint,
    else the nearest cell. So every household is counted in exactly one unit.

    Returns
    -------
    numpy.ndarray
        One cell position per row of ``buildings``.
    """
    own = pd.Series(np.arange(len(cells)), index=cells["building_id"])
    own = own[own.index.notna() & ~own.index.duplicated()]
    out = own.reindex(buildings["building_id"]).to_numpy(dtype=float, copy=True)
    missing = np.flatnonzero(np.isnan(out))
    if len(missing):
        geoms = cells.geometry.to_numpy()
        bgeoms = buildings.geometry.to_numpy()[missing]
        tree = shapely.STRtree(geoms)
        bi, ci = tree.query(bgeoms, predicate="intersects")
        overlap = shapely.area(shapely.intersection(bgeoms[bi], geoms[ci]))
        order = np.lexsort((-overlap, bi))
        bi, ci = bi[order], ci[order]
        first = np.unique(bi, return_index=True)[1]
        out[missing[bi[first]]] = ci[first]
        rest = missing[np.isnan(out[missing])]
        if len(rest):
            out[rest] = tree.nearest(buildings.geometry.to_numpy()[rest])
    return out.astype(int)
