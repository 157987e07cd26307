"""`wangge overlay` and `wangge coverage` on the demo: the layers and maps they add to
plan.gpkg, and bad registers that must fail naming the file and row and keep the plan."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from clitools import run

from wangge.geo.rules import LEVELS, load_rules

OVERLAY_LAYERS = {"risk_points", "risk_zones", "grid_risk", "facilities", "buildings"}
COVERAGE_LAYERS = {
    "facilities", "access", "grid_coverage", "gaps", "suggestions", "siting", "candidates",
    "network_nodes", "network_edges",
}  # fmt: skip
MAPS = ("risk_map.html", "risk_heatmap.html", "gaps_map.html")
GAP_KINDS = {"beyond_reach", "missing_required", "over_capacity", "exposed_vulnerable"}


def _layers(plan: Path) -> set[str]:
    return {name for name, _ in pyogrio.list_layers(plan / "plan.gpkg")}


def _read(plan: Path, layer: str) -> pd.DataFrame:
    return pyogrio.read_dataframe(plan / "plan.gpkg", layer=layer)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def risk(risk_plan_dir) -> dict[str, pd.DataFrame]:
    """The layers the overlay and coverage jobs wrote into the demo plan."""
    names = ("grids", "buildings", "risk_points", "risk_zones", "grid_risk", "facilities")
    names += ("access", "gaps", "suggestions", "siting")
    return {name: _read(risk_plan_dir, name) for name in names}


def test_plan_has_every_layer_and_the_three_maps(risk_plan_dir, plan_dir):
    have = _layers(risk_plan_dir)
    assert have >= OVERLAY_LAYERS | COVERAGE_LAYERS
    assert _layers(plan_dir) <= have  # the delineated plan is all still there
    for name in MAPS:
        text = (risk_plan_dir / name).read_text("utf-8")
        assert "OpenStreetMap" in text, name
        assert "样例数据" in text, name


def test_grid_risk_has_one_row_per_grid_and_counts_the_risks_in_it(risk):
    grids, grid_risk = risk["grids"], risk["grid_risk"]
    points, zones = risk["risk_points"], risk["risk_zones"]
    assert sorted(grid_risk["code"]) == sorted(grids["code"])
    assert set(grid_risk["level"]) <= set(LEVELS)
    assert (points["grid_code"].str.len() == 15).all()  # every point lies in a grid
    # points by the grid they lie in, zones in every grid they touch
    touched = zones.assign(grid_code=zones["grid_codes"].str.split(",")).explode("grid_code")
    located = pd.concat([points[["grid_code", "level"]], touched[["grid_code", "level"]]])
    want = (
        pd.crosstab(located["grid_code"], located["level"])
        .reindex(index=grid_risk["code"], columns=list(LEVELS))
        .fillna(0)
        .astype(int)
    )
    got = grid_risk.set_index("code")[[f"n_{lv}" for lv in LEVELS]]
    assert (got.to_numpy() == want.to_numpy()).all()
    assert got.to_numpy().sum() == len(points) + len(touched)
    # a grid is at least as high as the highest risk counted in it
    rank = grid_risk["level"].map({lv: k for k, lv in enumerate(LEVELS)}).to_numpy()
    highest = np.where(got.to_numpy() > 0, np.arange(len(LEVELS)), len(LEVELS)).min(axis=1)
    assert (rank <= highest).all()
    assert (grid_risk["exposed_households"] <= grid_risk["households"]).all()
    assert grid_risk["exposed_households"].sum() > 0
    # vulnerable people in risk zones: the grids' sum is the exposed_vulnerable gaps' sum
    gaps = risk["gaps"]
    exposed = gaps[gaps["kind"] == "exposed_vulnerable"]
    assert grid_risk["exposed_vulnerable"].sum() == exposed["people"].sum() > 0


def test_every_gap_has_a_reason_and_a_known_kind(risk):
    gaps = risk["gaps"]
    assert len(gaps) and set(gaps["kind"]) <= GAP_KINDS
    assert (gaps["reason"].fillna("").str.strip() != "").all()
    assert gaps["gap_id"].is_unique


def test_buildings_beyond_reach_are_exactly_the_beyond_reach_gaps(risk):
    rules = load_rules()
    access = risk["access"].drop(columns=["households"])
    joined = risk["buildings"][["building_id", "households"]].merge(access, on="building_id")
    assert len(joined) == len(risk["buildings"])
    hh = pd.to_numeric(joined["households"], errors="coerce").fillna(0)
    want = set()
    for key, t in rules.facilities.items():
        d = joined[f"d_{key}"]
        beyond = (hh > 0) & ~(d <= t.reach_m)  # NaN: no facility of the type at all
        want |= {(key, b) for b in joined.loc[beyond, "building_id"]}
    gaps = risk["gaps"]
    br = gaps[gaps["kind"] == "beyond_reach"]
    assert len(br) == len(want) > 0
    assert set(zip(br["type"], br["ref"], strict=True)) == want
    assert (br["distance_m"].isna() | (br["distance_m"] > br["reach_m"])).all()


def test_every_facility_over_capacity_has_a_gap(risk):
    fac, gaps = risk["facilities"], risk["gaps"]
    over = fac[fac["over_capacity"].astype(bool)]
    assert len(over)
    want = set(zip(over["type"], over["facility_id"], strict=True))
    oc = gaps[gaps["kind"] == "over_capacity"]
    assert set(zip(oc["type"], oc["ref"], strict=True)) == want and len(oc) == len(want)


def test_suggestions_gain_less_each_and_add_up_to_the_siting_cover(risk):
    sites, siting = risk["suggestions"], risk["siting"]
    assert set(sites["type"]) <= set(siting["type"]) and len(sites)
    for _, row in siting.iterrows():
        mine = sites[sites["type"] == row["type"]].sort_values("rank")
        assert mine["rank"].tolist() == list(range(1, len(mine) + 1))
        assert len(mine) <= row["k"]
        gains = mine["gain_households"].to_numpy()
        assert (np.diff(gains) <= 0).all(), row["type"]
        assert gains.sum() == row["covered_households"], row["type"]
        assert (mine["cumulative_households"].to_numpy() == np.cumsum(gains)).all()
        assert row["covered_households"] <= row["uncovered_households"]


def test_sample_data_is_flagged_sample(risk):
    assert risk["risk_points"]["sample"].astype(bool).all()  # the register is sample
    assert risk["risk_zones"]["sample"].astype(bool).all()
    assert risk["grid_risk"]["sample"].astype(bool).all()
    fac = risk["facilities"]
    is_sample = fac["sample"].astype(bool)
    assert (is_sample == (fac["source"] == "sample")).all()
    assert is_sample.any() and (~is_sample).any()
    sample_types = set(fac.loc[is_sample, "type"])
    gaps = risk["gaps"]
    by_type = gaps[gaps["kind"].isin(["beyond_reach", "missing_required"])]
    assert (by_type["sample"].astype(bool) == by_type["type"].isin(sample_types)).all()
    oc = gaps[gaps["kind"] == "over_capacity"]
    fac_sample = dict(zip(fac["facility_id"], is_sample, strict=True))
    assert (oc["sample"].astype(bool) == oc["ref"].map(fac_sample)).all()
    assert gaps.loc[gaps["kind"] == "exposed_vulnerable", "sample"].astype(bool).all()


# --- the CLI on bad registers ------------------------------------------------------------


@pytest.fixture(scope="module")
def register(risk_plan_dir) -> pd.DataFrame:
    """The demo's sample register (seed 0) as text cells, to spoil one way or another."""
    return pd.read_csv(risk_plan_dir / "sample_risks.csv", dtype=str, encoding="utf-8-sig")


@pytest.fixture()
def plan_copy(plan_dir, tmp_path) -> Path:
    """A copy of the delineated demo plan (no risk layers yet) this test may write to."""
    return Path(shutil.copytree(plan_dir, tmp_path / "plan"))


def _missing_column(reg: pd.DataFrame):
    return reg.drop(columns=["风险类别"]), "row 1 (header)", "missing column(s): category"


def _l_out_of_range(reg: pd.DataFrame):
    reg = reg.copy()
    i = reg.index[reg["S"].notna()][3]  # a matrix row
    reg.loc[i, "L"] = "7"
    return reg, f"row {i + 2}", "matrix L and S must be whole numbers 1–5"


def _unknown_category(reg: pd.DataFrame):
    reg = reg.copy()
    reg.loc[4, "风险类别"] = "外星入侵"
    return reg, "row 6", "unknown category (外星入侵)"


def _outside(reg: pd.DataFrame):
    reg = reg.copy()
    reg.loc[6, ["经度", "纬度"]] = ["116.397", "39.909"]  # Beijing
    return reg, "row 8", "outside the study area"


@pytest.mark.parametrize(
    "spoil",
    [_missing_column, _l_out_of_range, _unknown_category, _outside],
    ids=["missing-column", "L-out-of-range", "unknown-category", "outside"],
)
def test_bad_register_fails_naming_file_and_row_and_keeps_the_plan(
    spoil, register, plan_copy, tmp_path
):
    reg, where, problem = spoil(register)
    path = tmp_path / "risks.csv"
    reg.to_csv(path, index=False, encoding="utf-8-sig")
    _assert_refused(plan_copy, path, f"{where}: ", problem)


def _assert_refused(plan: Path, path: Path, where: str, problem: str) -> None:
    before = _sha(plan / "plan.gpkg")
    names = sorted(p.name for p in plan.iterdir())
    res = run("overlay", plan, "--risks", path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert f"error: {path}: {where}" in res.stderr, res.stderr
    assert problem in res.stderr, res.stderr
    assert _sha(plan / "plan.gpkg") == before  # nothing stored is lost
    assert sorted(p.name for p in plan.iterdir()) == names  # no temp files, no maps


def test_gbk_register_needs_encoding_gbk(register, plan_copy, tmp_path):
    path = tmp_path / "risks_gbk.csv"
    register.to_csv(path, index=False, encoding="gbk")
    _assert_refused(plan_copy, path, "line 1: ", "is not valid utf-8 text")
    res = run("overlay", plan_copy, "--risks", path, "--encoding", "gbk")
    assert res.returncode == 0, res.stderr
    assert {"risk_points", "grid_risk"} <= _layers(plan_copy)
    points = _read(plan_copy, "risk_points")
    assert points["name"].tolist() == register["名称"].tolist()  # Chinese read back intact
    assert set(points["category_zh"]) <= set(register["风险类别"])
    assert (plan_copy / "risk_map.html").exists()


@pytest.fixture(scope="module")
def aed_only(risk_plan_dir, tmp_path_factory) -> tuple[Path, object]:
    """A copy of the risk plan after `wangge coverage --type aed --k 3`."""
    d = Path(shutil.copytree(risk_plan_dir, tmp_path_factory.mktemp("aed") / "plan"))
    return d, run("coverage", d, "--type", "aed", "--k", 3)


def test_coverage_of_one_type_sites_only_that_type(aed_only, risk_plan_dir):
    d, res = aed_only
    assert res.returncode == 0, res.stderr
    sites = _read(d, "suggestions")
    aed = sites[sites["type"] == "aed"]
    assert 1 <= len(aed) <= 3
    assert aed["rank"].tolist() == list(range(1, len(aed) + 1))
    # the other types keep the sites the full run suggested
    before = _read(risk_plan_dir, "suggestions")
    others = before[before["type"] != "aed"]
    assert sorted(sites.loc[sites["type"] != "aed", "candidate_id"]) == sorted(
        others["candidate_id"]
    )
    # every layer stays whole: the other types' gaps and distances are still there
    gaps = _read(d, "gaps")
    assert set(gaps["type"]) - {""} == set(_read(risk_plan_dir, "gaps")["type"]) - {""}
    assert set(_read(d, "siting")["type"]) == set(load_rules().facilities)


def test_coverage_of_one_type_keeps_the_other_facilities(aed_only, risk_plan_dir):
    d, res = aed_only
    assert res.returncode == 0, res.stderr
    before = _read(risk_plan_dir, "facilities")
    after = _read(d, "facilities")
    assert sorted(after["facility_id"]) == sorted(before["facility_id"])


def test_coverage_of_an_unknown_type_names_the_known_ones(plan_copy):
    before = _sha(plan_copy / "plan.gpkg")
    res = run("coverage", plan_copy, "--type", "nosuch")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "unknown facility type nosuch" in res.stderr, res.stderr
    for key in load_rules().facilities:
        assert key in res.stderr, key
    assert _sha(plan_copy / "plan.gpkg") == before


def test_bad_candidate_file_and_rules_leave_the_plan_as_it_was(plan_copy):
    """The coverage job's own inputs: a candidate table without coordinates, and a rules
    file with a zero reach, are errors naming the file; nothing is written."""
    before = _sha(plan_copy / "plan.gpkg")
    bad_sites = plan_copy / "sites.csv"
    bad_sites.write_text("name,note\nA,no coordinates\n", "utf-8")
    res = run("coverage", plan_copy, "--candidates", bad_sites)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "sites.csv" in res.stderr and "lon/lat" in res.stderr, res.stderr
    bad_rules = plan_copy / "rules.toml"
    bad_rules.write_text("[facilities.aed]\nreach_m = 0\n", "utf-8")
    res = run("coverage", plan_copy, "--rules", bad_rules)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "rules.toml" in res.stderr and "reach_m" in res.stderr, res.stderr
    assert _sha(plan_copy / "plan.gpkg") == before
