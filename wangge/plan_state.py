"""One version of an editable plan held in memory, and the polygons an edit derives from it.

A :class:`PlanState` is the assignment of a version's units to micro-grids with its unit
graph, limits, flags and locks (loaded once by :class:`wangge.editing.Editor`). After a
move, only the polygons whose units changed are dissolved again (:func:`derive`), and the
next state is made from the saved version without reading it back (:func:`next_state`).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.store import Version
from wangge.geo import assignment as ge
from wangge.geo.codes import LENGTHS
from wangge.geo.delineation import placeholder_name, union_parts
from wangge.geo.limits import Limits
from wangge.geo.validate import Violation

#: Layers an edit rewrites; every other layer of the base version is kept as it is.
POLYGONS = ("streets", "communities", "grids", "microgrids")


@dataclass
class PlanState:
    """One version of an editable plan, held in memory between requests."""

    version: Version
    units: ge.Units
    unit_frame: gpd.GeoDataFrame  # the units layer (WGS84), rows in unit order
    metric: np.ndarray  # unit geometries in the plan's metric CRS
    crs: str
    limits: Limits
    micro: np.ndarray
    flags: ge.Flags
    locks: set[str]
    layers: dict[str, gpd.GeoDataFrame]  # POLYGONS and buildings, WGS84
    #: The violations of ``micro`` (under ``flags``), kept so that an edit inside one
    #: street of a city re-checks that street only (``ge.check_streets``); None until known.
    found: list[Violation] | None = None
    #: Each street's unit positions and sub-graph, shared by the versions of one plan.
    streets: dict = field(default_factory=dict)
    #: What the editor shows of this version (``Editor.overview``), made on first asking:
    #: a version never changes, and every planner's editor asks for it after each save.
    shown: dict[str, Any] | None = field(default=None, init=False)  # never carried by replace()
    #: The layers of this version exactly as the store holds them (units, POLYGONS,
    #: buildings), against which a save writes only what changed (``Store.save`` bases).
    #: A state refreshed in memory (a rebalance's new households) keeps its version's.
    stored: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: Each building's unit, found once for the versions of one plan (units never change
    #: between them): the buildings' ids and :func:`unit_of_buildings` of them.
    building_units: dict[str, np.ndarray] = field(default_factory=dict)
    #: The street this state holds (wangge/street_state.py), None for the whole version;
    #: then ``outside`` is what it knows of the other streets.
    scope: str | None = None
    outside: Any = None

    def __post_init__(self) -> None:
        self.micro = ge.frozen(self.micro)  # a version's assignment never changes

    @property
    def plan_id(self) -> str:
        return self.version.plan_id

    @property
    def city(self) -> bool:
        """A plan of several streets: edits are checked street by street."""
        return self.scope is not None or len(self.layers["streets"]) > 1

    def grids(self) -> set[str]:
        """Every grid code of the version (the other streets' too)."""
        if self.outside is not None:
            return set(self.outside.grids)
        return set(ge.level_codes(self.micro, "grid"))

    def neighbours(self, micro: np.ndarray, only: set[str] | None = None):
        """:func:`ge.grid_neighbours` of ``micro``, with the grids across the held
        street's edge."""
        extra = None
        if self.outside is not None:
            extra = (self.outside.edge_inside, self.outside.edge_grid)
        return ge.grid_neighbours(self.units, micro, only, extra)

    def violations(self) -> list[Violation]:
        """The violations of this version's assignment (``ge.check``), found once."""
        if self.found is None:
            self.found = ge.check(self.units, self.micro, self.limits, self.flags)
        return self.found

    def units_of(self, buildings: gpd.GeoDataFrame) -> np.ndarray:
        """:func:`unit_of_buildings` of ``buildings``, remembered while their ids are the
        same (a save at 10⁶ households looked up 45,000 buildings' units every time)."""
        ids = buildings["building_id"].to_numpy(dtype=object)
        known = self.building_units
        same = "ids" in known and len(known["ids"]) == len(ids)
        if not (same and bool(np.all(known["ids"] == ids))):
            known["ids"], known["units"] = ids, unit_of_buildings(self.unit_frame, buildings)
        return known["units"]


def assignment_of(plan, households: pd.Series | None = None):
    """A plan's units as an assignment: the units layer in unit order (WGS84), the units'
    metric geometries, their :class:`~wangge.geo.assignment.Units` and each unit's
    micro-grid code. ``households`` (by unit code) replaces the layer's where it names a
    unit.

    ``plan`` is a :class:`wangge.data.plan.Plan` holding ``units`` and ``unit_edges``."""
    unit_frame = plan.frame("units")
    if households is not None:
        new = unit_frame["code"].astype(str).map(households.astype(float))
        unit_frame = unit_frame.assign(households=new.fillna(unit_frame["households"]))
    return assignment_frames(
        unit_frame, pd.DataFrame(plan.frame("unit_edges")), plan.source, plan.crs
    )


def assignment_frames(unit_frame: gpd.GeoDataFrame, edges: pd.DataFrame, source: str, crs: str):
    """:func:`assignment_of` from a units layer (all of a plan's units, or one street's
    with the edges among them) and its ``unit_edges`` table."""
    order = np.argsort(unit_frame["code"].astype(int).to_numpy(), kind="stable")
    unit_frame = unit_frame.iloc[order].reset_index(drop=True)
    edges = ge.edges_at_positions(unit_frame["code"], edges, source)
    metric = unit_frame.to_crs(crs).geometry.to_numpy()
    units = ge.units_from_tables(unit_frame, edges, metric)
    micro = unit_frame["parent_code"].astype(str).to_numpy().astype(object)
    return unit_frame, metric, units, micro


def box_of(b) -> list[float]:
    return [round(float(x), 7) for x in b]


def flags_of(layers: dict[str, gpd.GeoDataFrame]) -> ge.Flags:
    """The flags, notes and vertical micro-grids' record codes the polygon layers carry
    (column at a time: a city's 43,000 polygons are read at every save)."""
    records, flag, note, record_codes = {}, {}, {}, {}
    for name in ("streets", "communities", "grids", "microgrids"):
        if name not in layers:
            continue
        frame = layers[name]
        codes = frame["code"].to_numpy(dtype=object)
        if "flag" in frame:
            flags = frame["flag"].fillna("").astype(str).to_numpy()
            notes = (
                frame["note"].fillna("").astype(str).to_numpy()
                if "note" in frame
                else np.full(len(frame), "", dtype=object)
            )
            for i in np.flatnonzero(flags != ""):
                flag[codes[i]] = flags[i]
                note[codes[i]] = notes[i]
        if "record_codes" in frame:
            rcs = frame["record_codes"].fillna("").astype(str).to_numpy()
            for code, rc in zip(codes, rcs, strict=True):
                if "," in rc:
                    records[code] = rc.count(",") + 1
                    record_codes[code] = rc
    return ge.Flags(records, flag, note, record_codes)


def grid_rows(
    s: PlanState,
    micro: np.ndarray,
    grids: gpd.GeoDataFrame,
    nbrs: dict[str, list[str]],
    locks: set[str],
    only: set[str] | None = None,
) -> list[dict[str, Any]]:
    table = ge.summary(s.units, micro, "grid", only)
    if only is not None:  # an edit's answer: the grids it changed, not the whole city's
        grids = grids[grids["code"].isin(only)]
    by_code = grids.set_index("code")
    bounds = dict(zip(grids["code"], shapely.bounds(grids.geometry.to_numpy()), strict=True))
    centres = shapely.point_on_surface(grids.geometry.to_numpy())
    xy = np.column_stack([shapely.get_x(centres), shapely.get_y(centres)])
    centre = dict(zip(grids["code"], xy, strict=True))
    out = []
    for code, row in table.iterrows():
        out.append(
            {
                "code": code,
                "name": str(by_code["name"].get(code, code)) if "name" in by_code else code,
                "parent_code": code[:12],
                "households": float(row.households),
                "population": float(row.population),
                "units": int(row.units),
                "locked": code in locks,
                "bbox": box_of(bounds[code]) if code in bounds else None,
                "centre": [round(float(c), 7) for c in centre[code]] if code in centre else None,
                "neighbours": nbrs.get(code, []),
            }
        )
    return out


def with_boxes(
    s: PlanState, found: list[Violation], layers: dict[str, gpd.GeoDataFrame]
) -> list[dict[str, Any]]:
    """Violations as dicts, each with the WGS84 box of what it names (to zoom to)."""
    boxes: dict[str, list[float]] = {}
    named = {v.code for v in found}
    for name in POLYGONS:
        frame = layers[name]
        frame = frame[frame["code"].isin(named)]
        for code, b in zip(frame["code"], shapely.bounds(frame.geometry.to_numpy()), strict=True):
            boxes[code] = box_of(b)
    if s.outside is not None:  # what the other streets' violations name
        boxes = {**s.outside.boxes, **boxes}
    uf = s.unit_frame
    out = []
    for v in found:
        row = asdict(v)
        if v.level == "compound" and v.code in boxes:
            row["bbox"] = boxes[v.code]
        elif v.level == "compound":
            mask = (uf["compound_id"].astype(str) == v.code).to_numpy()
            row["bbox"] = box_of(shapely.total_bounds(uf.geometry.to_numpy()[mask]))
        else:
            row["bbox"] = boxes.get(v.code)
        out.append(row)
    return out


def derive(
    s: PlanState, micro: np.ndarray, moved: list[ge.Move], flags: ge.Flags
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, list[tuple]]]:
    """The polygon layers and buildings of a new assignment: only the parts a move
    touched are dissolved again; the rest are the base's rows as they were."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    touched: dict[str, list[tuple]] = {}
    if not moved:
        return _reflagged(s, layers, touched, flags)
    moved_idx = np.array([s.units.index[m.unit] for m in moved])
    unit_geoms = s.unit_frame.geometry.to_numpy()
    touched["units"] = [tuple(b) for b in shapely.bounds(unit_geoms[moved_idx])]
    new_metric: dict[str, shapely.Geometry] = {}
    codes_at: dict[str, np.ndarray] = {}  # each unit's code per level, made once

    def codes_of(level: str) -> np.ndarray:
        if level not in codes_at:
            codes_at[level] = ge.level_codes(micro, level)
        return codes_at[level]

    for level in ("microgrid", "grid", "community", "street"):
        name = ge.LEVEL_LAYERS[level]
        n = LENGTHS[level]
        old = s.layers[name]
        # a part changes only if units crossed its edge: a move inside a community leaves
        # the community (and its street) exactly as it was
        crossed = [m for m in moved if m.before[:n] != m.after[:n]]
        if not crossed:
            continue
        hit = {m.before[:n] for m in crossed} | {m.after[:n] for m in crossed}
        codes = codes_of(level)
        child = None if level == "microgrid" else codes_of(_child(level))
        rows = []
        summary = ge.summary(s.units, micro, level, hit)
        by_code = old.set_index("code")
        for code in sorted(hit):
            if code not in summary.index:
                continue  # lost all its units: retired
            inside = codes == code
            if child is None:
                geom = union_parts(s.metric[inside], _units_near(s, ~inside))
            else:
                kids = sorted(set(child[inside]))
                parts = _metric_parts(s, kids, new_metric, _child(level))
                geom = union_parts(parts, _units_near(s, ~inside))
            new_metric[code] = geom
            rows.append(_part_row(level, code, geom, summary.loc[code], by_code, s, flags))
        metric_frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=s.crs)
        fresh = metric_frame.to_crs(4326) if len(metric_frame) else metric_frame
        replaced = old["code"].isin(hit).to_numpy()
        layers[name] = _with_rows(old[~replaced], fresh, old.dtypes)
        gone = old[replaced].geometry.to_numpy()
        touched[name] = [tuple(b) for b in shapely.bounds(np.r_[gone, fresh.geometry.to_numpy()])]
    if "buildings" in s.layers:
        b = s.layers["buildings"].copy(deep=False)  # copy on write: the base's stays as it was
        # every building in a moved unit, a building inside a larger one (no cell) too
        code_of = {str(s.units.codes[i]): micro[i] for i in moved_idx}
        unit = pd.Series(s.units_of(b), index=b.index)
        hit_b = unit.isin(code_of).to_numpy()
        if hit_b.any():
            b.loc[hit_b, "microgrid_code"] = unit[hit_b].map(code_of).to_numpy()
            if "grid_code" in b:
                b.loc[hit_b, "grid_code"] = b.loc[hit_b, "microgrid_code"].str[:15]
            touched["buildings"] = [tuple(x) for x in shapely.bounds(b.geometry.to_numpy()[hit_b])]
        layers["buildings"] = b
    return _reflagged(s, layers, touched, flags)


def _reflagged(
    s: PlanState,
    layers: dict[str, gpd.GeoDataFrame],
    touched: dict[str, list[tuple]],
    flags: ge.Flags,
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, list[tuple]]]:
    """``layers`` (the parts re-dissolved) with every part whose flag, note or records
    ``flags`` gives otherwise than its row says set as ``flags`` says, re-dissolved or not:
    a rebalance marks a micro-grid vertical, or a grid no longer oversize, without moving
    a unit of it, and the saved version must say so as the check did. The state's own
    flags (an edit's) are those its layers carry (:func:`flags_of`): nothing to set."""
    if flags is s.flags:
        return layers, touched
    for level in ("street", "community", "grid", "microgrid"):
        name = ge.LEVEL_LAYERS[level]
        frame = layers.get(name, s.layers[name])
        if "flag" not in frame or "note" not in frame:
            continue
        codes = frame["code"].astype(str)
        flag = codes.map(flags.flag).fillna("").to_numpy(dtype=object)
        note = codes.map(flags.note).fillna("").to_numpy(dtype=object)
        stale = (frame["flag"].fillna("").to_numpy(dtype=object) != flag) | (
            frame["note"].fillna("").to_numpy(dtype=object) != note
        )
        if level == "microgrid" and "record_codes" in frame:
            rc = codes.map(flags.record_codes).fillna(codes).to_numpy(dtype=object)
            stale |= frame["record_codes"].fillna("").to_numpy(dtype=object) != rc
        if not stale.any():
            continue
        frame = frame.copy(deep=False)  # copy on write: the base's stays as it was
        at = frame.index[stale]
        frame.loc[at, "flag"], frame.loc[at, "note"] = flag[stale], note[stale]
        if level == "microgrid" and "record_codes" in frame:
            frame.loc[at, "record_codes"] = rc[stale]
        if level == "grid" and "grid_type" in frame:
            kinds = np.where(flag[stale] == "dedicated", "dedicated", "basic")
            frame.loc[at, "grid_type"] = kinds
        band = None if level == "street" else getattr(s.limits, level)
        if band is not None and "deviation_pct" in frame:
            records = codes[stale].map(lambda c: flags.records.get(c, 1)).to_numpy(dtype=float)
            hh = frame.loc[at, "households"].to_numpy(dtype=float)
            frame.loc[at, "deviation_pct"] = (hh / records - band.target) / band.target * 100
        layers[name] = frame
        boxes = shapely.bounds(frame.geometry.to_numpy()[stale])
        touched[name] = [*touched.get(name, []), *(tuple(b) for b in boxes)]
    return layers, touched


def _with_rows(keep: gpd.GeoDataFrame, fresh: gpd.GeoDataFrame, dtypes: pd.Series):
    """The rows ``keep`` and ``fresh`` (WGS84) in one layer in code order, with the
    columns and types of ``dtypes`` (an empty road share keeps its float column). A
    layer kept in code order takes the new rows where they fall instead of sorting a
    city's 40,000 micro-grids at each save."""
    fresh = fresh[[c for c in dtypes.index if c in fresh.columns]].sort_values("code")
    frame = cast_like(
        gpd.GeoDataFrame(pd.concat([keep, fresh]), geometry="geometry", crs=4326), dtypes
    )
    kept = keep["code"].to_numpy(dtype=object)
    if not pd.Index(kept).is_monotonic_increasing:
        return frame.sort_values("code").reset_index(drop=True)
    at = np.searchsorted(kept, fresh["code"].to_numpy(dtype=object)) + np.arange(len(fresh))
    new = np.zeros(len(frame), dtype=bool)
    new[at] = True
    order = np.empty(len(frame), dtype=np.int64)
    order[new] = np.arange(len(keep), len(frame))
    order[~new] = np.arange(len(keep))
    return frame.iloc[order].reset_index(drop=True)


def cast_like(frame: gpd.GeoDataFrame, dtypes: pd.Series) -> gpd.GeoDataFrame:
    """``frame`` with each column (but the geometry) in its type in ``dtypes`` where it
    converts (rows joined from elsewhere come as objects or floats): a layer keeps its
    types, so that a save of it can be a patch (``patch_of``)."""
    for col, dtype in dtypes.items():
        if col != frame.geometry.name and col in frame and frame[col].dtype != dtype:
            with contextlib.suppress(TypeError, ValueError):
                frame[col] = frame[col].astype(dtype)
    return frame


def unit_of_buildings(units: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """The code of the unit each building is in ("" where none is): the unit of its own
    cell, or, for a building inside a larger one (which has no cell), the unit holding
    its representative point. ``units`` is a plan's units layer, both in one CRS."""
    has = units["building_id"].notna().to_numpy()
    own = dict(
        zip(units["building_id"].astype(str)[has], units["code"].astype(str)[has], strict=True)
    )
    unit = buildings["building_id"].astype(str).map(own).fillna("").to_numpy(dtype=object)
    loose = np.flatnonzero(unit == "")
    if len(loose):
        points = shapely.point_on_surface(buildings.geometry.to_numpy()[loose])
        tree = shapely.STRtree(units.geometry.to_numpy())
        at, where = tree.query(points, predicate="within")
        unit[loose[at]] = units["code"].astype(str).to_numpy()[where]
    return unit


def _units_near(s: PlanState, outside: np.ndarray):
    """A function giving the units among ``outside`` that touch a hole: a sliver hole in
    a part is filled only where no other part's unit lies."""

    def near(hole: shapely.Geometry) -> np.ndarray:
        pool = s.metric[outside]
        return pool[shapely.intersects(pool, hole)]

    return near


def _metric_parts(
    s: PlanState, codes: list[str], fresh: dict[str, shapely.Geometry], level: str
) -> np.ndarray:
    """Metric polygons of ``codes``: re-dissolved ones from ``fresh``, others from the base."""
    missing = [c for c in codes if c not in fresh]
    if missing:
        old = s.layers[ge.LEVEL_LAYERS[level]]
        rows = old[old["code"].isin(missing)]
        fresh.update(zip(rows["code"], rows.geometry.to_crs(s.crs).to_numpy(), strict=True))
    return np.array([fresh[c] for c in codes], dtype=object)


def _child(level: str) -> str:
    return {"grid": "microgrid", "community": "grid", "street": "community"}[level]


def new_name(level: str, code: str, s: PlanState) -> str:
    """A placeholder name for a part an edit made, carrying its parent's name as
    delineation does (社区002第3网格)."""
    parent = {"community": "streets", "grid": "communities", "microgrid": "grids"}.get(level)
    names = s.layers.get(parent) if parent else None
    parent_name = ""
    if names is not None and "name" in names:
        found = names.loc[names["code"] == code[: LENGTHS[level] - 3], "name"]
        parent_name = str(found.iat[0]) if len(found) else ""
    return placeholder_name(level, code, parent_name)


def _part_row(
    level: str,
    code: str,
    geom: shapely.Geometry,
    summary: pd.Series,
    old: pd.DataFrame,
    s: PlanState,
    flags: ge.Flags,
) -> dict[str, Any]:
    """Attributes of one re-dissolved part: counts and metrics afresh, name, flag and
    note carried over (road share needs the roads, so it is left empty until the plan is
    delineated or validated again)."""
    import math

    exists = code in old.index
    hh = float(summary.households)
    area = shapely.area(geom)
    perim = shapely.length(geom)
    band = None if level == "street" else getattr(s.limits, level)
    records = flags.records.get(code, 1)
    row = {
        "code": code,
        "parent_code": code[: LENGTHS[level] - 3],
        "households": hh,
        "population": float(summary.population),
        "area_km2": area / 1e6,
        "name": old["name"].get(code) if exists else new_name(level, code, s),
        "flag": flags.flag.get(code, ""),
        "note": flags.note.get(code, ""),
        "deviation_pct": (hh / records - band.target) / band.target * 100 if band else None,
        "polsby_popper": 4 * math.pi * area / max(perim, 1e-9) ** 2,
        "road_share": None,
        "geometry": geom,
    }
    if level == "microgrid":
        row["record_codes"] = flags.record_codes.get(code, code)
    if level == "grid":
        row["grid_type"] = "dedicated" if row["flag"] == "dedicated" else "basic"
    return row


def check_state(base: PlanState, micro: np.ndarray, moved: list[ge.Move], flags: ge.Flags):
    """The violations of ``micro``: on a city, only the streets the
    moves touch are checked again; a move across streets, or other flags (completion),
    checks the whole plan."""
    across = any(m.before[:9] != m.after[:9] for m in moved)
    if base.scope is not None and (across or flags is not base.flags):
        raise RuntimeError("a state of one street checks moves inside it, under its flags")
    if across:
        base.streets.clear()  # a unit changed street: the cached street members are stale
    if not moved and flags is base.flags:
        return list(base.violations())
    if not base.city or across or flags is not base.flags:
        return ge.check(base.units, micro, base.limits, flags)
    streets = {m.before[:9] for m in moved}  # the base checked whole once, then by street
    return ge.check_streets(
        base.units, micro, base.limits, flags, base.violations(), streets, base.streets
    )


def next_state(
    base: PlanState,
    version: Version,
    micro: np.ndarray,
    layers: dict[str, gpd.GeoDataFrame],
    locks: set[str],
    found: list[Violation] | None = None,
    written: dict[str, pd.DataFrame] | None = None,
) -> PlanState:
    """The state of ``version``, saved from ``base`` with ``micro`` and the re-dissolved
    ``layers``; ``written``, the layers the save wrote (``written_layers``), if known."""
    merged = {**base.layers, **layers}
    flags = flags_of(merged)
    state = PlanState(
        version=version,
        units=base.units,
        unit_frame=base.unit_frame,
        metric=base.metric,
        crs=base.crs,
        limits=base.limits,
        micro=micro,
        flags=flags,
        locks=set(locks),
        layers=merged,
        # the found violations hold for the new state only under the same flags
        found=found if found is not None and flags == base.flags else None,
        streets=base.streets,
        building_units=base.building_units,
        scope=base.scope,
        outside=base.outside,
    )
    if written is None:
        written = written_layers(base, micro, layers)
    state.stored = {**base.stored, **written}
    return state


def written_layers(
    base: PlanState, micro: np.ndarray, layers: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """The layers a version made from ``base`` stores: ``layers`` (those an edit
    re-dissolved or rewrote) and, when units moved, the units layer with each unit's
    micro-grid, grid and community codes."""
    out = dict(layers)
    if not np.array_equal(micro, base.micro) or "units" in out:
        units = base.unit_frame.copy(deep=False)  # copy on write: the base's stays as it was
        units["parent_code"] = micro
        units["grid_code"] = ge.level_codes(micro, "grid")
        units["community_code"] = ge.level_codes(micro, "community")
        out["units"] = units
    return out
