"""The shortcuts that make a saved edit cost its change, not the city (issue 23), give the
same answers as the long way: a patch of rows in the base's order or shuffled, level
codes kept for a frozen assignment, a summary of some codes, a layer's new rows put in
place instead of sorted."""

from __future__ import annotations

import random
import sys
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


def test_a_patch_keeping_the_bases_shapes_leaves_the_bbox_to_the_store_else_bounds_them():
    old = grids(30, random.Random(SEED))
    new = old.copy(deep=False)  # the base's geometry column itself
    new["households"] = new["households"] + 1.0
    patch = patch_of("grids", new, old)
    assert patch.shapes_kept and len(patch.rows.records) == 30
    moved = new.copy()
    moved.loc[0, "geometry"] = shapely.box(-5, 0, 1, 1)  # a shape changed: bounded again
    patch = patch_of("grids", moved, old)
    assert not patch.shapes_kept
    assert patch.rows.info.bbox == pytest.approx((-5, 0, 30, 1))


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


@pytest.mark.parametrize("seed", range(4))
def test_level_codes_carried_through_moves_are_those_made_afresh(seed):
    """An edit's new assignment takes its level codes from its base's, made again only
    where units moved: the same codes as made from scratch, at every level."""
    rng = np.random.default_rng(SEED + seed)
    side = 12  # a 12 × 12 lattice of units, four grids of nine micro-grids
    n = side * side
    x, y = np.arange(n) % side, np.arange(n) // side
    micro = np.array(
        [
            f"3201020010{1 + r // 6:02d}{1 + c // 6:03d}{1 + (r % 6) // 2 * 3 + (c % 6) // 2:03d}"
            for r, c in zip(y, x, strict=True)
        ],
        dtype=object,
    )
    frame = pd.DataFrame(
        {
            "code": [str(i) for i in range(n)],
            "households": rng.integers(1, 40, n).astype(float),
            "population": np.zeros(n),
            "compound_id": [None] * n,
        }
    )
    right = [(i, i + 1) for i in range(n) if x[i] < side - 1]
    down = [(i, i + side) for i in range(n - side)]
    a, b = np.array(right + down).T
    edges = pd.DataFrame({"a": a, "b": b, "length_m": 1.0, "along": 0, "compound": False})
    units = ge.units_from_tables(
        frame, edges, [shapely.box(i, j, i + 1, j + 1) for i, j in zip(x, y, strict=True)]
    )
    base = ge.frozen(micro)
    for level in ("street", "community", "grid"):
        ge.level_codes(base, level)  # made once, as a loaded version's are
    grids = sorted({c[:15] for c in micro})
    moves = [(str(u), grids[int(rng.integers(len(grids)))]) for u in rng.choice(n, 6)]
    new, moved = ge.apply_moves(units, base, moves)
    assert moved and not new.flags.writeable
    assert set(ge._LEVEL_CODES[id(new)]) == {"street", "community", "grid"}  # carried
    for level in ("street", "community", "grid"):
        fresh = np.asarray([c[: {"street": 9, "community": 12, "grid": 15}[level]] for c in new])
        assert list(ge.level_codes(new, level)) == list(fresh)


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


def _rows_one_by_one(level: str, micro_a, micro_b, hh_a, hh_b) -> pd.DataFrame:
    """The change report's rows of a level, code by code: the long way round."""
    of_a = pd.Series(micro_a if level == "microgrid" else ge.level_codes(micro_a, level))
    of_b = pd.Series(micro_b if level == "microgrid" else ge.level_codes(micro_b, level))
    members_a, members_b = of_a.groupby(of_a).groups, of_b.groupby(of_b).groups
    out = []
    for code in sorted(set(members_a) | set(members_b)):
        ua = np.sort(np.asarray(members_a.get(code, []), dtype=int))
        ub = np.sort(np.asarray(members_b.get(code, []), dtype=int))
        if code not in members_a:
            status = "created"
        elif code not in members_b:
            status = "retired"
        elif not np.array_equal(ua, ub):
            status = "changed"
        elif not np.allclose(hh_a[ua], hh_b[ub]):
            status = "recounted"
        else:
            status = "kept"
        h_a = hh_a[ua].sum() if code in members_a else np.nan
        h_b = hh_b[ub].sum() if code in members_b else np.nan
        out.append((code, status, h_a, h_b, len(ua), len(ub)))
    return pd.DataFrame(
        out, columns=["code", "status", "households_a", "households_b", "units_a", "units_b"]
    )


@pytest.mark.parametrize("seed", range(6))
def test_the_change_reports_rows_for_all_codes_at_once_are_those_code_by_code(seed):
    from wangge.changes import _level_rows, _totals

    rng = np.random.default_rng(SEED + seed)
    n = 600
    micro_a = np.array(
        [
            f"320102001{g // 5 + 1:03d}{g % 5 + 1:03d}{m + 1:03d}"
            for g, m in rng.integers(0, 20, (n, 2))
        ],
        dtype=object,
    )
    micro_b = micro_a.copy()
    moved = rng.choice(n, 30, replace=False)  # some to codes that exist, some to new ones
    micro_b[moved] = np.where(
        rng.random(30) < 0.7, micro_a[rng.choice(n, 30)], "320102001009009077"
    )
    hh_a = rng.integers(0, 60, n).astype(float)
    hh_b = hh_a.copy()
    hh_b[rng.choice(n, 25, replace=False)] += rng.choice([0.0, 1e-9, 3.0], 25)
    differ = np.flatnonzero((micro_a != micro_b) | ~np.isclose(hh_a, hh_b))
    rows = pd.DataFrame(
        {
            "from": micro_a[differ],
            "to": micro_b[differ],
            "households_a": hh_a[differ],
            "households_b": hh_b[differ],
        }
    )
    for level in ("grid", "microgrid"):
        totals = _totals(micro_a, hh_a, level), _totals(micro_b, hh_b, level)
        got = _level_rows(level, *totals, rows, {}, {})
        want = _rows_one_by_one(level, micro_a, micro_b, hh_a, hh_b)
        assert got["code"].tolist() == want["code"].tolist()
        assert got["status"].tolist() == want["status"].tolist()
        if level == "microgrid":  # every status, the long way and the short
            assert set(want["status"]) == {"created", "changed", "retired", "recounted", "kept"}
        for col in ("households_a", "households_b"):
            np.testing.assert_allclose(got[col], want[col], rtol=1e-12)
        assert got["units_a"].tolist() == want["units_a"].tolist()
        assert got["units_b"].tolist() == want["units_b"].tolist()


def test_a_state_dropped_from_the_cache_is_freed_without_the_collector(plan_dir, tmp_path):
    """The editor freezes what it loads (``gc.freeze``) so that full collections inside
    later edits need not walk a city's polygons; that is safe only while a state forms no
    reference cycles, so that one dropped from the cache is freed by reference counting."""
    import gc
    import weakref

    from wangge.data.gpkg_store import GpkgStore
    from wangge.data.plan import read_plan
    from wangge.editing import Editor
    from wangge.importing import save_plan

    store = GpkgStore(tmp_path / "store.gpkg")
    try:
        save_plan(store, read_plan(plan_dir / "plan.gpkg"), "freed", None, "test", "imported")
        editor = Editor(store, keep=1)
        s = editor.state("freed")
        assert gc.get_freeze_count() > 0
        held = [s, s.unit_frame, s.units, s.units.graph, s.layers["grids"], s.metric]
        refs = [weakref.ref(x) for x in held]
        polygons = s.metric[:3].tolist()  # shapely objects can't be weakly referenced
        counts = [sys.getrefcount(p) for p in polygons]
        was = gc.isenabled()
        gc.disable()
        try:
            del s, held
            editor._states.clear()
            assert [r() is None for r in refs] == [True] * len(refs)
            assert [sys.getrefcount(p) for p in polygons] == [c - 1 for c in counts]
        finally:
            if was:
                gc.enable()
    finally:
        store.close()


def _made(base, levels, failures) -> None:
    try:
        for level in levels:
            ge.level_codes(base, level)
    except Exception as exc:  # collected for the test's assertion
        failures.append(exc)


def _carried(base, new, changed, failures) -> None:
    try:
        ge._carry_level_codes(base, new, changed)
    except Exception as exc:  # collected for the test's assertion
        failures.append(exc)


def test_level_codes_made_and_carried_from_many_threads_at_once():
    """Edits run in threads: one carrying a base's level codes to its new assignment while
    others make more of the base's (an overview, a check) must neither fail ("dictionary
    changed size during iteration", seen under load) nor give wrong codes."""
    import threading

    rng = np.random.default_rng(SEED)
    levels = ("street", "community", "grid")
    micro = np.array(
        [
            f"3201020{rng.integers(1, 3):02d}{rng.integers(1, 9):03d}{i % 7 + 1:03d}001"
            for i in range(3000)
        ],
        dtype=object,
    )
    failures: list[Exception] = []
    changed = np.arange(0, 3000, 97)
    for _ in range(20):
        base = ge.frozen(micro.copy())
        ge.level_codes(base, "street")
        new = base.copy()
        new[changed] = "320102009009009001"
        new = ge.frozen(new)
        threads = [threading.Thread(target=_made, args=(base, (lv,), failures)) for lv in levels]
        threads += [
            threading.Thread(target=_carried, args=(base, new, changed, failures)) for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        for lv in levels:
            n = {"street": 9, "community": 12, "grid": 15}[lv]
            assert list(ge.level_codes(new, lv)) == [c[:n] for c in new]
