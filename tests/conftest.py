"""Shared fixtures: the bundled demo, ingested once per test session."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
DEMO_OSM = ROOT / "data" / "demo" / "nanjing-xinjiekou.osm"
CI = os.environ.get("CI", "").lower() == "true"

#: Hypothesis in CI (CI=true): the examples derive from each test alone, so a run is
#: the same on every machine and at any load; no deadline (a loaded machine is slow, not
#: wrong); no example database carried between runs. A failure prints the example and
#: the blob that replays it (@reproduce_failure). Elsewhere the default profile draws
#: new examples each run; ``--hypothesis-profile ci`` gives the CI one.
settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True)
if CI:
    settings.load_profile("ci")


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

    return delineate(DEMO_OSM, district_code="320102")  # 玄武区


@pytest.fixture(scope="session")
def plan_dir(demo_result, tmp_path_factory):
    """A directory with the demo's units.gpkg and the plan `wangge delineate` made of it."""
    from clitools import run

    from wangge.ingest import write_units

    d = tmp_path_factory.mktemp("plan")
    units = write_units(demo_result, d)
    res = run("delineate", units, "--out", d, "--seed", 7, "--district-code", "320102")
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
    from wangge.coverage import coverage
    from wangge.data.samples import write_samples
    from wangge.overlay import overlay

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


def _run_pid() -> int:
    """The pytest run this process belongs to: the xdist controller for a worker, else this
    process."""
    return os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()


def run_database(url: str, tag: str = "") -> str:
    """``url`` renamed to a database of this run's own (``wangge_test_p4242_gw0``, ``tag``
    appended when given): the process id of the run, the xdist worker, the tag.

    Each run, and each worker in it, has its own database, made with PostGIS by
    :func:`make_database` and dropped when the run ends. Sharing one by name
    (``wangge_test_gw0``) let two runs on one machine empty each other's tables: a plan
    vanished under a schemathesis run mid-way (404 on the plan it had just listed)."""
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    parts = [base.database, f"p{_run_pid()}", worker, tag]
    name = "_".join(p for p in parts if p)
    return base.set(database=name).render_as_string(hide_password=False)


def _stale(name: str, prefix: str) -> bool:
    """A database of a run whose process is gone (killed before it dropped it)."""
    m = re.fullmatch(rf"{re.escape(prefix)}_p(\d+)(_.*)?", name)
    if m is None:
        return False
    try:
        os.kill(int(m[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


def make_database(url: str) -> bool:
    """Create the database ``url`` names, with PostGIS, if it is not there; drop the
    databases that runs killed on this machine left behind. False when PostGIS cannot be
    reached (the tests that need it say so)."""
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    base = sa.engine.make_url(_PG_BASE)
    local = target.host in (None, "", "127.0.0.1", "localhost", "::1")
    try:
        admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            names = [r[0] for r in conn.execute(sa.text("SELECT datname FROM pg_database"))]
            for name in names:
                if local and _stale(name, base.database):
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if target.database not in names:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
        engine = sa.create_engine(target)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
    except sa.exc.SQLAlchemyError:
        return False
    _MADE.append(url)
    return True


def drop_databases(pid: int | None = None) -> None:
    """Drop the databases this process made, and with ``pid`` every database of that run
    (its workers' too, should one have died)."""
    import sqlalchemy as sa

    base = sa.engine.make_url(_PG_BASE)
    try:
        admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            names = {sa.engine.make_url(u).database for u in _MADE}
            if pid is not None:
                run = re.compile(rf"{re.escape(base.database)}_p{pid}(_.*)?")
                found = conn.execute(sa.text("SELECT datname FROM pg_database"))
                names |= {r[0] for r in found if run.fullmatch(r[0])}
            for name in sorted(names):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    except sa.exc.SQLAlchemyError:
        pass
    _MADE.clear()


#: The databases this process made (dropped when it ends).
_MADE: list[str] = []
#: The PostGIS the tests use: a database of this run's own, made when pytest starts (the
#: xdist controller, which runs no test, makes none). scripts/ensure_services.sh brings up
#: PostgreSQL with PostGIS on a fresh machine.
PG_URL = run_database(_PG_BASE)


def own_database(tag: str) -> str:
    """The URL of a database of this run's own beside :data:`PG_URL`, made empty with
    PostGIS, for tests whose answers depend on every plan the store holds (GET /plans)."""
    url = run_database(_PG_BASE, tag)
    make_database(url)
    return url


def pytest_configure(config) -> None:
    controller = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if not controller:
        make_database(PG_URL)


def pytest_unconfigure(config) -> None:
    drop_databases(pid=os.getpid())


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
