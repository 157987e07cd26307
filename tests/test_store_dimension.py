"""The stores' geometry-dimension filter, on the GeoPackage file and on PostGIS: ``query``
keeps the features of one dimension (0 points, 1 lines, 2 areas; a collection its highest
part's, as ST_Dimension) before it counts and pages, so the OGC API can serve a layer that
mixes dimensions as one collection per dimension (tests/test_ogc.py)."""

from __future__ import annotations

import uuid

import geopandas as gpd
import numpy as np
import pytest
import shapely

from wangge.errors import NotFound

X, Y, D = 118.78, 32.04, 0.001


def _shapes(x: float) -> list:
    """One of each kind at ``x``: point, line, polygon, multipoint, a collection of a point
    and a line (a line, then), multipolygon."""
    line = shapely.LineString([(x, Y), (x, Y + D)])
    square = shapely.box(x, Y, x + D / 2, Y + D / 2)
    return [
        shapely.Point(x, Y),
        line,
        square,
        shapely.MultiPoint([(x, Y), (x, Y + D)]),
        shapely.GeometryCollection([shapely.Point(x, Y), line]),
        shapely.MultiPolygon([square]),
    ]


def _mixed() -> gpd.GeoDataFrame:
    """24 features of every kind in turn, the last with no geometry, their codes in no
    order of dimension or of storage."""
    geoms = [_shapes(X + i * D)[i % 6] for i in range(23)] + [None]
    codes = [f"c{(i * 7) % 24:02d}" for i in range(24)]
    return gpd.GeoDataFrame({"code": codes, "i": range(24)}, geometry=geoms, crs=4326)


@pytest.fixture
def saved(store):
    plan = f"dim{uuid.uuid4().hex[:10]}"
    frame = _mixed()
    v = store.save(plan, {"mixed": frame})
    return store, plan, v.version, frame


def test_a_dimension_is_counted_paged_and_boxed_in_the_store(saved):
    store, plan, version, frame = saved
    dims = shapely.get_dimensions(frame.geometry.to_numpy())
    assert store.layers(plan, version)[0].geometry_type == "Geometry"
    for d in (0, 1, 2):
        want = sorted(frame["code"][dims == d])
        whole = store.query(plan, version, "mixed", dimension=d)
        assert whole.number_matched == len(want) == len(whole.frame)
        assert whole.frame["code"].tolist() == want, d
        assert (shapely.get_dimensions(whole.frame.geometry.to_numpy()) == d).all()
        pages, offset = [], 0
        while offset < len(want):
            page = store.query(plan, version, "mixed", limit=3, offset=offset, dimension=d)
            assert page.number_matched == len(want), (d, offset)
            pages += page.frame["code"].tolist()
            offset += 3
        assert pages == want, d
        box = (X + 6 * D - D / 4, Y - D, X + 14 * D + D / 4, Y + D)
        inside = sorted(frame["code"][(dims == d) & frame.intersects(shapely.box(*box)).to_numpy()])
        assert 0 < len(inside) < len(want)
        boxed = store.query(plan, version, "mixed", bbox=box, limit=2, offset=1, dimension=d)
        assert boxed.number_matched == len(inside)
        assert boxed.frame["code"].tolist() == inside[1:3]
    # no filter: every feature, the one without geometry too; no dimension: none
    assert store.query(plan, version, "mixed").number_matched == 24
    assert store.query(plan, version, "mixed", dimension=3).number_matched == 0


def test_an_item_is_found_in_its_own_dimension_only(saved):
    store, plan, version, frame = saved
    dims = shapely.get_dimensions(frame.geometry.to_numpy())
    code = frame["code"].iloc[int(np.flatnonzero(dims == 1)[0])]
    assert store.item(plan, version, "mixed", code, dimension=1)["code"].tolist() == [code]
    assert len(store.item(plan, version, "mixed", code)) == 1
    with pytest.raises(NotFound):
        store.item(plan, version, "mixed", code, dimension=2)
