"""Read given street and community boundary files (cleaning them is geo/boundaries.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

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
from wangge.geo import district
from wangge.geo._geom import polygonal
from wangge.geo.boundaries import findings_table
from wangge.geo.crs import CHINA_BBOX, metric_crs, projected_crs_hint, unshift

LEVELS = ("street", "community")

#: Accepted column names (matched stripped and lower-cased), most specific first.
ALIASES: dict[str, tuple[str, ...]] = {
    "street_code": (
        "街道代码",
        "街道编码",
        "街道区划代码",
        "乡镇代码",
        "street_code",
        "street_cod",
        "street_id",
    ),
    "community_code": (
        "社区代码",
        "社区编码",
        "村代码",
        "居委会代码",
        "community_code",
        "community_",
        "community_id",
    ),
    "code": ("代码", "编码", "区划代码", "统计用区划代码", "行政区划代码", "code", "id"),
    "street_name": ("街道名称", "街道", "乡镇名称", "street_name", "street_nam", "street"),
    "community_name": ("社区名称", "社区", "村名称", "居委会名称", "community_name", "community"),
    "name": ("名称", "name", "名字", "单位名称"),
    "district_code": (
        "区县代码",
        "县区代码",
        "区县编码",
        "区代码",
        "县代码",
        "district_code",
        "county_code",
        "district_c",
        "county_cod",
        "adcode",
    ),
    "district": (
        "区县",
        "县区",
        "区县名称",
        "所属区县",
        "县",
        "区",
        "县名",
        "区名",
        "district",
        "county",
        "district_name",
        "county_name",
        "district_n",
    ),
    "households": ("户数", "总户数", "households", "hh"),
    "population": ("人口", "人数", "常住人口", "population", "pop"),
    "wkt": ("wkt", "geometry", "geom", "几何", "the_geom", "shape"),
}
#: Code lengths: a street is 6 county + 3 township digits, a community adds 3 more.
CODE_DIGITS = {"street": 9, "community": 12}

#: Coordinates beyond this (in absolute value) cannot be degrees: they are metres.
METRIC_ABOVE = 1000.0
#: Slack, in degrees, around a projected CRS's declared area of use.
AREA_SLACK_DEG = 1.5


@dataclass
class GivenUnits:
    """Streets or communities as a user gave them.

    Attributes
    ----------
    frame
        EPSG:4326 GeoDataFrame with ``code`` (normalised digit string or None), ``name``,
        ``households`` and ``population`` (float, NaN where absent), ``street_code`` (a
        community's 9-digit parent code from its own column, else None; None for streets),
        ``street_name`` (a community's street name column, else None), ``district_code``
        (6 digits from a district column, see :func:`_districts`, else None) and
        ``geometry`` (Polygon or MultiPolygon), one row per feature in file order.
    findings
        One row per thing noticed while reading
        (:data:`wangge.geo.boundaries.FINDING_COLUMNS`; ``x``/``y`` are lon/lat).
    source
        The file read.
    level
        ``"street"`` or ``"community"``.
    """

    frame: gpd.GeoDataFrame
    findings: pd.DataFrame
    source: Path
    level: str = "community"


def _findings(rows: list[dict]) -> pd.DataFrame:
    return findings_table(rows)


# ---------------------------------------------------------------------------------------
# reading


def _find(columns: list, key: str) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for alias in ALIASES[key]:
        if alias.lower() in lower:
            return lower[alias.lower()]
    return None


def _label(kind: str, i: int, code: str | None = None, name: str | None = None) -> str:
    """``feature 3`` (vector files, from 1) or ``row 4`` (tables, header is row 1)."""
    text = f"feature {i + 1}" if kind == "feature" else f"row {i + 2}"
    extra = " ".join(str(v) for v in (code, name) if v)
    return f"{text} ({extra})" if extra else text


def _labels(kind: str, idx, codes=None, names=None, limit: int = 10) -> str:
    idx = list(idx)
    parts = [
        _label(kind, i, None if codes is None else codes[i], None if names is None else names[i])
        for i in idx[:limit]
    ]
    return ", ".join(parts) + (f" and {len(idx) - limit} more" if len(idx) > limit else "")


def require_unique(codes: list, names: list, path: Path, kind: str, what: str) -> None:
    """Raise :class:`InputError` naming the rows when a code is used twice."""
    series = pd.Series(codes, dtype=object)
    dup = series.notna() & series.duplicated(keep=False)
    if not dup.any():
        return
    groups = series[dup].groupby(series[dup]).groups
    detail = "; ".join(
        f"{c} in {_labels(kind, list(ix), None, names)}" for c, ix in list(groups.items())[:5]
    )
    raise InputError(
        f"duplicate {what}: {detail}", path, where=_labels(kind, np.flatnonzero(dup.to_numpy()))
    )


def require_polygons(
    geoms: np.ndarray, codes: list, names: list, path: Path, kind: str, what: str
) -> np.ndarray:
    """The geometries in 2D; :class:`InputError` naming the features that are empty,
    missing or not polygons."""
    missing = np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if len(missing):
        raise InputError(
            f"{len(missing)} feature(s) have empty or missing geometry",
            path,
            where=_labels(kind, missing, codes, names),
        )
    geoms = shapely.force_2d(geoms)
    not_poly = np.flatnonzero(~np.isin(shapely.get_type_id(geoms), (3, 6)))
    if len(not_poly):
        kinds = sorted({g.geom_type for g in geoms[not_poly]})
        raise InputError(
            f"{what} must be polygons, but {len(not_poly)} feature(s) are {', '.join(kinds)}",
            path,
            where=_labels(kind, not_poly, codes, names),
        )
    return geoms


def normalise_code(value) -> str | None:
    """Return a code as a digit string: spaces removed, Excel's trailing ``.0`` and
    scientific notation undone; None for blanks. Non-digit text is returned as it is."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else str(value)
    text = re.sub(r"\s+", "", str(value))
    if text == "" or text.lower() in ("nan", "none", "null"):
        return None
    if re.fullmatch(r"\d+\.0+", text):
        return text.split(".")[0]
    if re.fullmatch(r"\d+(\.\d+)?[eE]\+?\d+", text):
        number = float(text)
        if number.is_integer():
            return str(int(number))
    return text


def _codes(values: pd.Series, level: str, column: str, path: Path, kind: str) -> list[str | None]:
    """Normalise a code column for ``level``: a street code is 9 digits, or 12 ending in
    000 (cut to 9); a community code is 12 digits. Raises naming the rows that are not."""
    codes = [normalise_code(v) for v in values]
    digits = CODE_DIGITS[level]
    out: list[str | None] = []
    bad = []
    for i, c in enumerate(codes):
        if c is None:
            out.append(None)
        elif not c.isdigit():
            bad.append(i)
            out.append(None)
        elif len(c) == digits:
            out.append(c)
        elif level == "street" and len(c) == 12 and c.endswith("000"):
            out.append(c[:9])
        else:
            bad.append(i)
            out.append(None)
    if bad:
        shown = ", ".join(f"{codes[i]!r}" for i in bad[:5])
        rule = (
            "9 digits (6 county + 3 township), or 12 ending in 000"
            if level == "street"
            else "12 digits (6 county + 3 township + 3 community)"
        )
        raise InputError(
            f"column {column!r} holds {level} codes that are not {rule}: {shown}",
            path,
            where=_labels(kind, bad),
        )
    return out


def _numbers(frame: pd.DataFrame, key: str, path: Path, kind: str) -> np.ndarray:
    col = _find(list(frame.columns), key)
    if col is None:
        return np.full(len(frame), np.nan)
    raw = frame[col]
    values = pd.to_numeric(raw, errors="coerce")
    blank = raw.isna() | raw.astype(str).str.strip().isin(["", "nan", "None"])
    bad = (values.isna() & ~blank) | (values < 0)
    if bad.any():
        raise InputError(
            f"column {col!r} must hold counts of 0 or more",
            path,
            where=_labels(kind, np.flatnonzero(bad.to_numpy())),
        )
    return values.to_numpy(dtype=float)


def _shapefile_encoding(path: Path, encoding: str) -> tuple[str | None, str | None]:
    """Choose the attribute encoding of a shapefile, and say why when it was guessed.

    Rule: a .cpg file decides (GDAL reads it), else an encoding the caller passed other
    than UTF-8 (``--encoding`` is meant for CSV), else the DBF's language byte; with none,
    the records are read as UTF-8 when they decode as UTF-8, else as GB18030 (a superset of GBK, the
    default of Chinese ArcGIS and SuperMap installations).
    """
    data, has_cpg = shapefile_dbf(path)
    if has_cpg:
        return None, None
    if encoding.replace("-", "").lower() not in ("utf8", "utf8sig"):
        return encoding, None
    if data is None or (len(data) > 29 and data[29] != 0):
        return None, None
    header = int.from_bytes(data[8:10], "little") if len(data) >= 10 else 0
    records = data[header:]
    try:
        records.decode("utf-8")
        return "utf-8", None
    except UnicodeDecodeError:
        pass
    try:
        records.decode("gb18030")
    except UnicodeDecodeError:
        return None, None
    return "gb18030", (
        "the attribute table has no .cpg file and is not UTF-8; read it as GBK/GB18030"
    )


def _read_table_units(path: Path, encoding: str) -> tuple[gpd.GeoDataFrame, str]:
    frame = read_table(path, encoding)
    col = _find(list(frame.columns), "wkt")
    if col is None:
        raise InputError(
            f"has no geometry column; a boundary table needs WKT polygons in a column "
            f"named one of {', '.join(ALIASES['wkt'])}",
            path,
        )
    geoms = np.array([geometry_from_text(t) for t in frame[col]], dtype=object)
    bad = np.flatnonzero(shapely.is_missing(geoms) & frame[col].notna().to_numpy())
    if len(bad):
        raise InputError(
            f"column {col!r} holds text that is neither WKT, EWKT nor hex WKB",
            path,
            where=_labels("row", bad),
        )
    frame = frame.drop(columns=[col])
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=None), "row"


def _read_vector_units(
    path: Path, encoding: str, findings: list[dict], level: str
) -> tuple[gpd.GeoDataFrame, str]:
    kwargs = {}
    is_shape = path.suffix.lower() in (".shp", ".zip")
    if is_shape:
        enc, why = _shapefile_encoding(path, encoding)
        if enc:
            kwargs["encoding"] = enc
        if why:
            findings.append(_row("encoding", level, None, None, None, why))
    try:
        frame = gpd.read_file(vector_source(path), engine="pyogrio", **kwargs)
    except InputError:
        raise
    except Exception as exc:  # pyogrio raises several types for unreadable files
        hint = ""
        if isinstance(exc, UnicodeDecodeError) or "codec can't decode" in str(exc):
            hint = "; if its attributes are GBK, pass encoding gbk"
        raise InputError(f"cannot be read as vector data: {exc}{hint}", path) from exc
    if is_shape:
        text = [c for c in frame.columns if c != frame.geometry.name]
        garbled = any(
            frame[c].map(lambda v: isinstance(v, str) and "\ufffd" in v).any() for c in text
        )
        if garbled:
            raise InputError(
                "its attribute text does not decode as UTF-8; pass encoding gbk "
                "(or add a .cpg file naming the encoding)",
                path,
            )
    return frame, "feature"


def _row(kind, level, code, name, geom_wgs, detail, area_m2=np.nan) -> dict:
    x = y = np.nan
    if geom_wgs is not None and not geom_wgs.is_empty:
        p = geom_wgs.representative_point()
        x, y = p.x, p.y
    return {
        "kind": kind,
        "level": level,
        "code": code,
        "name": name,
        "area_m2": area_m2,
        "x": x,
        "y": y,
        "detail": detail,
    }


def _xy_bounds(geoms: np.ndarray) -> np.ndarray:
    return shapely.bounds(geoms)  # (n, 4): xmin, ymin, xmax, ymax


def _zone_hint(x: float) -> str:
    """What to declare for eastings that carry a 3-degree zone number in front (x of 25 to
    45 million): the zone's prefixed CRS, EPSG:4513 (zone 25) to EPSG:4533 (zone 45)."""
    zone = int(abs(x) // 1_000_000)
    if not 25 <= zone <= 45:
        return ""
    return (
        f" (x = {x:,.0f} carries the zone number {zone} in front: declare the prefixed "
        f"zone, --boundary-crs EPSG:{4513 + zone - 25})"
    )


def _in_bbox(b: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return (b[:, 0] >= x0) & (b[:, 2] <= x1) & (b[:, 1] >= y0) & (b[:, 3] <= y1)


def _check_degrees(geoms: np.ndarray, crs_text: str, path: Path, kind: str, codes, names) -> None:
    """Raise for coordinates that cannot be the degrees the file claims: metres, or lon/lat
    swapped (latitude beyond ±90°, or polygons that land outside China while their swapped
    coordinates would land inside it)."""
    b = _xy_bounds(geoms)
    big = np.abs(b).max(axis=1)
    metric = np.flatnonzero(big > METRIC_ABOVE)
    if len(metric):
        i = metric[0]
        raise InputError(
            f"{crs_text}, yet its coordinates reach x={b[i, 0]:.0f}, y={b[i, 1]:.0f}: "
            "these are metres of a projected CRS, not degrees; "
            + projected_crs_hint(b[i, 0], "--boundary-crs"),
            path,
            where=_labels(kind, metric, codes, names),
        )
    lat_over = (np.abs(b[:, 1]) > 90) | (np.abs(b[:, 3]) > 90)
    lon_ok = (np.abs(b[:, 0]) <= 90) & (np.abs(b[:, 2]) <= 90)
    swapped_box = b[:, [1, 0, 3, 2]]
    in_china = _in_bbox(b, CHINA_BBOX)
    swapped_in_china = _in_bbox(swapped_box, CHINA_BBOX)
    swapped = (lat_over & lon_ok) | (~in_china & swapped_in_china)
    if swapped.any():
        i = np.flatnonzero(swapped)[0]
        raise InputError(
            f"longitude and latitude look swapped: the polygons sit at lon {b[i, 0]:.4f}, "
            f"lat {b[i, 1]:.4f}, and swapped they would lie in China; write x as "
            "longitude and y as latitude",
            path,
            where=_labels(kind, np.flatnonzero(swapped), codes, names),
        )
    out = (np.abs(b[:, [0, 2]]) > 180).any(axis=1) | lat_over
    if out.any():
        raise InputError(
            f"{crs_text}, yet its coordinates are out of range (lon ±180°, lat ±90°)",
            path,
            where=_labels(kind, np.flatnonzero(out), codes, names),
        )


def _to_wgs84(
    frame: gpd.GeoDataFrame, path: Path, kind: str, codes, names, crs_given
) -> gpd.GeoDataFrame:
    """Bring ``frame`` to EPSG:4326, checking that the declared CRS fits the coordinates.

    Rules: a file without a CRS (a CSV, a shapefile without .prj) is lon/lat unless its
    coordinates are clearly metres, which raises asking for ``crs=``; ``crs_given``
    overrides what the file declares; coordinates declared as degrees must be degrees
    (:func:`_check_degrees`); a projected CRS's coordinates must not look like degrees and,
    once transformed, must lie within the CRS's area of use (1.5° slack).
    """
    geoms = frame.geometry.to_numpy()
    if crs_given is not None:
        frame = frame.set_crs(CRS.from_user_input(crs_given), allow_override=True)
    elif frame.crs is None:
        b = _xy_bounds(geoms)
        metric = np.flatnonzero(np.abs(b).max(axis=1) > METRIC_ABOVE)
        if len(metric):
            raise InputError(
                "declares no CRS and its coordinates are metres, not degrees; "
                + projected_crs_hint(b[metric[0], 0], "--boundary-crs"),
                path,
                where=_labels(kind, metric, codes, names),
            )
        frame = frame.set_crs(4326)
    crs = frame.crs
    name = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.name
    if crs.is_geographic:
        _check_degrees(geoms, f"it declares {name} (degrees)", path, kind, codes, names)
        return frame.to_crs(4326)
    b = _xy_bounds(geoms)
    degreeish = np.flatnonzero(np.abs(b).max(axis=1) <= 360)
    if len(degreeish) == len(b):
        raise InputError(
            f"declares the projected CRS {name} (metres), yet its coordinates look like "
            f"degrees (x={b[0, 0]:.4f}, y={b[0, 1]:.4f}); "
            "give --boundary-crs EPSG:4326 or fix the .prj",
            path,
            where=_labels(kind, degreeish, codes, names),
        )
    out = frame.to_crs(4326)
    wb = _xy_bounds(out.geometry.to_numpy())
    finite = np.isfinite(wb).all(axis=1)
    aou = crs.area_of_use
    slack = AREA_SLACK_DEG
    box = (
        (aou.west - slack, aou.south - slack, aou.east + slack, aou.north + slack)
        if aou
        else (-180, -90, 180, 90)
    )
    bad = np.flatnonzero(~finite | ~_in_bbox(np.where(finite[:, None], wb, 0), box))
    if len(bad):
        i = bad[0]
        hint = _zone_hint(b[i, 0])
        raise InputError(
            f"its coordinates do not fit its CRS {name}: transformed, they land at "
            f"lon {wb[i, 0]:.3f}, lat {wb[i, 1]:.3f}, outside where {name} is used; "
            f"is the CRS (or the zone) wrong?{hint}",
            path,
            where=_labels(kind, bad, codes, names),
        )
    return out


def repair_and_note(
    geoms: np.ndarray,
    codes: list,
    names: list,
    path: Path,
    kind: str,
    level: str,
    findings: list[dict],
    unnumbered: str,
) -> np.ndarray:
    """Repair invalid polygons (lon/lat) with ``make_valid``, a ``repaired`` finding each
    with the area as drawn and as repaired, and a ``missing_code`` finding per feature
    without a code (``unnumbered`` says what happens to it). A polygon with no area once
    repaired is an :class:`InputError` naming it."""
    geoms = geoms.copy()
    centre = shapely.union_all(shapely.envelope(geoms)).centroid
    metric = metric_crs(centre.x, centre.y)
    for i in np.flatnonzero(~shapely.is_valid(geoms)):
        reason = shapely.is_valid_reason(geoms[i])
        fixed = polygonal(shapely.make_valid(geoms[i]))
        if fixed is None or fixed.is_empty:
            raise InputError(
                f"polygon is invalid ({reason}) and has no area once repaired",
                path,
                where=_label(kind, i, codes[i], names[i]),
            )
        before = gpd.GeoSeries([geoms[i]], crs=4326).to_crs(metric).area.iloc[0]
        after = gpd.GeoSeries([fixed], crs=4326).to_crs(metric).area.iloc[0]
        findings.append(
            _row(
                "repaired",
                level,
                codes[i],
                names[i],
                fixed,
                f"{_label(kind, i)}: invalid polygon ({reason}) repaired with make_valid; "
                f"area {before:.1f} m² as drawn (signed rings), {after:.1f} m² repaired",
                after,
            )
        )
        geoms[i] = fixed
    for i in (i for i, c in enumerate(codes) if c is None):
        findings.append(
            _row(
                "missing_code",
                level,
                None,
                names[i],
                geoms[i],
                f"{_label(kind, i)} carries no {level} code; {unnumbered}",
            )
        )
    return geoms


def _districts(
    frame: pd.DataFrame,
    geoms: np.ndarray,
    codes: list,
    names: list,
    kind: str,
    level: str,
    findings: list[dict],
) -> list[str | None]:
    """Each unit's district code from a district column (None without one); ``geoms`` in
    lon/lat place the name matching. Findings name values that match no division and
    districts that differ from the unit's own code."""
    cols = list(frame.columns)
    col = _find(cols, "district_code") or _find(cols, "district")
    if col is None:
        return [None] * len(frame)
    points = shapely.point_on_surface(geoms)
    out: list[str | None] = []
    for i, value in enumerate(frame[col]):
        code = district.code_of(value, shapely.get_x(points[i]), shapely.get_y(points[i]))
        blank = value is None or pd.isna(value) or str(value).strip() == ""
        if code is None and not blank:
            findings.append(
                _row(
                    "district_unknown",
                    level,
                    codes[i],
                    names[i],
                    geoms[i],
                    f"{_label(kind, i)}: column {col!r} says {value!r}, which names no GB/T "
                    "2260 county-level division near the unit; its district is not known",
                )
            )
        own = codes[i][:6] if codes[i] else None
        if code and own and code != own:
            findings.append(
                _row(
                    "code_mismatch",
                    level,
                    codes[i],
                    names[i],
                    geoms[i],
                    f"{_label(kind, i)}: column {col!r} says district {code} ({value}), but "
                    f"the code starts with {own}; the code's own district is used",
                )
            )
            code = own
        out.append(code)
    return out


def read_units(
    path: str | Path,
    level: str,
    coords: str = "wgs84",
    encoding: str = "utf-8",
    crs: str | int | None = None,
) -> GivenUnits:
    """Read a given street or community boundary file.

    Formats: GeoJSON, GeoPackage, Shapefile (.shp, or zipped), CSV or Excel with WKT
    polygons in a column named ``wkt``/``geometry``/``geom``/``几何``.

    Rules
    -----
    - CRS: whatever the file declares (EPSG:4326, 4490, a CGCS2000 Gauss-Kruger zone, any
      projected CRS with a .prj). A file declaring none is lon/lat, unless its coordinates
      are clearly metres: then an error asks for ``crs``. A declared CRS that cannot fit the
      coordinates (metres declared as degrees, degrees declared as metres, a projected
      CRS landing outside its area of use) and swapped lon/lat are errors naming features.
    - ``coords`` ``gcj02``/``bd09``: lon/lat (after any CRS transformation) are shifted
      back to WGS84 with :func:`wangge.geo.crs.unshift`.
    - Columns are found by alias (:data:`ALIASES`, stripped, case-insensitive): the code
      (a level-specific column such as 社区代码/街道代码 first, then 代码/编码/code/id),
      name, 户数/households, 人口/population, and for communities their street code and
      street name. Codes are normalised (spaces and Excel's ``.0`` removed) and must be
      digits: a street's 9 (or 12 ending in 000, cut to 9), a community's 12. A generic
      ``id`` column whose values are not such codes is ignored (a finding). A missing
      code stays None (a finding); the name is kept. Duplicate codes are an error.
    - District: a district column (区县代码/district_code, else 区县/县/区/district/county)
      gives each unit its own 6-digit district code: digits as they are, a name matched
      to GB/T 2260 near the unit (:func:`wangge.geo.district.code_of`). A name that matches
      nothing, or a district other than the one the unit's code starts with, is a finding.
    - Text: CSV in ``encoding`` (an error suggests ``encoding gbk`` when UTF-8 fails and
      GBK reads); shapefile attributes per ``.cpg``, else detected UTF-8 or GB18030.
    - Geometry: empty/missing and non-polygon features are errors; invalid polygons
      (self-intersections) are repaired with ``make_valid`` and listed as findings.

    Parameters
    ----------
    path
        The file.
    level
        ``"street"`` or ``"community"``.
    coords
        ``"wgs84"`` (also for CGCS2000), ``"gcj02"`` or ``"bd09"``.
    encoding
        Text encoding of a CSV, or of shapefile attributes when the caller knows better
        than the file.
    crs
        The CRS of a file that declares none (a CSV); overrides a declared one.

    Returns
    -------
    GivenUnits
        The units in EPSG:4326 and the findings.

    Raises
    ------
    InputError
        Naming the file and the feature (vector files, from 1) or row (tables, header is
        row 1) for every problem above.
    """
    path = Path(path)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    findings: list[dict] = []
    lower = path.name.lower()
    if lower.endswith(TABLE_SUFFIXES):
        frame, kind = _read_table_units(path, encoding)
    else:
        _check_file(path, VECTOR_SUFFIXES)
        frame, kind = _read_vector_units(path, encoding, findings, level)
    if frame.empty:
        raise InputError("holds no features", path)
    frame = frame.reset_index(drop=True)
    cols = list(frame.columns)

    # codes and names
    own = _find(cols, f"{level}_code")
    generic = _find(cols, "code")
    code_col = own or generic
    if level == "street" and own is None and generic is None:
        code_col = None
    codes: list[str | None] = [None] * len(frame)
    if code_col is not None:
        try:
            codes = _codes(frame[code_col], level, code_col, path, kind)
        except InputError:
            if str(code_col).strip().lower() != "id":
                raise
            findings.append(
                _row(
                    "column_ignored",
                    level,
                    None,
                    None,
                    None,
                    f"column {code_col!r} holds no {level} codes (a row id?), so it is not "
                    "read as the code",
                )
            )
            code_col = None
    name_col = _find(cols, f"{level}_name") or _find(cols, "name")
    names = [
        None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v).strip()
        for v in (frame[name_col] if name_col is not None else [None] * len(frame))
    ]
    street_codes: list[str | None] = [None] * len(frame)
    street_names: list[str | None] = [None] * len(frame)
    if level == "community":
        sc = _find(cols, "street_code")
        if sc is not None and sc != code_col:
            street_codes = _codes(frame[sc], "street", sc, path, kind)
            for code, name, street in zip(codes, names, street_codes, strict=True):
                if code and len(code) == 12 and street and code[:9] != street:
                    findings.append(
                        _row(
                            "code_mismatch",
                            level,
                            code,
                            name,
                            None,
                            f"code {code} starts with street {code[:9]}, but its column "
                            f"{sc!r} says {street}; the code's own prefix is used",
                        )
                    )
        sn = _find(cols, "street_name")
        if sn is not None and sn != name_col:
            street_names = [
                None if pd.isna(v) or str(v).strip() == "" else str(v).strip() for v in frame[sn]
            ]

    require_unique(codes, names, path, kind, f"{level} codes")
    geoms = require_polygons(frame.geometry.to_numpy(), codes, names, path, kind, "boundaries")
    frame = frame.set_geometry(gpd.GeoSeries(geoms, crs=frame.crs))
    source = CRS.from_user_input(crs) if crs else frame.crs
    shifted = str(coords).strip().lower().replace("-", "") != "wgs84"
    if shifted and source is not None and not source.is_geographic:
        raise InputError(
            f"--boundary-coords {coords} applies to longitude/latitude, but the file is in "
            f"{source.name}: its CRS places it, so leave the option out",
            path,
        )
    frame = _to_wgs84(frame, path, kind, codes, names, crs)
    geoms = frame.geometry.to_numpy()
    geoms = unshift(geoms, coords)

    geoms = repair_and_note(
        geoms, codes, names, path, kind, level, findings, "one will be assigned"
    )
    districts = _districts(frame, geoms, codes, names, kind, level, findings)
    out = gpd.GeoDataFrame(
        {
            "code": pd.Series(codes, dtype=object),
            "name": pd.Series(names, dtype=object),
            "households": _numbers(frame, "households", path, kind),
            "population": _numbers(frame, "population", path, kind),
            "street_code": pd.Series(street_codes, dtype=object),
            "street_name": pd.Series(street_names, dtype=object),
            "district_code": pd.Series(districts, dtype=object),
        },
        geometry=gpd.GeoSeries(geoms, crs=4326),
        crs=4326,
    )
    return GivenUnits(frame=out, findings=_findings(findings), source=path, level=level)
