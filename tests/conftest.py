"""Shared fixtures: the bundled demo, ingested once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_OSM = ROOT / "data" / "demo" / "nanjing-xinjiekou.osm"


@pytest.fixture(scope="session")
def demo_osm() -> Path:
    return DEMO_OSM


@pytest.fixture(scope="session")
def demo_extract():
    from wangge.data.osm import read_osm

    return read_osm(DEMO_OSM)


@pytest.fixture(scope="session")
def demo_result():
    from wangge.ingest import ingest

    return ingest(DEMO_OSM, progress=False)


@pytest.fixture(scope="session")
def demo_metric(demo_result):
    """The demo's layers in its metric CRS (EPSG:4549)."""
    return {k: v.to_crs(demo_result.crs) for k, v in demo_result.layers.items()}


@pytest.fixture(scope="session")
def demo_plan():
    """The demo delineated with default limits (metric layers, limits, issues)."""
    from wangge.delineate import delineate

    return delineate(DEMO_OSM)


@pytest.fixture(scope="session")
def plan_dir(demo_result, tmp_path_factory):
    """A directory with the demo's units.gpkg and the plan `wangge delineate` made of it."""
    from clitools import run

    from wangge.ingest import write_units

    d = tmp_path_factory.mktemp("plan")
    units = write_units(demo_result, d)
    res = run("delineate", units, "--out", d, "--seed", 7)
    assert res.returncode == 0, res.stderr
    return d


@pytest.fixture(scope="session")
def risk_plan_dir(plan_dir, tmp_path_factory):
    """A copy of ``plan_dir`` with the seeded sample register overlaid and coverage
    measured, as `wangge demo` does: plan.gpkg holds the risk and coverage layers, and
    the maps are beside it."""
    import shutil

    d = tmp_path_factory.mktemp("risk") / "plan"
    shutil.copytree(plan_dir, d)
    return with_samples(d)


def with_samples(d: Path, seed: int = 0) -> Path:
    """The plan in ``d`` with the seeded sample register overlaid and coverage measured
    (risk and coverage layers in plan.gpkg, the maps beside it)."""
    from wangge.data.samples import write_samples
    from wangge.overlay import coverage, overlay

    samples = write_samples(d, seed=seed)
    overlay(
        d,
        samples["risks"],
        zones=samples["zones"],
        facilities=[samples["facilities"]],
        vulnerable=samples["vulnerable"],
        progress=False,
    )
    coverage(d, progress=False)
    return d


@pytest.fixture(scope="session")
def demo_plan_frames(demo_plan):
    """The demo plan's layers as plan.gpkg holds them (WGS84), and its meta."""
    from wangge.delineate import plan_frames
    from wangge.geo.validate import validate

    frames = plan_frames(demo_plan, validate(demo_plan.layers, demo_plan.limits))
    table = frames.pop("meta")
    return frames, dict(zip(table["key"], table["value"], strict=True))


_PG_BASE = os.environ.get(
    "WANGGE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/wangge_test"
)


def worker_database(url: str) -> str:
    """``url``, or under pytest-xdist a database of the worker's own (``wangge_test_gw0``...),
    made with PostGIS on first use: :func:`postgis_store` empties its tables when a session
    starts, which must not reach another worker's plans. Unreachable PostGIS: ``url``
    unchanged, and the tests that need it say so."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    name = f"{base.database}_{worker}"
    try:
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            known = sa.text("SELECT 1 FROM pg_database WHERE datname = :n")
            if conn.execute(known, {"n": name}).first() is None:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = sa.create_engine(base.set(database=name))
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
    except sa.exc.SQLAlchemyError:
        return url
    return base.set(database=name).render_as_string(hide_password=False)


#: The PostGIS the tests use; scripts/ensure_services.sh creates it on a fresh machine.
PG_URL = worker_database(_PG_BASE)


def need(service: str, problem: str) -> None:
    """Skip a test for want of a service, except in CI, where that is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{service} is required in CI: {problem}")
    pytest.skip(f"{service} not available (with CI=true this fails instead): {problem}")


@pytest.fixture(scope="session")
def postgis_store():
    """A PostGIS store on a clean test database (tables emptied once per session)."""
    from wangge.data.postgis_store import PostgisStore
    from wangge.errors import InputError

    try:
        store = PostgisStore(PG_URL)
    except InputError as exc:
        need("PostGIS", str(exc))
    import sqlalchemy as sa

    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE wg_features, wg_layers, wg_versions, wg_plans"))
    yield store
    store.close()


@pytest.fixture(params=["gpkg", "postgis"])
def store(request, tmp_path):
    """Each store in turn: a fresh GeoPackage file, and the shared PostGIS test database."""
    if request.param == "gpkg":
        from wangge.data.gpkg_store import GpkgStore

        st = GpkgStore(tmp_path / "store.gpkg")
        yield st
        st.close()
    else:
        yield request.getfixturevalue("postgis_store")
