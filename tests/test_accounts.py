"""Accounts and the audit log, one contract on both stores: keys stored as digests only,
expiry and revocation, territorial scopes, an audit log the database keeps append-only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from clitools import run

from wangge.data.accounts import Account, audit_entry, key_digest, make_account, new_key
from wangge.errors import InputError, NotFound


def name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def test_keys_are_random_long_and_stored_only_as_digests(store):
    who, key = name(), new_key()
    assert key.startswith("wg_") and len(key) >= 40 and key != new_key()
    store.book.add(make_account(who, "planner", ["320102001004"]), key)
    with store.book.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM wg_accounts WHERE name = :n"), {"n": who})
        stored = " ".join(str(v) for v in rows.one())
    assert key not in stored and key_digest(key) in stored
    found = store.book.find(key)
    assert found is not None and found.name == who and found.scopes == ("320102001004",)
    assert store.book.find(key + "x") is None and store.book.find(new_key()) is None


def test_revoked_and_expired_keys_never_authenticate(store):
    who, key = name(), new_key()
    store.book.add(make_account(who, "viewer"), key)
    assert store.book.revoke(who).revoked_at
    assert store.book.find(key) is None
    with pytest.raises(NotFound):
        store.book.revoke(who)
    # a revoked name may be given a new key; an active one may not be added twice
    again = new_key()
    store.book.add(make_account(who, "viewer"), again)
    assert store.book.find(again).name == who
    with pytest.raises(InputError, match="revoke it first"):
        store.book.add(make_account(who, "viewer"), new_key())
    old, key2 = name(), new_key()
    store.book.add(make_account(old, "viewer", expires_days=-1), key2)
    assert store.book.find(key2) is None


def test_roles_and_scopes():
    planner = make_account("p", "planner", ["320102001004", "320102001005"])
    assert planner.covers("320102001004003") and not planner.covers("320102001006001")
    assert planner.at_least("viewer") and not planner.at_least("admin")
    assert make_account("a", "admin").covers("110108001001001")
    with pytest.raises(InputError, match="needs at least one scope"):
        make_account("p", "planner")
    with pytest.raises(InputError, match="code prefix"):
        make_account("p", "planner", ["3201"])
    with pytest.raises(InputError, match="unknown role"):
        make_account("p", "root")
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert Account("e", "viewer", (), "", None, None).active() is not False
    assert Account("e", "viewer", (), "", later).active()
    assert not Account("e", "viewer", (), "", later).active(datetime.now(UTC) + timedelta(3))


def test_audit_log_is_append_only_in_the_database(store):
    plan = f"a{uuid.uuid4().hex[:8]}"
    store.book.append(audit_entry("li.ming", "edit", plan, 2, grids=["320102001004003"]))
    store.book.append(audit_entry("admin", "restore", plan, 3, restored=1))
    log = store.book.log(plan)
    assert log["action"].tolist() == ["edit", "restore"] and log["base_version"].tolist() == [2, 3]
    assert "320102001004003" in log["detail"].iloc[0]
    for statement in ("UPDATE wg_audit SET account = 'x'", "DELETE FROM wg_audit"):
        with (
            pytest.raises(sa.exc.DBAPIError, match="append-only"),
            store.book.engine.begin() as conn,
        ):
            conn.execute(sa.text(statement + " WHERE plan_id = :p"), {"p": plan})
    assert len(store.book.log(plan)) == 2


def test_users_command_adds_lists_and_revokes(tmp_path):
    target = tmp_path / "store.gpkg"
    proc = run("users", "add", "li.ming", "--scope", "320102001004", "--store", target)
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.strip().splitlines()[-1]
    assert key.startswith("wg_")
    listed = run("users", "list", "--store", target)
    assert "li.ming" in listed.stdout and "320102001004" in listed.stdout
    assert key not in listed.stdout
    assert run("users", "revoke", "li.ming", "--store", target).returncode == 0
    assert "revoked" in run("users", "list", "--store", target).stdout
    bad = run("users", "add", "x", "--role", "planner", "--store", target)
    assert bad.returncode == 2 and "needs at least one scope" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_demo_makes_its_admin_once_and_the_key_signs_in(tmp_path, capsys):
    from wangge.cli import demo_admin
    from wangge.data.gpkg_store import GpkgStore

    target = str(tmp_path / "store.gpkg")
    demo_admin(target)
    printed = capsys.readouterr().out
    key = next(w for w in printed.split() if w.startswith("wg_"))
    store = GpkgStore(target)
    try:
        assert store.book.find(key).role == "admin"
    finally:
        store.close()
    demo_admin(target)  # a store with an account keeps it, and no new key is printed
    assert "wg_" not in capsys.readouterr().out


def test_serve_on_a_fresh_store_says_how_to_make_the_first_admin(tmp_path):
    import subprocess
    import time

    from clitools import WANGGE
    from e2e_server import free_port

    proc = subprocess.Popen(
        [WANGGE, "serve", "--store", str(tmp_path / "s.gpkg"), "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "signed in only" in line or not line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = "".join(seen)
    assert "no account yet" in text and "wangge users add NAME --role admin" in text, text


def test_a_key_is_taken_as_bearer_header_or_basic_password(store):
    """GIS clients that can only send HTTP Basic (GDAL's GDAL_HTTP_USERPWD, a QGIS Basic
    configuration) sign in with the key as the password; a wrong or revoked key is 401
    whichever way it comes."""
    import base64

    from fastapi.testclient import TestClient

    from wangge.api.app import create_app
    from wangge.api.settings import Settings

    key = new_key()
    account = make_account(name(), "viewer", [])
    store.book.add(account, key)

    def basic(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    with TestClient(create_app(Settings(), store)) as client:

        def status(headers: dict[str, str]) -> int:
            return client.get("/me", headers=headers).status_code

        assert status({}) == 401
        assert status({"Authorization": f"Bearer {key}"}) == 200
        assert status({"X-API-Key": key}) == 200
        assert status(basic("key", key)) == 200
        assert status(basic("", key)) == 200
        assert client.get("/me", headers=basic("gis", key)).json()["name"] == account.name
        assert status(basic(key, "")) == 401  # the key is the password, not the user name
        assert status(basic("key", "wg_not-a-key")) == 401
        store.book.revoke(account.name)
        assert status(basic("key", key)) == 401
