"""Versions that cost what they change: which stored rows make a layer of a version
(:func:`rows_filter`, over :attr:`LayerInfo.span`), the layers a version keeps from its
base, and a layer written as a patch on its base (:func:`patch_of`, :func:`patched_layers`).
Both stores speak this SQL."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.rows import (
    MADE_IDS,
    WGS84,
    LayerInfo,
    Rows,
    feature_id_column,
    flatten,
    geometry_type_name,
    merge_geometry_types,
)
from wangge.errors import InputError


def kept_layers(
    base: list[LayerInfo], base_version: int, keep: tuple[str, ...], plan_id: str
) -> list[LayerInfo]:
    """The base version's ``keep`` layers, each with the span of rows it holds."""
    by_name = {info.name: info for info in base}
    missing = [name for name in keep if name not in by_name]
    if missing:
        raise InputError(
            f"version {base_version} has no layer {', '.join(missing)} to keep", plan_id
        )
    return [spanned(by_name[n], base_version) for n in keep]


#: Schema 3 → 4, the same SQL in both stores: a layer's rows were those of its own version
#: or of the one in ``source`` (positive) or, for a city, a stage (negative): the span of
#: one version, the stage kept as it is.
SPAN_MIGRATION = (
    "UPDATE wg_layers SET"
    " since = CASE WHEN source > 0 THEN source ELSE version END,"
    " upto = CASE WHEN source > 0 THEN source ELSE version END,"
    " source = CASE WHEN source > 0 THEN NULL ELSE source END"
    " WHERE since IS NULL"
)


#: The ids a layer's rows were written or retired under, by the versions after ``lo`` up
#: to ``hi`` (:meth:`Store.touched_ids`).
TOUCHED = (
    "SELECT DISTINCT f.code FROM wg_features f WHERE f.plan_id = :p AND f.layer = :l"
    " AND ((f.version > :lo AND f.version <= :hi) OR (f.until > :lo AND f.until <= :hi))"
)

#: The micro-grid of every unit row and the records of every micro-grid row a plan ever
#: stored, whatever version wrote it: every code the plan gave out (``Store.codes_ever``).
#: ``{records}`` is the store's text of a property (``Store._property``).
UNIT_PARENTS_EVER = (
    "SELECT DISTINCT f.parent_code FROM wg_features f WHERE f.plan_id = :p AND f.layer = 'units'"
)
RECORDS_EVER = (
    "SELECT DISTINCT {records} FROM wg_features f WHERE f.plan_id = :p AND f.layer = 'microgrids'"
)

#: Each parent code's units and households (cut to its first ``:n`` digits: a micro-grid's
#: 18, its grid's 15) in one version's units layer; ``{households}`` is the store's text of
#: the property, ``{span}`` the version's rows (:func:`rows_filter`).
PARENT_TOTALS = (
    "SELECT substr(f.parent_code, 1, :n), COUNT(*),"
    " SUM(CAST({households} AS DOUBLE PRECISION))"
    " FROM wg_features f WHERE f.plan_id = :p AND f.layer = 'units' AND {span} GROUP BY 1"
)
#: Every unit's code, micro-grid and compound in one version, without geometry or other
#: properties (``Store.unit_parents``); ``{compound}`` is the store's text of the property.
UNIT_PARENTS = (
    "SELECT f.code, f.parent_code, {compound} FROM wg_features f"
    " WHERE f.plan_id = :p AND f.layer = 'units' AND {span}"
)
#: Some properties of every feature of one version's layer, by code (``Store.properties``);
#: ``{values}`` the store's texts of them.
PROPERTIES = (
    "SELECT f.code, {values} FROM wg_features f WHERE f.plan_id = :p AND f.layer = :l AND {span}"
)
#: One property of every feature of one version's layer, by code.
PROPERTY_OF = (
    "SELECT f.code, {value} FROM wg_features f WHERE f.plan_id = :p AND f.layer = :l AND {span}"
)


def spanned(info: LayerInfo, version: int) -> LayerInfo:
    """``info`` with its span written out (as a version that keeps it stores it)."""
    stage, since, upto = info.span(version)
    return replace(info, source=stage, since=since, upto=upto)


@dataclass
class Patch:
    """A layer written as a patch on its base (:meth:`Store.save` ``bases``): the whole
    layer's info and dtypes, the rows to write (new or changed) and the ids whose base
    rows are retired (changed or dropped)."""

    rows: Rows
    retire: list[str]
    #: The layer keeps its base's geometries, every one: its geometry type and bbox are
    #: the stored layer's (set by :func:`patched_layers`), not those of the rows written.
    shapes_kept: bool = False
    #: The base frame was part of the stored layer (an editor holding one street): the
    #: layer's count, geometry type and bbox come from the stored layer's and the patch's
    #: rows (:func:`patched_layers`), never from the part.
    partial: bool = False


def patch_of(
    name: str, new: pd.DataFrame, old: pd.DataFrame, partial: bool = False
) -> Patch | None:
    """What differs between two frames of one layer, by feature id: the rows of ``new``
    that are not in ``old`` or differ from it in a value or a coordinate (flattened), and
    the ids of ``old`` they replace or that ``new`` drops. None when the layer must be
    written whole: its ids are made by position, missing or not unique, or the columns,
    their types or the CRS changed. When ``new`` holds ``old``'s very geometries (an
    edit's units and buildings) the patch says so (``shapes_kept``) and leaves the
    layer's geometry type and bbox to the stored layer's (:func:`patched_layers`) instead
    of bounding 45,000 shapes again.

    With ``partial``, ``old`` is only part of the stored layer (the rows of one street)
    and ``new`` the same part changed: the rest of the layer is kept as stored, and a
    layer that could only be written whole is refused (writing the part whole would drop
    the rest)."""
    found = _patch(name, new, old)
    if found is None and partial:
        raise InputError(
            f"layer {name!r} cannot be written as a patch, and only part of it is held:"
            " load the whole version to save it",
            where=name,
        )
    if found is not None:
        found.partial = partial
    return found


def _patch(name: str, new: pd.DataFrame, old: pd.DataFrame) -> Patch | None:
    id_col = feature_id_column(name, new.columns)
    if id_col is None or name in MADE_IDS or id_col not in old.columns:
        return None
    if list(new.columns) != list(old.columns) or list(new.dtypes) != list(old.dtypes):
        return None
    spatial = isinstance(new, gpd.GeoDataFrame) and new.geometry.name in new
    if spatial != (isinstance(old, gpd.GeoDataFrame) and old.geometry.name in old):
        return None
    if spatial and not (new.crs is not None and old.crs is not None and new.crs == old.crs):
        return None
    old_ids = pd.Index(old[id_col].to_numpy(dtype=object))
    if old_ids.hasnans or not old_ids.is_unique:
        return None
    new_ids = pd.Index(new[id_col].to_numpy(dtype=object))
    at = old_ids.get_indexer(new_ids)  # each new row's old row, -1 if none
    # rows in the base's order (an edit's layers): compared as they are, without a take
    aligned = len(new) == len(old) and bool(np.all(at == np.arange(len(at))))
    if not aligned and (new_ids.hasnans or not new_ids.is_unique):
        return None
    here = np.flatnonzero(at >= 0)
    same = at >= 0
    shapes_kept = False
    for col in new.columns:
        a, b = new[col].to_numpy(), old[col].to_numpy()
        if aligned and _one_buffer(a, b):
            shapes_kept |= spatial and col == new.geometry.name
            continue  # the base's column itself (a copy on write): nothing in it changed
        if not aligned:
            a, b = a[here], b[at[here]]
        same[here[~_equal(a, b, spatial and col == new.geometry.name)]] = False
    rows = flatten(name, new.iloc[np.flatnonzero(~same)])
    kept = np.zeros(len(old), dtype=bool)
    kept[at[same]] = True  # an old row is kept where a new row is the same as it
    retire = [str(c) for c in old_ids[~kept]]
    summary = {} if shapes_kept else _geometry_summary(new, spatial)
    info = replace(rows.info, count=len(new), **summary)
    return Patch(Rows(info, rows.dtypes, rows.records), retire, shapes_kept)


def _one_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are views of the same memory in the same layout: the same
    values, whatever they are."""
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _equal(a: np.ndarray, b: np.ndarray, geometry: bool) -> np.ndarray:
    """Element by element: the same value (missing in both counts as the same)."""
    if geometry:  # the same object is the same shape: coordinates compared only where not
        eq = np.fromiter(map(operator.is_, a, b), dtype=bool, count=len(a))
        odd = np.flatnonzero(~eq)
        if len(odd):
            x, y = a[odd], b[odd]
            eq[odd] = shapely.equals_exact(x, y, tolerance=0) | (
                shapely.is_missing(x) & shapely.is_missing(y)
            )
        return eq
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        return a == b
    try:  # strings and None compared in C; NaN and NA are looked at only where unequal
        eq = np.asarray(a == b, dtype=bool)
    except (TypeError, ValueError):  # pandas NA and the like
        eq = np.asarray(pd.Series(a).eq(pd.Series(b)).fillna(False), dtype=bool)
    odd = np.flatnonzero(~eq)
    if len(odd):
        eq[odd] = pd.isna(a[odd]) & pd.isna(b[odd])
    return eq


def _geometry_summary(frame: pd.DataFrame, spatial: bool) -> dict[str, Any]:
    """The geometry type and WGS84 bbox of a whole layer, as :func:`flatten` gives them."""
    if not spatial:
        return {"geometry_type": None, "bbox": None}
    geoms = frame.geometry
    if geoms.crs is not None and not geoms.crs.equals(WGS84):
        geoms = geoms.to_crs(4326)
    geoms = geoms.to_numpy()
    valid = ~shapely.is_missing(geoms)
    types = set(shapely.get_type_id(geoms[valid]).tolist())
    bbox = None
    if valid.any():
        b = shapely.bounds(geoms[valid])
        bbox = tuple(float(x) for x in (*np.nanmin(b[:, :2], axis=0), *np.nanmax(b[:, 2:], axis=0)))
    return {"geometry_type": geometry_type_name(types), "bbox": bbox}


def patched_layers(
    base: list[LayerInfo],
    base_version: int | None,
    version: int,
    flat: dict[str, Rows],
    staged: dict[str, Rows] | None,
    stage: int | None,
    patches: dict[str, Patch] | None,
    plan_id: str,
    retire: Callable[[str, str, dict[str, Any], list[str]], int],
) -> tuple[dict[str, Rows], dict[str, tuple[int | None, int, int]]]:
    """The rows each layer of a new version writes and the span it records (stage, since,
    upto): a whole layer its own version, a staged one its stage, a patched one its
    base's span moved up to ``version``, once ``retire(layer, where, params, ids)`` (the
    store's UPDATE of ``until`` on the base rows ``where`` selects) has retired the rows
    the patch replaces and said how many it found."""
    spans = {n: (None, version, version) for n in flat}
    spans |= {n: (stage, version, version) for n in staged or {}}
    for name, patch in (patches or {}).items():
        (old,) = kept_layers(base, base_version, (name,), plan_id)
        if patch.retire:
            where, params = rows_filter(old, base_version)
            check_retired(retire(name, where, params, patch.retire), patch, name)
        spans[name] = (old.source, old.since, version)
        rows = patch.rows
        if patch.shapes_kept:
            info = replace(rows.info, geometry_type=old.geometry_type, bbox=old.bbox)
            rows = Rows(info, rows.dtypes, rows.records)
        if patch.partial:
            rows = Rows(_partial_info(old, patch), rows.dtypes, rows.records)
        flat = {**flat, name: rows}
    return flat, spans


def _partial_info(old: LayerInfo, patch: Patch) -> LayerInfo:
    """The info of a layer patched from part of it: the stored count less the rows
    retired plus those written; the stored geometry type and bbox grown by the written
    rows' (a part that shrank leaves the bbox as large as it was: an extent, never
    smaller than the features)."""
    info = patch.rows.info
    count = old.count - len(patch.retire) + len(patch.rows.records)
    if patch.shapes_kept or not patch.rows.records:
        return replace(info, count=count, geometry_type=old.geometry_type, bbox=old.bbox)
    types = [t for t in (old.geometry_type, info.geometry_type) if t]
    boxes = [b for b in (old.bbox, info.bbox) if b is not None]
    bbox = None
    if boxes:
        b = np.asarray(boxes, dtype=float)
        bbox = (*b[:, :2].min(axis=0).tolist(), *b[:, 2:].max(axis=0).tolist())
    return replace(
        info,
        count=count,
        geometry_type=merge_geometry_types(types) if types else None,
        bbox=bbox,
    )


def check_retired(found: int, patch: Patch, layer: str) -> None:
    """A patch must retire exactly the base rows it names: fewer found means the frame
    given as the base is not what the store holds, and the patch would be wrong."""
    if found != len(patch.retire):
        raise RuntimeError(
            f"layer {layer!r}: the patch retires {len(patch.retire)} rows but the base"
            f" version holds {found} of them; the base frame given is not the stored one"
        )


def rows_filter(info: LayerInfo, version: int, alias: str = "f") -> tuple[str, dict[str, int]]:
    """Which stored rows make a layer of a version, as SQL over the feature table aliased
    ``alias``, with named parameters (both stores speak it; :func:`span_condition`).
    Returns (condition, parameters)."""
    stage, since, upto = info.span(version)
    params = {"wg_since": since, "wg_upto": upto}
    if stage is not None:
        params["wg_stage"] = stage
    where = span_condition(
        alias, ":wg_stage" if stage is not None else None, ":wg_since", ":wg_upto"
    )
    return where, params


def span_condition(alias: str, stage: str | None, since: str, upto: str) -> str:
    """The one rule for a layer's rows, over SQL expressions for its span (parameters, or
    a ``wg_layers`` row's columns in the database's scope guard): the rows written under
    the versions ``since`` to ``upto``, or staged under ``stage``, that no version up to
    ``upto`` retired."""
    f = alias
    where = f"{f}.version BETWEEN {since} AND {upto}"
    if stage is not None:
        where = f"({f}.version = {stage} OR {where})"
    return f"{where} AND ({f}.until IS NULL OR {f}.until > {upto})"
