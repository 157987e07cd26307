"""Read user files (boundaries, buildings, household counts) and join them to OSM buildings."""

from __future__ import annotations

import codecs
import io
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.untrusted import check_file as check_untrusted
from wangge.errors import InputError
from wangge.geo.crs import gcj02_to_wgs84

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".shp")
TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xls")
#: Accepted column names, lower-cased, for each field a household file may carry.
COLUMN_NAMES = {
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "households": ("households", "hh", "户数", "households_count"),
    "population": ("population", "pop", "人口", "人数"),
    "building_id": ("building_id", "osm_id", "id", "楼栋编号", "建筑编号"),
}
#: The most households one row may give a building (the API's cap on a unit's count too).
MAX_HOUSEHOLDS = 1_000_000
#: Points further than this from any building are reported as unmatched.
MAX_SNAP_M = 20.0


def _zip_names(path: Path) -> list[str]:
    check_untrusted(path)  # members, sizes and ratios, before anything is expanded
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"is not a readable zip archive (truncated?): {exc}", path) from exc


def zipped_shapefile(path: Path) -> str | None:
    """The one shapefile in the zip ``path``, wherever it sits in the archive (a folder
    inside, as Windows zips a folder; macOS's ``__MACOSX`` copies ignored); None when
    it holds none.

    Raises
    ------
    InputError
        The zip cannot be read, or holds several shapefiles (named: zip one layer a file).
    """
    shps = [
        n
        for n in _zip_names(path)
        if n.lower().endswith(".shp")
        and not n.startswith("__MACOSX/")
        and not n.rsplit("/", 1)[-1].startswith("._")
    ]
    if len(shps) > 1:
        raise InputError(
            f"holds {len(shps)} shapefiles ({', '.join(shps[:5])}); zip one layer per file",
            path,
        )
    return shps[0] if shps else None


def vector_source(path: Path) -> str | Path:
    """What GDAL should open for ``path``: a zip's one shapefile in a folder of the
    archive by its /vsizip/ path (GDAL looks at the top only), else the path itself."""
    check_untrusted(path)  # before GDAL opens it
    if path.suffix.lower() != ".zip":
        return path
    shp = zipped_shapefile(path)
    return f"/vsizip/{path}/{shp}" if shp and "/" in shp else path


def shapefile_dbf(path: Path) -> tuple[bytes | None, bool]:
    """The .dbf bytes of a shapefile (``.shp``, or a zip holding one) and whether a .cpg
    declares its encoding beside it."""
    if path.suffix.lower() == ".shp":
        beside = list(path.parent.glob(path.stem + ".*"))
        dbf = next((p for p in beside if p.suffix.lower() == ".dbf"), None)
        cpg = any(p.suffix.lower() == ".cpg" for p in beside)
        return (dbf.read_bytes() if dbf else None), cpg
    shp = zipped_shapefile(path)
    stem = shp[: -len(".shp")].lower() if shp else None
    names = [n for n in _zip_names(path) if not n.startswith("__MACOSX/")]
    beside = [n for n in names if stem is None or n.lower().rsplit(".", 1)[0] == stem]
    dbf = next((n for n in beside if n.lower().endswith(".dbf")), None)
    cpg = any(n.lower().endswith(".cpg") for n in beside)
    if dbf is None:
        return None, cpg
    with zipfile.ZipFile(path) as z:
        return z.read(dbf), cpg


def geometry_from_text(text: object) -> shapely.Geometry | None:
    """A geometry from a table cell as GIS tools export them: WKT, PostGIS's EWKT
    (``SRID=4490;POLYGON…``, the SRID left to the file's CRS options) or hex (E)WKB;
    None when the cell is none of them."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    value = str(text).strip()
    if value.upper().startswith("SRID=") and ";" in value:
        value = value.split(";", 1)[1]
    try:
        if value and len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value):
            return shapely.from_wkb(bytes.fromhex(value))
        return shapely.from_wkt(value)
    except (shapely.errors.GEOSException, ValueError):
        return None


@dataclass
class ImportedCounts:
    """Household counts by building id, with what happened on the way."""

    counts: pd.DataFrame
    notes: Counter = field(default_factory=Counter)


def _check_file(path: Path, suffixes: tuple[str, ...]) -> None:
    if not path.exists():
        raise InputError("file not found", path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)
    if not path.name.lower().endswith(suffixes):
        raise InputError(f"unsupported file type; expected one of {', '.join(suffixes)}", path)
    check_untrusted(path)


def read_vector(path: str | Path) -> tuple[gpd.GeoDataFrame, int]:
    """Read a GeoJSON, GeoPackage or (zipped) Shapefile, repairing what can be repaired.

    Returns
    -------
    (frame, repaired)
        The features, and how many invalid geometries were repaired with ``make_valid``.

    Raises
    ------
    InputError
        Naming the file and feature for unreadable files and empty or missing geometry.
    """
    path = Path(path)
    _check_file(path, VECTOR_SUFFIXES)
    try:
        frame = gpd.read_file(vector_source(path), engine="pyogrio")
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(f"cannot be read as vector data: {exc}", path) from exc
    if frame.empty:
        raise InputError("holds no features", path)
    if frame.crs is None:
        frame = frame.set_crs(4326)
    geoms = frame.geometry.to_numpy()
    empty = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if len(empty):
        raise InputError(
            f"{len(empty)} feature(s) have empty or missing geometry",
            path,
            where=f"feature {', '.join(str(i + 1) for i in empty[:10])} (counting from 1)",
        )
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        frame.loc[invalid, frame.geometry.name] = fixed
    return frame.to_crs(4326), int(invalid.sum())


def read_boundary(path: str | Path, crs) -> tuple[shapely.Geometry, int]:
    """Read a study-area boundary: the union of a file's polygons, in ``crs``."""
    frame, repaired = read_vector(path)
    polys = frame[frame.geom_type.isin(["Polygon", "MultiPolygon", "GeometryCollection"])]
    if polys.empty:
        raise InputError("holds no polygons; a boundary must be a polygon", path)
    geom = shapely.union_all(polys.to_crs(crs).geometry.to_numpy())
    geom = shapely.union_all(
        [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    )
    if geom.is_empty or geom.area <= 0:
        raise InputError("its polygons have no area", path)
    return geom, repaired


def _decode(path: Path, encoding: str) -> str:
    raw = path.read_bytes()
    try:
        # utf-8-sig drops the byte-order mark that Excel writes
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = ""
        try:
            raw.decode("gb18030")
            hint = "; it reads as GBK/GB18030, so pass --encoding gbk"
        except UnicodeDecodeError:
            pass
        raise InputError(f"is not valid {encoding} text{hint}", path, where=f"line {line}") from exc
    except LookupError as exc:
        raise InputError(f"unknown text encoding {encoding!r}", path) from exc


def _find(columns: list[str], field_name: str) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for name in COLUMN_NAMES[field_name]:
        if name in lower:
            return lower[name]
    return None


def read_table(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV (in ``encoding``) or Excel sheet into a DataFrame with string headers."""
    path = Path(path)
    _check_file(path, TABLE_SUFFIXES)
    if path.suffix.lower() in (".xlsx", ".xls"):
        try:
            frame = pd.read_excel(path)
        except Exception as exc:
            raise InputError(f"cannot be read as an Excel workbook: {exc}", path) from exc
    else:
        text = _decode(path, encoding)
        try:
            frame = pd.read_csv(io.StringIO(text))
        except pd.errors.ParserError as exc:
            raise InputError(f"is not a well-formed CSV: {exc}", path) from exc
        except pd.errors.EmptyDataError as exc:
            raise InputError("holds no rows", path) from exc
    # rows of empty cells at the end (Excel saves ",,," lines below a table) are no rows;
    # blank rows inside the table stay, so that row numbers in messages keep their place
    filled = np.flatnonzero(~frame.isna().all(axis=1).to_numpy())
    frame = frame.iloc[: filled[-1] + 1 if len(filled) else 0]
    if frame.empty:
        raise InputError("holds no rows", path)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _rows(mask: np.ndarray, offset: int = 2) -> str:
    """Spreadsheet row numbers (header is row 1) of the first few true entries of ``mask``."""
    idx = np.flatnonzero(mask)[:10] + offset
    more = " …" if mask.sum() > 10 else ""
    return "row " + ", ".join(str(i) for i in idx) + more


def table_points(frame: pd.DataFrame, path: Path, gcj02: bool = False) -> gpd.GeoDataFrame:
    """Turn a table with lon/lat columns into WGS84 points, rejecting swapped or bad values."""
    lon_col, lat_col = _find(list(frame.columns), "lon"), _find(list(frame.columns), "lat")
    if lon_col is None or lat_col is None:
        raise InputError(
            "has neither a building id column nor lon/lat columns; expected one of "
            f"{', '.join(COLUMN_NAMES['building_id'])} or lon/lat (经度/纬度)",
            path,
        )
    lon = pd.to_numeric(frame[lon_col], errors="coerce").to_numpy()
    lat = pd.to_numeric(frame[lat_col], errors="coerce").to_numpy()
    bad = np.isnan(lon) | np.isnan(lat)
    if bad.any():
        raise InputError(f"{lon_col}/{lat_col} are not numbers", path, where=_rows(bad))
    swapped = (np.abs(lat) > 90) & (np.abs(lon) <= 90)
    if swapped.mean() > 0.5:
        raise InputError(
            f"columns {lon_col!r} and {lat_col!r} look swapped: {lat_col} holds values "
            f"beyond ±90° that fit a longitude",
            path,
            where=_rows(swapped),
        )
    out_of_range = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if out_of_range.any():
        raise InputError(
            f"{lon_col}/{lat_col} are out of range (lon ±180°, lat ±90°)",
            path,
            where=_rows(out_of_range),
        )
    if gcj02:
        lon, lat = gcj02_to_wgs84(lon, lat)
    return gpd.GeoDataFrame(frame, geometry=shapely.points(lon, lat), crs=4326)


def building_at(points: np.ndarray, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """Row of the building each point lies in, else of one within :data:`MAX_SNAP_M`
    metres (points and buildings in the same metric CRS); -1 where there is none."""
    tree = shapely.STRtree(buildings.geometry.to_numpy())
    where = np.full(len(points), -1)
    p, b = tree.query(points, predicate="within")
    where[p] = b
    rest = np.flatnonzero(where < 0)
    if len(rest):
        near = tree.query_nearest(points[rest], max_distance=MAX_SNAP_M)
        where[rest[near[0]]] = near[1]
    return where


def _has_location(frame: pd.DataFrame, is_table: bool) -> bool:
    if not is_table:
        return True
    cols = list(frame.columns)
    return _find(cols, "lon") is not None and _find(cols, "lat") is not None


def household_counts(column: pd.Series, name: str, path: Path) -> pd.Series:
    """A households column as numbers from 0 to :data:`MAX_HOUSEHOLDS`; the rows of any
    other value (text, negative, infinite, too many) named in the error."""
    hh = pd.to_numeric(column, errors="coerce")
    values = hh.to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0) | (values > MAX_HOUSEHOLDS)
    if bad.any():
        raise InputError(
            f"{name} must be a count from 0 to {MAX_HOUSEHOLDS:,}", path, where=_rows(bad)
        )
    return hh


def read_households(
    path: str | Path,
    buildings: gpd.GeoDataFrame,
    encoding: str = "utf-8",
    gcj02: bool = False,
) -> ImportedCounts:
    """Read real household counts and join them to ``buildings``.

    The file is a table (CSV, XLSX) or vector file (GeoJSON, GPKG, zipped SHP) with a
    ``households`` (户数) column and optionally ``population`` (人口). Rows are joined by
    ``building_id`` when the file has one, else by location: a point or a polygon's
    representative point inside a building, or within 20 m of one. Several rows in one
    building add up.

    Parameters
    ----------
    path
        The file.
    buildings
        OSM buildings in a metric CRS, with ``building_id``.
    encoding
        Text encoding of a CSV file.
    gcj02
        The table's lon/lat are GCJ-02 (as from AMap or Tencent maps).

    Returns
    -------
    ImportedCounts
        Counts indexed by ``building_id``, and notes on matched and unmatched rows.
    """
    path = Path(path)
    is_table = path.name.lower().endswith(TABLE_SUFFIXES)
    if is_table:
        frame = read_table(path, encoding)
    else:
        frame, repaired = read_vector(path)
    notes: Counter = Counter()
    if not is_table and repaired:
        notes["household file geometries repaired"] += repaired
    cols = list(frame.columns)
    hh_col = _find(cols, "households")
    if hh_col is None:
        raise InputError(
            f"has no households column; expected one of {', '.join(COLUMN_NAMES['households'])}",
            path,
        )
    hh = household_counts(frame[hh_col], hh_col, path)
    pop_col = _find(cols, "population")
    id_col = _find(cols, "building_id")
    data = pd.DataFrame({"households": hh.to_numpy()})
    if pop_col is not None:
        data["population"] = pd.to_numeric(frame[pop_col], errors="coerce").to_numpy()

    ids = None
    if id_col is not None:
        ids = frame[id_col].astype(str).str.strip()
        ids = ids.where(
            ~ids.str.fullmatch(r"\d+(\.0)?"), "w" + ids.str.replace(r"\.0$", "", regex=True)
        )
        known = ids.isin(set(buildings["building_id"])).to_numpy()
        if not known.any():
            if not _has_location(frame, is_table):
                raise InputError(
                    f"none of the ids in column {id_col!r} match a building of the "
                    "OSM file (ids look like w123456 or 123456)",
                    path,
                )
            # a generic id column (QGIS adds one) that is not a building id: use location
            notes[f"column {id_col!r} matched no building id, so rows joined by location"] += 1
            ids = None
    if ids is not None:
        dup = ids.duplicated(keep=False).to_numpy()
        if dup.any():
            raise InputError(
                f"duplicate building ids in column {id_col!r} "
                f"({', '.join(sorted(set(ids[dup]))[:5])})",
                path,
                where=_rows(dup),
            )
        notes["household rows matched by id"] += int(known.sum())
        if (~known).any():
            notes["household rows with unknown building id, ignored"] += int((~known).sum())
        data["building_id"] = ids.to_numpy()
        data = data[known]
    else:
        pts = table_points(frame, path, gcj02) if is_table else frame.copy()
        pts = gpd.GeoSeries(pts.geometry.to_numpy(), crs=4326).to_crs(buildings.crs)
        where = building_at(pts.representative_point().to_numpy(), buildings)
        matched = where >= 0
        if not matched.any():
            raise InputError(
                "no row lies in or within 20 m of a building of the study area; are the "
                "coordinates in another CRS, or GCJ-02 without --gcj02?",
                path,
            )
        notes["household rows matched by location"] += int(matched.sum())
        if (~matched).any():
            notes["household rows outside every building, ignored"] += int((~matched).sum())
        data["building_id"] = np.where(matched, buildings["building_id"].to_numpy()[where], None)
        data = data[matched]
    agg = {"households": "sum"}
    if "population" in data:
        agg["population"] = lambda s: s.sum(min_count=1)
    counts = data.groupby("building_id").agg(agg)
    counts["households"] = counts["households"].round().astype(int)
    return ImportedCounts(counts=counts, notes=notes)
