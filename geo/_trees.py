"""One spanning tree of a region and its subtree sums, compiled with numba.

The partitioner (geo/partition.py) draws thousands of spanning trees per street, most of
them of a few dozen units. Through scipy each one costs a sparse matrix, a validation, a
minimum spanning tree, a depth-first order and a Python loop over the units, and the
fixed cost of those calls dominated a street's time. Here Kruskal's algorithm (edges by
weight, stable, so ties go to the earlier edge), an iterative depth-first preorder from
unit 0 and the sums of weight and size under every unit run in one compiled pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _find(parent, a):  # pragma: no cover - jitted
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True)
def spanning_tree(m, lu, lv, weights, w):  # pragma: no cover - jitted
    """The minimum spanning tree of ``m`` units joined by edges ``lu``–``lv``.

    Returns ``order`` (depth-first preorder from unit 0: every subtree is a contiguous
    run), ``pred`` (parent in the tree, -1 at the root), ``sub`` (sum of ``w`` under each
    unit, itself included) and ``size`` (units under each). ``order`` is shorter than
    ``m`` when the edges do not connect the units.
    """
    parent = np.arange(m)
    tu = np.empty(max(m - 1, 0), np.int64)
    tv = np.empty(max(m - 1, 0), np.int64)
    k = 0
    for e in np.argsort(weights, kind="mergesort"):
        if k == m - 1:
            break
        a = _find(parent, lu[e])
        b = _find(parent, lv[e])
        if a != b:
            parent[a] = b
            tu[k] = lu[e]
            tv[k] = lv[e]
            k += 1
    deg = np.zeros(m + 1, np.int64)
    for i in range(k):
        deg[tu[i] + 1] += 1
        deg[tv[i] + 1] += 1
    indptr = np.cumsum(deg)
    fill = indptr[:-1].copy()
    adj = np.empty(2 * k, np.int64)
    for i in range(k):
        adj[fill[tu[i]]] = tv[i]
        fill[tu[i]] += 1
        adj[fill[tv[i]]] = tu[i]
        fill[tv[i]] += 1
    order = np.empty(m, np.int64)
    pred = np.full(m, -1, np.int64)
    seen = np.zeros(m, np.bool_)
    stack = np.empty(m, np.int64)
    top = 0
    n = 0
    if m > 0:
        stack[0] = 0
        top = 1
        seen[0] = True
    while top > 0:
        top -= 1
        v = stack[top]
        order[n] = v
        n += 1
        # push in reverse so that neighbours are visited in edge order
        for j in range(indptr[v + 1] - 1, indptr[v] - 1, -1):
            u = adj[j]
            if not seen[u]:
                seen[u] = True
                pred[u] = v
                stack[top] = u
                top += 1
    sub = w.copy()
    size = np.ones(m, np.int64)
    for i in range(n - 1, 0, -1):
        v = order[i]
        sub[pred[v]] += sub[v]
        size[pred[v]] += size[v]
    return order[:n], pred, sub, size
