"""Maximal covering: greedy plus swap against brute force and HiGHS."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import sparse

from wangge.geo.siting import exact_highs, greedy_swap, suggest


def _random_instance(seed: int, n=60, m=12, p=0.15):
    rng = np.random.default_rng(seed)
    a = sparse.csr_matrix(rng.random((n, m)) < p)
    w = rng.integers(1, 50, n).astype(float)
    return a, w


def _brute(a, w, k):
    dense = a.toarray()
    return max(
        float(w @ dense[:, list(c)].any(axis=1))
        for c in itertools.combinations(range(a.shape[1]), k)
    )


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [2, 3])
def test_exact_matches_brute_force_and_greedy_is_close(seed, k):
    a, w = _random_instance(seed)
    best = _brute(a, w, k)
    exact, bound, status, chosen = exact_highs(a, w, k)
    assert status == "optimal" and exact == pytest.approx(best) and bound == pytest.approx(best)
    assert len(chosen) == k
    ours = greedy_swap(a, w, k)
    # greedy is a (1 − 1/e) approximation; swaps bring it to the optimum on small cases
    assert ours.covered >= (1 - 1 / np.e) * best
    assert ours.covered <= best + 1e-9
    assert ours.gains.sum() == pytest.approx(ours.covered)
    assert (np.diff(ours.gains) <= 1e-9).all()


def test_swap_fixes_the_classic_greedy_trap():
    """Site 0 covers the middle of two clusters; sites 1 and 2 each cover one whole
    cluster. Greedy takes 0 first; a swap must reach {1, 2}."""
    w = np.array([10, 10, 10, 10, 1, 1], dtype=float)
    cover = np.zeros((6, 3), dtype=bool)
    cover[[1, 2, 4, 5], 0] = True  # the middle
    cover[[0, 1, 4], 1] = True
    cover[[2, 3, 5], 2] = True
    ours = greedy_swap(sparse.csr_matrix(cover), w, 2)
    assert sorted(ours.chosen.tolist()) == [1, 2]
    assert ours.covered == 42 and ours.swaps >= 1


def test_suggest_reports_the_gap():
    a, w = _random_instance(11, n=200, m=30, p=0.05)
    result = suggest(a, w, 4)
    assert result.exact_status == "optimal"
    assert result.gap == pytest.approx((result.bound - result.covered) / result.bound)
    assert 0 <= result.gap < 0.1


def test_nothing_to_cover():
    a = sparse.csr_matrix((5, 3), dtype=bool)
    ours = greedy_swap(a, np.ones(5), 2)
    assert len(ours.chosen) == 0 and ours.covered == 0 and ours.total == 0
