"""Multi-source shortest paths with per-source offsets, compiled with numba (releases the GIL).

scipy's ``dijkstra`` holds the GIL, so several facility types cannot share cores from
threads; this one can. It also carries, for every node, which source its shortest path
starts from, so the nearest facility comes out of the same pass. A ``limit`` (a type's
reach) stops it there: nothing farther is ever queued, so a search costs what its reach
covers, not the whole city.

The queue is a ring of buckets ``width`` metres wide (Δ-stepping on one thread), not a
heap. A priority heap spent about two thirds of a search's time sifting (a sweep over the
same nodes in the same order, with no queue, took a third of the time): each pop walked
eight levels of unpredictable comparisons. A bucket takes an entry in O(1) and gives its
entries back in any order; an entry reached within its own bucket (an edge shorter than
``width``) is simply queued again in that bucket and looked at once more. Every node's
final distance is the least over its paths of the same left-to-right sums Dijkstra makes,
so the distances are Dijkstra's to the bit; only which of two equally near sources a node
names may differ.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def multi_source(
    indptr, indices, data, source, offset, limit, width, ring
):  # pragma: no cover - jitted
    """Distance from every node to the nearest source, and that source's position.

    ``source[i]`` starts at distance ``offset[i]``; nodes farther than ``limit`` stay at
    infinity with origin -1. ``width`` is the bucket width (metres, > 0) and ``ring`` the
    number of buckets kept (a power of two above ``max(data) / width + 1``, so an entry
    never laps the ring). Sources join the ring when it reaches their offset, so an offset
    may be any distance. Entries live in one pool, each bucket a list through it.
    """
    n = len(indptr) - 1
    dist = np.full(n, np.inf)
    origin = np.full(n, -1, dtype=np.int32)
    # each node's nearest source (stable: the first of equal offsets wins)
    order = np.argsort(offset, kind="mergesort")
    for i in order:
        s = source[i]
        if offset[i] < dist[s] and offset[i] <= limit:
            dist[s] = offset[i]
            origin[s] = i
    mask = ring - 1
    head = np.full(ring, -1, dtype=np.int32)
    cap = len(indices) + len(source) + 1
    pool = np.empty(2 * cap)  # (key, node) side by side: one cache line per entry
    nxt = np.empty(cap, dtype=np.int32)
    top = 0
    queued = 0
    inv = 1.0 / width
    k = 0
    ns = len(order)
    cur = 0
    while True:
        if queued == 0:
            # the ring is empty: on to the next source still the nearest at its node
            while k < ns and not (
                origin[source[order[k]]] == order[k] and dist[source[order[k]]] == offset[order[k]]
            ):
                k += 1
            if k >= ns or offset[order[k]] > limit:
                break
            cur = np.int64(offset[order[k]] * inv)
        while k < ns and np.int64(offset[order[k]] * inv) <= cur:
            i = order[k]
            s = source[i]
            if origin[s] == i and dist[s] == offset[i]:
                b = cur & mask
                pool[2 * top] = offset[i]
                pool[2 * top + 1] = s
                nxt[top] = head[b]
                head[b] = top
                top += 1
                queued += 1
            k += 1
        b = cur & mask
        while head[b] >= 0:
            p = head[b]
            head[b] = nxt[p]
            queued -= 1
            d = pool[2 * p]
            u = np.int64(pool[2 * p + 1])
            if d > dist[u]:
                continue  # a stale entry: u was reached shorter since
            ou = origin[u]
            for e in range(indptr[u], indptr[u + 1]):
                v = indices[e]
                nd = d + data[e]
                if nd < dist[v] and nd <= limit:
                    dist[v] = nd
                    origin[v] = ou
                    bv = np.int64(nd * inv) & mask
                    pool[2 * top] = nd
                    pool[2 * top + 1] = v
                    nxt[top] = head[bv]
                    head[bv] = top
                    top += 1
                    queued += 1
        cur += 1
    return dist, origin


@njit(cache=True, nogil=True)
def at_targets(
    dist, origin, node, snap, on, source_pos, limit, labels, has
):  # pragma: no cover - jitted
    """Each target's distance (its node's plus its snap) and nearest source's position in
    ``source_pos``, inf and -1 where unreached or beyond ``limit``; and the targets left for
    a straight line: off the network, or on a component (``labels``) that holds no source
    (``has``). One pass, without the GIL: a bounded search leaves most of a city's homes
    beyond reach, and those are sorted out here rather than by passes over arrays."""
    m = len(node)
    out = np.empty(m)
    which = np.empty(m, dtype=np.int64)
    straight = np.empty(m, dtype=np.int64)
    ns = 0
    for i in range(m):
        out[i] = np.inf
        which[i] = -1
        if not on[i]:
            straight[ns] = i
            ns += 1
            continue
        k = node[i]
        o = origin[k]
        if o >= 0:
            d = dist[k] + snap[i]
            if d <= limit:
                out[i] = d
                which[i] = source_pos[o]
        elif not has[labels[k]]:
            straight[ns] = i
            ns += 1
    return out, which, straight[:ns]
