"""A bounded schemathesis run against /openapi.json: whatever it sends, never a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from wangge.api.app import create_app
from wangge.api.settings import Settings


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, demo_plan_frames):
    from wangge.data.gpkg_store import GpkgStore

    frames, meta = demo_plan_frames
    store = GpkgStore(tmp_path_factory.mktemp("schema") / "store.gpkg")
    store.save("demo", frames, meta)
    app = create_app(Settings(plan="demo", max_upload_mb=2), store)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
