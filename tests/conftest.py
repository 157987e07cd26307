"""Shared fixtures: the bundled demo, ingested once per test session."""

from __future__ import annotations

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
