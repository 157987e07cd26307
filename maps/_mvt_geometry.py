"""The geometry half of the MVT encoder: clip, simplify, quantise, orient rings, draw commands.

:mod:`wangge.maps.mvt` hands each layer's EPSG:3857 geometries here; what comes back is
the integers of each feature's ``geometry`` field (MVT 2.1, section 4.3), every step a
whole-array numpy or shapely operation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import shapely

#: Command ids of the spec (section 4.3.3).
_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 7


class Paths(NamedTuple):
    """What MVT draws, in tile units: polygon rings, lines and points, grouped by feature.

    Attributes
    ----------
    xy
        ``(m, 2)`` int64 vertices of all paths in order; rings without a closing vertex.
    count
        Vertices per path.
    owner
        Feature (position in the clipped array) of each path; non-decreasing.
    kind
        Dimension of each path: 0 point, 1 line, 2 polygon ring.
    size
        Signed area of rings (positive for exterior rings), length of lines, 0 for points.
    """

    xy: np.ndarray
    count: np.ndarray
    owner: np.ndarray
    kind: np.ndarray
    size: np.ndarray

    def take(self, keep: np.ndarray) -> Paths:
        """The paths where ``keep`` is true."""
        return Paths(
            self.xy[np.repeat(keep, self.count)],
            self.count[keep],
            self.owner[keep],
            self.kind[keep],
            self.size[keep],
        )


def clip(
    geoms: np.ndarray, bounds: tuple[float, float, float, float], extent: int, buffer: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometries that meet the buffered tile, clipped to it.

    Returns
    -------
    rows
        Positions in ``geoms`` of the geometries that meet the tile.
    clipped
        Those geometries, clipped where they cross the edge.
    dims
        Dimension of each geometry before clipping (0, 1, 2), which decides its type.
    """
    minx, miny, maxx, maxy = bounds
    pad = buffer * (maxx - minx) / extent
    rect = (minx - pad, miny - pad, maxx + pad, maxy + pad)
    box = shapely.bounds(geoms)  # NaN for None and empty geometries: never meets the tile
    meets = (
        (box[:, 0] <= rect[2]) & (box[:, 2] >= rect[0]) & (box[:, 1] <= rect[3])
        & (box[:, 3] >= rect[1])
    )  # fmt: skip
    rows = np.flatnonzero(meets)
    box = box[rows]
    clipped = geoms[rows]
    dims = shapely.get_dimensions(clipped)
    crosses = (
        (box[:, 0] < rect[0]) | (box[:, 2] > rect[2]) | (box[:, 1] < rect[1])
        | (box[:, 3] > rect[3])
    )  # fmt: skip
    if crosses.any():
        clipped[crosses] = shapely.clip_by_rect(clipped[crosses], *rect)
    return rows, clipped, dims


def simplified_parts(
    geoms: np.ndarray, dims: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """The Points, LineStrings and Polygons of each geometry, simplified by ``tolerance``.

    Simplification is plain Douglas-Peucker, as ``ST_Simplify`` in the PostGIS path: GEOS
    repairs the polygons it yields, so they stay valid, and it is 5-9 times faster than
    the topology-preserving simplifier on 12- to 40-gons. A part that would collapse
    keeps its shape (as with ``ST_Simplify``'s preserveCollapsed): a small building
    stays a dot. Parts of at most 5 coordinates (a closed quadrilateral) have at most
    one vertex to lose and are left alone.

    Returns
    -------
    parts
        Non-empty single geometries of their geometry's dimension, grouped by geometry.
    owner
        Position in ``geoms`` of each part.
    """
    parts, owner = explode(geoms, np.arange(len(geoms)), dims)
    if tolerance > 0:
        worth = np.flatnonzero((dims[owner] > 0) & (shapely.get_num_coordinates(parts) > 5))
        if len(worth):
            simpler = shapely.simplify(parts[worth], tolerance, preserve_topology=False)
            kept = ~shapely.is_empty(simpler)
            parts[worth[kept]] = simpler[kept]
            parts, owner = explode(parts, owner, dims)  # a repaired polygon may split
    return parts, owner


def explode(
    parts: np.ndarray, owner: np.ndarray, dims: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-part geometries and collections broken into their non-empty single parts.

    Parts whose dimension differs from their geometry's (the lines and points that
    clipping a polygon can leave in a GeometryCollection) are dropped.
    """
    while len(parts) and (shapely.get_type_id(parts) >= 4).any():  # Multi* and collections
        parts, index = shapely.get_parts(parts, return_index=True)
        owner = owner[index]
    same = ~shapely.is_empty(parts) & (shapely.get_dimensions(parts) == dims[owner])
    return parts[same], owner[same]


def split_paths(
    parts: np.ndarray, owner: np.ndarray, dims: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Break single parts into paths: the rings of each polygon, lines and points.

    Returns
    -------
    paths
        LinearRings, LineStrings and Points, grouped by geometry in order; the rings of
        a polygon follow one another, exterior first.
    owner
        The geometry (as in ``owner``) of each path.
    kind
        Dimension of each path.
    lead
        True for exterior rings, lines and points; False for holes.
    """
    polygon = dims[owner] == 2
    rings, ring_of = shapely.get_rings(parts[polygon], return_index=True)
    exterior = np.ones(len(rings), bool)
    exterior[1:] = ring_of[1:] != ring_of[:-1]
    other = ~polygon
    paths = np.concatenate([rings, parts[other]])
    owners = np.concatenate([owner[polygon][ring_of], owner[other]])
    kind = np.concatenate([np.full(len(rings), 2), dims[owner[other]]])
    lead = np.concatenate([exterior, np.ones(other.sum(), bool)])
    order = np.argsort(owners, kind="stable")
    return paths[order], owners[order], kind[order], lead[order]


def quantise(
    paths: np.ndarray,
    owner: np.ndarray,
    kind: np.ndarray,
    lead: np.ndarray,
    bounds: tuple[float, float, float, float],
    extent: int,
) -> Paths:
    """Paths in integer tile units, cleaned of what rounding made degenerate, rings oriented.

    Repeated vertices and the closing vertex of rings are removed. Rings with fewer than
    three vertices or zero area (with the holes of a dropped exterior ring) and lines
    with fewer than two vertices are dropped. Rings are reversed where needed so that
    exterior rings have positive area and holes negative area by the surveyor's formula
    in tile coordinates.
    """
    xy, at = shapely.get_coordinates(paths, return_index=True)
    n = len(paths)
    if not len(xy):
        none = np.zeros(0, np.int64)
        return Paths(np.zeros((0, 2), np.int64), none, none, none, np.zeros(0))
    minx, miny, maxx, maxy = bounds
    tx = np.rint((xy[:, 0] - minx) * (extent / (maxx - minx))).astype(np.int64)
    ty = np.rint((maxy - xy[:, 1]) * (extent / (maxy - miny))).astype(np.int64)

    keep = np.ones(len(at), bool)
    keep[1:] = (at[1:] != at[:-1]) | (tx[1:] != tx[:-1]) | (ty[1:] != ty[:-1])
    at, tx, ty = at[keep], tx[keep], ty[keep]
    last = np.ones(len(at), bool)
    last[:-1] = at[1:] != at[:-1]
    keep = ~(last & (kind[at] == 2))  # the closing vertex; ClosePath draws that segment
    at, tx, ty = at[keep], tx[keep], ty[keep]

    count = np.bincount(at, minlength=n)
    start = np.cumsum(count) - count
    last = np.ones(len(at), bool)
    last[:-1] = at[1:] != at[:-1]
    following = np.arange(1, len(at) + 1)
    following[last] = start[at[last]]  # a ring's last vertex is followed by its first
    area = np.bincount(at, weights=tx * ty[following] - tx[following] * ty, minlength=n) / 2
    step = np.hypot(tx[following] - tx, ty[following] - ty)
    length = np.bincount(at[~last], weights=step[~last], minlength=n)

    ring = kind == 2
    ok = np.where(ring, (count >= 3) & (area != 0), count >= np.where(kind == 1, 2, 1))
    lead_of = np.maximum.accumulate(np.where(lead, np.arange(n), 0))
    ok &= ok[lead_of]  # holes go with their exterior ring
    flip = ring & ok & ((area < 0) == lead)
    if flip.any():
        j = np.arange(len(at))
        mirror = 2 * start[at] + count[at] - 1 - j
        src = np.where(flip[at], mirror, j)
        tx, ty = tx[src], ty[src]
    size = np.where(ring, np.where(lead, 1.0, -1.0) * np.abs(area), length)
    return Paths(np.column_stack([tx, ty]), count, owner, kind, size).take(ok)


def commands(paths: Paths) -> tuple[np.ndarray, np.ndarray]:
    """The geometry integers of the features: commands and zigzag-encoded vertex deltas.

    Each ring or line is ``MoveTo(1)`` and ``LineTo(n - 1)`` (rings then ``ClosePath``);
    the points of a feature share one ``MoveTo(n)``. Deltas run from the previous vertex
    of the feature; the cursor starts at (0, 0) for each feature, as the spec says.

    Returns
    -------
    ints
        The integers of all features in order.
    per_feature
        How many integers each feature has.
    """
    owner, kind, count = paths.owner, paths.kind, paths.count
    new_part = np.ones(len(owner), bool)
    new_part[1:] = (kind[1:] != 0) | (owner[1:] != owner[:-1])  # a feature's points merge
    part = np.cumsum(new_part) - 1
    vertices = np.bincount(part, weights=count).astype(np.int64)
    part_kind, part_owner = kind[new_part], owner[new_part]
    move = np.where(part_kind == 0, vertices, 1)
    line = vertices - move
    width = 1 + 2 * vertices + (line > 0) + (part_kind == 2)
    part_start = np.cumsum(width) - width

    ints = np.empty(int(width.sum()), np.int64)
    ints[part_start] = (move << 3) | _MOVE_TO
    drawn = line > 0
    ints[(part_start + 1 + 2 * move)[drawn]] = (line[drawn] << 3) | _LINE_TO
    ints[(part_start + width - 1)[part_kind == 2]] = (1 << 3) | _CLOSE_PATH

    vertex_part = np.repeat(part, count)
    k = np.arange(len(vertex_part)) - (np.cumsum(vertices) - vertices)[vertex_part]
    at = part_start[vertex_part] + 1 + 2 * k + (k >= move[vertex_part])
    vertex_owner = np.repeat(owner, count)
    xy = paths.xy
    previous = np.roll(xy, 1, axis=0)
    first = np.ones(len(xy), bool)
    first[1:] = vertex_owner[1:] != vertex_owner[:-1]
    previous[first] = 0
    delta = xy - previous
    zigzag = (delta << 1) ^ (delta >> 63)
    ints[at] = zigzag[:, 0]
    ints[at + 1] = zigzag[:, 1]

    new_feature = np.ones(len(part_owner), bool)
    new_feature[1:] = part_owner[1:] != part_owner[:-1]
    feature = np.cumsum(new_feature) - 1
    return ints, np.bincount(feature, weights=width).astype(np.int64)
