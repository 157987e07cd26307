"""Cold tiles on the PostGIS store (issue 25): the prepared tile query cuts what the
SQLAlchemy statement it is compiled from cuts, a cache miss equals the cached tile, and a
server that opens its own store readies its connections for tiles before it is up."""

from __future__ import annotations

import uuid

import mapbox_vector_tile
import pytest
from conftest import PG_URL
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data import pg_tiles
from wangge.data.plan import plan_from_frames, read_plan
from wangge.data.postgis_store import features_table
from wangge.data.spans import rows_filter
from wangge.data.tiles import TileRequest, tile_fields
from wangge.importing import save_plan
from wangge.maps.tile_grids import WEB_MERCATOR_QUAD

LAYERS = ("grids", "units", "buildings")


@pytest.fixture(scope="module")
def saved(postgis_store, plan_dir):
    """The demo plan saved once in the PostGIS test database."""
    plan = f"cold-{uuid.uuid4().hex[:8]}"
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(postgis_store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "t", "cold")
    return postgis_store, plan


def tiles_at(store, plan: str, layer: str, z: int) -> list[tuple[int, int, int]]:
    bbox = next(i.bbox for i in store.layers(plan, 1) if i.name == layer)
    x0, y0, x1, y1 = WEB_MERCATOR_QUAD.tiles_over(z, bbox)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


@pytest.mark.parametrize("cap", [20_000, 7])
def test_the_prepared_query_cuts_what_its_statement_cuts(saved, cap):
    """Byte for byte, with and without simplification (z13, z16) and with a cap: the
    compiled text run by the driver against the statement run by SQLAlchemy."""
    store, plan = saved
    for layer in LAYERS:
        info = store._check_layer(plan, 1, layer)
        fields = tile_fields(layer, info.columns, store.dtypes(plan, 1, layer))
        span, _ = rows_filter(info, 1, "wg_features")
        for z in (13, 16):
            for tile in tiles_at(store, plan, layer, z)[:6]:
                req = TileRequest(layer, *tile, max_features=cap)
                capped = info.count > cap
                stmt = pg_tiles.tile_statement(features_table, layer, fields, capped, req, span)
                sql, params = store._tile_sql(plan, 1, req)
                with store._tile_reads.connect() as conn:
                    by_sqlalchemy = conn.execute(stmt, sql.args(plan, req, params)).scalar()
                prepared = store.tile(plan, 1, req)
                assert prepared == bytes(by_sqlalchemy or b""), (layer, tile, cap)
                if prepared:
                    features = mapbox_vector_tile.decode(prepared)[layer]["features"]
                    assert len(features) <= cap


def test_a_cold_tile_equals_the_cached_one_and_a_new_server_is_ready_for_it(saved):
    """A server over its own store (as ``wangge serve`` runs) readies ``tile_renders``
    connections for tiles at startup; its first tiles open no other, and each cache miss
    equals the tile the cache then serves."""
    store, plan = saved
    settings = Settings(database_url=PG_URL, plan=plan, public_reads=True, tile_renders=2)
    with TestClient(create_app(settings)) as client:
        own = client.app.state.store
        assert own is not store
        pool = own._tile_reads.pool
        assert pool.checkedin() == 2 and pool.checkedout() == 0
        with own._tile_reads.connect() as conn:  # each readied connection has them prepared
            raw = conn.connection.driver_connection
            prepared = raw.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%ST_AsMVT%'"
            ).fetchone()[0]
            assert raw.execute("SHOW plan_cache_mode").fetchone()[0] == "force_generic_plan"
        tiled = client.get("/tiles").json()["layers"]
        assert prepared >= 1 and prepared == len({_shape(own, plan, t["id"]) for t in tiled})
        for layer in LAYERS:
            for z, x, y in tiles_at(store, plan, layer, 15)[:4]:
                url = f"/tiles/{layer}/{z}/{x}/{y}.mvt"
                cold = client.get(url)
                warm = client.get(url)
                assert cold.status_code == warm.status_code == 200
                assert cold.content == warm.content and cold.headers["etag"] == warm.headers["etag"]
                assert cold.content == store.tile(plan, 1, TileRequest(layer, z, x, y))
        stats = client.get("/tiles").json()["cache"]
        assert stats["misses"] >= stats["hits"] > 0
        assert pool.checkedin() + pool.checkedout() == 2  # no connection opened for a tile


def _shape(store, plan: str, layer: str) -> str:
    """The text of a layer's tile statement (layers of one shape share one)."""
    return store._tile_sql(plan, 1, TileRequest(layer, 16, 0, 0))[0].text


def test_a_server_with_no_plan_yet_starts_without_readying_anything(tmp_path):
    from wangge.api import tiles

    with TestClient(create_app(Settings(store=str(tmp_path / "empty.gpkg")))) as client:
        assert client.portal.call(tiles.warm, client.app) == 0
