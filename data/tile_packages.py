"""Offline tile packages: a plan version's vector tiles in one PMTiles or MBTiles archive.

A grid worker (网格员) with poor signal, or a static web server with no wangge behind it,
needs the plan's tiles in one file. A package holds, for every zoom of its range (10–17 by
default: the district to one compound), every tile that a feature of the plan meets, as
one Mapbox Vector Tile with one MVT layer per plan layer. Each layer is cut by the code
that serves ``/tiles/{layer}/{z}/{x}/{y}.mvt`` (:class:`wangge.data.tiles.MemoryLayer`
over :mod:`wangge.maps.mvt`) from the same attributes (:func:`wangge.data.tiles.tile_fields`:
public columns only), so a package's layer says what the served tile says. Tiles are
gzip-compressed, as PMTiles v3 (``tile_compression`` gzip) and MBTiles 1.3 (``pbf``)
expect; the metadata carries ``vector_layers``, the plan's credit (OpenStreetMap's, and a
sample-data note where the plan holds generated samples) and the grid band the style
colours by. An archive is written beside its target and renamed into place, so a failed
export never leaves half a file under the name asked for.

What goes in is listed by one function, :func:`package_layers`: the plan's own tiled
layers and, beneath them, its basemap (:mod:`wangge.data.basemap`: roads with their names,
water, green, rail, place names), and every other step takes the list as it comes.

Made with a key, a package holds only its account's territory (属地管理): the features
:func:`wangge.data.privacy.in_territory` places there, the rule the API reads for every
answer; an admin's key, and the holder of the store on the command line, get the whole
plan. A file carried into the field leaves every access check behind, so it carries no
more than its holder's own ground.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data import privacy
from wangge.data.basemap import BASEMAP_LAYERS
from wangge.data.osm import credit_of
from wangge.data.samples import SAMPLE_NOTE
from wangge.data.store import Store, Version
from wangge.data.tiles import (
    MAX_FEATURES,
    TILE_FIELDS,
    MemoryLayer,
    TileRequest,
    tile_fields,
    tilejson_type,
)
from wangge.errors import InputError
from wangge.maps.mvt import ORIGIN_SHIFT

PACKAGE_FORMATS = ("pmtiles", "mbtiles")
SUFFIXES = {"pmtiles": "pmtiles", "mbtiles": "mbtiles"}
#: The district (z10, a tile ~30 km across) to one compound (z17, ~250 m).
DEFAULT_ZOOMS = (10, 17)
#: Beyond this a map over-zooms the z20 tile: deeper levels only repeat it, bigger.
MAX_ZOOM = 20
#: Most tiles one package may hold: a city at z17 is ~10^4–10^5; more means a range
#: asked for by mistake, refused before any tile is cut.
MAX_TILES = 500_000
#: The order layers are listed in (beneath first, as a map draws them); a layer not
#: listed follows, by name.
DRAW_ORDER = (
    *BASEMAP_LAYERS,
    "study_area",
    "network_edges",
    "buildings",
    "units",
    "grid_coverage",
    "grid_risk",
    "grids",
    "microgrids",
    "communities",
    "streets",
    "risk_zones",
    "gaps",
    "candidates",
    "suggestions",
    "facilities",
    "risk_points",
)


@dataclass(frozen=True)
class PackageLayer:
    """One layer that goes into a package: its features and the attributes tiles carry.

    Attributes
    ----------
    name
        The MVT layer's name (the plan layer's).
    frame
        Its features in WGS84, already cut to the reader's territory.
    fields
        ``(column, kind)`` pairs, as :func:`wangge.data.tiles.tile_fields` gives them.
    dtypes
        The stored dtypes of those columns (for the metadata's field types).
    group
        ``plan`` for the plan's own layers; ``basemap`` for what a basemap adds.
    """

    name: str
    frame: gpd.GeoDataFrame
    fields: list[tuple[str, str]]
    dtypes: dict[str, str]
    group: str = "plan"


@dataclass(frozen=True)
class Package:
    """An archive written: where, what it holds, and its metadata."""

    path: Path
    format: str
    tiles: int
    size: int
    features: dict[str, int]
    metadata: dict[str, Any]
    seconds: float


def check_zooms(min_zoom: int, max_zoom: int) -> tuple[int, int]:
    """The zoom range, refused with a message naming the bound that is wrong."""
    for name, z in (("min_zoom", min_zoom), ("max_zoom", max_zoom)):
        if not isinstance(z, (int, np.integer)) or not 0 <= z <= MAX_ZOOM:
            raise InputError(f"zoom {z!r} is outside 0–{MAX_ZOOM}", where=name)
    if min_zoom > max_zoom:
        raise InputError(
            f"zoom range {min_zoom}–{max_zoom} is inverted: min_zoom must not exceed max_zoom",
            where="min_zoom",
        )
    return int(min_zoom), int(max_zoom)


def check_format(fmt: str) -> str:
    """``pmtiles`` or ``mbtiles`` (any case), else an error listing them."""
    key = str(fmt).strip().lower()
    if key not in PACKAGE_FORMATS:
        raise InputError(
            f"unknown package format {fmt!r}; use one of {', '.join(PACKAGE_FORMATS)}",
            where="format",
        )
    return key


def package_layers(
    store: Store,
    v: Version,
    reader: privacy.Reader = privacy.EVERYTHING,
    names: list[str] | None = None,
) -> list[PackageLayer]:
    """Everything that goes into a package of version ``v``, beneath first.

    This is the one list of what a package holds: the version's tiled layers (those of
    :data:`wangge.data.tiles.TILE_FIELDS` with a geometry), each cut to ``reader``'s
    territory, and its basemap layers (group ``basemap``). The basemap is public, so a
    key's package holds the part of it around the key's territory (its box grown by
    :data:`BASEMAP_MARGIN_DEG`), not the district's; the tiles, the metadata and the
    style take whatever this returns.

    Parameters
    ----------
    store
        The store holding the plan.
    v
        The version (``store.resolve``).
    reader
        Whose package: :data:`wangge.data.privacy.EVERYTHING` (the store's holder, an
        admin) or an account's reader, whose package holds its territory only.
    names
        Only these layers (default: every tiled layer the version has).

    Returns
    -------
    list of PackageLayer
        The layers with at least one feature for ``reader``.

    Raises
    ------
    InputError
        A name that is not a tiled layer of the version (listing those that are), or
        nothing at all for ``reader`` (an account whose territory holds no feature).
    """
    infos = {
        n: i
        for n, i in store.layer_infos(v.plan_id, v.version).items()
        if n in TILE_FIELDS and i.geometry_type
    }
    wanted = list(infos) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in infos]
    if unknown:
        raise InputError(
            f"no tiled layer {', '.join(map(repr, unknown))} in plan {v.plan_id!r} version "
            f"{v.version}; these are: {', '.join(sorted(infos))}",
            where="layer",
        )
    rank = {n: i for i, n in enumerate(DRAW_ORDER)}
    out = []
    for name in [n for n in wanted if n not in BASEMAP_LAYERS]:
        frame = store.query(v.plan_id, v.version, name).frame
        frame = frame[privacy.in_territory(name, frame, reader)]
        if len(frame):
            out.append(_layer(store, v, name, infos[name], frame, "plan"))
    if out or reader.everything:
        box = None if reader.everything else tuple(_around([layer.frame for layer in out]))
        for name in [n for n in wanted if n in BASEMAP_LAYERS]:
            frame = store.query(v.plan_id, v.version, name, bbox=box).frame
            if len(frame):
                out.append(_layer(store, v, name, infos[name], frame, "basemap"))
    if not out:
        who = reader.account.name if reader.account is not None else "this reader"
        scopes = ", ".join(reader.account.scopes) if reader.account is not None else ""
        raise InputError(
            f"the territory of account {who!r} ({scopes or 'no scope'}) holds no feature of "
            f"plan {v.plan_id!r} version {v.version}; a package made with a key holds only "
            "the key's territory",
            where="key",
        )
    out.sort(key=lambda layer: (rank.get(layer.name, len(rank)), layer.name))
    return out


#: How far beyond a key's territory its package's basemap reaches (about 300 m).
BASEMAP_MARGIN_DEG = 0.003


def _layer(store: Store, v: Version, name: str, info, frame, group: str) -> PackageLayer:
    dtypes = store.dtypes(v.plan_id, v.version, name)
    return PackageLayer(name, frame, tile_fields(name, info.columns, dtypes), dtypes, group)


def _around(frames: list[gpd.GeoDataFrame]) -> np.ndarray:
    """The box (WGS84) round ``frames``, grown by :data:`BASEMAP_MARGIN_DEG`."""
    boxes = np.array([f.total_bounds for f in frames], dtype=float)
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    lo, hi = boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)
    return np.concatenate([lo - BASEMAP_MARGIN_DEG, hi + BASEMAP_MARGIN_DEG])


def write_package(
    store: Store,
    path: Path,
    fmt: str = "pmtiles",
    plan_id: str | None = None,
    version: int | None = None,
    reader: privacy.Reader = privacy.EVERYTHING,
    min_zoom: int = DEFAULT_ZOOMS[0],
    max_zoom: int = DEFAULT_ZOOMS[1],
    layers: list[str] | None = None,
    max_features: int = MAX_FEATURES,
) -> Package:
    """Write a plan version's tiles into one PMTiles v3 or MBTiles 1.3 archive.

    Parameters
    ----------
    store
        The store holding the plan.
    path
        The archive to write (replaced whole once it is complete).
    fmt
        One of :data:`PACKAGE_FORMATS`.
    plan_id, version
        The plan and version (default: the newest plan, its latest version).
    reader
        Whose package (see :func:`package_layers`).
    min_zoom, max_zoom
        The zoom range, both included (0–:data:`MAX_ZOOM`).
    layers
        Only these layers (default: all).
    max_features
        Most features one layer puts in one tile, as the server's ``tile_max_features``.

    Returns
    -------
    Package
        The path, the number of tiles, the size, the features per layer and the metadata.

    Raises
    ------
    InputError
        An unknown format, a bad zoom range, an unknown layer, an empty territory, or a
        range holding more than :data:`MAX_TILES` tiles.
    NotFound
        No such plan or version (naming it).
    """
    start = time.perf_counter()
    fmt = check_format(fmt)
    min_zoom, max_zoom = check_zooms(min_zoom, max_zoom)
    v = store.resolve(plan_id, version)
    chosen = package_layers(store, v, reader, layers)
    cut = [_Cutter(layer, max_features) for layer in chosen]
    bounds = _merc_bounds([c.bounds for c in cut])
    _check_count(bounds, min_zoom, max_zoom)
    tiles = _tiles(cut, bounds, min_zoom, max_zoom)
    metadata = _metadata(store, v, chosen, reader, min_zoom, max_zoom)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write = _write_pmtiles if fmt == "pmtiles" else _write_mbtiles
    count = _atomic(path, lambda tmp: write(tmp, tiles, metadata))
    return Package(
        path,
        fmt,
        count,
        path.stat().st_size,
        {layer.name: len(layer.frame) for layer in chosen},
        metadata,
        time.perf_counter() - start,
    )


# tiles -----------------------------------------------------------------------------------


class _Cutter:
    """One layer held as the GeoPackage store holds it for serving, cut tile by tile."""

    def __init__(self, layer: PackageLayer, max_features: int):
        self.name = layer.name
        self.memory = MemoryLayer(layer.frame, layer.fields)
        self.max_features = max_features
        geoms = self.memory.geoms
        self.bounds = tuple(np.asarray(gpd.GeoSeries(geoms).total_bounds, dtype=float))

    def render(self, z: int, x: int, y: int) -> bytes:
        return self.memory.render(TileRequest(self.name, z, x, y, self.max_features))


def _merc_bounds(boxes: list[tuple]) -> tuple[float, float, float, float]:
    arr = np.array([b for b in boxes if np.isfinite(b).all()], dtype=float)
    return arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max()


def _tile_range(bounds: tuple, z: int) -> tuple[int, int, int, int]:
    """Columns and rows ``(x0, y0, x1, y1)`` of the XYZ tiles at ``z`` over Web Mercator
    ``bounds`` (rows from the north, as :func:`wangge.maps.mvt.tile_bounds`)."""
    n = 1 << z
    size = 2 * ORIGIN_SHIFT / n

    def col(mx: float) -> int:
        return min(max(math.floor((mx + ORIGIN_SHIFT) / size), 0), n - 1)

    def row(my: float) -> int:
        return min(max(math.floor((ORIGIN_SHIFT - my) / size), 0), n - 1)

    return col(bounds[0]), row(bounds[3]), col(bounds[2]), row(bounds[1])


def _check_count(bounds: tuple, min_zoom: int, max_zoom: int) -> None:
    total = 0
    for z in range(min_zoom, max_zoom + 1):
        x0, y0, x1, y1 = _tile_range(bounds, z)
        total += (x1 - x0 + 1) * (y1 - y0 + 1)
    if total > MAX_TILES:
        raise InputError(
            f"zooms {min_zoom}–{max_zoom} over this plan are {total:,} tiles, more than "
            f"{MAX_TILES:,}; lower max_zoom",
            where="max_zoom",
        )


def _tiles(cut: list[_Cutter], bounds: tuple, min_zoom: int, max_zoom: int) -> Iterator[tuple]:
    """``(z, x, y, gzipped tile)`` for every tile some layer has a feature in. The layers'
    tiles are joined as bytes: a Tile message is its repeated ``layers`` field, so the
    concatenation of one-layer tiles is the tile holding all of them (protobuf merges a
    repeated field written in parts)."""
    for z in range(min_zoom, max_zoom + 1):
        x0, y0, x1, y1 = _tile_range(bounds, z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                data = b"".join(c.render(z, x, y) for c in cut)
                if data:
                    yield z, x, y, gzip.compress(data, compresslevel=6, mtime=0)


# metadata ----------------------------------------------------------------------------------


def _metadata(
    store: Store,
    v: Version,
    chosen: list[PackageLayer],
    reader: privacy.Reader,
    min_zoom: int,
    max_zoom: int,
) -> dict[str, Any]:
    """PMTiles/TileJSON metadata: the layers and their fields, the credit, the bounds, and
    under ``wangge`` the plan, version, scope and the grid band the style colours by."""
    from wangge.data.plan import read_stored

    lon0, lat0, lon1, lat1 = _lonlat_bounds(chosen)
    sample = any(_sample(layer.frame) for layer in chosen)
    credit = credit_of(v.meta) + (f"; {SAMPLE_NOTE}" if sample else "")
    band = read_stored(store, resolved=v).limits.grid
    account = reader.account
    scope = list(account.scopes) if account is not None and not reader.everything else None
    layers = [
        {
            "id": layer.name,
            "fields": {c: tilejson_type(layer.dtypes.get(c, "object")) for c, _ in layer.fields},
            "minzoom": min_zoom,
            "maxzoom": max_zoom,
            "description": f"{layer.group} layer {layer.name}: {len(layer.frame):,} features",
        }
        for layer in chosen
    ]
    return {
        "name": f"wangge {v.plan_id} v{v.version}",
        "description": f"网格 plan {v.plan_id} version {v.version} ({v.created_at[:10]})"
        + (f", territory {', '.join(scope)}" if scope else ""),
        "attribution": credit,
        "version": str(v.version),
        "type": "overlay",
        "format": "pbf",
        "minzoom": min_zoom,
        "maxzoom": max_zoom,
        "bounds": [lon0, lat0, lon1, lat1],
        "center": [(lon0 + lon1) / 2, (lat0 + lat1) / 2, min(max(14, min_zoom), max_zoom)],
        "vector_layers": layers,
        "wangge": {
            "plan": v.plan_id,
            "version": v.version,
            "account": account.name if account is not None else None,
            "scope": scope,
            "sample": sample,
            "grid_band": [band.lo, band.hi],
            "features": {layer.name: len(layer.frame) for layer in chosen},
            "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }


def _lonlat_bounds(chosen: list[PackageLayer]) -> tuple[float, float, float, float]:
    boxes = np.array([layer.frame.total_bounds for layer in chosen], dtype=float)
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    return tuple(
        round(float(b), 7)
        for b in (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
    )


def _sample(frame: pd.DataFrame) -> bool:
    """Whether a layer holds generated sample data (its ``sample`` column is true)."""
    from wangge.maps.webmap import has_sample

    return "sample" in frame and has_sample(frame[["sample"]])


# writers -----------------------------------------------------------------------------------


def _atomic(path: Path, write) -> int:
    """Write to a temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        count = write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _write_pmtiles(path: Path, tiles: Iterator[tuple], metadata: dict[str, Any]) -> int:
    """PMTiles v3 with the ``pmtiles`` library's writer: tiles in tile-id order (a
    clustered archive), identical tiles stored once."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    by_id = sorted((zxy_to_tileid(z, x, y), data) for z, x, y, data in tiles)
    if not by_id:
        raise InputError("no tile holds a feature in this zoom range", where="max_zoom")
    lon0, lat0, lon1, lat1 = metadata["bounds"]
    lon, lat, zoom = metadata["center"]
    header = {
        "tile_type": TileType.MVT,
        "tile_compression": Compression.GZIP,
        "min_lon_e7": int(lon0 * 1e7),
        "min_lat_e7": int(lat0 * 1e7),
        "max_lon_e7": int(lon1 * 1e7),
        "max_lat_e7": int(lat1 * 1e7),
        "center_zoom": int(zoom),
        "center_lon_e7": int(lon * 1e7),
        "center_lat_e7": int(lat * 1e7),
    }
    with write(str(path)) as writer:
        for tile_id, data in by_id:
            writer.write_tile(tile_id, data)
        writer.finalize(header, metadata)
    return len(by_id)


#: MBTiles 1.3's two tables, and the index a reader looks tiles up by.
_MBTILES_SCHEMA = """
CREATE TABLE metadata (name TEXT, value TEXT);
CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
CREATE UNIQUE INDEX metadata_index ON metadata (name);
"""


def _write_mbtiles(path: Path, tiles: Iterator[tuple], metadata: dict[str, Any]) -> int:
    """MBTiles 1.3: rows counted from the south (TMS), ``format`` pbf with gzipped
    tiles, the vector layers in the ``json`` row."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(_MBTILES_SCHEMA)
        rows = ((z, x, (1 << z) - 1 - y, sqlite3.Binary(data)) for z, x, y, data in tiles)
        conn.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
        (count,) = conn.execute("SELECT count(*) FROM tiles").fetchone()
        if not count:
            raise InputError("no tile holds a feature in this zoom range", where="max_zoom")
        plain = {k: metadata[k] for k in ("name", "description", "attribution", "version")}
        plain.update(
            {
                "format": "pbf",
                "type": metadata["type"],
                "minzoom": str(metadata["minzoom"]),
                "maxzoom": str(metadata["maxzoom"]),
                "bounds": ",".join(map(str, metadata["bounds"])),
                "center": ",".join(map(str, metadata["center"])),
                "json": json.dumps(
                    {"vector_layers": metadata["vector_layers"], "wangge": metadata["wangge"]},
                    ensure_ascii=False,
                ),
            }
        )
        conn.executemany("INSERT INTO metadata VALUES (?, ?)", plain.items())
        conn.commit()
    finally:
        conn.close()
    return count


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata of a package wangge wrote (PMTiles or MBTiles), as :func:`write_package`
    made it: what the style and the viewer are built from."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such package file", path)
    if path.suffix.lower() == ".mbtiles":
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
        finally:
            conn.close()
        out: dict[str, Any] = {**rows, **json.loads(rows.pop("json", "{}"))}
        out["bounds"] = [float(b) for b in rows["bounds"].split(",")]
        out["center"] = [float(c) for c in rows["center"].split(",")]
        out["minzoom"], out["maxzoom"] = int(rows["minzoom"]), int(rows["maxzoom"])
        return out
    from pmtiles.reader import MmapSource, Reader

    with open(path, "rb") as f:
        return Reader(MmapSource(f)).metadata()
