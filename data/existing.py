"""Read a city's existing grid layer (GeoJSON, GeoPackage, zipped Shapefile, CSV with WKT)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data.boundaries import (
    _findings,
    _read_table_units,
    _read_vector_units,
    _to_wgs84,
    normalise_code,
    repair_and_note,
    require_polygons,
    require_unique,
)
from wangge.data.untrusted import check_file as check_untrusted
from wangge.data.userfiles import TABLE_SUFFIXES, VECTOR_SUFFIXES, _check_file
from wangge.errors import InputError
from wangge.geo.crs import unshift

#: Accepted column names (matched stripped and lower-cased), most specific first.
ALIASES: dict[str, tuple[str, ...]] = {
    "code": (
        "网格编码",
        "网格代码",
        "网格编号",
        "编码",
        "代码",
        "grid_code",
        "gridcode",
        "grid_id",
        "code",
    ),
    "name": ("网格名称", "网格名", "名称", "grid_name", "gridname", "name"),
    "community_code": (
        "社区编码",
        "社区代码",
        "所属社区编码",
        "所属社区代码",
        "community_code",
        "community_",
        "parent_code",
    ),
    "type": ("网格类型", "类型", "grid_type", "type"),
}
#: Values of the type column that mark a dedicated grid (专属网格).
DEDICATED_WORDS = ("专属", "dedicated")


@dataclass
class ExistingGrids:
    """A grid layer as read.

    Attributes
    ----------
    frame
        EPSG:4326 GeoDataFrame, one row per feature in file order: ``feature`` (its number
        in the file, from 1), ``code`` (normalised text or None), ``name``,
        ``community_code`` (None where absent), ``dedicated`` (bool) and ``geometry``.
    findings
        What was noticed while reading (the columns of the boundary findings).
    source
        The file.
    """

    frame: gpd.GeoDataFrame
    findings: pd.DataFrame
    source: Path


def _column(columns, key: str) -> str | None:
    lower = {str(c).strip().lower(): c for c in columns}
    for alias in ALIASES[key]:
        if alias.lower() in lower:
            return lower[alias.lower()]
    return None


def _texts(frame: pd.DataFrame, column: str | None) -> list[str | None]:
    if column is None:
        return [None] * len(frame)
    return [
        None
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
        else str(v).strip()
        for v in frame[column]
    ]


def read_grids(
    path: str | Path,
    coords: str = "wgs84",
    encoding: str = "utf-8",
    crs: str | int | None = None,
) -> ExistingGrids:
    """Read an existing grid layer.

    Rules
    -----
    - Formats, CRS checks, GCJ-02/BD-09 (``coords``) and text encodings as for given
      boundaries (:func:`wangge.data.boundaries.read_units`): a shapefile's attributes
      are read per its .cpg, else as UTF-8 or GB18030 (GBK) as they decode.
    - Columns by alias (:data:`ALIASES`): a code column is required (网格编码/网格代码/编码/
      代码/grid_code/code); the name (网格名称/名称/name), the community code (社区编码/
      parent_code) and the type (网格类型/type: 专属 or dedicated marks a dedicated grid)
      are optional. Codes are normalised (spaces, Excel's ``.0``) but not otherwise
      checked here: a code that does not fit the plan is renumbered when adopted.
    - Duplicate codes, empty or missing geometry and non-polygons are errors naming the
      features; invalid polygons are repaired (a finding).

    Raises
    ------
    InputError
        Naming the file and the features.
    """
    path = Path(path)
    check_untrusted(path)  # a city's export is a user's file: sizes and expansion first
    findings: list[dict] = []
    if path.name.lower().endswith(TABLE_SUFFIXES):
        frame, kind = _read_table_units(path, encoding)
    else:
        _check_file(path, VECTOR_SUFFIXES)
        frame, kind = _read_vector_units(path, encoding, findings, "grid")
    if frame.empty:
        raise InputError("holds no features", path)
    frame = frame.reset_index(drop=True)
    cols = [c for c in frame.columns if c != frame.geometry.name]
    code_col = _column(cols, "code")
    if code_col is None:
        raise InputError(
            "has no grid code column; name one of "
            + ", ".join(ALIASES["code"])
            + f" (columns found: {', '.join(map(str, cols)) or 'none'})",
            path,
        )
    codes = [normalise_code(v) for v in frame[code_col]]
    names = _texts(frame, _column(cols, "name"))
    parents = [normalise_code(v) for v in _texts(frame, _column(cols, "community_code"))]
    types = _texts(frame, _column(cols, "type"))
    dedicated = np.array(
        [t is not None and any(w in t.lower() for w in DEDICATED_WORDS) for t in types]
    )

    require_unique(codes, names, path, kind, f"grid codes in column {code_col!r}")
    geoms = require_polygons(frame.geometry.to_numpy(), codes, names, path, kind, "grids")
    frame = frame.set_geometry(gpd.GeoSeries(geoms, crs=frame.crs))
    frame = _to_wgs84(frame, path, kind, codes, names, crs)
    geoms = unshift(frame.geometry.to_numpy(), coords)
    geoms = repair_and_note(
        geoms, codes, names, path, kind, "grid", findings, "the plan will number it"
    )
    out = gpd.GeoDataFrame(
        {
            "feature": np.arange(1, len(frame) + 1),
            "code": pd.Series(codes, dtype=object),
            "name": pd.Series(names, dtype=object),
            "community_code": pd.Series(parents, dtype=object),
            "dedicated": dedicated,
        },
        geometry=gpd.GeoSeries(geoms, crs=4326),
        crs=4326,
    )
    return ExistingGrids(frame=out, findings=_findings(findings), source=path)
