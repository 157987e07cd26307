"""Edits on a stored plan: moves, completion and restores become new versions.

A version of a plan is the assignment of its atomic units (the ``units`` layer) to
micro-grids. An edit checks the new assignment on the unit graph (geo/assignment.py),
dissolves only the polygons it changed, and saves a version that writes the changed
layers and keeps the rest from its base (``Store.save(keep=…)``). It reports the
features it changed, so the tile cache can drop exactly the tiles they touch.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.accounts import Account, audit_entry
from wangge.data.store import Store, Version
from wangge.errors import InputError, NotFound, VersionConflict
from wangge.geo import assignment as ge
from wangge.geo.validate import Violation
from wangge.plan_state import (
    POLYGONS,
    PlanState,
    assignment_of,
    box_of,
    check_state,
    derive,
    flags_of,
    grid_rows,
    next_state,
    with_boxes,
    written_layers,
)
from wangge.scopes import Who, actor, check_scope, covers
from wangge.street_state import NoSuchStreet, load_street, street_of_moves

#: Layers holding per-grid results of the overlay and coverage jobs: kept, marked stale.
GRID_RESULTS = ("grid_risk", "grid_coverage", "access", "gaps", "facilities", "risk_points")


@dataclass
class EditResult:
    """What an edit did, as the API reports it."""

    version: Version
    moves: list[ge.Move]
    violations: list[dict[str, Any]]
    grids: list[dict[str, Any]]
    locks: list[str]
    #: Layer → WGS84 boxes of every feature the edit changed, before and after.
    touched: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    saved: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class Editor:
    """Edits plans in a store, keeping the last few versions' states in memory."""

    def __init__(self, store: Store, keep: int = 8):
        self.store = store
        #: States by plan, version and street (None: the whole version).
        self._states: OrderedDict[tuple[str, int, str | None], PlanState] = OrderedDict()
        #: Streets of versions that cannot be held alone (:func:`load_street` said so).
        self._none: set[tuple[str, int, str | None]] = set()
        self._keep = keep
        self._lock = threading.RLock()
        self._loading: dict[tuple[str, int, str | None], threading.Lock] = {}
        self._writers: dict[str, threading.RLock] = {}

    # loading ----------------------------------------------------------------------------

    def state(
        self,
        plan_id: str,
        version: int | None = None,
        street: str | None = None,
        strict: bool = False,
    ) -> PlanState:
        """The state of a version (the latest by default), loaded once and cached. With
        ``street``, the state of that street alone where one can be held
        (:func:`load_street`), else, or when the whole version is held already, the
        whole version's; a street the version does not have is NotFound if ``strict``
        (else the whole version's state, whose own checks say what is wrong)."""
        v = self.store.resolve(plan_id, version)
        whole = (v.plan_id, v.version, None)
        if street is not None:
            with self._lock:
                if whole in self._states:
                    self._states.move_to_end(whole)
                    return self._states[whole]
            try:
                state = self._cached(v, street)
            except NoSuchStreet:
                if strict:
                    raise
                state = None
            if state is not None:
                return state
        state = self._cached(v, None)
        assert state is not None
        return state

    def _cached(self, v: Version, street: str | None) -> PlanState | None:
        key = (v.plan_id, v.version, street)
        with self._lock:
            if key in self._states:
                self._states.move_to_end(key)
                return self._states[key]
            if key in self._none:
                return None
            loading = self._loading.setdefault(key, threading.Lock())
        # one request loads a version; the others asking for it meanwhile wait for it
        try:
            with loading:
                with self._lock:
                    if key in self._states:
                        return self._states[key]
                state = self._load(v) if street is None else load_street(self.store, v, street)
                if state is None:
                    with self._lock:
                        if len(self._none) >= 1024:  # a long-lived server's: kept bounded
                            self._none.clear()
                        self._none.add(key)
                else:
                    self._remember(state)
                    _settle()
        finally:
            with self._lock:
                self._loading.pop(key, None)
        return state

    def _remember(self, state: PlanState) -> None:
        with self._lock:
            self._states[(state.plan_id, state.version.version, state.scope)] = state
            while len(self._states) > self._keep:
                self._states.popitem(last=False)

    def _load(self, v: Version) -> PlanState:
        from wangge.data.plan import read_stored

        plan = read_stored(self.store, resolved=v)
        missing = [n for n in ("units", "unit_edges", *POLYGONS) if n not in plan]
        if missing:
            raise InputError(
                "this plan cannot be edited: it has no "
                + ", ".join(missing)
                + " (plans made by `wangge delineate` have them; re-import one)",
                v.plan_id,
                where="units",
            )
        frames = plan.frames((*POLYGONS, "buildings"))
        unit_frame, metric, units, micro = assignment_of(plan)
        limits, crs = plan.limits, plan.crs
        layers = {n: frames[n] for n in (*POLYGONS, "buildings") if n in frames}
        state = PlanState(
            version=v,
            units=units,
            unit_frame=unit_frame,
            metric=metric,
            crs=crs,
            limits=limits,
            micro=micro,
            flags=flags_of(layers),
            locks=set(v.meta.get("locks") or []),
            layers=layers,
        )
        state.stored = {"units": unit_frame, **layers}
        if state.city:  # checked once here, so that every edit re-checks only its street
            state.violations()
        return state

    # reading ----------------------------------------------------------------------------

    def overview(
        self, plan_id: str, version: int | None = None, street: str | None = None
    ) -> dict[str, Any]:
        """What the editor shows: limits, per-grid counts, neighbours, locks, violations
        (the grids' rows are the caller's to annotate); with ``street``, the grids and
        communities of that street only (the violations stay the version's)."""
        s = self.state(plan_id, version, street, strict=True)
        if s.shown is None:
            s.shown = self._overview(s)
        shown = s.shown
        if street is not None and s.scope is None:  # the whole version was held already
            shown = {
                **shown,
                "street": street,
                "grids": [g for g in shown["grids"] if g["code"].startswith(street)],
                "communities": [c for c in shown["communities"] if c["code"].startswith(street)],
            }
            shown["bbox"] = _union_box([c["bbox"] for c in shown["communities"]], s)
        if street is not None and not shown["communities"]:
            raise NotFound(f"no street {street} in version {s.version.version}", plan_id)
        return {**shown, "grids": [dict(g) for g in shown["grids"]]}

    def _overview(self, s: PlanState) -> dict[str, Any]:
        found = s.violations()
        nbrs = s.neighbours(s.micro)
        grids = grid_rows(s, s.micro, s.layers["grids"], nbrs, s.locks)
        com = s.layers["communities"]
        bounds = shapely.bounds(com.geometry.to_numpy())
        return {
            "plan": s.plan_id,
            "version": s.version.version,
            "name": s.version.meta.get("name", ""),
            "editable": True,
            "limits": {
                level: {"lo": band.lo, "hi": band.hi, "target": band.target}
                for level, band in (
                    ("community", s.limits.community),
                    ("grid", s.limits.grid),
                    ("microgrid", s.limits.microgrid),
                )
            },
            "locks": sorted(s.locks),
            "bbox": box_of(shapely.total_bounds(com.geometry.to_numpy())),
            "grids": grids,
            "communities": [
                {
                    "code": r.code,
                    "name": r.name,
                    "households": float(r.households),
                    "population": float(r.population),
                    "bbox": box_of(b),
                }
                for r, b in zip(com.itertuples(), bounds, strict=True)
            ],
            "violations": with_boxes(s, found, s.layers),
            "stale": list(s.version.meta.get("stale_layers") or []),
            "street": s.scope,
        }

    def diff(self, plan_id: str, a: int, b: int) -> list[dict[str, Any]]:
        """The units whose micro-grid differs between versions ``a`` and ``b``: a query
        on the unit rows the versions between them wrote (:meth:`unit_rows`), or, where
        the units were written whole in between, a comparison of the two."""
        rows = self.unit_rows(plan_id, a, b)
        if rows is not None:
            rows = rows[rows["from"] != rows["to"]]
            return [
                {
                    "unit": r["unit"],
                    "building_id": _none(r["building_id"]),
                    "households": float(r["households_a"]),
                    "from": r["from"],
                    "to": r["to"],
                }
                for r in rows.drop(columns="geometry").to_dict("records")
            ]
        sa_, sb = self.state(plan_id, a), self.state(plan_id, b)
        if not np.array_equal(sa_.unit_frame["code"].to_numpy(), sb.unit_frame["code"].to_numpy()):
            raise InputError(f"versions {a} and {b} have different units", plan_id)
        out = []
        for m in ge.diff(sa_.units, sa_.micro, sb.micro):
            i = sa_.units.index[m.unit]
            out.append(
                {
                    "unit": m.unit,
                    "building_id": _none(sa_.unit_frame["building_id"].iat[i]),
                    "households": float(sa_.units.households[i]),
                    "from": m.before,
                    "to": m.after,
                }
            )
        return out

    def unit_rows(self, plan_id: str, a: int, b: int) -> gpd.GeoDataFrame | None:
        """Every unit whose row differs between versions ``a`` and ``b`` (a move, new
        households), in unit order: ``unit``, ``building_id``, ``from`` and ``to`` (its
        micro-grid in each), ``households_a`` and ``households_b``, and its geometry. A
        query on the rows the versions between them wrote (``Store.touched_ids``), not a
        comparison of two copies; None when the units were written whole in between (the
        caller compares the two states).

        Raises
        ------
        InputError
            When the two versions do not hold the same units.
        """
        va, vb = self.store.resolve(plan_id, a), self.store.resolve(plan_id, b)
        touched = self.store.touched_ids(plan_id, va.version, vb.version, "units")
        if touched is None:
            return None
        counts = [self.store.layer_infos(plan_id, v.version)["units"].count for v in (va, vb)]
        codes = sorted(touched, key=int)
        before = after = None
        if codes:
            before = self.store.query(plan_id, va.version, "units", codes=codes).frame
            after = self.store.query(plan_id, vb.version, "units", codes=codes).frame
        if counts[0] != counts[1] or (
            codes and set(before["code"].astype(str)) != set(after["code"].astype(str))
        ):
            raise InputError(f"versions {a} and {b} have different units", plan_id)
        columns = ["unit", "building_id", "from", "to", "households_a", "households_b"]
        if not codes:
            return gpd.GeoDataFrame(columns=[*columns, "geometry"], geometry="geometry", crs=4326)
        before = before.set_index(before["code"].astype(str))
        after = after.set_index(after["code"].astype(str))
        order = sorted(before.index, key=int)
        before, after = before.loc[order], after.loc[order]
        return gpd.GeoDataFrame(
            {
                "unit": order,
                "building_id": after["building_id"].to_numpy(dtype=object),
                "from": before["parent_code"].astype(str).to_numpy(),
                "to": after["parent_code"].astype(str).to_numpy(),
                "households_a": before["households"].to_numpy(dtype=float),
                "households_b": after["households"].to_numpy(dtype=float),
            },
            geometry=after.geometry.to_numpy(),
            crs=after.crs,
        )

    # writing ----------------------------------------------------------------------------

    def edit(
        self,
        plan_id: str,
        base_version: int,
        moves: list[tuple[str, str]],
        locks: list[str] | None = None,
        who: Who = None,
        comment: str = "",
        name: str = "",
        dry_run: bool = False,
    ) -> EditResult:
        """Move units and save the result as the plan's next version (409 if stale). On
        a city, moves into one street are made on that street's state alone
        (:func:`load_street`) where it can be held and holds every unit moved."""
        t0 = time.perf_counter()
        base = self.base(plan_id, base_version, dry_run, street_of_moves(moves))
        if base.scope is not None and any(str(u) not in base.units.index for u, _ in moves):
            base = self.base(plan_id, base_version, dry_run)  # a unit from another street
        timings = {"load": time.perf_counter() - t0}
        t0 = time.perf_counter()
        new_locks = _known_grids(base, base.locks if locks is None else locks, "locks")
        check_scope(who, {to for _, to in moves}, "a move into")
        check_scope(who, base.locks ^ new_locks, "a lock change on")
        micro, moved = ge.apply_moves(base.units, base.micro, moves, base.locks | new_locks)
        check_scope(who, {m.before for m in moved}, "a move out of")
        t1 = time.perf_counter()
        targets = {m.after[:15] for m in moved}
        meta = {
            "kind": "save" if name and not moves else "edit",
            "name": name,
            "moves": len(moved),
            "edited": sorted(set(base.version.meta.get("edited") or []) | targets),
        }
        timings["apply"] = t1 - t0
        return self.commit(base, micro, moved, new_locks, meta, who, comment, dry_run, timings)

    def complete(
        self,
        plan_id: str,
        base_version: int,
        locks: list[str] | None = None,
        grids: list[str] | None = None,
        who: Who = None,
        comment: str = "",
    ) -> EditResult:
        """Re-solve the unlocked neighbours of the edited grids until they are valid."""
        base = self.base(plan_id, base_version, False)
        new_locks = _known_grids(base, base.locks if locks is None else locks, "locks")
        if grids is not None:
            edited = _known_grids(base, grids, "grids")
        else:  # the grids edited since the last completion
            edited = set(base.version.meta.get("edited") or [])
        check_scope(who, base.locks ^ new_locks, "a lock change on")
        check_scope(who, edited, "completion of")
        # grids outside the caller's territory are held as drawn: completion re-solves
        # only grids inside it
        outside = {g for g in base.layers["grids"]["code"] if not covers(who, g)}
        t0 = time.perf_counter()
        living = set(base.micro) | set(ge.level_codes(base.micro, "grid"))
        done = ge.complete(
            base.units,
            base.micro,
            edited - outside,
            new_locks | outside,
            base.limits,
            base.flags,
            retired=self.store.codes_ever(plan_id) - living,
        )
        check_scope(
            who, {m.before for m in done.moves} | {m.after for m in done.moves}, "a move of"
        )
        meta = {
            "kind": "complete",
            "name": "",
            "moves": len(done.moves),
            "edited": [],
            "resolved": done.resolved,
        }
        result = self.commit(
            base,
            done.micro,
            done.moves,
            new_locks,
            meta,
            who,
            comment or f"complete: re-solved {len(done.resolved)} grids",
            False,
            {"solve": time.perf_counter() - t0},
            done.flags,
        )
        result.extra = {
            "resolved": done.resolved,
            "held": done.locked,
            "rings": done.rings,
            "errors_before": done.errors_before,
            "errors_after": done.errors_after,
        }
        return result

    def restore(
        self, plan_id: str, base_version: int, version: int, who: Who = None, comment: str = ""
    ) -> EditResult:
        """A new version with the assignment (and locks) of an earlier one."""
        base = self.base(plan_id, base_version, False)
        old = self.state(plan_id, version)
        moves = ge.diff(base.units, base.micro, old.micro)
        check_scope(
            who, {m.before for m in moves} | {m.after for m in moves}, "restoring a unit of"
        )
        check_scope(who, base.locks ^ set(old.locks), "a lock change on")
        meta = {"kind": "restore", "name": "", "moves": len(moves), "edited": [], "of": version}
        return self.commit(
            base,
            old.micro.copy(),
            moves,
            set(old.locks),
            meta,
            who,
            comment or f"restore version {version}",
            False,
            {},
            old.flags,
        )

    def rename(
        self,
        plan_id: str,
        base_version: int,
        names: dict[str, str],
        who: Who = None,
        comment: str = "",
    ) -> EditResult:
        """Set the names of grids and micro-grids (codes in the caller's territory), as a
        new version that moves nothing."""
        base = self.base(plan_id, base_version, False)
        check_scope(who, names, "renaming")
        names = {str(code): _grid_name(code, name) for code, name in names.items()}
        t0 = time.perf_counter()
        changed: dict[str, gpd.GeoDataFrame] = {}
        touched: dict[str, list[tuple]] = {}
        for layer in ("grids", "microgrids"):
            frame = base.layers[layer]
            hit = frame["code"].isin(list(names)).to_numpy()
            if not hit.any():
                continue
            frame = frame.copy()
            frame.loc[hit, "name"] = frame.loc[hit, "code"].map(names)
            changed[layer] = frame
            touched[layer] = [tuple(b) for b in shapely.bounds(frame.geometry.to_numpy()[hit])]
        known = set(base.layers["grids"]["code"]) | set(base.layers["microgrids"]["code"])
        unknown = sorted(set(names) - known)
        if unknown:
            raise NotFound(
                f"no grid or micro-grid {unknown[0]} in version {base_version}",
                plan_id,
                where="names",
            )
        found = base.violations()
        meta = {
            "kind": "rename",
            "name": "",
            "moves": 0,
            "edited": list(base.version.meta.get("edited") or []),
            "renamed": sorted(names),
        }
        version = self.save_version(
            base,
            base.micro,
            changed,
            set(base.locks),
            meta,
            found,
            who,
            comment or f"renamed {len(names)} grid(s)",
        )
        self._remember(next_state(base, version, base.micro, changed, set(base.locks)))
        layers = {**base.layers, **changed}
        return EditResult(
            version=version,
            moves=[],
            violations=with_boxes(base, found, layers),
            grids=[],
            locks=sorted(base.locks),
            touched=touched,
            timings={"rename": round((time.perf_counter() - t0) * 1000, 2)},
        )

    def base(
        self, plan_id: str, base_version: int, dry_run: bool, street: str | None = None
    ) -> PlanState:
        """The state an edit starts from (of ``street`` alone where it can be:
        :meth:`state`); 409 unless it is the latest version (a dry run may start from
        any)."""
        if not dry_run:
            self._still_latest(plan_id, base_version)
        return self.state(plan_id, base_version, street)

    def _still_latest(self, plan_id: str, base_version: int) -> None:
        latest = self.store.latest(plan_id)  # one row, not every version's
        if latest is None:
            self.store.resolve(plan_id)  # no such plan: its NotFound
        if base_version != latest:
            raise VersionConflict(
                f"based on version {base_version}, but the latest is {latest}; "
                "reload and redo the change",
                plan_id,
                where="base_version",
            )

    @contextmanager
    def writing(self, base: PlanState) -> Iterator[None]:
        """Saves of one plan, one at a time in this process. A save waits for the one
        before it and is then refused at once (409) if that one made its base stale,
        instead of re-dissolving and writing a version the store would refuse: twenty
        planners saving on one version used to do twenty saves' work for one 201, and
        starved the 201 (28 s each, some past a client's 60 s, on a loaded machine).
        Another process's save is still caught by the store's own check."""
        with self._lock:
            lock = self._writers.setdefault(base.plan_id, threading.RLock())
        with lock:
            self._still_latest(base.plan_id, base.version.version)
            yield

    def commit(
        self,
        base: PlanState,
        micro: np.ndarray,
        moved: list[ge.Move],
        locks: set[str],
        meta: dict[str, Any],
        who: Who,
        comment: str,
        dry_run: bool,
        timings: dict[str, float],
        flags: ge.Flags | None = None,
        rewritten: dict[str, pd.DataFrame] | None = None,
    ) -> EditResult:
        """Check an assignment, and unless ``dry_run`` re-dissolve what moved and save it
        as the next version (the path every edit, completion, restore, adoption and
        rebalance takes). ``rewritten`` are layers of ``base`` whose attributes changed
        (a rebalance's households): saved too, under what the moves re-dissolved."""
        flags = flags or base.flags
        t0 = time.perf_counter()
        found = check_state(base, micro, moved, flags)
        timings["check"] = time.perf_counter() - t0
        # the saving path under one lock per plan (Editor.writing): a check alone needs none
        with nullcontext() if dry_run else self.writing(base):
            changed_layers: dict[str, gpd.GeoDataFrame] = {}
            touched: dict[str, list[tuple]] = {}
            if not dry_run:  # a check alone needs no polygons
                t0 = time.perf_counter()
                changed_layers, touched = derive(base, micro, moved, flags)
                changed_layers = {**(rewritten or {}), **changed_layers}
                timings["derive"] = time.perf_counter() - t0
            layers = {**base.layers, **changed_layers}
            changed = {m.before[:15] for m in moved} | {m.after[:15] for m in moved}
            nbrs = base.neighbours(micro, changed)
            rows = grid_rows(base, micro, layers["grids"], nbrs, locks, changed)
            grids = [r for r in rows if r["code"] in changed]
            violations = with_boxes(base, found, layers)
            version = base.version
            if not dry_run:
                t0 = time.perf_counter()
                written = written_layers(base, micro, changed_layers)
                version = self.save_version(base, micro, written, locks, meta, found, who, comment)
                timings["save"] = time.perf_counter() - t0
                after = next_state(base, version, micro, changed_layers, locks, found, written)
                self._remember(after)
            return EditResult(
                version=version,
                moves=moved,
                violations=violations,
                grids=grids,
                locks=sorted(locks),
                touched=touched,
                timings={k: round(v * 1000, 2) for k, v in timings.items()},
                saved=not dry_run,
            )

    def save_version(
        self,
        base: PlanState,
        micro: np.ndarray,
        layers: dict[str, gpd.GeoDataFrame],
        locks: set[str],
        meta: dict[str, Any],
        found: list[Violation],
        who: Who,
        comment: str,
    ) -> Version:
        """Save ``layers``, the layers the new version writes (``written_layers``: with
        the units when they moved), as the next version of ``base``: layers the base
        holds are written as patches, the rest of its layers kept, the violations of
        ``micro`` and the audit entry beside them."""
        out = dict(layers)
        # each layer the base holds as stored is written as a patch: the rows it changed
        bases = {n: base.stored[n] for n in out if n in base.stored}
        out["violations"] = pd.DataFrame(
            [asdict(v) for v in found], columns=["level", "code", "check", "severity", "reason"]
        )
        have = [i.name for i in self.store.layers(base.plan_id, base.version.version)]
        keep = tuple(n for n in have if n not in out)
        stale = set(base.version.meta.get("stale_layers") or [])
        if meta["moves"]:  # per-grid results of the overlay no longer match the grids
            stale |= set(GRID_RESULTS) & set(have)
        full_meta = {
            **{k: v for k, v in base.version.meta.items() if k != "scopes"},
            **meta,
            "locks": sorted(locks),
            "base": base.version.version,
            "stale_layers": sorted(stale),
        }
        if isinstance(who, Account) and who.role != "admin":
            # the territory the version was saved under; PostGIS checks its units against it
            full_meta["scopes"] = list(who.scopes)
        changed = np.flatnonzero(micro != base.micro)
        entry = audit_entry(
            actor(who),
            str(meta.get("kind") or "edit"),
            base.plan_id,
            base.version.version,
            units=[str(base.units.codes[i]) for i in changed],
            grids=sorted(
                set(ge.level_codes(micro[changed], "grid"))
                | set(ge.level_codes(base.micro[changed], "grid"))
            ),
            locks=sorted(locks),
            **{k: meta[k] for k in ("renamed", "of", "adopted_from") if k in meta},
        )
        with self.writing(base):
            return self.store.save(
                base.plan_id,
                out,
                full_meta,
                base_version=base.version.version,
                author=actor(who),
                comment=comment,
                keep=keep,
                audit=entry,
                bases=bases,
                partial=base.scope is not None,
            )


# helpers -----------------------------------------------------------------------------


def _settle() -> None:
    """Put what a loaded version holds out of the cyclic collector's way. A city's state
    holds some 180,000 shapely polygons, each tracked by the collector; every full
    collection that fell inside a later edit walked them all (135 ms of a 300 ms save at
    10⁶ households). They form no cycles (a state dropped from the cache is freed by
    reference counting alone), so they are frozen (``gc.freeze``) once loaded: later
    collections walk only what edits make. The young generations are collected first so
    that no garbage is frozen with them."""
    gc.collect(1)
    gc.freeze()


def _union_box(boxes: list[list[float]], s: PlanState) -> list[float]:
    """The box holding ``boxes`` (the version's when there are none)."""
    if not boxes:
        return box_of(shapely.total_bounds(s.layers["communities"].geometry.to_numpy()))
    b = np.asarray(boxes, dtype=float)
    return box_of([*b[:, :2].min(axis=0), *b[:, 2:].max(axis=0)])


def _grid_name(code: str, name: str) -> str:
    """A grid's new name, checked: 1–60 characters, no control characters."""
    text = str(name or "").strip()
    if not 1 <= len(text) <= 60 or any(ord(ch) < 32 for ch in text):
        raise InputError(
            "a name is 1–60 characters without control characters", where=f"names.{code}"
        )
    return text


def _ends(moves: list[ge.Move]) -> set[str]:
    """The micro-grids units leave and join."""
    return {m.before for m in moves} | {m.after for m in moves}


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _known_grids(s: PlanState, codes, where: str) -> set[str]:
    """``codes`` as a set, each checked to be a grid of the version."""
    codes = set(codes)
    unknown = codes - s.grids()
    if unknown:
        raise InputError(f"no grid {sorted(unknown)[0]} in this version", s.plan_id, where=where)
    return codes
