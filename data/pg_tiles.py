"""The PostGIS store's tile query: one statement per layer shape, compiled once to SQL
text, prepared on each connection, and connections made ready before the first tile.

A cache miss is one round trip: ``ST_AsMVTGeom`` clips, quantises (and below z16
simplifies) each feature found through the GiST index of the layer's version, and
``ST_AsMVT`` encodes the tile, as tipg does. What a miss costs beyond that query is kept
out of the request:

- The statement is built from GeoAlchemy2's functions once per layer shape (its fields,
  whether a cap can apply, the grid's CRS) and compiled once to psycopg's SQL text; a
  tile runs that text on the driver connection with ``prepare=True``, so PostgreSQL
  plans it once per connection and SQLAlchemy's per-execution work is skipped.
- Simplification is a ``CASE`` on the tolerance, so the zooms with and without it share
  one statement (a z16 tile after z15 ones finds it compiled and prepared).
- Rows whose geometry ``ST_AsMVTGeom`` drops are not filtered out by a ``WHERE`` on its
  result: PostgreSQL pushes such a filter into the scan and evaluates the clip twice per
  row; ``ST_AsMVT`` skips a NULL geometry with its attributes (the capped path sorts the
  NULLs last instead).
- The statement keeps its generic plan (``plan_cache_mode``, set on the store's tile
  connections alone): left to choose, PostgreSQL plans every execution afresh for the
  tile's envelope, which at z16 costs about as much as cutting the tile, and arrives at
  the plan the generic one is anyway (the GiST index on plan, version, layer and geometry).
- The span's versions go as int4, the column's type, so the GiST index narrows to them
  (psycopg sends a small Python int as int2, which the index cannot use).
- :func:`warm` gives a few pooled connections what a first tile would otherwise pay on
  them, about 40 ms each (loading PostGIS and PROJ in the backend, preparing each
  layer's statement): a new server does it before it reports ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg.types.numeric import Int4

from wangge.data.tiles import TileRequest

#: Server options of the store's tile connections: prepared tile statements keep their
#: generic plan instead of being planned again for every tile.
OPTIONS = "-c plan_cache_mode=force_generic_plan"

#: Parameters of the span (data/spans.rows_filter) sent as int4, the version column's type.
_VERSION_PARAMS = ("wg_stage", "wg_since", "wg_upto")


@dataclass(frozen=True)
class TileSql:
    """A layer shape's tile query as psycopg SQL text and the values compiled into it."""

    text: str
    constants: dict[str, Any]

    def args(self, plan_id: str, req: TileRequest, span_params: dict[str, int]) -> dict:
        """The statement's parameters for one tile: its envelope in its grid, the tile
        and its buffer in WGS84 (the rows' CRS, for the index), the span's versions."""
        bounds = req.grid.bounds(req.z, req.x, req.y)
        pad = (bounds[2] - bounds[0]) * req.buffer / req.extent
        grown = (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)
        return {
            **self.constants,
            **{k: Int4(v) if k in _VERSION_PARAMS else v for k, v in span_params.items()},
            **dict(zip(("minx", "miny", "maxx", "maxy"), bounds, strict=True)),
            **dict(zip(("west", "south", "east", "north"), req.grid.to_lonlat(grown), strict=True)),
            "plan": plan_id,
            "layer": req.layer,
            "tolerance": req.grid.tolerance(req.z, req.extent),
            "cap": req.max_features,
        }


def compile_tile_sql(
    features: sa.Table,
    dialect: sa.Dialect,
    layer: str,
    fields: list[tuple[str, str]],
    capped: bool,
    req: TileRequest,
    span: str,
) -> TileSql:
    """The tile query for one layer shape, compiled for ``dialect`` (psycopg's)."""
    stmt = tile_statement(features, layer, fields, capped, req, span)
    compiled = stmt.compile(dialect=dialect)
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    return TileSql(str(compiled), constants)


def tile_statement(
    features: sa.Table,
    layer: str,
    fields: list[tuple[str, str]],
    capped: bool,
    req: TileRequest,
    span: str,
) -> sa.Select:
    """The tile query for one layer shape, with bind parameters for the tile, plan and
    version (:meth:`TileSql.args`)."""
    f = features
    corners = (sa.bindparam(n, type_=sa.Float) for n in ("minx", "miny", "maxx", "maxy"))
    env = sa.func.ST_MakeEnvelope(*corners, req.grid.epsg)
    lonlat = (sa.bindparam(n, type_=sa.Float) for n in ("west", "south", "east", "north"))
    grown = sa.func.ST_MakeEnvelope(*lonlat, 4326)  # the tile and its buffer, in WGS84
    if req.grid.epsg == 4490:  # CGCS2000 takes WGS84's numbers (maps/tile_grids.py)
        merc = sa.func.ST_SetSRID(f.c.geom, 4490)
    else:
        merc = sa.func.ST_Transform(f.c.geom, req.grid.epsg)
    tolerance = sa.bindparam("tolerance", type_=sa.Float)
    merc = sa.case((tolerance > 0, sa.func.ST_Simplify(merc, tolerance, True)), else_=merc)
    columns = [
        sa.func.ST_AsMVTGeom(merc, env, req.extent, req.buffer, True).label("geom"),
        *(_tile_value(f, name, kind).label(name) for name, kind in fields),
    ]
    rows = (
        sa.select(*columns)
        .where(
            (f.c.plan_id == sa.bindparam("plan"))
            & (f.c.layer == sa.bindparam("layer"))
            & sa.text(span)
            & f.c.geom.op("&&")(grown)
        )
        # features in code order, so a tile's bytes (and its ETag) depend on what it shows,
        # not on where a version's rows happen to lie: after an edit rewrote the layer,
        # tiles the edit never touched came back reordered, with new ETags
        .order_by(f.c.code, f.c.fid)
        .subquery("t")
    )
    if capped:  # only a layer that can overflow pays the sort (dropped geometries last)
        rows = (
            sa.select(rows)
            .order_by(sa.func.ST_Area(rows.c.geom).desc().nulls_last())
            .limit(sa.bindparam("cap", type_=sa.Integer))
            .subquery("c")
        )
    # no WHERE geom IS NOT NULL: ST_AsMVT skips those rows, and the filter would be pushed
    # into the scan, clipping every feature twice
    mvt = sa.func.ST_AsMVT(sa.literal_column(rows.name), layer, req.extent, "geom")
    return sa.select(mvt).select_from(rows)


def _tile_value(f: sa.Table, name: str, kind: str) -> sa.ColumnElement:
    """A tile attribute: the code columns as they are, the rest read from the JSON."""
    if name in ("code", "parent_code"):
        return f.c[name]
    text = f.c.properties.op("->>")(name)
    if kind == "int":
        return sa.cast(sa.func.round(sa.cast(text, sa.Float)), sa.BigInteger)
    if kind == "float":
        return sa.cast(text, sa.Float)
    if kind == "bool":
        return sa.cast(text, sa.Boolean)
    return text


def run(conn: sa.Connection, sql: TileSql, args: dict) -> bytes:
    """One tile on a pooled (autocommit) connection: the driver runs the prepared text."""
    raw = conn.connection.driver_connection
    data = raw.execute(sql.text, args, prepare=True).fetchone()[0]
    return bytes(data) if data else b""


#: Loads PostGIS and PROJ's WGS84 → Web Mercator in a new backend (~30 ms the first time).
_LOAD = "SELECT ST_AsBinary(ST_Transform(ST_SetSRID(ST_MakePoint(118.8, 32.05), 4326), 3857))"


def warm(engine: sa.Engine, tiles: list[tuple[TileSql, dict]], connections: int) -> int:
    """Open ``connections`` pooled connections at once and, on each, load PostGIS and
    PROJ and run every ``(statement, args)`` (which prepares it there); they go back to
    the pool. Returns the connections warmed."""
    held = []
    try:
        for _ in range(max(connections, 0)):
            conn = engine.connect()
            held.append(conn)
            raw = conn.connection.driver_connection
            raw.execute(_LOAD).fetchone()
            for sql, args in tiles:
                raw.execute(sql.text, args, prepare=True).fetchone()
    finally:
        for conn in held:
            conn.close()
    return len(held)
