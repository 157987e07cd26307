"""What goes into a vector tile of each layer, and tiles cut in memory for the GeoPackage store.

Tiles carry codes and counts only. Each tileable layer has a list of the attributes it
shows, and of those only the columns :mod:`wangge.data.privacy` classes public: a tile is
one answer for every caller (cached once, served to anyone the deployment lets read), so
nothing restricted to a territory or to staff (names of responsible people, addresses,
per-building counts of vulnerable people, a gap's people) ever reaches one. Both stores
read the same lists, so a tile of the same version says the same thing from either.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from wangge.data.basemap import BASEMAP_FIELDS
from wangge.data.privacy import PUBLIC, class_of
from wangge.errors import NotFound
from wangge.maps import mvt
from wangge.maps.tile_grids import WEB_MERCATOR_QUAD, TileGrid

#: The attributes each layer shows in its tiles (those it has).
TILE_FIELDS: dict[str, tuple[str, ...]] = {
    "streets": ("code", "parent_code", "name", "households", "population", "area_km2"),
    "communities": ("code", "parent_code", "name", "households", "population", "area_km2"),
    "grids": (
        "code",
        "parent_code",
        "name",
        "households",
        "population",
        "area_km2",
        "flag",
        "grid_type",
        "deviation_pct",
    ),
    "microgrids": (
        "code",
        "parent_code",
        "name",
        "households",
        "population",
        "flag",
        "deviation_pct",
    ),
    "units": ("code", "parent_code", "grid_code", "building_id", "households"),
    "buildings": (
        "building_id",
        "building",
        "households",
        "levels",
        "estimated",
        "microgrid_code",
        "grid_code",
    ),
    "study_area": ("area_km2",),
    "risk_points": (
        "risk_id",
        "name",
        "category",
        "category_zh",
        "score",
        "level",
        "level_zh",
        "colour",
        "grid_code",
        "sample",
    ),
    "risk_zones": ("risk_id", "name", "category", "category_zh", "level", "colour", "sample"),
    "grid_risk": (
        "code",
        "name",
        "households",
        "n_red",
        "n_orange",
        "n_yellow",
        "n_blue",
        "score",
        "level",
        "colour",
        "exposed_households",
        "exposed_vulnerable",
        "gi_z",
        "hotspot",
        "sample",
    ),
    "facilities": (
        "facility_id",
        "name",
        "type",
        "type_zh",
        "capacity",
        "grid_code",
        "load",
        "over_capacity",
        "sample",
    ),
    "gaps": (
        "gap_id",
        "kind",
        "type",
        "type_zh",
        "level",
        "grid_code",
        "households",
        "distance_m",
        "reach_m",
        "sample",
    ),
    "grid_coverage": ("code", "name", "households", "uncovered_households", "missing"),
    "suggestions": ("type", "type_zh", "rank", "grid_code", "gain_households", "sample"),
    "candidates": ("candidate_id", "source", "grid_code"),
    "network_edges": ("highway", "length_m"),
    **BASEMAP_FIELDS,  # roads, water, green, rail, place names (issue 24)
}

#: Most features one layer puts in one tile; beyond it the largest are kept.
MAX_FEATURES = 20_000


def kind_of(dtype: str) -> str:
    """The MVT value kind of a stored column dtype: int, float, bool or text."""
    if dtype.startswith(("int", "uint")):
        return "int"
    if dtype.startswith("float"):
        return "float"
    if dtype == "bool":
        return "bool"
    return "text"


def tilejson_type(dtype: str) -> str:
    """The TileJSON ``vector_layers`` field type of a stored column dtype: Number, Boolean
    or String (the served TileJSON and an offline package's metadata say the same)."""
    return {"int": "Number", "float": "Number", "bool": "Boolean"}.get(kind_of(dtype), "String")


def tile_fields(layer: str, columns: tuple[str, ...], dtypes: dict[str, str]) -> list[tuple]:
    """The (column, kind) pairs a layer's tiles carry, in the order of :data:`TILE_FIELDS`:
    those the layer has and :mod:`wangge.data.privacy` classes public."""
    if layer not in TILE_FIELDS:
        raise NotFound(
            f"layer {layer!r} is not served as tiles; these are: {', '.join(sorted(TILE_FIELDS))}",
            where="layer",
        )
    return [
        (c, kind_of(dtypes.get(c, "object")))
        for c in TILE_FIELDS[layer]
        if c in columns and class_of(layer, c) == PUBLIC
    ]


@dataclass(frozen=True)
class TileRequest:
    """One tile of one layer: ``z/x/y`` is level, column and row of ``grid``."""

    layer: str
    z: int
    x: int
    y: int
    max_features: int = MAX_FEATURES
    extent: int = 4096
    buffer: int = 64
    grid: TileGrid = WEB_MERCATOR_QUAD


class MemoryLayer:
    """A layer held in Web Mercator with an STRtree, cut into tiles by :mod:`maps.mvt`.

    A tile of another grid (CGCS2000Quad) is cut from the layer's lon/lat geometries,
    indexed on first use (:mod:`wangge.maps.tile_grids` says why they are taken as
    they are)."""

    def __init__(self, frame: gpd.GeoDataFrame, fields: list[tuple[str, str]]):
        has = frame.geometry.notna().to_numpy() & ~shapely.is_empty(frame.geometry.to_numpy())
        frame = frame[has]
        merc = frame.geometry.to_crs(3857).to_numpy()
        self.geoms = merc
        self.tree = shapely.STRtree(merc)
        self.fields = fields
        self.columns = {c: _values(frame[c].to_numpy(), kind) for c, kind in fields}
        self._lonlat = frame.geometry.to_numpy()
        self._other: dict[int, tuple[np.ndarray, shapely.STRtree]] = {}

    def _indexed(self, grid: TileGrid) -> tuple[np.ndarray, shapely.STRtree]:
        """The geometries in ``grid``'s CRS and their index."""
        if grid.epsg == 3857:
            return self.geoms, self.tree
        if grid.epsg not in self._other:  # a race builds it twice, harmlessly
            self._other[grid.epsg] = (self._lonlat, shapely.STRtree(self._lonlat))
        return self._other[grid.epsg]

    def render(self, req: TileRequest) -> bytes:
        geoms, tree = self._indexed(req.grid)
        x0, y0, x1, y1 = req.grid.bounds(req.z, req.x, req.y)
        pad = (x1 - x0) * req.buffer / req.extent
        hit = np.sort(tree.query(shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)))
        if not len(hit):
            return b""
        props = {c: values[hit] for c, values in self.columns.items()}
        layer = mvt.Layer(req.layer, geoms[hit], props)
        return mvt.encode(
            [layer],
            req.z,
            req.x,
            req.y,
            extent=req.extent,
            buffer=req.buffer,
            max_features=req.max_features,
            grid=req.grid,
        )


def _values(values: np.ndarray, kind: str) -> np.ndarray:
    """A column as the encoder wants it: numbers as numbers, missing as None."""
    out = np.asarray(values, dtype=object)
    if kind == "int":
        return np.array([None if v is None else int(v) for v in out], dtype=object)
    if kind == "float":
        return np.array(
            [None if v is None or v != v else float(v) for v in out],  # NaN != NaN
            dtype=object,
        )
    if kind == "bool":
        return np.array([None if v is None else bool(v) for v in out], dtype=object)
    return np.array(
        [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in out],
        dtype=object,
    )


class MemoryTiles:
    """Layers kept in memory by (plan, version holding the rows, layer), built once each.

    Keyed by the version that holds a layer's rows, a layer an edit kept is shared by
    every version that kept it.
    """

    def __init__(self, keep: int = 32):
        self._layers: dict[tuple[str, int, str], MemoryLayer] = {}
        self._keep = keep
        self._lock = threading.Lock()
        self._building: dict[tuple[str, int, str], threading.Lock] = {}

    def get(self, key: tuple[str, int, str], build) -> MemoryLayer:
        layer = self._layers.get(key)
        if layer is not None:
            return layer
        with self._lock:
            gate = self._building.setdefault(key, threading.Lock())
        with gate:  # one build per layer, however many requests wait for it
            layer = self._layers.get(key)
            if layer is None:
                layer = build()
                with self._lock:
                    while len(self._layers) >= self._keep:
                        self._layers.pop(next(iter(self._layers)))
                    self._layers[key] = layer
                    self._building.pop(key, None)
        return layer
