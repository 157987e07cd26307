"""The OpenAPI document says what the server does about keys: optional on the read routes
when reads are public, required everywhere else (schemathesis's ignored_auth check
reads it so: it found ~20 anonymous reads answered though the document asked a key)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.gpkg_store import GpkgStore


def _doc(tmp_path, public: bool) -> dict:
    store = GpkgStore(tmp_path / f"store-{public}.gpkg")
    return create_app(Settings(public_reads=public), store).openapi()


def test_a_key_is_optional_on_reads_only_when_reads_are_public(tmp_path):
    # two apps in one process share their routes: each document follows its own settings
    open_doc, closed_doc = _doc(tmp_path, True), _doc(tmp_path, False)
    for doc, public in ((open_doc, True), (closed_doc, False)):
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                if not isinstance(op, dict) or "x-wangge-policy" not in op:
                    continue
                optional = {} in op.get("security", [])
                policy = op["x-wangge-policy"]
                if policy == "public":
                    continue
                assert optional == (public and policy == "read"), (method, path, policy)
                assert any(op.get("security", [])), (method, path)  # the schemes stay


def test_anonymous_reads_are_answered_as_the_document_says(tmp_path):
    store = GpkgStore(tmp_path / "s.gpkg")
    for public, status in ((True, 404), (False, 401)):
        app = create_app(Settings(public_reads=public), store)
        with TestClient(app) as client:
            # no plan in the store: a public read gets as far as looking for it
            assert client.get("/collections").status_code == status
            assert client.get("/me").status_code == 401
