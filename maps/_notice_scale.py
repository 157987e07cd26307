"""Scale bar and north arrow of the notice maps, measured on the ellipsoid, not assumed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from pyproj import CRS, Geod, Transformer

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class ScaleBar:
    """A scale bar: ``length_m`` metres on the ground, drawn from ``start`` to ``end`` (map
    coordinates), labelled ``label``; ``ratio`` is the printed sheet's scale 1:ratio."""

    length_m: float
    label: str
    start: tuple[float, float]
    end: tuple[float, float]
    ratio: int


def _nice(length: float) -> float:
    """The largest 1, 2 or 5 × 10ⁿ not above ``length``."""
    exp = 10 ** math.floor(math.log10(length))
    return max(m * exp for m in (1, 2, 5) if m * exp <= length)


def _label(metres: float) -> str:
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"


@cache
def _lonlat(crs: CRS) -> Transformer:
    return Transformer.from_crs(crs, 4326, always_xy=True)


@cache
def _to_map(crs: CRS) -> Transformer:
    return Transformer.from_crs(4326, crs, always_xy=True)


def scale_bar(
    crs: CRS, xlim: tuple[float, float], ylim: tuple[float, float], width_in: float
) -> ScaleBar:
    """A scale bar for a map of ``xlim`` × ``ylim`` (in ``crs``) printed ``width_in`` inches
    wide: a round length (1, 2 or 5 × 10ⁿ m) of at most a quarter of the map's ground
    width, placed at its lower left. The map's scale factor there is measured on the
    ellipsoid (geodesic length of a map segment), so the bar is true on the ground.
    """
    (x0, x1), (y0, y1) = xlim, ylim
    start = (x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0))
    to_ll = _lonlat(CRS.from_user_input(crs))
    probe = (x1 - x0) / 4
    (lon0, lon1), (lat0, lat1) = to_ll.transform([start[0], start[0] + probe], [start[1], start[1]])
    ground = _GEOD.inv(lon0, lat0, lon1, lat1)[2]
    k = probe / ground  # map units per metre on the ground
    ground_width = (x1 - x0) / k
    length = _nice(ground_width / 4)
    end = (start[0] + length * k, start[1])
    ratio = ground_width / (width_in * 0.0254)
    digits = 10 ** max(math.floor(math.log10(ratio)) - 1, 0)
    return ScaleBar(length, _label(length), start, end, int(round(ratio / digits) * digits))


def north_angle(crs: CRS, x: float, y: float) -> float:
    """Degrees clockwise from the map's up to true north at ``(x, y)`` (the meridian
    convergence of the projection)."""
    crs = CRS.from_user_input(crs)
    lon, lat = _lonlat(crs).transform(x, y)
    nx, ny = _to_map(crs).transform(lon, lat + 0.001)
    return math.degrees(math.atan2(nx - x, ny - y))
