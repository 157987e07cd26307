"""The editor holding one street of a plan (wangge/street_state.py): every edit made on a
street's state gives the answer and stores the version that the same edit made on the
whole version does, read back whole, on both stores, on the demo district (whose unit
graph crosses its streets) and on a synthetic city (whose streets were drawn apart)."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from cities_bounds import demo_streets
from conftest import DEMO_OSM

from wangge.city import run_city
from wangge.data.plan import read_plan, read_stored
from wangge.data.synthetic import CRS, synthetic_city
from wangge.editing import Editor
from wangge.geo import assignment as ge
from wangge.importing import save_plan


@pytest.fixture(scope="module")
def demo_streets_plan(tmp_path_factory):
    """The demo delineated in its four given streets (a plan.gpkg)."""
    from wangge.delineate import delineate, write_plan
    from wangge.geo.validate import validate

    folder = tmp_path_factory.mktemp("street-state-demo")
    streets = demo_streets(DEMO_OSM, folder / "streets.geojson")
    result = delineate(DEMO_OSM, streets=streets)
    return write_plan(result, validate(result.layers, result.limits), folder)


@pytest.fixture(scope="module")
def city_store(tmp_path_factory):
    """A seeded synthetic city of four streets, drawn street by street (``wangge city``)."""
    folder = tmp_path_factory.mktemp("street-state-city")
    target = folder / "city.gpkg"
    units = synthetic_city(4, 6000, seed=11)
    run_city(
        None, target, "c", units=(units, CRS), workers=0, run_dir=folder / "run", progress=False
    )
    return target


def _plans(store, source, request) -> tuple[str, str]:
    """The plan twice in ``store`` (one edited a street at a time, one whole), each then
    saved once by an editor holding the whole version, so that both hold the violations
    an editor finds (a stored plan holds the polygon validator's)."""
    if source == "demo":
        plan = read_plan(request.getfixturevalue("demo_streets_plan"))
    else:
        from wangge.data.gpkg_store import GpkgStore

        city = GpkgStore(request.getfixturevalue("city_store"))
        plan = read_stored(city, "c")
        plan.frames(plan.names)  # read now, before the file's store closes
        city.close()
    tag = f"{source}-{random.randrange(1 << 30)}"
    ids = (f"{tag}-street", f"{tag}-whole")
    for plan_id in ids:
        save_plan(store, plan, plan_id, None, "test", "imported")
        Editor(store).edit(plan_id, store.latest(plan_id), [], name="as the editor finds it")
    return ids


def _moves(state, rng: random.Random, n: int) -> list[list[tuple[str, str]]]:
    """``n`` single moves, each of a unit to a grid it touches in its own street, the
    ones across a street's edge first (where the street's state must know the others)."""
    grid = ge.level_codes(state.micro, "grid")
    g = state.units.graph
    cross = np.flatnonzero(
        (grid[g.eu] != grid[g.ev]) & (grid[g.eu].astype("U9") == grid[g.ev].astype("U9"))
    )
    picks = rng.sample(list(cross), min(n, len(cross)))
    return [[(str(state.units.codes[g.eu[e]]), str(grid[g.ev[e]]))] for e in picks]


def _answer(result) -> dict:
    return {
        "violations": sorted(json.dumps(v, sort_keys=True) for v in result.violations),
        "grids": json.dumps(result.grids, sort_keys=True),
        "moves": [(m.unit, m.before, m.after) for m in result.moves],
        "locks": result.locks,
    }


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(frame).copy()
    if "geometry" in frame:
        frame["geometry"] = frame["geometry"].map(lambda g: None if g is None else g.wkb_hex)
    key = [c for c in ("code", "building_id", "edge_id", "level", "check") if c in frame]
    return frame.sort_values(key).reset_index(drop=True)[sorted(frame.columns)]


def _same_versions(store, a: str, b: str) -> None:
    va, vb = store.resolve(a), store.resolve(b)
    la, lb = store.load(a, va.version), store.load(b, vb.version)
    assert sorted(la) == sorted(lb)
    for name in la:
        pd.testing.assert_frame_equal(_canonical(la[name]), _canonical(lb[name]), obj=name)
    ia, ib = store.layer_infos(a, va.version), store.layer_infos(b, vb.version)
    for name, info in ia.items():
        assert info.count == ib[name].count == len(la[name]), name
        if ib[name].bbox is not None:  # an extent never smaller than the features
            assert np.all(np.array(info.bbox[:2]) <= np.array(ib[name].bbox[:2]) + 1e-9)
            assert np.all(np.array(info.bbox[2:]) >= np.array(ib[name].bbox[2:]) - 1e-9)


@pytest.mark.parametrize("source", ["demo", "city"])
def test_edits_on_one_street_store_what_edits_on_the_whole_version_store(store, source, request):
    street_plan, whole_plan = _plans(store, source, request)
    rng = random.Random(7)
    by_street, whole = Editor(store), Editor(store)
    whole.state(whole_plan)  # held whole: its edits are made on the whole version
    moves = _moves(whole.state(whole_plan), rng, 4)
    assert moves, "the plan has grids that touch inside a street"
    for i, move in enumerate(moves):
        for dry in (True, False):
            a = by_street.edit(street_plan, store.latest(street_plan), move, dry_run=dry)
            b = whole.edit(whole_plan, store.latest(whole_plan), move, dry_run=dry)
            assert _answer(a) == _answer(b), (i, dry, move)
            assert a.touched.keys() == b.touched.keys()
        held = by_street.state(street_plan, store.latest(street_plan), move[0][1][:9])
        assert held.scope == move[0][1][:9], "the street was held alone"
        assert held.units.n < whole.state(whole_plan).units.n
        _same_versions(store, street_plan, whole_plan)
    # the street's overview is the whole one's, cut to the street
    street = moves[0][0][1][:9]
    part = Editor(store).overview(street_plan, None, street)
    full = whole.overview(whole_plan, None, street)
    assert part["street"] == street == full["street"]
    for key in ("grids", "communities", "bbox", "locks", "limits"):
        assert json.dumps(part[key], sort_keys=True) == json.dumps(full[key], sort_keys=True)
    assert sorted(map(json.dumps, part["violations"])) == sorted(
        map(json.dumps, full["violations"])
    )
    assert part["grids"] and all(g["code"].startswith(street) for g in part["grids"])


def test_a_street_that_cannot_be_held_alone_is_read_whole(store, request):
    """A unit moved in from another street, or a street that is not there, reads the
    whole version: the answer is the whole version's."""
    street_plan, whole_plan = _plans(store, "demo", request)
    whole = Editor(store)
    state = whole.state(whole_plan)
    grid = ge.level_codes(state.micro, "grid")
    g = state.units.graph
    across = np.flatnonzero(grid[g.eu].astype("U9") != grid[g.ev].astype("U9"))
    if not len(across):
        pytest.fail("the demo's unit graph crosses its streets")
    e = across[0]
    move = [(str(state.units.codes[g.eu[e]]), str(grid[g.ev[e]]))]
    editor = Editor(store)
    a = editor.edit(street_plan, store.latest(street_plan), move, dry_run=True)
    b = whole.edit(whole_plan, store.latest(whole_plan), move, dry_run=True)
    assert _answer(a) == _answer(b)
    with pytest.raises(Exception, match="no street"):
        editor.overview(street_plan, None, "999999999")


def test_a_part_that_cannot_be_patched_is_refused_and_nothing_is_stored(store):
    """A save from one street's rows writes patches on the whole layers or nothing: a
    part written whole would drop the other streets."""
    import geopandas as gpd
    import shapely

    from wangge.errors import InputError

    frame = gpd.GeoDataFrame(
        {"code": ["320102001001", "320102002001"], "households": [10.0, 20.0]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
        crs=4326,
    )
    plan_id = f"partial-{random.randrange(1 << 30)}"
    v1 = store.save(plan_id, {"communities": frame})
    part = frame.iloc[:1]
    changed = part.assign(households=part["households"].astype(str))  # a column's type
    with pytest.raises(InputError, match="cannot be written as a patch"):
        store.save(
            plan_id,
            {"communities": changed},
            base_version=v1.version,
            bases={"communities": part},
            partial=True,
        )
    with pytest.raises(InputError, match="needs the base of every layer"):
        store.save(plan_id, {"communities": part}, base_version=v1.version, partial=True)
    assert store.latest(plan_id) == v1.version
    moved = part.assign(households=[11.0])
    v2 = store.save(
        plan_id,
        {"communities": moved},
        base_version=v1.version,
        bases={"communities": part},
        partial=True,
    )
    back = store.load(plan_id, v2.version)["communities"].sort_values("code")
    assert back["households"].tolist() == [11.0, 20.0]
    info = store.layer_infos(plan_id, v2.version)["communities"]
    assert info.count == 2 and info.bbox == pytest.approx((0, 0, 2, 1))


def test_the_api_shows_one_street_and_edits_it(store, request):
    """``GET /plans/{id}/state?street=`` answers that street's grids (a street that is
    not there is 404, one that is no code 422), and the edit the page then sends is made
    on the street's state, with the answer the whole version gives."""
    from apitools import auth
    from fastapi.testclient import TestClient

    from wangge.api.app import create_app
    from wangge.api.settings import Settings

    street_plan, whole_plan = _plans(store, "city", request)
    whole = Editor(store)
    moves = _moves(whole.state(whole_plan), random.Random(3), 1)
    street = moves[0][0][1][:9]
    with TestClient(create_app(Settings(), store), headers=auth(store)) as client:
        r = client.get(f"/plans/{street_plan}/state", params={"street": street})
        assert r.status_code == 200, r.text
        shown = r.json()
        assert shown["street"] == street
        assert shown["grids"] and all(g["code"].startswith(street) for g in shown["grids"])
        assert all(g["writable"] for g in shown["grids"])
        assert client.get(f"/plans/{street_plan}/state?street=999999999").status_code == 404
        assert client.get(f"/plans/{street_plan}/state?street=3201'--").status_code in (400, 422)
        body = {
            "base_version": shown["version"],
            "moves": [{"unit": u, "to": to} for u, to in moves[0]],
            "dry_run": True,
        }
        r = client.post(f"/plans/{street_plan}/edits", json=body)
        assert r.status_code == 201, r.text
        held = client.app.state.editor._states
        assert [k[2] for k in held] == [street], "only the street was read"
    b = whole.edit(whole_plan, store.latest(whole_plan), moves[0], dry_run=True)
    got = r.json()
    assert (
        sorted(json.dumps(v, sort_keys=True) for v in got["violations"]) == _answer(b)["violations"]
    )
    assert [g["code"] for g in got["grids"]] == [g["code"] for g in b.grids]
