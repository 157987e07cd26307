"""Read a community risk register (风险清单), risk zones, vulnerable-person counts and facilities.

Each reader finds its columns by alias (Chinese or English, case-insensitive, trimmed),
checks every row and raises :class:`~wangge.errors.InputError` naming the file and the
spreadsheet rows (header = row 1) or features (counting from 1) that are wrong.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.untrusted import check_file as check_untrusted
from wangge.data.userfiles import (
    COLUMN_NAMES,
    MAX_SNAP_M,
    TABLE_SUFFIXES,
    building_at,
    read_table,
    read_vector,
    table_points,
)
from wangge.errors import InputError
from wangge.geo.crs import gcj02_to_wgs84, metric_crs
from wangge.geo.rules import Rules

#: Accepted column names of each field, matched case-insensitively after trimming.
ALIASES = {
    "name": ("名称", "风险点名称", "隐患名称", "风险区名称", "设施名称", "name"),
    "category": ("类别", "风险类别", "分类", "category", "type"),
    "address": ("地址", "位置", "address"),
    "L": ("L", "可能性", "likelihood"),
    "S": ("S", "严重性", "severity"),
    "E": ("E", "暴露频率", "exposure"),
    "C": ("C", "后果", "consequence"),
    "responsible": ("责任单位", "责任人", "责任主体", "responsible"),
    "id": ("编号", "风险编号", "id"),
    "sample": ("sample", "样例"),
    "kind": ("kind", "类型", "风险区类型"),
    "type": ("类型", "设施类型", "type"),
    "capacity": ("容量", "可容纳人数", "capacity"),
    "area": ("面积", "有效面积", "area", "area_m2"),
    "facility_id": ("编号", "设施编号", "facility_id", "id"),
    "elderly": ("老年人", "高龄", "elderly"),
    "disabled": ("残疾人", "disabled"),
    "alone": ("独居", "living_alone", "alone"),
    **COLUMN_NAMES,
}
#: Column names that look like personal data: a vulnerable-person file must not hold them.
#: Chinese fragments match anywhere in a column name, English words match a whole word.
PERSONAL_FRAGMENTS = ("姓名", "身份证", "电话", "手机", "联系方式")
PERSONAL_WORDS = ("name", "id_card", "idcard", "id_number", "phone", "mobile", "telephone", "tel")
#: Output columns of :func:`read_risks` and :func:`read_facilities`, in order.
RISK_COLUMNS = (
    "risk_id", "name", "category", "category_zh", "address", "L", "S", "E", "C",
    "responsible", "kind", "sample", "row", "geometry",
)  # fmt: skip
FACILITY_COLUMNS = (
    "facility_id", "name", "type", "type_zh", "capacity", "area_m2", "source", "sample", "row",
    "geometry",
)  # fmt: skip
VULNERABLE_COLUMNS = ("elderly", "disabled", "alone")
_TRUE = {"1", "1.0", "true", "yes", "y", "t", "是", "样例", "sample"}
_POINTS = ("Point",)
_POLYGONS = ("Polygon", "MultiPolygon")


def find_column(columns, field: str) -> str | None:
    """The column of ``columns`` that holds ``field`` by :data:`ALIASES`, or None."""
    lower = {str(c).strip().lower(): c for c in columns if str(c) != "geometry"}
    for alias in ALIASES[field]:
        if alias.lower() in lower:
            return lower[alias.lower()]
    return None


def _accepted(field: str) -> str:
    return f"{field} ({', '.join(ALIASES[field])})"


class _Source:
    """A user's file read into rows, with the words that name a row in errors."""

    def __init__(self, path: Path, encoding: str, gcj02: bool):
        self.path = path
        self.gcj02 = gcj02
        self.is_table = path.name.lower().endswith(TABLE_SUFFIXES)
        if self.is_table:
            if path.suffix.lower() == ".xlsx" and path.exists():
                check_untrusted(path)  # before openpyxl reads its header
                _check_merged_header(path)
            frame = read_table(path, encoding)
            self.frame = frame.reset_index(drop=True)
            self.numbers = np.arange(len(frame)) + 2  # header = row 1
            self.word = "row"
        else:
            frame, _ = read_vector(path)
            if gcj02:
                frame = frame.set_geometry(_gcj02_geoms(frame.geometry.to_numpy()), crs=4326)
            self.frame = frame.reset_index(drop=True)
            self.numbers = np.arange(len(frame)) + 1
            self.word = "feature"
        self.columns = [c for c in self.frame.columns if str(c) != "geometry"]

    def col(self, field: str) -> str | None:
        return find_column(self.columns, field)

    def where(self, mask: np.ndarray) -> str:
        """``"row 5, 7"`` (or ``"feature 3"``) for the first ten true entries of ``mask``."""
        mask = np.asarray(mask, dtype=bool)
        nums = self.numbers[mask][:10]
        more = " …" if mask.sum() > 10 else ""
        return f"{self.word} " + ", ".join(str(n) for n in nums) + more

    def fail(self, problem: str, mask: np.ndarray | None = None) -> InputError:
        where = self.where(mask) if mask is not None else None
        return InputError(problem, self.path, where=where)

    def header_fail(self, problem: str) -> InputError:
        return InputError(problem, self.path, where="row 1 (header)" if self.is_table else None)

    def text(self, field: str) -> np.ndarray:
        """The field's cells as trimmed strings ('' where blank or absent)."""
        col = self.col(field)
        if col is None:
            return np.full(len(self.frame), "", dtype=object)
        return np.array([_cell_text(v) for v in self.frame[col]], dtype=object)

    def numbers_of(self, field: str) -> np.ndarray:
        """The field's cells as floats (NaN where blank or absent); text that is not a
        number is an error naming its rows."""
        col = self.col(field)
        if col is None:
            return np.full(len(self.frame), np.nan)
        raw = self.frame[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        blank = np.array([_cell_text(v) == "" for v in raw])
        bad = np.isnan(values) & ~blank
        if bad.any():
            raise self.fail(f"column {col!r} must hold numbers", bad)
        return values

    def sample(self) -> np.ndarray:
        return np.array([t.lower() in _TRUE for t in self.text("sample")], dtype=bool)

    def points(self) -> gpd.GeoSeries:
        """WGS84 points: lon/lat of a table, or the file's point features."""
        if self.is_table:
            if self.col("lon") is None or self.col("lat") is None:
                raise self.header_fail(
                    "has no lon/lat columns; expected one of "
                    f"{', '.join(COLUMN_NAMES['lon'])} and {', '.join(COLUMN_NAMES['lat'])}"
                )
            return table_points(self.frame, self.path, self.gcj02).geometry
        return self.frame.geometry

    def check_geom_types(self, types: tuple[str, ...], what: str) -> None:
        bad = ~self.frame.geom_type.isin(types).to_numpy()
        if bad.any():
            raise self.fail(f"features must be {what}", bad)


def _cell_text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _gcj02_geoms(geoms: np.ndarray) -> np.ndarray:
    def shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, shift)


def _check_merged_header(path: Path) -> None:
    """Refuse a workbook whose header row (row 1 of the first sheet) has merged cells."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=False)
    except Exception:
        return  # read_table names the problem
    try:
        ws = wb.worksheets[0]
        merged = [r for r in ws.merged_cells.ranges if r.min_row <= 1]
    finally:
        wb.close()
    if merged:
        ranges = ", ".join(str(r.coord) for r in merged[:5])
        raise InputError(
            f"the header row has merged cells ({ranges}); unmerge them so each column has "
            "its own header in row 1 (and delete any title row above the header)",
            path,
            where=f"sheet {ws.title!r}, row 1",
        )


def _require(src: _Source, fields: tuple[str, ...]) -> None:
    missing = [f for f in fields if src.col(f) is None]
    if missing:
        raise src.header_fail("missing column(s): " + "; ".join(_accepted(f) for f in missing))


def _names(src: _Source) -> np.ndarray:
    names = src.text("name")
    empty = names == ""
    if empty.any():
        raise src.fail("the name is empty", empty)
    return names


def _duplicates(src: _Source, keys: np.ndarray, what: str) -> None:
    dup = pd.Series(keys).duplicated(keep=False).to_numpy()
    if dup.any():
        shown = ", ".join(list(dict.fromkeys(str(k) for k in keys[dup]))[:5])
        raise src.fail(f"duplicate {what} ({shown})", dup)


def _ids(src: _Source, field: str, prefix: str) -> np.ndarray:
    """Ids from the id column, or ``prefix`` + a 4-digit number in file order where blank."""
    given = src.text(field)
    generated = np.array([f"{prefix}{i + 1:04d}" for i in range(len(given))], dtype=object)
    ids = np.where(given == "", generated, given)
    _duplicates(src, ids, "ids")
    return ids


def _check_inside(src: _Source, geoms: np.ndarray, study_area, predicate: str, what: str) -> None:
    """Rows whose geometry the study area does not ``covers`` (points) or ``intersects``
    (zones) are an error; the message hints at GCJ-02 if converting would bring them in."""
    if study_area is None:
        return
    test = getattr(shapely, predicate)
    out = ~test(study_area, geoms)
    if not out.any():
        return
    hint = ""
    if not src.gcj02 and test(study_area, _gcj02_geoms(geoms[out])).any():
        hint = "; are these GCJ-02 (火星坐标)? pass gcj02=True / --gcj02"
    raise src.fail(f"{what} outside the study area{hint}", out)


def _whole_in(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.isclose(values, np.round(values)) & (values >= lo) & (values <= hi)


def _scores(src: _Source, rules: Rules) -> dict[str, np.ndarray]:
    """L, S, E, C of each row, checked against the matrix scale and the LEC value lists."""
    vals = {f: src.numbers_of(f) for f in ("L", "S", "E", "C")}
    L, S, E, C = (vals[f] for f in ("L", "S", "E", "C"))
    has_s = ~np.isnan(S)
    has_e, has_c = ~np.isnan(E), ~np.isnan(C)
    both = has_s & (has_e | has_c)
    if both.any():
        raise src.fail("has both S (matrix) and E/C (LEC); give one method per row", both)
    neither = ~has_s & ~has_e & ~has_c
    if neither.any():
        raise src.fail("has neither S (matrix) nor E and C (LEC)", neither)
    half = has_e ^ has_c
    if half.any():
        raise src.fail("LEC needs both E and C", half)
    no_l = np.isnan(L)
    if no_l.any():
        raise src.fail("L (likelihood, 可能性) is empty", no_l)
    lo, hi = rules.matrix["scale"]
    bad_m = has_s & ~(_whole_in(L, lo, hi) & _whole_in(S, lo, hi))
    if bad_m.any():
        raise src.fail(f"matrix L and S must be whole numbers {lo}–{hi}", bad_m)
    lec = ~has_s
    for f, v in (("L", L), ("E", E), ("C", C)):
        allowed = np.asarray(rules.lec[f], dtype=float)
        ok = np.isclose(v[:, None], allowed[None, :]).any(axis=1)
        bad = lec & ~ok
        if bad.any():
            raise src.fail(f"LEC {f} must be one of {', '.join(f'{a:g}' for a in allowed)}", bad)
    return vals


def read_risks(
    path: str | Path,
    rules: Rules,
    study_area: shapely.Geometry | None = None,
    *,
    zones: bool = False,
    encoding: str = "utf-8",
    gcj02: bool = False,
) -> gpd.GeoDataFrame:
    """Read a risk register (风险清单) of points, or a file of risk zones.

    Rows are scored by the 5×5 matrix (``L`` and ``S``, whole numbers 1–5) or by LEC
    (``L``, ``E``, ``C`` from the rules' value lists), one method per row.

    Parameters
    ----------
    path
        Points: a CSV or XLSX with lon/lat columns, or GeoJSON/GPKG points. Zones
        (``zones=True``): GeoJSON, GPKG or zipped Shapefile polygons.
    rules
        From :func:`wangge.geo.rules.load_rules`: categories, matrix scale, LEC values.
    study_area
        WGS84 polygon: points must lie within it, zones must intersect it.
    zones
        Read risk zones (polygons) instead of risk points.
    encoding
        Text encoding of a CSV file (``gbk`` for files saved by Chinese Excel).
    gcj02
        Coordinates are GCJ-02 (as from AMap or Tencent maps); they are converted.

    Returns
    -------
    geopandas.GeoDataFrame
        WGS84, with columns :data:`RISK_COLUMNS`: ``risk_id`` (the id column, else
        ``R0001``/``Z0001`` in file order), ``name``, ``category`` (key), ``category_zh``,
        ``address``, ``L``, ``S``, ``E``, ``C`` (NaN where absent), ``responsible``,
        ``kind`` (zones; '' for points), ``sample``, ``row`` and ``geometry``.

    Raises
    ------
    wangge.errors.InputError
        Naming the file and the rows for missing columns, bad scores, unknown
        categories, empty or duplicate names and rows outside the study area.
    """
    src = _Source(Path(path), encoding, gcj02)
    if zones and src.is_table:
        raise InputError("risk zones must be a polygon file (GeoJSON, GPKG, zipped SHP)", path)
    _require(src, ("name", "category", "L"))
    if src.col("S") is None and (src.col("E") is None or src.col("C") is None):
        raise src.header_fail(
            f"missing column(s): {_accepted('S')}, or both {_accepted('E')} and {_accepted('C')}"
        )
    if src.is_table:
        src.points()  # names missing lon/lat columns before the rows are checked
    names = _names(src)
    _duplicates(src, names, "names")
    raw_cat = src.text("category")
    category = np.array([rules.category(c) for c in raw_cat], dtype=object)
    unknown = pd.isna(category)
    if unknown.any():
        shown = ", ".join(list(dict.fromkeys(raw_cat[unknown]))[:5])
        raise src.fail(f"unknown category ({shown}); accepted: {rules.category_names()}", unknown)
    vals = _scores(src, rules)
    if zones:
        src.check_geom_types(_POLYGONS, "polygons (risk zones)")
        geoms = src.frame.geometry.to_numpy()
        _check_inside(src, geoms, study_area, "intersects", "risk zones lie")
    else:
        if not src.is_table:
            src.check_geom_types(_POINTS, "points (pass zones=True for risk zones)")
        geoms = src.points().to_numpy()
        _check_inside(src, geoms, study_area, "covers", "risk points lie")
    out = pd.DataFrame(
        {
            "risk_id": _ids(src, "id", "Z" if zones else "R"),
            "name": names,
            "category": category.astype(str),
            "category_zh": [rules.categories[c]["zh"] for c in category],
            "address": src.text("address"),
            **vals,
            "responsible": src.text("responsible"),
            "kind": src.text("kind") if zones else "",
            "sample": src.sample(),
            "row": src.numbers.astype(int),
        }
    )
    return gpd.GeoDataFrame(out, geometry=geoms, crs=4326)[list(RISK_COLUMNS)]


def read_facilities(
    path: str | Path,
    rules: Rules,
    study_area: shapely.Geometry | None = None,
    *,
    encoding: str = "utf-8",
    gcj02: bool = False,
) -> gpd.GeoDataFrame:
    """Read a user's facility file: facilities OSM lacks (AEDs, clinics, shelters, …).

    Parameters
    ----------
    path
        A CSV or XLSX with lon/lat columns, or GeoJSON/GPKG points or polygons.
    rules
        From :func:`wangge.geo.rules.load_rules`: the facility types.
    study_area
        WGS84 polygon every facility (a polygon's representative point) must lie in.
    encoding
        Text encoding of a CSV file.
    gcj02
        Coordinates are GCJ-02; they are converted.

    Returns
    -------
    geopandas.GeoDataFrame
        WGS84 points with columns :data:`FACILITY_COLUMNS`: ``facility_id`` (the id
        column, else ``U0001`` in file order), ``name``, ``type`` (rules key),
        ``type_zh``, ``capacity`` (persons), ``area_m2`` (the area column, else a
        polygon's area in the local metric CRS), ``source`` (``user`` or ``sample``),
        ``sample``, ``row`` and ``geometry``.

    Raises
    ------
    wangge.errors.InputError
        Naming the file and the rows for missing columns, unknown types, negative or
        non-numeric capacity or area, duplicate names of one type and rows outside the
        study area.
    """
    src = _Source(Path(path), encoding, gcj02)
    _require(src, ("name", "type"))
    if src.is_table:
        src.points()
    names = _names(src)
    raw_type = src.text("type")
    ftype = np.array([rules.facility_type(t) for t in raw_type], dtype=object)
    unknown = pd.isna(ftype)
    if unknown.any():
        shown = ", ".join(list(dict.fromkeys(raw_type[unknown]))[:5])
        accepted = ", ".join(f"{f.zh} ({k})" for k, f in rules.facilities.items())
        raise src.fail(f"unknown facility type ({shown}); accepted: {accepted}", unknown)
    _duplicates(src, np.array([f"{t}: {n}" for t, n in zip(ftype, names, strict=True)]), "names")
    capacity = src.numbers_of("capacity")
    area = src.numbers_of("area")
    for label, v in (("capacity", capacity), ("area", area)):
        neg = v < 0
        if neg.any():
            raise src.fail(f"{label} must be 0 or more", neg)
    if src.is_table:
        geoms = src.points().to_numpy()
    else:
        src.check_geom_types(_POINTS + _POLYGONS, "points or polygons")
        shapes = src.frame.geometry
        polygon = shapes.geom_type.isin(_POLYGONS).to_numpy()
        if polygon.any():
            c = shapes.union_all().centroid
            metric = shapes.to_crs(metric_crs(c.x, c.y)).area.to_numpy()
            area = np.where(polygon & np.isnan(area), metric, area)
        geoms = shapes.representative_point().to_numpy()
    _check_inside(src, geoms, study_area, "covers", "facilities lie")
    sample = src.sample()
    out = pd.DataFrame(
        {
            "facility_id": _ids(src, "facility_id", "U"),
            "name": names,
            "type": ftype.astype(str),
            "type_zh": [rules.facilities[t].zh for t in ftype],
            "capacity": capacity,
            "area_m2": area,
            "source": np.where(sample, "sample", "user"),
            "sample": sample,
            "row": src.numbers.astype(int),
        }
    )
    return gpd.GeoDataFrame(out, geometry=geoms, crs=4326)[list(FACILITY_COLUMNS)]


def _personal_columns(columns) -> list[str]:
    found = []
    for c in columns:
        text = str(c).strip().lower()
        words = set(text.replace("-", "_").replace(" ", "_").split("_")) | {text}
        if any(f in text for f in PERSONAL_FRAGMENTS) or words & set(PERSONAL_WORDS):
            found.append(str(c))
    return found


def _building_of_rows(src: _Source, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """The building id of each row (None where none matches): by id column, else location.

    As :func:`wangge.data.userfiles.read_households`: ids like ``123456`` become
    ``w123456``; a point (or a polygon's representative point) joins the building it lies
    in, else one within :data:`~wangge.data.userfiles.MAX_SNAP_M` metres.
    """
    id_col = src.col("building_id")
    known_ids = set(buildings["building_id"])
    if id_col is not None:
        ids = pd.Series(src.text("building_id"))
        ids = ids.where(~ids.str.fullmatch(r"\d+"), "w" + ids).to_numpy(dtype=object)
        known = np.array([i in known_ids for i in ids])
        has_location = not src.is_table or (src.col("lon") and src.col("lat"))
        if known.any() or not has_location:
            if not known.any():
                raise src.header_fail(
                    f"none of the ids in column {id_col!r} match a building of the study "
                    "area (ids look like w123456 or 123456)"
                )
            _duplicates(src, ids, "building ids")
            return np.where(known, ids, None)
    pts = gpd.GeoSeries(src.points().to_numpy(), crs=4326).to_crs(buildings.crs)
    where = building_at(pts.representative_point().to_numpy(), buildings)
    matched = where >= 0
    if not matched.any():
        raise InputError(
            f"no row lies in or within {MAX_SNAP_M:g} m of a building of the study area; are "
            "the coordinates in another CRS, or GCJ-02 without --gcj02?",
            src.path,
        )
    return np.where(matched, buildings["building_id"].to_numpy()[np.maximum(where, 0)], None)


def read_vulnerable(
    path: str | Path,
    buildings: gpd.GeoDataFrame,
    *,
    encoding: str = "utf-8",
    gcj02: bool = False,
) -> pd.DataFrame:
    """Read vulnerable-person counts (重点人群) per building: aggregated counts only.

    The file holds ``elderly`` (老年人), ``disabled`` (残疾人) and/or ``alone`` (独居)
    counts per row, joined to ``buildings`` by a building id column or by location (as
    household files are). Blank cells count 0; rows in one building add up. Rows that
    match no building are left out and listed in ``attrs["unmatched_rows"]``.

    Parameters
    ----------
    path
        A CSV or XLSX (building id or lon/lat), or GeoJSON/GPKG points or polygons.
    buildings
        Buildings in a metric CRS, with ``building_id``.
    encoding
        Text encoding of a CSV file.
    gcj02
        Coordinates are GCJ-02; they are converted.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``building_id``, int columns ``elderly``, ``disabled``, ``alone`` (0
        where the file has no such column); ``attrs["sample"]`` is True when every row is
        flagged sample.

    Raises
    ------
    wangge.errors.InputError
        For columns that look like personal data (names, ID card or phone numbers), no
        count column, counts that are not whole numbers of 0 or more, and files none of
        whose rows match a building.
    """
    src = _Source(Path(path), encoding, gcj02)
    personal = _personal_columns(src.columns)
    if personal:
        raise src.header_fail(
            f"column {personal[0]!r} looks like personal data; only aggregated counts per "
            "building (老年人/残疾人/独居 numbers) are accepted, so delete the column"
        )
    present = [f for f in VULNERABLE_COLUMNS if src.col(f) is not None]
    if not present:
        raise src.header_fail(
            "has no count column; expected at least one of "
            + "; ".join(_accepted(f) for f in VULNERABLE_COLUMNS)
        )
    counts = {}
    for f in VULNERABLE_COLUMNS:
        v = np.nan_to_num(src.numbers_of(f), nan=0.0)
        bad = (v < 0) | ~np.isclose(v, np.round(v))
        if bad.any():
            raise src.fail(f"column {src.col(f)!r} must be a whole count of 0 or more", bad)
        counts[f] = np.round(v).astype(int)
    ids = _building_of_rows(src, buildings)
    matched = ~pd.isna(ids)
    data = pd.DataFrame(counts)[matched].assign(building_id=ids[matched])
    out = data.groupby("building_id")[list(VULNERABLE_COLUMNS)].sum().astype(int)
    out.attrs["sample"] = bool(src.sample().all())
    out.attrs["unmatched_rows"] = src.numbers[~matched].astype(int).tolist()
    return out
