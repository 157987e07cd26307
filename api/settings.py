"""Settings from the environment (prefix ``WANGGE_``), in one place."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What a deployment sets; every field reads ``WANGGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="WANGGE_", extra="ignore")

    #: A PostGIS URL (``postgresql+psycopg://user@host/db``); when set, the shared store.
    database_url: str | None = None
    #: A GeoPackage path or a database URL; overrides ``database_url`` (``--store``).
    store: str | None = None
    #: Where the embedded GeoPackage store lives when neither of the above is set.
    data_dir: Path = Path("out")
    #: The plan served when a request names none (default: the newest).
    plan: str | None = None
    #: Let callers without an API key read (collections, tiles, lookups, exports). Off by
    #: default: every route but health, the editor page and the API description needs a key.
    public_reads: bool = False
    #: Largest upload accepted by ``POST /plans``, in megabytes.
    max_upload_mb: float = 50.0
    #: Most features in one uploaded plan, grid layer or roster file.
    max_upload_features: int = 200_000
    #: Largest ``bbox`` a request may name, in km² (a whole Chinese city is a few thousand).
    max_bbox_km2: float = 20_000.0
    #: A read (GET) that has not begun to answer after this many seconds is refused (413).
    request_timeout_s: float = 60.0
    #: Most points in one ``POST /coverage/points`` batch.
    max_batch: int = 10_000
    #: The lowest fuzzy score (0–100) at which an address lookup answers; below it the
    #: answer is no match (wangge/geo/geocode.py MIN_SCORE).
    address_min_score: float = 80.0
    #: Most features in one page of items.
    max_limit: int = 10_000
    #: Refuse (428) a write to a feature (OGC API – Features Part 4: PUT, PATCH, DELETE)
    #: without ``If-Match``. Off by default: QGIS sends none, so its edits would all fail;
    #: a write that sends one is checked against the feature's ETag either way (412).
    require_if_match: bool = False
    #: Memory for encoded vector tiles, in megabytes (0 turns the tile cache off).
    tile_cache_mb: float = 256.0
    #: Most features one layer puts in one tile; beyond it the largest are kept.
    tile_max_features: int = 20_000
    #: Tiles a server process cuts at once (more wait their turn): cutting is CPU work, so
    #: more than the cores gain nothing, and on PostGIS each needs a ready connection (the
    #: store readies this many at startup, data/pg_tiles.py).
    tile_renders: int = 4
    #: On PostGIS, a statement running longer than this (ms) is cancelled (413 to the
    #: caller), so one heavy request cannot hold the database for the others.
    statement_timeout_ms: int = 30_000
    #: Origins whose pages may call the API from a browser (CORS), comma-separated, e.g.
    #: ``https://dashboard.city.gov.cn``; ``*`` for any. Empty (the default): none.
    cors_origins: str = ""
    #: On PostGIS, the connections one server process keeps open, and the extra ones it
    #: opens (and closes again) when more requests than that use the database at once.
    #: Their sum should cover the 40 threads that run requests; processes × sum must stay
    #: under PostgreSQL's max_connections (100 by default).
    db_pool_size: int = 20
    db_pool_overflow: int = 20

    @property
    def db_pool(self) -> tuple[int, int]:
        return (self.db_pool_size, self.db_pool_overflow)

    def store_target(self) -> str:
        """The store to open: ``store``, else ``database_url``, else the data dir's file."""
        if self.store:
            return self.store
        if self.database_url:
            return self.database_url
        return str(self.data_dir / "wangge.gpkg")
