"""Where to build next: maximal covering of uncovered households by k new sites.

Church & ReVelle's maximal covering location problem (1974): pick ``k`` of the candidate
sites to maximise the households within reach. wangge solves it greedily (each pick the
site that adds the most households not yet covered), then improves the pick by swaps
(drop one chosen site, add the best other one while that gains). For small instances an
exact MILP with HiGHS (``scipy.optimize.milp``) gives the optimum or a bound, and the gap
is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import dijkstra

from wangge.geo.access import Snapped, WalkGraph


@dataclass
class Siting:
    """The chosen sites and what they cover."""

    chosen: np.ndarray  # candidate indices, in the order of their marginal gain
    gains: np.ndarray  # households each adds, given the ones before it
    covered: float  # households covered by all chosen sites
    total: float  # households that any candidate could cover
    seconds: float
    swaps: int = 0
    exact: float | None = None  # HiGHS's best solution, when run
    bound: float | None = None  # HiGHS's upper bound on the optimum, when run
    exact_status: str = ""
    method: str = "greedy+swap"

    @property
    def gap(self) -> float | None:
        """Relative gap of the greedy-swap cover to the exact bound (0 = proven optimal)."""
        if self.bound is None or self.bound <= 0:
            return None
        return max(0.0, (self.bound - self.covered) / self.bound)


def coverage_matrix(
    graph: WalkGraph,
    demand: Snapped,
    candidates: Snapped,
    reach: float,
    chunk_cells: int = 20_000_000,
) -> sparse.csr_matrix:
    """Which candidate covers which demand point within ``reach`` metres of walking.

    A demand point is covered when ``snap(demand) + path + snap(candidate) ≤ reach``.
    Candidates off the network cover nothing. Searches are bounded by ``reach`` and run
    in chunks of candidates so memory stays under ``chunk_cells`` distances.

    Returns
    -------
    scipy.sparse.csr_matrix
        Boolean, demand × candidates.
    """
    n_dem, n_cand = len(demand.node), len(candidates.node)
    rows, cols = [], []
    ok = np.flatnonzero(candidates.on_network & (candidates.snap_m <= reach))
    dem_ok = np.flatnonzero(demand.on_network)
    # demand points by node, so a node's distance serves every point snapped to it
    order = dem_ok[np.argsort(demand.node[dem_ok], kind="stable")]
    dem_nodes = demand.node[order]
    step = max(1, chunk_cells // max(graph.n, 1))
    for start in range(0, len(ok), step):
        cand = ok[start : start + step]
        dist = dijkstra(graph.csr, directed=False, indices=candidates.node[cand], limit=reach)
        d = dist[:, dem_nodes] + demand.snap_m[order] + candidates.snap_m[cand][:, None]
        ci, di = np.nonzero(d <= reach)
        rows.append(order[di])
        cols.append(cand[ci])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    return sparse.csr_matrix((np.ones(len(r), dtype=bool), (r, c)), shape=(n_dem, n_cand))


def greedy_swap(
    cover: sparse.spmatrix, weight: np.ndarray, k: int, time_limit: float | None = None
) -> Siting:
    """Greedy maximal covering, improved by swaps until no swap gains or time runs out.

    Parameters
    ----------
    cover
        Demand × candidates, True where the candidate covers the demand point.
    weight
        Households at each demand point.
    k
        Sites to choose (fewer if fewer candidates cover anything).
    time_limit
        Seconds after which the swap phase stops with the best cover so far.
    """
    start = time.perf_counter()
    a = sparse.csc_matrix(cover, dtype=np.float64)
    a.sum_duplicates()
    at = a.T.tocsr()
    w = np.asarray(weight, dtype=float)
    n_cand = a.shape[1]

    def col(j: int) -> np.ndarray:
        return _col(a, j)

    reachable = np.asarray(a.sum(axis=1)).ravel() > 0
    total = float(w[reachable].sum())
    count = np.zeros(a.shape[0], dtype=np.int64)
    chosen: list[int] = []
    for _ in range(min(k, n_cand)):
        gain = at @ (w * (count == 0))
        gain[chosen] = -1
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        chosen.append(j)
        count[col(j)] += 1
    swaps = 0
    improved = True
    while (
        improved
        and len(chosen)
        and (time_limit is None or time.perf_counter() - start < time_limit)
    ):
        improved = False
        for pos in range(len(chosen)):
            s = chosen[pos]
            rows = col(s)
            count[rows] -= 1
            lost = rows[count[rows] == 0]
            loss = float(w[lost].sum())
            gain = at @ (w * (count == 0))
            gain[chosen] = -1
            j = int(np.argmax(gain))
            if gain[j] > loss + 1e-9:
                chosen[pos] = j
                swaps += 1
                improved = True
            count[col(chosen[pos])] += 1
            if time_limit is not None and time.perf_counter() - start >= time_limit:
                break
    order, gains = ordered(a, w, chosen)
    covered = float(w @ (count > 0))
    return Siting(order, gains, covered, total, time.perf_counter() - start, swaps)


def ordered(a: sparse.csc_matrix, w: np.ndarray, chosen) -> tuple[np.ndarray, np.ndarray]:
    """The chosen sites in greedy order, each with the households it adds to those before."""
    order, gains = [], []
    seen = np.zeros(a.shape[0], dtype=bool)
    left = [int(j) for j in chosen]
    while left:
        g = [float(w[_col(a, j)][~seen[_col(a, j)]].sum()) for j in left]
        best = int(np.argmax(g))
        j = left.pop(best)
        order.append(j)
        gains.append(g[best])
        seen[_col(a, j)] = True
    return np.asarray(order, dtype=np.int64), np.asarray(gains)


def _col(a: sparse.csc_matrix, j: int) -> np.ndarray:
    return a.indices[a.indptr[j] : a.indptr[j + 1]]


def exact_highs(
    cover: sparse.spmatrix, weight: np.ndarray, k: int, time_limit: float = 10.0
) -> tuple[float | None, float | None, str, np.ndarray | None]:
    """Solve the maximal covering MILP with HiGHS within ``time_limit`` seconds.

    ``max Σ w_i y_i`` subject to ``y_i ≤ Σ_j a_ij x_j``, ``Σ x_j = k``, ``x`` binary and
    ``0 ≤ y ≤ 1``. Returns (best cover found, upper bound, status, chosen sites).
    """
    a = sparse.csr_matrix(cover, dtype=np.float64)
    w = np.asarray(weight, dtype=float)
    keep = np.asarray(a.sum(axis=1)).ravel() > 0
    a, w = a[keep], w[keep]
    m, n = a.shape[1], a.shape[0]
    k = min(k, m)
    c = np.r_[np.zeros(m), -w]
    link = sparse.hstack([-a, sparse.identity(n, format="csr")], format="csr")
    count = sparse.csr_matrix(np.r_[np.ones(m), np.zeros(n)][None, :])
    res = milp(
        c,
        constraints=[
            LinearConstraint(link, -np.inf, 0),
            LinearConstraint(count, k, k),
        ],
        integrality=np.r_[np.ones(m), np.zeros(n)],
        bounds=Bounds(0, 1),
        options={"time_limit": float(time_limit), "disp": False},
    )
    status = {0: "optimal", 1: "time limit"}.get(res.status, res.message)
    bound = getattr(res, "mip_dual_bound", None)
    bound = None if bound is None or not np.isfinite(bound) else -float(bound)
    if res.x is None:
        return None, bound, status, None
    chosen = np.flatnonzero(res.x[:m] > 0.5)
    best = float(w @ (np.asarray(a[:, chosen].sum(axis=1)).ravel() > 0))
    if status == "optimal":
        bound = best if bound is None else max(bound, best)
    return best, bound, status, chosen


def suggest(
    cover: sparse.spmatrix,
    weight: np.ndarray,
    k: int,
    time_limit: float | None = 1.0,
    exact_below: int = 200_000,
    exact_time: float = 10.0,
) -> Siting:
    """Greedy plus swap, and for small instances (fewer than ``exact_below`` non-zeros
    in ``cover``) HiGHS's optimum or bound for the gap."""
    result = greedy_swap(cover, weight, k, time_limit)
    if sparse.csr_matrix(cover).nnz < exact_below and len(result.chosen):
        best, bound, status, chosen = exact_highs(cover, weight, k, exact_time)
        result.exact, result.bound, result.exact_status = best, bound, status
        if best is not None and best > result.covered + 1e-9:
            # HiGHS found a better cover: suggest its sites
            a = sparse.csc_matrix(cover, dtype=np.float64)
            result.chosen, result.gains = ordered(a, np.asarray(weight, dtype=float), chosen)
            result.covered = best
            result.method = "highs"
    return result
