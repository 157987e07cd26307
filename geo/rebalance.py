"""Yearly rebalancing: bring the grids that drifted out of their band back into it with the
fewest changes, and keep every other grid's units and code.

A plan is the assignment of atomic units to micro-grids (:mod:`wangge.geo.assignment`).
When households change, some grids leave their band. The repairs here, in this order and
never across a community (so never across a given street or community boundary) nor
into or out of a locked or dedicated grid, are:

1. **Move.** A grid over its ceiling gives a whole micro-grid on its edge to a neighbouring
   grid of its community that has room; a grid under its floor takes one from a neighbour
   with households to spare. A move keeps both grids connected. The micro-grid takes the
   next free number of the grid it joins.
2. **Merge.** A grid still under its floor joins the neighbour with the fewest households
   whose sum stays under the ceiling; the larger keeps its code, the smaller's retires.
3. **Split.** A grid still over its ceiling is divided again into grids
   (:func:`~wangge.geo.partition.partition`); the part that holds most of it keeps its
   code, and the others take the next free numbers of the community.
4. **Share out.** A grid still under its floor whose neighbours have room but none to
   spare is shared out among them, a whole micro-grid at a time, and its code retires.

Then every micro-grid out of its band in a grid that changed or whose households changed
is divided again inside its grid, codes kept where a new part overlaps an old one most.
Retired codes (``retired``, and the codes a merge or split gives up) are never given out
again. What no repair mends is reported with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from wangge.geo.assignment import (
    Flags,
    Move,
    Units,
    diff,
    keep_codes,
    level_codes,
    mark,
    pieces,
    sub_units,
    summary,
)
from wangge.geo.codes import iter_free_codes
from wangge.geo.limits import Limits
from wangge.geo.partition import choose_k, partition

#: Why a grid was left out of its band.
LOCKED = "locked or dedicated: held as it is"
NO_ROOM = "no neighbour in its community can give or take a whole micro-grid, and no merge fits"
COMMUNITY = (
    "the community holds {hh:g} households, outside {lo:g}–{hi:g}: grids are rebalanced "
    "inside their community, so its boundary is for the street office to redraw"
)
INDIVISIBLE = "one unit holds more households than the ceiling (flagged oversize)"
LEFT_OUT = (
    "{hh:g} households after the repairs, outside {lo:g}–{hi:g}: no move, merge or division "
    "inside its community brings it into the band"
)


@dataclass
class Rebalanced:
    """What :func:`rebalance` did."""

    micro: np.ndarray
    moves: list[Move]
    flags: Flags
    out_before: list[str]  # grids out of their band before
    changed: list[str]  # grids (old or new codes) whose units changed
    micro_changed: list[str]  # grids whose micro-grids alone were divided again
    created: list[str]  # grid codes new in this version
    retired: list[str]  # grid codes gone from this version
    steps: list[str] = field(default_factory=list)  # what was done, in order
    unrepaired: dict[str, str] = field(default_factory=dict)  # grid → why


def _grid_households(units: Units, micro: np.ndarray) -> pd.Series:
    grid = level_codes(micro, "grid")
    return pd.Series(units.households).groupby(grid).sum()


def _connected(units: Units, idx: np.ndarray) -> bool:
    """Whether the units at ``idx`` form one piece on the unit graph (none counts)."""
    if len(idx) <= 1:
        return True
    g = units.graph
    pos = np.full(units.n, -1, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    keep = (pos[g.eu] >= 0) & (pos[g.ev] >= 0)
    m = sparse.coo_matrix(
        (np.ones(int(keep.sum())), (pos[g.eu[keep]], pos[g.ev[keep]])), shape=(len(idx),) * 2
    )
    return connected_components(m, directed=False)[0] == 1


class _Plan:
    """The assignment being repaired, with the lookups a repair needs."""

    def __init__(self, units: Units, micro: np.ndarray, limits: Limits, held: set[str]):
        self.units, self.micro, self.limits, self.held = units, micro.copy(), limits, held
        self.taken: set[str] = set(micro)  # every micro-grid code given out, kept or not
        self.grids_taken: set[str] = set(level_codes(micro, "grid"))
        self.start = micro.copy()  # the assignment the repairs began from
        self.start_grid = level_codes(self.start, "grid")
        # each unit's grid under ``_seen``, brought up to date where micro changed since
        self._seen, self._grid = self.micro.copy(), level_codes(self.micro, "grid")
        self.at: np.ndarray | None = None  # a community's plan: its units' positions

    def changed(self, grid: str) -> bool:
        """Whether the repairs have already changed ``grid``'s units (a repair that can
        take from or give to a grid already changed changes no more grids)."""
        now, was = self.grid_of() == grid, self.start_grid == grid
        return bool((now != was).any())

    def community(self, code: str) -> _Plan:
        """The plan of community ``code``'s units alone, holding the codes taken and the
        grids held of this one: every repair stays inside its community, so its lookups
        cost the community's units, not a city's. :meth:`put` takes the repairs back."""
        idx = np.flatnonzero(level_codes(self.micro, "community") == code)
        sub = _Plan(sub_units(self.units, idx), self.micro[idx], self.limits, self.held)
        sub.taken, sub.grids_taken = self.taken, self.grids_taken
        sub.start, sub.start_grid = self.start[idx], self.start_grid[idx]
        sub.at = idx
        return sub

    def put(self, sub: _Plan) -> None:
        """The repairs of a community's plan (:meth:`community`), taken back."""
        self.micro[sub.at] = sub.micro
        self.taken, self.grids_taken, self.held = sub.taken, sub.grids_taken, sub.held

    def snapshot(self) -> tuple:
        return self.micro.copy(), set(self.taken), set(self.grids_taken), set(self.held)

    def restore(self, saved: tuple, steps: list[str], mark_at: int) -> None:
        """Undo the repairs since ``saved`` (and their steps from ``mark_at``)."""
        micro, taken, grids_taken, held = saved  # copied: a snapshot may be restored twice
        self.micro, self.taken = micro.copy(), set(taken)
        self.grids_taken, self.held = set(grids_taken), set(held)
        del steps[mark_at:]

    def grid_of(self) -> np.ndarray:
        """Each unit's grid now. Worked out again only where the assignment changed since
        the last asking (a city's 46,000 units were sliced at every lookup); a new array
        then, so that one a caller kept still tells the grids as they were."""
        moved = np.flatnonzero(self.micro != self._seen)
        if len(moved):
            grid = self._grid.copy()
            grid[moved] = level_codes(self.micro[moved], "grid")
            self._seen, self._grid = self.micro.copy(), grid
        return self._grid

    def households(self, grid: str) -> float:
        return float(self.units.households[self.grid_of() == grid].sum())

    def members(self, grid: str) -> np.ndarray:
        return np.flatnonzero(self.grid_of() == grid)

    def edge_micro(self, grid: str, theirs: bool = False) -> list[tuple[str, str]]:
        """(micro-grid, neighbouring grid of the same community) pairs along ``grid``'s
        edge: its own micro-grids that touch the neighbour, or with ``theirs`` the
        neighbour's that touch it; neighbours that are held left out."""
        g = self.units.graph
        grid_of = self.grid_of()
        out = set()
        for a, b in ((g.eu, g.ev), (g.ev, g.eu)):
            hit = (grid_of[a] == grid) & (grid_of[b] != grid)
            for i, j in zip(a[hit], b[hit], strict=True):
                other = grid_of[j]
                if other[:12] == grid[:12] and other not in self.held:
                    out.add((self.micro[j if theirs else i], other))
        return sorted(out)

    def move(self, code: str, source: str, to: str, steps: list[str]) -> None:
        """Move micro-grid ``code`` from grid ``source`` into ``to`` and say so."""
        new = self.move_micro(code, to)
        m = self.micro_households(new)
        steps.append(f"moved micro-grid {code} ({m:g} households) from {source} to {to} as {new}")

    def micro_households(self, code: str) -> float:
        return float(self.units.households[self.micro == code].sum())

    def move_micro(self, code: str, to: str) -> str:
        """Move micro-grid ``code`` whole into grid ``to``, under its next free number."""
        new = next(iter_free_codes(to, self.taken, "microgrid"))
        self.micro[self.micro == code] = new
        self.taken.add(new)
        return new

    def can_leave(self, grid: str, code: str) -> bool:
        """Whether ``grid`` stays one piece (and not empty) without micro-grid ``code``."""
        rest = np.flatnonzero((self.grid_of() == grid) & (self.micro != code))
        return len(rest) > 0 and _connected(self.units, rest)


def rebalance(
    units: Units,
    micro: np.ndarray,
    limits: Limits,
    locks: set[str] | None = None,
    flags: Flags | None = None,
    retired: set[str] | None = None,
) -> Rebalanced:
    """Bring every grid and micro-grid back into its band with the fewest changes.

    Parameters
    ----------
    units
        The plan's units, carrying the **new** households.
    micro
        The micro-grid code of each unit, as the plan to rebalance has it.
    limits
        The bands.
    locks
        Grids held as they are.
    flags
        The plan's flags (vertical micro-grids, oversize and dedicated grids); a copy is
        returned with what the repairs changed.
    retired
        Codes (grids and micro-grids) given out by earlier versions and gone since: never
        given out again.

    Returns
    -------
    Rebalanced
    """
    flags = flags or Flags()
    flags = Flags(dict(flags.records), dict(flags.flag), dict(flags.note), dict(flags.record_codes))
    band, mband = limits.grid, limits.microgrid
    dedicated = {c for c, f in flags.flag.items() if f == "dedicated" and len(c) == 15}
    held = set(locks or ()) | dedicated
    p = _Plan(units, micro, limits, held)
    p.taken |= set(retired or ())
    p.grids_taken |= {c for c in retired or () if len(c) == 15}
    before = _grid_households(units, micro)
    out_before = sorted(
        c for c, hh in before.items() if (hh > band.hi or hh < band.lo) and c not in dedicated
    )
    steps: list[str] = []
    unrepaired: dict[str, str] = {}
    rng = np.random.default_rng(limits.solver.seed)
    here, community = None, ""  # the plan of the community being repaired (codes sort by it)
    for grid in out_before:
        if grid in held:
            unrepaired[grid] = LOCKED
            continue
        if here is None or community != grid[:12]:
            if here is not None:
                p.put(here)
            here, community = p.community(grid[:12]), grid[:12]
        if not (here.grid_of() == grid).any():
            continue  # merged away already
        hh = here.households(grid)
        lived = here.units.households[here.members(grid)]
        if hh > band.hi and (lived > 0).sum() == 1:  # one tower, alone over the ceiling
            unrepaired[grid] = INDIVISIBLE
            mark(flags, grid, "oversize", INDIVISIBLE)
            continue
        if not _repair(here, grid, flags, rng, steps):
            unrepaired[grid] = NO_ROOM
    if here is not None:
        p.put(here)
    # micro-grids: divided again inside each grid whose units or households changed
    grid_after = p.grid_of()
    moved = micro != p.micro
    touched = set(grid_after[moved]) | set(level_codes(micro[moved], "grid"))
    alive = set(grid_after)
    # a grid the repairs did not touch is divided again only if one of its micro-grids
    # left its band or its one piece (found for the whole plan at once: a city's 2,500
    # grids, each checked micro-grid by micro-grid, took minutes)
    drift = {c for c in before.index if c in alive} & _micro_trouble(p, mband, flags)
    for grid in sorted((touched | drift) - held):
        if grid not in alive:
            continue
        _mend_micro(p, grid, mband, flags, rng, steps)
    grids_before, grids_after = set(level_codes(micro, "grid")), set(p.grid_of())
    # a grid changed when its units did (its code stayed or went); micro-grids divided
    # again inside a grid leave the grid as it was
    old_grid, new_grid = level_codes(micro, "grid"), p.grid_of()
    crossed = old_grid != new_grid
    changed = sorted(set(old_grid[crossed]) | set(new_grid[crossed]))
    micro_changed = sorted(set(old_grid[(micro != p.micro) & ~crossed]) - set(changed))
    for code in grids_before - grids_after:
        mark(flags, code, "", None)
    # a grid the repairs left in its band is no longer oversize
    after = _grid_households(units, p.micro)
    for code, hh in after.items():
        if flags.flag.get(code) == "oversize" and hh <= band.hi:
            mark(flags, code, "", None)
    # what the repairs left out of band is reported, whatever left it there (a merge of
    # two light grids can still be under the floor): the report is read from the result
    for code, hh in after.items():
        if code in unrepaired or code in dedicated or flags.flag.get(code) == "oversize":
            continue
        if not band.lo <= hh <= band.hi and (code in changed or code in out_before):
            unrepaired[code] = LEFT_OUT.format(hh=hh, lo=band.lo, hi=band.hi)
    # a community out of its band is the street office's to redraw: reported, not moved
    cband = limits.community
    for code, hh in (
        pd.Series(units.households).groupby(level_codes(p.micro, "community")).sum().items()
    ):
        if hh > cband.hi or hh < cband.lo:
            unrepaired[code] = COMMUNITY.format(hh=hh, lo=cband.lo, hi=cband.hi)
    return Rebalanced(
        micro=p.micro,
        moves=diff(units, micro, p.micro),
        flags=flags,
        out_before=out_before,
        changed=changed,
        micro_changed=micro_changed,
        created=sorted(grids_after - grids_before),
        retired=sorted(grids_before - grids_after),
        steps=steps,
        unrepaired=unrepaired,
    )


def _repair(p: _Plan, grid: str, flags: Flags, rng, steps: list[str]) -> bool:
    """Bring ``grid`` into its band with the fewest grids changed; False if nothing does.

    Over the ceiling: a grid with households for two grids is divided; else its edge
    micro-grids go to neighbours, and if that leaves it still over, what is left of it is
    divided. Under the floor: it takes edge micro-grids from neighbours. Moves that do not
    bring it into the band are undone (they would change grids for nothing) before it is
    merged with a neighbour (under) or divided again with one (either); only when neither
    fits from where it started are they tried from where the moves got it."""
    band = p.limits.grid
    hh = p.households(grid)
    if hh > band.hi and hh >= 2 * band.lo and _split(p, grid, flags, rng, steps):
        return True
    if hh < band.lo and _merge(p, grid, steps, light=True):
        return True  # two light neighbours as one grid in the band: two changes mend two
    saved, mark_at = p.snapshot(), len(steps)
    (_shed if hh > band.hi else _gather)(p, grid, steps)
    now = p.households(grid)
    if band.lo <= now <= band.hi:
        return True
    if now > band.hi and now < hh and _split(p, grid, flags, rng, steps):
        return True  # what the neighbours could not take divides
    moved, moved_steps = p.snapshot(), list(steps[mark_at:])
    p.restore(saved, steps, mark_at)
    if hh < band.lo and _merge(p, grid, steps):
        return True
    if _redraw_pair(p, grid, flags, rng, steps):
        return True
    if moved_steps:  # from where the moves got it, a merge or a redraw may still fit
        p.restore(moved, steps, len(steps))
        steps.extend(moved_steps)
        if (now < band.lo and _merge(p, grid, steps)) or _redraw_pair(p, grid, flags, rng, steps):
            return True
        p.restore(saved, steps, mark_at)
    # a light grid among neighbours with room but none to spare: shared out among them
    return hh < band.lo and _dissolve(p, grid, steps)


def _shed(p: _Plan, grid: str, steps: list[str]) -> None:
    """Give edge micro-grids of an over-full ``grid`` to neighbours with room."""
    band = p.limits.grid
    while (hh := p.households(grid)) > band.hi:
        best = None
        for code, other in p.edge_micro(grid):
            m = p.micro_households(code)
            if m <= 0 or p.households(other) + m > band.hi or not p.can_leave(grid, code):
                continue
            left = hh - m
            # in band after the move first, then to a grid already changed (no more grids
            # change), then as near the target as can be
            score = (
                0 if left >= band.lo else 1,
                0 if p.changed(other) else 1,
                abs(left - band.target),
                code,
                other,
            )
            if best is None or score < best[0]:
                best = (score, code, other)
        if best is None:
            return
        _, code, other = best
        p.move(code, grid, other, steps)
        if best[0][0] == 1 and p.households(grid) < band.lo:
            return


def _gather(p: _Plan, grid: str, steps: list[str]) -> None:
    """Take edge micro-grids of neighbours with households to spare into ``grid``."""
    band = p.limits.grid
    while (hh := p.households(grid)) < band.lo:
        best = None
        for code, other in p.edge_micro(grid, theirs=True):
            m = p.micro_households(code)
            if m <= 0 or hh + m > band.hi or p.households(other) - m < band.lo:
                continue
            if not p.can_leave(other, code):
                continue
            score = (
                0 if hh + m >= band.lo else 1,
                0 if p.changed(other) else 1,
                abs(hh + m - band.target),
                code,
                other,
            )
            if best is None or score < best[0]:
                best = (score, code, other)
        if best is None:
            return
        _, code, other = best
        p.move(code, other, grid, steps)


def _merge(p: _Plan, grid: str, steps: list[str], light: bool = False) -> bool:
    """Join an under-full ``grid`` with the lightest neighbour it fits with; with
    ``light``, only with a neighbour under its floor too, and only into the band."""
    band = p.limits.grid
    hh = p.households(grid)
    nbrs = {other for _, other in p.edge_micro(grid)}
    if light:
        nbrs = {o for o in nbrs if p.households(o) < band.lo <= hh + p.households(o)}
    # in the band after the merge first, then the lightest neighbour
    fits = sorted(
        (0 if hh + p.households(o) >= band.lo else 1, p.households(o), o)
        for o in nbrs
        if hh + p.households(o) <= band.hi
    )
    if not fits:
        return False
    _, other_hh, other = fits[0]
    keep, gone = (other, grid) if other_hh >= hh else (grid, other)
    for code in sorted(set(p.micro[p.grid_of() == gone])):
        p.move_micro(code, keep)
    steps.append(
        f"merged grid {gone} ({min(hh, other_hh):g} households) into {keep}; {gone} retired"
    )
    return True


def _dissolve(p: _Plan, grid: str, steps: list[str]) -> bool:
    """Share an under-full ``grid`` out among its neighbours of the same community, a
    whole micro-grid at a time, each to a neighbour it touches that stays within the
    ceiling, until none is left and its code retires; nothing changes unless all of it
    finds a place. The last repair of a light grid: it changes the grid and every
    neighbour that takes a part, where a merge changes two."""
    band = p.limits.grid
    saved, mark_at = p.snapshot(), len(steps)
    takers: set[str] = set()
    while (p.grid_of() == grid).any():
        best = None
        for code, other in p.edge_micro(grid):
            m = p.micro_households(code)
            room = band.hi - p.households(other) - m
            last = len(set(p.micro[p.members(grid)])) == 1
            if room < 0 or not (last or p.can_leave(grid, code)):
                continue
            # a neighbour already changed first (no more grids change), then the most room
            score = (0 if p.changed(other) else 1, -room, code, other)
            if best is None or score < best[0]:
                best = (score, code, other)
        if best is None:
            p.restore(saved, steps, mark_at)
            return False
        _, code, other = best
        p.move(code, grid, other, steps)
        takers.add(other)
    if any(p.households(o) < band.lo for o in takers):  # a taker still under: no better
        p.restore(saved, steps, mark_at)
        return False
    steps.append(f"shared grid {grid} out among its neighbours; {grid} retired")
    return True


def _redraw_pair(p: _Plan, grid: str, flags: Flags, rng, steps: list[str]) -> bool:
    """Divide ``grid`` (out of its band) and one neighbour again as grids that are all in
    the band (the lightest neighbour that allows it); both keep their codes where the new
    parts overlap them most."""
    band = p.limits.grid
    labels = p.grid_of()
    nbrs = sorted({o for _, o in p.edge_micro(grid)}, key=lambda o: (p.households(o), o))
    for other in nbrs:
        members = np.flatnonzero((labels == grid) | (labels == other))
        parts, _ = partition(p.units.graph, members, p.units.households, band, p.limits.solver, rng)
        sums = [float(p.units.households[q.units].sum()) for q in parts]
        if not parts or not all(band.lo <= h <= band.hi for h in sums):
            continue
        old = sorted({grid, other})
        codes = keep_codes([q.units for q in parts], labels, old, grid[:12], set(p.grids_taken))
        for part, code in zip(parts, codes, strict=True):
            p.grids_taken.add(code)
            new = next(iter_free_codes(code, p.taken, "microgrid"))
            p.taken.add(new)
            p.micro[part.units] = new  # its micro-grids are divided in _mend_micro
        steps.append(
            f"divided grids {grid} and {other} again as {', '.join(codes)} "
            f"({', '.join(f'{h:g}' for h in sums)} households)"
        )
        return True
    return False


def _split(p: _Plan, grid: str, flags: Flags, rng, steps: list[str]) -> bool:
    """Divide an over-full ``grid`` again into grids all in the band (a part that is one
    unit over the ceiling is flagged oversize); its largest part keeps the code."""
    band = p.limits.grid
    members = p.members(grid)
    parts, _ = partition(p.units.graph, members, p.units.households, band, p.limits.solver, rng)
    sums = [float(p.units.households[q.units].sum()) for q in parts]
    fits = all(q.heavy or band.lo <= h <= band.hi for q, h in zip(parts, sums, strict=True))
    if len(parts) < 2 or not fits:
        return False
    labels = p.grid_of()
    community = grid[:12]
    codes = keep_codes([q.units for q in parts], labels, [grid], community, set(p.grids_taken))
    for part, code in zip(parts, codes, strict=True):
        p.grids_taken.add(code)
        if code == grid:
            continue
        # the units of a new grid get new micro-grids (divided in _mend_micro)
        new = next(iter_free_codes(code, p.taken, "microgrid"))
        p.taken.add(new)
        p.micro[part.units] = new
        mark(flags, code, "oversize" if part.heavy else "", part.note)
    made = [c for c in codes if c != grid]
    steps.append(f"split grid {grid} into {grid} and {', '.join(made)}")
    return True


def _micro_trouble(p: _Plan, mband, flags: Flags) -> set[str]:
    """The grids with a micro-grid out of its band or in pieces (vertical ones aside):
    those :func:`_mend_micro` would divide again."""
    table = summary(p.units, p.micro, "microgrid")
    hh = table["households"]
    vertical = table.index.map(lambda c: flags.flag.get(c) == "vertical").to_numpy(dtype=bool)
    out = ((hh > mband.hi) | (hh < mband.lo)).to_numpy() & ~vertical
    split = pieces(p.units, p.micro, "microgrid").reindex(table.index).to_numpy() > 1
    return {str(c)[:15] for c in table.index[out | split]}


def _mend_micro(p: _Plan, grid: str, mband, flags: Flags, rng, steps: list[str]) -> None:
    """Divide the micro-grids of ``grid`` again when any is out of its band (or in
    pieces), keeping codes where the new parts overlap the old most."""
    members = p.members(grid)
    micro = p.micro[members]
    table = pd.Series(p.units.households[members]).groupby(micro).sum()
    special = {c for c in table.index if flags.flag.get(c) == "vertical"}
    bad = [c for c, hh in table.items() if c not in special and (hh > mband.hi or hh < mband.lo)]
    pieces = [c for c in table.index if not _connected(p.units, members[micro == c])]
    if not bad and not pieces:
        return
    parts, _ = partition(p.units.graph, members, p.units.households, mband, p.limits.solver, rng)
    old = sorted(set(micro))
    codes = keep_codes([q.units for q in parts], p.micro, old, grid, p.taken - set(old))
    spare = iter_free_codes(grid, p.taken | set(codes), "microgrid")
    for part, code in zip(parts, codes, strict=True):
        p.micro[part.units] = code
        p.taken.add(code)
        mark(flags, code, "vertical" if part.heavy else "", part.note)
        if part.heavy:  # one footprint, several micro-grid records (floor ranges)
            k = choose_k(float(p.units.households[part.units].sum()), mband)[0]
            records = [code, *(next(spare) for _ in range(k - 1))]
            p.taken.update(records)
            flags.records[code] = k
            flags.record_codes[code] = ",".join(records)
    steps.append(f"divided the micro-grids of grid {grid} again ({len(old)} → {len(parts)})")
