"""Limits: the brief's defaults, user overrides, and bad configs named by file and key."""

from __future__ import annotations

import pytest

from wangge.errors import InputError
from wangge.geo.limits import limits_from_raw, load_limits


def test_defaults_are_the_briefs():
    lim = load_limits()
    assert (lim.grid.lo, lim.grid.hi, lim.grid.target) == (300, 500, 400)
    assert (lim.microgrid.lo, lim.microgrid.hi, lim.microgrid.target) == (15, 35, 25)
    assert lim.community.hi == 3000 and lim.community_max_population == 10000
    assert lim.street_max_km2 == 20
    assert lim.district_code is None  # no default: the run takes one from its data or asks
    assert lim.microgrid.divisible and not lim.grid.divisible


def test_user_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "limits.toml"
    path.write_text("[grid]\ntarget_households = 450\n", "utf-8")
    lim = load_limits(path, seed=9, district_code="110105")
    assert lim.grid.target == 450 and lim.grid.hi == 500
    assert lim.solver.seed == 9 and lim.district_code == "110105"


def test_round_trip_through_raw_settings():
    lim = load_limits(seed=4)
    again = limits_from_raw(lim.raw, "plan.gpkg")
    assert again == lim


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[grid\n", "is not valid TOML"),
        ("[grid]\nmin_households = 600\n", "min_households ≤ target_households"),
        ("[solver]\nattempt = 3\n", "unknown [solver] keys: attempt"),
        ('[district]\ncode = "3201"\n', "district code must be 6 digits"),
    ],
)
def test_bad_config_is_named(tmp_path, text, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(InputError) as info:
        load_limits(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_missing_config_is_named(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_limits(tmp_path / "none.toml")
