"""Read buildings from a city's 3D-building layer or a commercial map into the OSM shape."""

from __future__ import annotations

import re
import struct
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from wangge.data.building_words import FIELD_NAMES, OSM_TYPES, USE_VALUES
from wangge.data.floors import read_levels
from wangge.data.userfiles import (
    TABLE_SUFFIXES,
    VECTOR_SUFFIXES,
    _check_file,
    geometry_from_text,
    read_table,
    shapefile_dbf,
    vector_source,
)
from wangge.errors import InputError
from wangge.geo._geom import polygonal
from wangge.geo.crs import (
    SHIFTED,
    metric_crs,
    projected_crs_hint,
    unshift,
)

#: Above this share of unusable features a file is refused, not read in part.
MAX_DROPPED_SHARE = 0.05
#: A point building's file-level share of matched OSM overlap needed to adopt OSM tags.
MIN_OSM_OVERLAP = 0.5

_LEADING_NUMBER = re.compile(r"\s*(-?\d+(?:\.\d+)?)")
FINDING_COLUMNS = ["kind", "building_id", "row", "detail"]


@dataclass
class BuildingFile:
    """Buildings read from a user's file, shaped like the OSM buildings.

    Attributes
    ----------
    frame
        EPSG:4326 footprints with exactly :data:`OSM_COLUMNS`, plus ``households`` (float,
        NaN where the file has none) and ``population`` when the file carries counts.
    notes
        What happened on the way, counted.
    findings
        Things kept or dropped with a warning: ``kind``, ``building_id``, ``row`` (the
        spreadsheet row, header = row 1, for tables; the feature number from 1 for vector
        files) and ``detail``.
    source
        The file.
    coords
        The datum its longitude/latitude were read in (``wgs84``, ``gcj02``, ``bd09``), or
        ``None`` for a file in a projected CRS, which no datum shift applies to.
    """

    frame: gpd.GeoDataFrame
    notes: Counter = field(default_factory=Counter)
    findings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FINDING_COLUMNS))
    source: Path | None = None
    coords: str | None = "wgs84"

    def counts(self) -> pd.DataFrame:
        """Imported counts in the shape :func:`wangge.geo.households.apply_imported` takes.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``building_id``: ``households`` (int) and, when the file has it,
            ``population`` (float, NaN where blank), for the buildings with a household
            count. Empty when the file carries none.
        """
        if "households" not in self.frame:
            return pd.DataFrame({"households": pd.Series(dtype=int)})
        has = self.frame["households"].notna()
        cols = ["households"] + (["population"] if "population" in self.frame else [])
        out = self.frame.loc[has, ["building_id", *cols]].set_index("building_id")
        out["households"] = out["households"].round().astype(int)
        return pd.DataFrame(out)


class _Log:
    """Collects notes and findings while a file is read."""

    def __init__(self) -> None:
        self.notes: Counter = Counter()
        self.rows: list[dict] = []

    def find(self, kind: str, detail: str, building_id: str | None = None, row=None) -> None:
        self.rows.append(
            {
                "kind": kind,
                "building_id": building_id,
                "row": None if row is None else int(row),
                "detail": detail,
            }
        )

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame(self.rows, columns=FINDING_COLUMNS)
        out["row"] = out["row"].astype("Int64")
        return out


def _column(columns, field_name: str) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for name in FIELD_NAMES[field_name]:
        if name in lower:
            return lower[name]
    return None


def _where(rows: np.ndarray, what: str) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:10])
    return f"{what} {shown}" + (" …" if len(rows) > 10 else "")


# --------------------------------------------------------------------------- reading


def _dbf_encoding(path: Path, encoding: str, log: _Log) -> str | None:
    """The encoding to read a shapefile's attributes in, or ``None`` to let GDAL decide.

    A .cpg file decides, else a non-UTF-8 ``encoding``. Without either, the .dbf's text is
    tested: UTF-8 if it decodes as such, else GBK if it decodes as GB18030 (what ArcGIS and
    SuperMap write in China without a .cpg), which is noted.
    """
    dbf, has_cpg = shapefile_dbf(path)
    if has_cpg:  # the file's own word, over --encoding (meant for CSV inputs)
        return None
    explicit = encoding.strip().lower().replace("-", "").replace("_", "")
    if explicit not in ("utf8", "utf8sig"):
        return encoding
    if dbf is None or len(dbf) < 32:
        return None
    header = struct.unpack("<H", dbf[8:10])[0]
    body = dbf[header:]
    if body.isascii():
        return None
    try:
        body.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        body.decode("gb18030")
    except UnicodeDecodeError:
        return None
    log.notes["shapefile attributes read as GBK (no .cpg beside the .dbf)"] += 1
    return "GBK"


def _read_vector_file(path: Path, encoding: str, log: _Log) -> gpd.GeoDataFrame:
    kwargs = {}
    if path.name.lower().endswith((".zip", ".shp")):
        enc = _dbf_encoding(path, encoding, log)
        if enc:
            kwargs["encoding"] = enc
    try:
        return pyogrio.read_dataframe(vector_source(path), **kwargs)
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(
            f"cannot be read as vector data (truncated or not a GIS file?): {exc}", path
        ) from exc


def _table_geometry(
    table: pd.DataFrame, path: Path, log: _Log
) -> tuple[np.ndarray, np.ndarray, str]:
    """Geometries from a WKT column, else points from lon/lat columns; problems by row."""
    n = len(table)
    problem = np.full(n, "", dtype=object)
    wkt_col = _column(table.columns, "wkt")
    if wkt_col is not None:
        geoms = np.full(n, None, dtype=object)
        text = table[wkt_col]
        blank = text.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
        problem[blank] = "no geometry (blank WKT)"
        for i in np.flatnonzero(~blank):
            geoms[i] = geometry_from_text(text.iloc[i])
            if geoms[i] is None:
                problem[i] = "neither WKT, EWKT nor hex WKB (truncated?)"
        log.notes[f"footprints read from WKT column {wkt_col!r}"] += int((problem == "").sum())
        return geoms, problem, "wkt"
    lon_col, lat_col = _column(table.columns, "lon"), _column(table.columns, "lat")
    if lon_col is None or lat_col is None:
        raise InputError(
            "has no geometry: expected a WKT column (wkt, geometry, geom, 几何) for footprints "
            "or lon/lat columns (lon/lng/经度, lat/纬度) for points",
            path,
        )
    lon = pd.to_numeric(table[lon_col], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(table[lat_col], errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(lon) | np.isnan(lat)
    problem[bad] = f"{lon_col}/{lat_col} are not numbers"
    geoms = shapely.points(np.where(bad, 0.0, lon), np.where(bad, 0.0, lat))
    geoms = np.where(bad, None, geoms)
    return geoms, problem, "points"


def _source_crs(declared, crs, path: Path, log: _Log) -> CRS:
    if crs is not None:
        try:
            given = CRS.from_user_input(crs)
        except Exception as exc:
            raise InputError(f"unknown CRS {crs!r}: {exc}", path, where="crs") from exc
        if declared is not None and CRS.from_user_input(declared) != given:
            log.notes[f"declared CRS overridden by crs={crs}"] += 1
        return given
    if declared is None:
        log.notes["no CRS declared; read as EPSG:4326 longitude/latitude"] += 1
        return CRS.from_epsg(4326)
    return CRS.from_user_input(declared)


def _coordinate_problems(
    geoms: np.ndarray, src: CRS, problem: np.ndarray, near: tuple[float, float] | None = None
) -> None:
    """Mark features whose coordinates cannot be in ``src``: metres read as degrees,
    degrees read as metres, lon/lat swapped, or out of range (in place). Metres are told
    the CRS to pass: the zone of ``near`` (lon/lat of the OSM data) when known."""
    ok = np.flatnonzero(problem == "")
    if not len(ok):
        return
    b = shapely.bounds(geoms[ok])
    x0, y0, x1, y1 = b.T
    if src.is_geographic:
        big = (np.abs(b) > 1000).any(axis=1)
        out = (np.abs(x0) > 180) | (np.abs(x1) > 180) | (np.abs(y0) > 90) | (np.abs(y1) > 90)
        swapped = (np.abs(y0) > 90) & (np.abs(x1) <= 90)
        # lon/lat swapped inside China (lon 73–136°E, lat 3–54°N), also where lon < 90
        swapped |= (x0 >= 3) & (x1 <= 54) & (y0 >= 73) & (y1 <= 136)
        if big.any():
            x = float(np.median(x0[big]))
            problem[ok[big]] = (
                f"coordinates look like metres but are read as degrees ({src.name}); "
                + projected_crs_hint(x, "--buildings-crs", near)
            )
        problem[ok[~big & swapped]] = "longitude and latitude look swapped"
        problem[ok[~big & ~swapped & out]] = "coordinates out of range (lon ±180°, lat ±90°)"
    else:
        small = (np.abs(b) <= 180).all(axis=1)
        problem[ok[small]] = (
            f"coordinates look like degrees but the CRS is projected ({src.name}); "
            "pass crs='EPSG:4326' (or fix the .prj)"
        )


def _reprojected(geoms: np.ndarray, src: CRS, problem: np.ndarray) -> np.ndarray:
    """The geometries in EPSG:4326; features that do not land in range are marked."""
    ok = np.flatnonzero(problem == "")
    out = np.full(len(geoms), None, dtype=object)
    if not len(ok):
        return out
    moved = gpd.GeoSeries(geoms[ok], crs=src).to_crs(4326).to_numpy()
    b = shapely.bounds(moved)
    bad = ~np.isfinite(b).all(axis=1) | (np.abs(b[:, [0, 2]]) > 180).any(axis=1)
    bad |= (np.abs(b[:, [1, 3]]) > 90).any(axis=1)
    problem[ok[bad]] = f"coordinates do not fit {src.name} (wrong zone or false easting?)"
    out[ok] = moved
    return out


def _footprints(
    geoms: np.ndarray, problem: np.ndarray, area: np.ndarray | None, log: _Log
) -> np.ndarray:
    """Polygons from WGS84 geometries: repaired where invalid, squares of ``area`` m² around
    points; lines and area-less points are marked as problems."""
    out = np.full(len(geoms), None, dtype=object)
    ok = problem == ""
    kinds = np.array([g.geom_type if g is not None else "" for g in geoms], dtype=object)
    polys = ok & np.isin(kinds, ["Polygon", "MultiPolygon", "GeometryCollection"])
    points = ok & np.isin(kinds, ["Point", "MultiPoint"])
    problem[ok & ~polys & ~points] = "not a footprint (a line); expected a polygon"
    idx = np.flatnonzero(polys)
    if len(idx):
        g = shapely.force_2d(geoms[idx])
        invalid = ~shapely.is_valid(g)
        if invalid.any():
            g[invalid] = [polygonal(shapely.make_valid(x)) for x in g[invalid]]
            log.notes["invalid footprints repaired"] += int(invalid.sum())
        g = np.array(
            [polygonal(x) if x.geom_type == "GeometryCollection" else x for x in g], dtype=object
        )
        empty = shapely.is_empty(g) | (shapely.area(g) <= 0)
        problem[idx[empty]] = "footprint has no area"
        single = np.array([x.geom_type == "MultiPolygon" and len(x.geoms) == 1 for x in g])
        if single.any():
            g[single] = [x.geoms[0] for x in g[single]]
        out[idx] = g
    pidx = np.flatnonzero(points)
    if len(pidx):
        a = np.full(len(pidx), np.nan) if area is None else area[pidx]
        good = np.isfinite(a) & (a > 0)
        problem[pidx[~good]] = (
            "a point, not a footprint, with no area to stand in (area/面积/基底面积, m²)"
        )
        use = pidx[good]
        if len(use):
            centres = shapely.centroid(geoms[use])
            c = shapely.centroid(shapely.multipoints(centres))
            crs = metric_crs(c.x, c.y)
            local = gpd.GeoSeries(centres, crs=4326).to_crs(crs)
            half = np.sqrt(a[good]) / 2
            sq = shapely.box(local.x - half, local.y - half, local.x + half, local.y + half)
            out[use] = gpd.GeoSeries(sq, crs=crs).to_crs(4326).to_numpy()
            log.notes["points given a square stand-in footprint of their stated area"] += len(use)
    return out


# --------------------------------------------------------------------------- fields


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numbers from a column (``6``, ``"6"``, ``"6F"``, ``"6层"``, ``"30 m"``), and which
    non-blank cells held no number."""
    num = np.array(pd.to_numeric(values, errors="coerce"), dtype=float)
    text = values.astype(str).str.strip()
    blank = values.isna().to_numpy() | text.isin(["", "nan", "None", "NULL", "null"]).to_numpy()
    for i in np.flatnonzero(np.isnan(num) & ~blank):
        m = _LEADING_NUMBER.match(text.iloc[i])
        if m:
            num[i] = float(m.group(1))
    return num, np.isnan(num) & ~blank


def _shown(value) -> str:
    """A cell as a planner would read it: ``-3``, ``2.5``, ``'six'``."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):g}"
    return repr(str(value))


def _tag(values: np.ndarray) -> np.ndarray:
    """Numbers as OSM-style tag strings (``"6"``, ``"337.5"``); NaN becomes ``None``."""
    return np.array([None if np.isnan(v) else f"{v:g}" for v in values], dtype=object)


def _checked(
    table: pd.DataFrame,
    field_name: str,
    upper: float,
    unit: str,
    ids: np.ndarray,
    rows: np.ndarray,
    log: _Log,
    zero_ok: bool = False,
) -> tuple[np.ndarray, str | None]:
    """A numeric field's values with those ≤ 0 (< 0 if ``zero_ok``), above ``upper`` or
    unreadable set to NaN, each reported as a finding."""
    col = _column(table.columns, field_name)
    if col is None:
        return np.full(len(table), np.nan), None
    v, unreadable = _numbers(table[col])
    low = (v < 0, "is negative") if zero_ok else (v <= 0, "is zero or negative")
    for mask, why in (
        (unreadable, "is not a number"),
        low,
        (v > upper, f"is above {upper:g} {unit}, not believed"),
    ):
        for i in np.flatnonzero(mask):
            log.find(
                f"{field_name} ignored",
                f"{col} = {_shown(table[col].iloc[i])} {why}; ignored",
                ids[i],
                rows[i],
            )
        if mask.any():
            log.notes[f"{field_name} values ignored ({why})"] += int(mask.sum())
    v = np.where(unreadable | low[0] | (v > upper), np.nan, v)
    return v, col


def _uses(table: pd.DataFrame, log: _Log) -> np.ndarray:
    col = _column(table.columns, "use")
    if col is None:
        log.notes["no use column; every building is building=yes, decided by context"] += 1
        return np.full(len(table), "yes", dtype=object)
    raw = table[col].astype("string").str.strip().fillna("")
    key = raw.str.lower()
    mapped = key.map(lambda s: USE_VALUES.get(s, s if s in OSM_TYPES else None))
    blank = key == ""
    unknown = mapped.isna() & ~blank
    for value, n in raw[unknown].value_counts().items():
        log.find(
            "use not recognised",
            f"{col} = {value!r} ({n} rows) is not a known use; read as building=yes",
        )
    if unknown.any():
        log.notes["use values not recognised, read as building=yes"] += int(unknown.sum())
    log.notes[f"use read from column {col!r}"] += int((~blank & ~unknown).sum())
    return mapped.fillna("yes").to_numpy(dtype=object)


def _columns(columns, field_name: str) -> list:
    """Every column matching ``field_name``'s aliases, in the order of :data:`FIELD_NAMES`."""
    lower = {str(c).strip().lower(): c for c in columns}
    return [lower[name] for name in FIELD_NAMES[field_name] if name in lower]


def _ids(table: pd.DataFrame, rows: np.ndarray, path: Path, log: _Log) -> np.ndarray:
    """Building ids from the first id column that tells the buildings apart.

    A column that is empty, or holds one value on every row (ArcGIS gives a new
    shapefile an ``Id`` of 0 on every feature), identifies nothing: it is passed over with
    a finding, and the next id column, else the row numbers (``b<row>``), give the ids.
    Blank cells in a used column get ``b<row>``; duplicates in it are an error.
    """
    generated = np.array([f"b{r}" for r in rows], dtype=object)
    what = "row" if path.suffix.lower() in TABLE_SUFFIXES else "feature"
    cols = _columns(table.columns, "building_id")
    if not cols:
        log.notes["no id column; ids b<row> generated in file order"] += 1
        return generated
    for col in cols:
        raw = table[col].astype("string").str.strip()
        raw = raw.str.replace(r"^(-?\d+)\.0$", r"\1", regex=True)
        blank = (raw.isna() | (raw == "")).to_numpy()
        values = raw[~blank].unique()
        if blank.all() or (len(table) > 1 and len(values) == 1):
            said = "is empty" if blank.all() else f"is {values[0]!r} on every {what}"
            log.find(
                "id column ignored",
                f"id column {col!r} {said}, so it tells no building apart: ignored",
            )
            log.notes[f"id column {col!r} ignored (empty or one value)"] += 1
            continue
        ids = np.where(blank, generated, raw.fillna("").to_numpy(dtype=object))
        for i in np.flatnonzero(blank):
            log.find("id generated", f"{col} is blank; id {ids[i]} generated", ids[i], rows[i])
        dup = pd.Series(ids).duplicated(keep=False).to_numpy()
        if dup.any():
            raise InputError(
                f"duplicate building ids in column {col!r} "
                f"({', '.join(sorted(set(ids[dup]))[:5])}); make them unique, or remove the "
                "column to number the buildings by row",
                path,
                where=_where(rows[dup], what),
            )
        return ids
    log.find(
        "id column ignored",
        f"no usable id column ({', '.join(map(repr, cols))}): ids b<{what}> generated "
        f"from the {what} numbers (b{rows[0]} is {what} {rows[0]})",
    )
    log.notes["ids b<row> generated in file order"] += 1
    return generated


# --------------------------------------------------------------------------- public


def read_buildings(
    path: str | Path,
    coords: str = "wgs84",
    encoding: str = "utf-8",
    crs=None,
    *,
    osm_buildings: gpd.GeoDataFrame | None = None,
) -> BuildingFile:
    """Read a building file from a city's 3D-building layer or a commercial map.

    Footprints come from a GeoJSON, GeoPackage, (zipped) Shapefile, or a CSV/XLSX with a
    WKT column; a CSV/XLSX with lon/lat columns (or a vector file of points) gives points,
    each made a square stand-in footprint of the area in its ``area``/``面积``/``基底面积``
    column (m²), or refused without one. Fields are found by alias (:data:`FIELD_NAMES`) and
    read as docs/HOUSEHOLDS.md "Buildings from another source" describes.

    Parameters
    ----------
    path
        The file.
    coords
        ``"wgs84"`` (also for CGCS2000 and projected files), or ``"gcj02"`` / ``"bd09"`` for
        longitude/latitude shifted as AMap/Tencent or Baidu maps shift them.
    encoding
        Text encoding of a CSV, or of a shapefile's .dbf. With the default, a .dbf without
        a .cpg that is not UTF-8 but reads as GBK is read as GBK (and noted).
    crs
        The CRS of the coordinates when the file declares none (CSV, .shp without .prj) or
        declares the wrong one: anything pyproj accepts, such as ``"EPSG:4547"``.
    osm_buildings
        OSM buildings (as :func:`wangge.data.osm.read_osm` gives them) of the same place:
        where the file states no use, each footprint takes type, name and use tags from the
        OSM building it overlaps most (see :func:`adopt_osm_tags`).

    Returns
    -------
    BuildingFile
        ``frame`` in EPSG:4326 with :data:`OSM_COLUMNS` (plus ``households`` and
        ``population`` when the file has them), ``notes`` and ``findings``.

    Raises
    ------
    InputError
        Naming the file and the rows or features: unreadable, empty or truncated files;
        more than 5 % of features without a usable footprint (empty, missing, lines,
        points without area, swapped or out-of-range coordinates); metres read as degrees;
        duplicate ids.
    """
    path = Path(path)
    log = _Log()
    _check_file(path, VECTOR_SUFFIXES + TABLE_SUFFIXES)
    name = str(coords).strip().lower().replace("-", "")
    if name not in SHIFTED:
        raise InputError(f"unknown coordinates {coords!r}; accepted: {', '.join(SHIFTED)}", path)
    is_table = path.name.lower().endswith(TABLE_SUFFIXES)
    if is_table:
        table = read_table(path, encoding)
        geoms, problem, _ = _table_geometry(table, path, log)
        declared = None
        rows = np.arange(len(table)) + 2
        what = "row"
    else:
        frame = _read_vector_file(path, encoding, log)
        if frame.empty:
            raise InputError("holds no features", path)
        declared = frame.crs
        geoms = frame.geometry.to_numpy().astype(object)
        problem = np.full(len(frame), "", dtype=object)
        missing = shapely.is_missing(geoms)
        problem[missing] = "no geometry"
        problem[~missing & shapely.is_empty(np.where(missing, shapely.Point(), geoms))] = (
            "empty geometry"
        )
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        rows = np.arange(len(frame)) + 1
        what = "feature"
    table.columns = [str(c).strip() for c in table.columns]
    src = _source_crs(declared, crs, path, log)
    if name != "wgs84" and not src.is_geographic:
        raise InputError(
            f"coords={coords!r} applies to longitude/latitude, but the file is in {src.name}",
            path,
        )
    near = None
    if osm_buildings is not None and len(osm_buildings):
        w, s_, e, n = osm_buildings.to_crs(4326).total_bounds
        near = ((w + e) / 2, (s_ + n) / 2)
    _coordinate_problems(geoms, src, problem, near)
    geoms = _reprojected(geoms, src, problem)
    if name != "wgs84":
        ok = problem == ""
        geoms[ok] = unshift(geoms[ok], name)
        log.notes[f"coordinates moved from {name.upper()} to WGS84"] += int(ok.sum())

    ids = _ids(table, rows, path, log)
    area_col = _column(table.columns, "area")
    area = None if area_col is None else _numbers(table[area_col])[0]
    geoms = _footprints(geoms, problem, area, log)
    _refuse_or_drop(problem, rows, ids, what, path, log)
    keep = problem == ""

    floor_col = _column(table.columns, "floors")
    height_col = _column(table.columns, "height")
    levels = read_levels(
        None if floor_col is None else table[floor_col],
        None if height_col is None else table[height_col],
        rows,
        what,
    )
    for kind, detail, i in levels.findings:
        log.find(kind, detail, None if i is None else ids[i], None if i is None else rows[i])
    log.notes.update(levels.notes)
    floors, height = levels.floors, levels.height
    if floor_col is None and height_col is None:
        log.notes["no floor or height column; levels default by building type"] += 1
        log.find(
            "no floors or height",
            "the file has no floor column ("
            + "/".join(FIELD_NAMES["floors"])
            + ") and no height column ("
            + "/".join(FIELD_NAMES["height"])
            + "): every building's levels fall back to the default for its type "
            "(6 for housing and untyped buildings, geo/households.toml [levels])",
        )
    name_col = _column(table.columns, "name")
    names = (
        np.full(len(table), None, dtype=object)
        if name_col is None
        else table[name_col].astype("string").str.strip().replace("", pd.NA).to_numpy(dtype=object)
    )
    names = np.where(pd.isna(names), None, names)
    out = gpd.GeoDataFrame(
        {
            "building_id": ids,
            "building": _uses(table, log),
            "name": names,
            "levels_tag": _tag(floors),
            "height_tag": _tag(height),
            "building_use": np.full(len(table), None, dtype=object),
            "own_use": np.full(len(table), None, dtype=object),
        },
        geometry=gpd.GeoSeries(geoms, crs=4326),
        crs=4326,
    )
    for field_name in ("households", "population"):
        v, col = _checked(table, field_name, np.inf, "", ids, rows, log, zero_ok=True)
        if col is not None:
            out[field_name] = v
            log.notes[f"{field_name} read from column {col!r}"] += int(np.isfinite(v[keep]).sum())
    gfa = next((c for c in table.columns if str(c).strip() == "建筑面积"), None)
    if gfa is not None and area_col != gfa:
        log.notes["column 建筑面积 (gross floor area) not used; footprints give the area"] += 1
    out = _once(out[keep].reset_index(drop=True), np.asarray(rows)[keep], log)
    log.notes["buildings read"] += len(out)
    result = BuildingFile(out, log.notes, log.frame(), path, name if src.is_geographic else None)
    if osm_buildings is not None:
        result = adopt_osm_tags(result, osm_buildings)
    return result


#: Two footprints that share this much of their joint area are one building given twice
#: (a layer exported twice, one polygon per floor): counted once.
SAME_FOOTPRINT = 0.9


def _once(out: gpd.GeoDataFrame, rows: np.ndarray, log: _Log) -> gpd.GeoDataFrame:
    """Drop footprints that repeat another (intersection ≥ ``SAME_FOOTPRINT`` of their
    union), keeping the one with the most floors (then height, then the first), each with
    a ``duplicate_footprint`` finding: households would otherwise be counted twice."""
    geoms = out.geometry.to_numpy()
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = a < b
    a, b = a[pairs], b[pairs]
    if not len(a):
        return out
    inter = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    union = shapely.area(geoms[a]) + shapely.area(geoms[b]) - inter
    same = inter >= SAME_FOOTPRINT * np.maximum(union, 1e-30)
    if not same.any():
        return out
    rank = pd.DataFrame(
        {
            "floors": pd.to_numeric(out["levels_tag"], errors="coerce").fillna(-1),
            "height": pd.to_numeric(out["height_tag"], errors="coerce").fillna(-1),
        }
    )
    dropped: set[int] = set()
    for i, j, share in zip(a[same], b[same], (inter / union)[same], strict=True):
        if i in dropped or j in dropped:
            continue
        key = rank.iloc[[i, j]].to_numpy()
        lose = j if tuple(key[0]) >= tuple(key[1]) else i
        win = i if lose == j else j
        dropped.add(int(lose))
        log.find(
            "duplicate_footprint",
            f"the same footprint as {out['building_id'].iat[win]} ({share:.0%} shared): "
            "counted once, as the one with more floors",
            out["building_id"].iat[lose],
            rows[lose],
        )
    log.notes["footprints given twice, counted once"] += len(dropped)
    return out.drop(index=sorted(dropped)).reset_index(drop=True)


def _refuse_or_drop(
    problem: np.ndarray, rows: np.ndarray, ids: np.ndarray, what: str, path: Path, log: _Log
) -> None:
    """Refuse the file when more than :data:`MAX_DROPPED_SHARE` of its features have no
    usable footprint; else report each dropped one as a finding."""
    bad = problem != ""
    if not bad.any():
        return
    reasons = Counter(problem[bad])
    summary = "; ".join(f"{reason}: {n}" for reason, n in reasons.most_common())
    if bad.mean() > MAX_DROPPED_SHARE:
        raise InputError(
            f"{int(bad.sum())} of {len(problem)} {what}s have no usable footprint ({summary}); "
            f"that is more than {MAX_DROPPED_SHARE:.0%} of the file, so it is refused rather "
            "than read in part",
            path,
            where=_where(rows[bad], what),
        )
    for i in np.flatnonzero(bad):
        log.find("dropped", f"{what} {rows[i]}: {problem[i]}; dropped", ids[i], rows[i])
    log.notes[f"{what}s dropped without a usable footprint"] += int(bad.sum())


def adopt_osm_tags(
    buildings: BuildingFile, osm_buildings: gpd.GeoDataFrame, min_overlap: float = MIN_OSM_OVERLAP
) -> BuildingFile:
    """Give footprints whose file states no use the tags of the OSM building they overlap.

    A city's 3D-building layer has good footprints and heights but often no use or name;
    OSM of the same place often has both. Each file building whose ``building`` is ``yes``
    takes ``building``, ``name`` (where the file has none), ``building_use`` and ``own_use``
    from the OSM building sharing the largest area with it, provided that area is at least
    ``min_overlap`` of the smaller of the two footprints (so a file building split into
    parts, or one OSM outline split into several, still matches). Where the file gives
    neither floors nor height, the OSM ``building:levels`` and ``height`` fill in.

    Parameters
    ----------
    buildings
        As read by :func:`read_buildings`.
    osm_buildings
        OSM buildings with :data:`OSM_COLUMNS`, in any CRS.
    min_overlap
        Shared area over the smaller footprint's area needed to match.

    Returns
    -------
    BuildingFile
        A copy with the tags filled and the counts in ``notes``.
    """
    frame = buildings.frame.copy()
    notes = Counter(buildings.notes)
    if frame.empty or osm_buildings is None or osm_buildings.empty:
        return replace(buildings, frame=frame, notes=notes)
    c = frame.geometry.union_all().centroid
    crs = metric_crs(c.x, c.y)
    mine = frame.to_crs(crs).geometry.to_numpy()
    osm = osm_buildings.to_crs(crs).reset_index(drop=True)
    theirs = osm.geometry.to_numpy()
    i, j = shapely.STRtree(theirs).query(mine, predicate="intersects")
    if len(i):
        shared = shapely.area(shapely.intersection(mine[i], theirs[j]))
        smaller = np.minimum(shapely.area(mine[i]), shapely.area(theirs[j]))
        pairs = pd.DataFrame({"i": i, "j": j, "shared": shared, "ratio": shared / smaller})
        pairs = pairs[pairs["ratio"] >= min_overlap].sort_values("shared", ascending=False)
        best = pairs.drop_duplicates("i").set_index("i")["j"]
    else:
        best = pd.Series(dtype=int)
    untyped = frame["building"].eq("yes").to_numpy()
    take = np.zeros(len(frame), dtype=bool)
    take[best.index.to_numpy()] = True
    take &= untyped
    rows = np.flatnonzero(take)
    src = best.loc[rows].to_numpy()
    frame.loc[rows, "building"] = osm["building"].to_numpy()[src]
    for col in ("building_use", "own_use"):
        frame.loc[rows, col] = osm[col].to_numpy()[src]
    no_name = frame.loc[rows, "name"].isna().to_numpy()
    frame.loc[rows[no_name], "name"] = osm["name"].to_numpy()[src[no_name]]
    matched = np.zeros(len(frame), dtype=bool)
    matched[best.index.to_numpy()] = True
    bare = matched & frame["levels_tag"].isna().to_numpy() & frame["height_tag"].isna().to_numpy()
    brows = np.flatnonzero(bare)
    bsrc = best.loc[brows].to_numpy()
    frame.loc[brows, "levels_tag"] = osm["levels_tag"].to_numpy()[bsrc]
    frame.loc[brows, "height_tag"] = osm["height_tag"].to_numpy()[bsrc]
    notes["buildings matched to an OSM building"] += int(matched.sum())
    notes["building type, name and use taken from OSM"] += len(rows)
    filled = frame.loc[brows, "levels_tag"].notna() | frame.loc[brows, "height_tag"].notna()
    notes["levels or height taken from OSM (the file had neither)"] += int(filled.sum())
    return replace(buildings, frame=frame, notes=notes)
