"""Multi-source Dijkstra with per-source offsets, compiled with numba (releases the GIL).

scipy's ``dijkstra`` holds the GIL, so several facility types cannot share cores from
threads; this one can. It also carries, for every node, which source its shortest path
starts from, so the nearest facility comes out of the same pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _push(hk, hv, size, key, val):
    j = size
    while j > 0:
        p = (j - 1) >> 2
        if hk[p] <= key:
            break
        hk[j] = hk[p]
        hv[j] = hv[p]
        j = p
    hk[j] = key
    hv[j] = val
    return size + 1


@njit(cache=True, nogil=True)
def multi_source(indptr, indices, data, source, offset, limit):  # pragma: no cover - jitted
    """Distance from every node to the nearest source, and that source's position.

    ``source[i]`` starts at distance ``offset[i]``; nodes farther than ``limit`` stay at
    infinity with origin -1. A 4-ary heap (shallower than a binary one, so fewer cache
    misses) with lazy deletion, over the CSR arrays.
    """
    n = len(indptr) - 1
    dist = np.full(n, np.inf)
    origin = np.full(n, -1, dtype=np.int32)
    hk = np.empty(len(source) + len(indices) + 1)
    hv = np.empty(len(source) + len(indices) + 1, dtype=np.int32)
    size = 0
    for i in range(len(source)):
        s = source[i]
        if offset[i] < dist[s] and offset[i] <= limit:
            dist[s] = offset[i]
            origin[s] = i
            size = _push(hk, hv, size, offset[i], s)
    while size > 0:
        d = hk[0]
        u = hv[0]
        size -= 1
        last_k = hk[size]
        last_v = hv[size]
        j = 0
        while True:
            first = 4 * j + 1
            if first >= size:
                break
            c = first
            end = min(first + 4, size)
            for q in range(first + 1, end):
                if hk[q] < hk[c]:
                    c = q
            if hk[c] >= last_k:
                break
            hk[j] = hk[c]
            hv[j] = hv[c]
            j = c
        if size > 0:
            hk[j] = last_k
            hv[j] = last_v
        if d > dist[u]:
            continue  # a stale entry: u was reached shorter since
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            nd = d + data[e]
            if nd < dist[v] and nd <= limit:
                dist[v] = nd
                origin[v] = origin[u]
                size = _push(hk, hv, size, nd, v)
    return dist, origin
