"""Mapbox Vector Tile (MVT 2.1) encoding of shapely geometries, vectorised with numpy.

The tile server finds the features of a layer that meet a tile and hands them here as
shapely arrays. Everything per vertex (clipping, simplification, quantisation to the tile
grid, ring orientation, zigzag deltas and varints) runs as whole-array numpy and shapely
operations; Python loops only over layers, columns and distinct attribute values. This
module holds each layer's attribute table and the assembly of its Layer message (tiles
are cut in a grid of :mod:`wangge.maps.tile_grids`: WebMercatorQuad, EPSG:3857, unless
told otherwise); the geometry steps are :mod:`wangge.maps._mvt_geometry`, the wire format
:mod:`wangge.maps._mvt_protobuf`.

The protobuf wire format is written directly (no protobuf library)::

    Tile    { repeated Layer layers = 3 }
    Layer   { name = 1; features = 2; keys = 3; values = 4; extent = 5; version = 15 }
    Feature { id = 1; tags = 2 [packed]; type = 3; geometry = 4 [packed] }
    Value   { string = 1; float = 2; double = 3; int = 4; uint = 5; sint = 6; bool = 7 }

References: https://github.com/mapbox/vector-tile-spec/tree/master/2.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from wangge.maps import _mvt_geometry as _geom
from wangge.maps import _mvt_protobuf as _wire
from wangge.maps._mvt_protobuf import ValueKey
from wangge.maps.tile_grids import ORIGIN_SHIFT, WEB_MERCATOR_QUAD, TileGrid

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

#: Geometry types of the spec (``Tile.GeomType``).
POINT, LINESTRING, POLYGON = 1, 2, 3

# The geometry type of a feature, by the dimension of its shapely geometry (0, 1, 2).
_GEOM_TYPE = np.array([POINT, LINESTRING, POLYGON], np.uint8)

_UINT64_MAX = 2**64 - 1
_SINT64_MIN = -(2**63)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """EPSG:3857 bounds of the XYZ tile ``z/x/y`` (row ``y = 0`` at the north edge).

    This is the slippy-map (Google) tile scheme, as in PostGIS ``ST_TileEnvelope``:
    WebMercatorQuad's :meth:`~wangge.maps.tile_grids.TileGrid.bounds`, so neighbouring
    tiles share exactly equal edges. ValueError for a tile the scheme does not have.
    """
    return WEB_MERCATOR_QUAD.bounds(z, x, y)


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
    return WEB_MERCATOR_QUAD.tolerance(z, extent)


@dataclass(frozen=True)
class Layer:
    """One named layer of a tile: geometries in the tile grid's CRS and their attributes.

    Attributes
    ----------
    name
        Layer name, unique within a tile.
    geoms
        Shapely geometries in the grid's CRS (EPSG:3857 metres for WebMercatorQuad);
        ``None`` and empty geometries are skipped.
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
    grid: TileGrid = WEB_MERCATOR_QUAD,
) -> bytes:
    """Encode layers of geometries as the MVT bytes of tile ``z/x/y`` of ``grid``.

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
    grid
        The tile grid ``z/x/y`` is a tile of (level, column, row), whose CRS the
        geometries are in.

    Returns
    -------
    bytes
        The tile; ``b""`` (a valid empty tile) when no layer has a feature in it.
    """
    return encode_with_stats(layers, z, x, y, extent, buffer, simplify, max_features, grid)[0]


def encode_with_stats(
    layers: list[Layer],
    z: int,
    x: int,
    y: int,
    extent: int = 4096,
    buffer: int = 64,
    simplify: bool = True,
    max_features: int | None = None,
    grid: TileGrid = WEB_MERCATOR_QUAD,
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
    grid
        The tile grid ``z/x/y`` is a tile of, whose CRS the geometries are in: its
        bounds and its tolerance (:meth:`~wangge.maps.tile_grids.TileGrid.tolerance`)
        replace :func:`tile_bounds` and :func:`simplify_tolerance`.

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
    bounds = grid.bounds(z, x, y)
    tolerance = grid.tolerance(z, extent) if simplify else 0.0
    tile: list[bytes] = []
    stats: dict[str, LayerStats] = {}
    for layer in layers:
        message, stats[layer.name] = _encode_layer(
            layer, bounds, extent, buffer, tolerance, max_features
        )
        if message:
            tile += [b"\x1a", _wire.varint(len(message)), message]
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
    rows, clipped, dims = _geom.clip(geoms, bounds, extent, buffer)
    parts, owner = _geom.simplified_parts(clipped, dims, tolerance)
    paths = _geom.quantise(*_geom.split_paths(parts, owner, dims), bounds, extent)
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
    geometry = _wire.varint_piece(*_geom.commands(paths))
    keys, values, codes = _tag_codes(layer.properties, source)
    tags = _wire.tags_piece(codes)
    has_tags = tags.length > 0
    pieces = []
    if layer.ids is not None:
        pieces += [_wire.const_piece(0x08, n), _wire.varint_piece(_ids(layer.ids)[source], one)]
    pieces += [
        _wire.const_piece(0x12, n, has_tags),
        _wire.varint_piece(tags.length[has_tags], has_tags),
        tags,
        _wire.const_piece(0x18, n),
        _wire.const_piece(_GEOM_TYPE[paths.kind[first]], n),
        _wire.const_piece(0x22, n),
        _wire.varint_piece(geometry.length, one),
        geometry,
    ]
    body, body_size = _wire.interleave(pieces)
    body_start = np.cumsum(body_size) - body_size
    framed, _ = _wire.interleave(  # Layer.features = 2, one framed Feature each
        [
            _wire.const_piece(0x12, n),
            _wire.varint_piece(body_size, one),
            _wire.Piece(body, body_start, body_size),
        ]
    )
    name = layer.name.encode()
    message = [b"\x0a", _wire.varint(len(name)), name, framed.tobytes()]
    for key in keys:
        raw = key.encode("utf-8", "replace")
        message += [b"\x1a", _wire.varint(len(raw)), raw]
    for value in values:
        raw = _wire.value_message(value)
        message += [b"\x22", _wire.varint(len(raw)), raw]
    message += [b"\x28", _wire.varint(extent), b"\x78\x02"]
    return b"".join(message), LayerStats(n, dropped, empty)


def _ids(ids: np.ndarray | list) -> np.ndarray:
    """Feature ids as uint64, refusing negative or fractional ones."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"feature ids must be integers, not {ids.dtype}")
    if ids.dtype.kind == "i" and (ids < 0).any():
        raise ValueError(f"feature ids must not be negative: {ids[ids < 0][:5]}")
    return ids.astype(np.uint64)


# --- attributes --------------------------------------------------------------------------


def _tag_codes(
    properties: dict[str, np.ndarray | list], rows: np.ndarray
) -> tuple[list[str], list[ValueKey], np.ndarray]:
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
    lookup: dict[ValueKey, int] = {}
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


def _factorize(column: np.ndarray) -> tuple[np.ndarray, list[ValueKey | None]]:
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


def _classify(value: Any) -> ValueKey | None:
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
