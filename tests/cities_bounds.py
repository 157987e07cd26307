"""Test-data builders: street and community boundary layers for the demo and for Beijing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

from wangge.data.osm import read_osm
from wangge.geo.crs import metric_crs, wgs84_to_bd09, wgs84_to_gcj02

#: District codes (GB/T 2260) of the demo's three districts, and Beijing's Haidian.
XUANWU, QINHUAI, GULOU, HAIDIAN = "320102", "320104", "320106", "110108"

#: Demo streets: (district, street number, street name, west lon, east lon) on each side of
#: the admin line; communities split each street in two at the middle meridian.
_DEMO_STREETS = [
    (GULOU, "001", "华侨路街道", None, None),
    (XUANWU, "001", "新街口街道", None, None),
    (QINHUAI, "001", "朝天宫街道", None, 118.7790163),
    (QINHUAI, "002", "洪武路街道", 118.7790163, None),
]
_DEMO_COMMUNITIES = {
    (GULOU, "001"): ("汉中路社区", "华侨路社区"),
    (XUANWU, "001"): ("新街口社区", "丹凤街社区"),
    (QINHUAI, "001"): ("石鼓路社区", "王府园社区"),
    (QINHUAI, "002"): ("淮海路社区", "常府街社区"),
}
#: One probe point (lon, lat) inside each demo district, to tell the admin line's sides.
_DISTRICT_PROBES = {
    GULOU: (118.765, 32.050),
    XUANWU: (118.792, 32.050),
    QINHUAI: (118.780, 32.037),
}


def admin_ways(osm_path: str | Path, level: str = "6") -> list[shapely.LineString]:
    """The ways tagged ``admin_level`` = ``level`` in an OSM XML file, as lon/lat lines."""
    root = ET.parse(osm_path).getroot()
    nodes = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    lines = []
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if tags.get("admin_level") != level:
            continue
        pts = [nodes[nd.get("ref")] for nd in way.iter("nd") if nd.get("ref") in nodes]
        if len(pts) >= 2:
            lines.append(shapely.LineString(pts))
    return lines


def _extent(osm_path: str | Path, margin_m: float = 40.0) -> tuple[float, float, float, float]:
    b = read_osm(osm_path).buildings.total_bounds
    lat = (b[1] + b[3]) / 2
    dx = margin_m / (111_320 * np.cos(np.radians(lat)))
    dy = margin_m / 110_574
    return b[0] - dx, b[1] - dy, b[2] + dx, b[3] + dy


def _split(geom: shapely.Geometry, lon: float) -> tuple[shapely.Geometry, shapely.Geometry]:
    x0, y0, x1, y1 = geom.bounds
    west = shapely.intersection(geom, box(x0 - 1, y0 - 1, lon, y1 + 1))
    east = shapely.intersection(geom, box(lon, y0 - 1, x1 + 1, y1 + 1))
    return west, east


@cache
def _demo_layout(osm_path: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    x0, y0, x1, y1 = _extent(osm_path)
    frame = box(x0, y0, x1, y1)
    lines = [shapely.intersection(w, frame) for w in admin_ways(osm_path)]
    pieces = shapely.get_parts(
        shapely.polygonize(shapely.get_parts(shapely.union_all([frame.boundary, *lines])))
    )
    districts: dict[str, list] = {d: [] for d in _DISTRICT_PROBES}
    for piece in pieces:
        # each piece goes to the district whose probe is nearest to it
        dist = {d: piece.distance(shapely.Point(p)) for d, p in _DISTRICT_PROBES.items()}
        districts[min(dist, key=dist.get)].append(piece)
    district_geom = {d: shapely.union_all(ps) for d, ps in districts.items()}
    streets, communities = [], []
    for district, number, name, west, east in _DEMO_STREETS:
        geom = district_geom[district]
        if west is not None:
            geom = _split(geom, west)[1]
        if east is not None:
            geom = _split(geom, east)[0]
        code = district + number
        streets.append({"代码": code, "名称": name, "geometry": geom})
        bx0, _, bx1, _ = geom.bounds
        halves = _split(geom, (bx0 + bx1) / 2)
        for k, (part, cname) in enumerate(
            zip(halves, _DEMO_COMMUNITIES[(district, number)], strict=True)
        ):
            communities.append(
                {
                    "代码": f"{code}{k + 1:03d}",
                    "名称": cname,
                    "街道代码": code,
                    "街道名称": name,
                    "geometry": part,
                }
            )
    return (
        gpd.GeoDataFrame(streets, geometry="geometry", crs=4326),
        gpd.GeoDataFrame(communities, geometry="geometry", crs=4326),
    )


@cache
def _beijing_layout(osm_path: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Haidian around CAU: two streets (west, east halves), three communities each (by
    latitude thirds): a regular split, as the extract holds no admin ways."""
    x0, y0, x1, y1 = _extent(osm_path)
    xm = (x0 + x1) / 2
    ys = np.linspace(y1, y0, 4)  # north to south
    street_names = {"001": "学院路街道", "002": "东升街道"}
    community_names = {
        "001": ("二里庄社区", "展春园社区", "林大社区"),
        "002": ("农大东校区社区", "清华东路社区", "双清路社区"),
    }
    streets, communities = [], []
    for number, (sx0, sx1) in (("001", (x0, xm)), ("002", (xm, x1))):
        code = HAIDIAN + number
        streets.append(
            {"代码": code, "名称": street_names[number], "geometry": box(sx0, y0, sx1, y1)}
        )
        for k in range(3):
            communities.append(
                {
                    "代码": f"{code}{k + 1:03d}",
                    "名称": community_names[number][k],
                    "街道代码": code,
                    "街道名称": street_names[number],
                    "geometry": box(sx0, ys[k + 1], sx1, ys[k]),
                }
            )
    return (
        gpd.GeoDataFrame(streets, geometry="geometry", crs=4326),
        gpd.GeoDataFrame(communities, geometry="geometry", crs=4326),
    )


# ---------------------------------------------------------------------------------------
# defects


def _metres(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, object]:
    c = frame.union_all().centroid
    crs = metric_crs(c.x, c.y)
    return frame.to_crs(crs), crs


def _shared_point(a: shapely.Geometry, b: shapely.Geometry) -> tuple[shapely.Point, bool]:
    """Middle of the edge two neighbours share, and whether that edge runs north-south."""
    edge = shapely.intersection(a.buffer(0.01), b.boundary)
    edge = max(shapely.get_parts(edge), key=lambda g: g.length)
    x0, y0, x1, y1 = edge.bounds
    return edge.interpolate(0.5, normalized=True), (y1 - y0) > (x1 - x0)


def _neighbours(frame: gpd.GeoDataFrame) -> tuple[int, int]:
    """The first pair of units (in row order) sharing an edge longer than 200 m."""
    geoms = frame.geometry.to_numpy()
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            if shapely.intersection(geoms[i].buffer(0.01), geoms[j].boundary).length > 200:
                return i, j
    raise ValueError("no two units share a long edge")


def add_defects(
    frame: gpd.GeoDataFrame,
    gap_m: float = 0.0,
    overlap_m: float = 0.0,
    sliver_m: float = 0.0,
    self_intersection: bool = False,
    duplicate_codes: bool = False,
) -> gpd.GeoDataFrame:
    """Return ``frame`` (EPSG:4326) with defects at the edge of the first two neighbours.

    ``gap_m``: a square hole of that side cut from both at their shared edge's middle;
    ``overlap_m``: the first unit pushed that far (over 120 m of edge) into the second;
    ``sliver_m``: a strip that wide and 150 m long cut from the second along the edge
    (an enclosed thin gap); ``self_intersection``: a small bow-tie loop on the first
    unit's longest outer edge; ``duplicate_codes``: the second unit takes the first's code.
    """
    m, crs = _metres(frame)
    i, j = _neighbours(m)
    geoms = m.geometry.to_numpy().copy()
    mid, vertical = _shared_point(geoms[i], geoms[j])
    # the side of the edge the second unit is on, before any defect changes it
    probe = shapely.Point(mid.x + 5, mid.y) if vertical else shapely.Point(mid.x, mid.y + 5)
    sign = 1 if geoms[j].contains(probe) else -1
    if gap_m:
        hole = mid.buffer(gap_m / 2, cap_style="square")
        geoms[i] = geoms[i].difference(hole)
        geoms[j] = geoms[j].difference(hole)
    if overlap_m:
        if vertical:
            push = box(mid.x - 1, mid.y - 60, mid.x + sign * overlap_m, mid.y + 60)
        else:
            push = box(mid.x - 60, mid.y - 1, mid.x + 60, mid.y + sign * overlap_m)
        geoms[i] = geoms[i].union(shapely.normalize(push))
    if sliver_m:
        if vertical:
            strip = box(mid.x, mid.y - 75, mid.x + sign * sliver_m, mid.y + 75)
        else:
            strip = box(mid.x - 75, mid.y, mid.x + 75, mid.y + sign * sliver_m)
        geoms[j] = geoms[j].difference(shapely.normalize(strip))
    if self_intersection:
        geoms[i] = _bow_tie(geoms[i], geoms[j])
    out = m.set_geometry(gpd.GeoSeries(geoms, crs=crs)).to_crs(4326)
    if duplicate_codes:
        out.loc[out.index[j], "代码"] = out["代码"].iloc[i]
    return out


def _bow_tie(geom: shapely.Geometry, avoid: shapely.Geometry) -> shapely.Polygon:
    """``geom``'s largest polygon with a 6 m crossed loop on its longest edge not shared
    with ``avoid``: an invalid (self-intersecting) ring."""
    poly = max(shapely.get_parts(geom), key=lambda p: p.area)
    ring = list(poly.exterior.coords)[:-1]
    best, at = -1.0, 0
    for k in range(len(ring)):
        seg = shapely.LineString([ring[k], ring[(k + 1) % len(ring)]])
        if seg.length > best and seg.distance(avoid) > 1:
            best, at = seg.length, k
    p, q = np.array(ring[at]), np.array(ring[(at + 1) % len(ring)])
    t = (q - p) / np.linalg.norm(q - p)
    n = np.array([-t[1], t[0]]) * 6
    mid = (p + q) / 2
    m1, m2 = mid - 3 * t, mid + 3 * t
    loop = [tuple(m1), tuple(m2 + n), tuple(m2), tuple(m1 + n)]
    coords = ring[: at + 1] + loop + ring[at + 1 :]
    return shapely.Polygon(coords, [list(h.coords) for h in poly.interiors])


# ---------------------------------------------------------------------------------------
# writing


def _shift(frame: gpd.GeoDataFrame, coords: str) -> gpd.GeoDataFrame:
    if coords == "wgs84":
        return frame
    fwd = wgs84_to_gcj02 if coords == "gcj02" else wgs84_to_bd09

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(fwd(xy[:, 0], xy[:, 1]))

    return frame.set_geometry(shapely.transform(frame.geometry.to_numpy(), move))


def write_layer(
    frame: gpd.GeoDataFrame,
    dst: str | Path,
    coords: str = "wgs84",
    swap: bool = False,
    crs: str | int | None = None,
    declare: str | int | None = None,
    encoding: str = "utf-8",
    cpg: bool = True,
) -> Path:
    """Write a boundary layer (EPSG:4326 in) as the suffix of ``dst`` says.

    ``.geojson``, ``.gpkg``, ``.zip`` (a zipped shapefile; ``encoding`` for its DBF and
    ``cpg=False`` to leave the .cpg out), ``.csv`` (WKT in a ``wkt`` column, in
    ``encoding``, no CRS). ``coords``: shift to ``gcj02``/``bd09`` first; ``swap``: write
    lat/lon; ``crs``: transform to it; ``declare``: claim this CRS whatever the
    coordinates are (a wrong CRS).
    """
    dst = Path(dst)
    out = _shift(frame, coords)
    if crs is not None:
        out = out.to_crs(crs)
    if swap:
        out = out.set_geometry(shapely.transform(out.geometry.to_numpy(), lambda xy: xy[:, ::-1]))
    if declare is not None:
        out = out.set_crs(declare, allow_override=True)
    suffix = dst.suffix.lower()
    if suffix == ".csv":
        table = pd.DataFrame(out.drop(columns="geometry"))
        table["wkt"] = shapely.to_wkt(out.geometry.to_numpy(), rounding_precision=-1)
        dst.write_bytes(table.to_csv(index=False).encode(encoding))
    elif suffix == ".zip":
        folder = dst.with_suffix("")
        folder.mkdir(parents=True, exist_ok=True)
        shp = folder / f"{dst.stem}.shp"
        # DBF field names hold 10 bytes: shorten what UTF-8 would cut mid-character
        short = {"街道代码": "street_cod", "街道名称": "street_nam"}
        if encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
            out = out.rename(columns=short)
        out.to_file(shp, engine="pyogrio", encoding=encoding)
        with zipfile.ZipFile(dst, "w") as z:
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() == ".cpg" and not cpg:
                    continue
                z.write(f, f.name)
    elif suffix == ".gpkg":
        out.to_file(dst, engine="pyogrio", driver="GPKG")
    else:
        out.to_file(dst, engine="pyogrio", driver="GeoJSON")
    return dst


def _with_counts(frame, households, population) -> gpd.GeoDataFrame:
    frame = frame.copy()
    if households is not None:
        frame["户数"] = list(households)
    if population is not None:
        frame["人口"] = list(population)
    return frame


def demo_communities(
    osm_path: str | Path,
    dst: str | Path,
    households=None,
    population=None,
    defects: dict | None = None,
    **write,
) -> Path:
    """Write the demo's eight communities (two per street, 12-digit codes, Chinese names).

    Districts come from the demo's real ``admin_level=6`` ways (Gulou north-west, Xuanwu
    north-east, Qinhuai south of Hanzhong/Zhongshan East Road) inside the buildings'
    extent plus 40 m; Qinhuai is split into two streets at Xinjiekou's meridian, and each
    street into two communities at its middle meridian. ``households``/``population``
    add 户数/人口 columns (one number per community, in code order); ``defects`` are
    :func:`add_defects` keywords; the rest goes to :func:`write_layer`.
    """
    frame = _demo_layout(str(osm_path))[1]
    frame = _with_counts(frame, households, population)
    if defects:
        frame = add_defects(frame, **defects)
    return write_layer(frame, dst, **write)


def demo_streets(
    osm_path: str | Path, dst: str | Path, defects: dict | None = None, **write
) -> Path:
    """Write the demo's four streets (9-digit codes), as :func:`demo_communities`."""
    frame = _demo_layout(str(osm_path))[0]
    if defects:
        frame = add_defects(frame, **defects)
    return write_layer(frame, dst, **write)


def beijing_communities(
    osm_path: str | Path, dst: str | Path, defects: dict | None = None, **write
) -> Path:
    """Write six Haidian (110108) communities over the Beijing extract's buildings: two
    streets split west/east, three communities each by latitude."""
    frame = _beijing_layout(str(osm_path))[1]
    if defects:
        frame = add_defects(frame, **defects)
    return write_layer(frame, dst, **write)


def beijing_streets(osm_path: str | Path, dst: str | Path, **write) -> Path:
    """Write the two Haidian streets of :func:`beijing_communities`."""
    return write_layer(_beijing_layout(str(osm_path))[0], dst, **write)


def demo_truth(osm_path: str | Path, level: str = "community") -> gpd.GeoDataFrame:
    """The demo layer as built (EPSG:4326), to compare read files against."""
    streets, communities = _demo_layout(str(osm_path))
    return (communities if level == "community" else streets).copy()
