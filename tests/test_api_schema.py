"""A bounded schemathesis run against /openapi.json: whatever it sends, never a 500.

Every operation of the schema gets the same bounded number of generated requests. The
loop drives schemathesis's strategies through hypothesis directly rather than through
its pytest plugin, which breaks on newer pytest releases.
"""

from __future__ import annotations

import pytest
import schemathesis
from apitools import auth
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from wangge.api.app import create_app
from wangge.api.settings import Settings

EXAMPLES = 25


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, demo_plan_frames):
    from wangge.data.gpkg_store import GpkgStore

    frames, meta = demo_plan_frames
    store = GpkgStore(tmp_path_factory.mktemp("schema") / "store.gpkg")
    store.save("demo", frames, meta)
    app = create_app(Settings(plan="demo", max_upload_mb=2), store)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return schema, auth(store)


def test_no_server_errors(api_schema):
    api_schema, headers = api_schema
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10  # every route of the API is in the schema
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            case.call_and_validate(checks=[not_a_server_error], headers=headers)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc


def test_every_reference_in_the_schema_resolves(tmp_path):
    """Client generators stop at a dangling $ref (``#/$defs/PointIn`` once did)."""
    import json
    import re

    from fastapi.testclient import TestClient

    from wangge.data.gpkg_store import GpkgStore

    app = create_app(Settings(), GpkgStore(tmp_path / "store.gpkg"))
    spec = TestClient(app).get("/openapi.json").json()
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(spec)))
    known = {f"#/components/schemas/{name}" for name in spec["components"]["schemas"]}
    assert refs and refs <= known, sorted(refs - known)
