"""Edits on a stored plan: moves, completion and restores become new versions.

A version of a plan is the assignment of its atomic units (the ``units`` layer) to
micro-grids. An edit checks the new assignment on the unit graph (geo/editing.py),
dissolves only the polygons it changed, and saves a version that writes the changed
layers and keeps the rest from its base (``Store.save(keep=…)``). It reports the
features it changed, so the tile cache can drop exactly the tiles they touch.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.data.accounts import Account, audit_entry, local_actor
from wangge.data.store import Store, Version
from wangge.errors import Forbidden, InputError, NotFound, VersionConflict
from wangge.geo import editing as ge
from wangge.geo.codes import LENGTHS
from wangge.geo.delineation import placeholder_name, union_parts
from wangge.geo.limits import Limits
from wangge.geo.validate import Violation

#: Layers an edit rewrites; every other layer of the base version is kept as it is.
POLYGONS = ("streets", "communities", "grids", "microgrids")
#: Who writes: an API account (scoped), or a name given on the command line (the
#: operator of the machine, unscoped), or nobody named (the local user).
Who = Account | str | None
#: Layers holding per-grid results of the overlay and coverage jobs: kept, marked stale.
GRID_RESULTS = ("grid_risk", "grid_coverage", "access", "gaps", "facilities", "risk_points")


@dataclass
class PlanState:
    """One version of an editable plan, held in memory between requests."""

    version: Version
    units: ge.Units
    unit_frame: gpd.GeoDataFrame  # the units layer (WGS84), rows in unit order
    metric: np.ndarray  # unit geometries in the plan's metric CRS
    crs: str
    limits: Limits
    micro: np.ndarray
    flags: ge.Flags
    locks: set[str]
    layers: dict[str, gpd.GeoDataFrame]  # POLYGONS and buildings, WGS84
    #: The violations of ``micro`` (under ``flags``), kept so that an edit inside one
    #: street of a city re-checks that street only (``ge.check_streets``); None until known.
    found: list[Violation] | None = None
    #: Each street's unit positions and sub-graph, shared by the versions of one plan.
    streets: dict = field(default_factory=dict)

    @property
    def plan_id(self) -> str:
        return self.version.plan_id

    @property
    def city(self) -> bool:
        """A plan of several streets: edits are checked street by street."""
        return len(self.layers["streets"]) > 1


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
        self._states: OrderedDict[tuple[str, int], PlanState] = OrderedDict()
        self._keep = keep
        self._lock = threading.RLock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    # loading ----------------------------------------------------------------------------

    def state(self, plan_id: str, version: int | None = None) -> PlanState:
        """The state of a version (the latest by default), loaded once and cached."""
        v = self.store.resolve(plan_id, version)
        key = (v.plan_id, v.version)
        with self._lock:
            if key in self._states:
                self._states.move_to_end(key)
                return self._states[key]
            loading = self._loading.setdefault(key, threading.Lock())
        # one request loads a version; the others asking for it meanwhile wait for it
        with loading:
            with self._lock:
                if key in self._states:
                    return self._states[key]
            state = self._load(v)
            self._remember(state)
        with self._lock:
            self._loading.pop(key, None)
        return state

    def _remember(self, state: PlanState) -> None:
        with self._lock:
            self._states[(state.plan_id, state.version.version)] = state
            while len(self._states) > self._keep:
                self._states.popitem(last=False)

    def _load(self, v: Version) -> PlanState:
        from wangge.delineate import metric_plan

        names = {i.name for i in self.store.layers(v.plan_id, v.version)}
        missing = [n for n in ("units", "unit_edges", *POLYGONS) if n not in names]
        if missing:
            raise InputError(
                "this plan cannot be edited: it has no "
                + ", ".join(missing)
                + " (plans made by `wangge delineate` have them; re-import one)",
                v.plan_id,
                where="units",
            )
        q = self.store.query
        frames = {n: q(v.plan_id, v.version, n).frame for n in (*POLYGONS, "units")}
        if "buildings" in names:
            frames["buildings"] = q(v.plan_id, v.version, "buildings").frame
        edges = pd.DataFrame(q(v.plan_id, v.version, "unit_edges").frame.drop(columns="geometry"))
        unit_frame = frames["units"]
        order = np.argsort(unit_frame["code"].astype(int).to_numpy(), kind="stable")
        unit_frame = unit_frame.iloc[order].reset_index(drop=True)
        edges = ge.edges_at_positions(unit_frame["code"], edges, v.plan_id)
        metric_layers, limits = metric_plan({"units": unit_frame}, v.meta, v.plan_id)
        crs = str(metric_layers["units"].crs)
        metric = metric_layers["units"].geometry.to_numpy()
        units = ge.units_from_tables(unit_frame, edges, metric)
        micro = unit_frame["parent_code"].astype(str).to_numpy().astype(object)
        layers = {n: frames[n] for n in (*POLYGONS, "buildings") if n in frames}
        state = PlanState(
            version=v,
            units=units,
            unit_frame=unit_frame,
            metric=metric,
            crs=crs,
            limits=limits,
            micro=micro,
            flags=_flags(layers),
            locks=set(v.meta.get("locks") or []),
            layers=layers,
        )
        if state.city:  # checked once here, so that every edit re-checks only its street
            state.found = ge.check(units, micro, limits, state.flags)
        return state

    # reading ----------------------------------------------------------------------------

    def overview(self, plan_id: str, version: int | None = None) -> dict[str, Any]:
        """What the editor shows: limits, per-grid counts, neighbours, locks, violations."""
        s = self.state(plan_id, version)
        found = ge.check(s.units, s.micro, s.limits, s.flags)
        nbrs = ge.grid_neighbours(s.units, s.micro)
        grids = _grid_rows(s, s.micro, s.layers["grids"], nbrs, s.locks)
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
            "bbox": _box(shapely.total_bounds(com.geometry.to_numpy())),
            "grids": grids,
            "communities": [
                {
                    "code": r.code,
                    "name": r.name,
                    "households": float(r.households),
                    "population": float(r.population),
                    "bbox": _box(b),
                }
                for r, b in zip(com.itertuples(), bounds, strict=True)
            ],
            "violations": _with_boxes(s, found, s.layers),
            "stale": list(s.version.meta.get("stale_layers") or []),
        }

    def diff(self, plan_id: str, a: int, b: int) -> list[dict[str, Any]]:
        """The units whose micro-grid differs between versions ``a`` and ``b``."""
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
        """Move units and save the result as the plan's next version (409 if stale)."""
        base = self.base(plan_id, base_version, dry_run)
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
        return self.commit(
            base, micro, moved, new_locks, meta, who, comment, dry_run, {"apply": t1 - t0}
        )

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
        done = ge.complete(
            base.units, base.micro, edited - outside, new_locks | outside, base.limits, base.flags
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
        found = ge.check(base.units, base.micro, base.limits, base.flags)
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
        self._remember(_next_state(base, version, base.micro, changed, set(base.locks)))
        layers = {**base.layers, **changed}
        return EditResult(
            version=version,
            moves=[],
            violations=_with_boxes(base, found, layers),
            grids=[],
            locks=sorted(base.locks),
            touched=touched,
            timings={"rename": round((time.perf_counter() - t0) * 1000, 2)},
        )

    def base(self, plan_id: str, base_version: int, dry_run: bool) -> PlanState:
        """The state an edit starts from; 409 unless it is the latest version (a dry run
        may start from any)."""
        latest = self.store.resolve(plan_id)
        if not dry_run and base_version != latest.version:
            raise VersionConflict(
                f"based on version {base_version}, but the latest is {latest.version}; "
                "reload and redo the change",
                plan_id,
                where="base_version",
            )
        return self.state(plan_id, base_version)

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
    ) -> EditResult:
        """Check an assignment, and unless ``dry_run`` re-dissolve what moved and save it
        as the next version (the path every edit, completion, restore and adoption takes)."""
        flags = flags or base.flags
        t0 = time.perf_counter()
        found = _check(base, micro, moved, flags)
        timings["check"] = time.perf_counter() - t0
        changed_layers: dict[str, gpd.GeoDataFrame] = {}
        touched: dict[str, list[tuple]] = {}
        if not dry_run:  # a check alone needs no polygons
            t0 = time.perf_counter()
            changed_layers, touched = _derive(base, micro, moved, flags)
            timings["derive"] = time.perf_counter() - t0
        layers = {**base.layers, **changed_layers}
        changed = {m.before[:15] for m in moved} | {m.after[:15] for m in moved}
        nbrs = ge.grid_neighbours(base.units, micro, changed)
        rows = _grid_rows(base, micro, layers["grids"], nbrs, locks, changed)
        grids = [r for r in rows if r["code"] in changed]
        violations = _with_boxes(base, found, layers)
        version = base.version
        if not dry_run:
            t0 = time.perf_counter()
            version = self.save_version(
                base, micro, changed_layers, locks, meta, found, who, comment
            )
            timings["save"] = time.perf_counter() - t0
            self._remember(_next_state(base, version, micro, changed_layers, locks, found))
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
        out: dict[str, pd.DataFrame] = dict(layers)
        if not np.array_equal(micro, base.micro):
            units = base.unit_frame.copy()
            units["parent_code"] = micro
            units["grid_code"] = ge.level_codes(micro, "grid")
            units["community_code"] = ge.level_codes(micro, "community")
            out["units"] = units
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
        return self.store.save(
            base.plan_id,
            out,
            full_meta,
            base_version=base.version.version,
            author=actor(who),
            comment=comment,
            keep=keep,
            audit=entry,
        )


# who may change what ------------------------------------------------------------------


def actor(who: Who) -> str:
    """The name a version and its audit entry carry."""
    if isinstance(who, Account):
        return who.name
    return who or local_actor()


def covers(who: Who, code: str) -> bool:
    """Whether ``who`` may change the unit ``code`` (the command line may change all)."""
    return who.covers(code) if isinstance(who, Account) else True


def check_scope(who: Who, codes, what: str) -> None:
    """Refuse (403) a change touching any of ``codes`` outside the caller's territory."""
    outside = sorted(str(c) for c in codes if not covers(who, str(c)))
    if outside:
        shown = ", ".join(outside[:10]) + (" …" if len(outside) > 10 else "")
        raise Forbidden(
            f"{what} {len(outside)} grid(s) outside the scope of account {who.name!r} "
            f"({', '.join(who.scopes) or 'none'}): {shown}; nothing was saved",
            where="scope",
        )


# helpers -----------------------------------------------------------------------------


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


def _box(b) -> list[float]:
    return [round(float(x), 7) for x in b]


def _known_grids(s: PlanState, codes, where: str) -> set[str]:
    """``codes`` as a set, each checked to be a grid of the version."""
    codes = set(codes)
    unknown = codes - {c[:15] for c in s.micro}
    if unknown:
        raise InputError(f"no grid {sorted(unknown)[0]} in this version", s.plan_id, where=where)
    return codes


def _flags(layers: dict[str, gpd.GeoDataFrame]) -> ge.Flags:
    records, flag, note, record_codes = {}, {}, {}, {}
    for name in ("streets", "communities", "grids", "microgrids"):
        if name not in layers:
            continue
        frame = layers[name]
        for r in frame.itertuples():
            if getattr(r, "flag", "") or "":
                flag[r.code] = r.flag
                note[r.code] = getattr(r, "note", "") or ""
            rc = getattr(r, "record_codes", "") or ""
            if rc and "," in rc:
                records[r.code] = rc.count(",") + 1
                record_codes[r.code] = rc
    return ge.Flags(records, flag, note, record_codes)


def _grid_rows(
    s: PlanState,
    micro: np.ndarray,
    grids: gpd.GeoDataFrame,
    nbrs: dict[str, list[str]],
    locks: set[str],
    only: set[str] | None = None,
) -> list[dict[str, Any]]:
    table = ge.summary(s.units, micro, "grid")
    if only is not None:  # an edit's answer: the grids it changed, not the whole city's
        table = table[table.index.isin(only)]
        grids = grids[grids["code"].isin(only)]
    by_code = grids.set_index("code")
    bounds = dict(zip(grids["code"], shapely.bounds(grids.geometry.to_numpy()), strict=True))
    centres = shapely.point_on_surface(grids.geometry.to_numpy())
    xy = np.column_stack([shapely.get_x(centres), shapely.get_y(centres)])
    centre = dict(zip(grids["code"], xy, strict=True))
    out = []
    for code, row in table.iterrows():
        out.append(
            {
                "code": code,
                "name": str(by_code["name"].get(code, code)) if "name" in by_code else code,
                "parent_code": code[:12],
                "households": float(row.households),
                "population": float(row.population),
                "units": int(row.units),
                "locked": code in locks,
                "bbox": _box(bounds[code]) if code in bounds else None,
                "centre": [round(float(c), 7) for c in centre[code]] if code in centre else None,
                "neighbours": nbrs.get(code, []),
            }
        )
    return out


def _with_boxes(
    s: PlanState, found: list[Violation], layers: dict[str, gpd.GeoDataFrame]
) -> list[dict[str, Any]]:
    """Violations as dicts, each with the WGS84 box of what it names (to zoom to)."""
    boxes: dict[str, list[float]] = {}
    named = {v.code for v in found}
    for name in POLYGONS:
        frame = layers[name]
        frame = frame[frame["code"].isin(named)]
        for code, b in zip(frame["code"], shapely.bounds(frame.geometry.to_numpy()), strict=True):
            boxes[code] = _box(b)
    uf = s.unit_frame
    out = []
    for v in found:
        row = asdict(v)
        if v.level == "compound":
            mask = (uf["compound_id"].astype(str) == v.code).to_numpy()
            row["bbox"] = _box(shapely.total_bounds(uf.geometry.to_numpy()[mask]))
        else:
            row["bbox"] = boxes.get(v.code)
        out.append(row)
    return out


def _derive(
    s: PlanState, micro: np.ndarray, moved: list[ge.Move], flags: ge.Flags
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, list[tuple]]]:
    """The polygon layers and buildings of a new assignment: only the parts a move
    touched are dissolved again; the rest are the base's rows as they were."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    touched: dict[str, list[tuple]] = {}
    if not moved:
        return layers, touched
    moved_idx = np.array([s.units.index[m.unit] for m in moved])
    unit_geoms = s.unit_frame.geometry.to_numpy()
    touched["units"] = [tuple(b) for b in shapely.bounds(unit_geoms[moved_idx])]
    new_metric: dict[str, shapely.Geometry] = {}
    for level in ("microgrid", "grid", "community", "street"):
        name = ge.LEVEL_LAYERS[level]
        n = LENGTHS[level]
        old = s.layers[name]
        # a part changes only if units crossed its edge: a move inside a community leaves
        # the community (and its street) exactly as it was
        crossed = [m for m in moved if m.before[:n] != m.after[:n]]
        if not crossed:
            continue
        hit = {m.before[:n] for m in crossed} | {m.after[:n] for m in crossed}
        codes = ge.level_codes(micro, level)
        child = None if level == "microgrid" else ge.level_codes(micro, _child(level))
        rows = []
        summary = ge.summary(s.units, micro, level)
        by_code = old.set_index("code")
        for code in sorted(hit):
            if code not in summary.index:
                continue  # lost all its units: retired
            if child is None:
                geom = union_parts(s.metric[codes == code])
            else:
                kids = sorted(set(child[codes == code]))
                geom = union_parts(_metric_parts(s, kids, new_metric, _child(level)))
            new_metric[code] = geom
            rows.append(_part_row(level, code, geom, summary.loc[code], by_code, s, flags))
        metric_frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=s.crs)
        fresh = metric_frame.to_crs(4326) if len(metric_frame) else metric_frame
        keep = old[~old["code"].isin(hit)]
        frame = pd.concat([keep, fresh[[c for c in old.columns if c in fresh.columns]]])
        frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)
        layers[name] = frame.sort_values("code").reset_index(drop=True)
        gone = old[old["code"].isin(hit)].geometry.to_numpy()
        touched[name] = [tuple(b) for b in shapely.bounds(np.r_[gone, fresh.geometry.to_numpy()])]
    if "buildings" in s.layers:
        b = s.layers["buildings"].copy()
        code_of = {}
        for i in moved_idx:
            bid = s.unit_frame["building_id"].iat[i]
            if bid is not None and not pd.isna(bid):
                code_of[str(bid)] = micro[i]
        ids = b["building_id"].astype(str)
        hit_b = ids.isin(code_of).to_numpy()
        if hit_b.any():
            b.loc[hit_b, "microgrid_code"] = ids[hit_b].map(code_of).to_numpy()
            if "grid_code" in b:
                b.loc[hit_b, "grid_code"] = b.loc[hit_b, "microgrid_code"].str[:15]
            touched["buildings"] = [tuple(x) for x in shapely.bounds(b.geometry.to_numpy()[hit_b])]
        layers["buildings"] = b
    return layers, touched


def _metric_parts(
    s: PlanState, codes: list[str], fresh: dict[str, shapely.Geometry], level: str
) -> np.ndarray:
    """Metric polygons of ``codes``: re-dissolved ones from ``fresh``, others from the base."""
    missing = [c for c in codes if c not in fresh]
    if missing:
        old = s.layers[ge.LEVEL_LAYERS[level]]
        rows = old[old["code"].isin(missing)]
        fresh.update(zip(rows["code"], rows.geometry.to_crs(s.crs).to_numpy(), strict=True))
    return np.array([fresh[c] for c in codes], dtype=object)


def _child(level: str) -> str:
    return {"grid": "microgrid", "community": "grid", "street": "community"}[level]


def _new_name(level: str, code: str, s: PlanState) -> str:
    """A placeholder name for a part an edit made, carrying its parent's name as
    delineation does (社区002第3网格)."""
    parent = {"community": "streets", "grid": "communities", "microgrid": "grids"}.get(level)
    names = s.layers.get(parent) if parent else None
    parent_name = ""
    if names is not None and "name" in names:
        found = names.loc[names["code"] == code[: LENGTHS[level] - 3], "name"]
        parent_name = str(found.iat[0]) if len(found) else ""
    return placeholder_name(level, code, parent_name)


def _part_row(
    level: str,
    code: str,
    geom: shapely.Geometry,
    summary: pd.Series,
    old: pd.DataFrame,
    s: PlanState,
    flags: ge.Flags,
) -> dict[str, Any]:
    """Attributes of one re-dissolved part: counts and metrics afresh, name, flag and
    note carried over (road share needs the roads, so it is left empty until the plan is
    delineated or validated again)."""
    import math

    exists = code in old.index
    hh = float(summary.households)
    area = shapely.area(geom)
    perim = shapely.length(geom)
    band = None if level == "street" else getattr(s.limits, level)
    records = flags.records.get(code, 1)
    row = {
        "code": code,
        "parent_code": code[: LENGTHS[level] - 3],
        "households": hh,
        "population": float(summary.population),
        "area_km2": area / 1e6,
        "name": old["name"].get(code) if exists else _new_name(level, code, s),
        "flag": flags.flag.get(code, ""),
        "note": flags.note.get(code, ""),
        "deviation_pct": (hh / records - band.target) / band.target * 100 if band else None,
        "polsby_popper": 4 * math.pi * area / max(perim, 1e-9) ** 2,
        "road_share": None,
        "geometry": geom,
    }
    if level == "microgrid":
        row["record_codes"] = flags.record_codes.get(code, code)
    if level == "grid":
        row["grid_type"] = "dedicated" if row["flag"] == "dedicated" else "basic"
    return row


def _check(base: PlanState, micro: np.ndarray, moved: list[ge.Move], flags: ge.Flags):
    """The violations of ``micro``: on a city whose base is checked, only the streets the
    moves touch are checked again; a move across streets, or other flags (completion),
    checks the whole plan."""
    across = any(m.before[:9] != m.after[:9] for m in moved)
    if across:
        base.streets.clear()  # a unit changed street: the cached street members are stale
    if not base.city or base.found is None or across or flags is not base.flags or not moved:
        return ge.check(base.units, micro, base.limits, flags)
    streets = {m.before[:9] for m in moved}
    return ge.check_streets(
        base.units, micro, base.limits, flags, base.found, streets, base.streets
    )


def _next_state(
    base: PlanState,
    version: Version,
    micro: np.ndarray,
    layers: dict[str, gpd.GeoDataFrame],
    locks: set[str],
    found: list[Violation] | None = None,
) -> PlanState:
    merged = {**base.layers, **layers}
    flags = _flags(merged)
    return PlanState(
        version=version,
        units=base.units,
        unit_frame=base.unit_frame,
        metric=base.metric,
        crs=base.crs,
        limits=base.limits,
        micro=micro,
        flags=flags,
        locks=set(locks),
        layers=merged,
        # the found violations hold for the new state only under the same flags
        found=found if found is not None and flags == base.flags else None,
        streets=base.streets,
    )
