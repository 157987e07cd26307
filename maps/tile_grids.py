"""The tile grids (OGC 2D Tile Matrix Sets) vector tiles are cut in: WebMercatorQuad and
CGCS2000Quad.

A grid says where tile ``level/col/row`` lies in its CRS, how large a cell (a pixel of a
256-pixel tile) is at each level and what it is called; :mod:`wangge.maps.mvt` cuts and
encodes in any of them, and the stores fetch a tile's features by its WGS84 box.

**WebMercatorQuad** is OGC 17-083r4 (2D TMS 2.0) Annex D.1: EPSG:3857, origin at the
top-left corner (-20037508.3427892, 20037508.3427892) m, one tile at level 0, cell size
2π·6378137/256 = 156543.0339280410 m at level 0, halving each level; scale denominator =
cell size / 0.28 mm. Its level/col/row are the slippy-map z/x/y.

**CGCS2000Quad** is the same construction as WorldCRS84Quad (17-083r4 Annex D.2) in
CGCS2000 geographic coordinates (EPSG:4490), which Chinese map services (天地图's ``c``
sets) and the GIS teams who take their data use:

- CRS http://www.opengis.net/def/crs/EPSG/0/4490, axes in EPSG order (latitude,
  longitude), so the point of origin is written [90, -180]; tiles are still laid out
  west to east by column and north to south by row, and an MVT tile's x runs with
  longitude and y down with latitude;
- level 0 is 2 × 1 tiles of 180° × 180° (the western and eastern hemispheres), level z
  2^(z+1) × 2^z tiles of 180°/2^z;
- cell size 0.703125° (180°/256) at level 0, halving each level;
- scale denominator = cell size × (π·6378137 m / 180°) / 0.28 mm (CGCS2000's semi-major
  axis is GRS 80's, 6378137 m): 279,541,132.0143589 at level 0, the WorldCRS84Quad
  figures, so a level of either set is drawn at the same scale.

Stored geometries are WGS84; they are placed in CGCS2000Quad with their coordinates as
they are. That is what PROJ does (its WGS84 → CGCS2000 step is the null "ballpark"
transformation); the two realisations differ by a few centimetres, far below a cell
(0.3 m at level 18).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Half the side of the EPSG:3857 world square in metres (π × 6378137).
ORIGIN_SHIFT = math.pi * 6378137.0
#: Metres of one degree on the equator of GRS 80 / WGS 84 (their semi-major axis).
METRES_PER_DEGREE = ORIGIN_SHIFT / 180.0
#: The standardized rendering pixel of OGC (WMTS, 2D TMS): 0.28 mm.
PIXEL_M = 0.28e-3
#: Cells along one side of a tile of every level (the TMS's tileWidth and tileHeight).
TILE_CELLS = 256


@dataclass(frozen=True)
class TileGrid:
    """A quad tile matrix set: level 0 is ``columns0 × rows0`` square tiles of
    ``width0`` CRS units from the top-left corner (``left``, ``top``); each level halves
    them. ``detail_level`` is the first level drawn without simplification (a tile about
    600 m wide)."""

    id: str
    title: str
    epsg: int
    axes: tuple[str, str]  # the CRS's axis order, as the TMS document writes points
    left: float
    top: float
    width0: float
    columns0: int
    rows0: int
    metres_per_unit: float
    detail_level: int
    levels: int  # tile matrices 0 .. levels - 1
    uri: str | None = None  # its registered OGC URI, where it has one
    well_known_scale_set: str | None = None

    @property
    def crs(self) -> str:
        return f"http://www.opengis.net/def/crs/EPSG/0/{self.epsg}"

    @property
    def lat_first(self) -> bool:
        return self.axes[0].lower().startswith("lat")

    def matrix(self, z: int) -> tuple[int, int]:
        """Columns and rows of level ``z``."""
        return self.columns0 << z, self.rows0 << z

    def width(self, z: int) -> float:
        """The side of a tile of level ``z`` in CRS units."""
        return self.width0 / (1 << z)

    def cell_size(self, z: int) -> float:
        return self.width(z) / TILE_CELLS

    def scale_denominator(self, z: int) -> float:
        return self.cell_size(z) * self.metres_per_unit / PIXEL_M

    def check(self, z: int, col: int, row: int) -> None:
        """ValueError unless ``z/col/row`` is a tile of this grid."""
        if not 0 <= z < self.levels:
            raise ValueError(f"level {z} is not one of {self.id}'s 0–{self.levels - 1}")
        columns, rows = self.matrix(z)
        if not (0 <= col < columns and 0 <= row < rows):
            raise ValueError(
                f"tile {z}/{col}/{row} is outside the {columns} x {rows} tiles of level {z}"
            )

    def bounds(self, z: int, col: int, row: int) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of tile ``z/col/row`` in the grid's CRS, x east and
        y north whatever the CRS's axis order. Each edge is computed from its own index,
        so neighbouring tiles share exactly equal edges."""
        self.check(z, col, row)
        size = self.width(z)
        return (
            self.left + col * size,
            self.top - (row + 1) * size,
            self.left + (col + 1) * size,
            self.top - row * size,
        )

    def tolerance(self, z: int, extent: int = 4096) -> float:
        """CRS units of Douglas-Peucker simplification that cannot be seen at level ``z``:
        a quarter of a 256-pixel tile's pixel (the tile's width / 1024), one tile unit when
        ``extent`` is coarser than 1024, and none from :attr:`detail_level` on."""
        if z >= self.detail_level:
            return 0.0
        return self.width(z) / min(extent, 1024)

    def to_lonlat(self, box: tuple[float, float, float, float]) -> tuple[float, ...]:
        """A box of this grid's CRS as a WGS84 lon/lat box (both axes are monotonic in
        either grid, so a box stays a box)."""
        if self.epsg == 4490:
            return box
        x0, y0, x1, y1 = box
        return (*_merc_lonlat(x0, y0), *_merc_lonlat(x1, y1))

    def from_lonlat(self, box: tuple[float, float, float, float]) -> tuple[float, ...]:
        """A WGS84 lon/lat box in this grid's CRS."""
        if self.epsg == 4490:
            return box
        x0, y0, x1, y1 = box
        return (*_lonlat_merc(x0, y0), *_lonlat_merc(x1, y1))

    def tiles_over(self, z: int, box: tuple[float, float, float, float]) -> tuple[int, ...]:
        """``(min_col, min_row, max_col, max_row)`` of the level-``z`` tiles a WGS84 box
        meets (clamped to the matrix)."""
        x0, y0, x1, y1 = self.from_lonlat(box)
        size = self.width(z)
        columns, rows = self.matrix(z)

        def clamp(v: float, n: int) -> int:
            return min(max(math.floor(v), 0), n - 1)

        return (
            clamp((x0 - self.left) / size, columns),
            clamp((self.top - y1) / size, rows),
            clamp((x1 - self.left) / size, columns),
            clamp((self.top - y0) / size, rows),
        )


def _merc_lonlat(x: float, y: float) -> tuple[float, float]:
    lon = x / ORIGIN_SHIFT * 180.0
    lat = math.degrees(2.0 * math.atan(math.exp(y / 6378137.0)) - math.pi / 2.0)
    return lon, lat


_MAX_LAT = math.degrees(2.0 * math.atan(math.exp(math.pi)) - math.pi / 2.0)  # 85.0511…


def _lonlat_merc(lon: float, lat: float) -> tuple[float, float]:
    lat = min(max(lat, -_MAX_LAT), _MAX_LAT)
    y = 6378137.0 * math.log(math.tan(math.pi / 4.0 + math.radians(lat) / 2.0))
    return lon / 180.0 * ORIGIN_SHIFT, y


WEB_MERCATOR_QUAD = TileGrid(
    id="WebMercatorQuad",
    title="Google Maps Compatible for the World",
    epsg=3857,
    axes=("X", "Y"),
    left=-ORIGIN_SHIFT,
    top=ORIGIN_SHIFT,
    width0=2.0 * ORIGIN_SHIFT,
    columns0=1,
    rows0=1,
    metres_per_unit=1.0,
    detail_level=16,
    levels=25,
    uri="http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
    well_known_scale_set="http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
)

CGCS2000_QUAD = TileGrid(
    id="CGCS2000Quad",
    title="CGCS2000 geographic quad for the world (EPSG:4490, as WorldCRS84Quad)",
    epsg=4490,
    axes=("Lat", "Lon"),
    left=-180.0,
    top=90.0,
    width0=180.0,
    columns0=2,
    rows0=1,
    metres_per_unit=METRES_PER_DEGREE,
    detail_level=15,
    levels=23,
)

#: The grids tiles are served in, by id.
GRIDS: dict[str, TileGrid] = {g.id: g for g in (WEB_MERCATOR_QUAD, CGCS2000_QUAD)}
