"""Risk scoring cut-offs, per-grid aggregation, and Gi* against esda."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from wangge.geo.risk import contiguity, getis_ord_star, grid_risk, score
from wangge.geo.rules import load_rules


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.mark.parametrize(
    ("L", "S", "level"),
    [
        (5, 5, "red"),
        (4, 5, "red"),
        (4, 4, "orange"),
        (3, 3, "orange"),
        (2, 4, "yellow"),
        (2, 2, "yellow"),
        (1, 3, "blue"),
        (1, 1, "blue"),
    ],
)
def test_matrix_cut_offs(rules, L, S, level):
    out = score(pd.DataFrame({"L": [L], "S": [S]}), rules)
    assert out["method"].iat[0] == "matrix"
    assert out["score"].iat[0] == L * S
    assert out["level"].iat[0] == level


@pytest.mark.parametrize(
    ("L", "E", "C", "level"),
    [
        (10, 6, 7, "red"),
        (1, 10, 33, "red"),  # 330
        (1, 4, 80, "orange"),  # 320: the top of orange
        (10, 2, 15, "orange"),
        (1, 10, 16, "orange"),  # 160: the bottom of orange
        (10, 10, 1, "yellow"),
        (1, 10, 7, "yellow"),
        (1, 6, 7, "blue"),
        (0.1, 0.5, 1, "blue"),
    ],
)
def test_lec_cut_offs(rules, L, E, C, level):
    """D > 320 red, 160–320 orange, 70–160 yellow, below 70 blue (the brief's bands)."""
    out = score(pd.DataFrame({"L": [L], "S": [np.nan], "E": [E], "C": [C]}), rules)
    assert out["method"].iat[0] == "lec"
    assert out["score"].iat[0] == pytest.approx(L * E * C)
    assert out["level"].iat[0] == level


def _squares(n: int) -> gpd.GeoDataFrame:
    boxes = [
        shapely.box(x * 100, y * 100, x * 100 + 100, y * 100 + 100)
        for y in range(n)
        for x in range(n)
    ]
    return gpd.GeoDataFrame(
        {"code": [f"g{i:02d}" for i in range(n * n)], "households": 400},
        geometry=boxes,
        crs=4549,
    )


def test_gi_star_matches_esda(rules):
    esda = pytest.importorskip("esda")  # in the test extras, so present in CI
    from libpysal.weights import W

    grids = _squares(6)
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 3.0, len(grids))
    x[[0, 1, 6, 7]] += 30  # a hot corner
    w = contiguity(grids.geometry.to_numpy())
    z, p = getis_ord_star(x, w)
    neighbours = {i: [int(j) for j in w[i].indices if j != i] for i in range(len(grids))}
    ref = esda.G_Local(x, W(neighbours), star=True, transform="B", permutations=0)
    np.testing.assert_allclose(z, ref.Zs, atol=1e-9)
    assert z[0] > 1.96 and p[0] < 0.05
    # a constant surface has no hot spots
    z0, p0 = getis_ord_star(np.ones(len(grids)), w)
    assert (z0 == 0).all() and (p0 == 1).all()


def test_grid_risk_counts_levels_and_exposure(rules):
    grids = _squares(3)
    pts = gpd.GeoDataFrame(
        score(pd.DataFrame({"L": [5, 3, 1, 1], "S": [5, 3, 1, 2]}), rules),
        geometry=[
            shapely.Point(50, 50),
            shapely.Point(60, 50),
            shapely.Point(150, 50),
            shapely.Point(250, 250),
        ],
        crs=4549,
    )
    zones = gpd.GeoDataFrame(
        score(pd.DataFrame({"L": [2], "S": [3]}), rules),
        geometry=[shapely.box(110, 110, 190, 190)],
        crs=4549,
    )
    buildings = gpd.GeoDataFrame(
        {
            "households": [30, 40],
            "population": [80, 100],
            "grid_code": ["g04", "g00"],
            "elderly": [5, 9],
            "disabled": [1, 0],
            "alone": [2, 0],
        },
        geometry=[shapely.box(120, 120, 130, 130), shapely.box(10, 10, 20, 20)],
        crs=4549,
    )
    out = grid_risk(grids, pts, zones, buildings, rules).set_index("code")
    assert out.loc["g00", ["n_red", "n_orange", "n_yellow", "n_blue"]].tolist() == [1, 1, 0, 0]
    assert out.loc["g00", "score"] == rules.weights["red"] + rules.weights["orange"]
    assert out.loc["g00", "level"] == "red"  # holds a red point
    assert out.loc["g04", "n_yellow"] == 1 and out.loc["g04", "level"] == "yellow"
    assert out.loc["g04", "exposed_households"] == 30
    assert out.loc["g04", "exposed_vulnerable"] == 8
    assert out.loc["g00", "exposed_households"] == 0  # outside the zone
    assert out.loc["g01", "level"] == "blue" and out.loc["g08", "n_blue"] == 1
