"""One contract, two stores: everything here runs on the GeoPackage file and on PostGIS."""

from __future__ import annotations

import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from wangge.data import gpkg_store
from wangge.data import store as store_module
from wangge.data.store import Rows
from wangge.errors import InputError, NotFound, VersionConflict


def pid() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def small():
    """Four squares in two parents, with Chinese names and a table beside them."""
    squares = [shapely.box(118.77 + i * 0.01, 32.03, 118.78 + i * 0.01, 32.04) for i in range(4)]
    grids = gpd.GeoDataFrame(
        {
            "code": [f"320102001001{i:03d}" for i in range(1, 5)],
            "parent_code": ["320102001001"] * 4,
            "name": [f"新街口第{i}网格" for i in range(1, 5)],
            "households": [310, 400, 455, 500],
            "deviation_pct": [-22.5, 0.0, 13.75, np.nan],
            "flag": ["", "", "oversize", ""],
        },
        geometry=squares,
        crs=4326,
    )
    table = pd.DataFrame({"code": ["a", "b"], "reason": ["缺口", "重叠"], "n": [1, 2]})
    return {"grids": grids, "violations": table}


def test_save_load_round_trip_keeps_codes_counts_types_and_order(store, demo_plan_frames):
    frames, meta = demo_plan_frames
    plan = pid()
    v = store.save(plan, frames, meta, author="测试", comment="first")
    assert v.version == 1
    back = store.load(plan)
    assert list(back) == list(frames)
    for name, frame in frames.items():
        got = back[name]
        attrs = [c for c in frame.columns if c != "geometry"]
        have = [c for c in got.columns if c != "geometry"]
        # the saved columns in their order, and an id made where the layer had none
        made = {store_module.MADE_IDS.get(name), store_module.MADE_ID}
        assert have[: len(attrs)] == attrs and set(have[len(attrs) :]) <= made, name
        assert len(got) == len(frame), name
        if "code" in frame:
            a = frame.set_index("code").sort_index()
            b = got.set_index("code").sort_index()
            assert a.index.equals(b.index), name  # a finding's code may be empty (None)
            if "households" in frame:
                assert (a["households"].to_numpy() == b["households"].to_numpy()).all(), name
                assert a["households"].dtype == b["households"].dtype
    grids = frames["grids"]
    back_grids = back["grids"].set_index("code").loc[grids["code"]]
    assert shapely.equals_exact(
        grids.geometry.to_numpy(), back_grids.geometry.to_numpy(), tolerance=1e-12
    ).all()
    assert store.resolve(plan).meta["district_code"] == meta["district_code"]


def test_versions_are_listed_and_each_keeps_its_own_layers(store, small):
    plan = pid()
    store.save(plan, small, author="a", comment="one")
    changed = {**small, "grids": small["grids"].assign(households=[300, 300, 300, 300])}
    v2 = store.save(plan, changed, base_version=1, author="b", comment="two")
    assert v2.version == 2
    listed = store.versions(plan)
    assert [v.version for v in listed] == [1, 2]
    assert [v.comment for v in listed] == ["one", "two"] and listed[1].author == "b"
    assert store.load(plan, 1)["grids"]["households"].tolist() == [310, 400, 455, 500]
    assert store.load(plan, 2)["grids"]["households"].tolist() == [300, 300, 300, 300]
    assert plan in [p.plan_id for p in store.plans()]


def test_stale_base_version_is_a_conflict_and_writes_nothing(store, small):
    plan = pid()
    store.save(plan, small)
    store.save(plan, small, base_version=1)
    with pytest.raises(VersionConflict) as info:
        store.save(plan, small, base_version=1)
    assert "latest is 2" in info.value.message and info.value.status_code == 409
    assert [v.version for v in store.versions(plan)] == [1, 2]


def test_a_crash_mid_save_leaves_the_last_version_intact(store, small, monkeypatch):
    plan = pid()
    store.save(plan, small)
    real = store_module.flatten

    class Exploding(list):
        def __iter__(self):
            yield from super().__iter__()
            raise OSError("disk gone mid-save")

    def failing(name, frame):
        rows = real(name, frame)
        return Rows(rows.info, rows.dtypes, Exploding(rows.records))

    monkeypatch.setattr(store_module, "flatten", failing)
    with pytest.raises(OSError):
        store.save(plan, small, base_version=1)
    monkeypatch.undo()
    assert [v.version for v in store.versions(plan)] == [1]
    assert len(store.load(plan)["grids"]) == 4
    assert store.save(plan, small, base_version=1).version == 2


def test_query_by_bbox_pages_in_code_order(store, small):
    plan = pid()
    store.save(plan, small)
    page = store.query(plan, 1, "grids", bbox=(118.785, 32.035, 118.795, 32.036))
    assert page.number_matched == 2
    assert page.frame["code"].tolist() == ["320102001001002", "320102001001003"]
    first = store.query(plan, 1, "grids", limit=2, offset=0)
    rest = store.query(plan, 1, "grids", limit=2, offset=2)
    assert first.number_matched == rest.number_matched == 4
    assert first.frame["code"].tolist() + rest.frame["code"].tolist() == sorted(
        small["grids"]["code"]
    )
    empty = store.query(plan, 1, "grids", bbox=(0.0, 0.0, 1.0, 1.0))
    assert empty.number_matched == 0 and len(empty.frame) == 0
    beyond = store.query(plan, 1, "grids", limit=10, offset=99)
    assert beyond.number_matched == 4 and len(beyond.frame) == 0


def test_bbox_that_only_touches_a_bounding_box_is_not_a_match(store):
    plan = pid()
    tri = shapely.Polygon([(118.0, 32.0), (118.1, 32.0), (118.0, 32.1)])
    frame = gpd.GeoDataFrame({"code": ["x"], "parent_code": [""]}, geometry=[tri], crs=4326)
    store.save(plan, {"zones": frame})
    # inside the triangle's bounding box, outside the triangle
    assert store.query(plan, 1, "zones", bbox=(118.08, 32.08, 118.09, 32.09)).number_matched == 0
    assert store.query(plan, 1, "zones", bbox=(118.01, 32.01, 118.02, 32.02)).number_matched == 1


def test_item_and_unknown_names(store, small):
    plan = pid()
    store.save(plan, small)
    got = store.item(plan, 1, "grids", "320102001001003")
    assert got["name"].iat[0] == "新街口第3网格" and got["flag"].iat[0] == "oversize"
    with pytest.raises(NotFound, match="no feature with code"):
        store.item(plan, 1, "grids", "999")
    with pytest.raises(NotFound, match="no layer 'streets'"):
        store.query(plan, 1, "streets")
    with pytest.raises(NotFound, match="not 7"):
        store.resolve(plan, 7)
    with pytest.raises(NotFound, match="no plan named"):
        store.resolve(pid())


def test_cover_finds_every_level_and_says_outside(store, demo_plan_frames):
    frames, meta = demo_plan_frames
    plan = pid()
    store.save(plan, frames, meta)
    micro = frames["microgrids"]
    pts = micro.geometry.representative_point()
    lon = np.r_[pts.x.to_numpy()[:50], 100.0]
    lat = np.r_[pts.y.to_numpy()[:50], 20.0]
    found = store.cover(plan, 1, lon, lat)
    assert found["microgrid_code"].tolist()[:50] == micro["code"].tolist()[:50]
    assert (found["grid_code"][:50] == found["microgrid_code"][:50].str[:15]).all()
    assert (found["street_code"][:50].str.len() == 9).all()
    assert found["grid_households"][:50].notna().all() and found["grid_name"][:50].notna().all()
    assert not found["inside"].iat[50] and found["microgrid_code"].iat[50] == ""


def test_bad_input_is_named_and_nothing_is_stored(store, small):
    plan = pid()
    with pytest.raises(InputError, match="plan id"):
        store.save("../etc", small)
    with pytest.raises(InputError, match="layer name"):
        store.save(plan, {"Bad Name": small["grids"]})
    no_crs = small["grids"].set_crs(None, allow_override=True)
    with pytest.raises(InputError, match="no CRS"):
        store.save(plan, {"grids": no_crs})
    assert store.versions(plan) == []


def test_the_geopackage_store_is_a_geopackage_gis_tools_open(tmp_path, small):
    st = gpkg_store.GpkgStore(tmp_path / "s.gpkg")
    st.save("p", small)
    st.save("p", small, base_version=1)
    st.close()
    read = gpd.read_file(tmp_path / "s.gpkg", layer="wg_features", engine="pyogrio")
    assert read.crs.to_epsg() == 4326
    assert len(read) == 12 and read.geometry.notna().sum() == 8  # two versions
    with pytest.raises(InputError, match="not a GeoPackage"):
        bad = tmp_path / "bad.gpkg"
        bad.write_text("not sqlite")
        gpkg_store.GpkgStore(bad)
