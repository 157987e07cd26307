"""Solve all levels in one nested run and dissolve the parts into coded polygons."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.geo import codes as geo_codes
from wangge.geo._geom import GRID_M, drop_slivers
from wangge.geo.blocks import touching_edges
from wangge.geo.limits import Limits
from wangge.geo.partition import (
    Issue,
    Part,
    UnitGraph,
    choose_k,
    components,
    edges_within,
    partition,
)


def edge_kind(along: str, road_rank) -> int:
    """What the edge between two units runs along, as the unit graph's ``along`` holds it:
    0 inside one block, 1 a minor road, 2 a trunk, primary or secondary road (rank ≤ 3),
    3 a barrier (a river, a railway, a wall)."""
    if along == "barrier":
        return 3
    return 2 if (road_rank or 9) <= 3 else 1  # no rank (None, NaN): a minor road


def unit_graph(cells: gpd.GeoDataFrame, adjacency: pd.DataFrame) -> UnitGraph:
    """Build the unit graph of the cells.

    Parameters
    ----------
    cells
        Cells in a metric CRS with ``block_id``, ``households``, ``population`` and
        ``compound_id``.
    adjacency
        Block adjacency with ``block_a``, ``block_b``, ``along`` and ``road_rank``: what
        separates two cells of different blocks.
    """
    edges = touching_edges(cells.geometry)
    a, b = edges["a"].to_numpy(), edges["b"].to_numpy()
    blk = cells["block_id"].to_numpy()
    kind = {}
    for row in adjacency.itertuples():
        code = edge_kind(row.along, row.road_rank)
        kind[(row.block_a, row.block_b)] = kind[(row.block_b, row.block_a)] = code
    pair = pd.Series(list(zip(blk[a], blk[b], strict=True)), dtype=object)
    along = np.where(blk[a] == blk[b], 0, pair.map(kind).fillna(1).to_numpy()).astype(np.int8)
    comp = cells["compound_id"]
    same = comp.notna().to_numpy()[a] & (comp.to_numpy()[a] == comp.to_numpy()[b])
    geoms = cells.geometry.to_numpy()
    pts = shapely.centroid(geoms)
    return UnitGraph(
        households=cells["households"].to_numpy(dtype=float),
        population=cells["population"].to_numpy(dtype=float),
        area=shapely.area(geoms),
        perimeter=shapely.length(geoms),
        xy=np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]),
        eu=a,
        ev=b,
        length=edges["length_m"].to_numpy(),
        along=along,
        compound=same,
    )


@dataclass
class Nested:
    """Part index per unit at every level, and notes on special parts.

    ``flags`` holds, per level, the flag of each special part that is not ``heavy``:
    ``given`` (a unit taken from the user's boundary file), ``empty`` (no households, kept
    only because a given boundary makes it so) or ``infeasible`` (its parent's total fits no
    whole number of parts). ``given`` maps a part to its row in the given units' table.
    """

    street: np.ndarray
    community: np.ndarray
    grid: np.ndarray
    microgrid: np.ndarray
    notes: dict[str, dict[int, str]] = field(default_factory=dict)
    heavy: dict[str, set[int]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    flags: dict[str, dict[int, str]] = field(default_factory=dict)
    given: dict[str, dict[int, int]] = field(default_factory=dict)


def bridge(g: UnitGraph, groups: list[np.ndarray], k: int = 12) -> int:
    """Join the detached pieces of each group of units with bridge edges (``along`` 4).

    Land that touches nothing (a cluster of buildings far from the rest, a community in
    two pieces) would otherwise be solved on its own and become a street, a community and
    a grid of its own, however small. Each piece is joined to its nearest piece by the
    shortest link between unit centres (Kruskal over the candidate links), so the solver
    sees one connected region; bridges are cut first (see ``cross_gap``), so a piece big
    enough for its level stands alone, and a smaller one joins its nearest neighbour as an
    exclave (飞地) that the contiguity check reports.

    Parameters
    ----------
    g
        The unit graph; bridge edges are appended to it in place (length 0).
    groups
        Sorted unit indices of each region to connect.
    k
        Nearest neighbours tried per unit before the exact search between pieces.

    Returns
    -------
    int
        The number of bridges added.
    """
    added: list[tuple[int, int]] = []
    everything = np.arange(len(g.eu))
    for units in groups:
        if len(units) >= 2:
            comps = components(g, units, edges_within(g, units, everything))
            if len(comps) >= 2:
                added.extend(_bridge_pieces(g.xy, units, comps, k))
    if added:
        u, v = np.asarray(added, dtype=g.eu.dtype).T
        g.eu, g.ev = np.concatenate([g.eu, u]), np.concatenate([g.ev, v])
        g.length = np.concatenate([g.length, np.zeros(len(u))])
        g.along = np.concatenate([g.along, np.full(len(u), 4, dtype=g.along.dtype)])
        g.compound = np.concatenate([g.compound, np.zeros(len(u), dtype=bool)])
    return len(added)


def _bridge_pieces(
    xy_all: np.ndarray, units: np.ndarray, comps: list[np.ndarray], k: int
) -> list[tuple[int, int]]:
    """Shortest links (between unit centres) that join ``comps`` into one piece."""
    from scipy.spatial import cKDTree

    comp = np.empty(len(xy_all), dtype=np.int64)
    for i, c in enumerate(comps):
        comp[c] = i
    parent = list(range(len(comps)))
    links: list[tuple[int, int]] = []

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(d: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        for i in np.argsort(d, kind="stable"):
            ra, rb = find(comp[a[i]]), find(comp[b[i]])
            if ra != rb:
                parent[ra] = rb
                links.append((int(min(a[i], b[i])), int(max(a[i], b[i]))))

    xy = xy_all[units]
    dist, nb = cKDTree(xy).query(xy, k=min(k, len(units)))
    join(dist.ravel(), np.repeat(units, dist.shape[1]), units[nb.ravel()])
    while True:  # pieces still apart: the exact nearest unit outside each one
        roots = np.array([find(comp[u]) for u in units])
        labels = np.unique(roots)
        if len(labels) < 2:
            return links
        ds, as_, bs = [], [], []
        for lab in labels:
            inside = roots == lab
            d, j = cKDTree(xy[~inside]).query(xy[inside])
            best = int(np.argmin(d))
            ds.append(d[best])
            as_.append(units[inside][best])
            bs.append(units[~inside][j[best]])
        join(np.asarray(ds), np.asarray(as_), np.asarray(bs))


def _absorb_empty(g: UnitGraph, parts: list, households: np.ndarray) -> list:
    """Merge parts that hold no households into the sibling they share the most edge
    with (a bridge counts a little): an empty part exists only where a given boundary
    makes it so. A sole part is kept as it is."""
    while len(parts) > 1:
        totals = [households[p.units].sum() for p in parts]
        empty = [i for i, t in enumerate(totals) if t <= 0 and not parts[i].heavy]
        if not empty:
            break
        i = empty[0]
        label = np.full(g.n, -1)
        for j, p in enumerate(parts):
            label[p.units] = j
        lu, lv = label[g.eu], label[g.ev]
        touch = ((lu == i) & (lv >= 0) & (lv != i)) | ((lv == i) & (lu >= 0) & (lu != i))
        if not touch.any():
            break
        other = np.where(lu[touch] == i, lv[touch], lu[touch])
        score = np.bincount(other, g.length[touch] + 1e-3, minlength=len(parts))
        j = int(np.argmax(score))
        parts[j].units = np.union1d(parts[j].units, parts[i].units)
        del parts[i]
    return parts


def _dedicated_parts(
    g: UnitGraph,
    region: np.ndarray,
    site: np.ndarray,
    site_area: np.ndarray,
    site_notes: dict[int, str],
    min_m2: float,
) -> tuple[list[Part], np.ndarray]:
    """The dedicated grids of one community (one per site whose piece in it is at least
    ``min_m2``, or half the site), and the units left for basic grids."""
    parts = []
    taken = np.zeros(len(region), dtype=bool)
    labels = site[region]
    for s in np.unique(labels[labels >= 0]):
        mine = labels == s
        piece = g.area[region[mine]].sum()
        if piece < min(min_m2, 0.5 * site_area[s]):
            continue
        parts.append(Part(region[mine], note=site_notes.get(int(s), ""), flag="dedicated"))
        taken |= mine
    return parts, region[~taken]


def _partition_retrying(
    g: UnitGraph, region: np.ndarray, weight: np.ndarray, band, limits: Limits, rng
) -> tuple[list[Part], list[Issue]]:
    """:func:`partition`, tried again on fresh spanning trees (``[solver] retries`` times)
    while a part is left outside the band with no flag: the search is bounded, and a
    region it failed on is often solved by the next draw. The attempt leaving the fewest
    such parts is kept; the seed still fixes the result."""
    best = None
    for _ in range(1 + limits.solver.retries):
        parts, found = partition(g, region, weight, band, limits.solver, rng)
        outside = sum(
            1
            for p in parts
            if not (p.heavy or p.flag) and not band.lo <= weight[p.units].sum() <= band.hi
        )
        if best is None or outside < best[0]:
            best = (outside, parts, found)
        if outside == 0:
            break
    return best[1], best[2]


def solve(
    g: UnitGraph,
    limits: Limits,
    given: dict[str, np.ndarray] | None = None,
    dedicated: np.ndarray | None = None,
    site_notes: dict[int, str] | None = None,
) -> Nested:
    """Streets, then communities in each street, grids in each community, micro-grids in
    each grid: one nested run, each level solved inside its parent.

    Parameters
    ----------
    g
        The unit graph (bridges across open land are added to it).
    limits
        The bands.
    given
        For levels taken from the user's boundary files (``street``, ``community``): the
        row of the given unit holding each unit. Those levels are kept exactly as given and
        every level below is solved inside them.
    dedicated, site_notes
        The dedicated site of each unit (-1 for none; :mod:`wangge.geo.dedicated`) and a
        note per site: each site's units in a community become a dedicated grid there.
    """
    given = given or {}
    site_notes = site_notes or {}
    min_site_m2 = float(limits.raw.get("dedicated", {}).get("min_area_m2", 30000))
    site_area = None
    if dedicated is not None and (dedicated >= 0).any():
        on = dedicated >= 0
        site_area = np.bincount(dedicated[on], g.area[on])
    else:
        dedicated = None
    rng = np.random.default_rng(limits.solver.seed)
    n = g.n
    out = {lvl: np.full(n, -1) for lvl in geo_codes.LEVELS}
    notes: dict[str, dict[int, str]] = {lvl: {} for lvl in geo_codes.LEVELS}
    flags: dict[str, dict[int, str]] = {lvl: {} for lvl in geo_codes.LEVELS}
    given_of: dict[str, dict[int, int]] = {lvl: {} for lvl in geo_codes.LEVELS}
    heavy: dict[str, set[int]] = {lvl: set() for lvl in geo_codes.LEVELS}
    issues: list[Issue] = []
    bands = {
        "street": limits.street,
        "community": limits.community,
        "grid": limits.grid,
        "microgrid": limits.microgrid,
    }
    regions = [np.arange(n)]
    region_flags: dict[int, str] = {}
    region_notes: dict[int, str] = {}
    bridge(g, regions)
    for level in geo_codes.LEVELS:
        next_regions = []
        if level in given:
            labels = np.asarray(given[level])
            for region in regions:
                for row in np.unique(labels[region]):
                    part = region[labels[region] == row]
                    pid = len(next_regions)
                    out[level][part] = pid
                    flags[level][pid] = "given"
                    given_of[level][pid] = int(row)
                    if g.households[part].sum() <= 0:
                        notes[level][pid] = "holds no households (as given)"
                    next_regions.append(part)
            bridge(g, next_regions)
            regions = next_regions
            continue
        weight = g.area if level == "street" else g.households
        for ri, region in enumerate(regions):
            kept: list[Part] = []
            if level == "grid" and dedicated is not None:
                kept, region = _dedicated_parts(
                    g, region, dedicated, site_area, site_notes, min_site_m2
                )
                if kept and len(region):
                    bridge(g, [region])  # the land around a campus stays one region
            if (
                level == "microgrid"
                and region_flags.get(ri) == "dedicated"
                and g.households[region].sum() <= 0
            ):
                kept, region = [Part(region, note=region_notes.get(ri), flag="dedicated")], []
            parts: list[Part] = []
            if len(region):
                parts, found = _partition_retrying(g, region, weight, bands[level], limits, rng)
                issues.extend(found)
                parts = _absorb_empty(g, parts, g.households)
            for part in [*parts, *kept]:
                pid = len(next_regions)
                out[level][part.units] = pid
                if part.heavy:
                    heavy[level].add(pid)
                    notes[level][pid] = part.note or ""
                elif part.flag:
                    flags[level][pid] = part.flag
                    notes[level][pid] = part.note or ""
                if g.households[part.units].sum() <= 0 and not part.heavy and not part.flag:
                    flags[level][pid] = "empty"
                    notes[level][pid] = "no households in its parent"
                next_regions.append(np.sort(part.units))
        region_flags, region_notes = flags[level], notes[level]
        regions = next_regions
    return Nested(
        out["street"],
        out["community"],
        out["grid"],
        out["microgrid"],
        notes,
        heavy,
        issues,
        flags,
        given_of,
    )


def union_parts(geoms: np.ndarray, others=None) -> shapely.Geometry:
    """Union of adjacent cells, its sliver holes filled save where ``others`` (geometries,
    or a function giving those near a hole: :func:`~wangge.geo._geom.drop_slivers`) lie.
    (GEOS's coverage union is faster but silently drops pieces when cells are not exactly
    noded, as clipped Voronoi cells are not.)"""
    return drop_slivers(shapely.union_all(geoms, grid_size=GRID_M), keep=others)


def _dissolve(geoms: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list]:
    """Union the pieces of each label into one polygon per label, and fill the sliver holes
    such unions leave (under 1 m²), save those another label's pieces lie in: filled,
    they would make two units hold the same ground (a 1.2 m² overlap between two
    micro-grids, from the shards of a building file's squares)."""
    ids = np.unique(labels)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], ids)
    bounds = np.r_[bounds, len(labels)]
    raw = np.empty(len(ids), dtype=object)
    for i in range(len(ids)):
        members = geoms[order[bounds[i] : bounds[i + 1]]]
        raw[i] = members[0] if len(members) == 1 else shapely.union_all(members, grid_size=GRID_M)
    tree = shapely.STRtree(raw)
    out = []
    for i, geom in enumerate(raw):
        if bounds[i + 1] - bounds[i] == 1:
            out.append(geom)
            continue
        taken = [raw[j] for j in tree.query(geom, predicate="intersects") if j != i]
        out.append(drop_slivers(geom, keep=taken))
    return ids, out


def _dissolve_levels(geoms: np.ndarray, nested: Nested) -> dict[str, tuple[np.ndarray, list]]:
    """Polygons per part at every level, bottom-up: micro-grids from cells, each level
    above from the polygons of the level below (far fewer pieces to union)."""
    out = {}
    child_labels = nested.microgrid
    ids, polys = _dissolve(geoms, child_labels)
    out["microgrid"] = (ids, polys)
    for level in ("grid", "community", "street"):
        labels = getattr(nested, level)
        first = pd.Series(np.arange(len(labels))).groupby(child_labels).first()
        parent = labels[first.reindex(ids).to_numpy()]
        ids, polys = _dissolve(np.asarray(polys, dtype=object), parent)
        out[level] = (ids, polys)
        child_labels = labels
    return out


def build_layers(
    cells: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    nested: Nested,
    limits: Limits,
    persons_per_household: float,
    given: dict[str, pd.DataFrame] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Dissolve cells into polygons at every level, number them and list vertical parts.

    ``given`` holds the user's street and community tables (``code``, ``name``), indexed
    by the rows that :attr:`Nested.given` names: those units keep their codes and names.

    Returns
    -------
    dict
        ``streets``, ``communities``, ``grids``, ``microgrids`` (polygons with ``code``,
        ``parent_code``, ``households``, ``population``, ``area_km2``, ``flag``, ``note``),
        ``vertical_microgrids`` (records without geometry of their own), ``buildings``
        with ``microgrid_code`` and the ``units`` (:func:`unit_layer`).
    """
    crs = cells.crs
    geoms = cells.geometry.to_numpy()
    hh = cells["households"].to_numpy()
    pop = cells["population"].to_numpy()
    layers: dict[str, gpd.GeoDataFrame] = {}
    code_of: dict[str, np.ndarray] = {}
    dissolved = _dissolve_levels(geoms, nested)
    parent_codes = np.full(len(cells), limits.require_district(), dtype=object)
    labels_prev = np.zeros(len(cells), dtype=int)
    names_prev: dict[str, str] = {}
    for level, name in zip(
        geo_codes.LEVELS, ("streets", "communities", "grids", "microgrids"), strict=True
    ):
        labels = getattr(nested, level)
        ids, polys = dissolved[level]
        frame = gpd.GeoDataFrame({"part": ids}, geometry=polys, crs=crs)
        first = pd.Series(np.arange(len(cells))).groupby(labels).first().reindex(ids).to_numpy()
        frame["parent_code"] = parent_codes[first]
        frame["parent_part"] = labels_prev[first]
        frame["households"] = pd.Series(hh).groupby(labels).sum().reindex(ids).to_numpy()
        frame["population"] = pd.Series(pop).groupby(labels).sum().reindex(ids).to_numpy()
        frame["area_km2"] = frame.area / 1e6
        is_heavy = frame["part"].isin(nested.heavy[level]).to_numpy()
        # a vertical micro-grid is one polygon holding several micro-grid records
        records = np.ones(len(frame), dtype=int)
        if level == "microgrid" and is_heavy.any():
            records[is_heavy] = [
                choose_k(h, limits.microgrid)[0] for h in frame.loc[is_heavy, "households"]
            ]
        frame["records"] = records
        flags = nested.flags.get(level, {})
        heavy_flag = "vertical" if level == "microgrid" else "oversize"
        frame["flag"] = [
            heavy_flag if h else flags.get(p, "")
            for p, h in zip(frame["part"], is_heavy, strict=True)
        ]
        frame["note"] = [nested.notes[level].get(p, "") for p in frame["part"]]
        _settle_flags(frame, level, limits)
        rows = nested.given.get(level, {})
        table = (given or {}).get(level)
        given_codes = {p: _given_code(table, rows[p], level) for p in frame["part"] if p in rows}
        if level == "street":  # a given street sits under the district its code names
            frame["parent_code"] = [
                given_codes[p][:6] if given_codes.get(p) else pc
                for p, pc in zip(frame["part"], frame["parent_code"], strict=True)
            ]
        _number(frame, level, given_codes)
        if level == "grid":  # 基础网格 or 专属网格 (DB6101/T 3185-2024)
            frame["grid_type"] = np.where(frame["flag"] == "dedicated", "dedicated", "basic")
        frame["name"] = _names(frame, level, names_prev)
        if table is not None and "name" in table:
            for i, p in enumerate(frame["part"]):
                if p in rows and isinstance(table["name"].iat[rows[p]], str):
                    frame.loc[frame.index[i], "name"] = table["name"].iat[rows[p]]
        names_prev = dict(zip(frame["code"], frame["name"], strict=True))
        code_map = dict(zip(frame["part"], frame["code"], strict=True))
        code_of[level] = np.array([code_map[x] for x in labels], dtype=object)
        parent_codes = code_of[level]
        labels_prev = labels
        layers[name] = frame.sort_values("code").reset_index(drop=True)
    for name in layers:
        drop = ["part", "parent_part", "records"]
        if name != "microgrids":
            drop.append("record_codes")
        layers[name] = layers[name].drop(columns=drop)
    out_b = buildings.drop(columns="cell")
    # the cell that counts the building's households (tessellation.cell_of), so the sums
    # over buildings and over micro-grids are the same numbers
    out_b["microgrid_code"] = code_of["microgrid"][buildings["cell"].to_numpy()]
    layers["vertical_microgrids"] = _vertical_records(
        layers["microgrids"], out_b, out_b["microgrid_code"].to_numpy(), persons_per_household
    )
    out_b["grid_code"] = out_b["microgrid_code"].str[:15]
    layers["buildings"] = out_b
    layers["units"] = unit_layer(cells, code_of["microgrid"])
    return layers


#: Flags that excuse a unit's size; each holds only while the final unit is out of its band.
SIZE_FLAGS = ("oversize", "vertical", "infeasible", "empty")


def _settle_flags(frame: gpd.GeoDataFrame, level: str, limits: Limits) -> None:
    """Flags and notes from the final units, not the solver's working figures.

    A size flag on a unit that the later steps (islands joined, bridges, dedicated sites)
    brought back inside its band is dropped with its note (a vertical micro-grid of
    several records aside), and an empty unit that gained households is no longer
    flagged empty."""
    if level not in ("grid", "microgrid"):
        return
    band = getattr(limits, level)
    records = frame["records"].to_numpy()
    per = frame["households"].to_numpy(float) / records
    inside = (per >= band.lo) & (per <= band.hi)
    flag = frame["flag"].to_numpy()
    sized = frame["flag"].isin(SIZE_FLAGS).to_numpy() & ~((flag == "vertical") & (records > 1))
    settled = sized & (inside | ((flag == "empty") & (per > 0)))
    frame.loc[settled, "flag"] = ""
    frame.loc[settled, "note"] = ""


#: Dedicated grids (专属网格) are numbered from here within their community, apart from the
#: basic grids (001 up), so a grid's code says its type (DB6101/T 3185-2024 keeps the two
#: types apart; the range is wangge's choice).
DEDICATED_START = 901


def _given_code(table: pd.DataFrame | None, row: int, level: str) -> str | None:
    """The given unit's code when it is a well-formed code of ``level``, else None."""
    if table is None or "code" not in table:
        return None
    code = table["code"].iat[row]
    if not isinstance(code, str) or geo_codes.check_code(code, level, None) is not None:
        return None
    return code


def _number(frame: gpd.GeoDataFrame, level: str, given_codes: dict[int, str | None]) -> None:
    """Set ``code`` and ``record_codes`` within each parent: given codes are kept, basic
    parts are numbered 001 up and dedicated grids from :data:`DEDICATED_START`, each in
    reading order, skipping codes already taken."""
    code = np.full(len(frame), "", dtype=object)
    record_codes = code.copy()
    part = frame["part"].to_numpy()
    flag = frame["flag"].to_numpy()
    records = frame["records"].to_numpy()
    geoms = frame.geometry
    for parent, rows in frame.groupby("parent_code", sort=True).indices.items():
        taken = {c for p in part[rows] if (c := given_codes.get(p))}
        order = rows[geo_codes.reading_order(geoms.iloc[rows])]
        kept = [i for i in order if given_codes.get(part[i])]
        for i in kept:
            code[i] = record_codes[i] = given_codes[part[i]]
        dedicated = [i for i in order if level == "grid" and flag[i] == "dedicated"]
        basic = [i for i in order if i not in set(kept) | set(dedicated)]
        for idx, start in ((basic, 1), (dedicated, DEDICATED_START)):
            if not idx:
                continue
            counts = records[idx]
            numbers = geo_codes.free_codes(parent, int(counts.sum()), level, taken, start)
            starts = np.r_[0, np.cumsum(counts)[:-1]].astype(int)
            for i, s0, c in zip(idx, starts, counts, strict=True):
                code[i] = numbers[s0]
                record_codes[i] = ",".join(numbers[s0 : s0 + c])
            taken |= set(numbers)
    frame["code"] = code
    frame["record_codes"] = record_codes


def unit_layer(cells: gpd.GeoDataFrame, microgrid_codes: np.ndarray) -> gpd.GeoDataFrame:
    """The atomic units of a plan: one cell per building (or empty block), each with its
    micro-grid as ``parent_code``. A plan version is the assignment of these units; every
    polygon above them is their dissolve (wangge/editing.py).

    Returns
    -------
    geopandas.GeoDataFrame
        ``code`` (the unit id), ``parent_code`` (micro-grid), ``grid_code``,
        ``community_code``, ``building_id``, ``block_id``, ``compound_id``,
        ``households``, ``population``.
    """
    micro = pd.Series(microgrid_codes, dtype=object).astype(str)
    return gpd.GeoDataFrame(
        {
            "code": cells["cell_id"].astype(int).astype(str).to_numpy(),
            "parent_code": micro.to_numpy(),
            "grid_code": micro.str[:15].to_numpy(),
            "community_code": micro.str[:12].to_numpy(),
            "building_id": cells["building_id"].to_numpy(),
            "block_id": cells["block_id"].to_numpy(),
            "compound_id": cells["compound_id"].to_numpy(),
            "households": cells["households"].to_numpy(dtype=float),
            "population": cells["population"].to_numpy(dtype=float),
        },
        geometry=cells.geometry.to_numpy(),
        crs=cells.crs,
    )


def unit_edge_table(g: UnitGraph) -> pd.DataFrame:
    """The unit graph's edges as a table (positions in the units layer, shared length,
    what they run along, whether inside one compound), kept with the plan so an edit can
    rebuild the graph without the blocks."""
    return pd.DataFrame(
        {
            "a": g.eu.astype(np.int64),
            "b": g.ev.astype(np.int64),
            "length_m": g.length.astype(float),
            "along": g.along.astype(np.int64),
            "compound": g.compound.astype(bool),
        }
    )


#: Placeholder names until planners give real ones: 街道001, 社区002, 社区002第3网格…
_NAME_FORMAT = {
    "street": "街道{nnn}",
    "community": "社区{nnn}",
    "grid": "{parent}第{n}网格",
    "microgrid": "{parent}第{n}微网格",
}


def placeholder_name(level: str, code: str, parent_name: str = "") -> str:
    """The placeholder name of a part from its code (and its parent's name)."""
    return _NAME_FORMAT[level].format(nnn=code[-3:], n=int(code[-3:]), parent=parent_name)


def _names(frame: gpd.GeoDataFrame, level: str, parents: dict[str, str]) -> list[str]:
    """Placeholder names from the codes, each carrying its parent's name where it helps."""
    return [
        placeholder_name(level, code, parents.get(parent, ""))
        for code, parent in zip(frame["code"], frame["parent_code"], strict=True)
    ]


def _vertical_records(
    micro: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    building_micro: np.ndarray,
    persons: float,
) -> pd.DataFrame:
    """One record per vertical micro-grid: a floor range of the polygon's tower.

    The tower is the building of the polygon that holds the most households (read off
    the buildings, not the cells: a tower standing inside a podium has no cell of its
    own, its households counted in the podium's). Its households are spread over the
    records as floor ranges; any other building with households in the polygon goes
    whole into the record with the most room, listed in ``also``. So the records' sums
    per building equal the buildings' households: ``tower_households`` over the records
    naming a building, plus its households where ``also`` lists it.

    Returns
    -------
    pandas.DataFrame
        ``code``, ``polygon_code``, ``building_id`` (the tower), ``floors``,
        ``tower_households``, ``also`` (ids of whole buildings, ``;``-joined),
        ``households`` (the record's), ``population``.
    """
    cols = [
        "code",
        "polygon_code",
        "building_id",
        "floors",
        "tower_households",
        "also",
        "households",
        "population",
    ]
    rows = []
    vertical = micro[micro["flag"] == "vertical"]
    if vertical.empty:
        return pd.DataFrame(rows, columns=cols)
    held = pd.DataFrame(
        {
            "micro": building_micro,
            "building_id": buildings["building_id"].to_numpy(),
            "households": buildings["households"].to_numpy(float),
            "levels": buildings["levels"].to_numpy(float)
            if "levels" in buildings
            else np.ones(len(buildings)),
        }
    )
    held = held[held["micro"].isin(vertical["code"]) & (held["households"] > 0)]
    # per micro-grid, its buildings by households (most first), ties by id: one sort
    held = held.sort_values(["households", "building_id"], ascending=[False, True])
    by_micro = {
        code: (
            g["building_id"].to_numpy(),
            g["households"].to_numpy(),
            g["levels"].to_numpy(),
        )
        for code, g in held.groupby("micro", sort=False)
    }
    for code_, record_codes in zip(vertical["code"], vertical["record_codes"], strict=True):
        numbers = record_codes.split(",")
        k = len(numbers)
        if code_ not in by_micro:
            continue
        ids, hhs, levels = by_micro[code_]
        total = float(pd.Series(hhs).sum())
        room = np.full(k, total / k)
        also: list[list[str]] = [[] for _ in range(k)]
        for bid, bhh in zip(ids[1:], hhs[1:], strict=True):  # small buildings whole,
            i = int(np.argmax(room))  # each where most room is left
            room[i] -= bhh
            also[i].append(str(bid))
        share = _whole_shares(np.clip(room, 0, None), float(hhs[0]))
        floors = max(round(float(levels[0]) if levels[0] == levels[0] else 1), 1)
        cuts = np.floor(np.r_[0, np.cumsum(share)] / max(share.sum(), 1e-9) * floors).astype(int)
        by_id = dict(zip((str(b) for b in ids[1:]), hhs[1:], strict=True))
        for i, code in enumerate(numbers):
            hh_i = share[i] + sum(by_id[b] for b in also[i])
            span = (
                f"floors {cuts[i] + 1}–{cuts[i + 1]}"
                if floors >= k and cuts[i + 1] > cuts[i]
                else f"part {i + 1} of {k}"
            )
            rows.append(
                {
                    "code": code,
                    "polygon_code": code_,
                    "building_id": ids[0],
                    "floors": span,
                    "tower_households": share[i],
                    "also": ";".join(also[i]),
                    "households": hh_i,
                    "population": round(hh_i * persons),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def _whole_shares(room: np.ndarray, total: float) -> np.ndarray:
    """``total`` split over slots in proportion to their ``room`` (evenly where there is
    none), in whole numbers when ``total`` is whole (largest remainder), summing to it."""
    k = len(room)
    weights = room if room.sum() > 0 else np.ones(k)
    raw = weights / weights.sum() * total
    if float(total).is_integer():
        out = np.floor(raw)
        left = round(float(total - out.sum()))
        out[np.argsort(-(raw - out), kind="stable")[:left]] += 1
        return out
    return raw
