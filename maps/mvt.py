"""Mapbox Vector Tile (MVT 2.1) encoding of shapely geometries in EPSG:3857, vectorised with numpy.

The tile server finds the features of a layer that meet a tile and hands them here as
shapely arrays. Everything per vertex (clipping, simplification, quantisation to the tile
grid, ring orientation, zigzag deltas and varints) runs as whole-array numpy and shapely
operations; Python loops only over layers, columns and distinct attribute values.

The protobuf wire format is written directly (no protobuf library)::

    Tile    { repeated Layer layers = 3 }
    Layer   { name = 1; features = 2; keys = 3; values = 4; extent = 5; version = 15 }
    Feature { id = 1; tags = 2 [packed]; type = 3; geometry = 4 [packed] }
    Value   { string = 1; float = 2; double = 3; int = 4; uint = 5; sint = 6; bool = 7 }

References: https://github.com/mapbox/vector-tile-spec/tree/master/2.1
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import shapely

__all__ = [
    "LINESTRING",
    "ORIGIN_SHIFT",
    "POINT",
    "POLYGON",
    "Layer",
    "LayerStats",
    "encode",
    "encode_with_stats",
    "simplify_tolerance",
    "tile_bounds",
]

#: Half the side of the EPSG:3857 world square in metres (π × 6378137).
ORIGIN_SHIFT = math.pi * 6378137.0

#: Geometry types of the spec (``Tile.GeomType``).
POINT, LINESTRING, POLYGON = 1, 2, 3

# The geometry type of a feature, by the dimension of its shapely geometry (0, 1, 2).
_GEOM_TYPE = np.array([POINT, LINESTRING, POLYGON], np.uint8)

_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 7
_UINT64_MAX = 2**64 - 1
_SINT64_MIN = -(2**63)

# A value of a layer's value table: its kind ("string", "int", "double", "bool") and value.
# The kind is part of the key because True == 1 and 1.0 == 1 in Python.
_ValueKey = tuple[str, Any]


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """EPSG:3857 bounds of the XYZ tile ``z/x/y`` (row ``y = 0`` at the north edge).

    This is the slippy-map (Google) tile scheme, as in PostGIS ``ST_TileEnvelope``. Each
    edge is computed from its own index, so neighbouring tiles share exactly equal edges.

    Parameters
    ----------
    z
        Zoom level, ``0`` or more.
    x, y
        Column (from the west) and row (from the north), each in ``0 .. 2**z - 1``.

    Returns
    -------
    tuple of float
        ``(minx, miny, maxx, maxy)`` in metres.
    """
    if z < 0:
        raise ValueError(f"zoom {z} is negative")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise ValueError(f"tile {z}/{x}/{y} is outside the {n} x {n} tiles of zoom {z}")
    size = 2.0 * ORIGIN_SHIFT / n
    return (
        -ORIGIN_SHIFT + x * size,
        ORIGIN_SHIFT - (y + 1) * size,
        -ORIGIN_SHIFT + (x + 1) * size,
        ORIGIN_SHIFT - y * size,
    )


def simplify_tolerance(z: int, extent: int = 4096) -> float:
    """Metres of Douglas-Peucker simplification that cannot be seen at zoom ``z``.

    The tolerance is a quarter of one screen pixel of a 256-pixel tile, i.e. the tile width
    divided by 1024 (2.4 m at z14, 9.6 m at z12; 4 tile units at ``extent=4096``). A
    vertex that moves by a quarter pixel does not change what is drawn, yet at low zooms
    this removes most vertices of long boundaries and roads. When ``extent`` is coarser
    than 1024 units, rounding to the tile grid already moves vertices by up to half a unit,
    so the tolerance becomes one tile unit instead. From z16 on (a tile is 611 m wide, a
    quarter pixel 0.6 m, about the accuracy of the building outlines) the tolerance is 0:
    tiles at high zoom hold few, small features and are over-zoomed on the client, where
    any simplification would show.

    Parameters
    ----------
    z
        Zoom level.
    extent
        Tile units along one side of the tile.

    Returns
    -------
    float
        Tolerance in metres, ``0.0`` for no simplification.
    """
    if z >= 16:
        return 0.0
    return 2.0 * ORIGIN_SHIFT / (1 << z) / min(extent, 1024)


@dataclass(frozen=True)
class Layer:
    """One named layer of a tile: geometries in EPSG:3857 and their attributes.

    Attributes
    ----------
    name
        Layer name, unique within a tile.
    geoms
        Shapely geometries in EPSG:3857 metres; ``None`` and empty geometries are skipped.
        Points and MultiPoints become POINT features, (Multi)LineStrings LINESTRING and
        (Multi)Polygons POLYGON; a layer may mix them.
    properties
        Column name to values, one per geometry. ``None`` and NaN are left out of that
        feature's tags. ``str`` is written as a string, ``bool`` as a bool, ``int`` as a
        uint (a sint when negative), ``float`` as a double unless it is integral (then as
        an int); values outside the 64-bit range become doubles, numpy datetimes ISO 8601
        strings and other types their ``str``.
    ids
        Optional non-negative integer feature ids, one per geometry.
    """

    name: str
    geoms: np.ndarray
    properties: dict[str, np.ndarray | list] = field(default_factory=dict)
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.geoms)
        for key, values in self.properties.items():
            if len(values) != n:
                raise ValueError(
                    f"layer {self.name!r}: column {key!r} has {len(values)} values "
                    f"for {n} geometries"
                )
        if self.ids is not None and len(self.ids) != n:
            raise ValueError(f"layer {self.name!r}: {len(self.ids)} ids for {n} geometries")


class LayerStats(NamedTuple):
    """What became of the features of one layer in one tile.

    Attributes
    ----------
    kept
        Features written to the tile.
    dropped
        Features that reached the tile but were left out because of ``max_features``.
    empty
        Features outside the tile, or that clipping and rounding reduced to nothing.
    """

    kept: int
    dropped: int
    empty: int


def encode(
    layers: list[Layer],
    z: int,
    x: int,
    y: int,
    extent: int = 4096,
    buffer: int = 64,
    simplify: bool = True,
    max_features: int | None = None,
) -> bytes:
    """Encode layers of EPSG:3857 geometries as the MVT bytes of tile ``z/x/y``.

    A thin wrapper of :func:`encode_with_stats`, which describes the steps.

    Parameters
    ----------
    layers
        The layers, with unique names.
    z, x, y
        The tile, as in :func:`tile_bounds`.
    extent
        Tile units along one side of the tile.
    buffer
        Tile units kept around the tile.
    simplify
        Simplify lines and polygons by :func:`simplify_tolerance`.
    max_features
        Most features per layer; the largest are kept.

    Returns
    -------
    bytes
        The tile; ``b""`` (a valid empty tile) when no layer has a feature in it.
    """
    return encode_with_stats(layers, z, x, y, extent, buffer, simplify, max_features)[0]


def encode_with_stats(
    layers: list[Layer],
    z: int,
    x: int,
    y: int,
    extent: int = 4096,
    buffer: int = 64,
    simplify: bool = True,
    max_features: int | None = None,
) -> tuple[bytes, dict[str, LayerStats]]:
    """Encode layers as the MVT bytes of tile ``z/x/y`` and say what was kept and dropped.

    Each geometry is clipped to the tile grown by ``buffer`` tile units, simplified by
    :func:`simplify_tolerance` (after clipping, so that only the part in the tile is
    simplified), moved to tile units (``0 .. extent``, y down) and rounded. Repeated
    vertices are removed; rings with fewer than three vertices or no area, lines with
    fewer than two vertices and features left with no part are dropped. Exterior rings
    are written with positive area by the spec's surveyor formula (clockwise with y down)
    and holes with negative area, whatever the orientation of the input.

    Parameters
    ----------
    layers
        The layers, with unique names.
    z, x, y
        The tile, as in :func:`tile_bounds`.
    extent
        Tile units along one side of the tile.
    buffer
        Tile units kept around the tile, so that lines and outlines at the edges of
        neighbouring tiles join without seams.
    simplify
        Simplify lines and polygons by :func:`simplify_tolerance` (Douglas-Peucker, as
        ``ST_Simplify``; GEOS repairs the polygons it yields, so they stay valid, and a
        part that would collapse is kept as it was).
    max_features
        When a layer has more features than this in the tile, keep the largest: polygons
        by area in the tile first, then lines by length, then points in input order.
        Features keep their input order in the tile.

    Returns
    -------
    bytes
        The tile; ``b""`` when no layer has a feature in it. Layers with no feature are
        left out.
    dict
        Layer name to :class:`LayerStats`, for every layer given.
    """
    if extent <= 0 or buffer < 0:
        raise ValueError(f"extent {extent} must be positive and buffer {buffer} not negative")
    if max_features is not None and max_features < 0:
        raise ValueError(f"max_features {max_features} is negative")
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique within a tile: {names}")
    bounds = tile_bounds(z, x, y)
    tolerance = simplify_tolerance(z, extent) if simplify else 0.0
    tile: list[bytes] = []
    stats: dict[str, LayerStats] = {}
    for layer in layers:
        message, stats[layer.name] = _encode_layer(
            layer, bounds, extent, buffer, tolerance, max_features
        )
        if message:
            tile += [b"\x1a", _varint(len(message)), message]
    return b"".join(tile), stats


# --- one layer ---------------------------------------------------------------------------


def _encode_layer(
    layer: Layer,
    bounds: tuple[float, float, float, float],
    extent: int,
    buffer: int,
    tolerance: float,
    max_features: int | None,
) -> tuple[bytes, LayerStats]:
    """The Layer message of one layer (``b""`` when it has no feature) and its stats."""
    geoms = np.asarray(layer.geoms, dtype=object)
    rows, clipped, dims = _clip(geoms, bounds, extent, buffer)
    parts, owner = _parts(clipped, dims, tolerance)
    paths = _quantise(*_split(parts, owner, dims), bounds, extent)
    features, first = np.unique(paths.owner, return_index=True)
    dropped = 0
    if max_features is not None and len(features) > max_features:
        size = np.bincount(paths.owner, weights=paths.size, minlength=len(rows))[features]
        kind = paths.kind[first]
        rank = np.lexsort((features, -size, -kind))
        dropped = len(features) - max_features
        paths = paths.take(np.isin(paths.owner, features[rank[:max_features]]))
        features, first = np.unique(paths.owner, return_index=True)
    empty = len(geoms) - len(features) - dropped
    if not len(features):
        return b"", LayerStats(0, dropped, empty)

    # Feature { id = 1; tags = 2; type = 3; geometry = 4 }, each field tag then its value
    n = len(features)
    one = np.ones(n, np.int64)
    source = rows[features]
    geometry = _varint_piece(*_commands(paths))
    keys, values, codes = _tag_codes(layer.properties, source)
    tags = _tags_piece(codes)
    has_tags = tags.length > 0
    pieces = []
    if layer.ids is not None:
        pieces += [_const_piece(0x08, n), _varint_piece(_ids(layer.ids)[source], one)]
    pieces += [
        _const_piece(0x12, n, has_tags),
        _varint_piece(tags.length[has_tags], has_tags),
        tags,
        _const_piece(0x18, n),
        _const_piece(_GEOM_TYPE[paths.kind[first]], n),
        _const_piece(0x22, n),
        _varint_piece(geometry.length, one),
        geometry,
    ]
    body, body_size = _interleave(pieces)
    body_start = np.cumsum(body_size) - body_size
    framed, _ = _interleave(  # Layer.features = 2, one framed Feature each
        [
            _const_piece(0x12, n),
            _varint_piece(body_size, one),
            _Piece(body, body_start, body_size),
        ]
    )
    name = layer.name.encode()
    message = [b"\x0a", _varint(len(name)), name, framed.tobytes()]
    for key in keys:
        raw = key.encode("utf-8", "replace")
        message += [b"\x1a", _varint(len(raw)), raw]
    for value in values:
        raw = _value_message(value)
        message += [b"\x22", _varint(len(raw)), raw]
    message += [b"\x28", _varint(extent), b"\x78\x02"]
    return b"".join(message), LayerStats(n, dropped, empty)


def _ids(ids: np.ndarray | list) -> np.ndarray:
    """Feature ids as uint64, refusing negative or fractional ones."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"feature ids must be integers, not {ids.dtype}")
    if ids.dtype.kind == "i" and (ids < 0).any():
        raise ValueError(f"feature ids must not be negative: {ids[ids < 0][:5]}")
    return ids.astype(np.uint64)


# --- geometry ----------------------------------------------------------------------------


class _Paths(NamedTuple):
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

    def take(self, keep: np.ndarray) -> _Paths:
        """The paths where ``keep`` is true."""
        return _Paths(
            self.xy[np.repeat(keep, self.count)],
            self.count[keep],
            self.owner[keep],
            self.kind[keep],
            self.size[keep],
        )


def _clip(
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


def _parts(geoms: np.ndarray, dims: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
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
    parts, owner = _explode(geoms, np.arange(len(geoms)), dims)
    if tolerance > 0:
        worth = np.flatnonzero((dims[owner] > 0) & (shapely.get_num_coordinates(parts) > 5))
        if len(worth):
            simpler = shapely.simplify(parts[worth], tolerance, preserve_topology=False)
            kept = ~shapely.is_empty(simpler)
            parts[worth[kept]] = simpler[kept]
            parts, owner = _explode(parts, owner, dims)  # a repaired polygon may split
    return parts, owner


def _explode(
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


def _split(
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


def _quantise(
    paths: np.ndarray,
    owner: np.ndarray,
    kind: np.ndarray,
    lead: np.ndarray,
    bounds: tuple[float, float, float, float],
    extent: int,
) -> _Paths:
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
        return _Paths(np.zeros((0, 2), np.int64), none, none, none, np.zeros(0))
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
    return _Paths(np.column_stack([tx, ty]), count, owner, kind, size).take(ok)


def _commands(paths: _Paths) -> tuple[np.ndarray, np.ndarray]:
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


# --- attributes --------------------------------------------------------------------------


def _tag_codes(
    properties: dict[str, np.ndarray | list], rows: np.ndarray
) -> tuple[list[str], list[_ValueKey], np.ndarray]:
    """Keys, the deduplicated values of the layer and the value of each feature and key.

    Returns
    -------
    keys
        Columns with at least one value in ``rows``.
    values
        Distinct ``(kind, value)`` of the layer, in order of first appearance.
    codes
        ``(len(rows), len(keys))`` positions in ``values``; -1 where missing.
    """
    keys: list[str] = []
    columns: list[np.ndarray] = []
    lookup: dict[_ValueKey, int] = {}
    for key, column in properties.items():
        codes, uniques = _factorize(_as_array(column)[rows])
        index = np.array(
            [-1 if v is None else lookup.setdefault(v, len(lookup)) for v in uniques],
            dtype=np.int64,
        )
        coded = index[codes] if len(index) else np.full(len(rows), -1)
        if (coded >= 0).any():
            keys.append(key)
            columns.append(coded)
    codes = np.column_stack(columns) if columns else np.full((len(rows), 0), -1)
    return keys, list(lookup), codes


def _as_array(values: np.ndarray | list) -> np.ndarray:
    """A column as a numpy array; lists become object arrays so that no type is coerced."""
    if hasattr(values, "dtype"):
        return np.asarray(values)
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _factorize(column: np.ndarray) -> tuple[np.ndarray, list[_ValueKey | None]]:
    """Codes into the distinct values of a column, and how each of those is written.

    Typed numpy columns are classified as whole arrays; object columns value by value.
    """
    kind = column.dtype.kind
    if kind == "M":  # ISO 8601, as short as the values allow
        text = np.datetime_as_string(column, unit="auto").astype(object)
        text[np.isnat(column)] = None
        column, kind = text, "O"
    if kind not in "biufU":
        seen: dict[tuple[type, Any], int] = {}
        codes = np.fromiter(
            (seen.setdefault((v.__class__, v), len(seen)) for v in column.tolist()),
            dtype=np.int64,
            count=len(column),
        )
        return codes, [_classify(v) for _, v in seen]
    uniques, codes = np.unique(column, return_inverse=True)
    codes = codes.reshape(-1)
    if kind == "f":
        integral = np.isfinite(uniques) & (uniques == np.trunc(uniques))
        integral &= (uniques >= _SINT64_MIN) & (uniques < 2.0**64)
        return codes, [
            None if v != v else ("int", int(v)) if i else ("double", v)
            for v, i in zip(uniques.tolist(), integral.tolist(), strict=True)
        ]
    label = {"b": "bool", "i": "int", "u": "int", "U": "string"}[kind]
    return codes, [(label, v) for v in uniques.tolist()]


def _classify(value: Any) -> _ValueKey | None:
    """The ``(kind, value)`` an attribute is written as, or None when it is missing."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, int | np.integer):
        value = int(value)
        return ("int", value) if _SINT64_MIN <= value <= _UINT64_MAX else ("double", float(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return None
        if value.is_integer() and _SINT64_MIN <= value <= _UINT64_MAX:
            return ("int", int(value))
        return ("double", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, bytes):
        return ("string", value.decode("utf-8", "replace"))
    try:
        if value != value:  # NaT
            return None
    except (TypeError, ValueError):  # pandas.NA cannot say
        return None
    return ("string", str(value))


def _value_message(value: _ValueKey) -> bytes:
    """The Value message of one ``(kind, value)``."""
    kind, v = value
    if kind == "string":
        raw = v.encode("utf-8", "replace")
        return b"\x0a" + _varint(len(raw)) + raw
    if kind == "double":
        return b"\x19" + _DOUBLE(v)
    if kind == "bool":
        return b"\x38\x01" if v else b"\x38\x00"
    if v >= 0:
        return b"\x28" + _varint(v)  # uint_value
    return b"\x30" + _varint((-v << 1) - 1)  # sint_value, zigzag


def _tags_piece(codes: np.ndarray) -> _Piece:
    """Packed ``(key, value)`` index pairs of each feature, as a piece."""
    present = codes >= 0
    row, key = np.nonzero(present)
    pairs = np.column_stack([key, codes[row, key]]).reshape(-1)
    return _varint_piece(pairs, 2 * present.sum(axis=1))


# --- protobuf ----------------------------------------------------------------------------

_BYTE = [bytes((b,)) for b in range(128)]
_DOUBLE = struct.Struct("<d").pack


class _Piece(NamedTuple):
    """One part of each feature's message, for :func:`_interleave`.

    Attributes
    ----------
    data
        The bytes of all features.
    start
        Where each feature's bytes start in ``data``.
    length
        How many bytes each feature has (0 to leave the part out).
    """

    data: np.ndarray
    start: np.ndarray
    length: np.ndarray


def _varint(n: int) -> bytes:
    """The base-128 varint of a non-negative integer."""
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Base-128 varints of non-negative integers, concatenated, and the bytes of each."""
    v = np.asarray(values).astype(np.uint64)
    size = np.ones(len(v), np.int64)
    for k in range(1, 10):
        more = v >= np.uint64(1 << (7 * k))
        if not more.any():
            break
        size += more
    start = np.cumsum(size) - size
    out = np.empty(int(size.sum()), np.uint8)
    for k in range(int(size.max(initial=0))):
        at = np.flatnonzero(size > k)
        byte = (v[at] >> np.uint64(7 * k)) & np.uint64(0x7F)
        out[start[at] + k] = byte | (size[at] > k + 1).astype(np.uint64) << np.uint64(7)
    return out, size


def _varint_piece(values: np.ndarray, per_feature: np.ndarray) -> _Piece:
    """Packed varints, ``per_feature[i]`` of them for feature ``i``, as a piece.

    ``per_feature`` may be a boolean mask, for one optional varint per feature.
    """
    per_feature = np.asarray(per_feature).astype(np.int64)
    data, size = _varints(values)
    ends = np.concatenate([[0], np.cumsum(size)])
    last = np.cumsum(per_feature)
    start = ends[last - per_feature]
    return _Piece(data, start, ends[last] - start)


def _const_piece(byte: int | np.ndarray, n: int, present: np.ndarray | None = None) -> _Piece:
    """One byte per feature (the same or one each), left out where ``present`` is false."""
    data = np.broadcast_to(np.asarray(byte, dtype=np.uint8), (n,))
    length = np.ones(n, np.int64) if present is None else np.asarray(present).astype(np.int64)
    return _Piece(data, np.arange(n), length)


def _interleave(pieces: list[_Piece]) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's bytes of every piece in turn, features one after another.

    Returns
    -------
    data
        The bytes of feature 0 (piece 0, piece 1, ...), then of feature 1, ...
    size
        Bytes per feature.
    """
    lengths = np.column_stack([length for _, _, length in pieces])
    flat = lengths.reshape(-1)
    dest = (np.cumsum(flat) - flat).reshape(lengths.shape)
    out = np.empty(int(flat.sum()), np.uint8)
    for k, (data, start, length) in enumerate(pieces):
        total = int(length.sum())
        if not total:
            continue
        within = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
        out[np.repeat(dest[:, k], length) + within] = data[np.repeat(start, length) + within]
    return out, lengths.sum(axis=1)
