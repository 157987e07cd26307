"""A layer as the stores keep it: what a version holds in one layer (:class:`LayerInfo`),
and a frame flattened into rows (code, parent code, JSON attributes, WGS84 geometry) and
back, with the feature ids every layer carries (:func:`flatten`, :func:`unflatten`)."""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from wangge.errors import InputError

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class LayerInfo:
    """What a version holds in one layer."""

    name: str
    count: int
    geometry_type: str | None
    bbox: tuple[float, float, float, float] | None
    columns: tuple[str, ...]
    #: Where the layer's rows are (one rule, :func:`rows_filter`): the rows of the layer
    #: written under the versions ``since`` to ``upto`` that no version up to ``upto``
    #: retired (``wg_features.until``), and, for a city, all those staged under
    #: ``source`` (a negative stage number no reader lists). A version that writes the
    #: layer whole has ``since = upto =`` itself; one that keeps it shares all three with
    #: its base; one that patches it moves ``upto`` to itself. Versions are linear (each
    #: is saved on the latest), so the rows of one span never change.
    source: int | None = None
    since: int | None = None
    upto: int | None = None

    def span(self, version: int) -> tuple[int | None, int, int]:
        """(stage, since, upto) of this layer of ``version``: what identifies its rows
        (a tile cache key: two versions with one span hold the same rows)."""
        return (self.source, self.since or version, self.upto or version)


def _plain_column(column: pd.Series) -> list[Any]:
    """A column as JSON-ready Python values (NaN, NaT and NA become None), fast for
    numeric columns and cell by cell only for object columns."""
    kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else "O"
    if kind in "iub":
        return column.to_numpy().tolist()
    if kind == "f":
        arr = column.to_numpy()
        out = arr.tolist()
        for i in np.flatnonzero(~np.isfinite(arr)):
            out[i] = None
        return out
    return [_plain(v) for v in column.to_numpy(dtype=object)]


def _plain(value: Any) -> Any:
    """A JSON-ready Python value from a pandas/numpy cell (NaN and NaT become None)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return None
    return value


@dataclass
class Rows:
    """A layer flattened for storage: one tuple per feature, plus its schema."""

    info: LayerInfo
    dtypes: dict[str, str]
    records: list[tuple[str | None, str | None, str, bytes | None, tuple | None]]


#: Layers whose rows have no id of their own, or whose ``code`` names another unit or
#: none (a violation's is the unit at fault, and a unit may break two rules; a finding's
#: or a calibration row's may be empty): each row gets an
#: ordinal in this column when the layer is stored (:func:`with_ids`), so that every
#: feature of every collection has a unique GeoJSON id (QGIS drops features without one,
#: or with one it has seen: 3 of 783 network edges once).
MADE_IDS = {
    "study_area": "area_id",
    "suggestions": "suggestion_id",
    "network_edges": "edge_id",
    "unit_edges": "edge_id",
    "feasibility": "finding_id",
    "siting": "run_id",
    "violations": "violation_id",
    "findings": "finding_id",
    "city_findings": "finding_id",
    "calibration": "calibration_id",
}


#: The id column made for any other layer that has neither a code nor an id column.
MADE_ID = "feature_id"


#: The column that identifies a feature of a layer without a ``code`` of its own: stored
#: in the rows' code field (not as a column), so ``/collections/{layer}/items/{id}`` and
#: ``query(codes=...)`` find it, and it is the feature's GeoJSON id.
FEATURE_IDS = {
    "buildings": "building_id",
    "access": "building_id",
    "risk_points": "risk_id",
    "risk_zones": "risk_id",
    "facilities": "facility_id",
    "gaps": "gap_id",
    "candidates": "candidate_id",
    "network_nodes": "node_id",
    **MADE_IDS,
}


def feature_id_column(layer: str, columns) -> str | None:
    """The column whose value is a feature's id in ``layer``: the layer's entry of
    :data:`FEATURE_IDS` (when it has that column), else ``code``, else :data:`MADE_ID`,
    else None."""
    found = FEATURE_IDS.get(layer)
    if found in columns:
        return found
    if "code" in columns:
        return "code"
    return MADE_ID if MADE_ID in columns else None


def with_ids(layer: str, data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with an id column where the layer has none of its own (:data:`MADE_IDS`,
    :data:`MADE_ID`): the rows' ordinals from 1, zero-padded so that they sort in row
    order (the store pages by id). A city's street rows, flattened apart and marked
    ``_street``, are numbered under their street's code, so ids stay unique in the city."""
    col = MADE_IDS.get(layer)
    if col is None:
        if feature_id_column(layer, data.columns) is not None:
            return data
        col = MADE_ID
    if col in data.columns and data[col].notna().all() and data[col].is_unique:
        return data
    n = len(data)
    width = len(str(n))
    ids = [f"{i:0{width}d}" for i in range(1, n + 1)]
    if "_street" in data.columns and n:
        ids = [f"{street}-{i}" for street, i in zip(data["_street"].astype(str), ids, strict=True)]
    return data.assign(**{col: ids})


def flatten(name: str, frame: pd.DataFrame) -> Rows:
    """Flatten a frame into (code, parent_code, properties JSON, WKB, bbox) rows; a layer
    without codes stores its :data:`FEATURE_IDS` column's values as their codes, made
    first by :func:`with_ids` where it has none."""
    if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]{0,62}$", name):
        raise InputError("a layer name is lower-case letters, digits and '_'", where=name)
    geoms = None
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame:
        if frame.crs is None and len(frame):
            raise InputError("the layer has no CRS", where=name)
        wgs = frame if frame.crs is None or frame.crs.equals(WGS84) else frame.to_crs(4326)
        geoms = wgs.geometry.to_numpy()
        data = pd.DataFrame(wgs.drop(columns=wgs.geometry.name))
    else:
        data = pd.DataFrame(frame)
    data.columns = [str(c) for c in data.columns]
    data = with_ids(name, data)
    columns = tuple(data.columns)
    n = len(data)
    id_col = feature_id_column(name, data.columns)
    # the code field holds the id; a code that is not the id (a violation's) stays a property
    apart = ("code", "parent_code") if id_col == "code" or id_col is None else ("parent_code",)
    props_cols = [c for c in columns if c not in apart]
    code = _plain_column(data[id_col]) if id_col else [None] * n
    parent = _plain_column(data["parent_code"]) if "parent_code" in data else [None] * n
    values = [_plain_column(data[c]) for c in props_cols]
    records = []
    bbox_all = None
    gtype = None
    wkbs = boxes = None
    if geoms is not None:
        valid = ~shapely.is_missing(geoms)
        types = set(shapely.get_type_id(geoms[valid]).tolist())
        gtype = geometry_type_name(types)
        present = valid & ~shapely.is_empty(geoms)
        wkbs = np.where(present, shapely.to_wkb(geoms, byte_order=1), None).tolist()
        bounds = shapely.bounds(geoms)
        boxes = [tuple(b) if ok else None for b, ok in zip(bounds.tolist(), present, strict=True)]
        if valid.any():
            b = bounds[valid]
            bbox_all = (
                float(np.nanmin(b[:, 0])),
                float(np.nanmin(b[:, 1])),
                float(np.nanmax(b[:, 2])),
                float(np.nanmax(b[:, 3])),
            )
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    for i, row in enumerate(zip(*values, strict=True) if values else [()] * n):
        c, p = code[i], parent[i]
        records.append(
            (
                None if c is None else str(c),
                None if p is None else str(p),
                dumps(dict(zip(props_cols, row, strict=True))),
                None if wkbs is None else wkbs[i],
                None if boxes is None else boxes[i],
            )
        )
    dtypes = {c: str(data[c].dtype) for c in columns}
    info = LayerInfo(name, len(data), gtype, bbox_all, columns)
    return Rows(info, dtypes, records)


def geometry_type_name(type_ids: set[int]) -> str:
    names = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString"}
    names |= {6: "MultiPolygon", 7: "GeometryCollection"}
    return merge_geometry_types([names.get(t, "Geometry") for t in type_ids])


def merge_geometry_types(names: list[str]) -> str:
    """One geometry type for features of the ``names`` types: theirs when they agree,
    MultiPolygon for polygons and multipolygons together, else Geometry."""
    found = set(names)
    if found <= {"Polygon", "MultiPolygon"} and found:
        return "MultiPolygon" if "MultiPolygon" in found else "Polygon"
    if len(found) == 1:
        return found.pop()
    return "Geometry"


def unflatten(
    info: LayerInfo,
    dtypes: dict[str, str],
    rows: list[tuple[str | None, str | None, str, Any]],
    geoms: list,
) -> gpd.GeoDataFrame:
    """Rebuild a frame from stored rows (code, parent_code, properties JSON, _) and
    decoded geometries, with the saved columns in their saved order and types."""
    props = [json.loads(r[2]) for r in rows]
    data: dict[str, Any] = {}
    for col in info.columns:
        if col == "code":  # the code field, unless the layer's id took it (a violation's)
            data[col] = [
                p["code"] if "code" in p else r[0] for r, p in zip(rows, props, strict=True)
            ]
        elif col == "parent_code":
            data[col] = [r[1] for r in rows]
        else:
            data[col] = [p.get(col) for p in props]
    frame = pd.DataFrame(data, columns=list(info.columns))
    for col, dtype in dtypes.items():
        if col in frame and dtype != "object":
            # an int column that now holds nulls keeps floats
            with contextlib.suppress(TypeError, ValueError):
                frame[col] = frame[col].astype(dtype)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
