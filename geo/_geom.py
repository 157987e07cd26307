"""Small geometry helpers shared by the spatial core."""

from __future__ import annotations

import numpy as np
import shapely


def polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep only the polygons of ``geom`` (overlays can leave stray lines and points)."""
    if geom is None or geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [
        p
        for part in shapely.get_parts(geom)
        for p in shapely.get_parts(part)
        if p.geom_type == "Polygon" and not p.is_empty
    ]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def polygonal_all(geoms: np.ndarray) -> np.ndarray:
    """:func:`polygonal` over an array."""
    out = np.asarray(geoms, dtype=object).copy()
    odd = ~np.isin(shapely.get_type_id(out), (3, 6))
    for i in np.flatnonzero(odd):
        out[i] = polygonal(out[i])
    return out


#: Coordinates of derived polygons snap to this grid (metres), so overlays stay robust.
GRID_M = 0.001


def on_grid(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` with their coordinates snapped to :data:`GRID_M` and their precision
    model left floating. GEOS keeps the fixed precision model of ``set_precision``'s
    output on the geometry, and every later overlay of it then snap-rounds its result to
    that grid: twice the time for the cells' tolerant adjacency, which measures lines
    crossing a buffer, and lengths moved by up to 3 mm (issue 25)."""
    return shapely.set_precision(shapely.set_precision(geoms, GRID_M), 0, mode="pointwise")


def drop_slivers(geom: shapely.Geometry, min_hole_m2: float = 1.0, keep=None) -> shapely.Geometry:
    """Remove holes smaller than ``min_hole_m2`` left by unions of nearly-noded pieces,
    but those where another unit's ground lies: ``keep`` is a list of such geometries, or
    a function giving those near a hole (asked only when there is a small hole)."""
    parts = []
    for p in shapely.get_parts(polygonal(geom)):
        holes = []
        for ring in p.interiors:
            hole = shapely.Polygon(ring)
            near = () if keep is None or hole.area >= min_hole_m2 else keep
            if callable(near):
                near = near(hole)
            if hole.area >= min_hole_m2 or any(
                shapely.area(shapely.intersection(hole, other)) > 0 for other in near
            ):
                holes.append(ring)
        parts.append(shapely.Polygon(p.exterior, holes))
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
