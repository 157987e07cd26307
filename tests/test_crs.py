"""Metric CRS choice and the GCJ-02 offset."""

from __future__ import annotations

import numpy as np
from pyproj import Geod

from wangge.geo.crs import gcj02_to_wgs84, metric_crs, wgs84_to_gcj02


def test_metric_crs_is_the_cgcs2000_zone_in_china():
    assert metric_crs(118.78, 32.04).to_epsg() == 4549  # CM 120°E, Nanjing
    assert metric_crs(114.3, 30.6).to_epsg() == 4547  # CM 114°E, Wuhan
    assert metric_crs(116.4, 39.9).to_epsg() == 4548  # CM 117°E, Beijing
    assert metric_crs(2.35, 48.85).to_epsg() == 32631  # UTM 31N outside China


def test_gcj02_offset_size_and_round_trip():
    rng = np.random.default_rng(7)
    lon = rng.uniform(100, 125, 2000)
    lat = rng.uniform(20, 45, 2000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    geod = Geod(ellps="WGS84")
    offset = geod.inv(lon, lat, glon, glat)[2]
    assert offset.min() > 50 and offset.max() < 1000  # the offset is hundreds of metres
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    err = geod.inv(lon, lat, back_lon, back_lat)[2]
    assert err.max() < 0.01  # well under the 1 m the brief asks for


def test_gcj02_leaves_points_outside_china():
    lon, lat = wgs84_to_gcj02([2.35], [48.85])
    assert lon[0] == 2.35 and lat[0] == 48.85
