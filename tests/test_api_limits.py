"""Limits a shared deployment needs: PostgreSQL cancels a statement past the configured
time, and the caller gets a clear 4xx instead of a hung connection or a 500."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import PG_URL
from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings


def test_a_statement_past_the_timeout_is_cancelled_and_answered_413(postgis_store, monkeypatch):
    from wangge.data.postgis_store import PostgisStore

    slow = PostgisStore(PG_URL, statement_timeout_ms=100)
    try:
        with slow.engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "100ms"
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.execute(sa.text("SELECT pg_sleep(1)"))

        def heavy(*args, **kwargs):
            with slow.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(1)"))

        monkeypatch.setattr(slow, "plans", heavy)
        client = TestClient(
            create_app(Settings(public_reads=True), slow), raise_server_exceptions=False
        )
        r = client.get("/plans")
        assert r.status_code == 413, r.text
        assert "WANGGE_STATEMENT_TIMEOUT_MS" in r.json()["error"]
    finally:
        slow.close()


def test_the_setting_reaches_the_store(monkeypatch):
    monkeypatch.setenv("WANGGE_STATEMENT_TIMEOUT_MS", "2500")
    assert Settings().statement_timeout_ms == 2500
