"""Export one plan layer as a GeoJSON, GeoPackage or zipped Shapefile for city GIS teams."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from wangge.errors import InputError
from wangge.geo.crs import wgs84_to_gcj02

EXPORT_FORMATS = ("geojson", "gpkg", "shp")
#: CRSs named in messages as the common choices.
EXPORT_CRS = ("EPSG:4326", "EPSG:4490", "EPSG:4547", "EPSG:4549", "GCJ02")
#: The EPSG code families an export takes: WGS84, CGCS2000 and Web Mercator; CGCS2000's
#: Gauss-Kruger zones (3° and 6°, with and without the zone number, 4491–4554); WGS84 UTM
#: (north and south); Xi'an 1980 (2327–2390) and Beijing 1954 (2401–2442) Gauss-Kruger,
#: which older city data still uses. A code pyproj does not know as a 2D CRS is left out.
_CRS_FAMILIES = (
    (4326, 4490, 3857),
    range(4491, 4555),
    range(32601, 32661),
    range(32701, 32761),
    range(2327, 2391),
    range(2401, 2443),
)


@lru_cache(maxsize=1)
def accepted_crs() -> tuple[str, ...]:
    """Every CRS an export takes, as ``EPSG:<code>`` (and ``GCJ02``): one list for the
    CLI's check and the API's schema, so the schema promises what the server does."""
    out = []
    for family in _CRS_FAMILIES:
        for code in family:
            try:
                parsed = CRS.from_epsg(code)
            except CRSError:
                continue
            if (parsed.is_geographic or parsed.is_projected) and len(parsed.axis_info) == 2:
                out.append(f"EPSG:{code}")
    return (*out, "GCJ02")


EXPORT_ENCODINGS = ("UTF-8", "GBK")

MEDIA_TYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
}
SUFFIXES = {"geojson": "geojson", "gpkg": "gpkg", "shp": "zip"}

#: Short DBF names for wangge's column names (a Shapefile field name holds 10 bytes).
#: ``hh`` and ``pop`` are names that :mod:`wangge.data.userfiles` reads back as counts.
DBF_NAMES = {
    "households": "hh",
    "population": "pop",
    "parent_code": "parent",
    "deviation_pct": "dev_pct",
    "polsby_popper": "pp",
    "microgrid_code": "micro_code",
    "record_codes": "rec_codes",
    "polygon_code": "poly_code",
    "building_id": "bldg_id",
    "compound_id": "cmpd_id",
    "footprint_m2": "foot_m2",
    "levels_source": "lvl_src",
    "residential": "resid",
    "residential_share": "res_share",
    "ground_floor_shops": "gf_shops",
    "household_source": "hh_source",
    "admin_level": "admin_lvl",
    "building_use": "bldg_use",
    "n_buildings": "n_bldgs",
    "n_residential": "n_resid",
    "cuts_blocks": "cuts_blks",
}
DBF_NAME_BYTES = 10
DBF_TEXT_BYTES = 254

GCJ02_NOTE = (
    "Coordinates are GCJ-02 (火星坐标, as used by AMap and Tencent maps): WGS84 longitude/"
    "latitude shifted by the GCJ-02 offset. They are labelled EPSG:4326 because GCJ-02 has "
    "no EPSG code; do not overlay them on WGS84 data without converting back."
)

_ENCODING_ALIASES = {"UTF-8": "UTF-8", "UTF8": "UTF-8", "GBK": "GBK", "CP936": "GBK"}
_PY_CODECS = {"UTF-8": "utf-8", "GBK": "gbk"}
_FAMILIES = {
    "Point": "point",
    "MultiPoint": "point",
    "LineString": "line",
    "LinearRing": "line",
    "MultiLineString": "line",
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
}


@dataclass(frozen=True)
class Export:
    """A layer as a downloadable file.

    Attributes
    ----------
    content
        The file's bytes.
    media_type
        ``application/geo+json``, ``application/geopackage+sqlite3`` or ``application/zip``.
    filename
        The name to offer for download, such as ``grids.geojson``.
    """

    content: bytes
    media_type: str
    filename: str


def export_layer(
    frame: gpd.GeoDataFrame,
    layer: str,
    fmt: str = "geojson",
    crs: str = "EPSG:4326",
    encoding: str = "UTF-8",
) -> Export:
    """Write one layer as GeoJSON, GeoPackage or a zipped Shapefile in the CRS asked for.

    Lists and dicts in attribute columns are written as JSON text and datetimes as ISO 8601
    strings. GeoJSON follows RFC 7946 (UTF-8, polygons counter-clockwise); in a CRS other
    than EPSG:4326 it carries a legacy ``crs`` member naming the EPSG code. The Shapefile zip
    holds ``.shp``, ``.shx``, ``.dbf``, ``.prj``, a ``.cpg`` naming the encoding, and
    ``fields.csv`` mapping each column to its 10-byte DBF name (see :func:`dbf_field_names`).
    GCJ-02 exports are labelled EPSG:4326 and say that they are GCJ-02 in a ``crs_note``
    GeoJSON member, the GeoPackage layer description or a ``crs_note.txt`` in the zip.

    Parameters
    ----------
    frame
        The layer, in any CRS (it must have one).
    layer
        The layer's name, used for the file and GeoPackage layer (letters, digits, ``_``, ``-``).
    fmt
        One of :data:`EXPORT_FORMATS`.
    crs
        One of :func:`accepted_crs` (any case). ``GCJ02`` is WGS84 shifted
        with :func:`wangge.geo.crs.wgs84_to_gcj02`.
    encoding
        One of :data:`EXPORT_ENCODINGS`; ``GBK`` only for Shapefiles.

    Returns
    -------
    Export
        The bytes, media type and file name.

    Raises
    ------
    InputError
        For an unknown format, CRS or encoding (``where`` names the argument), a frame without
        a CRS, coordinates the CRS cannot represent, and for Shapefiles: mixed geometry types,
        text that does not fit the encoding or the DBF's 254 bytes (naming the feature and field).
    """
    fmt_key = _check_format(fmt)
    crs_key, target = _check_crs(crs)
    enc_key = _check_encoding(encoding, fmt_key)
    if not re.fullmatch(r"[\w\-]+", layer or ""):
        raise InputError(
            f"layer name {layer!r} must be letters, digits, '_' or '-' (it names the file)",
            where="layer",
        )
    if not isinstance(frame, gpd.GeoDataFrame) or frame.active_geometry_name is None:
        raise InputError("has no geometry; only map layers can be exported", source=layer)
    if frame.crs is None:
        raise InputError("has no CRS; set one before exporting", source=layer)
    out = _reproject(_plain_columns(frame), crs_key, target, layer)
    if fmt_key == "geojson":
        content = _geojson(out, layer, crs_key)
    elif fmt_key == "gpkg":
        content = _geopackage(out, layer, crs_key)
    else:
        content = _shapefile_zip(out, layer, crs_key, enc_key)
    return Export(content, MEDIA_TYPES[fmt_key], f"{layer}.{SUFFIXES[fmt_key]}")


def dbf_field_names(columns: list[str], encoding: str = "UTF-8") -> dict[str, str]:
    """Map column names to unique DBF field names of at most 10 bytes in ``encoding``.

    Names in :data:`DBF_NAMES` take their short form. Other names that fit keep their own;
    longer ones are cut to fit. A name already taken (DBF names ignore case) gets ``_1``,
    ``_2``... in place of its last characters. The result depends only on ``columns``.

    Parameters
    ----------
    columns
        Attribute column names, in order.
    encoding
        ``UTF-8`` or ``GBK``: the byte length of a Chinese name depends on it.

    Returns
    -------
    dict
        Column name to DBF field name, in the order of ``columns``.
    """
    codec = _PY_CODECS[_ENCODING_ALIASES.get(encoding.upper(), "UTF-8")]
    names = [str(c) for c in columns]
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:  # names that fit keep them, before any long name is cut to fit
        fits = len(name.encode(codec, errors="replace")) <= DBF_NAME_BYTES
        if name and name not in DBF_NAMES and fits and name.casefold() not in taken:
            out[name] = name
            taken.add(name.casefold())
    for name in names:
        if name in out:
            continue
        want = DBF_NAMES.get(name) or _cut(name, DBF_NAME_BYTES, codec) or "field"
        short, n = want, 0
        while short.casefold() in taken:
            n += 1
            suffix = f"_{n}"
            short = _cut(want, DBF_NAME_BYTES - len(suffix), codec) + suffix
        out[name] = short
        taken.add(short.casefold())
    return {name: out[name] for name in names}


def _cut(text: str, size: int, codec: str) -> str:
    """The longest prefix of ``text`` whose encoding takes at most ``size`` bytes."""
    while len(text.encode(codec, errors="replace")) > size:
        text = text[:-1]
    return text


def _check_format(fmt: str) -> str:
    key = str(fmt).strip().lower()
    if key not in EXPORT_FORMATS:
        raise InputError(
            f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}",
            where="format",
        )
    return key


def _check_crs(crs: str) -> tuple[str, CRS]:
    key = str(crs).strip().upper()
    if key in ("GCJ02", "GCJ-02"):
        return "GCJ02", CRS.from_epsg(4326)
    match = re.fullmatch(r"EPSG:(\d{1,9})", key)
    if match and f"EPSG:{int(match.group(1))}" in accepted_crs():
        return f"EPSG:{int(match.group(1))}", CRS.from_epsg(int(match.group(1)))
    raise InputError(
        f"unknown or unusable CRS {crs!r}; use one of {', '.join(EXPORT_CRS)} or another "
        "CGCS2000, WGS84 UTM, Xi'an 1980 or Beijing 1954 zone, such as EPSG:4548",
        where="crs",
    )


def _check_encoding(encoding: str, fmt: str) -> str:
    key = _ENCODING_ALIASES.get(str(encoding).strip().upper())
    if key is None:
        raise InputError(
            f"unknown encoding {encoding!r}; use one of {', '.join(EXPORT_ENCODINGS)}",
            where="encoding",
        )
    if key != "UTF-8" and fmt != "shp":
        raise InputError(f"encoding {key} applies to Shapefile exports only", where="encoding")
    return key


def _feature(frame: pd.DataFrame, i: int) -> str:
    """Name feature ``i`` by its ``code`` if it has one, else by its row number."""
    if "code" in frame.columns:
        code = frame["code"].iloc[i]
        if pd.api.types.is_scalar(code) and not pd.isna(code) and str(code):
            return f"feature {code}"
    return f"feature {i + 1} (counting from 1)"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _text(value) -> str | None:
    """A cell of an object column as text: JSON for lists and dicts, ISO 8601 for times."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _plain_columns(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy whose attribute columns are numbers, booleans or text, with a plain index."""
    out = frame.reset_index(drop=True)
    out.columns = [str(c) for c in out.columns]
    geom_col = out.geometry.name
    for col in out.columns:
        if col == geom_col:
            continue
        s = out[col]
        if isinstance(s.dtype, gpd.array.GeometryDtype):
            out[col] = s.to_wkt()
        elif isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = pd.Series([_text(v) for v in s.astype(object)], dtype=object)
        elif pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
            out[col] = pd.Series([_text(v) for v in s], dtype=object)
        elif pd.api.types.is_object_dtype(s):
            inferred = s.infer_objects()
            if pd.api.types.is_numeric_dtype(inferred) or pd.api.types.is_bool_dtype(inferred):
                out[col] = inferred
            else:
                out[col] = pd.Series([_text(v) for v in s], dtype=object)
    return out


def _reproject(frame: gpd.GeoDataFrame, crs_key: str, target: CRS, layer: str) -> gpd.GeoDataFrame:
    out = frame.to_crs(target)
    geoms = out.geometry.to_numpy()
    if crs_key == "GCJ02":
        geoms = shapely.transform(geoms, _to_gcj02)
        out = _with_geometry(out, geoms)
    coords = shapely.get_coordinates(geoms, include_z=True)
    if not np.isfinite(coords[:, :2]).all():
        counts = shapely.get_num_coordinates(geoms)
        bad = np.repeat(np.arange(len(geoms)), counts)[~np.isfinite(coords[:, :2]).all(axis=1)]
        raise InputError(
            f"lies outside the area {crs_key} can represent; choose another CRS",
            source=layer,
            where=_feature(out, int(bad[0])),
        )
    return out


def _with_geometry(frame: gpd.GeoDataFrame, geoms: np.ndarray) -> gpd.GeoDataFrame:
    """A copy of ``frame`` with new geometries in the same column and CRS."""
    out = frame.copy()
    name = frame.geometry.name
    out[name] = gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs, name=name)
    return out


def _to_gcj02(coords: np.ndarray) -> np.ndarray:
    lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def _geojson(frame: gpd.GeoDataFrame, layer: str, crs_key: str) -> bytes:
    if hasattr(shapely, "orient_polygons"):  # shapely >= 2.1: RFC 7946's right-hand rule
        frame = _with_geometry(frame, shapely.orient_polygons(frame.geometry.to_numpy()))
    doc: dict = {"type": "FeatureCollection", "name": layer}
    if crs_key == "GCJ02":
        doc["crs_note"] = GCJ02_NOTE
    elif crs_key != "EPSG:4326":  # legacy (2008) GeoJSON member, read by GDAL and QGIS
        code = crs_key.split(":")[1]
        doc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{code}"}}
    doc["features"] = frame.to_geo_dict(na="null", drop_id=True)["features"]
    return json.dumps(doc, ensure_ascii=False, default=_json_default).encode("utf-8")


def _geopackage(frame: gpd.GeoDataFrame, layer: str, crs_key: str) -> bytes:
    options = {"DESCRIPTION": GCJ02_NOTE} if crs_key == "GCJ02" else {}
    with tempfile.TemporaryDirectory(prefix="wangge-export-") as tmp:
        path = Path(tmp) / f"{layer}.gpkg"
        pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", layer_options=options)
        return path.read_bytes()


def _check_shapefile_geometry(frame: gpd.GeoDataFrame, layer: str) -> bool:
    """Refuse what one Shapefile cannot hold; return whether there is any geometry."""
    types = set(frame.geom_type.dropna())
    odd = sorted(t for t in types if t not in _FAMILIES)
    if odd:
        raise InputError(
            f"holds {', '.join(odd)} features, which a Shapefile cannot store; "
            "export as GeoJSON or GeoPackage",
            source=layer,
        )
    families = sorted({_FAMILIES[t] for t in types})
    if len(families) > 1:
        raise InputError(
            f"mixes {' and '.join(families)} geometries, but a Shapefile holds one geometry "
            "type; export as GeoJSON or GeoPackage",
            source=layer,
        )
    return bool(types)


def _check_dbf_text(frame: gpd.GeoDataFrame, layer: str, encoding: str) -> None:
    """Every text value must encode in ``encoding`` and fit a DBF field's 254 bytes."""
    codec = _PY_CODECS[encoding]
    geom_col = frame.geometry.name
    for col in frame.columns:
        try:
            col.encode(codec)
        except UnicodeEncodeError as exc:
            raise InputError(
                f"field name {col!r} cannot be written in {encoding}; rename it or export as UTF-8",
                source=layer,
            ) from exc
        if col == geom_col or not (
            pd.api.types.is_object_dtype(frame[col]) or pd.api.types.is_string_dtype(frame[col])
        ):
            continue
        for i, value in enumerate(frame[col]):
            if not isinstance(value, str):
                continue
            try:
                size = len(value.encode(codec))
            except UnicodeEncodeError as exc:
                bad = value[exc.start : exc.end]
                raise InputError(
                    f"field {col!r} holds {bad!r}, which cannot be written in {encoding}; "
                    "remove it or export as UTF-8",
                    source=layer,
                    where=_feature(frame, i),
                ) from exc
            if size > DBF_TEXT_BYTES:
                raise InputError(
                    f"field {col!r} holds {size} bytes of text, more than the "
                    f"{DBF_TEXT_BYTES} a Shapefile field can hold; export as GeoPackage",
                    source=layer,
                    where=_feature(frame, i),
                )


def compact_codes(text: str | None) -> str | None:
    """Consecutive codes as a range, so that they fit a DBF field.

    ``"…001,…002,…003"`` becomes ``"…001-003"``; a list that is not one run of codes
    sharing a prefix is left as it is (and, if too long, refused by the DBF check).
    """
    if not text or "," not in text:
        return text
    codes = text.split(",")
    first, last = codes[0], codes[-1]
    run = all(c.isdigit() and len(c) == len(first) for c in codes) and [
        int(c) for c in codes
    ] == list(range(int(first), int(first) + len(codes)))
    if not run:
        return text
    common = len(first) - 3
    return f"{first}-{last[common:]}" if first[:common] == last[:common] else text


def _shapefile_zip(frame: gpd.GeoDataFrame, layer: str, crs_key: str, encoding: str) -> bytes:
    has_geometry = _check_shapefile_geometry(frame, layer)
    if "record_codes" in frame:
        # a vertical micro-grid lists up to dozens of 18-digit codes: too long for a DBF
        frame = frame.assign(record_codes=frame["record_codes"].map(compact_codes))
    _check_dbf_text(frame, layer, encoding)
    geom_col = frame.geometry.name
    names = dbf_field_names([c for c in frame.columns if c != geom_col], encoding)
    out = frame.rename(columns=names)
    # with no geometry to go by, GDAL would pick a line layer; grids are polygons
    extra = {} if has_geometry else {"geometry_type": "Polygon"}
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\r\n")
    writer.writerow(["name", "dbf_name"])
    writer.writerows(names.items())
    # UTF-8 with a byte-order mark so that Excel reads it; GBK is what Chinese Excel expects
    csv_bytes = table.getvalue().encode("utf-8-sig" if encoding == "UTF-8" else "gbk")
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="wangge-export-") as tmp:
        path = Path(tmp) / f"{layer}.shp"
        pyogrio.write_dataframe(out, path, driver="ESRI Shapefile", encoding=encoding, **extra)
        path.with_suffix(".cpg").write_text(encoding, encoding="ascii")
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                zf.write(path.with_suffix(suffix), f"{layer}{suffix}")
            zf.writestr("fields.csv", csv_bytes)
            if crs_key == "GCJ02":
                zf.writestr("crs_note.txt", GCJ02_NOTE.encode("utf-8"))
    return buffer.getvalue()
