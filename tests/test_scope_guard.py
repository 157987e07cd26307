"""The database's own check of territorial scopes on PostGIS (data/postgis_store.py's
SCOPE_GUARD): a version saved under a scope cannot move a unit outside it, even when the
application's check is bypassed, and the API answers 403 with nothing saved."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from apitools import auth
from fastapi.testclient import TestClient
from test_policy_matrix import movable_pairs

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.data.plan import plan_from_frames, read_plan
from wangge.importing import save_plan


@pytest.fixture()
def stored(postgis_store, plan_dir):
    plan = f"guard-{uuid.uuid4().hex[:8]}"
    layers, meta = read_plan(plan_dir / "plan.gpkg").stored()
    save_plan(
        postgis_store, plan_from_frames(layers, meta, "plan.gpkg"), plan, None, "tests", "guard"
    )
    units = postgis_store.query(plan, 1, "units").frame
    return postgis_store, plan, units


def _moved(units, unit_index: int, to: str):
    out = units.copy()
    out.loc[unit_index, "parent_code"] = to
    return out


def test_a_version_under_a_scope_cannot_move_a_unit_outside_it(stored):
    store, plan, units = stored
    micro = units["parent_code"].astype(str)
    coms = sorted({c[:12] for c in micro})
    a, b = coms[0], coms[1]
    i = int(micro[micro.str.startswith(a)].index[0])
    target_b = next(c for c in micro if c.startswith(b))
    target_a = next(c for c in micro if c.startswith(a) and c != micro[i])
    meta = {**store.resolve(plan).meta, "base": 1, "scopes": [a]}
    with pytest.raises(sa.exc.DBAPIError, match="wangge scope guard"):
        store.save(plan, {"units": _moved(units, i, target_b)}, meta, base_version=1)
    assert store.resolve(plan).version == 1  # nothing was saved
    # inside the scope, and without a scope (an admin's version), the same save goes through
    v = store.save(plan, {"units": _moved(units, i, target_a)}, meta, base_version=1)
    assert v.version == 2
    meta.pop("scopes")
    meta["base"] = 2
    assert (
        store.save(plan, {"units": _moved(units, i, target_b)}, meta, base_version=2).version == 3
    )


def test_the_api_answers_403_when_only_the_database_catches_it(stored, monkeypatch):
    import wangge.editing

    store, plan, _ = stored
    admin = auth(store, "admin")
    with TestClient(create_app(Settings(), store)) as c:
        pairs = movable_pairs(c, plan, admin)
        a, b = sorted(pairs)[:2]
        # the application's check is switched off: only the database stands in the way
        monkeypatch.setattr(wangge.editing, "check_scope", lambda *args, **kwargs: None)
        move = {"unit": pairs[b]["unit"], "to": pairs[b]["dst"]}
        r = c.post(
            f"/plans/{plan}/edits",
            json={"base_version": 1, "moves": [move]},
            headers=auth(store, "planner", (a,)),
        )
        assert r.status_code == 403, r.text
        assert "database refused" in r.json()["error"]
        assert store.resolve(plan).version == 1
        # the admin's same move goes through
        r = c.post(f"/plans/{plan}/edits", json={"base_version": 1, "moves": [move]}, headers=admin)
        assert r.status_code == 201, r.text
