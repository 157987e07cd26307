"""New households for a stored plan from a new OSM extract of its district (a year on:
compounds built, blocks cleared), for `wangge rebalance`.

The extract's buildings are read and estimated as ingest reads and estimates them
(:func:`wangge.data.osm.read_osm`, :func:`wangge.geo.households.estimate_households`, the
default household model or the one given). They are then matched to the plan's buildings
by id:

- a building the extract holds as the plan does (the same use, the same floors and a
  footprint within :data:`SAME_FOOTPRINT` of the plan's) keeps the plan's count, whether
  the plan estimated it, calibrated it or was given it: an unchanged building never drifts;
- a building whose use, floors or footprint changed takes the model's new estimate;
- a building the plan lacks is new: it joins the unit that holds its representative point
  (a new building outside every unit, beyond the district, is left out and counted);
- a building of the plan the extract no longer holds is gone: it has no households.

A road of the extract that cuts blocks and crosses between two units of one block (the
straight line between their centres), where the plan was drawn without it, is a new road
(:func:`new_roads`): the edge between those units now runs along a road, and a compound it
crosses is two compounds (or more) from then on, its parts numbered ``<id>-1``, ``<id>-2``
in unit order, so that a grid may end at the road. The units themselves are not drawn
again: a unit the road runs through stays whole.

Each unit's new count is the sum over the buildings it now holds. The buildings layer of
the rebalanced version drops the gone buildings, gains the new ones, and holds the
changed ones as the extract has them (use, floors, footprint and the new estimate; the
unit around it stays as drawn).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from wangge.data import osm as osm_reader
from wangge.errors import InputError
from wangge.geo import households as geo_households
from wangge.geo.delineation import edge_kind
from wangge.plan_state import PlanState, unit_of_buildings

#: File names read as an OSM extract.
OSM_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2", ".osm.pbf", ".pbf")
#: A footprint is the same when the area of its difference from the plan's is at most this
#: share of its area (a round trip through a store and back moves vertices by millimetres).
SAME_FOOTPRINT = 0.01
#: The share of the plan's buildings an extract must hold (by id) to be read as the same
#: district a year on; below it every count would be re-estimated, so it is refused.
MIN_MATCHED = 0.5
#: A new road divides a block when it leaves two parts of it at least this large (m²); a
#: road the plan was drawn with that ends inside a block leaves one.
MIN_PART_M2 = 50.0


def is_extract(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(OSM_SUFFIXES)


def extract_buildings(
    extract: osm_reader.OsmExtract,
    path: str | Path,
    state: PlanState,
    households_config: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """The extract's buildings with the model's estimate, in the plan's metric CRS."""
    if not len(extract.buildings):
        raise InputError("the OSM extract holds no buildings", path)
    params = geo_households.load_params(households_config)
    footprints = extract.buildings.to_crs(state.crs).reset_index(drop=True)
    return geo_households.estimate_households(
        footprints,
        extract.landuse.to_crs(state.crs),
        extract.facilities.to_crs(state.crs),
        params,
    )


def compare_buildings(
    old: gpd.GeoDataFrame, new: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the plan's buildings ``old`` and the extract's ``new`` (one metric CRS):
    the position in ``new`` of each old building (-1: gone), whether each old building
    is unchanged, and the positions of the new buildings the plan lacks."""
    old_ids = pd.Index(old["building_id"].astype(str))
    new_ids = pd.Index(new["building_id"].astype(str))
    if not new_ids.is_unique:
        dup = new_ids[new_ids.duplicated()][0]
        raise InputError(f"building {dup} is in the extract twice", where="buildings")
    at = new_ids.get_indexer(old_ids)
    both = np.flatnonzero(at >= 0)
    same = np.zeros(len(old), dtype=bool)
    if len(both):
        a = old.geometry.to_numpy()[both]
        b = new.geometry.to_numpy()[at[both]]
        area = np.maximum(shapely.area(a), 1e-9)
        moved = shapely.area(shapely.symmetric_difference(a, b)) / area
        use_old = old["building"].astype(str).to_numpy()[both]
        use_new = new["building"].astype(str).to_numpy()[at[both]]
        floors_old = old["levels"].to_numpy(dtype=float)[both]
        floors_new = new["levels"].to_numpy(dtype=float)[at[both]]
        same[both] = (moved <= SAME_FOOTPRINT) & (use_old == use_new) & (floors_old == floors_new)
    added = np.setdiff1d(np.arange(len(new)), at[both], assume_unique=True)
    return at, same, added


def households_from_extract(
    path: str | Path, state: PlanState, households_config: str | Path | None = None
):
    """:class:`~wangge.rebalancing.NewHouseholds` from a new OSM extract of the plan's
    district (the module's rules); its notes count the buildings kept, changed, new and
    gone."""
    from wangge.rebalancing import NewHouseholds

    path = Path(path)
    extract = osm_reader.read_osm(path)
    new = extract_buildings(extract, path, state, households_config)
    plan_b = state.layers["buildings"]
    old = plan_b.to_crs(state.crs)
    at, same, added = compare_buildings(old, new)
    matched = float((at >= 0).mean()) if len(at) else 0.0
    if matched < MIN_MATCHED:
        raise InputError(
            f"only {matched:.0%} of the plan's {len(at):,} buildings are in this extract (by"
            f" OSM id): it is not an extract of the plan's district, or the plan's buildings"
            f" came from another source; give their new households as a table instead",
            path,
        )
    count = np.where(same, plan_b["households"].to_numpy(dtype=float), 0.0)
    changed = (at >= 0) & ~same
    count[changed] = new["households"].to_numpy(dtype=float)[at[changed]]

    # the changed buildings' rows are written again, with the extract's use and floors
    ids = plan_b["building_id"].astype(str).to_numpy()
    rewritten = _new_rows(new.iloc[at[changed]], state)
    fresh = _new_rows(new.iloc[added], state)
    placed = fresh["unit"].to_numpy(dtype=object) != ""
    fresh = fresh[placed]
    gone = ids[at < 0]

    unit_old = state.units_of(plan_b)
    units = np.r_[unit_old, fresh["unit"].to_numpy(dtype=object)]
    value = np.r_[count, fresh["households"].to_numpy(dtype=float)]
    was = plan_b["households"].to_numpy(dtype=float)
    differ = np.r_[count != was, np.ones(len(fresh), dtype=bool)]
    hit = np.unique(units[differ & (units != "")])
    live = units != ""
    sums = pd.Series(value[live]).groupby(units[live]).sum()
    by_unit = sums.reindex(hit).fillna(0.0).astype(float)
    # every building of the plan named, so that each keeps or takes its count as above
    buildings = pd.Series(count, index=ids)
    notes = {
        "buildings as in the plan": int(same.sum()),
        "buildings changed (new estimate)": int(changed.sum()),
        "new buildings": int(placed.sum()),
        "buildings gone": len(gone),
    }
    if (~placed).any():
        notes["new buildings outside every unit (left out)"] = int((~placed).sum())
    roads = new_roads(extract, state)
    if len(roads.edges):
        notes["roads across a block the plan did not follow (new roads)"] = len(roads.names)
    return NewHouseholds(
        by_unit,
        buildings,
        notes,
        added=pd.concat([rewritten, fresh]).drop(columns="unit"),
        gone=pd.Index([*gone, *ids[changed]]),
        roads=roads,
    )


def _new_rows(new: gpd.GeoDataFrame, state: PlanState) -> gpd.GeoDataFrame:
    """The extract's new buildings as rows of the plan's buildings layer (WGS84), each
    with the unit it falls in ('' for none) and that unit's block, compound and codes."""
    layer = state.layers["buildings"]
    rows = new.to_crs(layer.crs).reset_index(drop=True)
    unit = unit_of_buildings(state.unit_frame, rows)
    uf = state.unit_frame
    at = pd.Index(uf["code"].astype(str)).get_indexer(unit)
    out = {}
    for col in layer.columns:
        if col == layer.geometry.name:
            continue
        if col in rows:
            out[col] = rows[col].to_numpy()
        elif col in ("block_id", "compound_id") and col in uf:
            out[col] = np.where(at >= 0, uf[col].to_numpy(dtype=object)[at], None)
        elif col == "microgrid_code":
            out[col] = np.where(at >= 0, state.micro[at], None)
        elif col == "grid_code":
            out[col] = np.where(at >= 0, [str(m)[:15] for m in state.micro[at]], None)
        else:
            out[col] = np.full(len(rows), None, dtype=object)
    out[layer.geometry.name] = rows.geometry.to_numpy()
    frame = gpd.GeoDataFrame(out, geometry=layer.geometry.name, crs=layer.crs)
    frame["unit"] = unit
    return frame


@dataclass
class NewRoads:
    """The unit graph's edges a new road now runs between (positions in its edge arrays),
    what each runs along (:func:`~wangge.geo.delineation.edge_kind`), and the roads'
    ids and names."""

    edges: np.ndarray
    kinds: np.ndarray
    names: dict[str, str]


def new_roads(extract: osm_reader.OsmExtract, state: PlanState) -> NewRoads:
    """The roads of ``extract`` (those that cut blocks) that divide a block of the plan
    (the union of its units) into parts, as they would have divided it had they been
    there when the plan was drawn, with the unit graph's edges they now run between:
    those joining units of the block on different sides. Candidates are the roads that
    cross the straight line between the centres of two neighbouring units of one block; a
    road the plan was drawn with bounds its blocks, or ends inside one."""
    roads = extract.roads[extract.roads["cuts_blocks"].astype(bool)].to_crs(state.crs)
    g = state.units.graph
    inside = np.flatnonzero(g.along == 0)
    none = NewRoads(np.array([], dtype=np.int64), np.array([], dtype=np.int8), {})
    if not len(roads) or not len(inside):
        return none
    a, b = g.xy[g.eu[inside]], g.xy[g.ev[inside]]
    segments = shapely.linestrings(np.stack([a, b], axis=1))
    seg, road = shapely.STRtree(roads.geometry.to_numpy()).query(segments, predicate="intersects")
    block = state.unit_frame["block_id"].astype(str).to_numpy()
    lines, rank = roads.geometry.to_numpy(), roads["rank"].to_numpy(dtype=float)
    kind = np.zeros(len(g.eu), dtype=np.int8)
    used = set()
    pairs = {(block[g.eu[e]], int(r)) for e, r in zip(inside[seg], road, strict=True)}
    for blk, r in sorted(pairs):
        members = np.flatnonzero(block == blk)
        side = _sides(state.metric[members], g.xy[members], lines[r])
        if side is None:
            continue
        label = np.full(state.units.n, -1)
        label[members] = side
        across = (g.along == 0) & (label[g.eu] >= 0) & (label[g.eu] != label[g.ev])
        kind[across] = np.maximum(kind[across], edge_kind("road", rank[r]))
        used.add(r)
    if not used:
        return none
    edges = np.flatnonzero(kind > 0)
    hit = roads.iloc[sorted(used)]
    names = dict(zip(hit["road_id"].astype(str), hit["name"].fillna("").astype(str), strict=True))
    return NewRoads(edges, kind[edges], names)


def _sides(cells: np.ndarray, centres: np.ndarray, line: shapely.Geometry) -> np.ndarray | None:
    """The part of a block each of its units lies in once ``line`` divides the block (the
    union of ``cells``) into parts of at least :data:`MIN_PART_M2` holding units; None
    when it does not divide it."""
    rest = shapely.difference(shapely.union_all(cells), shapely.buffer(line, 0.5))
    parts = shapely.get_parts(rest)
    parts = parts[shapely.area(parts) >= MIN_PART_M2]
    if len(parts) < 2:
        return None
    points = shapely.points(centres)
    # each unit in the part nearest its centre (a centre on the road itself has a side)
    side = np.argmin(shapely.distance(points[:, None], parts[None, :]), axis=1)
    return side if len(np.unique(side)) >= 2 else None


def with_roads(
    state: PlanState, roads: NewRoads, edges: pd.DataFrame
) -> tuple[PlanState, dict[str, pd.DataFrame]]:
    """The state with ``roads`` on its unit graph (the edges they run between no longer
    inside a block or a compound), each compound they cut renumbered by its parts, and
    the layers that changes: the unit edges (``edges``, the stored layer, in the graph's
    order), the units and the buildings (their compound)."""
    g = state.units.graph
    if len(edges) != len(g.eu):
        raise InputError("the unit edges stored are not the unit graph's", where="unit_edges")
    along, linked = g.along.copy(), g.compound.copy()
    along[roads.edges] = roads.kinds
    linked[roads.edges] = False
    compound = state.units.compound.copy()
    for cid in sorted({str(c) for c in compound[g.eu[roads.edges]] if c is not None}):
        members = np.flatnonzero(compound.astype(str) == cid)
        keep = linked & np.isin(g.eu, members) & np.isin(g.ev, members)
        pos = np.full(state.units.n, -1)
        pos[members] = np.arange(len(members))
        m = sparse.coo_matrix(
            (np.ones(int(keep.sum())), (pos[g.eu[keep]], pos[g.ev[keep]])),
            shape=(len(members),) * 2,
        )
        k, label = connected_components(m, directed=False)
        if k > 1:  # parts numbered in unit order
            first = pd.Series(np.arange(len(members))).groupby(label).min().sort_values()
            number = {lab: i + 1 for i, lab in enumerate(first.index)}
            compound[members] = [f"{cid}-{number[lab]}" for lab in label]
    graph = replace(g, along=along, compound=linked)
    units = replace(state.units, graph=graph, compound=compound)
    frame = state.unit_frame.copy()
    frame["compound_id"] = pd.Series(compound, index=frame.index).astype(frame["compound_id"].dtype)
    out = {"unit_edges": edges.assign(along=along.astype(np.int64), compound=linked)}
    out["units"] = frame
    layers = dict(state.layers)
    if "buildings" in layers and "compound_id" in layers["buildings"]:
        b = layers["buildings"].copy()
        unit = pd.Series(state.units_of(b), index=b.index)
        by_unit = pd.Series(compound, index=frame["code"].astype(str).to_numpy())
        has = unit.isin(by_unit.index).to_numpy()
        b.loc[has, "compound_id"] = unit[has].map(by_unit).to_numpy()
        layers["buildings"] = out["buildings"] = b
    refreshed = replace(state, units=units, unit_frame=frame, layers=layers, found=None)
    return refreshed, out
