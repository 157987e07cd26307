"""One street of a stored city version, held by the editor instead of the whole city.

A planner edits one street at a time, and a city of 10⁶ households holds some 64 of them:
reading every unit, edge, polygon and building to move one unit took 3.7–4.9 s. An edit
inside one street changes nothing outside it (units never change street inside it, a
compound lies in one street, a street polygon without holes has no other street's unit
inside it), so :func:`load_street` reads that street's rows alone (``Store.query`` with a
code prefix), with what the editor must know of the others without their geometry:

- every unit's micro-grid and compound (``Store.unit_parents``): which grids exist, which
  compounds cross the street's edge, and the grids across the street's edge;
- the others' violations as the version stored them, each with the box of what it names.

Its saves write patches on the whole stored layers (``Store.save(partial=True)``). Where
any of that does not hold, it answers None, and the editor reads the whole version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.store import Store, Version
from wangge.errors import NotFound
from wangge.geo import assignment as ge
from wangge.geo.validate import Violation
from wangge.plan_state import POLYGONS, PlanState, assignment_frames, box_of, flags_of

#: The unit graph's stored columns (``unit_edges``), read without the rest.
EDGE_KEYS = ("a", "b", "length_m", "along", "compound")


class NoSuchStreet(NotFound):
    """The version has several streets, and not this one."""


@dataclass(frozen=True)
class Outside:
    """What a street's state knows of the rest of its version (none of it changes while
    the street is edited)."""

    #: Every grid code of the version, the street's too.
    grids: frozenset[str]
    #: The unit graph's edges leaving the street: the position of the end inside it and
    #: the grid of the end outside it.
    edge_inside: np.ndarray
    edge_grid: np.ndarray
    #: The stored violations of the other streets.
    found: tuple[Violation, ...]
    #: The WGS84 box of what each of those names.
    boxes: dict[str, list[float]] = field(default_factory=dict)


def street_of_moves(moves: list[tuple[str, str]]) -> str | None:
    """The one street all ``moves`` go into (a grid or micro-grid code starts with its
    street's 9 digits), or None."""
    streets = {str(to)[:9] for _, to in moves}
    if len(streets) != 1:
        return None
    (street,) = streets
    return street if len(street) == 9 and street.isdigit() else None


def load_street(store: Store, v: Version, street: str) -> PlanState | None:
    """The state of ``street`` of version ``v``, or None where the whole version must be
    read: a plan of one street, a street polygon with holes, or a compound with units in
    another street.

    Raises
    ------
    NoSuchStreet
        When the version has several streets and not ``street``.
    """
    from wangge.data.plan import read_stored

    infos = store.layer_infos(v.plan_id, v.version)
    if any(n not in infos for n in ("units", "unit_edges", *POLYGONS)):
        return None  # the whole read says what is missing
    if infos["streets"].count <= 1:
        return None
    plan_id, version = v.plan_id, v.version
    mine = store.query(plan_id, version, "streets", codes=[street]).frame
    if not len(mine):
        raise NoSuchStreet(f"no street {street} in version {version}", plan_id, where="street")
    if len(mine) != 1 or _has_holes(mine.geometry.iat[0]):
        return None
    light = store.unit_parents(plan_id, version)
    inside = light["parent_code"].str.startswith(street).to_numpy()
    if not inside.any():
        return None
    compound = light["compound_id"].map(_text)
    comps = set(compound[inside].dropna())
    if comps and compound[~inside].isin(comps).any():
        return None  # a compound across the street's edge is checked on all its units
    plan = read_stored(store, resolved=v)
    layers = {
        name: store.query(plan_id, version, name, prefix=("code", street)).frame
        for name in POLYGONS
    }
    if "buildings" in infos:
        layers["buildings"] = store.query(
            plan_id, version, "buildings", prefix=("microgrid_code", street)
        ).frame
    units_frame = store.query(plan_id, version, "units", prefix=("parent_code", street)).frame
    codes = light["code"].to_numpy(dtype=object)
    held = codes[inside].astype(np.int64)
    edges = _edges(store, v, int(held.min()), int(held.max()))
    ends_in = pd.Index(codes[inside])
    a_in = ends_in.get_indexer(edges["a"].astype(str)) >= 0
    b_in = ends_in.get_indexer(edges["b"].astype(str)) >= 0
    unit_frame, metric, units, micro = assignment_frames(
        units_frame, edges[a_in & b_in], plan.source, plan.crs
    )
    # the edges leaving the street: the end inside and the grid of the end outside
    grid_of = pd.Series(light["parent_code"].str[:15].to_numpy(), index=light["code"])
    leave = a_in ^ b_in
    in_end = np.where(a_in[leave], edges["a"][leave], edges["b"][leave]).astype(str)
    out_end = np.where(a_in[leave], edges["b"][leave], edges["a"][leave]).astype(str)
    parents = light["parent_code"].to_numpy(dtype=object)
    found = _stored_found(store, v, street, comps)
    outside = Outside(
        grids=frozenset(p[:15] for p in parents),
        edge_inside=np.array([units.index[c] for c in in_end], dtype=np.int64),
        edge_grid=grid_of.reindex(out_end).to_numpy(dtype=object),
        found=tuple(found),
        boxes=_boxes(store, v, found, light, compound),
    )
    state = PlanState(
        version=v,
        units=units,
        unit_frame=unit_frame,
        metric=metric,
        crs=plan.crs,
        limits=plan.limits,
        micro=micro,
        flags=flags_of(layers),
        locks=set(v.meta.get("locks") or []),
        layers=layers,
        scope=street,
        outside=outside,
    )
    state.stored = {"units": unit_frame, **layers}
    state.found = list(found) + ge.check(units, state.micro, state.limits, state.flags)
    return state


def _text(value) -> str | None:
    """A compound id as text (the database gives text, SQLite JSON's own types)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _has_holes(geom: shapely.Geometry) -> bool:
    parts = shapely.get_parts(geom)
    return bool(np.any(shapely.get_num_interior_rings(parts) > 0))


def _edges(store: Store, v: Version, lo: int, hi: int) -> pd.DataFrame:
    """The edges of the version's unit graph (``unit_edges``) with an end among the
    units coded ``lo`` to ``hi`` (a street's are numbered together), in their types."""
    ends = {"a": (lo, hi), "b": (lo, hi)}
    frame = store.properties(v.plan_id, v.version, "unit_edges", EDGE_KEYS, between=ends)
    return pd.DataFrame(
        {
            "a": frame["a"].astype(np.int64),
            "b": frame["b"].astype(np.int64),
            "length_m": frame["length_m"].astype(float),
            "along": frame["along"].astype(np.int8),
            "compound": frame["compound"].map(_truth).astype(bool),
        }
    )


def _truth(value) -> bool:
    return value in (True, 1, "1", "true", "True")


def _stored_found(store: Store, v: Version, street: str, comps: set[str]) -> list[Violation]:
    """The version's stored violations of everything but ``street`` and its compounds."""
    infos = store.layer_infos(v.plan_id, v.version)
    if "violations" not in infos:
        return []
    table = store.query(v.plan_id, v.version, "violations").frame
    out = []
    for r in table.itertuples():
        code = str(r.code)
        if r.level == "compound" and code in comps:
            continue
        if r.level in ge.LEVEL_LAYERS and code[:9] == street:
            continue
        out.append(Violation(str(r.level), code, str(r.check), str(r.severity), str(r.reason)))
    return out


def _boxes(
    store: Store,
    v: Version,
    found: list[Violation],
    light: pd.DataFrame,
    compound: pd.Series,
) -> dict[str, list[float]]:
    """The WGS84 box of what each violation names (to zoom to), read for those alone."""
    out: dict[str, list[float]] = {}
    for level, layer in ge.LEVEL_LAYERS.items():
        codes = sorted({f.code for f in found if f.level == level})
        if codes:
            frame = store.query(v.plan_id, v.version, layer, codes=codes).frame
            out |= _bounds(frame, frame["code"].astype(str))
    comps = sorted({f.code for f in found if f.level == "compound"})
    if comps:
        units = light["code"][compound.isin(comps).to_numpy()].tolist()
        frame = store.query(v.plan_id, v.version, "units", codes=units).frame
        code_comp = dict(zip(light["code"], compound, strict=True))
        by = frame["code"].astype(str).map(code_comp)
        for comp, part in frame.groupby(by.to_numpy()):
            out[str(comp)] = box_of(shapely.total_bounds(part.geometry.to_numpy()))
    return out


def _bounds(frame: gpd.GeoDataFrame, codes: pd.Series) -> dict[str, list[float]]:
    bounds = shapely.bounds(frame.geometry.to_numpy())
    return {c: box_of(b) for c, b in zip(codes, bounds, strict=True)}
