"""Cut the study area into blocks along roads and barriers, and put every building in one block."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components


def study_area(
    buildings: gpd.GeoSeries, extent: shapely.Geometry | None = None, margin_m: float = 50.0
) -> shapely.Geometry:
    """Return the study area when no boundary is given: the extract's extent.

    Grids cover a district seamlessly (全覆盖、无缝隙), so the land between clusters of
    buildings, and the land without households, belongs to the study area as much as
    the land with them. The area is the rectangle of the extract's bounds (an OSM file's
    ``<bounds>``), grown to take in every footprint that crosses it; without bounds, the
    rectangle around the buildings, ``margin_m`` beyond the outermost ones.

    Parameters
    ----------
    buildings
        Footprints in a metric CRS.
    extent
        The extract's bounds in the same CRS, if the file states them.
    margin_m
        How far the area reaches beyond the outermost buildings.
    """
    x0, y0, x1, y1 = buildings.total_bounds
    box = shapely.box(x0 - margin_m, y0 - margin_m, x1 + margin_m, y1 + margin_m)
    if extent is not None and not extent.is_empty:
        ex0, ey0, ex1, ey1 = extent.bounds
        box = shapely.box(min(ex0, x0), min(ey0, y0), max(ex1, x1), max(ey1, y1))
    return box


def polygonize_blocks(
    area: shapely.Geometry,
    lines: gpd.GeoSeries,
    points: gpd.GeoSeries | None = None,
    min_area_m2: float = 400.0,
    min_width_m: float = 4.0,
    zones: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """Polygonize cutting lines and the area's boundary into blocks that tile ``area``.

    Faces smaller than ``min_area_m2``, or thinner than ``min_width_m`` (twice area over
    perimeter, which catches the medians of dual carriageways), that hold none of
    ``points`` are merged into the neighbour with which they share the longest edge.

    Parameters
    ----------
    area
        The study area (metric CRS).
    lines
        Roads and barriers that bound blocks.
    points
        Building representative points; faces holding one are never merged away.
    min_area_m2, min_width_m
        Sliver thresholds.
    zones
        Given units (community or street polygons) that no block may cross: their
        boundaries cut too, and a sliver merges only with a neighbour of its own zone.

    Returns
    -------
    geopandas.GeoDataFrame
        One polygon per block, with no gaps or overlaps, in ``lines``' CRS, with ``zone``
        (the position of the zone holding it, -1 outside every zone) when ``zones`` are
        given.
    """
    lines_all = lines.to_numpy()
    if zones is not None and len(zones):
        lines_all = np.concatenate([lines_all, shapely.boundary(np.asarray(zones))])
    clipped = shapely.intersection(lines_all, area)
    clipped = clipped[~shapely.is_empty(clipped)]
    boundary = shapely.boundary(area)
    noded = shapely.union_all(np.concatenate([[boundary], clipped]))
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    # polygonize returns every face, so a face inside a hole comes back too; keep those
    # inside the area only (a face of a hole in the area itself would lie outside).
    faces = faces[shapely.covers(area, shapely.point_on_surface(faces))]
    gdf = gpd.GeoDataFrame(geometry=faces, crs=lines.crs)
    zone = None
    if zones is not None:
        zone = zone_of(faces, np.asarray(zones), nearest=True)
    return _merge_slivers(gdf, points, min_area_m2, min_width_m, zone)


def zone_of(faces: np.ndarray, zones: np.ndarray, nearest: bool = False) -> np.ndarray:
    """Position of the zone holding each face (by the face's area of overlap); -1 where
    none overlaps it, or with ``nearest`` the nearest zone."""
    fi, zi = shapely.STRtree(zones).query(faces, predicate="intersects")
    overlap = shapely.area(shapely.intersection(faces[fi], zones[zi]))
    order = np.lexsort((-overlap, fi))
    fi, zi, overlap = fi[order], zi[order], overlap[order]
    first = np.unique(fi, return_index=True)[1]
    out = np.full(len(faces), -1)
    ok = overlap[first] > 0
    out[fi[first][ok]] = zi[first][ok]
    if nearest and (out < 0).any():  # a sliver on a boundary: the nearest zone
        rest = np.flatnonzero(out < 0)
        out[rest] = shapely.STRtree(zones).nearest(shapely.point_on_surface(faces[rest]))
    return out


def shared_edges(polys: gpd.GeoSeries) -> pd.DataFrame:
    """Pairs of polygons that share a boundary line, with the shared geometry and its length.

    Returns
    -------
    pandas.DataFrame
        ``a`` and ``b`` (positional indices, ``a < b``), ``geometry`` (the shared lines) and
        ``length_m``. Polygons that touch at a point only are not adjacent.
    """
    geoms = polys.to_numpy()
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b]))
    shared = shapely.line_merge(_lines_only(shared))
    length = shapely.length(shared)
    keep = length > 1e-6
    return pd.DataFrame(
        {"a": a[keep], "b": b[keep], "geometry": shared[keep], "length_m": length[keep]}
    )


def touching_edges(polys: gpd.GeoSeries, tol_m: float = 0.05, min_m: float = 0.5) -> pd.DataFrame:
    """Like :func:`shared_edges`, but tolerant of edges that are not exactly noded.

    Cells clipped from different blocks put their vertices at different places along the
    same street line; their boundaries then coincide only within floating-point error.
    Two polygons are adjacent here where one's boundary runs within ``tol_m`` of the
    other's for at least ``min_m``.

    Returns
    -------
    pandas.DataFrame
        ``a``, ``b`` (positions, ``a < b``) and ``length_m``.
    """
    geoms = polys.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=tol_m)
    keep = a < b
    a, b = a[keep], b[keep]
    rings = shapely.boundary(geoms)
    halo = shapely.buffer(rings, tol_m, quad_segs=1)
    length = shapely.length(shapely.intersection(rings[a], halo[b]))
    keep = length >= min_m
    return pd.DataFrame({"a": a[keep], "b": b[keep], "length_m": length[keep]})


def _lines_only(geoms: np.ndarray) -> np.ndarray:
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        parts = [p for p in shapely.get_parts(g) if p.geom_type == "LineString"]
        out[i] = shapely.MultiLineString(parts) if parts else shapely.MultiLineString()
    return out


def _merge_slivers(
    faces: gpd.GeoDataFrame,
    points: gpd.GeoSeries | None,
    min_area: float,
    min_width: float,
    zone: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    geoms = faces.geometry.to_numpy()
    area = shapely.area(geoms)
    width = 2 * area / np.maximum(shapely.length(geoms), 1e-9)
    holds = np.zeros(len(geoms), dtype=bool)
    if points is not None and len(points):
        hit = shapely.STRtree(geoms).query(points.to_numpy(), predicate="within")[1]
        holds[np.unique(hit)] = True
    small = ((area < min_area) | (width < min_width)) & ~holds
    if not small.any():
        out = faces.reset_index(drop=True)
        if zone is not None:
            out["zone"] = zone
        return out
    edges = shared_edges(faces.geometry)
    if zone is not None:  # never merge across a given boundary
        edges = edges[zone[edges["a"].to_numpy()] == zone[edges["b"].to_numpy()]]
    # each sliver joins the neighbour with the longest shared edge; chains of slivers
    # end in a non-sliver through the connected components.
    both = pd.concat(
        [
            edges[["a", "b", "length_m"]],
            edges[["b", "a", "length_m"]].set_axis(["a", "b", "length_m"], axis=1),
        ]
    )
    both = both[small[both["a"].to_numpy()]]
    best = both.sort_values("length_m", ascending=False).drop_duplicates("a")
    n = len(geoms)
    graph = coo_array((np.ones(len(best)), (best["a"], best["b"])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # polygonized faces share exact edges, so the fast coverage union is exact here
    out, zones = [], []
    for lab in np.unique(label):
        inside = label == lab
        members = geoms[inside]
        out.append(members[0] if len(members) == 1 else shapely.coverage_union_all(members))
        if zone is not None:
            zones.append(int(zone[inside][0]))
    frame = gpd.GeoDataFrame(geometry=out, crs=faces.crs)
    if zone is not None:
        frame["zone"] = zones
    return frame


def order_codes(geoms: gpd.GeoSeries, band_m: float = 200.0) -> np.ndarray:
    """Order polygons north→south in bands of ``band_m``, then west→east within a band.

    Returns
    -------
    numpy.ndarray
        Positional indices in reading order.
    """
    pts = geoms.representative_point()
    return np.lexsort((pts.x.to_numpy(), -np.floor(pts.y.to_numpy() / band_m)))


def assign_to_blocks(buildings: gpd.GeoSeries, blocks: gpd.GeoSeries) -> np.ndarray:
    """Return, for each building, the position of the block it overlaps most.

    A building that crosses a road is kept whole and goes to the block holding most of it.
    """
    bgeoms, kgeoms = buildings.to_numpy(), blocks.to_numpy()
    bi, ki = shapely.STRtree(kgeoms).query(bgeoms, predicate="intersects")
    overlap = shapely.area(shapely.intersection(bgeoms[bi], kgeoms[ki]))
    order = np.lexsort((-overlap, bi))
    bi, ki = bi[order], ki[order]
    first = np.unique(bi, return_index=True)[1]
    out = np.full(len(bgeoms), -1)
    out[bi[first]] = ki[first]
    missing = np.flatnonzero(out < 0)
    if len(missing):  # outside every block: take the nearest
        out[missing] = shapely.STRtree(kgeoms).nearest(bgeoms[missing])
    return out


def classify_edges(
    edges: gpd.GeoSeries, roads: gpd.GeoDataFrame, barriers: gpd.GeoSeries, tol_m: float = 1.0
) -> pd.DataFrame:
    """Say what each shared block edge runs along: a barrier, a road (with its rank), or neither.

    Five points along each edge are tested against the roads and barriers within ``tol_m``.

    Returns
    -------
    pandas.DataFrame
        ``along`` (``barrier``, ``road`` or ``none``), ``road_rank`` (1 = trunk or primary,
        9 = minor; NaN off roads) and ``along_share`` (share of sample points on a road or
        barrier).
    """
    n = len(edges)
    fractions = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    geoms = edges.to_numpy()
    pts = shapely.line_interpolate_point(
        np.repeat(geoms, len(fractions)), np.tile(fractions, n), normalized=True
    )
    owner = np.repeat(np.arange(n), len(fractions))

    def near(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(lines) == 0:
            return np.array([], int), np.array([], int)
        return shapely.STRtree(lines).query(pts, predicate="dwithin", distance=tol_m)

    on_barrier = np.zeros(len(pts), dtype=bool)
    p, _ = near(barriers.to_numpy())
    on_barrier[p] = True
    rank = np.full(len(pts), np.inf)
    p, r = near(roads.geometry.to_numpy())
    np.minimum.at(rank, p, roads["rank"].to_numpy()[r] if len(r) else [])
    frame = pd.DataFrame({"edge": owner, "barrier": on_barrier, "rank": rank})
    g = frame.groupby("edge")
    barrier_share = g["barrier"].mean().reindex(range(n)).to_numpy()
    road_share = g["rank"].apply(lambda s: np.isfinite(s).mean()).reindex(range(n)).to_numpy()
    best_rank = g["rank"].min().reindex(range(n)).replace(np.inf, np.nan).to_numpy()
    along = np.where(barrier_share >= 0.5, "barrier", np.where(road_share >= 0.5, "road", "none"))
    share = frame.assign(on=frame["barrier"] | np.isfinite(frame["rank"])).groupby("edge")["on"]
    return pd.DataFrame(
        {
            "along": along,
            "road_rank": best_rank,
            "along_share": share.mean().reindex(range(n)).to_numpy(),
        }
    )


def block_adjacency(
    blocks: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, barriers: gpd.GeoSeries
) -> gpd.GeoDataFrame:
    """The block adjacency layer: shared edges between blocks and what they run along.

    Parameters
    ----------
    blocks
        Blocks with ``block_id`` (metric CRS).
    roads
        Block-cutting roads with ``rank``.
    barriers
        Barrier lines.

    Returns
    -------
    geopandas.GeoDataFrame
        ``block_a``, ``block_b``, ``length_m``, ``along``, ``road_rank``, ``along_share``
        and the shared line.
    """
    edges = shared_edges(blocks.geometry)
    kinds = classify_edges(gpd.GeoSeries(edges["geometry"], crs=blocks.crs), roads, barriers)
    ids = blocks["block_id"].to_numpy()
    return gpd.GeoDataFrame(
        {
            "block_a": ids[edges["a"]],
            "block_b": ids[edges["b"]],
            "length_m": edges["length_m"].to_numpy(),
            **kinds,
        },
        geometry=edges["geometry"].to_numpy(),
        crs=blocks.crs,
    )
