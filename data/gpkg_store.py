"""The embedded store: plans kept in one GeoPackage file, with no server to run.

The file is a valid GeoPackage 1.4: its ``wg_features`` table is a feature layer with
an R-tree spatial index that QGIS or GDAL open as they are; the ``wg_`` tables beside it
hold plans, versions and layer schemas. Every save is one SQLite transaction.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from wangge.data.accounts import append_audit
from wangge.data.store import (
    SCHEMA_VERSION,
    SPAN_MIGRATION,
    LayerInfo,
    Page,
    Patch,
    Rows,
    Store,
    Version,
    check_schema,
    kept_layers,
    next_version,
    patched_layers,
    prefix_sql,
    rows_filter,
    unflatten,
)
from wangge.data.tiles import MemoryLayer, MemoryTiles, TileRequest, tile_fields
from wangge.errors import InputError, NotFound

_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_GPKG_USER_VERSION = 10400  # 1.4.0
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
    srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
    organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE IF NOT EXISTS gpkg_contents (
    table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
    description TEXT DEFAULT '',
    last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE,
    srs_id INTEGER REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
    table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
    srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
    PRIMARY KEY (table_name, column_name));
CREATE TABLE IF NOT EXISTS gpkg_extensions (
    table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL,
    definition TEXT NOT NULL, scope TEXT NOT NULL,
    UNIQUE (table_name, column_name, extension_name));
CREATE TABLE IF NOT EXISTS wg_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wg_plans (
    plan_id TEXT PRIMARY KEY, latest INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS wg_versions (
    plan_id TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL,
    author TEXT NOT NULL, comment TEXT NOT NULL, meta TEXT NOT NULL,
    PRIMARY KEY (plan_id, version));
CREATE TABLE IF NOT EXISTS wg_layers (
    plan_id TEXT NOT NULL, version INTEGER NOT NULL, layer TEXT NOT NULL,
    count INTEGER NOT NULL, geometry_type TEXT, bbox TEXT, columns TEXT NOT NULL,
    dtypes TEXT NOT NULL, source INTEGER, since INTEGER, upto INTEGER,
    PRIMARY KEY (plan_id, version, layer));
CREATE TABLE IF NOT EXISTS wg_features (
    fid INTEGER PRIMARY KEY AUTOINCREMENT, plan_id TEXT NOT NULL, version INTEGER NOT NULL,
    layer TEXT NOT NULL, code TEXT, parent_code TEXT, properties TEXT NOT NULL, geom GEOMETRY,
    until INTEGER);
CREATE INDEX IF NOT EXISTS wg_features_key ON wg_features (plan_id, version, layer, code);
CREATE VIRTUAL TABLE IF NOT EXISTS rtree_wg_features_geom
    USING rtree(id, minx, maxx, miny, maxy);
"""


def encode_geometry(wkb: bytes | None, bbox: tuple | None, srs_id: int = 4326) -> bytes | None:
    """A GeoPackage geometry blob: 'GP', version 0, little-endian with an xy envelope."""
    if wkb is None:
        return None
    minx, miny, maxx, maxy = bbox
    return b"GP\x00\x03" + struct.pack("<i4d", srs_id, minx, maxx, miny, maxy) + wkb


#: Dimension by WKB geometry type: points 0, lines 1, areas 2 (the collection, 7, is read).
_DIMENSIONS = {1: 0, 2: 1, 3: 2, 4: 0, 5: 1, 6: 2}


def geometry_dimension(blob: bytes | None) -> int | None:
    """The dimension of a GeoPackage geometry blob as PostGIS's ST_Dimension gives it (0
    points, 1 lines, 2 areas, a collection its highest part's), from its header alone but
    for a collection; None for none. Registered in SQLite as ``wg_dimension``."""
    if blob is None:
        return None
    start = 8 + _ENVELOPE_BYTES.get((blob[3] >> 1) & 0x07, 0)
    kind = int.from_bytes(blob[start + 1 : start + 5], "little" if blob[start] else "big")
    kind = (kind & 0x0FFFFFFF) % 1000  # without the EWKB flags and ISO's Z, M thousands
    if kind == 7:
        return max(int(shapely.get_dimensions(shapely.from_wkb(bytes(blob[start:])))), 0)
    return _DIMENSIONS.get(kind)


def decode_geometries(blobs: list[bytes | None]) -> np.ndarray:
    """Shapely geometries from GeoPackage blobs (None stays None)."""
    wkbs: list[bytes | None] = []
    for blob in blobs:
        if blob is None:
            wkbs.append(None)
            continue
        flags = blob[3]
        envelope = _ENVELOPE_BYTES.get((flags >> 1) & 0x07)
        if blob[:2] != b"GP" or envelope is None:
            raise InputError("not a GeoPackage geometry blob", where="wg_features.geom")
        wkbs.append(bytes(blob[8 + envelope :]))
    return shapely.from_wkb(np.array(wkbs, dtype=object))


class GpkgStore(Store):
    """Plans in one GeoPackage file (created on first open)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.url = str(self.path)
        self._local = threading.local()
        self._cover_cache: dict[tuple[str, int], tuple[shapely.STRtree, np.ndarray]] = {}
        self._tiles = MemoryTiles()
        if self.path.exists() and self.path.stat().st_size and not _is_sqlite(self.path):
            raise InputError("not a GeoPackage (SQLite) file", self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # connections ------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.create_function("wg_dimension", 1, geometry_dimension, deterministic=True)
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # a COMMIT that failed (busy past the timeout while another connection reads)
            # leaves the transaction open: end it, or this thread's connection would keep
            # the write lock from every other writer and read its own unsaved version
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _book_engine(self):
        import sqlalchemy as sa

        return sa.create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 10})

    def close(self) -> None:
        self.__dict__.pop("_runs", None)
        self.__dict__.pop("_roster", None)  # it shares the book's engine, disposed here
        book = self.__dict__.pop("_book", None)
        if book is not None:
            book.engine.dispose()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        try:
            with self._write() as conn:
                conn.execute(f"PRAGMA application_id = {_GPKG_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {_GPKG_USER_VERSION}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                _register(conn)
                row = conn.execute("SELECT value FROM wg_meta WHERE key='schema'").fetchone()
                check_schema(int(row[0]) if row else None, str(self.path))
                columns = {r[1] for r in conn.execute("PRAGMA table_info(wg_layers)")}
                if "source" not in columns:  # schema 1 → 2
                    conn.execute("ALTER TABLE wg_layers ADD COLUMN source INTEGER")
                if "since" not in columns:  # schema 3 → 4
                    conn.execute("ALTER TABLE wg_layers ADD COLUMN since INTEGER")
                    conn.execute("ALTER TABLE wg_layers ADD COLUMN upto INTEGER")
                    conn.execute("ALTER TABLE wg_features ADD COLUMN until INTEGER")
                conn.execute(SPAN_MIGRATION)
                # a layer's rows by span: (plan, layer) then the versions it spans
                conn.execute(
                    "CREATE INDEX IF NOT EXISTS wg_features_span"
                    " ON wg_features (plan_id, layer, version)"
                )
                conn.execute(
                    "INSERT OR REPLACE INTO wg_meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot open as a GeoPackage store: {exc}", self.path) from exc

    # the contract -----------------------------------------------------------------------

    def _commit_version(
        self,
        draft: Version,
        flat: dict[str, Rows],
        base_version: int | None,
        keep: tuple[str, ...] = (),
        audit: dict | None = None,
        staged: dict[str, Rows] | None = None,
        stage: int | None = None,
        patches: dict[str, Patch] | None = None,
    ) -> int:
        plan_id = draft.plan_id
        meta_json = json.dumps(draft.meta, ensure_ascii=False)
        with self._write() as conn:
            row = conn.execute("SELECT latest FROM wg_plans WHERE plan_id=?", (plan_id,)).fetchone()
            version = next_version(plan_id, row[0] if row else 0, base_version)
            if row:
                conn.execute("UPDATE wg_plans SET latest=? WHERE plan_id=?", (version, plan_id))
            else:
                conn.execute(
                    "INSERT INTO wg_plans VALUES (?, ?, ?)", (plan_id, version, draft.created_at)
                )
            conn.execute(
                "INSERT INTO wg_versions VALUES (?, ?, ?, ?, ?, ?)",
                (plan_id, version, draft.created_at, draft.author, draft.comment, meta_json),
            )
            if audit is not None:
                append_audit(conn, audit, version)
            patches = patches or {}
            base = self.layers(plan_id, base_version) if keep or patches else []
            for info in kept_layers(base, base_version, keep, plan_id):
                conn.execute(
                    "INSERT INTO wg_layers SELECT plan_id, ?, layer, count, geometry_type,"
                    " bbox, columns, dtypes, ?, ?, ? FROM wg_layers"
                    " WHERE plan_id=? AND version=? AND layer=?",
                    (version, info.source, info.since, info.upto, plan_id, base_version, info.name),
                )

            def retire(layer: str, where: str, params: dict, ids: list[str]) -> int:
                marks = ",".join(f":c{i}" for i in range(len(ids)))
                return conn.execute(
                    f"UPDATE wg_features AS f SET until = :v WHERE f.plan_id = :p"
                    f" AND f.layer = :l AND f.code IN ({marks}) AND {where}",
                    {"v": version, "p": plan_id, "l": layer, **params}
                    | {f"c{i}": c for i, c in enumerate(ids)},
                ).rowcount

            flat, spans = patched_layers(
                base, base_version, version, flat, staged, stage, patches, plan_id, retire
            )
            # written layers carry their rows; staged ones point at the workers' rows
            written = [(n, r, n in (staged or {})) for n, r in {**flat, **(staged or {})}.items()]
            for name, rows, is_staged in written:
                info = rows.info
                conn.execute(
                    "INSERT INTO wg_layers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        plan_id,
                        version,
                        name,
                        info.count,
                        info.geometry_type,
                        json.dumps(info.bbox),
                        json.dumps(list(info.columns), ensure_ascii=False),
                        json.dumps(rows.dtypes),
                        *spans[name],
                    ),
                )
                if not is_staged:
                    insert_rows(conn, plan_id, version, name, rows.records)
            _update_extent(conn)
        return version

    # rows staged by a city's workers (wangge/city.py) ------------------------------------

    def write_staged(self, conn, plan_id: str, stage: int, layer: str, records: list) -> None:
        insert_rows(conn.connection.driver_connection, plan_id, stage, layer, records)

    def delete_staged(self, conn, plan_id: str, stage: int, street: str) -> None:
        raw = conn.connection.driver_connection
        where = (
            "plan_id=? AND version=? AND json_extract(properties, '$._street')=?",
            (plan_id, stage, street),
        )
        raw.execute(
            f"DELETE FROM rtree_wg_features_geom WHERE id IN"
            f" (SELECT fid FROM wg_features WHERE {where[0]})",
            where[1],
        )
        raw.execute(f"DELETE FROM wg_features WHERE {where[0]}", where[1])

    def copy_staged(self, conn, plan_id: str, old: int, new: int, streets: list[str]) -> None:
        raw = conn.connection.driver_connection
        marks = ",".join("?" * len(streets))
        rows = raw.execute(
            "SELECT layer, code, parent_code, properties, geom FROM wg_features WHERE plan_id=?"
            f" AND version=? AND json_extract(properties, '$._street') IN ({marks})"
            " ORDER BY fid",
            (plan_id, old, *streets),
        ).fetchall()
        geoms = decode_geometries([r[4] for r in rows])
        present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
        wkbs = np.where(present, shapely.to_wkb(geoms, byte_order=1), None)
        boxes = shapely.bounds(geoms)
        by_layer: dict[str, list] = {}
        for r, w, b, ok in zip(rows, wkbs, boxes.tolist(), present, strict=True):
            rec = (r[1], r[2], r[3], w, tuple(b) if ok else None)
            by_layer.setdefault(r[0], []).append(rec)
        for layer, records in by_layer.items():
            insert_rows(raw, plan_id, new, layer, records)

    def plans(self) -> list[Version]:
        rows = self._conn().execute(
            "SELECT v.plan_id, v.version, v.created_at, v.author, v.comment, v.meta"
            " FROM wg_plans p JOIN wg_versions v ON v.plan_id=p.plan_id AND v.version=p.latest"
            " ORDER BY v.created_at DESC, v.plan_id"
        )
        return [_version(r) for r in rows]

    def versions(self, plan_id: str) -> list[Version]:
        rows = self._conn().execute(
            "SELECT plan_id, version, created_at, author, comment, meta FROM wg_versions"
            " WHERE plan_id=? ORDER BY version",
            (plan_id,),
        )
        return [_version(r) for r in rows]

    def layers(self, plan_id: str, version: int) -> list[LayerInfo]:
        rows = self._conn().execute(
            "SELECT layer, count, geometry_type, bbox, columns, source, since, upto"
            " FROM wg_layers WHERE plan_id=? AND version=? ORDER BY rowid",
            (plan_id, version),
        )
        return [
            LayerInfo(
                r[0],
                r[1],
                r[2],
                tuple(json.loads(r[3])) if json.loads(r[3]) else None,
                tuple(json.loads(r[4])),
                *r[5:8],
            )
            for r in rows
        ]

    def query(
        self,
        plan_id: str,
        version: int,
        layer: str,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int | None = None,
        offset: int = 0,
        codes: list[str] | None = None,
        dimension: int | None = None,
        prefix: tuple[str, str] | None = None,
    ) -> Page:
        info = self._check_layer(plan_id, version, layer)
        dtypes = self.dtypes(plan_id, version, layer)
        conn = self._conn()
        span, args = rows_filter(info, version)
        where = f"f.plan_id = :plan AND f.layer = :layer AND {span}"
        args = {**args, "plan": plan_id, "layer": layer}
        if codes is not None:
            where += f" AND f.code IN ({','.join(f':c{i}' for i in range(len(codes)))})"
            args |= {f"c{i}": c for i, c in enumerate(codes)}
        if prefix is not None:
            cond, more = prefix_sql(self, "f", prefix)
            where += f" AND {cond}"
            args |= more
        if dimension is not None:  # read from each blob's header by wg_dimension
            where += " AND wg_dimension(f.geom) = :dim"
            args["dim"] = int(dimension)
        select = "SELECT f.code, f.parent_code, f.properties, f.geom FROM wg_features f"
        if bbox is None:
            page = f" LIMIT {int(limit) if limit is not None else -1} OFFSET {int(offset)}"
            rows = conn.execute(f"{select} WHERE {where} ORDER BY f.code, f.fid{page}", args)
            rows = rows.fetchall()
            if limit is None and not offset:  # all of them: counted as read
                matched = (len(rows),)
            else:
                (matched,) = conn.execute(f"SELECT count(*) FROM wg_features f WHERE {where}", args)
            geoms = decode_geometries([r[3] for r in rows])
            return Page(unflatten(info, dtypes, rows, list(geoms)), int(matched[0]))
        minx, miny, maxx, maxy = bbox
        rows = conn.execute(
            f"{select} JOIN rtree_wg_features_geom r ON r.id = f.fid"
            " AND r.maxx >= :minx AND r.minx <= :maxx AND r.maxy >= :miny AND r.miny <= :maxy"
            f" WHERE {where} ORDER BY f.code, f.fid",
            {**args, "minx": minx, "maxx": maxx, "miny": miny, "maxy": maxy},
        ).fetchall()
        geoms = decode_geometries([r[3] for r in rows])
        hit = shapely.intersects(geoms, shapely.box(minx, miny, maxx, maxy))
        rows = [r for r, h in zip(rows, hit, strict=True) if h]
        geoms = geoms[hit]
        end = None if limit is None else offset + limit
        frame = unflatten(info, dtypes, rows[offset:end], list(geoms[offset:end]))
        return Page(frame, len(rows))

    def tile(self, plan_id: str, version: int, req: TileRequest) -> bytes:
        """Cut from the layer held in memory (Web Mercator, STRtree), built on first use."""
        info = self._check_layer(plan_id, version, req.layer)

        def build() -> MemoryLayer:
            dtypes = self.dtypes(plan_id, version, req.layer)
            fields = tile_fields(req.layer, info.columns, dtypes)
            if not info.geometry_type:
                raise NotFound(f"layer {req.layer!r} has no geometry to tile", where="layer")
            return MemoryLayer(self.query(plan_id, version, req.layer).frame, fields)

        return self._tiles.get((plan_id, info.span(version), req.layer), build).render(req)

    def _select(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    def _property(self, alias: str, key: str) -> str:
        return f"json_extract({alias}.properties, '$.{key}')"

    def latest(self, plan_id: str) -> int | None:
        row = (
            self._conn()
            .execute("SELECT latest FROM wg_plans WHERE plan_id=?", (plan_id,))
            .fetchone()
        )
        return row[0] if row else None

    def dtypes(self, plan_id: str, version: int, layer: str) -> dict[str, str]:
        (raw,) = (
            self._conn()
            .execute(
                "SELECT dtypes FROM wg_layers WHERE plan_id=? AND version=? AND layer=?",
                (plan_id, version, layer),
            )
            .fetchone()
        )
        return json.loads(raw)

    def _cover_codes(
        self, plan_id: str, version: int, lon: np.ndarray, lat: np.ndarray
    ) -> np.ndarray:
        key = (plan_id, version)
        if key not in self._cover_cache:  # versions never change once saved
            micro = self.query(plan_id, version, "microgrids").frame
            geoms = micro.geometry.to_numpy()
            self._cover_cache[key] = (shapely.STRtree(geoms), micro["code"].to_numpy())
        tree, codes = self._cover_cache[key]
        out = np.full(len(lon), "", dtype=object)
        pts, hits = tree.query(shapely.points(lon, lat), predicate="intersects")
        # a point on a shared edge touches two: the first code wins, as in PostGIS
        order = np.lexsort((codes[hits], pts))
        pts, hits = pts[order], hits[order]
        first = np.r_[True, pts[1:] != pts[:-1]] if len(pts) else np.array([], bool)
        out[pts[first]] = codes[hits[first]]
        return out


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def _version(row) -> Version:
    return Version(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


def _register(conn: sqlite3.Connection) -> None:
    """The GeoPackage rows that make ``wg_features`` a layer other GIS tools can open."""
    wgs84 = CRS.from_epsg(4326).to_wkt("WKT1_GDAL")
    srs = [
        ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian"),
        ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic"),
        ("WGS 84 geodetic", 4326, "EPSG", 4326, wgs84, "longitude/latitude on WGS 84"),
    ]
    conn.executemany("INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", srs)
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description,"
        " srs_id) VALUES ('wg_features', 'features', 'wg_features',"
        " 'wangge plan layers, every version', 4326)"
    )
    for table in ("wg_plans", "wg_versions", "wg_layers", "wg_meta"):
        conn.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier)"
            " VALUES (?, 'attributes', ?)",
            (table, table),
        )
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_geometry_columns VALUES"
        " ('wg_features', 'geom', 'GEOMETRY', 4326, 0, 0)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_extensions VALUES ('wg_features', 'geom',"
        " 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree',"
        " 'write-only')"
    )


def insert_rows(
    conn: sqlite3.Connection, plan_id: str, version: int, layer: str, records: list
) -> None:
    """Insert flattened rows (:func:`flatten`) and their R-tree entries."""
    # explicit fids (after the highest ever given) let both inserts run batched
    (start,) = conn.execute(
        "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name='wg_features'"
    ).fetchone()
    (top,) = conn.execute("SELECT coalesce(max(fid), 0) FROM wg_features").fetchone()
    start = max(start, top)
    fids = range(start + 1, start + 1 + len(records))
    conn.executemany(
        "INSERT INTO wg_features (fid, plan_id, version, layer, code, parent_code,"
        " properties, geom) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (fid, plan_id, version, layer, c, p, j, encode_geometry(w, b))
            for fid, (c, p, j, w, b) in zip(fids, records, strict=True)
        ),
    )
    conn.executemany(
        "INSERT INTO rtree_wg_features_geom VALUES (?, ?, ?, ?, ?)",
        (
            (fid, b[0], b[2], b[1], b[3])
            for fid, (_, _, _, _, b) in zip(fids, records, strict=True)
            if b is not None
        ),
    )


def _update_extent(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE gpkg_contents SET (min_x, min_y, max_x, max_y, last_change) ="
        " (SELECT min(minx), min(miny), max(maxx), max(maxy),"
        " strftime('%Y-%m-%dT%H:%M:%fZ','now') FROM rtree_wg_features_geom)"
        " WHERE table_name='wg_features'"
    )
