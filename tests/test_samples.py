"""Tests of wangge.data.samples: the seeded SAMPLE data of the demo, read back by the readers.

The samples are generated from the demo plan (© OpenStreetMap contributors, ODbL 1.0)
copied into ``tmp_path``, so the shared plan directory is never written to.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from wangge.data.registers import read_facilities, read_risks, read_vulnerable
from wangge.data.samples import SAMPLE_NOTE, write_samples
from wangge.geo.rules import load_rules

FILES = ("risks", "zones", "vulnerable", "facilities", "readme")


def _copy_plan(plan_dir: Path, to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    for name in ("plan.gpkg", "units.gpkg"):
        shutil.copy(plan_dir / name, to / name)
    return to


@pytest.fixture(scope="module")
def generated(plan_dir, tmp_path_factory) -> dict[int, dict[str, Path]]:
    """Samples of seed 0 (twice, in two directories) and of seed 1."""
    base = tmp_path_factory.mktemp("samples")
    return {
        key: write_samples(_copy_plan(plan_dir, base / str(key)), seed)
        for key, seed in (("a", 0), ("b", 0), ("c", 1))
    }


@pytest.fixture(scope="module")
def read_back(generated, plan_dir):
    """Everything seed 0 wrote, read by the registers' readers against the demo plan."""
    rules = load_rules()
    paths = generated["a"]
    plan = plan_dir / "plan.gpkg"
    study = gpd.read_file(plan, layer="study_area").geometry.union_all()
    buildings = gpd.read_file(plan, layer="buildings").to_crs(4549)
    return {
        "rules": rules,
        "risks": read_risks(paths["risks"], rules, study),
        "zones": read_risks(paths["zones"], rules, study, zones=True),
        "facilities": read_facilities(paths["facilities"], rules, study),
        "vulnerable": read_vulnerable(paths["vulnerable"], buildings),
        "buildings": buildings,
        "communities": gpd.read_file(plan, layer="communities"),
    }


def test_same_seed_gives_byte_identical_files(generated):
    for key in FILES:
        a, b = generated["a"][key], generated["b"][key]
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), key


def test_another_seed_gives_other_data(generated):
    for key in ("risks", "zones", "vulnerable", "facilities"):
        assert generated["a"][key].read_bytes() != generated["c"][key].read_bytes(), key


def test_every_file_says_sample_in_its_name(generated):
    for key in ("risks", "zones", "vulnerable", "facilities"):
        assert "sample" in generated["a"][key].name
    readme = generated["a"]["readme"].read_text("utf-8")
    assert "SAMPLE DATA" in readme and "seed 0" in readme and "20.28%" in readme


def test_every_row_is_flagged_sample_with_the_note(generated, read_back):
    for key in ("risks", "vulnerable", "facilities"):
        raw = pd.read_csv(generated["a"][key], encoding="utf-8-sig")
        assert (raw["sample"] == 1).all() and (raw["数据说明 note"] == SAMPLE_NOTE).all(), key
    assert generated["a"]["risks"].read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel
    assert read_back["risks"]["sample"].all() and read_back["zones"]["sample"].all()
    assert (read_back["facilities"]["source"] == "sample").all()
    assert read_back["vulnerable"].attrs["sample"] is True
    assert read_back["risks"]["name"].str.startswith("【样例】").all()
    assert read_back["risks"]["address"].str.startswith("【样例】").all()
    assert read_back["risks"]["responsible"].str.startswith("【样例】").all()
    collection = json.loads(generated["a"]["zones"].read_text("utf-8"))
    assert "样例" in collection["name"] and collection["description"] == SAMPLE_NOTE
    assert all(f["properties"]["sample"] == 1 for f in collection["features"])


def _levels(risks: pd.DataFrame, rules) -> np.ndarray:
    m, lec = rules.matrix, rules.lec
    r = risks["L"] * risks["S"]
    d = risks["L"] * risks["E"] * risks["C"]
    by_matrix = np.select(
        [r >= m["red"], r >= m["orange"], r >= m["yellow"]], ["red", "orange", "yellow"], "blue"
    )
    by_lec = np.select(
        [d > lec["red"], d > lec["orange"], d > lec["yellow"]], ["red", "orange", "yellow"], "blue"
    )
    return np.where(risks["S"].notna(), by_matrix, by_lec)


def test_risks_cover_every_category_level_and_method(read_back):
    risks, rules = read_back["risks"], read_back["rules"]
    assert 60 <= len(risks) <= 90
    assert set(risks["category"]) == set(rules.categories)
    levels = pd.Series(_levels(risks, rules)).value_counts()
    assert set(levels.index) == {"red", "orange", "yellow", "blue"}
    assert levels["red"] < levels["orange"] < levels["blue"]  # a few red, many blue
    lec = risks["E"].notna()
    assert 5 <= lec.sum() <= len(risks) - 5  # a mix of matrix and LEC rows


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_also_cover_every_category_and_level(plan_dir, tmp_path, seed):
    rules = load_rules()
    paths = write_samples(_copy_plan(plan_dir, tmp_path), seed)
    risks = read_risks(paths["risks"], rules)
    assert set(risks["category"]) == set(rules.categories)
    assert set(_levels(risks, rules)) == {"red", "orange", "yellow", "blue"}


def test_fuel_station_carries_production_and_fire_risks(read_back):
    fuel = read_back["risks"][read_back["risks"]["name"].str.contains("加油站")]
    assert set(fuel["category"]) == {"production", "fire"}
    assert set(_levels(fuel, read_back["rules"])) <= {"red", "orange"}


def test_zones_are_three_to_five_polygons_with_kinds(read_back):
    zones = read_back["zones"]
    assert 3 <= len(zones) <= 5
    assert set(zones.geom_type) <= {"Polygon", "MultiPolygon"}
    assert "内涝积水区" in set(zones["kind"]) and (zones["kind"] != "").all()


def test_facilities_hold_every_generated_type_with_sound_numbers(read_back):
    facilities = read_back["facilities"]
    counts = facilities["type"].value_counts()
    assert 35 <= counts["aed"] <= 45
    assert counts["clinic"] == 6 and counts["elderly_care"] == 5 and counts["fire_station"] == 1
    assert counts["community_centre"] == len(read_back["communities"])
    assert 1 <= counts["fixed_shelter"] <= 2 and 3 <= counts["emergency_shelter"] <= 6
    shelters = facilities[facilities["type"].isin(["fixed_shelter", "emergency_shelter"])]
    assert (shelters["area_m2"] > 0).all() and (shelters["capacity"] > 0).all()
    emergency = shelters[shelters["type"] == "emergency_shelter"]
    assert emergency["area_m2"].between(800, 5_000).all()


def test_vulnerable_counts_are_non_negative_and_plausible(read_back):
    counts = read_back["vulnerable"]
    buildings = read_back["buildings"].set_index("building_id")
    assert counts.attrs["unmatched_rows"] == []
    assert len(counts) == (buildings["population"] > 0).sum()  # every residential building
    assert (counts >= 0).all().all()
    assert (counts["alone"] <= counts["elderly"]).all()
    population = buildings.loc[counts.index, "population"]
    assert (counts["elderly"] <= population).all()
    share = counts["elderly"].sum() / population.sum()
    assert 0.18 < share < 0.23  # drawn at 20.28 %
