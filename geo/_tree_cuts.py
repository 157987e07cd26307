"""The partition's search for cuts (geo/partition.py): spanning trees of a region drawn
shortest first, then wandering, then at random (as GerryChain draws them), each cut into
two halves that can be divided within the band, scored by the deviation from equal shares
and by the cut's cost: crossing roads not followed, compactness lost, compounds cut.

``ctx`` is the partition's context (``geo.partition._Ctx``): the unit graph, the weights,
the band, the solver's parameters, the edge multipliers and the random generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from wangge.geo._trees import spanning_tree

if TYPE_CHECKING:
    from wangge.geo.partition import _Ctx

#: Trees drawn near the shortest one before random trees take over.
NEAR_TREES = 4


@dataclass
class Budget:
    """Spanning trees a search may still build; ``near`` of each region's are drawn near
    the shortest tree before random ones."""

    trees: int
    near: int = NEAR_TREES
    #: Trees whose best cuts are compared before the first is tried (None: the params').
    pool: int | None = None


@dataclass
class Tree:
    """One spanning tree of a region, with the subtree below every unit."""

    order: np.ndarray
    pos: np.ndarray
    size: np.ndarray
    sub: np.ndarray

    def side(self, v: int) -> np.ndarray:
        return self.order[self.pos[v] : self.pos[v] + self.size[v]]


def trees(ctx: _Ctx, units: np.ndarray, edges: np.ndarray, budget: Budget | None = None):
    """Spanning trees of a region, up to ``attempts`` (and while ``budget`` lasts): first
    the shortest, with crossings of roads and barriers made dear; the next few wander
    from it; the rest are random."""
    g = ctx.g
    m = len(units)
    w = ctx.weight[units]
    lu = np.searchsorted(units, g.eu[edges])
    lv = np.searchsorted(units, g.ev[edges])
    base = np.hypot(*(g.xy[g.eu[edges]] - g.xy[g.ev[edges]]).T) + 1e-3
    base = base * ctx.mult[edges]
    near = NEAR_TREES if budget is None else budget.near
    for attempt in range(ctx.params.attempts):
        if budget is not None:
            if budget.trees <= 0:
                return
            budget.trees -= 1
        if attempt == 0:
            weights = base
        elif attempt < near:
            weights = base * (1.0 + attempt * 0.25 * ctx.rng.random(len(edges)))
        else:  # random spanning trees, as GerryChain draws them: the widest search
            weights = ctx.rng.random(len(edges)) + 1e-6
        order, _, sub, size = spanning_tree(m, lu, lv, weights, w)
        if len(order) < m:  # not connected: cannot happen for a region cut from a tree
            raise RuntimeError("region to bisect is not connected")
        pos = np.empty(m, dtype=np.int64)
        pos[order] = np.arange(m)
        yield Tree(order, pos, size, sub), lu, lv


def cuts(ctx: _Ctx, units: np.ndarray, edges: np.ndarray, k: int, budget: Budget | None = None):
    """Cuts of a region into two halves that can each be divided within the band: the
    best-scored cut of each spanning tree in turn, computed only when asked for."""
    band, p = ctx.band, ctx.params
    total = ctx.weight[units].sum()
    pool: list[tuple[float, np.ndarray, int]] = []
    size = ctx.pool if budget is None or budget.pool is None else budget.pool
    for tree, lu, lv in trees(ctx, units, edges, budget):
        cand = tree.order[1:]
        wa = tree.sub[cand]
        wb = total - wa
        kmin = np.maximum.reduce(
            [
                np.ones_like(wa),
                np.ceil(wa / band.hi - 1e-9),
                k - np.floor(wb / band.lo + 1e-9) if band.lo > 0 else np.ones_like(wa),
            ]
        )
        kmax = np.minimum.reduce(
            [
                np.full_like(wa, k - 1),
                np.floor(wa / band.lo + 1e-9) if band.lo > 0 else np.full_like(wa, k - 1),
                k - np.ceil(wb / band.hi - 1e-9),
            ]
        )
        ka = np.clip(np.round(wa * k / total), kmin, np.maximum(kmin, kmax))
        idx = np.flatnonzero(kmin <= kmax)
        if not len(idx):
            continue
        share = total / k
        dev = np.abs(wa - ka * share) / share + 0.02 * np.abs(ka / k - 0.5)
        idx = idx[np.argsort(dev[idx], kind="stable")[: p.candidates]]
        scores = [dev[i] + cut_cost(ctx, units, tree.side(cand[i]), edges, lu, lv) for i in idx]
        best = int(np.argmin(scores))
        i = idx[best]
        pool.append((scores[best], units[np.sort(tree.side(cand[i]))], int(ka[i])))
        if len(pool) >= size:
            pool.sort(key=lambda c: c[0])
            for _, side, k_a in pool:
                yield side, k_a
            pool = []
    pool.sort(key=lambda c: c[0])
    for _, side, k_a in pool:
        yield side, k_a


def least_violation(
    ctx: _Ctx, units: np.ndarray, edges: np.ndarray, k: int
) -> tuple[np.ndarray, int]:
    """The cut, over all trees, that misses the band by the least."""
    band = ctx.band
    total = ctx.weight[units].sum()
    best = None  # (violation, side, k_a)
    for tree, _, _ in trees(ctx, units, edges):
        cand = tree.order[1:]
        wa = tree.sub[cand]
        wb = total - wa
        ka = np.clip(np.round(wa * k / total), 1, k - 1)
        viol = (
            np.maximum(0, ka * band.lo - wa)
            + np.maximum(0, wa - ka * band.hi)
            + np.maximum(0, (k - ka) * band.lo - wb)
            + np.maximum(0, wb - (k - ka) * band.hi)
        )
        i = int(np.argmin(viol))
        if best is None or viol[i] < best[0]:
            best = (viol[i], tree.side(cand[i]), int(ka[i]))
    assert best is not None
    return units[np.sort(best[1])], best[2]


def cut_cost(
    ctx: _Ctx,
    units: np.ndarray,
    side: np.ndarray,
    edges: np.ndarray,
    lu: np.ndarray,
    lv: np.ndarray,
) -> float:
    g, p = ctx.g, ctx.params
    in_a = np.zeros(len(units), dtype=bool)
    in_a[side] = True
    a_u, a_v = in_a[lu], in_a[lv]
    cross = a_u != a_v
    length = g.length[edges]
    cut = length[cross].sum()
    if cut <= 0:
        return 0.0
    along = length[cross & (g.along[edges] > 0)].sum()
    through = length[cross & g.compound[edges]].sum()
    area, perim = g.area[units], g.perimeter[units]
    pa = perim[in_a].sum() - 2 * length[a_u & a_v].sum()
    pb = perim[~in_a].sum() - 2 * length[~a_u & ~a_v].sum()
    pp_a = 4 * math.pi * area[in_a].sum() / max(pa, 1e-9) ** 2
    pp_b = 4 * math.pi * area[~in_a].sum() / max(pb, 1e-9) ** 2
    return (
        p.road_weight * (1 - along / cut)
        + p.compact_weight * (1 - min(pp_a, pp_b))
        + p.compound_weight * through / cut
    )
