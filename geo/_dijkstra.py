"""Multi-source Dijkstra with per-source offsets, compiled with numba (releases the GIL).

scipy's ``dijkstra`` holds the GIL, so several facility types cannot share cores from
threads; this one can. It also carries, for every node, which source its shortest path
starts from, so the nearest facility comes out of the same pass. A ``limit`` (a type's
reach) stops it there: nothing farther is ever pushed, so a search costs what its reach
covers, not the whole city.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def multi_source(indptr, indices, data, source, offset, limit):  # pragma: no cover - jitted
    """Distance from every node to the nearest source, and that source's position.

    ``source[i]`` starts at distance ``offset[i]``; nodes farther than ``limit`` stay at
    infinity with origin -1. A 4-ary heap (shallower than a binary one, so fewer cache
    misses) with lazy deletion, over the CSR arrays. Each heap entry keeps its key and its
    node side by side (``h[2k]``, ``h[2k + 1]``, the node a float: exact below 2⁵³), so a
    step of the heap reads one cache line, not two.
    """
    n = len(indptr) - 1
    dist = np.full(n, np.inf)
    origin = np.full(n, -1, dtype=np.int32)
    h = np.empty(2 * (len(source) + len(indices) + 1))
    # sources in order of offset (stable: the first of equal ones wins, as one by one)
    # already form a heap, so they are laid in, not pushed
    size = 0
    for i in np.argsort(offset, kind="mergesort"):
        s = source[i]
        if offset[i] < dist[s] and offset[i] <= limit:
            dist[s] = offset[i]
            origin[s] = i
            h[2 * size] = offset[i]
            h[2 * size + 1] = s
            size += 1
    while size > 0:
        d = h[0]
        u = np.int64(h[1])
        size -= 1
        _sift_down(h, size, h[2 * size], h[2 * size + 1])
        if d > dist[u]:
            continue  # a stale entry: u was reached shorter since
        ou = origin[u]
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            nd = d + data[e]
            if nd < dist[v] and nd <= limit:
                dist[v] = nd
                origin[v] = ou
                _sift_up(h, size, nd, v)
                size += 1
    return dist, origin


@njit(cache=True, nogil=True, inline="always")
def _sift_down(h, size, key, val):  # pragma: no cover - jitted
    """Fill the root's hole from ``size`` entries with (key, val), the old last entry."""
    j = 0
    while True:
        first = 4 * j + 1
        if first >= size:
            break
        c = first
        ck = h[2 * c]
        for q in range(first + 1, min(first + 4, size)):
            if h[2 * q] < ck:
                c = q
                ck = h[2 * q]
        if ck >= key:
            break
        h[2 * j] = ck
        h[2 * j + 1] = h[2 * c + 1]
        j = c
    if size > 0:
        h[2 * j] = key
        h[2 * j + 1] = val


@njit(cache=True, nogil=True, inline="always")
def _sift_up(h, size, key, val):  # pragma: no cover - jitted
    """Push (key, val) onto a heap of ``size`` entries."""
    j = size
    while j > 0:
        p = (j - 1) >> 2
        if h[2 * p] <= key:
            break
        h[2 * j] = h[2 * p]
        h[2 * j + 1] = h[2 * p + 1]
        j = p
    h[2 * j] = key
    h[2 * j + 1] = val


@njit(cache=True, nogil=True)
def at_targets(dist, origin, node, snap, on, source_pos):  # pragma: no cover - jitted
    """Each target's distance (its node's plus its snap) and nearest source's position in
    ``source_pos``; inf and -1 off the network or unreached. One pass, without the GIL."""
    m = len(node)
    out = np.full(m, np.inf)
    which = np.full(m, -1, dtype=np.int64)
    for i in range(m):
        if on[i]:
            k = node[i]
            out[i] = dist[k] + snap[i]
            if origin[k] >= 0:
                which[i] = source_pos[origin[k]]
    return out, which
