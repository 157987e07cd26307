"""Coordinate systems: the local metric CRS of a study area, the GCJ-02 (火星坐标) offset and
Baidu's BD-09 on top of it."""

from __future__ import annotations

from functools import cache

import numpy as np
import shapely
from pyproj import CRS, Transformer

from wangge.errors import InputError

# Krasovsky 1940 ellipsoid parameters used by the published GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323

#: Longitude and latitude range inside which GCJ-02 offsets apply (mainland China's bbox).
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)

#: CGCS2000 3-degree Gauss-Kruger zones named by central meridian, false easting 500 000 m:
#: EPSG:4534 is CM 75°E, ..., EPSG:4554 is CM 135°E. Their zone-prefixed twins (EPSG:4513 to
#: 4533, false easting 25 500 000 m and up) are deliberately not accepted.
GAUSS_KRUGER_EPSG = range(4534, 4555)

#: What :func:`to_crs_coords` and :func:`from_crs_coords` accept, as they name it in errors.
ACCEPTED_CRS = (
    "EPSG:4326 (WGS84)",
    "EPSG:4490 (CGCS2000)",
    "EPSG:4534 to EPSG:4554 (CGCS2000 3-degree Gauss-Kruger, CM 75°E to 135°E)",
    "GCJ02",
)


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
        return CRS.from_epsg(GAUSS_KRUGER_EPSG[(cm - 75) // 3])
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
    """Shift WGS84 coordinates to GCJ-02.

    Parameters
    ----------
    lon, lat
        WGS84 coordinates in degrees: scalars or array-likes of one shape.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 longitude and latitude (0-d arrays for scalar input). Points outside
        :data:`CHINA_BBOX` are returned unchanged and NaN stays NaN.
    """
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
        GCJ-02 coordinates in degrees: scalars or array-likes of one shape.
    tol_deg
        Stop once every point moves less than this between iterations (NaN points,
        which never converge, do not hold the others up).

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude (0-d arrays for scalar input). Points outside
        :data:`CHINA_BBOX` are returned unchanged and NaN stays NaN.
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(30):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        dx, dy = glon - flon, glat - flat
        wlon, wlat = wlon + dx, wlat + dy
        if not (np.any(np.abs(dx) >= tol_deg) or np.any(np.abs(dy) >= tol_deg)):
            break
    return np.asarray(wlon), np.asarray(wlat)


#: Baidu's BD-09 rotates and scales GCJ-02 about the origin with this factor (π · 3000 / 180).
_X_PI = np.pi * 3000.0 / 180.0

#: Shifted coordinate systems a user file may be in (``--coords``), besides true WGS84/CGCS2000.
SHIFTED = ("wgs84", "gcj02", "bd09")


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Shift GCJ-02 coordinates to Baidu's BD-09 (degrees in, degrees out)."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`gcj02_to_bd09`: the published closed form (good to about 1 m), then
    three fixed-point steps, which bring it under a millimetre."""
    blon, blat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = blon - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(3):
        flon, flat = gcj02_to_bd09(glon, glat)
        glon, glat = glon + (blon - flon), glat + (blat - flat)
    return glon, glat


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Shift WGS84 coordinates to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Shift BD-09 coordinates back to WGS84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def unshift(geoms: np.ndarray, coords: str) -> np.ndarray:
    """Move shapely geometries in degrees from ``coords`` (``wgs84``, ``gcj02`` or ``bd09``)
    to WGS84; ``wgs84`` returns them as they are.

    Raises
    ------
    wangge.errors.InputError
        ``coords`` is none of :data:`SHIFTED`.
    """
    name = str(coords).strip().lower().replace("-", "")
    if name not in SHIFTED:
        raise InputError(f"unknown coordinates {coords!r}; accepted: {', '.join(SHIFTED)}")
    if name == "wgs84":
        return geoms
    back = gcj02_to_wgs84 if name == "gcj02" else bd09_to_wgs84

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(back(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, move)


def _crs_name(crs: str) -> str:
    """Return ``crs`` as ``"EPSG:<code>"`` or ``"GCJ02"``, or raise for anything not accepted."""
    name = crs.strip().upper().replace(" ", "") if isinstance(crs, str) else ""
    if name in ("GCJ02", "GCJ-02"):
        return "GCJ02"
    code = name.removeprefix("EPSG:")
    if code.isdigit() and (int(code) in (4326, 4490) or int(code) in GAUSS_KRUGER_EPSG):
        return f"EPSG:{int(code)}"
    problem = f"unknown CRS {crs!r}; accepted: {'; '.join(ACCEPTED_CRS)}"
    if code.isdigit() and 4513 <= int(code) <= 4533:
        problem += " (the zone-prefixed Gauss-Kruger variants are not used)"
    raise InputError(problem, where="crs")


@cache
def _from_wgs84(name: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", name, always_xy=True)


def to_crs_coords(lon, lat, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 longitude/latitude to coordinates in ``crs``.

    Parameters
    ----------
    lon, lat
        WGS84 coordinates in degrees: scalars or array-likes of one shape.
    crs
        ``"EPSG:4326"`` (returned as given), ``"EPSG:4490"`` (CGCS2000 longitude/latitude;
        PROJ treats it as equal to WGS84, which holds to a few centimetres), one of
        ``"EPSG:4534"`` to ``"EPSG:4554"`` (CGCS2000 3-degree Gauss-Kruger) or ``"GCJ02"``.

    Returns
    -------
    tuple of numpy.ndarray
        ``x, y``: longitude and latitude in degrees, or easting and northing in metres for
        a Gauss-Kruger zone (always in that order, whatever the EPSG axis order). NaN in,
        NaN out.

    Raises
    ------
    wangge.errors.InputError
        ``crs`` is none of the above; the message lists what is accepted.
    """
    name = _crs_name(crs)
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    if name == "EPSG:4326":
        return lon.copy(), lat.copy()
    if name == "GCJ02":
        return wgs84_to_gcj02(lon, lat)
    x, y = _from_wgs84(name).transform(lon, lat)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def from_crs_coords(x, y, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates in ``crs`` to WGS84 longitude/latitude (inverts :func:`to_crs_coords`).

    Parameters
    ----------
    x, y
        Longitude and latitude in degrees, or easting and northing in metres for a
        Gauss-Kruger zone: scalars or array-likes of one shape.
    crs
        As for :func:`to_crs_coords`.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude in degrees. NaN in, NaN out.

    Raises
    ------
    wangge.errors.InputError
        ``crs`` is not accepted; the message lists what is.
    """
    name = _crs_name(crs)
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    if name == "EPSG:4326":
        return x.copy(), y.copy()
    if name == "GCJ02":
        return gcj02_to_wgs84(x, y)
    lon, lat = _from_wgs84(name).transform(x, y, direction="INVERSE")
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
