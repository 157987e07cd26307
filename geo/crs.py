"""Coordinate systems: the local metric CRS of a study area, the GCJ-02 (火星坐标) offset and
Baidu's BD-09 on top of it."""

from __future__ import annotations

from dataclasses import dataclass
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
        return CRS.from_epsg(gauss_kruger_epsg(lon))
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def gauss_kruger_epsg(lon: float) -> int:
    """Return the EPSG code of the CGCS2000 3-degree Gauss-Kruger zone for a longitude.

    The zone is the one whose central meridian (a multiple of 3°) is nearest ``lon``; its
    code is 4534 + (CM − 75) / 3 (EPSG registry: EPSG:4534 "CGCS2000 / 3-degree
    Gauss-Kruger CM 75E" to EPSG:4554 "... CM 135E"). Beijing (116.4°E) is CM 117°E,
    EPSG:4548; Nanjing (118.8°E) and Shanghai (121.5°E) are CM 120°E, EPSG:4549.

    Parameters
    ----------
    lon
        Longitude in degrees east; beyond the zones (CM 75°E to 135°E) the nearest end zone.

    Returns
    -------
    int
        An EPSG code in :data:`GAUSS_KRUGER_EPSG`.
    """
    cm = min(max(round(lon / 3.0) * 3, 75), 135)
    return GAUSS_KRUGER_EPSG[(cm - 75) // 3]


def projected_crs_hint(x: float, flag: str, near: tuple[float, float] | None = None) -> str:
    """Say which CRS to declare for coordinates in metres that came without one.

    Parameters
    ----------
    x
        An easting of the file, in metres.
    flag
        The option that declares the file's CRS, such as ``"--buildings-crs"``.
    near
        Longitude and latitude (WGS84) of other data of the same place, when there is
        any (the OSM file): the zone is then the one the data lie in.

    Returns
    -------
    str
        The advice, to end an error message: the zone-prefixed CRS when ``x`` carries a
        zone number in front (25 to 45 million: EPSG:4513 is zone 25 ... EPSG:4533 zone
        45), else the zone of ``near``, else how to pick the zone from the longitude.
    """
    zone = int(abs(x) // 1_000_000)
    if 25 <= zone <= 45:
        return (
            f"x = {x:,.0f} carries the zone number {zone} in front: pass {flag} "
            f"EPSG:{4513 + zone - 25} (CGCS2000 3-degree Gauss-Kruger zone {zone})"
        )
    if near is not None and 73.5 <= near[0] <= 136.5 and 3.0 <= near[1] <= 54.0:
        code = gauss_kruger_epsg(near[0])
        cm = 75 + 3 * (code - GAUSS_KRUGER_EPSG[0])
        return (
            f"pass {flag} EPSG:{code} (CGCS2000 3-degree Gauss-Kruger, CM {cm}°E, the zone "
            f"of the other data, at {near[0]:.2f}°E), or the file's own CRS, or add the .prj"
        )
    return (
        f"pass the file's CRS, or add the .prj: in CGCS2000 3-degree Gauss-Kruger, {flag} "
        f"EPSG:4548 for Beijing or Tianjin (CM 117°E), {flag} EPSG:4549 for Nanjing, "
        "Shanghai or Hangzhou (CM 120°E), elsewhere EPSG:4534 + (CM − 75) / 3 for the "
        "central meridian CM (a multiple of 3°) nearest the data's longitude"
    )


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


def _moved(geoms: np.ndarray, coords: str, to_wgs84: bool) -> np.ndarray:
    """Move geometries between WGS84 and ``coords``, either way (see :func:`unshift`)."""
    name = str(coords).strip().lower().replace("-", "")
    if name not in SHIFTED:
        raise InputError(f"unknown coordinates {coords!r}; accepted: {', '.join(SHIFTED)}")
    if name == "wgs84":
        return geoms
    if to_wgs84:
        step = gcj02_to_wgs84 if name == "gcj02" else bd09_to_wgs84
    else:
        step = wgs84_to_gcj02 if name == "gcj02" else wgs84_to_bd09

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(step(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, move)


def unshift(geoms: np.ndarray, coords: str) -> np.ndarray:
    """Move shapely geometries in degrees from ``coords`` (``wgs84``, ``gcj02`` or ``bd09``)
    to WGS84; ``wgs84`` returns them as they are.

    Raises
    ------
    wangge.errors.InputError
        ``coords`` is none of :data:`SHIFTED`.
    """
    return _moved(geoms, coords, to_wgs84=True)


def shift(geoms: np.ndarray, coords: str) -> np.ndarray:
    """Move shapely geometries in WGS84 degrees to ``coords`` (``wgs84``, ``gcj02`` or
    ``bd09``): the inverse of :func:`unshift`; ``wgs84`` returns them as they are.

    Raises
    ------
    wangge.errors.InputError
        ``coords`` is none of :data:`SHIFTED`.
    """
    return _moved(geoms, coords, to_wgs84=False)


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


#: At most this many footprints are compared with the OSM layer (evenly spread in file order).
DATUM_SAMPLE = 3000
#: A datum fits the OSM buildings when this share of the footprints' inside points fall in
#: one, and at least :data:`DATUM_MIN_HITS` of them do; one then misfits when another
#: datum's share is more than twice its own.
DATUM_MIN_SHARE = 0.2
DATUM_MIN_HITS = 20
#: By the roads, where the buildings cannot tell: the share of footprints that a road
#: (one that cuts blocks) crosses must fall below a quarter of the given datum's, which
#: itself must be at least this.
DATUM_MIN_CROSSED = 0.08


@dataclass(frozen=True)
class DatumFit:
    """How footprints read in one datum sit on OSM data of the same place, and in the others.

    Attributes
    ----------
    given
        The datum the footprints were read in (``wgs84``, ``gcj02`` or ``bd09``).
    best
        The datum they fit best; equal to ``given`` when they fit, or when nothing tells.
    basis
        ``"buildings"`` (the share of footprints whose inside point lies in an OSM
        building), ``"roads"`` (the share crossed by an OSM road) or ``""`` when there was
        too little to compare with.
    inside, crossed
        Per datum: those shares (empty when not measured).
    offset_m
        Per datum: the median distance (m) of the footprints from where ``given`` puts them.
    sample
        Footprints compared.
    """

    given: str
    best: str
    basis: str
    inside: dict[str, float]
    crossed: dict[str, float]
    offset_m: dict[str, float]
    sample: int

    @property
    def misfit(self) -> bool:
        """The footprints sit on the OSM data in another datum, not in ``given``."""
        return self.best != self.given


def datum_fit(
    footprints: np.ndarray,
    given: str,
    osm_buildings: np.ndarray,
    osm_roads: np.ndarray,
) -> DatumFit:
    """Test in which datum a layer of footprints sits on the OSM data of the same place.

    A building file in GCJ-02 (AMap, Tencent) or BD-09 (Baidu) read as WGS84 lands a few
    hundred metres off, on other buildings' gardens and on roads, and its household
    estimate is wrong without a word. The footprints are put back in each datum of
    :data:`SHIFTED` in turn (as if their file were in it) and compared with OSM, which is in
    WGS84: first by the share whose inside point falls in an OSM building (all but a few
    when the datum is right, the share of ground built over when not), else, where OSM has
    too few buildings there, by the share a block-cutting road crosses.

    Parameters
    ----------
    footprints
        Polygons in WGS84 degrees, as read in ``given``.
    given
        The datum they were read in: one of :data:`SHIFTED`.
    osm_buildings, osm_roads
        OSM building polygons and road lines of the place (WGS84; roads that cut blocks).

    Returns
    -------
    DatumFit
    """
    given = str(given).strip().lower().replace("-", "")
    footprints = np.asarray(footprints, dtype=object)
    keep = np.unique(np.linspace(0, len(footprints) - 1, min(DATUM_SAMPLE, len(footprints))))
    sample = footprints[keep.astype(int)] if len(footprints) else footprints
    osm_buildings = np.asarray(osm_buildings, dtype=object)
    osm_roads = np.asarray(osm_roads, dtype=object)
    if not len(sample) or (not len(osm_buildings) and not len(osm_roads)):
        return DatumFit(given, given, "", {}, {}, {}, len(sample))
    c = shapely.centroid(shapely.union_all(shapely.envelope(sample)))
    crs = metric_crs(c.x, c.y)
    to_m = Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def metric(geoms: np.ndarray) -> np.ndarray:
        return shapely.transform(geoms, lambda xy: np.column_stack(to_m.transform(*xy.T)))

    raw = shift(sample, given)
    read = {d: metric(sample if d == given else unshift(raw, d)) for d in SHIFTED}
    points = {d: shapely.point_on_surface(g) for d, g in read.items()}
    offset = {d: float(np.median(shapely.distance(points[d], points[given]))) for d in SHIFTED}
    inside: dict[str, float] = {}
    if len(osm_buildings):
        tree = shapely.STRtree(metric(osm_buildings))
        hits = {d: len(np.unique(tree.query(p, predicate="within")[0])) for d, p in points.items()}
        inside = {d: n / len(sample) for d, n in hits.items()}
        best = max(SHIFTED, key=lambda d: (inside[d], d == given))
        fits = hits[best] >= DATUM_MIN_HITS and inside[best] >= DATUM_MIN_SHARE
        if fits and (best == given or inside[best] > 2 * inside[given]):
            return DatumFit(given, best, "buildings", inside, {}, offset, len(sample))
    crossed: dict[str, float] = {}
    if len(osm_roads):
        tree = shapely.STRtree(metric(osm_roads))
        crossed = {
            d: len(np.unique(tree.query(g, predicate="intersects")[0])) / len(sample)
            for d, g in read.items()
        }
        best = min(SHIFTED, key=lambda d: (crossed[d], d != given))
        worst = max(crossed.values())
        tells = worst >= DATUM_MIN_CROSSED and crossed[best] * 4 <= worst
        if tells and (best == given or crossed[given] >= DATUM_MIN_CROSSED):
            return DatumFit(given, best, "roads", inside, crossed, offset, len(sample))
    return DatumFit(given, given, "", inside, crossed, offset, len(sample))
