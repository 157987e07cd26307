"""Coordinate systems: the local metric CRS of a study area and the GCJ-02 (火星坐标) offset."""

from __future__ import annotations

import numpy as np
from pyproj import CRS

# Krasovsky 1940 ellipsoid parameters used by the published GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323

#: Longitude and latitude range inside which GCJ-02 offsets apply (mainland China's bbox).
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)


def metric_crs(lon: float, lat: float) -> CRS:
    """Return a metric CRS for a study area centred at ``lon``/``lat``.

    Inside China this is the CGCS2000 3-degree Gauss-Kruger zone whose central meridian is
    nearest (EPSG:4534 is CM 75°E, EPSG:4554 is CM 135°E), the CRS Chinese city GIS teams
    use. Elsewhere it is the UTM zone.

    Parameters
    ----------
    lon, lat
        Centre of the study area in degrees (WGS84).

    Returns
    -------
    pyproj.CRS
    """
    if 73.5 <= lon <= 136.5 and 3.0 <= lat <= 54.0:
        cm = round(lon / 3.0) * 3
        return CRS.from_epsg(4534 + (cm - 75) // 3)
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = CHINA_BBOX
    return (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 offset (dlon, dlat) in degrees at WGS84 ``lon``/``lat``."""
    x = lon - 105.0
    y = lat - 35.0
    s = np.sqrt(np.abs(x))
    t = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * s + t
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * s + t
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Shift WGS84 coordinates to GCJ-02 (points outside China are returned unchanged)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon, lat, tol_deg: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`wgs84_to_gcj02` by fixed-point iteration (converges to < 1 mm).

    Parameters
    ----------
    lon, lat
        GCJ-02 coordinates in degrees.
    tol_deg
        Stop once every point moves less than this between iterations.
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(30):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        dx, dy = glon - flon, glat - flat
        wlon, wlat = wlon + dx, wlat + dy
        if np.all(np.abs(dx) < tol_deg) and np.all(np.abs(dy) < tol_deg):
            break
    return wlon, wlat
