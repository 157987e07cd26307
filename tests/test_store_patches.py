"""Versions that cost what they change (issue 23): a save given the base's frames writes
only the rows it changed, on both stores, and every version still reads back whole and
exactly, as a store that wrote each version whole reads it. Seeded random histories of
edits, drops, additions, moved geometries and schema changes, and the editor's own saves
on the demo plan; a store written before patches (schema 3) reads the same after its
migration; a base frame that is not the stored one is refused, not patched wrongly."""

from __future__ import annotations

import random
import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from wangge.data.store import patch_of

SEED = 23


def pid() -> str:
    return f"p{uuid.uuid4().hex[:12]}"


def start(rng: random.Random, n: int = 120) -> gpd.GeoDataFrame:
    cells = [
        shapely.box(
            118.7 + (i % 12) * 0.002,
            32.0 + (i // 12) * 0.002,
            118.702 + (i % 12) * 0.002,
            32.002 + (i // 12) * 0.002,
        )
        for i in range(n)
    ]
    return gpd.GeoDataFrame(
        {
            "code": [f"320102001001{i:03d}" for i in range(1, n + 1)],
            "parent_code": ["320102001001"] * n,
            "name": [f"第{i}网格" for i in range(1, n + 1)],
            "households": [float(rng.randint(250, 550)) for _ in range(n)],
            "flag": [""] * n,
        },
        geometry=cells,
        crs=4326,
    )


def step(rng: random.Random, frame: gpd.GeoDataFrame, serial: list[int]) -> gpd.GeoDataFrame:
    """One version's change: a few values, a moved outline, a dropped and an added row,
    now and then nothing, or a new column (which writes the layer whole)."""
    out = frame.copy()
    kind = rng.random()
    if kind < 0.1:
        return out
    if kind < 0.18:
        out["note"] = [f"改{serial[0]}"] * len(out)
        return out
    for i in rng.sample(range(len(out)), k=min(3, len(out))):
        out.iloc[i, out.columns.get_loc("households")] = float(rng.randint(250, 550))
    if rng.random() < 0.3:  # missing values: NaN in a float column, None in a text one
        out.iloc[rng.randrange(len(out)), out.columns.get_loc("households")] = np.nan
        out.iloc[rng.randrange(len(out)), out.columns.get_loc("name")] = None
    i = rng.randrange(len(out))
    out.iloc[i, out.columns.get_loc("geometry")] = shapely.affinity.translate(
        out.geometry.iloc[i], 0.0001 * rng.choice([-1, 1]), 0.0
    )
    if len(out) > 20 and rng.random() < 0.5:
        out = out.drop(index=out.index[rng.randrange(len(out))])
    if rng.random() < 0.5:
        serial[0] += 1
        extra = out.iloc[[0]].copy()
        extra["code"] = f"320102001002{serial[0]:03d}"
        extra["parent_code"] = "320102001002"
        out = pd.concat([out, extra])
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326).reset_index(drop=True)


def values_only(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A change of values alone on the base's very shapes, as an edit's units and
    buildings are: the patch leaves the layer's bbox to the stored one."""
    out = frame.copy(deep=False)
    out["households"] = out["households"] + 1.0
    return out


def same(got: gpd.GeoDataFrame, want: gpd.GeoDataFrame, where: str) -> None:
    assert list(got.columns) == list(want.columns), where
    assert got["code"].tolist() == want["code"].tolist(), where
    for col in got.columns:
        if col == "geometry":
            ok = shapely.equals_exact(got.geometry.to_numpy(), want.geometry.to_numpy(), 0)
            assert ok.all(), f"{where}: geometry of {got['code'][~ok].tolist()}"
        else:
            pd.testing.assert_series_equal(got[col], want[col], check_names=False, obj=where)


def own_rows(store, plan: str, version: int) -> int:
    return int(
        store._select(
            "SELECT count(*) FROM wg_features f WHERE f.plan_id = :p AND f.version = :v",
            {"p": plan, "v": version},
        )[0][0]
    )


def test_patched_versions_read_back_as_whole_ones_on_both_stores(store):
    rng = random.Random(SEED)
    patched, whole = pid(), pid()
    frame = start(rng)
    table = pd.DataFrame({"code": ["a"], "n": [1]})
    store.save(patched, {"grids": frame, "violations": table})
    store.save(whole, {"grids": frame, "violations": table})
    frames = [frame]
    serial = [0]
    for v in range(2, 32):
        new = step(rng, frames[-1], serial) if v % 6 else values_only(frames[-1])
        bases = {"grids": frames[-1]}
        patch = patch_of("grids", new, frames[-1])
        assert patch is None or patch.shapes_kept == (v % 6 == 0)
        store.save(patched, {"grids": new}, base_version=v - 1, keep=("violations",), bases=bases)
        store.save(whole, {"grids": new}, base_version=v - 1, keep=("violations",))
        unchanged = patch_of("grids", new, new.copy())  # NaN and None equal themselves
        assert unchanged is not None and not unchanged.rows.records and not unchanged.retire
        if patch is not None:  # only the changed rows are written
            assert own_rows(store, patched, v) == len(patch.rows.records) <= len(new)
        frames.append(new)
    for v, want in enumerate(frames, start=1):
        a = store.query(patched, v, "grids").frame
        b = store.query(whole, v, "grids").frame
        same(a, b, f"version {v}")
        assert len(a) == len(want) and a["code"].tolist() == sorted(want["code"])
        box = tuple(want.geometry.iloc[5].bounds)
        same(
            store.query(patched, v, "grids", bbox=box).frame,
            store.query(whole, v, "grids", bbox=box).frame,
            f"bbox of version {v}",
        )
        codes = sorted(want["code"])[::7]
        assert store.query(patched, v, "grids", codes=codes).frame["code"].tolist() == codes
        assert store.layer_infos(patched, v)["grids"].count == len(want)
        assert (
            store.layer_infos(patched, v)["grids"].bbox == store.layer_infos(whole, v)["grids"].bbox
        )
    # the diff of two versions is a query on what the versions between wrote
    for a, b in [(1, 31), (5, 6), (12, 20), (20, 12)]:
        fa = frames[a - 1].set_index("code")
        fb = frames[b - 1].set_index("code")
        touched = store.touched_ids(patched, a, b, "grids")
        differ = set(fa.index) ^ set(fb.index)
        for code in set(fa.index) & set(fb.index):
            ra, rb = fa.loc[code], fb.loc[code]
            if not ra.geometry.equals_exact(rb.geometry, 0) or any(
                not (ra[c] == rb[c] or (pd.isna(ra[c]) and pd.isna(rb[c])))
                for c in fa.columns
                if c != "geometry" and c in fb.columns
            ):
                differ.add(code)
        if touched is not None:
            assert differ <= touched, (a, b, sorted(differ - touched))
    # versions on the same span share their tiles' key; a patched one has its own
    infos = [store.layer_infos(patched, v)["grids"] for v in (1, 2)]
    assert infos[0].span(1) != infos[1].span(2)


@pytest.fixture(scope="module")
def beijing_plan_dir(tmp_path_factory):
    """../shared/data/beijing-cau.osm delineated with nothing but the file."""
    from cities_osm import BEIJING_OSM
    from clitools import run

    d = tmp_path_factory.mktemp("beijing")
    res = run("delineate", BEIJING_OSM, "--out", d, "--seed", 7)
    assert res.returncode == 0, res.stderr
    return d


@pytest.mark.parametrize("city", ["nanjing", "beijing"])
def test_the_editor_writes_only_what_an_edit_changed_and_every_version_reads_whole(
    store, city, request
):
    """Edits on the demo plan and on Beijing's: each saved version writes a few rows of
    each layer, not the thousands of units and buildings, and reads back as the editor
    held it."""
    from concurrencytools import assign

    from wangge.data.plan import plan_from_frames, read_plan, read_stored
    from wangge.editing import Editor
    from wangge.importing import save_plan

    plan_dir = request.getfixturevalue("plan_dir" if city == "nanjing" else "beijing_plan_dir")
    plan = pid()
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "")
    first_rows = own_rows(store, plan, 1)
    planners = assign(store, plan, 3)
    editor = Editor(store, keep=32)
    held = {}
    version = 1
    most = 0
    for turn in range(12):
        me = planners[turn % len(planners)]
        unit = sorted(me.units)[turn // len(planners) % len(me.units)]
        state = editor.state(plan, version)
        now = state.micro[state.units.index[unit]][:15]
        to = me.grids[1] if now == me.grids[0] else me.grids[0]
        result = editor.edit(plan, version, [(unit, to)])
        version = result.version.version
        held[version] = editor.state(plan, version).stored
        written = own_rows(store, plan, version)
        assert written < 40, f"version {version} wrote {written} rows for one move"
        most = max(most, written)
    assert first_rows > 25 * most, (first_rows, most)  # an edit writes under 4 % of the plan
    fresh = type(store)(store.path) if hasattr(store, "path") else store
    for number, frames in held.items():
        back = read_stored(fresh, plan, number)
        for name in ("units", "grids", "microgrids", "buildings"):
            want = frames[name].sort_values(by=_id(name)).reset_index(drop=True)
            got = back.frame(name).sort_values(by=_id(name)).reset_index(drop=True)
            assert got[_id(name)].astype(str).tolist() == want[_id(name)].astype(str).tolist()
            assert shapely.equals_exact(got.geometry.to_numpy(), want.geometry.to_numpy(), 0).all()
            for col in ("parent_code", "microgrid_code", "households", "name", "flag", "note"):
                if col in want:
                    a = got[col].where(got[col].notna(), None).tolist()
                    b = want[col].where(want[col].notna(), None).tolist()
                    assert a == b, f"version {number} {name}.{col}"
    # a point lookup on a patched version finds the micro-grid each unit was moved to
    for number, frames in list(held.items())[-3:]:
        units = frames["units"].iloc[::50]
        points = shapely.point_on_surface(units.geometry.to_numpy())
        found = fresh.cover(plan, number, shapely.get_x(points), shapely.get_y(points))
        assert found["microgrid_code"].tolist() == units["parent_code"].astype(str).tolist()
    # the diff route's answer is the same from the query as from two whole versions
    diff = editor.diff(plan, 1, version)
    sa_, sb = editor.state(plan, 1), editor.state(plan, version)
    want = sorted(str(sa_.units.codes[i]) for i in np.flatnonzero(sa_.micro != sb.micro))
    assert sorted(d["unit"] for d in diff) == want and want
    # the codes the plan ever gave out, a query on its stored rows, are those of every
    # version read whole
    ever: set[str] = set()
    for number in [1, *held]:
        frames = editor.state(plan, number).stored
        micro = frames["units"]["parent_code"].astype(str)
        ever |= set(micro) | set(micro.str[:15])
        for rc in frames["microgrids"].get("record_codes", pd.Series()).dropna().astype(str):
            ever |= {c for c in rc.split(",") if c}
    assert store.codes_ever(plan) == ever and len(ever) > 100


def _id(name: str) -> str:
    return "building_id" if name == "buildings" else "code"


def test_a_base_frame_that_is_not_the_stored_one_is_refused_and_nothing_saved(store):
    rng = random.Random(SEED + 1)
    plan = pid()
    frame = start(rng, 30)
    store.save(plan, {"grids": frame})
    wrong = frame.copy()
    wrong.loc[0, "code"] = "320102009009009"  # a row the store never held
    new = frame.copy()
    new.loc[0, "households"] = 999.0
    with pytest.raises(RuntimeError, match="not the stored one"):
        store.save(plan, {"grids": new}, base_version=1, bases={"grids": wrong})
    assert store.latest(plan) == 1
    assert len(store.query(plan, 1, "grids").frame) == 30


def test_a_store_written_before_patches_reads_the_same_after_its_migration(tmp_path, small_history):
    """Schema 3 kept a layer by pointing at an earlier version (``source``); opened by
    this code the store is migrated in place, and every version reads as before."""
    import sqlite3

    from wangge.data.gpkg_store import GpkgStore

    path = tmp_path / "old.gpkg"
    store = GpkgStore(path)
    plan = small_history(store)
    before = {v: store.query(plan, v, "grids").frame for v in (1, 2, 3)}
    store.close()
    with sqlite3.connect(path) as conn:  # as schema 3 wrote it
        conn.execute(
            "UPDATE wg_layers SET source = CASE WHEN since <> version THEN since END,"
            " since = NULL, upto = NULL"
        )
        conn.execute("UPDATE wg_meta SET value = '3' WHERE key = 'schema'")
        assert conn.execute("SELECT count(*) FROM wg_layers WHERE source > 0").fetchone()[0]
    store = GpkgStore(path)
    for v, frame in before.items():
        same(store.query(plan, v, "grids").frame, frame, f"version {v} after the migration")
    new = before[3].copy()
    new.loc[0, "households"] = 123.0
    store.save(plan, {"grids": new}, base_version=3, bases={"grids": before[3]})
    assert own_rows(store, plan, 4) == 1
    assert store.query(plan, 4, "grids").frame["households"].iloc[0] == 123.0
    same(store.query(plan, 3, "grids").frame, before[3], "version 3 after a patch on it")
    store.close()


@pytest.fixture()
def small_history():
    def make(store) -> str:
        plan = pid()
        frame = start(random.Random(SEED + 2), 24)
        store.save(plan, {"grids": frame, "violations": pd.DataFrame({"code": ["a"]})})
        store.save(
            plan, {"violations": pd.DataFrame({"code": ["b"]})}, base_version=1, keep=("grids",)
        )
        store.save(
            plan, {"violations": pd.DataFrame({"code": ["c"]})}, base_version=2, keep=("grids",)
        )
        return plan

    return make
