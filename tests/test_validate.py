"""The validator: clean on the demo plan, and each check catches a plan broken on purpose."""

from __future__ import annotations

import shapely

from wangge.geo.validate import CHECKS, validate


def _copy(layers):
    return {k: v.copy() for k, v in layers.items()}


def test_demo_plan_has_no_errors(demo_plan):
    v = validate(demo_plan.layers, demo_plan.limits)
    assert not (v["severity"] == "error").any(), v[v["severity"] == "error"]
    assert not demo_plan.issues
    # every grid in 300–500 unless the feasibility pass flagged it with a reason
    grids = demo_plan.layers["grids"]
    plain = grids[grids["flag"].isna()]
    assert plain["households"].between(300, 500).all()


def test_demo_plan_levels_nest_and_aim_at_target(demo_plan):
    grids, micro = demo_plan.layers["grids"], demo_plan.layers["microgrids"]
    assert (grids["code"].str.len() == 15).all() and (micro["code"].str.len() == 18).all()
    # dedicated grids (专属网格) stand outside the bands; the basic ones aim at the target
    basic = grids["grid_type"] == "basic"
    assert basic.sum() >= 60 and (grids.loc[~basic, "code"].str[-3:] >= "901").all()
    assert abs(grids.loc[basic, "households"].mean() - 400) < 50
    in_basic = micro["parent_code"].isin(grids.loc[basic, "code"])
    records = micro["record_codes"].str.count(",") + 1
    per = (micro["households"] / records)[in_basic]
    assert ((per >= 15) & (per <= 35)).all()
    v = demo_plan.layers["vertical_microgrids"]
    assert v["code"].is_unique and not set(v["code"]) & set(micro["code"]) - set(v["code"])
    assert (demo_plan.layers["buildings"]["microgrid_code"].notna()).all()


def test_gap_is_caught(demo_plan):
    layers = _copy(demo_plan.layers)
    g = layers["grids"]
    g.loc[g.index[0], "geometry"] = g.geometry.iloc[0].buffer(-20)
    v = CHECKS["cover"](layers, demo_plan.limits)
    assert any(x.level == "grid" and "uncovered" in x.reason for x in v)


def test_overlap_is_caught(demo_plan):
    layers = _copy(demo_plan.layers)
    g = layers["grids"]
    g.loc[g.index[0], "geometry"] = g.geometry.iloc[0].buffer(30)
    v = CHECKS["overlap"](layers, demo_plan.limits)
    assert any(
        x.code == g["code"].iloc[0] or "overlaps " + g["code"].iloc[0] in x.reason for x in v
    )


def test_split_building_is_caught(demo_plan):
    layers = _copy(demo_plan.layers)
    b = layers["buildings"]
    big = b["footprint_m2"].idxmax() if "footprint_m2" in b else b.area.idxmax()
    bid = b.loc[big, "building_id"]
    # send the building to a micro-grid far away
    other = layers["microgrids"]["code"].iloc[-1]
    b.loc[big, "microgrid_code"] = other
    v = CHECKS["atomic"](layers, demo_plan.limits)
    assert any(x.code == bid and other in x.reason for x in v)


def test_detached_piece_is_caught(demo_plan):
    layers = _copy(demo_plan.layers)
    g = layers["grids"]
    far = shapely.box(0, 0, 10, 10)
    g.loc[g.index[3], "geometry"] = shapely.MultiPolygon([g.geometry.iloc[3], far])
    v = CHECKS["contiguity"](layers, demo_plan.limits)
    assert any(x.code == g["code"].iloc[3] and "pieces" in x.reason for x in v)


def test_wrong_parent_is_caught(demo_plan):
    layers = _copy(demo_plan.layers)
    g = layers["grids"]
    communities = layers["communities"]["code"].tolist()
    wrong = next(c for c in communities if c != g["parent_code"].iloc[0])
    g.loc[g.index[0], "parent_code"] = wrong
    v = CHECKS["nesting"](layers, demo_plan.limits) + CHECKS["code"](layers, demo_plan.limits)
    assert any(x.code == g["code"].iloc[0] and wrong in x.reason for x in v)


def test_limits_name_the_unit(demo_plan):
    layers = _copy(demo_plan.layers)
    g = layers["grids"]
    g.loc[g.index[1], "households"] = 900
    v = CHECKS["limits"](layers, demo_plan.limits)
    assert any(x.code == g["code"].iloc[1] and "900 households > 500" in x.reason for x in v)


def test_bad_codes_are_caught(demo_plan):
    layers = _copy(demo_plan.layers)
    g = layers["grids"]
    g.loc[g.index[2], "code"] = g["code"].iloc[1]
    g.loc[g.index[4], "code"] = "12345"
    v = CHECKS["code"](layers, demo_plan.limits)
    reasons = " ".join(x.reason for x in v)
    assert "used twice" in reasons and "12345" in reasons
