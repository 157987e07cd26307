"""The shortcuts that make a saved edit cost its change, not the city (issue 23), give the
same answers as the long way: a patch of rows in the base's order or shuffled, level
codes kept for a frozen assignment, a summary of some codes, a layer's new rows put in
place instead of sorted."""

from __future__ import annotations

import random
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from wangge.data.store import patch_of
from wangge.geo import assignment as ge
from wangge.plan_state import _with_rows

SEED = 7


def grids(n: int, rng: random.Random) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [f"320102001{i // 9 + 1:03d}{i % 9 + 1:03d}" for i in range(n)],
            "households": [float(rng.randint(250, 550)) for _ in range(n)],
            "name": [f"网格{i}" for i in range(n)],
        },
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)],
        crs=4326,
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_patch_is_the_same_whether_the_rows_keep_the_bases_order_or_not(seed):
    rng = random.Random(SEED + seed)
    old = grids(60, rng)
    new = old.copy()  # the same geometry objects: the shortcut that skips coordinates
    for i in rng.sample(range(60), 4):
        new.loc[i, "households"] = float(rng.randint(250, 550)) + 0.5
    i = rng.randrange(60)
    new.loc[i, "geometry"] = shapely.box(i, 0, i + 1, 1.001)  # a moved outline
    j = rng.randrange(60)
    new.loc[j, "geometry"] = shapely.box(j, 0, j + 1, 1)  # a new object, the same shape
    new.loc[rng.randrange(60), "name"] = None
    changed = set(new["code"][(new["households"] != old["households"]).to_numpy()])
    changed |= {new["code"][i]} | set(new["code"][new["name"].isna()])

    aligned = patch_of("grids", new, old)
    shuffled = patch_of("grids", new.sample(frac=1, random_state=seed), old)
    for patch in (aligned, shuffled):
        assert patch is not None
        assert {r[0] for r in patch.rows.records} == changed
        assert set(patch.retire) == changed
        assert patch.rows.info.count == 60
        assert patch.rows.info.bbox == pytest.approx((0.0, 0.0, 60.0, 1.001))
    # dropping a row retires it; a new id is written
    extra = new.iloc[[0]].assign(code="320102009009009")
    grown = gpd.GeoDataFrame(pd.concat([new.iloc[1:], extra]), crs=4326)
    patch = patch_of("grids", grown, old)
    assert old["code"][0] in patch.retire
    assert "320102009009009" in {r[0] for r in patch.rows.records}


def test_level_codes_are_kept_only_for_an_assignment_that_cannot_change():
    micro = np.array(["320102001001001001", "320102001002003004"] * 50, dtype=object)
    loose = ge.level_codes(micro, "grid")
    micro[0] = "320102009009009009"
    assert ge.level_codes(micro, "grid")[0] == "320102009009009" != loose[0]

    fixed = ge.frozen(micro.copy())
    first = ge.level_codes(fixed, "community")
    assert ge.level_codes(fixed, "community") is first
    assert list(first[:2]) == ["320102009009", "320102001002"]
    with pytest.raises(ValueError):
        fixed[1] = "320102001001001001"  # frozen: a change cannot slip past the codes
    with pytest.raises(ValueError):
        first[0] = "x"
    view = ge.frozen(micro[10:20])  # a view is copied before it is frozen
    assert view.flags.owndata and not view.flags.writeable


@pytest.mark.parametrize("seed", range(3))
def test_a_summary_of_some_codes_is_the_whole_summary_of_those_codes(seed):
    rng = np.random.default_rng(SEED + seed)
    n = 400
    # what a summary reads of the units: their households, population and area
    units = SimpleNamespace(
        households=rng.integers(0, 40, n).astype(float),
        population=rng.integers(0, 90, n).astype(float),
        area=rng.uniform(100, 900, n),
    )
    micro = np.array(
        [f"320102001{g // 6:03d}{g % 6:03d}{k:03d}" for g, k in rng.integers(0, 24, (n, 2)) % 24],
        dtype=object,
    )
    whole = ge.summary(units, micro, "grid")
    pick = [*rng.choice(whole.index.to_numpy(), 5, replace=False), "320102999999"]
    some = ge.summary(units, micro, "grid", pick)
    pd.testing.assert_frame_equal(some, whole.loc[sorted(set(pick) & set(whole.index))])


@pytest.mark.parametrize("seed", range(5))
def test_new_rows_put_in_place_are_the_rows_sorted(seed):
    rng = random.Random(SEED + seed)
    layer = grids(80, rng)
    hit = set(rng.sample(layer["code"].tolist(), 6))
    fresh = layer[layer["code"].isin(hit)].copy()
    fresh = fresh.iloc[: len(fresh) - 1]  # one retired
    fresh = pd.concat([fresh, fresh.iloc[[0]].assign(code="320102001000001")])  # one new, first
    fresh = gpd.GeoDataFrame(fresh.sample(frac=1, random_state=seed), crs=4326)
    keep = layer[~layer["code"].isin(hit)]
    for kept in (keep, keep.sample(frac=1, random_state=seed)):  # in code order or not
        got = _with_rows(kept, fresh, layer.dtypes)
        want = (
            gpd.GeoDataFrame(pd.concat([kept, fresh]), crs=4326)
            .sort_values("code")
            .reset_index(drop=True)
        )
        assert got["code"].tolist() == want["code"].tolist()
        pd.testing.assert_frame_equal(got, want)
