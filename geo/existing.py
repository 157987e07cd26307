"""Bring a city's existing grid layer onto a plan's atomic units, keeping its codes and names.

Each unit (one cell per building, never split) goes to the existing grid polygon that
holds most of its area; a unit no grid touches stays with the grid it had in the plan
and is reported. A grid keeps its code when it is a 15-digit code whose 12-digit prefix
is a community of the plan; otherwise it is placed in the community (of the plan, or of
its own community-code column) holding most of its units' area and numbered there like
the plan numbers its grids (lowest free number, in reading order; dedicated grids from
901), and the report says so. Inside every grid whose units changed, micro-grids are
solved again with :func:`~wangge.geo.partition.partition` and the micro-grid band, as
:func:`wangge.geo.assignment.complete` does; a grid that kept its code and its units keeps
its micro-grids. The result is a full micro-grid assignment, the grid names, flags, and a
report row per grid with its households, units, whether its code was kept and the
violations :func:`~wangge.geo.assignment.check` finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.geo.assignment import (
    Flags,
    Units,
    check,
    keep_codes,
    level_codes,
    mark,
)
from wangge.geo.codes import iter_free_codes, reading_order
from wangge.geo.delineation import DEDICATED_START, placeholder_name
from wangge.geo.limits import Limits
from wangge.geo.partition import choose_k, partition
from wangge.geo.validate import Violation

#: A unit counts as straddling when the grid holding most of it holds less than this share.
WHOLE_SHARE = 0.99

REPORT_COLUMNS = [
    "feature",
    "code",
    "given_code",
    "name",
    "community",
    "source",
    "households",
    "population",
    "units",
    "straddling",
    "outside",
    "code_kept",
    "code_note",
    "flag",
    "micro_resolved",
    "microgrids",
    "violations",
]


@dataclass
class Adoption:
    """An existing grid layer brought onto the units of a plan.

    Attributes
    ----------
    micro
        Each unit's 18-digit micro-grid code (object array, unit order).
    names
        Grid code → name, for every grid of the result (given names, else placeholders).
    flags
        The plan's flags, updated for the grids and micro-grids made here (dedicated
        grids, vertical micro-grids).
    report
        One row per grid (:data:`REPORT_COLUMNS`): the file's features in file order,
        then the plan's grids that kept units outside every feature (``source`` "plan").
    outside
        The units outside every grid: ``unit``, ``households``, ``grid`` (where they stay).
    violations
        :func:`~wangge.geo.assignment.check` on ``micro``.
    """

    micro: np.ndarray
    names: dict[str, str]
    flags: Flags
    report: pd.DataFrame
    outside: pd.DataFrame
    violations: list[Violation]

    @property
    def bad_grids(self) -> list[str]:
        """Grids with an error-level violation (of their own or of a micro-grid)."""
        codes = set(self.grid_codes())
        return sorted({v.code[:15] for v in self.violations if v.severity == "error"} & codes)

    def grid_codes(self) -> np.ndarray:
        """The codes of the grids of the result."""
        return np.unique(level_codes(self.micro, "grid").astype(str)).astype(object)


def overlaps(unit_geoms: np.ndarray, grid_geoms: np.ndarray) -> pd.DataFrame:
    """Area (m²) shared by each unit and each grid polygon that intersect (metric CRS).

    Returns
    -------
    pandas.DataFrame
        ``unit`` and ``grid`` (positions) and ``area`` for each overlapping pair.
    """
    tree = shapely.STRtree(grid_geoms)
    u, g = tree.query(unit_geoms, predicate="intersects")
    area = shapely.area(shapely.intersection(unit_geoms[u], grid_geoms[g]))
    keep = area > 0
    return pd.DataFrame({"unit": u[keep], "grid": g[keep], "area": area[keep]})


def holder(units: Units, shared: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The grid holding most of each unit (-1 for none) and the share of the unit it holds."""
    best = np.full(units.n, -1)
    share = np.zeros(units.n)
    if len(shared):
        top = shared.sort_values(["unit", "area", "grid"], ascending=[True, False, True])
        top = top.drop_duplicates("unit")
        best[top["unit"].to_numpy()] = top["grid"].to_numpy()
        area = units.area[top["unit"].to_numpy()]
        share[top["unit"].to_numpy()] = top["area"].to_numpy() / np.maximum(area, 1e-9)
    return best, np.minimum(share, 1.0)


def fit(units: Units, geoms: np.ndarray, grid_geoms: np.ndarray) -> float:
    """Share of the units' area lying in the grid that holds most of each (1 when every
    building sits wholly inside one grid; low when the layer is shifted or elsewhere)."""
    shared = overlaps(np.asarray(geoms), np.asarray(grid_geoms))
    _, share = holder(units, shared)
    return float((share * units.area).sum() / max(units.area.sum(), 1e-9))


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _code_rule(code: str | None, communities: set[str]) -> str:
    """Why a given grid code cannot be kept ('' when it can)."""
    if code is None:
        return "no code given"
    if not re.fullmatch(r"\d{15}", code):
        return f"code {code!r} is not 15 digits"
    if code[:12] not in communities:
        return f"community {code[:12]} of code {code} is not a community of the plan"
    return ""


def assign_existing(
    units: Units,
    geoms: np.ndarray,
    micro: np.ndarray,
    grids: gpd.GeoDataFrame,
    limits: Limits,
    flags: Flags | None = None,
    plan_names: dict[str, str] | None = None,
) -> Adoption:
    """Assign a plan's units to an existing grid layer and solve micro-grids inside it.

    Parameters
    ----------
    units
        The plan's units and their graph.
    geoms
        The units' geometries in the same metric CRS as ``grids``, unit order.
    micro
        The plan's current micro-grid code per unit.
    grids
        The existing grids (metric CRS): ``code`` (str or None), ``name`` (str or None),
        optionally ``community_code`` (a 12-digit parent code), ``dedicated`` (bool) and
        ``feature`` (its number in the file, from 1; else row order).
    limits
        The plan's limits (the micro-grid band and the solver's seed).
    flags
        The plan's flags (vertical micro-grids, oversize and dedicated grids).
    plan_names
        The plan's grid names, for grids that keep units outside every feature.

    Returns
    -------
    Adoption
    """
    flags = flags or Flags()
    flags = Flags(dict(flags.records), dict(flags.flag), dict(flags.note), dict(flags.record_codes))
    plan_names = plan_names or {}
    grids = grids.reset_index(drop=True)
    k = len(grids)
    feature = (grids["feature"].to_numpy() if "feature" in grids else np.arange(1, k + 1)).astype(
        int
    )
    given = [_text(c) for c in grids["code"]] if "code" in grids else [None] * k
    names = [_text(v) for v in grids["name"]] if "name" in grids else [None] * k
    parent = (
        [_text(c) for c in grids["community_code"]] if "community_code" in grids else [None] * k
    )
    dedicated = (
        grids["dedicated"].fillna(False).astype(bool).to_numpy()
        if "dedicated" in grids
        else np.zeros(k, dtype=bool)
    )
    old_grid = level_codes(micro, "grid").astype(str)
    old_com = level_codes(micro, "community").astype(str)
    communities = set(old_com)

    shared = overlaps(np.asarray(geoms), grids.geometry.to_numpy())
    best, share = holder(units, shared)

    # each feature's community and code ------------------------------------------------
    code_of: list[str | None] = [None] * k
    rule = [_code_rule(c, communities) for c in given]
    community: list[str | None] = [None] * k
    taken = set(old_grid)
    for f in range(k):
        if not rule[f]:
            code_of[f] = given[f]
            community[f] = given[f][:12]
            continue
        if parent[f] and parent[f] in communities:
            community[f] = parent[f]
            continue
        mine = shared[shared["grid"] == f]
        if len(mine):
            by = mine.groupby(old_com[mine["unit"].to_numpy()])["area"].sum()
            community[f] = str(by.idxmax())
    kept_codes = {c for c in code_of if c}
    # units outside every grid stay in their plan grid; one whose code a feature now
    # uses elsewhere becomes a grid of its own under a new number
    out_idx = np.flatnonzero(best < 0)
    remnant_old = sorted(set(old_grid[out_idx]))
    remnant_code: dict[str, str | None] = {g: (None if g in kept_codes else g) for g in remnant_old}
    taken |= kept_codes
    # a grid without a usable code takes the plan's code of most of its units where no
    # other grid keeps that code (so adopting the same file twice gives the same codes)
    claimable = set(old_grid) - kept_codes - {c for c in remnant_code.values() if c}
    claims = []
    for f in range(k):
        if code_of[f] is None and community[f] is not None:
            counts = pd.Series(old_grid[best == f]).value_counts()
            for code, n in counts.items():
                special = int(code[12:]) >= DEDICATED_START
                if code in claimable and code[:12] == community[f] and special == dedicated[f]:
                    claims.append((-int(n), f, code))
    for _, f, code in sorted(claims):
        if code_of[f] is None and code in claimable:
            code_of[f] = code
            claimable.discard(code)
            rule[f] += f"; takes the plan's code {code} of most of its buildings"
    # the rest are numbered like the plan: per community, in reading order
    pending: list[tuple[str, str, object, shapely.Geometry]] = []  # community, kind, key, geom
    fgeoms = grids.geometry.to_numpy()
    for f in range(k):
        if code_of[f] is None and community[f] is not None and (best == f).any():
            pending.append((community[f], "feature", f, fgeoms[f]))
    for g, c in remnant_code.items():
        if c is None:
            members = out_idx[old_grid[out_idx] == g]
            box = shapely.box(*shapely.total_bounds(np.asarray(geoms)[members]))
            pending.append((g[:12], "remnant", g, box))
    for com in sorted({p[0] for p in pending}):
        group = [p for p in pending if p[0] == com]
        order = reading_order(gpd.GeoSeries([p[3] for p in group]))
        basic = iter_free_codes(com, taken)
        special = (
            f"{com}{n:03d}" for n in range(DEDICATED_START, 1000) if f"{com}{n:03d}" not in taken
        )
        for i in order:
            _, kind, key, _ = group[i]
            is_dedicated = kind == "feature" and bool(dedicated[key])
            code = next(special if is_dedicated else basic)
            taken.add(code)
            if kind == "feature":
                code_of[key] = code
            else:
                remnant_code[key] = code

    # the grid assignment ------------------------------------------------------------
    grid = old_grid.astype(object).copy()
    inside = best >= 0
    grid[inside] = np.asarray(code_of, dtype=object)[best[inside]]
    for g, c in remnant_code.items():
        grid[out_idx[old_grid[out_idx] == g]] = c
    # a feature whose community could not be found took no unit; nothing to place

    # micro-grids --------------------------------------------------------------------
    out = micro.copy()
    rng = np.random.default_rng(limits.solver.seed)
    dedicated_codes = {code_of[f] for f in range(k) if dedicated[f] and code_of[f]}
    resolved: set[str] = set()
    for code in sorted(set(grid)):
        members = np.flatnonzero(grid == code)
        before = np.flatnonzero(old_grid == code)
        if np.array_equal(members, before):  # the plan's grid: its micro-grids stay
            if code in dedicated_codes:
                mark(flags, code, *_grid_flag(units, members, limits, True))
            continue
        resolved.add(code)
        mark(flags, code, *_grid_flag(units, members, limits, code in dedicated_codes))
        for mcode, part in solve_microgrids(
            units, micro, members, code, limits, rng, flags, code in dedicated_codes
        ):
            out[part] = mcode

    found = check(units, out, limits, flags)
    report = _report(
        units,
        out,
        grid,
        best,
        share,
        feature,
        given,
        names,
        code_of,
        community,
        rule,
        remnant_code,
        old_grid,
        resolved,
        flags,
        found,
        plan_names,
    )
    name_of = {
        code: (names[f] or placeholder_name("grid", code)) for f, code in enumerate(code_of) if code
    }
    for g, c in remnant_code.items():
        name_of[c] = plan_names.get(g) or placeholder_name("grid", c)
    outside = pd.DataFrame(
        {
            "unit": units.codes[out_idx],
            "households": units.households[out_idx],
            "grid": grid[out_idx],
        }
    )
    return Adoption(
        micro=out,
        names={c: name_of.get(c, placeholder_name("grid", c)) for c in sorted(set(grid))},
        flags=flags,
        report=report,
        outside=outside,
        violations=found,
    )


def _grid_flag(
    units: Units, members: np.ndarray, limits: Limits, dedicated: bool
) -> tuple[str, str]:
    """A grid's flag and note: dedicated as given, or oversize when one building is over
    the ceiling and the rest could not stand alone (as the partitioner decides)."""
    if dedicated:
        return "dedicated", "dedicated grid (专属网格) as given"
    hh = units.households[members]
    heavy = hh > limits.grid.hi
    if heavy.any() and hh[~heavy].sum() < limits.grid.lo:
        return "oversize", f"{hh[heavy].max():g} > grid ceiling {limits.grid.hi:g}"
    return "", ""


def solve_microgrids(
    units: Units,
    micro: np.ndarray,
    members: np.ndarray,
    code: str,
    limits: Limits,
    rng: np.random.Generator,
    flags: Flags,
    dedicated: bool = False,
) -> Iterator[tuple[str, np.ndarray]]:
    """Divide the units of grid ``code`` into micro-grids; yield (code, units) per part.

    Codes already used in ``micro`` under ``code`` stay with the part overlapping them
    most; the rest take the lowest free numbers. ``flags`` learns the vertical micro-grids
    (one footprint, several records by floor ranges). A dedicated grid with no
    households is one micro-grid.
    """
    hh = float(units.households[members].sum())
    if dedicated and hh <= 0:
        parts, kinds = [members], [("dedicated", "dedicated grid (专属网格)")]
    else:
        sub, _ = partition(
            units.graph, members, units.households, limits.microgrid, limits.solver, rng
        )
        parts = [s.units for s in sub]
        kinds = [("vertical" if s.heavy else s.flag, s.note or "") for s in sub]
    olds = sorted({micro[i] for i in members if micro[i][:15] == code})
    taken = {c for c in micro if c[:15] == code} - set(olds)
    taken |= {r for m, rc in flags.record_codes.items() if m[:15] == code for r in rc.split(",")}
    codes = keep_codes(parts, micro, olds, code, taken)
    spare = iter_free_codes(code, taken | set(codes) | set(olds))
    for part, mcode, (flag, note) in zip(parts, codes, kinds, strict=True):
        mark(flags, mcode, flag, note)
        if flag == "vertical":
            n = choose_k(float(units.households[part].sum()), limits.microgrid)[0]
            records = [mcode, *(next(spare) for _ in range(n - 1))]
            flags.records[mcode] = n
            flags.record_codes[mcode] = ",".join(records)
        yield mcode, part


def _report(
    units: Units,
    micro: np.ndarray,
    grid: np.ndarray,
    best: np.ndarray,
    share: np.ndarray,
    feature: np.ndarray,
    given: list,
    names: list,
    code_of: list,
    community: list,
    rule: list[str],
    remnant_code: dict[str, str | None],
    old_grid: np.ndarray,
    resolved: set[str],
    flags: Flags,
    found: list[Violation],
    plan_names: dict[str, str],
) -> pd.DataFrame:
    said: dict[str, list[str]] = {}
    for v in found:
        if v.level in ("grid", "microgrid"):
            text = f"{v.severity}: {v.level} {v.code} {v.check}: {v.reason}"
            said.setdefault(v.code[:15], []).append(text)
    micro_count = pd.Series(micro, dtype=object).groupby(level_codes(micro, "grid")).nunique()
    rows = []

    def counts(code: str | None) -> dict:
        m = grid == code if code else np.zeros(len(grid), dtype=bool)
        return {
            "households": float(units.households[m].sum()),
            "population": float(units.population[m].sum()),
            "units": int(m.sum()),
            "microgrids": int(micro_count.get(code, 0)) if code else 0,
            "micro_resolved": bool(code in resolved),
            "flag": flags.flag.get(code, "") if code else "",
            "violations": "; ".join(said.get(code, [])) if code else "",
        }

    for f in range(len(code_of)):
        code = code_of[f]
        took = best == f
        note = rule[f]
        if code is None or not took.any():
            note = (note + "; " if note else "") + "holds no building of the plan"
        elif note and "takes the plan's code" not in note:
            note += f"; placed in community {code[:12]} as {code}"
        rows.append(
            {
                "feature": int(feature[f]),
                "code": code,
                "given_code": given[f],
                "name": names[f] or (placeholder_name("grid", code) if code else None),
                "community": community[f],
                "source": "file",
                **counts(code if took.any() else None),
                "straddling": int((took & (share < WHOLE_SHARE)).sum()),
                "outside": 0,
                "code_kept": not rule[f],
                "code_note": note,
            }
        )
    for g, c in remnant_code.items():
        n_out = int(((best < 0) & (old_grid == g)).sum())
        rows.append(
            {
                "feature": None,
                "code": c,
                "given_code": None,
                "name": plan_names.get(g) or placeholder_name("grid", c),
                "community": c[:12],
                "source": "plan",
                **counts(c),
                "straddling": 0,
                "outside": n_out,
                "code_kept": c == g,
                "code_note": (
                    f"{n_out} unit(s) outside every grid of the file stay in the plan's grid {g}"
                    + ("" if c == g else f", renumbered {c} (the file uses {g} elsewhere)")
                ),
            }
        )
    frame = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    frame["feature"] = frame["feature"].astype("Int64")
    return frame


def changed_grids(
    units: Units,
    before: np.ndarray,
    after: np.ndarray,
    names: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The grids whose units differ between two assignments of the same units.

    Returns
    -------
    pandas.DataFrame
        One row per changed grid, in code order: ``code``, ``name``, ``status`` (changed,
        new or retired), ``units_before``, ``units_after``, ``units_in``, ``units_out``,
        ``households_before`` and ``households_after``.
    """
    names = names or {}
    a = level_codes(before, "grid").astype(str)
    b = level_codes(after, "grid").astype(str)
    moved = a != b
    rows = []
    for code in sorted(set(a[moved]) | set(b[moved])):
        was, now = a == code, b == code
        rows.append(
            {
                "code": code,
                "name": names.get(code, ""),
                "status": "new" if not was.any() else "retired" if not now.any() else "changed",
                "units_before": int(was.sum()),
                "units_after": int(now.sum()),
                "units_in": int((now & ~was).sum()),
                "units_out": int((was & ~now).sum()),
                "households_before": float(units.households[was].sum()),
                "households_after": float(units.households[now].sum()),
            }
        )
    columns = [
        "code",
        "name",
        "status",
        "units_before",
        "units_after",
        "units_in",
        "units_out",
        "households_before",
        "households_after",
    ]
    return pd.DataFrame(rows, columns=columns)
