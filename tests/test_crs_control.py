"""GCJ-02 against published control points, and CGCS2000 Gauss-Kruger zones through pyproj."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pyproj import Geod

from wangge.errors import InputError
from wangge.geo.crs import (
    GAUSS_KRUGER_EPSG,
    from_crs_coords,
    gcj02_to_wgs84,
    metric_crs,
    to_crs_coords,
    wgs84_to_gcj02,
)

WGS84 = Geod(ellps="WGS84")

# Published (WGS84 lon, lat) -> (GCJ-02 lon, lat) pairs, copied from the test suites of widely
# used implementations (reordered to lon, lat where the source writes lat, lng):
CONTROL_POINTS = [
    # googollee/eviltransform, go/transform_test.go (commit 1643645a); the same table is in
    # its python/test.py, javascript/test.js, c/test.c, php/tests/EvilTransformTest.php and
    # csharp/EvilTransformUnitTest.cs.
    pytest.param((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597), id="shanghai"),
    pytest.param((113.912316, 22.543847), (113.9171764808363, 22.540796131694766), id="shenzhen"),
    pytest.param((116.377817, 39.911954), (116.38404722455657, 39.91334545536069), id="beijing"),
    # wandergis/coordtransform, test/app.js (commit 24232463): "wgs84togcj02: [...]".
    pytest.param((116.404, 39.915), (116.41024449916938, 39.91640428150164), id="tiananmen"),
    # feiquan123/coordtransform-go, coordtransform_test.go (commit 2389b024): p, expWGS84toGCJ02.
    pytest.param((114.363089, 30.517411), (114.36861383019243, 30.515078352018758), id="wuhan"),
]
# Not used: hutool's CoordinateUtilTest gives 116.41033392216508 for wandergis's point, 7.6 m
# east of every other source (its assertEquals passes a delta of 15 degrees, so it never checked).
# The inverses those libraries publish are one-step approximations (2 * gcj - f(gcj), metres
# off), so the inverse below is checked against their WGS84 inputs instead.

# Tolerance: the sources print full doubles (15-17 digits) and wangge reproduces them bit for bit
# on this machine; 1e-9 degrees (about 0.1 mm) leaves room for last-digit differences between
# maths libraries while still catching any slip in the formula (hutool's is off by 9e-5 degrees).
# The libraries' own tests are looser: eviltransform 1e-6 degrees, coordtransform-go 1e-7.
DEG_TOL = 1e-9


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(WGS84.inv(lon1, lat1, lon2, lat2)[2])


@pytest.mark.parametrize(("wgs", "gcj"), CONTROL_POINTS)
def test_wgs84_to_gcj02_matches_published_points(wgs, gcj):
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=DEG_TOL)
    assert lat == pytest.approx(gcj[1], abs=DEG_TOL)
    assert metres(lon, lat, *gcj) < 0.001


@pytest.mark.parametrize(("wgs", "gcj"), CONTROL_POINTS)
def test_gcj02_to_wgs84_recovers_published_points(wgs, gcj):
    lon, lat = gcj02_to_wgs84(*gcj)
    assert metres(lon, lat, *wgs) < 0.001  # the issue asks < 1 m; the iteration gives < 1 µm
    lon, lat = from_crs_coords(*gcj, "GCJ02")
    assert metres(lon, lat, *wgs) < 0.001


def test_control_points_as_one_array():
    wgs = np.array([p.values[0] for p in CONTROL_POINTS])
    gcj = np.array([p.values[1] for p in CONTROL_POINTS])
    lon, lat = wgs84_to_gcj02(wgs[:, 0], wgs[:, 1])
    np.testing.assert_allclose(lon, gcj[:, 0], rtol=0, atol=DEG_TOL)
    np.testing.assert_allclose(lat, gcj[:, 1], rtol=0, atol=DEG_TOL)
    lon, lat = gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
    assert metres(lon, lat, wgs[:, 0], wgs[:, 1]).max() < 0.001


def test_round_trip_over_a_grid_of_china():
    lon, lat = np.meshgrid(np.arange(73.5, 135.01, 0.25), np.arange(18.0, 53.51, 0.25))
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon.shape == lon.shape
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    assert metres(lon, lat, back_lon, back_lat).max() < 0.001  # the issue asks < 1 m
    # And the other way: a GCJ-02 grid to WGS84 and back.
    wlon, wlat = gcj02_to_wgs84(lon, lat)
    again_lon, again_lat = wgs84_to_gcj02(wlon, wlat)
    assert metres(lon, lat, again_lon, again_lat).max() < 0.001


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(2.35, 48.85), (139.69, 35.69), (-74.0, 40.7), (151.2, -33.9), (70.0, 30.0), (100.0, 0.5)],
    ids=["paris", "tokyo", "new-york", "sydney", "west-of-bbox", "south-of-bbox"],
)
def test_points_outside_china_are_unchanged_both_ways(lon, lat):
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert to_crs_coords(lon, lat, "GCJ02") == (lon, lat)
    assert from_crs_coords(lon, lat, "GCJ02") == (lon, lat)


def test_scalar_list_and_array_input_agree():
    (wlon, wlat), (glon, glat) = CONTROL_POINTS[0].values
    for convert, lon, lat in ((wgs84_to_gcj02, wlon, wlat), (gcj02_to_wgs84, glon, glat)):
        s_lon, s_lat = convert(lon, lat)
        l_lon, l_lat = convert([lon, lon], [lat, lat])
        a_lon, a_lat = convert(np.full((2, 3), lon), np.full((2, 3), lat))
        assert np.ndim(s_lon) == 0 and float(s_lon) == l_lon[1] == a_lon[1, 2]
        assert np.ndim(s_lat) == 0 and float(s_lat) == l_lat[1] == a_lat[1, 2]
        assert a_lon.shape == a_lat.shape == (2, 3)


def test_nan_gives_nan_not_an_exception_or_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for convert in (wgs84_to_gcj02, gcj02_to_wgs84):
            lon, lat = convert(np.nan, np.nan)
            assert np.isnan(lon) and np.isnan(lat)
            lon, lat = convert([np.nan, 116.404], [39.915, np.nan])
            assert np.isnan(lon[0]) and np.isnan(lat[1])
        # A NaN does not stop the others converging.
        (wlon, wlat), (glon, glat) = CONTROL_POINTS[3].values
        lon, lat = gcj02_to_wgs84([np.nan, glon], [np.nan, glat])
        assert np.isnan(lon[0]) and metres(lon[1], lat[1], wlon, wlat) < 0.001
        x, y = to_crs_coords([np.nan, 118.78], [np.nan, 32.04], "EPSG:4549")
        assert np.isnan(x[0]) and np.isnan(y[0]) and np.isfinite(x[1])


# CGCS2000 and its 3-degree Gauss-Kruger zones go through pyproj.

NANJING = (118.78, 32.04)


def test_nanjing_round_trips_through_its_gauss_kruger_zone():
    crs = f"EPSG:{metric_crs(*NANJING).to_epsg()}"
    assert crs == "EPSG:4549"  # CM 120°E
    x, y = to_crs_coords(*NANJING, crs)
    assert 300_000 < x < 500_000 and 3_500_000 < y < 3_600_000  # easting first, then northing
    lon, lat = from_crs_coords(x, y, crs)
    assert metres(lon, lat, *NANJING) < 0.001


@pytest.mark.parametrize("lat", [0.0, 18.0, 32.0, 45.0, 53.5])
def test_on_the_central_meridian_easting_is_500000_and_northing_the_meridian_arc(lat):
    x, y = to_crs_coords(120.0, lat, "EPSG:4549")
    assert abs(x - 500_000.0) < 1e-6
    # Scale factor 1 and false northing 0 on the CGCS2000 (GRS80) ellipsoid: the northing on the
    # central meridian is the meridian arc from the equator.
    arc = Geod(ellps="GRS80").inv(120.0, 0.0, 120.0, lat)[2]
    assert abs(y - arc) < 0.001


@pytest.mark.parametrize("epsg", list(GAUSS_KRUGER_EPSG))
def test_every_gauss_kruger_zone_is_centred_on_its_meridian(epsg):
    cm = 75 + 3 * (epsg - 4534)
    x, _ = to_crs_coords(cm, 30.0, f"EPSG:{epsg}")
    assert abs(x - 500_000.0) < 1e-6
    lon, lat = from_crs_coords(*to_crs_coords(cm + 1.2, 30.0, f"EPSG:{epsg}"), f"EPSG:{epsg}")
    assert metres(lon, lat, cm + 1.2, 30.0) < 0.001


def test_cgcs2000_geographic_is_wgs84_within_proj():
    lon, lat = to_crs_coords([118.78, 116.404], [32.04, 39.915], "EPSG:4490")
    np.testing.assert_allclose(lon, [118.78, 116.404], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lat, [32.04, 39.915], rtol=0, atol=1e-12)
    back = from_crs_coords(lon, lat, "EPSG:4490")
    np.testing.assert_allclose(back, [[118.78, 116.404], [32.04, 39.915]], rtol=0, atol=1e-12)


def test_wgs84_and_gcj02_names():
    assert to_crs_coords(*NANJING, "EPSG:4326") == NANJING
    assert from_crs_coords(*NANJING, "EPSG:4326") == NANJING
    gcj = wgs84_to_gcj02(*NANJING)
    assert to_crs_coords(*NANJING, "GCJ02") == gcj
    assert to_crs_coords(*NANJING, " gcj-02 ") == gcj
    assert to_crs_coords(*NANJING, "epsg:4549") == to_crs_coords(*NANJING, "EPSG:4549")


@pytest.mark.parametrize(
    "crs", ["EPSG:3857", "EPSG:4513", "EPSG:4533", "EPSG:4555", "BD09", "", "4549x"]
)
def test_unknown_crs_is_an_input_error_listing_what_is_accepted(crs):
    for convert in (to_crs_coords, from_crs_coords):
        with pytest.raises(InputError) as info:
            convert(118.78, 32.04, crs)
        assert info.value.where == "crs"
        for accepted in ("EPSG:4326", "EPSG:4490", "EPSG:4534", "EPSG:4554", "GCJ02"):
            assert accepted in info.value.problem
