"""The CRSs an OGC API – Features client may ask for (Part 2): their URIs and axis order,
geometries moved into them, and a ``bbox`` given in one (``bbox-crs``).

Geometries are stored in WGS84 longitude/latitude, which is OGC CRS84. A request may ask
for them (``crs``) or give its ``bbox`` (``bbox-crs``) in CRS84 (lon,lat), EPSG:4326 or
EPSG:4490 (lat,lon, as their EPSG definitions say) or a CGCS2000 3-degree Gauss-Kruger
zone EPSG:4534–4554 (northing,easting, likewise); the answer names its CRS in
``Content-Crs``. A bbox in a projected CRS is no lon/lat rectangle: the store is asked for
the lon/lat box around it, and the features are then kept by its own outline.

Every ``bbox`` the schema's pattern admits (four decimal numbers) is answered, so the
description and the server agree: in a geographic CRS a west edge east of the east edge
crosses the antimeridian (OGC API – Features 1.0, 7.15.3), the latitudes may come in
either order, and values beyond the world are cut to it; in a projected CRS the box is the
rectangle between its two corners, cut to the zone's area of use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import shapely
from fastapi import Depends, Query, Request
from pyproj import CRS
from pyproj.exceptions import CRSError

from wangge.api.deps import StoreDep, VersionDep, parse_bbox
from wangge.errors import InputError, WanggeError
from wangge.geo.crs import GAUSS_KRUGER_EPSG, from_crs_coords, to_crs_coords

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


class UnsupportedCrs(WanggeError):
    """A ``crs`` or ``bbox-crs`` the service does not offer (400, as OGC API Part 2 says)."""

    status_code = 400


@dataclass(frozen=True)
class OutputCrs:
    """A CRS the service offers: its URI, EPSG code (None for CRS84) and whether its first
    axis points north (latitude or northing first)."""

    uri: str
    code: int | None
    north_first: bool


def _offered() -> dict[str, OutputCrs]:
    out = {CRS84: OutputCrs(CRS84, None, False)}
    for code in (4326, 4490, *GAUSS_KRUGER_EPSG):
        try:
            axes = CRS.from_epsg(code).axis_info
        except CRSError:  # an EPSG database without the code: not offered
            continue
        out[f"{_EPSG}{code}"] = OutputCrs(f"{_EPSG}{code}", code, axes[0].direction == "north")
    return out


#: The CRSs offered for ``crs`` and ``bbox-crs``, by URI, CRS84 first.
OFFERED = _offered()
#: The CRS geometries are stored in (data/store.py keeps WGS84 longitude/latitude).
STORAGE_CRS = CRS84


def crs_named(uri: str | None, where: str = "crs") -> OutputCrs:
    """The offered CRS with this URI (CRS84 when None); UnsupportedCrs otherwise."""
    if uri is None:
        return OFFERED[CRS84]
    found = OFFERED.get(uri.strip())
    if found is None:
        zones = [c.code for c in OFFERED.values() if c.code and c.code not in (4326, 4490)]
        span = f"{_EPSG}{min(zones)} to {max(zones)}" if zones else "none"
        raise UnsupportedCrs(
            f"unsupported CRS {uri!r}; offered: {CRS84}, {_EPSG}4326, {_EPSG}4490 and the "
            f"CGCS2000 3-degree Gauss-Kruger zones {span}",
            where=where,
        )
    return found


def _swap(xy: np.ndarray) -> np.ndarray:
    return xy[:, ::-1].copy()


def to_crs(geoms: np.ndarray, crs: OutputCrs) -> np.ndarray:
    """WGS84 lon/lat geometries in ``crs``, in its axis order."""
    if crs.code is None:
        return geoms
    if crs.code in (4326, 4490):  # CGCS2000 is WGS84 to PROJ (a few cm): the axes swap
        return shapely.transform(geoms, _swap) if crs.north_first else geoms

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = to_crs_coords(xy[:, 0], xy[:, 1], f"EPSG:{crs.code}")
        out = np.column_stack((y, x) if crs.north_first else (x, y))
        if not np.isfinite(out).all():
            raise UnsupportedCrs(f"the features lie outside what {crs.uri} can hold")
        return out

    return shapely.transform(geoms, move)


def from_crs(geoms: np.ndarray, crs: OutputCrs) -> np.ndarray:
    """Geometries given in ``crs`` (in its axis order) as WGS84 lon/lat: what
    :func:`to_crs` undoes, for features a client writes (``Content-Crs``)."""
    if crs.code is None:
        return geoms
    if crs.code in (4326, 4490):  # CGCS2000 is WGS84 to PROJ (a few cm): the axes swap
        return shapely.transform(geoms, _swap) if crs.north_first else geoms

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = (xy[:, 1], xy[:, 0]) if crs.north_first else (xy[:, 0], xy[:, 1])
        lon, lat = from_crs_coords(x, y, f"EPSG:{crs.code}")
        out = np.column_stack((lon, lat))
        if not np.isfinite(out).all():
            raise InputError(f"the geometry lies outside what {crs.uri} can hold", where="geometry")
        return out

    return shapely.transform(geoms, move)


def bbox_in_lonlat(values: list[float], crs: OutputCrs) -> shapely.Polygon:
    """A bbox given in ``crs`` (in its axis order, lower corner first) as a WGS84 lon/lat
    polygon: the box itself for a geographic CRS, its densified outline for a projected one
    (whose box is no lon/lat rectangle)."""
    a, b, c, d = values
    x0, y0, x1, y1 = (b, a, d, c) if crs.north_first else (a, b, c, d)
    if crs.code in (None, 4326, 4490):  # CGCS2000 is WGS84 to PROJ (a few cm)
        return shapely.box(x0, y0, x1, y1)
    t = np.linspace(0.0, 1.0, 21)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(21, x1), x1 - (x1 - x0) * t, np.full(21, x0)])
    ys = np.concatenate([np.full(21, y0), y0 + (y1 - y0) * t, np.full(21, y1), y1 - (y1 - y0) * t])
    lon, lat = from_crs_coords(xs, ys, f"EPSG:{crs.code}")
    return shapely.Polygon(np.column_stack((lon, lat)))


CrsQuery = Annotated[
    str | None,
    Query(
        description="The CRS of the answer's geometries, by URI (default CRS84: lon,lat); "
        "EPSG:4326 and 4490 give lat,lon and the Gauss-Kruger zones northing,easting",
        json_schema_extra={"enum": list(OFFERED)},
    ),
]


#: A decimal number as a bbox gives it: no inf, nan or hex (Python's float reads those),
#: and an exponent of at most two digits, so that every value is finite.
_NUMBER = r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,2})?"
#: A bbox: four numbers, comma-separated, spaces allowed around them (a 3D box of six is
#: not offered). Spaces, not ``\s``: which characters that names differs between Python,
#: pydantic's regex engine and the JSON Schema (ECMA-262) a client checks with.
BBOX = rf"^ *{_NUMBER}( *, *{_NUMBER}){{3}} *$"


def _cut(value: float, lo: float, hi: float) -> float:
    return min(max(value, lo), hi)


def _area_of_use(code: int) -> tuple[float, float, float, float]:
    """A projected CRS's area of use, in its own x/y (easting, northing)."""
    from pyproj import Transformer

    west, south, east, north = CRS.from_epsg(code).area_of_use.bounds
    to = Transformer.from_crs(4326, code, always_xy=True)
    return to.transform_bounds(west, south, east, north, densify_pts=21)


def normalise_box(
    values: list[float], crs: OutputCrs
) -> tuple[tuple[float, float, float, float], shapely.Geometry | None]:
    """A bbox as the store is asked for it (a lon/lat box) and the outline to keep the
    features by when the box is not that rectangle (None when it is), for any four
    numbers: see the module's docstring for how each is read."""
    a, b, c, d = values
    x0, y0, x1, y1 = (b, a, d, c) if crs.north_first else (a, b, c, d)
    if crs.code in (None, 4326, 4490):
        y0, y1 = sorted((_cut(y0, -90, 90), _cut(y1, -90, 90)))
        x0, x1 = _cut(x0, -180, 180), _cut(x1, -180, 180)
        if x0 <= x1:
            return (x0, y0, x1, y1), None
        parts = [shapely.box(x0, y0, 180, y1), shapely.box(-180, y0, x1, y1)]
        return (-180.0, y0, 180.0, y1), shapely.MultiPolygon(parts)
    ex0, ey0, ex1, ey1 = _area_of_use(crs.code)
    x0, x1 = sorted((_cut(x0, ex0, ex1), _cut(x1, ex0, ex1)))
    y0, y1 = sorted((_cut(y0, ey0, ey1), _cut(y1, ey0, ey1)))
    corners = [y0, x0, y1, x1] if crs.north_first else [x0, y0, x1, y1]
    outline = bbox_in_lonlat(corners, crs)
    return tuple(float(v) for v in outline.bounds), outline  # type: ignore[return-value]


def parse_box(
    request: Request,
    store: StoreDep,
    v: VersionDep,
    bbox: Annotated[
        str | None,
        Query(
            description="Lower and upper corner in bbox-crs, in its axis order "
            "(CRS84, the default: minLon,minLat,maxLon,maxLat); a west edge east of the "
            "east edge crosses the antimeridian, and values beyond the world are cut to it",
            examples=["118.77,32.03,118.79,32.05"],
            max_length=200,
            pattern=BBOX,
        ),
    ] = None,
    bbox_crs: Annotated[
        str | None,
        Query(
            alias="bbox-crs",
            description="The CRS of bbox, by URI (default CRS84)",
            json_schema_extra={"enum": list(OFFERED)},
        ),
    ] = None,
) -> tuple[tuple[float, float, float, float], shapely.Geometry | None] | None:
    """The bbox as a WGS84 lon/lat box for the store, and the exact lon/lat outline to
    filter by when bbox-crs is projected or the box crosses the antimeridian (None when
    the box is exact)."""
    crs = crs_named(bbox_crs, where="bbox-crs")
    if bbox is None:
        return None
    try:  # the pattern admits numbers only; a call from code may not have been checked
        values = [float(p) for p in bbox.split(",")]
    except ValueError as exc:
        raise InputError("bbox must be four numbers", where="bbox") from exc
    if len(values) != 4 or not all(math.isfinite(x) for x in values):
        raise InputError("bbox must be four numbers", where="bbox")
    box, outline = normalise_box(values, crs)
    lonlat = ",".join(repr(x) for x in box)
    try:
        return parse_bbox(request, store, v, lonlat), outline
    except InputError as exc:
        raise InputError(f"in {crs.uri}, {exc.problem} (lon/lat: {lonlat})", where="bbox") from exc


BoxDep = Annotated[
    tuple[tuple[float, float, float, float], shapely.Geometry | None] | None, Depends(parse_box)
]
