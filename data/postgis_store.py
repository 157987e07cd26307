"""The shared store: plans kept in PostGIS, through SQLAlchemy 2 and GeoAlchemy2.

Chosen when ``WANGGE_DATABASE_URL`` (``postgresql+psycopg://…``) is set. The schema is
created, or migrated, when the store opens; features carry a GiST index on their
geometry. A save runs in one transaction that locks the plan's row, so two planners
saving on the same base version cannot both win.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB, insert

from wangge.data import pg_tiles
from wangge.data.accounts import append_audit
from wangge.data.spans import span_condition
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
from wangge.data.tiles import TileRequest, tile_fields
from wangge.errors import InputError, NotFound, VersionConflict
from wangge.maps.tile_grids import WEB_MERCATOR_QUAD

metadata = sa.MetaData()
meta_table = sa.Table(
    "wg_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
plans_table = sa.Table(
    "wg_plans",
    metadata,
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("latest", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
)
versions_table = sa.Table(
    "wg_versions",
    metadata,
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("meta", JSONB, nullable=False),
)
layers_table = sa.Table(
    "wg_layers",
    metadata,
    sa.Column("plan_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("layer", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("geometry_type", sa.Text),
    sa.Column("bbox", JSONB),
    sa.Column("columns", JSONB, nullable=False),
    sa.Column("dtypes", JSONB, nullable=False),
    sa.Column("source", sa.Integer),
    sa.Column("since", sa.Integer),
    sa.Column("upto", sa.Integer),
)
features_table = sa.Table(
    "wg_features",
    metadata,
    sa.Column("fid", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("plan_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("code", sa.Text),
    sa.Column("parent_code", sa.Text),
    sa.Column("properties", JSONB, nullable=False),
    sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
    sa.Column("until", sa.Integer),
    sa.Index("wg_features_key", "plan_id", "version", "layer", "code"),
    # one GiST over the version's key and the geometry (btree_gist): a lookup narrows to
    # one layer of one version and to the point in a single index scan, however many
    # versions of the same streets the table holds
    sa.Index(
        "wg_features_version_geom",
        "plan_id",
        "version",
        "layer",
        "geom",
        postgresql_using="gist",
        # tables (unit edges, violations) have no geometry: keeping them out of the GiST
        # makes a city-sized save a quarter faster; spatial predicates imply NOT NULL
        postgresql_where=sa.text("geom IS NOT NULL"),
    ),
)


#: The database's own check of territorial scopes (属地管理), beside the application's: a
#: version saved under a scope (``meta.scopes``, the editing account's code prefixes) may
#: only move units whose micro-grid before and after both lie inside it. A constraint
#: trigger on the version's ``units`` layer row runs once, at commit, and compares all the
#: version's unit rows with the base version's through the (plan, version, layer, code)
#: index; a refusal rolls the whole version back.
SCOPE_GUARD = [
    """
    CREATE OR REPLACE FUNCTION wg_scope_guard() RETURNS trigger AS $$
    DECLARE bad text;
    BEGIN
      -- only versions saved under a scope, on a base, are checked: a whole plan (an
      -- import, a city) moves nothing, and must not pay for a join over all its units
      IF NOT EXISTS (
        SELECT 1 FROM wg_versions v
        WHERE v.plan_id = NEW.plan_id AND v.version = NEW.version
          AND jsonb_typeof(v.meta->'scopes') = 'array' AND v.meta ? 'base'
      ) THEN
        RETURN NULL;
      END IF;
      SELECT a.code INTO bad
      FROM wg_features a
      JOIN wg_versions v ON v.plan_id = a.plan_id AND v.version = a.version
      JOIN wg_layers bl ON bl.plan_id = a.plan_id AND bl.layer = 'units'
        AND bl.version = (v.meta->>'base')::int
      JOIN wg_features b ON b.plan_id = a.plan_id AND b.layer = 'units' AND b.code = a.code
        AND {span}
      WHERE a.plan_id = NEW.plan_id AND a.version = NEW.version AND a.layer = 'units'
        AND jsonb_typeof(v.meta->'scopes') = 'array'
        AND b.parent_code IS DISTINCT FROM a.parent_code
        AND NOT (
          EXISTS (SELECT 1 FROM jsonb_array_elements_text(v.meta->'scopes') s
                  WHERE starts_with(a.parent_code, s))
          AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(v.meta->'scopes') s
                      WHERE starts_with(b.parent_code, s)))
      LIMIT 1;
      IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'wangge scope guard: unit % moved outside the scope of its version', bad
          USING ERRCODE = 'insufficient_privilege';
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql
    """.replace("{span}", span_condition("b", "bl.source", "bl.since", "bl.upto")),
    "DROP TRIGGER IF EXISTS wg_scope_guard ON wg_features",
    "DROP TRIGGER IF EXISTS wg_scope_guard ON wg_layers",
    "CREATE CONSTRAINT TRIGGER wg_scope_guard AFTER INSERT ON wg_layers "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.layer = 'units') "
    "EXECUTE FUNCTION wg_scope_guard()",
]


class PostgisStore(Store):
    """Plans in a PostGIS database."""

    def __init__(
        self, url: str, statement_timeout_ms: int | None = None, pool: tuple[int, int] | None = None
    ):
        self.url = url
        # kept + extra = 40, the threads a server process runs sync routes on: no request
        # waits for a connection; two server processes stay under PostgreSQL's 100
        kept, extra = pool or (20, 20)
        # a statement running past the timeout is cancelled by PostgreSQL itself, so one
        # heavy request cannot hold a connection (and the tables) for the others
        connect_args = {}
        if statement_timeout_ms:
            connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
        try:
            # no pre-ping (a round trip per request, a third of a cold tile's time); idle
            # connections are recycled instead, and a dropped one fails one request only
            self.engine = sa.create_engine(
                url,
                pool_pre_ping=False,
                pool_recycle=300,
                pool_size=kept,
                max_overflow=extra,
                connect_args=connect_args,
            )
            # reads that need no transaction: the same pool, in autocommit
            self._reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            # tiles have connections of their own (autocommit), on which PostgreSQL keeps
            # the generic plan of a prepared tile statement (data/pg_tiles.py says why);
            # the API cuts Settings.tile_renders tiles at once, so few are ever open
            options = " ".join(filter(None, [connect_args.get("options"), pg_tiles.OPTIONS]))
            self._tile_reads = sa.create_engine(
                url,
                pool_pre_ping=False,
                pool_recycle=300,
                pool_size=kept,
                max_overflow=extra,
                connect_args={**connect_args, "options": options},
                isolation_level="AUTOCOMMIT",
            )
            self._migrate()
        except sa.exc.OperationalError as exc:
            raise InputError(
                f"cannot reach the database: {exc.orig}".strip(), _safe_url(url)
            ) from exc
        except sa.exc.NoSuchModuleError as exc:
            raise InputError(f"not a database URL wangge knows: {exc}", _safe_url(url)) from exc

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            try:
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            except sa.exc.DBAPIError as exc:
                raise InputError(
                    "PostGIS or btree_gist is not available in this database (install"
                    f" postgresql-15-postgis-3 and allow CREATE EXTENSION): {exc.orig}",
                    _safe_url(self.url),
                ) from exc
            # one migration at a time, even when several API workers start together
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(20260421)"))
            metadata.create_all(conn)
            have = conn.execute(
                sa.select(meta_table.c.value).where(meta_table.c.key == "schema")
            ).scalar()
            check_schema(have, _safe_url(self.url))
            # schema 1 → 2: a layer may be kept from an earlier version
            conn.execute(sa.text("ALTER TABLE wg_layers ADD COLUMN IF NOT EXISTS source integer"))
            # schema 3 → 4: a version may patch a layer (store.LayerInfo)
            for table, column in (("wg_layers", "since"), ("wg_layers", "upto")):
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} int"))
            conn.execute(sa.text("ALTER TABLE wg_features ADD COLUMN IF NOT EXISTS until integer"))
            conn.execute(sa.text(SPAN_MIGRATION))
            conn.execute(
                sa.text(
                    "CREATE INDEX IF NOT EXISTS wg_features_span"
                    " ON wg_features (plan_id, layer, version)"
                )
            )
            # schema 3: the spatial index leaves rows without geometry out (rebuilt once)
            indexdef = conn.execute(
                sa.text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'wg_features_version_geom'"
                )
            ).scalar()
            if indexdef is not None and "WHERE" not in indexdef:
                conn.execute(sa.text("DROP INDEX wg_features_version_geom"))
                for index in features_table.indexes:
                    if index.name == "wg_features_version_geom":
                        index.create(conn)
            # the function is replaced when its text changes (that locks no table); the
            # trigger is made once: dropping and re-making it locks the table from readers
            have_src = conn.execute(
                sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'wg_scope_guard'")
            ).scalar()
            if have_src is None or have_src.strip() not in SCOPE_GUARD[0]:
                conn.execute(sa.text(SCOPE_GUARD[0]))
            guard = "SELECT 1 FROM pg_trigger WHERE tgname = 'wg_scope_guard'"
            if conn.execute(sa.text(guard)).first() is None:
                for statement in SCOPE_GUARD[1:]:
                    conn.execute(sa.text(statement))
            stmt = insert(meta_table).values(key="schema", value=str(SCHEMA_VERSION))
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["key"], set_={"value": stmt.excluded.value}
                )
            )

    def _book_engine(self):
        return self.engine

    def close(self) -> None:
        self.engine.dispose()
        self._tile_reads.dispose()

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
        patches = patches or {}
        with self.engine.begin() as conn:
            # a new plan's row first; not for a plan that has one: an INSERT … ON CONFLICT
            # on a row another save has updated waits for that save to commit, so the
            # NOWAIT below came too late, and under load saves queued past the statement
            # timeout (413s in CI). A plain read sees the committed row and waits for none.
            have = sa.select(plans_table.c.plan_id).where(plans_table.c.plan_id == plan_id)
            if conn.execute(have).first() is None:
                conn.execute(
                    insert(plans_table)
                    .values(plan_id=plan_id, latest=0, created_at=draft.created_at)
                    .on_conflict_do_nothing()
                )
            latest = self._lock_plan(conn, plan_id, base_version)
            version = next_version(plan_id, latest, base_version)
            conn.execute(
                plans_table.update().where(plans_table.c.plan_id == plan_id).values(latest=version)
            )
            conn.execute(
                versions_table.insert().values(
                    plan_id=plan_id,
                    version=version,
                    created_at=draft.created_at,
                    author=draft.author,
                    comment=draft.comment,
                    meta=draft.meta,
                )
            )
            if audit is not None:
                append_audit(conn, audit, version)
            t = layers_table
            base = self._layers(conn, plan_id, base_version) if keep or patches else []
            kept = kept_layers(base, base_version, keep, plan_id)
            spanning = ("version", "source", "since", "upto")
            for info in kept:
                cols = [c for c in t.c if c.name not in spanning]
                span = (info.source, info.since, info.upto)
                conn.execute(
                    t.insert().from_select(
                        [*(c.name for c in cols), *spanning],
                        sa.select(*cols, sa.literal(version), *map(sa.literal, span)).where(
                            (t.c.plan_id == plan_id)
                            & (t.c.version == base_version)
                            & (t.c.layer == info.name)
                        ),
                    )
                )

            def retire(layer: str, where: str, params: dict, ids: list[str]) -> int:
                return conn.execute(
                    sa.text(
                        "UPDATE wg_features AS f SET until = :v WHERE f.plan_id = :p"
                        f" AND f.layer = :l AND f.code = ANY(:codes) AND {where}"
                    ),
                    {"v": version, "p": plan_id, "l": layer, "codes": ids, **params},
                ).rowcount

            flat, spans = patched_layers(
                base, base_version, version, flat, staged, stage, patches, plan_id, retire
            )
            # written layers carry their rows; staged ones point at the workers' rows
            written = [(n, r, n in (staged or {})) for n, r in {**flat, **(staged or {})}.items()]
            for position, (name, rows, is_staged) in enumerate(written, start=len(kept)):
                info = rows.info
                source, since, upto = spans[name]
                conn.execute(
                    layers_table.insert().values(
                        plan_id=plan_id,
                        version=version,
                        layer=name,
                        position=position,
                        count=info.count,
                        geometry_type=info.geometry_type,
                        bbox=list(info.bbox) if info.bbox else None,
                        columns=list(info.columns),
                        dtypes=rows.dtypes,
                        source=source,
                        since=since,
                        upto=upto,
                    )
                )
                if not is_staged and rows.records:
                    _copy_features(conn, plan_id, version, name, rows.records)
        self._analyze_if_stale(sum(len(r.records) for r in flat.values()))
        return version

    # rows staged by a city's workers (wangge/city.py) ------------------------------------

    def write_staged(self, conn, plan_id: str, stage: int, layer: str, records: list) -> None:
        _copy_features(conn, plan_id, stage, layer, records)

    def delete_staged(self, conn, plan_id: str, stage: int, street: str) -> None:
        conn.execute(
            sa.text(
                "DELETE FROM wg_features WHERE plan_id = :p AND version = CAST(:v AS integer)"
                " AND properties->>'_street' = :s"
            ),
            {"p": plan_id, "v": stage, "s": street},
        )

    def copy_staged(self, conn, plan_id: str, old: int, new: int, streets: list[str]) -> None:
        conn.execute(
            sa.text(
                "INSERT INTO wg_features (plan_id, version, layer, code, parent_code,"
                " properties, geom) SELECT plan_id, CAST(:new AS integer), layer, code,"
                " parent_code, properties, geom FROM wg_features WHERE plan_id = :p"
                " AND version = CAST(:old AS integer) AND properties->>'_street' = ANY(:s)"
                " ORDER BY fid"
            ),
            {"p": plan_id, "old": old, "new": new, "s": list(streets)},
        )

    def _analyze_if_stale(self, added: int) -> None:
        """Refresh the planner's statistics when a save adds a fifth or more to the table,
        or more than ``_ANALYZE_ROWS`` rows.

        Without them the planner takes a fresh table for empty and answers a point lookup
        by testing every micro-grid (0.9 s for 10,000 points on the demo, 0.2 s with).
        Autovacuum would get there too, but only after a minute or more. The version is
        committed by now, so a failure here (ANALYZE queued behind a VACUUM past the
        statement timeout) is let go: it must not report a saved version as an error.
        """
        # reltuples is the row count at the last ANALYZE (-1 before the first)
        rows = sa.text("SELECT reltuples FROM pg_class WHERE oid = 'wg_features'::regclass")
        try:
            with self.engine.begin() as conn:
                seen = conn.execute(rows).scalar()
                if seen < 0 or added > min(0.2 * seen, _ANALYZE_ROWS):
                    conn.execute(sa.text("ANALYZE wg_features"))
        except sa.exc.DBAPIError:
            pass  # statistics are an optimisation; autovacuum or the next save refreshes them

    def plans(self) -> list[Version]:
        v, p = versions_table, plans_table
        stmt = (
            sa.select(v.c.plan_id, v.c.version, v.c.created_at, v.c.author, v.c.comment, v.c.meta)
            .join(p, (p.c.plan_id == v.c.plan_id) & (p.c.latest == v.c.version))
            .order_by(v.c.created_at.desc(), v.c.plan_id)
        )
        with self.engine.connect() as conn:
            return [Version(*row) for row in conn.execute(stmt)]

    def versions(self, plan_id: str) -> list[Version]:
        v = versions_table
        stmt = (
            sa.select(v.c.plan_id, v.c.version, v.c.created_at, v.c.author, v.c.comment, v.c.meta)
            .where(v.c.plan_id == plan_id)
            .order_by(v.c.version)
        )
        with self.engine.connect() as conn:
            return [Version(*row) for row in conn.execute(stmt)]

    def layers(self, plan_id: str, version: int) -> list[LayerInfo]:
        with self.engine.connect() as conn:
            return self._layers(conn, plan_id, version)

    @staticmethod
    def _layers(conn: sa.Connection, plan_id: str, version: int | None) -> list[LayerInfo]:
        t = layers_table
        stmt = (
            sa.select(
                t.c.layer,
                t.c.count,
                t.c.geometry_type,
                t.c.bbox,
                t.c.columns,
                t.c.source,
                t.c.since,
                t.c.upto,
            )
            .where((t.c.plan_id == plan_id) & (t.c.version == version))
            .order_by(t.c.position)
        )
        return [
            LayerInfo(r[0], r[1], r[2], tuple(r[3]) if r[3] else None, tuple(r[4]), *r[5:8])
            for r in conn.execute(stmt)
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
        f = features_table
        span, params = rows_filter(info, version, "wg_features")
        cond = (f.c.plan_id == plan_id) & (f.c.layer == layer) & sa.text(span).bindparams(**params)
        if codes is not None:
            cond &= f.c.code.in_(codes)
        if prefix is not None:
            text, more = prefix_sql(self, "wg_features", prefix)
            cond &= sa.text(text).bindparams(**more)
        if dimension is not None:
            cond &= sa.func.ST_Dimension(f.c.geom) == int(dimension)
        if bbox is not None:
            env = sa.func.ST_MakeEnvelope(*bbox, 4326)
            cond &= f.c.geom.op("&&")(env) & sa.func.ST_Intersects(f.c.geom, env)
        stmt = (
            sa.select(
                f.c.code,
                f.c.parent_code,
                sa.cast(f.c.properties, sa.Text),
                sa.func.ST_AsBinary(f.c.geom),
            )
            .where(cond)
            .order_by(f.c.code, f.c.fid)
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).fetchall()
            if limit is None and not offset:  # all of them: counted as read
                matched = len(rows)
            else:
                matched = conn.execute(sa.select(sa.func.count()).where(cond)).scalar_one()
        dtypes = self.dtypes(plan_id, version, layer)
        wkbs = np.array([None if r[3] is None else bytes(r[3]) for r in rows], dtype=object)
        geoms = shapely.from_wkb(wkbs) if len(rows) else []
        return Page(unflatten(info, dtypes, rows, list(geoms)), int(matched))

    def _select(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def _property(self, alias: str, key: str) -> str:
        return f"{alias}.properties->>'{key}'"

    def latest(self, plan_id: str) -> int | None:
        stmt = sa.select(plans_table.c.latest).where(plans_table.c.plan_id == plan_id)
        with self._reads.connect() as conn:  # one round trip: no BEGIN, no ROLLBACK
            return conn.execute(stmt).scalar()

    @staticmethod
    def _lock_plan(conn, plan_id: str, base_version: int | None) -> int:
        """Lock the plan's row for this save and return its latest version.

        A save based on a version does not queue behind another save of the same plan:
        whichever commits first makes that base stale, so the answer is the same 409 at
        once (NOWAIT) rather than after a wait that, with twenty planners saving together
        on a busy machine, outlasted the statement timeout (a 413 naming the bbox). A save
        with no base (an import, a city) waits its turn.
        """
        query = sa.select(plans_table.c.latest).where(plans_table.c.plan_id == plan_id)
        if base_version is None:
            return conn.execute(query.with_for_update()).scalar_one()
        try:
            return conn.execute(query.with_for_update(nowait=True)).scalar_one()
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            raise VersionConflict(
                f"based on version {base_version}, which another save of this plan is "
                "replacing right now; reload and redo the change",
                plan_id,
                where="base_version",
            ) from None

    def tile(self, plan_id: str, version: int, req: TileRequest) -> bytes:
        """The tile's envelope in its grid (maps/tile_grids.py) → ST_AsMVTGeom → ST_AsMVT
        in one prepared query on the GiST index of the layer's version, on a connection
        for tiles (autocommit: no BEGIN and ROLLBACK round trips): data/pg_tiles.py."""
        sql, span_params = self._tile_sql(plan_id, version, req)
        with self._tile_reads.connect() as conn:
            return pg_tiles.run(conn, sql, sql.args(plan_id, req, span_params))

    def _tile_sql(self, plan_id: str, version: int, req: TileRequest) -> tuple:
        """The compiled tile query of the request's layer shape (made once) and the
        parameters of the version's span."""
        info = self._check_layer(plan_id, version, req.layer)
        if not info.geometry_type:
            raise NotFound(f"layer {req.layer!r} has no geometry to tile", where="layer")
        fields = tile_fields(req.layer, info.columns, self.dtypes(plan_id, version, req.layer))
        capped = info.count > req.max_features
        span, params = rows_filter(info, version, "wg_features")
        key = (req.layer, tuple(fields), capped, req.extent, req.buffer, span, req.grid.epsg)
        cache = self.__dict__.setdefault("_tile_sqls", {})
        if key not in cache:
            cache[key] = pg_tiles.compile_tile_sql(
                features_table, self.engine.dialect, req.layer, fields, capped, req, span
            )
        return cache[key], params

    def warm_tiles(self, plan_id: str, version: int, layers: list[str], connections: int) -> int:
        """Make ``connections`` pooled connections ready for tiles of these layers
        (PostGIS and PROJ loaded, each layer's statement prepared: data/pg_tiles.warm),
        so that no first tile pays for it. Returns the connections warmed."""
        tiles = []
        for layer in layers:
            info = self._check_layer(plan_id, version, layer)
            bbox = info.bbox or (0.0, 0.0, 0.0, 0.0)
            x, y = WEB_MERCATOR_QUAD.tiles_over(16, bbox)[:2]
            req = TileRequest(layer, 16, x, y)
            sql, params = self._tile_sql(plan_id, version, req)
            tiles.append((sql, sql.args(plan_id, req, params)))
        return pg_tiles.warm(self._tile_reads, tiles, connections)

    def dtypes(self, plan_id: str, version: int, layer: str) -> dict[str, str]:
        key = (plan_id, version, layer)
        cache = self.__dict__.setdefault("_dtype_cache", {})
        if key not in cache:  # versions never change once saved
            t = layers_table
            stmt = sa.select(t.c.dtypes).where(
                (t.c.plan_id == plan_id) & (t.c.version == version) & (t.c.layer == layer)
            )
            with self.engine.connect() as conn:
                cache[key] = conn.execute(stmt).scalar_one()
        return cache[key]

    def _cover_codes(
        self, plan_id: str, version: int, lon: np.ndarray, lat: np.ndarray
    ) -> np.ndarray:
        stmt = sa.text(
            """
            SELECT p.i, min(f.code)
            FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[]))
                 WITH ORDINALITY AS p(lon, lat, i)
            JOIN wg_features f
              ON f.plan_id = :plan AND f.layer = 'microgrids' AND {span}
             AND ST_Intersects(f.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
            GROUP BY p.i
            """
        )
        out = np.full(len(lon), "", dtype=object)
        span, params = rows_filter(self._check_layer(plan_id, version, "microgrids"), version)
        stmt = sa.text(stmt.text.replace("{span}", span))
        args = {"lon": lon.tolist(), "lat": lat.tolist(), "plan": plan_id, **params}
        with self.engine.connect() as conn:
            for i, code in conn.execute(stmt, args):
                out[int(i) - 1] = code
        return out


#: A save adding this many rows refreshes the planner's statistics whatever the table's
#: size: a city version (~240,000 rows per million households) in a table of millions is
#: under a fifth, and without them a point lookup on it tests every micro-grid (10 s for
#: 1,000 points on a 1M-household city, 1.2 s with; ANALYZE takes about 0.4 s).
_ANALYZE_ROWS = 100_000
_COPY_FEATURES = (
    "COPY wg_features (plan_id, version, layer, code, parent_code, properties, geom) FROM STDIN"
)
_SRID_4326 = (4326).to_bytes(4, "little")


def _ewkb_hex(wkb: bytes | None) -> str | None:
    """Little-endian WKB (as :func:`flatten` writes it) as hex EWKB with SRID 4326, the
    text form COPY reads into a ``geometry(…, 4326)`` column."""
    if wkb is None:
        return None
    kind = int.from_bytes(wkb[1:5], "little") | 0x20000000
    return (wkb[:1] + kind.to_bytes(4, "little") + _SRID_4326 + wkb[5:]).hex()


def _copy_features(conn: sa.Connection, plan_id: str, version: int, layer: str, records) -> None:
    """Write a layer's rows with COPY: about ten times the speed of an INSERT per row,
    which is what a city-sized version (hundreds of thousands of rows) needs."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(_COPY_FEATURES) as copy:
        for c, p, j, w, _ in records:
            copy.write_row((plan_id, version, layer, c, p, j, _ewkb_hex(w)))


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "the database URL"
