"""A plan as the assignment of atomic units to micro-grids: moves, live checks and completion.

A version of a plan is one micro-grid code per unit; the grid, community and street of a
unit are prefixes of that code, so nesting holds by construction, and the polygons are
dissolves of the units, so no edit can open a gap or an overlap. What an edit can break
is what the checks here look at, on the unit graph alone (fast enough to run on every
move): households and population against each level's limits, contiguity, and compounds
split across grids. :func:`complete` re-solves the unlocked neighbours of edited grids
with the same partitioner that drew the plan.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from wangge.errors import InputError
from wangge.geo.codes import LENGTHS, iter_free_codes
from wangge.geo.limits import Limits
from wangge.geo.partition import UnitGraph, choose_k, partition
from wangge.geo.validate import PIECES, Violation, size_violations, split_compounds

LEVEL_LAYERS = {
    "street": "streets",
    "community": "communities",
    "grid": "grids",
    "microgrid": "microgrids",
}


@dataclass
class Units:
    """The atomic units of a plan and their adjacency (these never change between edits)."""

    codes: np.ndarray  # unit ids, str
    households: np.ndarray
    population: np.ndarray
    area: np.ndarray  # m²
    compound: np.ndarray  # object: compound id or None
    graph: UnitGraph
    index: dict[str, int] = field(init=False)
    indptr: np.ndarray = field(init=False)
    nbrs: np.ndarray = field(init=False)
    nbr_len: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.codes)}
        n = len(self.codes)
        g = self.graph
        rows = np.r_[g.eu, g.ev]
        cols = np.r_[g.ev, g.eu]
        lens = np.r_[g.length, g.length]
        m = sparse.csr_matrix((lens, (rows, cols)), shape=(n, n))
        self.indptr, self.nbrs, self.nbr_len = m.indptr, m.indices, m.data

    @property
    def n(self) -> int:
        return len(self.codes)

    def neighbours(self, i: int) -> np.ndarray:
        return self.nbrs[self.indptr[i] : self.indptr[i + 1]]

    def position(self, code: str) -> int:
        try:
            return self.index[str(code)]
        except KeyError:
            raise InputError(f"no unit {code!r} in this plan", where="moves.unit") from None


def edges_at_positions(codes: pd.Series, edges: pd.DataFrame, source: str) -> pd.DataFrame:
    """The unit graph's ends as positions in the units sorted by code. A plan stores them
    as unit codes: in a district's plan the codes are the positions (0…n-1); in a city's,
    each street's codes start from its number (wangge/city.py)."""
    sorted_codes = codes.astype(np.int64).to_numpy()
    n = len(sorted_codes)
    if n and sorted_codes[0] == 0 and sorted_codes[-1] == n - 1:
        return edges
    out = edges.copy()
    for end in ("a", "b"):
        want = out[end].to_numpy(dtype=np.int64)
        pos = np.minimum(np.searchsorted(sorted_codes, want), max(n - 1, 0))
        if n == 0 or not np.array_equal(sorted_codes[pos], want):
            raise InputError("unit_edges names units the plan does not have", source)
        out[end] = pos
    return out


def units_from_tables(units: pd.DataFrame, edges: pd.DataFrame, metric_geoms) -> Units:
    """Build :class:`Units` from a plan's ``units`` layer (any order of rows matching
    ``metric_geoms``) and its ``unit_edges`` table."""
    import shapely

    geoms = np.asarray(metric_geoms)
    pts = shapely.centroid(geoms)
    g = UnitGraph(
        households=units["households"].to_numpy(dtype=float),
        population=units["population"].to_numpy(dtype=float),
        area=shapely.area(geoms),
        perimeter=shapely.length(geoms),
        xy=np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]),
        eu=edges["a"].to_numpy(dtype=np.int64),
        ev=edges["b"].to_numpy(dtype=np.int64),
        length=edges["length_m"].to_numpy(dtype=float),
        along=edges["along"].to_numpy(dtype=np.int8),
        compound=edges["compound"].to_numpy(dtype=bool),
    )
    compound = units["compound_id"].astype(object).where(units["compound_id"].notna(), None)
    return Units(
        codes=units["code"].astype(str).to_numpy(),
        households=g.households,
        population=g.population,
        area=g.area,
        compound=compound.to_numpy(),
        graph=g,
    )


#: Level codes of frozen assignments (read-only arrays that own their data), by id; an
#: entry goes with its array. A save at 10⁶ households asked for them 19 times.
_LEVEL_CODES: dict[int, dict[str, np.ndarray]] = {}
#: Held while a memo of :data:`_LEVEL_CODES` is read whole or added to: requests edit in
#: threads, and one carrying a base's codes must not iterate while another adds to them.
_LEVEL_LOCK = threading.Lock()


def level_codes(micro: np.ndarray, level: str) -> np.ndarray:
    """Each unit's code at ``level`` (a prefix of its micro-grid code). Of a frozen
    assignment (:func:`frozen`) they are made once and returned read-only."""
    n = LENGTHS[level]
    if not (isinstance(micro, np.ndarray) and micro.flags.owndata and not micro.flags.writeable):
        return np.asarray([c[:n] for c in micro], dtype=object)
    with _LEVEL_LOCK:
        memo = _LEVEL_CODES.get(id(micro))
        if memo is None:
            memo = _LEVEL_CODES[id(micro)] = {}
            weakref.finalize(micro, _LEVEL_CODES.pop, id(micro), None)
        found = memo.get(level)
    if found is None:  # made outside the lock: two threads may make it, both the same
        found = frozen(np.asarray([c[:n] for c in micro], dtype=object))
        with _LEVEL_LOCK:
            found = memo.setdefault(level, found)
    return found


def frozen(micro: np.ndarray) -> np.ndarray:
    """``micro`` made read-only (a copy unless it owns its data): an assignment that
    will not change, whose level codes :func:`level_codes` may then keep."""
    if not micro.flags.owndata:
        micro = micro.copy()
    micro.flags.writeable = False
    return micro


@dataclass(frozen=True)
class Move:
    """One unit that changed micro-grid."""

    unit: str
    before: str
    after: str


def apply_moves(
    units: Units,
    micro: np.ndarray,
    moves: list[tuple[str, str]],
    locks: set[str] = frozenset(),
) -> tuple[np.ndarray, list[Move]]:
    """Move units to a grid (15 digits) or a micro-grid (18 digits).

    A unit moved to a grid joins the micro-grid of that grid it shares the longest
    boundary with (counting units moved before it, so a group joins piece by piece); a
    unit touching none of that grid's micro-grids joins its nearest one. Moves into or
    out of a locked grid are refused.

    Returns
    -------
    (new assignment, the moves that changed something)
    """
    out = micro.copy()
    known = set(micro)
    grids = {c[:15] for c in known}
    pending: list[tuple[int, str]] = []
    for unit, to in moves:
        i = units.position(unit)
        to = str(to)
        if len(to) == 18 and to not in known:
            raise InputError(f"no micro-grid {to}", where="moves.to")
        if len(to) == 15 and to not in grids:
            raise InputError(f"no grid {to}", where="moves.to")
        if len(to) not in (15, 18):
            raise InputError(
                f"{to!r} is neither a grid code (15 digits) nor a micro-grid code (18)",
                where="moves.to",
            )
        for grid in {micro[i][:15], to[:15]} & set(locks):
            if micro[i][:15] != to[:15]:
                raise InputError(f"grid {grid} is locked; unlock it to move {unit}", where=grid)
        pending.append((i, to))
    # settle the moves that touch their target first, so a group attaches piece by piece
    while pending:
        rest = []
        for i, to in pending:
            target = to if len(to) == 18 else _touching_micro(units, out, i, to)
            if target is None:
                rest.append((i, to))
            else:
                out[i] = target
        if len(rest) == len(pending):  # none of these touches its grid: nearest micro-grid
            i, to = rest.pop(0)
            out[i] = _nearest_micro(units, out, i, to)
        pending = rest
    changed = np.flatnonzero(out != micro)
    out = frozen(out)
    _carry_level_codes(micro, out, changed)
    return out, [Move(units.codes[i], micro[i], out[i]) for i in changed]


def _carry_level_codes(base: np.ndarray, new: np.ndarray, changed: np.ndarray) -> None:
    """Give the frozen assignment ``new`` the level codes ``base`` has made
    (:func:`level_codes`), recomputed only at ``changed``, the units that moved: an edit
    at 10⁶ households made each level's 46,000 codes again (5 ms a level)."""
    if base.flags.writeable or new.flags.writeable or id(new) in _LEVEL_CODES:
        return  # only a frozen base has codes kept, and only a frozen assignment keeps them
    with _LEVEL_LOCK:
        made = dict(_LEVEL_CODES.get(id(base)) or {})
    if not made:
        return
    mine = {}
    for level, codes in made.items():
        n = LENGTHS[level]
        fresh = codes.copy()
        fresh[changed] = [c[:n] for c in new[changed]]
        mine[level] = frozen(fresh)
    with _LEVEL_LOCK:
        if id(new) not in _LEVEL_CODES:
            _LEVEL_CODES[id(new)] = mine
            weakref.finalize(new, _LEVEL_CODES.pop, id(new), None)


def _touching_micro(units: Units, micro: np.ndarray, i: int, grid: str) -> str | None:
    if micro[i][:15] == grid:
        return micro[i]
    lo, hi = units.indptr[i], units.indptr[i + 1]
    shared: dict[str, float] = {}
    for j, length in zip(units.nbrs[lo:hi], units.nbr_len[lo:hi], strict=True):
        if micro[j][:15] == grid:
            shared[micro[j]] = shared.get(micro[j], 0.0) + float(length)
    if not shared:
        return None
    return max(sorted(shared), key=shared.__getitem__)


def _nearest_micro(units: Units, micro: np.ndarray, i: int, grid: str) -> str:
    members = np.flatnonzero(np.char.startswith(micro.astype(str), grid))
    d = np.hypot(*(units.graph.xy[members] - units.graph.xy[i]).T)
    return micro[members[int(np.argmin(d))]]


# checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flags:
    """What the delineation said about special units: vertical micro-grids (records per
    polygon) and oversize grids, with their notes; they warn instead of erring."""

    records: dict[str, int] = field(default_factory=dict)
    flag: dict[str, str] = field(default_factory=dict)
    note: dict[str, str] = field(default_factory=dict)
    record_codes: dict[str, str] = field(default_factory=dict)


def _labels(micro: np.ndarray, level: str) -> tuple[np.ndarray, np.ndarray]:
    """The codes at ``level`` (sorted) and each unit's index into them."""
    uniq, inv = np.unique(level_codes(micro, level).astype(str), return_inverse=True)
    return uniq.astype(object), inv


def summary(
    units: Units, micro: np.ndarray, level: str, only: Iterable[str] | None = None
) -> pd.DataFrame:
    """Households, population, area (m²) and unit count per code at ``level``; with
    ``only``, of those codes alone (an edit's parts, without grouping a whole city)."""
    if only is None:
        uniq, inv = _labels(micro, level)
        pick = slice(None)
    else:
        codes = level_codes(micro, level)
        pick = np.flatnonzero(pd.Index(codes).isin(list(only)))
        uniq, inv = np.unique(codes[pick].astype(str), return_inverse=True)
        uniq = uniq.astype(object)
    k = len(uniq)
    return pd.DataFrame(
        {
            "households": np.bincount(inv, units.households[pick], k),
            "population": np.bincount(inv, units.population[pick], k),
            "area_m2": np.bincount(inv, units.area[pick], k),
            "units": np.bincount(inv, minlength=k),
        },
        index=pd.Index(uniq, name="code"),
    )


def pieces(units: Units, micro: np.ndarray, level: str) -> pd.Series:
    """Number of connected pieces of each code at ``level``, on the unit graph."""
    uniq, inv = _labels(micro, level)
    g = units.graph
    same = inv[g.eu] == inv[g.ev]
    n = units.n
    m = sparse.coo_matrix((np.ones(same.sum()), (g.eu[same], g.ev[same])), shape=(n, n))
    _, label = connected_components(m, directed=False)
    # components never span two codes (edges join only units of one code)
    first = np.unique(label, return_index=True)[1]
    return pd.Series(np.bincount(inv[first], minlength=len(uniq)), index=uniq)


def check(
    units: Units,
    micro: np.ndarray,
    limits: Limits,
    flags: Flags | None = None,
    levels: tuple[str, ...] = ("street", "community", "grid", "microgrid"),
) -> list[Violation]:
    """The checks an edit can fail, as the polygon validator words them
    (:mod:`wangge.geo.validate`): limits per level, contiguity, split compounds.

    Cover, overlap, nesting and atomic buildings hold by construction here.
    """
    flags = flags or Flags()
    out: list[Violation] = []
    for level in levels:
        table = summary(units, micro, level)
        out.extend(_limits(level, table, limits, flags))
        for code, n in pieces(units, micro, level).items():
            if n > 1:
                out.append(Violation(level, code, "contiguity", "warning", PIECES.format(n=n)))
    if "grid" in levels:
        out.extend(_compounds(units, micro, limits))
    return out


def sub_units(units: Units, idx: np.ndarray) -> Units:
    """The units at positions ``idx`` (sorted) and the edges among them, renumbered."""
    g = units.graph
    pos = np.full(units.n, -1, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    keep = (pos[g.eu] >= 0) & (pos[g.ev] >= 0)
    graph = UnitGraph(
        households=g.households[idx],
        population=g.population[idx],
        area=g.area[idx],
        perimeter=g.perimeter[idx],
        xy=g.xy[idx],
        eu=pos[g.eu[keep]],
        ev=pos[g.ev[keep]],
        length=g.length[keep],
        along=g.along[keep],
        compound=g.compound[keep],
    )
    return Units(
        codes=units.codes[idx],
        households=units.households[idx],
        population=units.population[idx],
        area=units.area[idx],
        compound=units.compound[idx],
        graph=graph,
    )


def check_streets(
    units: Units,
    micro: np.ndarray,
    limits: Limits,
    flags: Flags,
    base_found: list[Violation],
    streets: set[str],
    street_units: dict[str, tuple[np.ndarray, Units]],
) -> list[Violation]:
    """:func:`check` for an assignment that differs from a checked one only inside
    ``streets``: those streets are checked again on their own units (every check but the
    compounds' stays inside a street: limits, contiguity), the compounds with a unit in
    them on all their units, and the base's other findings are kept. On a city of 64
    streets this is the street's cost, not the city's.

    ``street_units`` caches each street's unit positions and sub-graph (units never change
    between versions, so the cache outlives them); it is filled here as needed.
    """
    out = [v for v in base_found if v.level != "compound" and str(v.code)[:9] not in streets]
    touched = np.zeros(units.n, dtype=bool)
    street_of = None
    for street in sorted(streets):
        if street not in street_units:
            if street_of is None:  # a unit never leaves its street, so any assignment tells
                street_of = level_codes(micro, "street")
            idx = np.flatnonzero(street_of == street)
            street_units[street] = (idx, sub_units(units, idx))
        idx, sub = street_units[street]
        touched[idx] = True
        found = check(sub, micro[idx], limits, flags)
        out.extend(v for v in found if v.level != "compound")
    comps = {c for c in units.compound[touched] if c is not None and pd.notna(c)}
    again = {str(c) for c in comps}
    out.extend(v for v in base_found if v.level == "compound" and str(v.code) not in again)
    if comps:
        has = np.flatnonzero(pd.Series(units.compound).isin(comps).to_numpy())
        out.extend(
            split_compounds(
                units.compound[has].astype(str),
                level_codes(micro[has], "grid"),
                units.households[has],
                limits,
            )
        )
    return out


def _limits(level: str, table: pd.DataFrame, limits: Limits, flags: Flags) -> list[Violation]:
    """The validator's size rule (:func:`~wangge.geo.validate.size_violations`) on the
    summary of an assignment, with the flags the plan carries."""
    codes = table.index
    sized = pd.DataFrame(
        {
            "households": table["households"].to_numpy(float),
            "population": table["population"].to_numpy(float),
            "area_km2": table["area_m2"].to_numpy(float) / 1e6,
            "flag": [flags.flag.get(c, "") for c in codes],
            "note": [flags.note.get(c, "") for c in codes],
            "records": [flags.records.get(c, 1) for c in codes],
        },
        index=codes,
    )
    return size_violations(level, sized, limits)


def _compounds(units: Units, micro: np.ndarray, limits: Limits) -> list[Violation]:
    has = np.flatnonzero(pd.notna(units.compound))
    return split_compounds(
        units.compound[has].astype(str),
        level_codes(micro[has], "grid"),
        units.households[has],
        limits,
    )


def diff(units: Units, a: np.ndarray, b: np.ndarray) -> list[Move]:
    """The units whose micro-grid differs between two assignments of the same units."""
    return [Move(units.codes[i], a[i], b[i]) for i in np.flatnonzero(a != b)]


def grid_neighbours(
    units: Units,
    micro: np.ndarray,
    only: set[str] | None = None,
    beyond: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, list[str]]:
    """For every grid (or those in ``only``), the grids it shares a boundary with.
    ``beyond`` are edges to units that ``units`` does not hold (the other streets of an
    editor's street): the position of the end held and the grid of the other end."""
    grid = level_codes(micro, "grid")
    g = units.graph
    cross = grid[g.eu] != grid[g.ev]
    if only is not None:  # the edges of those grids alone, not a whole city's
        mine = pd.Index(grid).isin(list(only))
        cross &= mine[g.eu] | mine[g.ev]
    pairs = pd.DataFrame({"a": grid[g.eu][cross], "b": grid[g.ev][cross]})
    if beyond is not None and len(beyond[0]):
        held = pd.DataFrame({"a": grid[beyond[0]], "b": beyond[1]})
        pairs = pd.concat([pairs, held[held["a"] != held["b"]]])
    both = pd.concat([pairs, pairs.rename(columns={"a": "b", "b": "a"})]).drop_duplicates()
    if only is not None:
        both = both[both["a"].isin(only)]
    out = {c: [] for c in sorted(set(grid) if only is None else only)}
    for a, group in both.groupby("a", sort=True):
        out[a] = sorted(group["b"])
    return out


# completion --------------------------------------------------------------------------


@dataclass
class Completion:
    """What :func:`complete` did."""

    micro: np.ndarray
    moves: list[Move]
    flags: Flags  # with the special parts the re-solve made
    resolved: list[str]  # the grids re-solved
    locked: list[str]  # the grids held fixed
    rings: int
    errors_before: int
    errors_after: int


def _errors(units: Units, micro: np.ndarray, limits: Limits, flags: Flags, grids: set[str]):
    """Errors at grid and micro-grid level among ``grids`` (and their micro-grids)."""
    found = check(units, micro, limits, flags, levels=("grid", "microgrid"))
    return [v for v in found if v.severity == "error" and v.code[:15] in grids]


def complete(
    units: Units,
    micro: np.ndarray,
    edited: set[str],
    locks: set[str],
    limits: Limits,
    flags: Flags | None = None,
    max_rings: int = 3,
    retired: set[str] | frozenset[str] = frozenset(),
) -> Completion:
    """Re-solve the unlocked neighbours of the edited grids until they are valid again.

    The grids that received the planner's units hold their shape (they are locked with
    the planner's own locks); the grids around them that are out of their band, and
    their unlocked neighbours, are divided again into grids and micro-grids by
    :func:`~wangge.geo.partition.partition`, one community at a time. If errors remain,
    one more ring of neighbours joins, up to ``max_rings``. Codes are kept where a new
    part overlaps an old one most, so grids that did not change keep their numbers; a new
    part never takes a code in ``retired`` (codes earlier versions gave out and gave up).
    """
    flags = flags or Flags()
    flags = Flags(dict(flags.records), dict(flags.flag), dict(flags.note), dict(flags.record_codes))
    # dedicated grids (专属网格) are held like locks: a site is not redrawn into homes
    fixed = set(locks) | {c for c, f in flags.flag.items() if f == "dedicated" and len(c) == 15}
    nbrs = grid_neighbours(units, micro)
    all_grids = set(nbrs)
    edited = {g for g in edited if g in all_grids}
    # the region: edited grids that are out of band themselves, plus their neighbours
    region = {n for g in edited for n in nbrs.get(g, [])} | edited
    start_errors = _errors(units, micro, limits, flags, all_grids)
    bad = {v.code[:15] for v in start_errors}
    # an edited grid that is valid is held as the planner drew it
    fixed |= {g for g in edited if g not in bad}
    current = micro.copy()
    rings = 0
    resolved: set[str] = set()
    rng = np.random.default_rng(limits.solver.seed)
    while bad & region - fixed:
        rings += 1
        todo = region - fixed
        before = level_codes(current, "grid")
        current = _resolve(units, current, todo, limits, rng, flags, retired)
        # the parts may carry new numbers: they belong to the region too
        region |= set(level_codes(current[np.isin(before, list(todo))], "grid"))
        resolved |= todo
        errors = _errors(units, current, limits, flags, all_grids)
        bad = {v.code[:15] for v in errors}
        if rings >= max_rings:
            break
        nbrs = grid_neighbours(units, current)
        grown = {n for g in bad & region for n in nbrs.get(g, [])}
        if grown <= region:
            break
        region |= grown
    return Completion(
        micro=current,
        moves=diff(units, micro, current),
        flags=flags,
        resolved=sorted(resolved),
        locked=sorted(fixed),
        rings=rings,
        errors_before=len(start_errors),
        errors_after=len(_errors(units, current, limits, flags, all_grids)),
    )


def _resolve(
    units: Units,
    micro: np.ndarray,
    grids: set[str],
    limits: Limits,
    rng,
    flags: Flags,
    retired: set[str] | frozenset[str] = frozenset(),
) -> np.ndarray:
    """Divide the units of ``grids`` again, per community, into grids then micro-grids;
    ``flags`` learns the oversize grids and vertical micro-grids this makes."""
    out = micro.copy()
    grid_of = level_codes(micro, "grid")
    in_region = np.isin(grid_of, list(grids))
    for community in sorted({g[:12] for g in grids}):
        members = np.flatnonzero(in_region & (level_codes(micro, "community") == community))
        if not len(members):
            continue
        parts, _ = partition(
            units.graph, members, units.households, limits.grid, limits.solver, rng
        )
        old = sorted({grid_of[i] for i in members})
        used = (set(grid_of) - set(old)) | {c for c in retired if len(c) == 15}
        new_grids = keep_codes([p.units for p in parts], grid_of, old, community, used)
        for part, code in zip(parts, new_grids, strict=True):
            mark(flags, code, "oversize" if part.heavy else "", part.note)
            sub, _ = partition(
                units.graph, part.units, units.households, limits.microgrid, limits.solver, rng
            )
            olds = sorted({micro[i] for i in part.units if micro[i][:15] == code})
            taken = ({c for c in micro if c[:15] == code} - set(olds)) | {
                c for c in retired if len(c) > 15 and c[:15] == code
            }
            taken |= {
                r for m, rc in flags.record_codes.items() if m[:15] == code for r in rc.split(",")
            }
            micro_codes = keep_codes([s.units for s in sub], micro, olds, code, taken)
            spare = iter_free_codes(code, taken | set(micro_codes) | set(olds))
            for s, mcode in zip(sub, micro_codes, strict=True):
                out[s.units] = mcode
                mark(flags, mcode, "vertical" if s.heavy else "", s.note)
                if s.heavy:  # one footprint, several micro-grid records (floor ranges)
                    k = choose_k(float(units.households[s.units].sum()), limits.microgrid)[0]
                    records = [mcode, *(next(spare) for _ in range(k - 1))]
                    flags.records[mcode] = k
                    flags.record_codes[mcode] = ",".join(records)
    return out


def mark(flags: Flags, code: str, flag: str, note: str | None) -> None:
    flags.records.pop(code, None)
    flags.record_codes.pop(code, None)
    if flag:
        flags.flag[code] = flag
        flags.note[code] = note or ""
    else:
        flags.flag.pop(code, None)
        flags.note.pop(code, None)


def keep_codes(
    parts: list[np.ndarray],
    labels: np.ndarray,
    old: list[str],
    parent: str,
    taken: set[str],
) -> list[str]:
    """Give each new part the old code it overlaps most (each old code once), and the
    lowest free numbers under ``parent`` to the rest (retired codes are not reused)."""
    overlap = []
    for p, members in enumerate(parts):
        counts = pd.Series(labels[members]).value_counts()
        for code, n in counts.items():
            if code in old:
                overlap.append((-int(n), p, code))
    overlap.sort()
    out: list[str | None] = [None] * len(parts)
    used: set[str] = set()
    for _, p, code in overlap:
        if out[p] is None and code not in used:
            out[p] = code
            used.add(code)
    free = iter_free_codes(parent, taken | used | set(old))
    return [c if c is not None else next(free) for c in out]
