"""Property tests on seeded synthetic streets: every plan validates, or says why not."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wangge.data.synthetic import CITY_DISTRICT, synthetic_street
from wangge.delineate import delineate_units
from wangge.geo.limits import load_limits
from wangge.geo.validate import validate

CRS = "EPSG:4549"
SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(seed=st.integers(0, 10_000), households=st.integers(1_500, 6_000))
def test_every_plan_passes_the_validator(seed, households):
    units = synthetic_street(households, seed)
    result = delineate_units(units, CRS, load_limits(seed=seed, district_code=CITY_DISTRICT))
    v = validate(result.layers, result.limits)
    errors = v[v["severity"] == "error"]
    if len(errors):  # only limits may fail, and only where the solver said why
        assert set(errors["check"]) == {"limits"}
        assert result.issues
    grids = result.layers["grids"]
    assert grids["households"].sum() == units["buildings"]["households"].sum()
    assert (
        abs(shapely.union_all(grids.geometry.to_numpy()).area - units["study_area"].area.sum())
        < 1.0
    )


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_same_seed_same_plan(seed):
    units = synthetic_street(2_500, seed)
    limits = load_limits(seed=seed, district_code=CITY_DISTRICT)
    a = delineate_units(units, CRS, limits).layers["microgrids"]
    b = delineate_units(units, CRS, limits).layers["microgrids"]
    assert a["code"].tolist() == b["code"].tolist()
    assert a["households"].tolist() == b["households"].tolist()


def test_tower_of_600_is_diagnosed_by_name():
    units = synthetic_street(4_000, 3)
    b = units["buildings"]
    b.loc[b.index[10], "households"] = 600
    tower = b["building_id"].iloc[10]
    result = delineate_units(units, CRS, load_limits(district_code=CITY_DISTRICT))
    found = result.feasibility.set_index("unit")
    assert "grid ceiling" in found.loc[tower, "finding"]
    grids = result.layers["grids"]
    flagged = grids[grids["flag"] == "oversize"]
    assert len(flagged) == 1 and "600" in flagged["note"].iloc[0]
    v = validate(result.layers, result.limits)
    row = v[v["code"] == flagged["code"].iloc[0]]
    assert (row["severity"] == "warning").all() and len(row)


def test_compound_of_4000_is_diagnosed_by_name():
    units = synthetic_street(6_000, 4)
    blocks = units["blocks"]
    big = shapely.union_all(blocks.geometry.iloc[:12].to_numpy())
    units["compounds"] = units["compounds"].__class__(
        {"compound_id": ["c1"], "households": [4_000]}, geometry=[big], crs=CRS
    )
    result = delineate_units(units, CRS, load_limits(district_code=CITY_DISTRICT))
    found = result.feasibility.set_index("unit")
    assert "community ceiling" in found.loc["c1", "finding"]
    assert np.isfinite(result.layers["grids"]["households"]).all()
