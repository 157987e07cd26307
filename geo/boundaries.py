"""Settle given street and community polygons: overlaps, slivers, gaps, and nesting."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from wangge.errors import InputError
from wangge.geo._geom import polygonal
from wangge.geo.crs import metric_crs

#: Overlay precision (metres): cleaning snaps coordinates to a 0.1 mm grid so overlays are exact.
GRID_M = 0.0001
#: Overlap and gap pieces below this area (m²), or thinner on average than
#: :data:`NOISE_WIDTH_M`, are coordinate noise: settled like the rest, but reported as one
#: summary finding per kind instead of one row each.
NOISE_M2 = 0.01
NOISE_WIDTH_M = 0.01
#: Pieces below this area (m², a square millimetre) are no land at all: overlay residue,
#: ignored.
NO_LAND_M2 = 1e-6
#: Distance (m) within which two boundaries count as shared when measuring shared edges.
EDGE_TOL_M = 0.01

#: Columns of a findings table: what was noticed in a given file and what became of it.
FINDING_COLUMNS = ["kind", "level", "code", "name", "area_m2", "x", "y", "detail"]


def empty_findings() -> pd.DataFrame:
    """A findings table with no rows (and the right columns)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in FINDING_COLUMNS})


def findings_table(rows: list[dict]) -> pd.DataFrame:
    """The findings ``rows`` as a table with :data:`FINDING_COLUMNS`."""
    if not rows:
        return empty_findings()
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


# ---------------------------------------------------------------------------------------
# cleaning


def _shared_length(a: shapely.Geometry, b: shapely.Geometry) -> float:
    """Length of ``a``'s boundary lying within :data:`EDGE_TOL_M` of ``b``."""
    if a.is_empty or b.is_empty:
        return 0.0
    return float(shapely.intersection(a.boundary, b.buffer(EDGE_TOL_M, quad_segs=2)).length)


def _is_noise(g: shapely.Geometry) -> bool:
    return g.area < NOISE_M2 or (g.length > 0 and 2 * g.area / g.length < NOISE_WIDTH_M)


def _is_sliver(g: shapely.Geometry, sliver_m2: float, sliver_width_m: float) -> bool:
    area = g.area
    return area < sliver_m2 or (g.length > 0 and 2 * area / g.length < sliver_width_m)


class _Units:
    """Mutable working set of unit geometries with their names, ranks and findings."""

    def __init__(self, units: gpd.GeoDataFrame, level: str):
        self.level = level
        self.crs = units.crs
        n = len(units)
        self.codes = list(units["code"]) if "code" in units else [None] * n
        self.codes = [None if c is None or pd.isna(c) else str(c) for c in self.codes]
        self.names = list(units["name"]) if "name" in units else [None] * n
        self.names = [None if v is None or pd.isna(v) else str(v) for v in self.names]
        geoms = shapely.set_precision(units.geometry.to_numpy(), GRID_M)
        self.geoms = np.array([polygonal(g) for g in geoms], dtype=object)
        order = sorted(range(n), key=lambda i: (self.codes[i] is None, self.codes[i] or "", i))
        self.rank = np.empty(n, dtype=int)
        self.rank[order] = np.arange(n)
        self.to_wgs = Transformer.from_crs(self.crs, 4326, always_xy=True)
        self.rows: list[dict] = []
        self.noise: dict[str, list[float]] = {}

    def tag(self, i: int) -> str:
        bits = [v for v in (self.codes[i], self.names[i]) if v]
        return " ".join(bits) if bits else f"unit #{i + 1}"

    def where(self, g: shapely.Geometry) -> tuple[float, float]:
        p = g.representative_point()
        x, y = self.to_wgs.transform(p.x, p.y)
        return float(x), float(y)

    def add(self, kind: str, i: int | None, g: shapely.Geometry, detail: str) -> None:
        x, y = self.where(g)
        self.rows.append(
            {
                "kind": kind,
                "level": self.level,
                "code": None if i is None else self.codes[i],
                "name": None if i is None else self.names[i],
                "area_m2": round(g.area, 3),
                "x": x,
                "y": y,
                "detail": detail,
            }
        )

    def best(self, piece: shapely.Geometry, candidates, against) -> tuple[int, dict]:
        """The candidate whose geometry (``against(k)``) shares the longest edge with
        ``piece``; ties go to the lower code."""
        lengths = {k: _shared_length(piece, against(k)) for k in candidates}
        win = min(candidates, key=lambda k: (-round(lengths[k], 3), self.rank[k]))
        return win, lengths


def _settle_overlaps(
    w: _Units, sliver_m2: float, sliver_width_m: float, min_m2: float = NO_LAND_M2
) -> int:
    """One pass of rule 2 over every intersecting pair; returns the pieces settled."""
    geoms, level = w.geoms, w.level
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = sorted(
        {(a, b) for a, b in zip(left, right, strict=True) if a < b},
        key=lambda p: (min(w.rank[p[0]], w.rank[p[1]]), max(w.rank[p[0]], w.rank[p[1]])),
    )
    settled = 0
    for i, j in pairs:
        inter = polygonal(shapely.intersection(geoms[i], geoms[j], grid_size=GRID_M))
        if inter is None or inter.is_empty:
            continue
        for piece in shapely.get_parts(inter):
            if piece.area < min_m2:
                continue
            settled += 1
            rest = {k: shapely.difference(geoms[k], piece, grid_size=GRID_M) for k in (i, j)}
            win, lengths = w.best(piece, [i, j], lambda k, rest=rest: rest[k])
            lose = j if win == i else i
            geoms[lose] = polygonal(shapely.difference(geoms[lose], piece, grid_size=GRID_M))
            if geoms[lose].is_empty or geoms[lose].area < NOISE_M2:
                raise InputError(
                    f"{level} {w.tag(lose)} lies entirely inside {w.tag(win)}; "
                    "is the same unit in the file twice?"
                )
            if _is_noise(piece):
                w.noise.setdefault("overlap_noise", []).append(piece.area)
                continue
            sliver = _is_sliver(piece, sliver_m2, sliver_width_m)
            w.add(
                "overlap_sliver" if sliver else "overlap",
                lose,
                piece,
                f"{piece.area:.1f} m² claimed by both {w.tag(i)} and {w.tag(j)} given to "
                f"{w.tag(win)} (shared edge {lengths[win]:.1f} m vs {lengths[lose]:.1f} m"
                f"{', tie: lower code' if abs(lengths[win] - lengths[lose]) < 1e-3 else ''})"
                f" and cut from {w.tag(lose)}",
            )
    return settled


def clean_units(
    units: gpd.GeoDataFrame,
    level: str,
    sliver_m2: float = 50.0,
    sliver_width_m: float = 2.0,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    """Settle overlaps, snap slivers and small gaps, and set larger gaps apart.

    Rules, applied in this order; every change is a finding row:

    1. Coordinates are snapped to a 0.1 mm grid (:data:`GRID_M`) so that overlays are exact.
    2. **Overlaps.** Each connected piece shared by two units is given to ONE of them: the
       unit whose remaining part (the unit minus the piece) shares the longer boundary
       with the piece, i.e. the unit the piece is most embedded in; ties go to the lower
       code. It is cut from the other. Kind ``overlap``, or ``overlap_sliver`` when the
       piece is a sliver (below ``sliver_m2`` or thinner than ``sliver_width_m``, width
       being 2·area/perimeter); the rule is the same. A unit left with no area raises.
    3. **Gaps.** Holes between units inside the outer hull of their union (the union of
       the exteriors of the union's polygons, minus the union) are measured. A sliver gap
       is snapped: merged into the neighbour sharing the longest edge with it (ties: lower
       code), kind ``gap_snapped``. A larger gap stays unassigned: it is returned in the
       third output and reported as ``gap_unassigned`` with its area, location and
       neighbours.
    4. **Sliver parts.** A part of a multi-part unit that is a sliver and not the unit's
       largest part moves to the touching neighbour sharing the longest edge with it,
       kind ``sliver_part``.

    Overlap and gap pieces under :data:`NOISE_M2` (0.01 m²) or thinner than
    :data:`NOISE_WIDTH_M` (1 cm) are coordinate noise: they follow the same rules but are
    summed into one ``overlap_noise``/``gap_noise`` row each. Pieces under a square
    millimetre (:data:`NO_LAND_M2`) are overlay residue, not land, and are ignored.
    Afterwards no two units overlap (by more than 0.01 m²) and their union is the input
    union plus the snapped gaps.

    Parameters
    ----------
    units
        Units in a metric CRS, with ``code`` and ``name`` columns (either may be None).
    level
        ``"street"`` or ``"community"``, for the findings.
    sliver_m2, sliver_width_m
        Sliver thresholds: area below, or mean width (2·area/perimeter) below.

    Returns
    -------
    (cleaned, findings, unassigned)
        ``cleaned``: ``units`` with settled geometries (same rows, same columns);
        ``findings``: :data:`FINDING_COLUMNS` (``x``/``y`` lon/lat, area in m²);
        ``unassigned``: GeoDataFrame in the units' CRS with ``area_m2``, ``x``, ``y``,
        ``neighbours`` (codes or names, comma-separated) and ``geometry``, one row per gap
        left unassigned.
    """
    if units.crs is None or not units.crs.is_projected:
        raise ValueError("clean_units needs units in a metric (projected) CRS")
    units = units.reset_index(drop=True)
    w = _Units(units, level)
    geoms = w.geoms
    n = len(geoms)

    # 2. overlaps
    _settle_overlaps(w, sliver_m2, sliver_width_m)

    # 3. gaps
    union = shapely.union_all(geoms, grid_size=GRID_M)
    filled = shapely.union_all(
        [shapely.Polygon(p.exterior) for p in shapely.get_parts(polygonal(union))],
        grid_size=GRID_M,
    )
    gaps = polygonal(shapely.difference(filled, union, grid_size=GRID_M))
    tree = shapely.STRtree(geoms)
    unassigned = []
    for gap in shapely.get_parts(gaps) if gaps is not None else []:
        if gap.area < NO_LAND_M2:
            continue
        near = [int(k) for k in tree.query(gap.buffer(EDGE_TOL_M), predicate="intersects")]
        if not near:  # cannot happen for a hole, but never lose one silently
            near = list(range(n))
        if _is_noise(gap) or _is_sliver(gap, sliver_m2, sliver_width_m):
            k, lengths = w.best(gap, near, lambda k: geoms[k])
            geoms[k] = polygonal(shapely.union(geoms[k], gap, grid_size=GRID_M))
            if _is_noise(gap):
                w.noise.setdefault("gap_noise", []).append(gap.area)
                continue
            w.add(
                "gap_snapped",
                k,
                gap,
                f"gap of {gap.area:.1f} m², {2 * gap.area / gap.length:.2f} m wide on average, "
                f"between {', '.join(w.tag(m) for m in near)} merged into {w.tag(k)} "
                f"(longest shared edge, {lengths[k]:.1f} m)",
            )
        else:
            x, y = w.where(gap)
            neighbours = ", ".join(w.tag(m) for m in sorted(near, key=lambda m: w.rank[m]))
            unassigned.append(
                {"area_m2": gap.area, "x": x, "y": y, "neighbours": neighbours, "geometry": gap}
            )
            w.add(
                "gap_unassigned",
                None,
                gap,
                f"land of {gap.area:.1f} m² between {neighbours} belongs to no {level}; "
                "kept as unassigned land",
            )

    # 4. sliver parts
    for i in sorted(range(n), key=lambda i: w.rank[i]):
        parts = list(shapely.get_parts(geoms[i]))
        if len(parts) < 2:
            continue
        parts.sort(key=lambda p: -p.area)
        for part in parts[1:]:
            if not _is_sliver(part, sliver_m2, sliver_width_m):
                continue
            near = [
                int(k)
                for k in tree.query(part.buffer(EDGE_TOL_M), predicate="intersects")
                if k != i
            ]
            near = [k for k in near if _shared_length(part, geoms[k]) > 0]
            if not near:
                continue
            k, lengths = w.best(part, near, lambda k: geoms[k])
            geoms[i] = polygonal(shapely.difference(geoms[i], part, grid_size=GRID_M))
            geoms[k] = polygonal(shapely.union(geoms[k], part, grid_size=GRID_M))
            w.add(
                "sliver_part",
                i,
                part,
                f"detached sliver of {w.tag(i)} ({part.area:.1f} m²) moved to {w.tag(k)} "
                f"(shared edge {lengths[k]:.1f} m)",
            )

    # rounding to the grid in steps 3 and 4 can leave sub-millimetre overlaps: settle them
    for _ in range(3):
        if not _settle_overlaps(w, sliver_m2, sliver_width_m, min_m2=NOISE_M2 / 100):
            break

    for kind, areas in w.noise.items():
        w.rows.append(
            {
                "kind": kind,
                "level": level,
                "code": None,
                "name": None,
                "area_m2": float(sum(areas)),
                "x": np.nan,
                "y": np.nan,
                "detail": f"{len(areas)} piece(s) under {NOISE_M2} m² or thinner than "
                f"{NOISE_WIDTH_M} m (coordinate noise) settled by the same rules",
            }
        )
    cleaned = units.copy()
    cleaned = cleaned.set_geometry(gpd.GeoSeries(list(geoms), crs=units.crs))
    gaps_out = gpd.GeoDataFrame(
        pd.DataFrame(unassigned, columns=["area_m2", "x", "y", "neighbours", "geometry"]),
        geometry="geometry",
        crs=units.crs,
    )
    return cleaned, findings_table(w.rows), gaps_out


# ---------------------------------------------------------------------------------------
# hierarchy


def streets_from_communities(communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Derive streets from communities' 12-digit codes.

    Rules: a community's street is the first 9 digits of its 12-digit code, else its own
    ``street_code`` column; communities with neither raise. Streets are the dissolved
    union of their communities (same CRS), named from a ``street_name`` column where the
    communities carry one (the most frequent), else None. ``households`` and
    ``population`` are the sums over the street's communities when all carry them, else
    NaN. Rows are ordered by code.

    Returns
    -------
    geopandas.GeoDataFrame
        ``code`` (9 digits), ``name``, ``households``, ``population``, ``street_code``
        (None), ``street_name`` (None), ``geometry``.

    Raises
    ------
    InputError
        Naming the communities without a usable code.
    """
    n = len(communities)
    codes = list(communities["code"]) if "code" in communities else [None] * n
    own = list(communities["street_code"]) if "street_code" in communities else [None] * n
    streets = []
    for c, s in zip(codes, own, strict=True):
        if isinstance(c, str) and len(c) == 12 and c.isdigit():
            streets.append(c[:9])
        elif isinstance(s, str) and len(s) == 9 and s.isdigit():
            streets.append(s)
        else:
            streets.append(None)
    missing = [i for i, s in enumerate(streets) if s is None]
    if missing:
        names = list(communities["name"]) if "name" in communities else [None] * n
        listed = ", ".join(str(names[i] or codes[i] or f"community #{i + 1}") for i in missing[:10])
        raise InputError(
            f"{len(missing)} communities carry no 12-digit code (6 county + 3 township + 3 "
            f"community) and no street code, so their streets cannot be derived: {listed}. "
            "Give the streets file (--streets) or add the codes",
            where=", ".join(f"community #{i + 1}" for i in missing[:10]),
        )
    frame = communities.assign(_street=streets)
    rows = []
    for code, group in frame.groupby("_street", sort=True):
        names = group["street_name"].dropna() if "street_name" in group else pd.Series([])
        hh = group["households"] if "households" in group else pd.Series([np.nan])
        pop = group["population"] if "population" in group else pd.Series([np.nan])
        rows.append(
            {
                "code": code,
                "name": names.mode().iloc[0] if len(names) else None,
                "households": float(hh.sum()) if hh.notna().all() else np.nan,
                "population": float(pop.sum()) if pop.notna().all() else np.nan,
                "street_code": None,
                "street_name": None,
                "geometry": polygonal(shapely.union_all(group.geometry.to_numpy())),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=communities.crs)


def nest_communities(
    streets: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    tolerance: float = 0.01,
    min_m2: float = 50.0,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Assign each community to the street holding most of its area.

    Rules: areas are measured in the frames' CRS if metric, else in the local metric CRS.
    A community goes to the street holding the largest part of its area (ties: lower
    street code). It is reported as ``straddles`` when the part outside that street is
    above ``tolerance`` of its area and above ``min_m2``; as ``outside_streets`` (and
    left with ``street_code`` None) when no street holds any of it; as ``code_mismatch``
    when the first 9 digits of its 12-digit code differ from its street's code.

    Returns
    -------
    (communities, findings)
        A copy of ``communities`` with ``street_code`` set to the assigned street's code
        and ``street_share`` (fraction of the community's area in it); the findings
        (:data:`FINDING_COLUMNS`).
    """
    if streets.crs != communities.crs:
        streets = streets.to_crs(communities.crs)
    crs = communities.crs
    if crs is not None and not crs.is_projected:
        c = shapely.union_all(shapely.envelope(communities.geometry.to_numpy())).centroid
        crs = metric_crs(c.x, c.y)
    s_geoms = streets.to_crs(crs).geometry.to_numpy()
    c_frame = communities.reset_index(drop=True)
    c_geoms = c_frame.to_crs(crs).geometry.to_numpy()
    s_codes = [None if pd.isna(v) else str(v) for v in streets["code"]]
    to_wgs = Transformer.from_crs(crs, 4326, always_xy=True)
    tree = shapely.STRtree(s_geoms)
    assigned: list[str | None] = []
    shares: list[float] = []
    rows: list[dict] = []

    def add(kind, i, geom, detail):
        p = geom.representative_point()
        x, y = to_wgs.transform(p.x, p.y)
        rows.append(
            {
                "kind": kind,
                "level": "community",
                "code": c_frame["code"].iloc[i] if "code" in c_frame else None,
                "name": c_frame["name"].iloc[i] if "name" in c_frame else None,
                "area_m2": round(geom.area, 3),
                "x": x,
                "y": y,
                "detail": detail,
            }
        )

    for i, g in enumerate(c_geoms):
        hits = tree.query(g, predicate="intersects")
        areas = {int(k): shapely.intersection(g, s_geoms[k]).area for k in hits}
        areas = {k: a for k, a in areas.items() if a > 0}
        if not areas:
            assigned.append(None)
            shares.append(0.0)
            add("outside_streets", i, g, "lies in no given street")
            continue
        k = min(areas, key=lambda k: (-areas[k], s_codes[k] or "~"))
        assigned.append(s_codes[k])
        shares.append(areas[k] / g.area)
        outside = g.area - areas[k]
        if outside > tolerance * g.area and outside > min_m2:
            others = ", ".join(
                f"{s_codes[m] or '#' + str(m + 1)} {areas[m]:.0f} m²"
                for m in sorted(areas, key=lambda m: -areas[m])
                if m != k
            )
            add(
                "straddles",
                i,
                g,
                f"{outside:.0f} m² ({outside / g.area:.1%}) lie outside its street "
                f"{s_codes[k]}: {others or 'in no street'}",
            )
        code = c_frame["code"].iloc[i] if "code" in c_frame else None
        if isinstance(code, str) and len(code) == 12 and s_codes[k] and code[:9] != s_codes[k]:
            add(
                "code_mismatch",
                i,
                g,
                f"code {code} starts with {code[:9]} but the community lies in street {s_codes[k]}",
            )
    out = c_frame.copy()
    out["street_code"] = pd.Series(assigned, dtype=object)
    out["street_share"] = shares
    return out, findings_table(rows)


# ---------------------------------------------------------------------------------------
# units outside the data

#: A given unit holding no building is kept only when at least this share of its area lies
#: where the data reaches (an empty park street inside the extract is land of the plan; a
#: street of a whole-city file beyond the extract is not).
IN_DATA_SHARE = 0.5


def in_data(
    units: np.ndarray, points: np.ndarray, extent: shapely.Geometry | None
) -> tuple[np.ndarray, np.ndarray]:
    """Which given units the data reaches.

    Rule: a unit is in the data when it holds a building (a representative point), or
    when at least :data:`IN_DATA_SHARE` of its area lies inside ``extent`` (the OSM file's
    bounds and the buildings' hull); else it is outside, to be left out with a finding.

    Parameters
    ----------
    units
        Unit polygons (metric).
    points
        A point per building (same CRS).
    extent
        Where the data reaches (same CRS); None: the buildings alone decide.

    Returns
    -------
    (inside, share)
        Boolean per unit, and the share of each unit's area in ``extent``.
    """
    held = np.zeros(len(units), dtype=int)
    if len(points) and len(units):
        tree = shapely.STRtree(units)
        _, which = tree.query(points, predicate="within")
        held = np.bincount(which, minlength=len(units))
    share = np.zeros(len(units))
    if extent is not None and not extent.is_empty and len(units):
        share = shapely.area(shapely.intersection(units, extent)) / np.maximum(
            shapely.area(units), 1e-9
        )
    return (held > 0) | (share >= IN_DATA_SHARE), share
