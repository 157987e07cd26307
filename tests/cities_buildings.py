"""Building files as a city's 3D layer or a commercial map would give them, made from OSM files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.osm import parse_height, parse_levels, read_osm
from wangge.geo.crs import metric_crs, wgs84_to_bd09, wgs84_to_gcj02

#: Chinese 用途 values written for OSM building types (the reader maps them back).
CHINESE_USE = {
    "residential": "住宅",
    "apartments": "住宅",
    "house": "住宅",
    "dormitory": "宿舍",
    "commercial": "商业",
    "retail": "商业",
    "office": "办公",
    "hotel": "酒店",
    "industrial": "工业",
    "warehouse": "仓储",
    "school": "教育",
    "university": "教育",
    "college": "教育",
    "hospital": "医疗",
    "civic": "公共",
    "public": "公共",
    "government": "行政",
    "transportation": "交通",
    "train_station": "交通",
}
_SHIFT = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def _shift(geoms: np.ndarray, coords: str) -> np.ndarray:
    if coords == "wgs84":
        return geoms
    fn = _SHIFT[coords]
    return shapely.transform(geoms, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))


def osm_building_table(
    osm_path: str | Path,
    fields: tuple[str, ...] = ("Floor", "height"),
    *,
    coords: str = "gcj02",
    uses: bool = False,
    negative_heights: int = 0,
    empty_geometries: int = 0,
) -> gpd.GeoDataFrame:
    """The buildings of an OSM file as a building layer would hold them.

    Parameters
    ----------
    osm_path
        An OSM file.
    fields
        Which of ``"Floor"`` (from ``building:levels``) and ``"height"`` (from ``height``,
        metres) to carry; numbers where OSM has a usable tag, blank elsewhere.
    coords
        ``"gcj02"``, ``"bd09"`` or ``"wgs84"``.
    uses
        Add a ``用途`` column of Chinese use values (:data:`CHINESE_USE`; blank for
        ``building=yes`` and types not listed).
    negative_heights
        Set the height of this many buildings (every 97th) to a negative number.
    empty_geometries
        Make this many geometries (every 89th from the 6th, closer when there are many) empty
        or missing, alternately.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per OSM building in file order; the geometry in ``coords`` labelled
        EPSG:4326, as commercial maps label their shifted lon/lat.
    """
    b = read_osm(osm_path).buildings.reset_index(drop=True)
    data: dict[str, object] = {}
    if "Floor" in fields:
        data["Floor"] = b["levels_tag"].map(parse_levels).astype(float)
    if "height" in fields:
        data["height"] = b["height_tag"].map(parse_height).astype(float)
    if uses:
        data["用途"] = b["building"].map(CHINESE_USE).fillna("")
    out = gpd.GeoDataFrame(data, geometry=_shift(b.geometry.to_numpy(), coords), crs=4326)
    if negative_heights:
        rows = np.arange(negative_heights) * 97
        out.loc[rows, "height"] = -np.arange(1, negative_heights + 1) * 3.0
    if empty_geometries:
        step = min(89, (len(out) - 5) // empty_geometries)
        rows = 5 + np.arange(empty_geometries) * step
        geoms = out.geometry.to_numpy().copy()
        geoms[rows[::2]] = shapely.Polygon()
        geoms[rows[1::2]] = None
        out = out.set_geometry(gpd.GeoSeries(geoms, crs=4326))
    return out


def write_buildings(frame: gpd.GeoDataFrame, dst: str | Path, encoding: str = "utf-8") -> Path:
    """Write a building layer by ``dst``'s suffix: ``.geojson``, ``.gpkg``, ``.zip`` (a zipped
    shapefile in ``encoding``, with no .cpg when that is not UTF-8), ``.csv`` or ``.xlsx``
    (a ``wkt`` column holding the footprints)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    suffix = dst.suffix.lower()
    if suffix in (".geojson", ".gpkg"):
        frame.to_file(dst, engine="pyogrio")
    elif suffix == ".zip":
        shp_dir = dst.with_suffix("")
        shp_dir.mkdir(exist_ok=True)
        shp = shp_dir / (dst.stem + ".shp")
        frame.to_file(shp, engine="pyogrio", encoding=encoding)
        if encoding.lower().replace("-", "") != "utf8":
            for cpg in shp_dir.glob("*.cpg"):
                cpg.unlink()
        with zipfile.ZipFile(dst, "w") as zf:
            for part in sorted(shp_dir.iterdir()):
                zf.write(part, part.name)
    elif suffix in (".csv", ".xlsx"):
        geoms = frame.geometry.to_numpy()
        wkt = [None if g is None else shapely.to_wkt(g, rounding_precision=9) for g in geoms]
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name)).assign(wkt=wkt)
        if suffix == ".csv":
            table.to_csv(dst, index=False, encoding=encoding)
        else:
            table.to_excel(dst, index=False)
    else:
        raise ValueError(f"unknown building file type {dst.suffix!r}")
    return dst


def demo_buildings_gcj02(
    osm_path: str | Path,
    dst: str | Path,
    fields: tuple[str, ...] = ("Floor", "height"),
    *,
    coords: str = "gcj02",
    encoding: str = "utf-8",
    uses: bool = False,
    negative_heights: int = 0,
    empty_geometries: int = 0,
) -> Path:
    """Export an OSM file's buildings as a GCJ-02 (or BD-09) building file carrying only
    ``Floor`` and ``height``: no type, no name, no ids.

    Parameters
    ----------
    osm_path, fields, coords, uses, negative_heights, empty_geometries
        As for :func:`osm_building_table`; ``fields=()`` gives no floor or height column.
    dst
        Where to write; the suffix picks the format (:func:`write_buildings`).
    encoding
        Attribute encoding of a zipped shapefile (``"gbk"`` writes no .cpg) or a CSV.

    Returns
    -------
    pathlib.Path
        ``dst``.
    """
    frame = osm_building_table(
        osm_path,
        fields,
        coords=coords,
        uses=uses,
        negative_heights=negative_heights,
        empty_geometries=empty_geometries,
    )
    return write_buildings(frame, dst, encoding)


def demo_building_points(
    osm_path: str | Path, dst: str | Path, *, area: bool = True, coords: str = "gcj02"
) -> Path:
    """The OSM buildings as a CSV of points (``经度``/``纬度`` at each footprint's inside
    point, in ``coords``), with ``层数`` and, if ``area``, ``基底面积`` in m²."""
    b = read_osm(osm_path).buildings.reset_index(drop=True)
    c = b.geometry.union_all().centroid
    pts = b.representative_point().to_numpy()
    x, y = shapely.get_coordinates(_shift(pts, coords)).T
    table = pd.DataFrame(
        {"经度": x, "纬度": y, "层数": b["levels_tag"].map(parse_levels).astype(float)}
    )
    if area:
        table["基底面积"] = b.to_crs(metric_crs(c.x, c.y)).area.round(1).to_numpy()
    dst = Path(dst)
    table.to_csv(dst, index=False)
    return dst
