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
