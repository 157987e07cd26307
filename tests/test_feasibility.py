"""The feasibility pass names the units the limits cannot hold, before any solving."""

from __future__ import annotations

import pandas as pd

from wangge.geo.feasibility import feasibility
from wangge.geo.limits import load_limits


def test_findings_name_the_units():
    limits = load_limits()
    buildings = pd.DataFrame({"building_id": ["w1", "w2", "w3"], "households": [600, 40, 20]})
    compounds = pd.DataFrame({"compound_id": ["w9", "w8"], "households": [4000, 700]})
    got = feasibility(buildings, compounds, limits).set_index("unit")
    assert "oversize" in got.loc["w1", "action"]
    assert got.loc["w1", "finding"] == "600 households > grid ceiling 500"
    assert got.loc["w2", "action"].startswith("vertical micro-grids: 2 floor ranges")
    assert "w3" not in got.index
    assert "community ceiling" in got.loc["w9", "finding"]
    assert "across grids" in got.loc["w8", "action"]


def test_too_few_households_for_any_grid():
    limits = load_limits()
    buildings = pd.DataFrame({"building_id": ["w1"], "households": [120]})
    compounds = pd.DataFrame({"compound_id": [], "households": []})
    got = feasibility(buildings, compounds, limits)
    area = got.set_index("unit").loc["study area"]
    assert area["finding"] == "120 households < grid floor 300"
    assert "no arrangement can meet it" in area["action"]


def test_demo_feasibility_is_stored(demo_plan):
    found = demo_plan.feasibility
    assert (found["kind"] == "building").sum() >= 100
    assert set(found["kind"]) >= {"building", "compound"}
