"""`wangge rebalance`: a stored plan version and new household counts in, the next version
out, with every drifted grid back in its band and every other grid as it was.

The household counts come as a table by unit, as any household file ingest reads (by
building id or by location; :mod:`wangge.data.userfiles`), or as a new OSM extract of the
district (:mod:`wangge.extract_households`). They replace the plan's: a
building named gets its new count, a unit the sum over its buildings (or its new count
where the table is by unit); a unit's population scales with its households (the
district's persons per household where it had none). The repairs are
:func:`wangge.geo.rebalance.rebalance`'s; the new version is saved through the editor's
commit, so the rule book, scopes, audit and versioning are the same
as for an edit. A dry run (the default) checks and reports without saving.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from wangge.data import userfiles
from wangge.editing import Editor, EditResult
from wangge.errors import InputError
from wangge.extract_households import NewRoads, households_from_extract, is_extract, with_roads
from wangge.geo import assignment as ge
from wangge.geo.rebalance import Rebalanced, rebalance
from wangge.plan_state import POLYGONS, PlanState, cast_like
from wangge.scopes import Who, check_scope

#: Columns naming the unit a household count belongs to (the plan's unit codes; a units
#: layer exported from the plan has them in ``code``).
UNIT_COLUMNS = ("unit", "unit_code", "单元", "code")
#: The households column, as every household file names it.
HOUSEHOLD_COLUMNS = userfiles.COLUMN_NAMES["households"]


@dataclass
class NewHouseholds:
    """New households by unit code, the new counts of the buildings a file named (by
    building id; empty for a table by unit), and what happened on the way in."""

    units: pd.Series
    buildings: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    notes: dict[str, int] = field(default_factory=dict)
    #: New buildings (a new OSM extract's), as rows of the plan's buildings layer (WGS84)
    added: gpd.GeoDataFrame | None = None
    #: The ids of the plan's buildings that are gone (not in a new OSM extract)
    gone: pd.Index = field(default_factory=lambda: pd.Index([], dtype=object))
    #: The roads a new OSM extract has that the plan was drawn without
    roads: NewRoads | None = None


@dataclass
class RebalanceResult:
    """The saved (or, for a dry run, checked) version and what the repairs did."""

    edit: EditResult
    repairs: Rebalanced
    households_before: float
    households_after: float


def read_households(
    path: str | Path,
    state: PlanState,
    encoding: str = "utf-8",
    households_config: str | Path | None = None,
) -> NewHouseholds:
    """New households from a table (CSV in ``encoding``, or XLSX) by unit, from any
    household file ingest reads (by building id or by location: CSV, XLSX, GeoJSON, GPKG,
    zipped SHP; :func:`wangge.data.userfiles.read_households`), or from a new OSM extract
    of the district (.osm, .osm.gz, .osm.bz2, .osm.pbf; estimated with the household model
    of ``households_config``, the default one without it; :mod:`wangge.extract_households`).

    A table with a unit column (``unit``, ``unit_code``; the plan's unit codes) gives each
    named unit its count. Otherwise the rows are joined to the plan's buildings as ingest
    joins them, and each unit's count is the sum over its buildings, the new count where
    a row names the building and the plan's where none does.

    Raises
    ------
    InputError
        Naming the file and row: no households column, a count that is not a number from
        0 to 1,000,000, a unit listed twice or not in the plan, rows that match no building.
    """
    path = Path(path)
    if is_extract(path):
        return households_from_extract(path, state, households_config)
    if path.name.lower().endswith(userfiles.TABLE_SUFFIXES):
        table = userfiles.read_table(path, encoding)
        columns = {c.strip().lower(): c for c in table.columns}
        unit_col = next((columns[c] for c in UNIT_COLUMNS if c in columns), None)
        if unit_col is not None:
            hh_col = next((columns[c] for c in HOUSEHOLD_COLUMNS if c in columns), None)
            if hh_col is None:
                raise InputError(
                    f"no households column (one of {', '.join(HOUSEHOLD_COLUMNS)})", path
                )
            counts = userfiles.household_counts(table[hh_col].astype(str).str.strip(), hh_col, path)
            keys = table[unit_col].astype(str).str.strip()
            return households_for(state, keys, counts, "unit", path)
    buildings = state.layers["buildings"].to_crs(state.crs)
    imported = userfiles.read_households(path, buildings, encoding=encoding)
    new = by_building(state, imported.counts["households"].astype(float))
    new.notes = dict(imported.notes)
    return new


def households_for(
    state: PlanState, keys: pd.Series, counts: pd.Series, by: str, source: object
) -> NewHouseholds:
    """New households from counts keyed by unit code or by building id (``by``);
    ``source`` (a file, the request body) is named in errors with the row. Every key must
    be in the plan, once."""
    keys = keys.reset_index(drop=True)
    counts = counts.reset_index(drop=True)
    if by == "unit":
        known = pd.Index(state.units.codes.astype(str))
        return NewHouseholds(_by_key(keys, counts, known, "unit", source))
    known = pd.Index(state.layers["buildings"]["building_id"].astype(str))
    return by_building(state, _by_key(keys, counts, known, "building", source))


def _by_key(keys: pd.Series, counts: pd.Series, known: pd.Index, what: str, source) -> pd.Series:
    """Counts by key, each key in ``known`` and listed once; a file's rows are named by
    their line (the header is line 1), a body's by its field."""
    where = (
        (lambda row: f"row {row + 2}") if isinstance(source, Path) else (lambda row: "households")
    )
    dup = keys[keys.duplicated()]
    if len(dup):
        raise InputError(f"{what} {dup.iat[0]} is listed twice", source, where=where(dup.index[0]))
    unknown = ~keys.isin(known)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(
            f"{what} {keys.iat[row]!r} is not in the plan ({int(unknown.sum())} such rows)",
            source,
            where=where(row),
        )
    return pd.Series(counts.to_numpy(dtype=float), index=keys.to_numpy())


def by_building(state: PlanState, counts: pd.Series) -> NewHouseholds:
    """New households by unit from new counts by building id: a unit's count is the sum
    over the buildings in it, the new count where ``counts`` names the building and the
    plan's where it does not. A building is in the unit of its own cell, or (a building
    inside a larger one has no cell) in the unit that holds its representative point."""
    b = state.layers["buildings"]
    ids = b["building_id"].astype(str).to_numpy()
    unit = state.units_of(b)
    old = b["households"].to_numpy(dtype=float)
    new = pd.Series(ids).map(counts.astype(float)).to_numpy(dtype=float)
    named = ~np.isnan(new)
    value = np.where(named, new, old)
    placed = unit != ""
    hit = np.unique(unit[named & placed])
    sums = pd.Series(value[placed]).groupby(unit[placed]).sum()
    by_unit = sums.loc[hit].astype(float) if len(hit) else pd.Series(dtype=float)
    return NewHouseholds(by_unit, pd.Series(new[named], index=ids[named]))


def with_households(state: PlanState, households: NewHouseholds) -> tuple[PlanState, dict]:
    """The state with the new households (by unit code; units not named keep theirs),
    and the layers whose attributes that changes, rewritten: the units, each level's
    households, population and deviation, and the buildings' households."""
    frame = state.unit_frame.copy()
    codes = frame["code"].astype(str)
    old = frame["households"].to_numpy(dtype=float)
    by_unit = households.units.astype(float)
    new = codes.map(by_unit).fillna(pd.Series(old, index=frame.index)).to_numpy(dtype=float)
    pop = frame["population"].to_numpy(dtype=float)
    per = pop.sum() / old.sum() if old.sum() > 0 else 0.0
    ratio = np.divide(new, old, out=np.zeros_like(new), where=old > 0)
    new_pop = np.where(old > 0, pop * ratio, new * per)
    frame["households"], frame["population"] = new, new_pop
    graph = replace(state.units.graph, households=new, population=new_pop)
    units = replace(state.units, households=new, population=new_pop, graph=graph)
    layers = dict(state.layers)
    for level in ("street", "community", "grid", "microgrid"):
        name = ge.LEVEL_LAYERS[level]
        table = ge.summary(units, state.micro, level)
        f = layers[name].copy()
        code = f["code"].astype(str)
        f["households"] = code.map(table["households"]).fillna(0.0).to_numpy()
        f["population"] = code.map(table["population"]).fillna(0.0).to_numpy()
        band = None if level == "street" else getattr(state.limits, level)
        if band is not None and "deviation_pct" in f:
            records = code.map(lambda c: state.flags.records.get(c, 1)).to_numpy(dtype=float)
            f["deviation_pct"] = (f["households"] / records - band.target) / band.target * 100
        layers[name] = f
    if "buildings" in layers:
        b = _added_and_gone(layers["buildings"], households)
        ids = b["building_id"].astype(str)
        if len(households.buildings):  # a file by building: those named take their count
            named = ids.map(households.buildings.astype(float))
            b["households"] = named.fillna(b["households"].astype(float)).to_numpy()
        else:  # a table by unit: each building keeps its share of its unit
            unit = pd.Series(state.units_of(b), index=b.index)
            share = pd.Series(
                np.divide(new, old, out=np.ones_like(new), where=old > 0), index=codes.to_numpy()
            )
            scale = unit.map(share).fillna(1.0).to_numpy()
            b["households"] = b["households"].to_numpy(dtype=float) * scale
            # a unit that had none takes its new households on its buildings, shared out
            fresh = (old == 0) & (new > 0)
            for c, n in zip(codes[fresh], new[fresh], strict=True):
                hit = (unit == c).to_numpy()
                if hit.any():
                    b.loc[hit, "households"] = n / hit.sum()
        layers["buildings"] = b
    refreshed = replace(state, units=units, unit_frame=frame, layers=layers, found=None)
    rewritten = {n: layers[n] for n in (*POLYGONS, "buildings") if n in layers}
    rewritten["units"] = frame
    return refreshed, rewritten


def _added_and_gone(buildings: gpd.GeoDataFrame, households: NewHouseholds) -> gpd.GeoDataFrame:
    """The buildings layer without the gone buildings and with the new ones (a new OSM
    extract's), in the layer's columns and order (a copy either way)."""
    b = buildings
    if len(households.gone):
        b = b[~b["building_id"].astype(str).isin(households.gone)]
    if households.added is not None and len(households.added):
        added = households.added[list(b.columns)]
        b = cast_like(
            gpd.GeoDataFrame(pd.concat([b, added], ignore_index=True), crs=buildings.crs),
            buildings.dtypes,
        )
    return b.reset_index(drop=True).copy()


def rebalance_version(
    editor: Editor,
    plan_id: str,
    base_version: int,
    households: NewHouseholds | pd.Series | None = None,
    who: Who = None,
    comment: str = "",
    dry_run: bool = True,
) -> RebalanceResult:
    """Rebalance ``base_version`` of ``plan_id`` with new ``households`` (by unit code, or
    as :func:`read_households` gives them; None: the version's own, as edits left them)
    and, unless ``dry_run``, save the result as the next version."""
    if households is None:
        households = pd.Series(dtype=float)
    if isinstance(households, pd.Series):
        households = NewHouseholds(households)
    base = editor.base(plan_id, base_version, dry_run)
    state, rewritten = with_households(base, households)
    if households.roads is not None and len(households.roads.edges):
        from wangge.data.plan import read_stored

        edges = read_stored(editor.store, resolved=base.version).frame("unit_edges")
        state, by_road = with_roads(state, households.roads, edges)
        rewritten |= by_road
    # a planner changes households only inside their territory
    differ = state.units.households != base.units.households
    check_scope(who, set(ge.level_codes(base.micro[differ], "grid")), "a household change in")
    t0 = time.perf_counter()
    retired = editor.store.codes_ever(plan_id) - set(base.micro)
    done = rebalance(state.units, state.micro, state.limits, state.locks, state.flags, retired)
    took = time.perf_counter() - t0
    check_scope(who, set(done.changed) | set(done.micro_changed), "a rebalance of")
    meta = {
        "kind": "rebalance",
        "name": "",
        "moves": len(done.moves),
        "edited": [],
        "rebalance": {
            "out_before": done.out_before,
            "changed": done.changed,
            "created": done.created,
            "retired": done.retired,
            "unrepaired": done.unrepaired,
            "roads": {} if households.roads is None else households.roads.names,
        },
    }
    n_out = len(done.out_before)
    result = editor.commit(
        state,
        done.micro,
        done.moves,
        state.locks,
        meta,
        who,
        comment or f"rebalance: {n_out} grids out of band, {len(done.changed)} changed",
        dry_run,
        {"rebalance": took},
        done.flags,
        rewritten,
    )
    if result.saved:  # households changed in every rewritten layer: no cached tile holds
        for name, frame in rewritten.items():
            if len(frame) and hasattr(frame, "total_bounds"):
                result.touched[name] = [tuple(float(x) for x in frame.total_bounds)]
    result.extra = {
        "out_before": done.out_before,
        "changed": done.changed,
        "micro_changed": done.micro_changed,
        "created": done.created,
        "retired": done.retired,
        "unrepaired": done.unrepaired,
        "steps": done.steps,
        "households_before": float(base.units.households.sum()),
        "households_after": float(state.units.households.sum()),
    }
    return RebalanceResult(
        result,
        done,
        float(base.units.households.sum()),
        float(state.units.households.sum()),
    )
