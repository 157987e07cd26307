"""Split a graph of weighted units into contiguous parts within a size band, aiming at a target.

The method is recursive bisection on spanning trees. A spanning tree of the units is
built with crossings of roads and barriers made dear, so whole blocks hang together.
Cutting one tree edge splits a region into two connected halves, so every part is
contiguous by construction. Of all the edges, the cut chosen is the one that leaves both
halves divisible into whole parts within the band, nearest the target. Among near ties,
it is the cut that runs along roads, stays compact and leaves compounds whole. A cut that
leaves a half no tree can divide is taken back, and the next tree's best cut tried
(depth first, so the nearest cut is revisited first). Every search is bounded: a fixed
number of trees per split, each scanned in linear time, and a fixed number of cuts taken
back per region. A split that no tree can make is taken at its least violation and
reported with the units that cause it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import breadth_first_order, connected_components

from wangge.geo._tree_cuts import Budget, cuts, least_violation, trees


@dataclass(frozen=True)
class Band:
    """Size limits of one level: every part within ``[lo, hi]``, aiming at ``target``."""

    name: str
    lo: float
    hi: float
    target: float
    #: A part that cannot be cut may be divided by floors instead (micro-grids only).
    divisible: bool = False


@dataclass(frozen=True)
class SolverParams:
    """Search bounds and cut costs (the ``[solver]`` table of ``limits.toml``)."""

    seed: int = 0
    attempts: int = 16
    candidates: int = 12
    backtracks: int = 48
    branch: int = 3
    mend: int = 400
    pool: int = 6
    road_weight: float = 0.6
    compact_weight: float = 1.0
    compound_weight: float = 3.0
    cross_minor_road: float = 3.0
    cross_major_road: float = 6.0
    cross_barrier: float = 8.0
    cross_gap: float = 16.0
    retries: int = 4


@dataclass
class UnitGraph:
    """Units (cells) and their rook adjacency, all as flat arrays.

    ``along`` is 0 for an edge inside a block, 1 along a minor road, 2 along a major road
    (rank ≤ 3), 3 along a barrier and 4 for a bridge across open land between detached
    pieces (:func:`wangge.geo.delineation.bridge`); ``compound`` marks edges inside one compound.
    """

    households: np.ndarray
    population: np.ndarray
    area: np.ndarray
    perimeter: np.ndarray
    xy: np.ndarray
    eu: np.ndarray
    ev: np.ndarray
    length: np.ndarray
    along: np.ndarray
    compound: np.ndarray

    @property
    def n(self) -> int:
        return len(self.households)


@dataclass
class Part:
    """One part: its units, and why it is special if it is."""

    units: np.ndarray
    heavy: bool = False
    note: str | None = None
    #: Why a part outside the band is accepted: ``infeasible`` when its region's total
    #: fits no whole number of parts (a given community of 200 households).
    flag: str = ""


@dataclass
class Issue:
    """A split that could not meet the band, with the units that make it impossible."""

    level: str
    units: np.ndarray
    reason: str


@dataclass
class _Ctx:
    g: UnitGraph
    weight: np.ndarray
    band: Band
    params: SolverParams
    rng: np.random.Generator
    mult: np.ndarray
    issues: list[Issue] = field(default_factory=list)
    #: Trees compared per cut (``params.pool`` at the levels that pool, else 1).
    pool: int = 6


def choose_k(total: float, band: Band) -> tuple[int, bool]:
    """Number of parts for a region of ``total``: nearest the target within the band.

    Returns
    -------
    (k, feasible)
        ``feasible`` is False when no whole number of parts fits the band; ``k`` is then
        the count that misses it least.
    """
    if total <= 0:
        return 1, True
    kmin = max(1, math.ceil(total / band.hi - 1e-9))
    kmax = math.floor(total / band.lo + 1e-9) if band.lo > 0 else 10**9
    want = max(1, round(total / band.target))
    if kmin <= kmax:
        return int(min(max(want, kmin), kmax)), True
    # between two counts: take the one that misses the band by less
    low = max(1, kmax)
    miss_low = total / low - band.hi
    miss_high = band.lo - total / kmin
    return (low if miss_low <= miss_high else kmin), False


def partition(
    g: UnitGraph,
    units: np.ndarray,
    weight: np.ndarray,
    band: Band,
    params: SolverParams,
    rng: np.random.Generator,
) -> tuple[list[Part], list[Issue]]:
    """Divide ``units`` into contiguous parts whose ``weight`` lies within ``band``.

    Units heavier than the ceiling become parts of their own (``heavy``: an oversize
    building, or one for vertical micro-grids). Scraps they cut off that are too light to
    stand alone join the heavy part they touch most.

    Parameters
    ----------
    g
        The unit graph.
    units
        Indices of the units to divide (a connected region).
    weight
        Weight per unit of the whole graph (households, or area for streets).
    band
        Limits and target.
    params, rng
        Search bounds and the seeded generator (same seed, same parts).

    Returns
    -------
    (parts, issues)
    """
    mult = np.ones(len(g.eu))
    mult[g.along == 1] = params.cross_minor_road
    mult[g.along == 2] = params.cross_major_road
    mult[g.along == 3] = params.cross_barrier
    mult[g.along == 4] = params.cross_gap
    mult[g.compound] *= 0.5
    ctx = _Ctx(g, weight, band, params, rng, mult)
    ctx.pool = params.pool if band.name in POOL_LEVELS else 1
    units = np.sort(np.asarray(units))
    edges = edges_within(g, units, np.arange(len(g.eu)))
    heavy = units[weight[units] > band.hi]
    parts: list[Part] = [
        Part(
            np.array([h]),
            heavy=True,
            note=f"an indivisible unit of {weight[h]:g} households > {band.name} ceiling "
            f"{band.hi:g}",
        )
        for h in heavy
    ]
    rest = np.setdiff1d(units, heavy)
    rest_edges = edges_within(g, rest, edges)
    comps = []
    for comp in components(g, rest, rest_edges):
        total = weight[comp].sum()
        if heavy.size and (total < band.lo or not choose_k(total, band)[1]):
            # under the floor (empty land too), or no whole count fits: what the heavy
            # parts beside it can take, they take
            comp = _shed_to_heavy(ctx, comp, edges_within(g, comp, rest_edges), edges, parts)
            if comp is None:
                continue
        comps.append(comp)
    totals = [weight[c].sum() for c in comps]
    counts = _counts(totals, weight[heavy].sum(), len(heavy), band)
    for comp, total, k in zip(comps, totals, counts, strict=True):
        own, feasible = choose_k(total, band)
        comp_edges = edges_within(g, comp, rest_edges)
        if not feasible:
            ctx.issues.append(
                Issue(
                    band.name,
                    comp,
                    (
                        f"{total:g} cannot be divided into {band.name}s of "
                        f"{band.lo:g}–{band.hi:g}; made {k} of {total / k:.0f}"
                    ),
                )
            )
        elif (
            total > 0  # an empty region is one part, flagged empty by the caller
            and not band.divisible
            and (blocker := _blocking_unit(weight, comp, total, band)) is not None
        ):
            feasible = False
            ctx.issues.append(
                Issue(
                    band.name,
                    np.array([blocker]),
                    (
                        f"one unit holds {weight[blocker]:g} of {total:g}, so whichever "
                        f"{band.name} holds it, the rest cannot make whole {band.name}s of "
                        f"{band.lo:g}–{band.hi:g}"
                    ),
                )
            )
        regions = _regions(ctx, comp, comp_edges, k, feasible)
        if k != own and _outside(ctx, regions):
            # more parts beside a tower are tighter to cut: the piece's own count may fit
            fewer = _regions(ctx, comp, comp_edges, own, feasible)
            if _outside(ctx, fewer) < _outside(ctx, regions):
                regions = fewer
        why = None if feasible else ctx.issues[-1].reason
        parts.extend(_finish(ctx, regions, report=feasible, why=why))
    return parts, ctx.issues


def _regions(
    ctx: _Ctx, comp: np.ndarray, comp_edges: np.ndarray, k: int, feasible: bool
) -> list[np.ndarray]:
    """A connected piece divided into ``k`` parts, mended where a part misses the band."""
    regions = _split(ctx, comp, comp_edges, k)
    if feasible:
        regions = _mend(ctx, regions, comp_edges)
        if ctx.pool > 1 and not ctx.band.divisible and _outside(ctx, regions):
            # compact cuts can corner a tower; the first fitting cut of each tree may not
            pooled, ctx.pool = ctx.pool, 1
            retry = _mend(ctx, _split(ctx, comp, comp_edges, k), comp_edges)
            ctx.pool = pooled
            if _outside(ctx, retry) < _outside(ctx, regions):
                regions = retry
    return regions


def _blocking_unit(weight: np.ndarray, units: np.ndarray, total: float, band: Band) -> int | None:
    """The heaviest unit when it alone makes the band impossible, else None.

    Whatever part holds the heaviest unit ``w`` weighs some ``x`` in ``[max(lo, w), hi]``,
    and the other ``k − 1`` parts must share ``total − x`` within the band; when no whole
    ``k`` allows that, no arrangement can, contiguous or not (a proof, not a search).
    """
    heaviest = units[int(np.argmax(weight[units]))]
    w = float(weight[heaviest])
    low = max(band.lo, w)
    for k in _feasible_ks(total, band):
        if k == 1:
            if low <= total <= band.hi:
                return None
            continue
        # total − x for x in [low, hi] meets [(k−1)·lo, (k−1)·hi]
        if total - band.hi <= (k - 1) * band.hi and total - low >= (k - 1) * band.lo:
            return None
    return int(heaviest)


def edges_within(g: UnitGraph, units: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Edge indices (from ``edges``) with both ends in the sorted array ``units``."""
    if len(units) == 0 or len(edges) == 0:
        return edges[:0]
    u, v = g.eu[edges], g.ev[edges]
    iu = np.clip(np.searchsorted(units, u), 0, len(units) - 1)
    iv = np.clip(np.searchsorted(units, v), 0, len(units) - 1)
    return edges[(units[iu] == u) & (units[iv] == v)]


def components(g: UnitGraph, units: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
    """The connected pieces of the sorted ``units`` on ``edges``."""
    if len(units) == 0:
        return []
    lu, lv = np.searchsorted(units, g.eu[edges]), np.searchsorted(units, g.ev[edges])
    m = len(units)
    mat = coo_array((np.ones(len(edges)), (lu, lv)), shape=(m, m))
    n, labels = connected_components(mat, directed=False)
    return [units[labels == i] for i in range(n)]


def _counts(totals: list[float], heavy_total: float, n_heavy: int, band: Band) -> list[int]:
    """Part counts of the pieces a region's heavy units leave, as :func:`choose_k` gives
    them, raised where heavy units stand in the region.

    A heavy unit is one part of the region, however many households it holds, so the
    region's count follows its whole total, the heavy units' households included: a
    community of 1,815 households is five grids whether or not one of them is a tower of
    547. The pieces beside the towers share what that count leaves them, one more part
    at a time to the piece whose parts are heaviest, never below their own
    :func:`choose_k` and never past the count their floor allows. (Where heavy units are
    divided by floors, as micro-grids are, they are no single part, and nothing is raised.)
    A raised count is tighter to cut; :func:`partition` falls back to the piece's own
    count where that leaves fewer parts outside the band.
    """
    out = [choose_k(t, band) for t in totals]
    ks = [k for k, _ in out]
    if not n_heavy or not totals or band.divisible:
        return ks
    want = round((sum(totals) + heavy_total) / band.target) - n_heavy
    while sum(ks) < want:
        room = [
            i
            for i, (t, (_, ok)) in enumerate(zip(totals, out, strict=True))
            if ok and (ks[i] + 1) * band.lo <= t + 1e-9
        ]
        if not room:
            break
        i = max(room, key=lambda j: totals[j] / ks[j])
        ks[i] += 1
    return ks


def _shed_to_heavy(
    ctx: _Ctx, comp: np.ndarray, comp_edges: np.ndarray, edges: np.ndarray, parts: list[Part]
) -> np.ndarray | None:
    """What is left of a piece that no whole count of parts fits, once the heavy parts
    beside it have taken what they must.

    A heavy part is outside the band whatever it holds, so the households it takes cost
    nothing, while a piece of 250 (under the floor) or of 550 (between one part and two)
    would be one more part outside. A piece under the floor joins the heavy part it
    shares most edge with. From a piece of 550, the least that leaves the rest within
    the band goes: a side of a spanning-tree cut that touches a heavy part (both sides of
    a tree cut are connected). Returns the rest, None when nothing is left, or the piece
    whole when no heavy part touches it or no tree gives such a cut.
    """
    g, band = ctx.g, ctx.band
    total = ctx.weight[comp].sum()
    if total < band.lo:
        host = _best_neighbour(g, comp, edges, parts)
        if host is None:
            return comp
        parts[host].units = np.union1d(parts[host].units, comp)
        return None
    if band.divisible:  # a heavy unit is divided by floors there, not one part
        return comp
    heavy_units = np.concatenate([p.units for p in parts if p.heavy])
    on_heavy = np.zeros(g.n, dtype=bool)
    on_heavy[heavy_units] = True
    u, v = g.eu[edges], g.ev[edges]
    touches = np.zeros(g.n, dtype=bool)
    touches[u[on_heavy[v]]] = True
    touches[v[on_heavy[u]]] = True
    touch = touches[comp]
    if not touch.any() or len(comp) < 2:
        return comp
    best: tuple[float, np.ndarray] | None = None
    for tree, _, _ in trees(ctx, comp, comp_edges, Budget(ctx.params.attempts)):
        cand = tree.order[1:]
        wa = tree.sub[cand]
        for below in (True, False):  # shed the subtree below a cut, or the rest above it
            keep = total - wa if below else wa
            shed = wa if below else total - wa
            for i in np.flatnonzero((keep >= band.lo - 1e-9) & (keep <= band.hi + 1e-9)):
                if best is not None and shed[i] >= best[0]:
                    continue
                side = np.zeros(len(comp), dtype=bool)
                side[tree.side(cand[i])] = True
                gone = side if below else ~side
                if touch[gone].any():
                    best = (float(shed[i]), gone)
        if best is not None:
            break
    if best is None:
        return comp
    gone = comp[best[1]]
    host = _best_neighbour(g, gone, edges, parts)
    parts[host].units = np.union1d(parts[host].units, gone)
    return comp[~best[1]]


def _best_neighbour(g: UnitGraph, comp: np.ndarray, edges: np.ndarray, parts: list[Part]):
    """Index of the heavy part sharing the longest edge with ``comp`` (None if none)."""
    inside = np.zeros(g.n, dtype=bool)
    inside[comp] = True
    best, best_len = None, 0.0
    for i, part in enumerate(parts):
        if not part.heavy:
            continue
        other = np.zeros(g.n, dtype=bool)
        other[part.units] = True
        u, v = g.eu[edges], g.ev[edges]
        shared = (inside[u] & other[v]) | (inside[v] & other[u])
        length = g.length[edges][shared].sum()
        if shared.any() and length >= best_len:
            best, best_len = i, length
    return best


def _feasible_ks(total: float, band: Band) -> list[int]:
    """Whole part counts that fit ``total`` in the band, nearest the target first."""
    if total <= 0:
        return [1]
    kmin = max(1, math.ceil(total / band.hi - 1e-9))
    kmax = math.floor(total / band.lo + 1e-9) if band.lo > 0 else kmin + 2
    return sorted(range(kmin, kmax + 1), key=lambda k: (abs(total / k - band.target), k))


def _split(ctx: _Ctx, units: np.ndarray, edges: np.ndarray, k: int) -> list[np.ndarray]:
    """Divide a connected region into about ``k`` parts within the band.

    First a strict search that takes cuts back when a half proves indivisible; when its
    budget runs out without a plan, the greedy split with repair and report.
    """
    # the happy path builds `pool` trees per cut, k - 1 cuts in all
    parts = _solve(ctx, units, edges, k, Budget((ctx.params.pool + 1) * k + ctx.params.backtracks))
    return parts if parts is not None else _split_greedy(ctx, units, edges, k)


def _solve(
    ctx: _Ctx, region: np.ndarray, edges: np.ndarray, k: int, budget: Budget
) -> list[np.ndarray] | None:
    """Strict recursive bisection with backtracking; None if no plan was found.

    ``budget`` (shared by the whole search) bounds the spanning trees it builds.
    """
    total = ctx.weight[region].sum()
    for alt in [k, *(x for x in _feasible_ks(total, ctx.band) if x != k)]:
        if alt == 1:
            return [region]
        if len(region) < alt:
            continue
        found = cuts(ctx, region, edges, alt, budget)
        for side_a, k_a in itertools.islice(found, ctx.params.branch):
            side_b = np.setdiff1d(region, side_a)
            left = _solve(ctx, side_a, edges_within(ctx.g, side_a, edges), k_a, budget)
            if left is None:
                continue
            right = _solve(ctx, side_b, edges_within(ctx.g, side_b, edges), alt - k_a, budget)
            if right is not None:
                return left + right
    return None


def _split_greedy(ctx: _Ctx, units: np.ndarray, edges: np.ndarray, k: int) -> list[np.ndarray]:
    """Recursive bisection that never gives up: the best compromise where no cut fits.

    When no tree offers a cut for ``k`` parts, other counts that fit the band are tried
    (a region of 35 that cannot be halved is one micro-grid); only when none works is
    the least-bad cut taken and repaired (at a divisible level, a region that repair cannot
    fix is left whole instead, for floors).
    """
    out: list[np.ndarray] = []
    stack = [(units, edges, k)]
    while stack:
        region, region_edges, parts = stack.pop()
        if parts <= 1 or len(region) <= 1:
            out.append(region)
            continue
        total = ctx.weight[region].sum()
        result, chosen = None, None
        for alt in [parts, *(x for x in _feasible_ks(total, ctx.band) if x != parts)]:
            if alt == 1:
                chosen = 1
                break
            result = next(cuts(ctx, region, region_edges, alt), None)
            if result is not None:
                chosen = alt
                break
        if chosen == 1:
            out.append(region)
            continue
        if result is None:
            side_a, k_a = least_violation(ctx, region, region_edges, parts)
            side_a, ok = _repair(ctx, region, region_edges, side_a, k_a, parts)
            if not ok and ctx.band.divisible:
                # left whole: _mend tries its neighbours, and floors divide what remains
                out.append(region)
                continue
            # the least-bad cut stands; _mend re-solves what it leaves outside the band
            result, chosen = (side_a, k_a), parts
        side_a, k_a = result
        side_b = np.setdiff1d(region, side_a)
        stack.append((side_b, edges_within(ctx.g, side_b, region_edges), chosen - k_a))
        stack.append((side_a, edges_within(ctx.g, side_a, region_edges), k_a))
    return out


#: Levels whose cuts are chosen from a pool of trees; communities take the first tree's,
#: which leaves grids more room (a compact community can corner a cluster of towers).
POOL_LEVELS = ("grid", "microgrid")


def _in_band(w: float, band: Band) -> bool:
    return band.lo - 1e-9 <= w <= band.hi + 1e-9


def _outside(ctx: _Ctx, regions: list[np.ndarray]) -> int:
    """How many regions miss the band, counting those floors may divide."""
    return sum(not _in_band(ctx.weight[r].sum(), ctx.band) for r in regions)


def _mend(ctx: _Ctx, regions: list[np.ndarray], edges: np.ndarray) -> list[np.ndarray]:
    """Re-solve each part outside the band together with the parts around it.

    A part that no cut could bring within the band often fits once its neighbours give
    and take (a tower pressed between two others needs households from beyond them).
    The part and its neighbours are divided afresh by the strict search on random trees,
    then with their neighbours too, up to three rings, within ``mend`` spanning trees each
    time.
    """
    g, band = ctx.g, ctx.band
    regions = list(regions)
    label = np.full(g.n, -1)
    for i, r in enumerate(regions):
        label[r] = i
    u, v = g.eu[edges], g.ev[edges]
    for i in range(len(regions)):
        total = ctx.weight[regions[i]].sum()
        if _in_band(total, band):
            continue
        # floors are a fair answer for a heavy micro-grid: a shorter search for those
        budget = ctx.params.mend // 8 if band.divisible and total > band.hi else ctx.params.mend
        group = {i}
        for _ring in range(3):
            cross = np.isin(label[u], list(group)) | np.isin(label[v], list(group))
            group |= set(label[u][cross]) | set(label[v][cross])
            union = np.sort(np.concatenate([regions[j] for j in group]))
            # random trees only (the near ones failed), and any cut that fits will do
            search = Budget(budget, near=0, pool=1)
            found = _solve(ctx, union, edges_within(g, union, edges), len(group), search)
            if found is None:
                continue
            # the group's slots take the new parts (one more or fewer at the end)
            slots = sorted(group)
            for j, part in zip(slots, found, strict=False):
                regions[j] = part
            extra = found[len(slots) :]
            regions.extend(extra)
            for j in slots[len(found) :]:
                regions[j] = regions[j][:0]
            for j, r in enumerate(regions):
                label[r] = j
            break
    return [r for r in regions if len(r)]


def _finish(
    ctx: _Ctx, regions: list[np.ndarray], report: bool, why: str | None = None
) -> list[Part]:
    """Parts from the regions; a region still outside the band is divided by floors
    where the level allows it, and otherwise reported with its heaviest units (or, when
    its whole region could never fit, flagged ``infeasible`` with ``why``)."""
    band, out = ctx.band, []
    for region in regions:
        w = ctx.weight[region]
        total = w.sum()
        if _in_band(total, band):
            out.append(Part(region))
        elif band.divisible and total > band.hi:
            note = (
                f"cannot be cut into whole {band.name}s of {band.lo:g}–{band.hi:g}; "
                "divided by floors"
            )
            out.append(Part(region, heavy=True, note=note))
        else:
            out.append(Part(region, note=why, flag="" if why is None else "infeasible"))
            if report:
                reason = (
                    f"{band.name} of {total:g} outside {band.lo:g}–{band.hi:g}: no contiguous "
                    f"arrangement found with its neighbours within the search bounds"
                )
                ctx.issues.append(Issue(band.name, region[np.argsort(-w)[:3]], reason))
    return out


def _violation(wa: float, wb: float, ka: int, kb: int, band: Band) -> float:
    return (
        max(0.0, ka * band.lo - wa)
        + max(0.0, wa - ka * band.hi)
        + max(0.0, kb * band.lo - wb)
        + max(0.0, wb - kb * band.hi)
    )


def _repair(
    ctx: _Ctx,
    units: np.ndarray,
    edges: np.ndarray,
    side: np.ndarray,
    k_a: int,
    k: int,
    max_moves: int = 60,
) -> tuple[np.ndarray, bool]:
    """Move boundary units across a cut until both sides fit the band, keeping both
    sides connected. Returns the side and whether it now fits."""
    g, band = ctx.g, ctx.band
    m = len(units)
    lu, lv = np.searchsorted(units, g.eu[edges]), np.searchsorted(units, g.ev[edges])
    w = ctx.weight[units]
    in_a = np.isin(units, side)
    nbrs = coo_array((np.ones(len(edges)), (lu, lv)), shape=(m, m)).tocsr()
    nbrs = (nbrs + nbrs.T).tocsr()
    for _ in range(max_moves):
        wa, wb = w[in_a].sum(), w[~in_a].sum()
        viol = _violation(wa, wb, k_a, k - k_a, band)
        if viol <= 0:
            return units[in_a], True
        # the side that is too heavy, or whose partner is too light, gives
        give_a = wa - k_a * band.hi > 0 or (k - k_a) * band.lo - wb > 0
        donor = in_a if give_a else ~in_a
        touching = (lu[donor[lu] != donor[lv]], lv[donor[lu] != donor[lv]])
        cand = np.unique(np.concatenate(touching))
        cand = cand[donor[cand] & (w[cand] > 0)]
        moved = False
        for c in cand[
            np.argsort(
                [
                    _violation(
                        *((wa - w[c], wb + w[c]) if give_a else (wa + w[c], wb - w[c])),
                        k_a,
                        k - k_a,
                        band,
                    )
                    for c in cand
                ],
                kind="stable",
            )
        ]:
            new_wa, new_wb = (wa - w[c], wb + w[c]) if give_a else (wa + w[c], wb - w[c])
            if _violation(new_wa, new_wb, k_a, k - k_a, band) >= viol:
                break
            rest = np.flatnonzero(donor)
            rest = rest[rest != c]
            if len(rest) == 0:
                continue
            sub = nbrs[rest][:, rest]
            if connected_components(sub, directed=False)[0] != 1:
                continue
            in_a[c] = not in_a[c]
            moved = True
            break
        if not moved and not _path_move(in_a, give_a, w, nbrs, k_a, k, band):
            break
    wa, wb = w[in_a].sum(), w[~in_a].sum()
    return units[in_a], _violation(wa, wb, k_a, k - k_a, band) <= 0


def _path_move(
    in_a: np.ndarray,
    give_a: bool,
    w: np.ndarray,
    nbrs,
    k_a: int,
    k: int,
    band: Band,
    max_tries: int = 200,
) -> bool:
    """Move a chain of donor units, from the cut to a unit with households, to the other side.

    Where the receiving side can only grow through empty cells (a tower walled in by
    open ground), single moves never help; a path through those cells does. The path is
    the shortest one (in units) found by a breadth-first search over the donor side, and
    it moves only if the donor side stays connected and the violation falls.
    """
    donor = in_a if give_a else ~in_a
    idx = np.flatnonzero(donor)
    if len(idx) < 2:
        return False
    wa, wb = w[in_a].sum(), w[~in_a].sum()
    viol = _violation(wa, wb, k_a, k - k_a, band)
    pos = np.full(len(w), -1)
    pos[idx] = np.arange(len(idx))
    sub = nbrs[idx][:, idx]
    # a virtual source (last node) joined to every donor unit that touches the receiver
    touch = np.asarray((nbrs[idx][:, np.flatnonzero(~donor)]).sum(axis=1)).ravel() > 0
    n = len(idx)
    src = coo_array(
        (np.ones(touch.sum()), (np.full(touch.sum(), n), np.flatnonzero(touch))),
        shape=(n + 1, n + 1),
    )
    sub_coo = sub.tocoo()
    graph = (
        coo_array((sub_coo.data, (sub_coo.row, sub_coo.col)), shape=(n + 1, n + 1)) + src
    ).tocsr()
    order, pred = breadth_first_order(graph, n, directed=False, return_predecessors=True)
    for v in order[1 : max_tries + 1]:
        if w[idx[v]] <= 0:
            continue
        path = []
        x = v
        while x != n and x >= 0:
            path.append(x)
            x = pred[x]
        moved = w[idx[path]].sum()
        new_wa, new_wb = (wa - moved, wb + moved) if give_a else (wa + moved, wb - moved)
        if _violation(new_wa, new_wb, k_a, k - k_a, band) >= viol:
            continue
        keep = np.ones(n, dtype=bool)
        keep[path] = False
        if keep.sum() == 0 or connected_components(sub[keep][:, keep], directed=False)[0] != 1:
            continue
        in_a[idx[path]] = not give_a
        return True
    return False
