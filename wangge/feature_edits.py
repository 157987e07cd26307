"""Grids and micro-grids written as features (OGC API – Features Part 4), done as edits of
the plan's units through the editor.

A plan is the assignment of its atomic units to micro-grids, and a grid's polygon is the
union of its units, so a feature written with a geometry says which units it holds: those
whose representative point (a point inside the unit, ``shapely.point_on_surface``) lies
in the geometry. A boundary drawn in QGIS along a road therefore takes each block on the
side its bulk is on, whichever side the drawn vertices fall. A feature takes units only
from its parent (a grid from its community, a micro-grid from its grid): the units of
other parents inside the geometry are left where they are and reported as ``ignored``.

Each write is the editor's own operation (:class:`wangge.editing.Editor`), so the rule
book, scopes, locks, audit and versioning are the editor's, and each saved write is one
new version:

- **create** (POST): the units inside become a new grid (of one community) or micro-grid
  (of one grid) under the lowest code its parent never gave out (``Store.codes_ever``; a
  code is never given out twice). A new grid's units keep their grouping: each micro-grid
  it takes units of becomes one micro-grid of the new grid. Saved by ``Editor.commit``.
- **replace / update** (PUT, or PATCH with a geometry): the parent's units inside join
  the feature, and its units outside leave for the neighbouring grid (micro-grid) of the
  same parent they share the longest boundary with (``Editor.edit``, the moves the
  editor's map makes). A geometry that would leave the feature no unit is refused.
- **delete** (DELETE): every unit leaves likewise; a feature with a unit that touches no
  other grid (micro-grid) of its parent is refused (409, :class:`NotDeletable`), and its
  code retires for good.
- a **name** in the properties is set by ``Editor.rename`` (a second version when the
  write also moves units). Every other property is derived (households, population,
  codes, flags) and what a client sends for it is ignored.

A write that breaks a rule of the book (a grid out of its household band, in pieces) is
saved flagged, as the editor saves it: its violations are saved with the version and
answered to the writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import shapely

from wangge.editing import Editor, EditResult
from wangge.errors import InputError, NotFound, WanggeError
from wangge.geo import assignment as ge
from wangge.geo.codes import LENGTHS, iter_free_codes
from wangge.plan_state import PlanState
from wangge.scopes import Who, check_scope

#: The layers a feature write changes: each one's level and its parent's level.
LEVELS = {"grids": ("grid", "community"), "microgrids": ("microgrid", "grid")}


class NotDeletable(WanggeError):
    """A grid or micro-grid whose units have nowhere to go in its parent (409)."""

    status_code = 409


@dataclass
class Written:
    """What a feature write did: the feature's code, the editor's results (none when the
    write changed nothing), and the units inside the geometry that belong to another
    parent and were left where they are."""

    code: str
    results: list[EditResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def units_inside(state: PlanState, geometry) -> np.ndarray:
    """Positions of the units whose representative point lies in ``geometry`` (WGS84)."""
    geoms = state.unit_frame.geometry.to_numpy()
    x0, y0, x1, y1 = geometry.bounds
    b = shapely.bounds(geoms)
    near = np.flatnonzero((b[:, 2] >= x0) & (b[:, 0] <= x1) & (b[:, 3] >= y0) & (b[:, 1] <= y1))
    if not len(near):
        return near
    shapely.prepare(geometry)
    return near[shapely.covers(geometry, shapely.point_on_surface(geoms[near]))]


def _spill(
    state: PlanState, labels: np.ndarray, leaving: np.ndarray, code: str, parent: str
) -> tuple[dict[int, str], list[int]]:
    """Where each unit of ``leaving`` goes when it leaves ``code``: the neighbouring
    feature (``labels``, each unit's code at the feature's level) of ``parent`` it shares
    the longest boundary with, counting units placed before it, so that a strip leaves
    piece by piece. Returns the targets and the units touching no such feature."""
    units = state.units
    target: dict[int, str] = {}
    pending = [int(i) for i in leaving]
    waiting = set(pending)
    while pending:
        rest = []
        for i in pending:
            shared: dict[str, float] = {}
            lo, hi = units.indptr[i], units.indptr[i + 1]
            for j, length in zip(units.nbrs[lo:hi], units.nbr_len[lo:hi], strict=True):
                j = int(j)
                if j in waiting:
                    continue
                other = target.get(j, labels[j])
                if other != code and other.startswith(parent):
                    shared[other] = shared.get(other, 0.0) + float(length)
            if shared:
                target[i] = max(sorted(shared), key=shared.__getitem__)
                waiting.discard(i)
            else:
                rest.append(i)
        if len(rest) == len(pending):
            break
        pending = rest
    return target, sorted(waiting)


def _stranded(state: PlanState, stranded: list[int], code: str, level: str, parent: str) -> str:
    shown = ", ".join(str(state.units.codes[i]) for i in stranded[:5])
    more = " …" if len(stranded) > 5 else ""
    return (
        f"units {shown}{more} of {level} {code} touch no other {level} of {parent}, "
        "so they have nowhere to go"
    )


def _levels(layer: str) -> tuple[str, str, int]:
    """A layer's level, its parent's level and the length of its parent's code."""
    level, parent_level = LEVELS[layer]
    return level, parent_level, LENGTHS[parent_level]


def _known(state: PlanState, layer: str, code: str) -> np.ndarray:
    """Whether each unit is in ``code``; NotFound unless the version has that feature."""
    level = LEVELS[layer][0]
    mine = ge.level_codes(state.micro, level) == code
    if len(code) != LENGTHS[level] or not mine.any():
        raise NotFound(f"no {level} {code} in version {state.version.version}", where="code")
    return mine


def _taken(state: PlanState, layer: str, geometry, parent: str | None) -> tuple[np.ndarray, list]:
    """The units inside ``geometry`` that a feature of ``parent`` may take, and the unit
    codes of the others inside (another parent's). Without ``parent``, the one parent of
    the units inside; InputError naming them when there are several."""
    _, parent_level, _ = _levels(layer)
    inside = units_inside(state, geometry)
    if not len(inside):
        raise InputError(
            "the geometry holds no unit's representative point; draw it round the blocks "
            "or buildings the feature is to hold",
            where="geometry",
        )
    parents = ge.level_codes(state.micro, parent_level)[inside]
    if parent is None:
        found = sorted(set(parents))
        if len(found) > 1:
            raise InputError(
                f"the geometry holds units of the {parent_level}s {', '.join(found[:6])}; a "
                f"{LEVELS[layer][0]} lies in one: name it in the property {parent_level!r}",
                where="geometry",
            )
        parent = found[0]
    mine = parents == parent
    if not mine.any():
        raise InputError(f"the geometry holds no unit of {parent_level} {parent}", where="geometry")
    return inside[mine], [str(state.units.codes[i]) for i in inside[~mine]]


def _name(
    editor: Editor, written: Written, plan_id: str, base_version: int, layer: str, name, who: Who
) -> None:
    """Set the feature's name when the write gives one that differs from its own, on the
    version the write's moves made (or ``base_version`` when it made none)."""
    if name is None or (isinstance(name, str) and not name.strip()):
        return
    if written.results:
        base_version = written.results[-1].version.version
    frame = editor.state(plan_id, base_version).layers[layer]
    now = frame.loc[frame["code"] == written.code, "name"]
    if len(now) and str(now.iloc[0]) == str(name).strip():
        return
    comment = f"OGC API: named {written.code}"
    written.results.append(
        editor.rename(plan_id, base_version, {written.code: str(name)}, who, comment)
    )


def create(
    editor: Editor,
    plan_id: str,
    base_version: int,
    layer: str,
    geometry,
    name=None,
    parent: str | None = None,
    who: Who = None,
) -> Written:
    """A new grid (``layer`` "grids") or micro-grid ("microgrids") of the units of
    ``parent`` (default: the one parent of the units) inside ``geometry``."""
    level, parent_level, _ = _levels(layer)
    base = editor.base(plan_id, base_version, False)
    t0 = time.perf_counter()
    taken, ignored = _taken(base, layer, geometry, parent)
    parent = str(ge.level_codes(base.micro[taken[:1]], parent_level)[0])
    check_scope(who, {parent}, f"a new {level} in")
    locked = sorted({c[:15] for c in base.micro[taken]} & base.locks)
    if locked:
        raise InputError(
            f"grid {locked[0]} is locked; unlock it to take its units", where="geometry"
        )
    ever = editor.store.codes_ever(plan_id) | set(base.micro)
    ever |= set(ge.level_codes(base.micro, "grid"))
    for rc in base.flags.record_codes.values():
        ever |= set(rc.split(","))
    code = next(iter_free_codes(parent, ever, level))
    micro = base.micro.copy()
    if level == "microgrid":
        micro[taken] = code
    else:  # each micro-grid taken from (whole or part) is one micro-grid of the new grid
        olds = sorted(set(base.micro[taken]))
        fresh = iter_free_codes(code, ever, "microgrid")
        renamed = {old: next(fresh) for old in olds}
        micro[taken] = [renamed[m] for m in base.micro[taken]]
    changed = np.flatnonzero(micro != base.micro)
    moved = [ge.Move(str(base.units.codes[i]), base.micro[i], micro[i]) for i in changed]
    check_scope(who, {m.before for m in moved}, "a move out of")
    meta = {
        "kind": "create",
        "name": "",
        "moves": len(moved),
        "edited": sorted(set(base.version.meta.get("edited") or []) | {code[:15]}),
    }
    result = editor.commit(
        base,
        ge.frozen(micro),
        moved,
        set(base.locks),
        meta,
        who,
        f"OGC API: created {level} {code}",
        False,
        {"apply": time.perf_counter() - t0},
    )
    written = Written(code, [result], ignored)
    _name(editor, written, plan_id, base_version, layer, name, who)
    return written


def redraw(
    editor: Editor,
    plan_id: str,
    base_version: int,
    layer: str,
    code: str,
    geometry=None,
    name=None,
    who: Who = None,
) -> Written:
    """Give grid (micro-grid) ``code`` the units of its parent inside ``geometry`` (None:
    keep its units), and ``name`` if one is given."""
    level, _, p = _levels(layer)
    base = editor.state(plan_id, base_version)
    mine = _known(base, layer, code)
    written = Written(code)
    if geometry is not None:
        inside = np.zeros(len(mine), dtype=bool)
        taken, written.ignored = _taken(base, layer, geometry, code[:p])
        inside[taken] = True
        joining = np.flatnonzero(inside & ~mine)
        leaving = np.flatnonzero(mine & ~inside)
        if not (inside & mine).any() and not len(joining):
            raise InputError(f"the geometry would leave {level} {code} no unit", where="geometry")
        labels = np.array(ge.level_codes(base.micro, level), dtype=object)
        labels[joining] = code
        target, stranded = _spill(base, labels, leaving, code, code[:p])
        if stranded:
            raise InputError(
                _stranded(base, stranded, code, level, code[:p]) + "; draw the geometry round them",
                where="geometry",
            )
        codes = base.units.codes
        moves = [(str(codes[i]), code) for i in joining]
        moves += [(str(codes[i]), target[i]) for i in leaving]
        if moves:
            written.results.append(
                editor.edit(
                    plan_id, base_version, moves, None, who, f"OGC API: redrew {level} {code}"
                )
            )
    _name(editor, written, plan_id, base_version, layer, name, who)
    return written


def delete(
    editor: Editor, plan_id: str, base_version: int, layer: str, code: str, who: Who = None
) -> Written:
    """Hand every unit of grid (micro-grid) ``code`` to its neighbours in the parent, so
    that the feature is no more and its code retires."""
    level, _, p = _levels(layer)
    base = editor.state(plan_id, base_version)
    mine = _known(base, layer, code)
    labels = ge.level_codes(base.micro, level)
    target, stranded = _spill(base, labels, np.flatnonzero(mine), code, code[:p])
    if stranded:
        raise NotDeletable(
            _stranded(base, stranded, code, level, code[:p])
            + f"; {level} {code} cannot be deleted (redraw its neighbours first)",
            where="code",
        )
    moves = [(str(base.units.codes[i]), to) for i, to in sorted(target.items())]
    result = editor.edit(
        plan_id, base_version, moves, None, who, f"OGC API: deleted {level} {code}"
    )
    return Written(code, [result])
