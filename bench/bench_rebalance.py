"""Benchmark: rebalancing after a drift (issue 23) against a fresh delineation of the same data.

Run:  python bench/bench_rebalance.py [--quick] [--households 100000] [--seeds 1 2 3]
                                      [--json out.json] [--no-postgis]

``--quick``: one drift seed and a street of at most 30,000 households (3 minutes, loaded).

Two cities: the demo (``data/demo/nanjing-xinjiekou.osm``, delineated once) and a seeded
synthetic street (``data/synthetic.synthetic_street``, as ``bench/bench_delineate.py``
makes it), each delineated once with seed ``--plan-seed``. Then, for each drift seed, two
drifts of its households (units are never redrawn: a drift rescales the households of
existing units, as a new household table would):

``compounds``
    New compounds: ``max(2, round(0.15 H / 2000))`` blocks of basic grids (each the units
    of one block holding ≥ 150 households in ≥ 4 lived-in units) together gain +15 % of
    the district's households H, each unit in proportion to its own; and a cleared block:
    a contiguous run of units (breadth first on the unit graph from a random unit, basic
    grids only, no compound) loses all its households until −5 % of H is gone.
``mild``
    About 2 % of the basic grids (``max(1, round(0.02 × basic grids))``, no two
    neighbours) pushed just out of band: alternately one block's units inside the grid
    gain until the grid holds 520–620 households, or a contiguous run of the grid's units
    is cleared until it holds 180–280. No other unit changes.

Each drifted table is rebalanced through the store (``wangge.rebalancing.rebalance_version``,
saved as version 2 of a plan of its own, whose version 1 is the base plan) and delineated
afresh from the same units, each building's households scaled as its unit's
(``delineate_units``, the same seed). Both are compared unit by unit with the base plan:
grids out of band before, grids changed (a grid code whose unit set differs, created and
retired codes included), codes changed (units whose grid code differs), households moved
(the new households of those units; and, free of codes, what an optimal one-to-one
matching of old and new grids leaves unmatched), the share of basic grids in band after
(dedicated and oversize-flagged grids aside) and what was left unrepaired. The storage
added by one saved rebalance version, one single-unit edit after it, and the fresh plan
saved whole as the next version, is the GeoPackage file's growth and, when PostGIS
answers on 127.0.0.1:5432 (first drift seed only), the growth of the ``wg_`` tables
(``pg_total_relation_size``) in a throwaway database made and dropped here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix

from wangge.data.synthetic import CITY_DISTRICT, describe, synthetic_street
from wangge.delineate import delineate_units, load_units, write_plan
from wangge.geo import assignment as ge
from wangge.geo.district import district_from_given
from wangge.geo.limits import Limits, load_limits
from wangge.geo.tessellation import cell_of
from wangge.geo.validate import validate

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo" / "nanjing-xinjiekou.osm"
DEMO_DISTRICT = "320102"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Households of one new compound (a typical new 小区) in the +15 % drift.
COMPOUND_HH = 2000.0
out = Console(width=200)


# the cities ---------------------------------------------------------------------------


@dataclass
class City:
    """A delineated city: its unit layers, the base plan and what a drift needs of it."""

    name: str
    layers: dict  # the unit layers delineate_units takes (metric CRS)
    crs: str
    limits: Limits
    plan_path: Path  # the base plan.gpkg
    unit_codes: np.ndarray  # unit codes, in unit order (ascending code)
    households: np.ndarray  # base households per unit
    grid: np.ndarray  # base grid code per unit
    block: np.ndarray  # block id per unit
    eu: np.ndarray  # unit graph edges (positions)
    ev: np.ndarray
    basic: set[str]  # basic grids (not dedicated, not flagged)
    building_unit: np.ndarray  # unit position counting each building's households
    delineate_s: float


def make_city(name: str, layers: dict, crs: str, limits: Limits, work: Path) -> City:
    """Delineate ``layers`` once, write the plan, and read off what a drift needs."""
    t = time.perf_counter()
    result = delineate_units(layers, crs, limits)
    took = time.perf_counter() - t
    violations = validate(result.layers, result.limits)
    path = write_plan(result, violations, work / name)
    units = result.layers["units"]
    order = np.argsort(units["code"].astype(int).to_numpy(), kind="stable")
    units = units.iloc[order].reset_index(drop=True)
    graph = result.layers["unit_edges"]  # positions in the units layer as written
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    grids = result.layers["grids"]
    flagged = set(grids.loc[grids["flag"].fillna("").astype(str) != "", "code"].astype(str))
    cells = result.layers["cells"]
    building_cell = cell_of(cells, layers["buildings"])
    # a unit's code is its cell's id
    unit_at = pd.Series(np.arange(len(units)), index=units["code"].astype(int).to_numpy())
    building_unit = unit_at.reindex(cells["cell_id"].to_numpy()[building_cell]).to_numpy()
    return City(
        name=name,
        layers=layers,
        crs=crs,
        limits=limits,
        plan_path=path,
        unit_codes=units["code"].astype(str).to_numpy(),
        households=units["households"].to_numpy(dtype=float),
        grid=units["grid_code"].astype(str).to_numpy(),
        block=units["block_id"].astype(str).to_numpy(),
        eu=pos[graph["a"].to_numpy()],
        ev=pos[graph["b"].to_numpy()],
        basic=set(grids["code"].astype(str)) - flagged,
        building_unit=building_unit,
        delineate_s=took,
    )


def demo_city(seed: int, work: Path) -> City:
    layers, crs = load_units(DEMO)
    limits = load_limits(seed=seed, district_code=DEMO_DISTRICT)
    limits, _ = district_from_given(limits, layers, DEMO_DISTRICT)
    return make_city("demo", layers, crs, limits, work)


def synthetic_city(households: int, seed: int, work: Path) -> City:
    layers = synthetic_street(households, seed)
    limits = load_limits(seed=seed, district_code=CITY_DISTRICT)
    return make_city(f"synthetic-{households // 1000}k", layers, "EPSG:4549", limits, work)


# the drifts ---------------------------------------------------------------------------


def _neighbours(city: City) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(len(city.unit_codes))]
    for a, b in zip(city.eu, city.ev, strict=True):
        out[a].append(b)
        out[b].append(a)
    return out


def _clear(
    city: City, hh: np.ndarray, start: int, remove: float, allowed: np.ndarray, nbrs
) -> np.ndarray:
    """Empty units breadth first from ``start`` (only ``allowed`` ones) until ``remove``
    households are gone; the last unit loses only what is left to remove. Returns the
    units touched."""
    seen, queue, done, gone = {start}, deque([start]), [], 0.0
    while queue and gone < remove - 1e-9:
        i = queue.popleft()
        take = min(hh[i], remove - gone)
        if take > 0:
            hh[i] -= take
            gone += take
            done.append(i)
        for j in nbrs[i]:
            if j not in seen and allowed[j]:
                seen.add(j)
                queue.append(j)
    return np.array(done, dtype=np.int64)


def _grow(hh: np.ndarray, idx: np.ndarray, add: float) -> None:
    """Add ``add`` households to units ``idx``, each in proportion to its own."""
    w = hh[idx]
    hh[idx] += add * w / w.sum()


def drift_compounds(city: City, seed: int) -> tuple[np.ndarray, dict]:
    """+15 % in a few new compounds (the units of whole blocks) and −5 % in a cleared
    contiguous run of units; basic grids only."""
    rng = np.random.default_rng(seed)
    hh = city.households.copy()
    total = hh.sum()
    in_basic = np.isin(city.grid, list(city.basic))
    frame = pd.DataFrame({"block": city.block, "hh": hh, "lived": hh > 0})
    by_block = frame[in_basic].groupby("block").agg(hh=("hh", "sum"), lived=("lived", "sum"))
    blocks = by_block[(by_block["hh"] >= 150) & (by_block["lived"] >= 4)].index.to_numpy()
    n = max(2, round(0.15 * total / COMPOUND_HH))
    chosen = rng.choice(blocks, n, replace=False)
    grown = np.flatnonzero(np.isin(city.block, chosen) & in_basic & (hh > 0))
    for b in chosen:
        idx = grown[city.block[grown] == b]
        _grow(hh, idx, 0.15 * total / n)
    allowed = in_basic.copy()
    allowed[grown] = False
    start = rng.choice(np.flatnonzero(allowed & (hh > 0)))
    cleared = _clear(city, hh, int(start), 0.05 * total, allowed, _neighbours(city))
    what = {
        "compounds": int(n),
        "compound_units": len(grown),
        "compound_grids": len(set(city.grid[grown])),
        "cleared_units": len(cleared),
        "cleared_grids": len(set(city.grid[cleared])),
        "change_pct": round(100 * (hh.sum() - total) / total, 2),
        "largest_unit": round(float(hh[grown].max()), 1),
    }
    return hh, what


def drift_mild(city: City, seed: int, limits: Limits) -> tuple[np.ndarray, dict]:
    """About 2 % of the basic grids pushed just out of band, alternately over (a block's
    units gain) and under (a contiguous run of units cleared)."""
    rng = np.random.default_rng(seed)
    band = limits.grid
    hh = city.households.copy()
    nbrs = _neighbours(city)
    grid_hh = pd.Series(hh).groupby(city.grid).sum()
    basic = sorted(c for c in city.basic if band.lo <= grid_hh[c] <= band.hi)
    n = max(1, round(0.02 * len(city.basic)))
    touching: dict[str, set[str]] = {}
    for a, b in zip(city.eu, city.ev, strict=True):
        touching.setdefault(city.grid[a], set()).add(city.grid[b])
        touching.setdefault(city.grid[b], set()).add(city.grid[a])
    chosen: list[str] = []
    for g in rng.permutation(basic):
        if len(chosen) == n:
            break
        if any(g in touching.get(c, ()) for c in chosen):
            continue
        chosen.append(str(g))
    for k, g in enumerate(chosen):
        members = np.flatnonzero(city.grid == g)
        now = hh[members].sum()
        if k % 2 == 0:  # over: one block of the grid takes new households
            target = rng.uniform(band.hi + 20, band.hi + 120)
            lived = members[hh[members] > 0]
            by_block = pd.Series(hh[lived]).groupby(city.block[lived]).sum()
            idx = lived[city.block[lived] == by_block.idxmax()]
            _grow(hh, idx, target - now)
        else:  # under: a contiguous run of the grid's units is cleared
            target = rng.uniform(band.lo - 120, band.lo - 20)
            allowed = city.grid == g
            start = rng.choice(members[hh[members] > 0])
            _clear(city, hh, int(start), now - target, allowed, nbrs)
    what = {
        "grids_pushed": len(chosen),
        "change_pct": round(100 * (hh.sum() - city.households.sum()) / city.households.sum(), 2),
    }
    return hh, what


# comparing plans ----------------------------------------------------------------------


def compare(
    grid_a: np.ndarray, grid_b: np.ndarray, hh: np.ndarray, basic_a: set[str]
) -> dict[str, float]:
    """What changed from grid labels ``grid_a`` to ``grid_b`` over the same units."""
    moved = grid_a != grid_b
    sets_a = pd.Series(np.arange(len(grid_a))).groupby(grid_a).apply(frozenset)
    sets_b = pd.Series(np.arange(len(grid_b))).groupby(grid_b).apply(frozenset)
    codes = set(sets_a.index) | set(sets_b.index)
    changed = {c for c in codes if sets_a.get(c) != sets_b.get(c)}
    still = set(sets_b.values)
    redrawn = {c for c in sets_a.index if sets_a[c] not in still}
    # code-free: households left over by the best one-to-one matching of old and new grids
    ca, ia = np.unique(grid_a, return_inverse=True)
    cb, ib = np.unique(grid_b, return_inverse=True)
    overlap = coo_matrix((hh, (ia, ib)), shape=(len(ca), len(cb))).toarray()
    r, c = linear_sum_assignment(-overlap)
    return {
        "grids_changed": len(changed),
        "grids_changed_existing": len(changed & set(sets_a.index)),
        "grids_redrawn": len(redrawn),
        "basic_grids_before": len(basic_a),
        "share_changed_pct": 100 * len(changed) / len(basic_a),
        "units_code_changed": int(moved.sum()),
        "codes_changed_pct": 100 * moved.mean(),
        "households_moved": float(hh[moved].sum()),
        "households_moved_matched": float(hh.sum() - overlap[r, c].sum()),
    }


def in_band(grid_hh: pd.Series, flagged: set[str], band) -> tuple[int, int]:
    basic = grid_hh[~grid_hh.index.isin(list(flagged))]
    return int(((basic >= band.lo) & (basic <= band.hi)).sum()), len(basic)


# storage ------------------------------------------------------------------------------


def pg_bytes(store) -> int:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                    "AND c.relname LIKE 'wg\\_%' AND n.nspname = current_schema()"
                )
            ).scalar()
        )


def size_of(store) -> int:
    path = getattr(store, "path", None)
    return Path(path).stat().st_size if path is not None else pg_bytes(store)


def one_unit_edit(editor, plan_id: str, version: int) -> tuple[str, str] | None:
    """A unit with households on the edge of two basic grids of one community, and the
    grid across the edge."""
    s = editor.state(plan_id, version)
    grid = ge.level_codes(s.micro, "grid")
    g = s.units.graph
    held = {c for c, f in s.flags.flag.items() if f} | set(s.locks)
    for a, b in zip(g.eu, g.ev, strict=True):
        ga, gb = grid[a], grid[b]
        if ga != gb and ga[:12] == gb[:12] and not {ga, gb} & held and s.units.households[a]:
            return str(s.units.codes[a]), gb
    return None


def pg_store():
    """A PostGIS store on a throwaway database, and its name; None when none answers."""
    try:
        import psycopg

        name = f"wangge_bench_rebalance_{os.getpid()}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        from wangge.data.postgis_store import PostgisStore

        return PostgisStore(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"), name
    except Exception as exc:  # no server, no rights, no extension: the figure is skipped
        out.print(f"[yellow]PostGIS not reachable, skipped:[/] {exc}")
        return None, None


def drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# one scenario -------------------------------------------------------------------------


def scenario(
    city: City, kind: str, seed: int, plan, work: Path, stores: dict, pg_too: bool
) -> tuple[dict, dict, list[dict]]:
    """Drift, rebalance (saved on the GeoPackage store, and on PostGIS when ``pg_too``)
    and delineate afresh; returns the two rows and the storage rows."""
    from wangge.data.plan import read_plan
    from wangge.editing import Editor
    from wangge.importing import save_plan
    from wangge.rebalancing import rebalance_version

    limits, band = city.limits, city.limits.grid
    if kind == "compounds":
        hh, what = drift_compounds(city, seed)
    else:
        hh, what = drift_mild(city, seed, limits)
    new = pd.Series(hh, index=city.unit_codes)
    grid_hh = pd.Series(hh).groupby(city.grid).sum()
    out_before = sorted(
        c for c in city.basic if not band.lo <= grid_hh[c] <= band.hi
    )  # the base plan's own flags aside
    common = {"city": city.name, "drift": kind, "seed": seed, **what, "out_before": len(out_before)}

    # rebalance, saved as version 2 of a plan of its own, on each store
    storage = []
    rows = {}
    for store_name, st in stores.items():
        if st is None or (store_name != "GeoPackage" and not pg_too):
            continue
        plan_id = f"{city.name}-{kind}-{seed}"
        s0 = size_of(st)
        t = time.perf_counter()
        save_plan(st, plan, plan_id, None, "bench", "base plan")
        save_s, s1 = time.perf_counter() - t, size_of(st)
        editor = Editor(st)
        editor.state(plan_id, 1)  # loaded first: the time is the rebalance and its save
        t = time.perf_counter()
        done = rebalance_version(editor, plan_id, 1, new, "bench", "bench drift", dry_run=False)
        version_s, s2 = time.perf_counter() - t, size_of(st)
        v = done.edit.version.version
        move = one_unit_edit(editor, plan_id, v)
        t = time.perf_counter()
        edit = editor.edit(plan_id, v, [move], comment="bench: one unit") if move else None
        edit_s, s3 = time.perf_counter() - t, size_of(st)
        storage.append(
            {
                "city": city.name,
                "drift": kind,
                "seed": seed,
                "store": store_name,
                "plan_bytes": s1 - s0,
                "plan_s": save_s,
                "rebalance_bytes": s2 - s1,
                "rebalance_s": version_s,
                "edit_bytes": s3 - s2 if edit is not None else None,
                "edit_s": edit_s if edit is not None else None,
            }
        )
        if store_name != "GeoPackage":
            continue
        r = done.repairs
        errors = [x for x in done.edit.violations if x.get("severity") == "error"]
        s_base, s_new = editor.state(plan_id, 1), editor.state(plan_id, v)
        assert (s_base.units.codes == city.unit_codes).all()
        assert np.allclose(s_new.units.households, hh)
        ga = ge.level_codes(s_base.micro, "grid")
        gb = ge.level_codes(s_new.micro, "grid")
        cmp = compare(ga, gb, hh, city.basic)
        assert cmp["grids_changed"] == len(r.changed), (cmp["grids_changed"], len(r.changed))
        after = pd.Series(hh).groupby(gb).sum()
        flagged = {c for c, f in r.flags.flag.items() if f and len(c) == 15}
        ok, basic_after = in_band(after, flagged, band)
        # every grid not changed keeps its units under its code
        sets_a = pd.Series(np.arange(len(ga))).groupby(ga).apply(frozenset)
        sets_b = pd.Series(np.arange(len(gb))).groupby(gb).apply(frozenset)
        lost = [c for c in sets_a.index if c not in r.changed and sets_b.get(c) != sets_a[c]]
        try:  # the change report of the two stored versions (wangge changes)
            from wangge.changes import changes

            report = changes(editor, plan_id, 1, v).summary
            report = {"report_grid": report["grid"], "report_units_moved": report["units_moved"]}
        except Exception as exc:  # the report is in the works beside this benchmark
            report = {"report_error": repr(exc)}
        rows["rebalance"] = {
            **common,
            "method": "rebalance",
            **cmp,
            "changed_per_out": len(r.changed) / max(1, len(r.out_before)),
            "out_before_tool": len(r.out_before),
            "created": len(r.created),
            "retired": len(r.retired),
            "micro_only": len(r.micro_changed),
            "in_band_after_pct": 100 * ok / basic_after,
            "basic_after": basic_after,
            "flagged_after": len(flagged),
            "unrepaired_grids": {
                c: f"{after.get(c, 0):g} households: {why}"
                for c, why in r.unrepaired.items()
                if len(c) == 15
            },
            "unrepaired_communities": {c: w for c, w in r.unrepaired.items() if len(c) == 12},
            "kept_codes_broken": len(lost),
            "steps": r.steps,
            "s": done.edit.timings.get("rebalance", float("nan")) / 1000,  # ms there
            "version_s": version_s,
            "timings_ms": done.edit.timings,
            "errors": len(errors),
            "errors_not_reported": len([x for x in errors if x.get("code") not in r.unrepaired]),
            **report,
        }

    # a fresh delineation of the same units, each building's households scaled as its unit's
    ratio = np.divide(hh, city.households, out=np.zeros_like(hh), where=city.households > 0)
    layers = dict(city.layers)
    scale = ratio[city.building_unit]
    b = layers["buildings"].copy()
    b["households"] = b["households"].to_numpy(dtype=float) * scale
    b["population"] = b["population"].to_numpy(dtype=float) * scale
    layers["buildings"] = b
    t = time.perf_counter()
    fresh = delineate_units(layers, city.crs, limits)
    fresh_s = time.perf_counter() - t
    t = time.perf_counter()
    violations = validate(fresh.layers, fresh.limits)
    validate_s = time.perf_counter() - t
    units = fresh.layers["units"]
    units = units.iloc[np.argsort(units["code"].astype(int).to_numpy(), kind="stable")]
    assert (units["code"].astype(str).to_numpy() == city.unit_codes).all()
    assert np.allclose(units["households"].to_numpy(dtype=float), hh)
    gb = units["grid_code"].astype(str).to_numpy()
    cmp = compare(city.grid, gb, hh, city.basic)
    grids = fresh.layers["grids"]
    flagged = set(grids.loc[grids["flag"].fillna("").astype(str) != "", "code"].astype(str))
    ok, basic_after = in_band(pd.Series(hh).groupby(gb).sum(), flagged, band)
    kept_grids = set(city.grid) & set(gb)
    rows["fresh"] = {
        **common,
        "method": "fresh",
        **cmp,
        "changed_per_out": cmp["grids_changed"] / max(1, len(out_before)),
        "created": len(set(gb) - set(city.grid)),
        "retired": len(set(city.grid) - set(gb)),
        "codes_in_both": len(kept_grids),
        "in_band_after_pct": 100 * ok / basic_after,
        "basic_after": basic_after,
        "flagged_after": len(flagged),
        "unrepaired_grids": {
            c: f"{hh[gb == c].sum():g} households"
            for c in sorted(set(gb) - flagged)
            if not band.lo <= hh[gb == c].sum() <= band.hi
        },
        "s": fresh_s,
        "version_s": fresh_s + validate_s,
        "errors": int((violations["severity"] == "error").sum()),
    }
    # the fresh plan saved whole, as the next version of the plan on each store (a plan
    # with an error-level violation is refused, as `wangge import` refuses it)
    if rows["fresh"]["errors"] == 0:
        fresh_plan = read_plan(write_plan(fresh, violations, work / f"fresh-{kind}-{seed}"))
        plan_id = f"{city.name}-{kind}-{seed}"
        for row in storage:
            st = stores[row["store"]]
            s0 = size_of(st)
            t = time.perf_counter()
            save_plan(st, fresh_plan, plan_id, st.latest(plan_id), "bench", "fresh delineation")
            row["fresh_bytes"] = size_of(st) - s0
            row["fresh_s"] = time.perf_counter() - t
    return rows["rebalance"], rows["fresh"], storage


# output -------------------------------------------------------------------------------


def table(rows: list[dict]) -> Table:
    t = Table(title="Rebalance against a fresh delineation of the same drifted data")
    cols = [
        ("city", "city"),
        ("drift", "drift"),
        ("seed", "seed"),
        ("method", "method"),
        ("out", "out_before"),
        ("changed", "grids_changed"),
        ("of them new", "created"),
        ("ch/out", "changed_per_out"),
        ("ch % grids", "share_changed_pct"),
        ("units re-coded %", "codes_changed_pct"),
        ("hh moved", "households_moved"),
        ("hh moved (matched)", "households_moved_matched"),
        ("grids redrawn", "grids_redrawn"),
        ("in band after %", "in_band_after_pct"),
        ("unrepaired", "unrepaired_grids"),
        ("errors unreported", "errors_not_reported"),
        ("s", "s"),
        ("s with save/validate", "version_s"),
    ]
    for name, _ in cols:
        t.add_column(name, justify="left" if name in ("city", "drift", "method") else "right")
    for r in rows:
        cells = []
        for _, key in cols:
            v = r.get(key)
            if isinstance(v, list | dict):
                v = len(v)
            if v is None:
                v = "–"
            if isinstance(v, float):
                v = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
            cells.append(str(v))
        t.add_row(*cells)
    return t


def storage_table(rows: list[dict]) -> Table:
    t = Table(title="Storage added per save")
    for name in ("city", "drift", "seed", "store", "base plan", "rebalance", "1-unit edit"):
        t.add_column(name, justify="right")
    t.add_column("fresh plan", justify="right")
    for r in rows:
        fresh = r.get("fresh_bytes")

        def kb(b, s):
            return "–" if b is None else f"{b / 1024:,.0f} kB ({s:.2f} s)"

        t.add_row(
            r["city"],
            r["drift"],
            str(r["seed"]),
            r["store"],
            kb(r["plan_bytes"], r["plan_s"]),
            kb(r["rebalance_bytes"], r["rebalance_s"]),
            kb(r["edit_bytes"], r["edit_s"] or 0),
            kb(fresh, r.get("fresh_s", 0)),
        )
    return t


def summary(rows: list[dict]) -> Table:
    """Medians over seeds, rebalance beside fresh, per city and drift."""
    frame = pd.DataFrame(rows)
    t = Table(title="Medians over the seeds (rebalance | fresh delineation)")
    keys = [
        ("out before", "out_before"),
        ("grids changed", "grids_changed"),
        ("changed / out", "changed_per_out"),
        ("changed % of basic grids", "share_changed_pct"),
        ("units re-coded %", "codes_changed_pct"),
        ("households moved", "households_moved"),
        ("in band after %", "in_band_after_pct"),
        ("s", "s"),
    ]
    t.add_column("city / drift")
    for name, _ in keys:
        t.add_column(name, justify="right")
    for (city, drift), g in frame.groupby(["city", "drift"], sort=False):
        cells = []
        for _, k in keys:
            a = g.loc[g["method"] == "rebalance", k].median()
            b = g.loc[g["method"] == "fresh", k].median()
            fmt = "{:,.0f}" if max(abs(a), abs(b)) >= 100 else "{:.2f}"
            cells.append(f"{fmt.format(a)} | {fmt.format(b)}")
        t.add_row(f"{city} / {drift}", *cells)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, a 30,000-household street")
    ap.add_argument("--households", type=int, default=100_000, help="the synthetic street")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="drift seeds")
    ap.add_argument("--plan-seed", type=int, default=1, help="seed of both delineations")
    ap.add_argument("--no-demo", action="store_true")
    ap.add_argument("--no-postgis", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.households = args.seeds[:1], min(args.households, 30_000)
    rows, storage, cities = [], [], []
    load = os.getloadavg()
    pg, pg_name = (None, None) if args.no_postgis else pg_store()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            from wangge.data.gpkg_store import GpkgStore
            from wangge.data.plan import read_plan

            makers = [] if args.no_demo else [lambda: demo_city(args.plan_seed, work)]
            makers.append(lambda: synthetic_city(args.households, args.plan_seed, work))
            for make in makers:
                with out.status("delineating the base plan"):
                    city = make()
                plan = read_plan(city.plan_path)
                info = {
                    "city": city.name,
                    "units": len(city.unit_codes),
                    "households": float(city.households.sum()),
                    "grids": len(set(city.grid)),
                    "basic_grids": len(city.basic),
                    "delineate_s": city.delineate_s,
                }
                if city.name.startswith("synthetic"):
                    info.update(describe(city.layers).to_dict())
                cities.append(info)
                out.print(info)
                gpkg = GpkgStore(work / f"{city.name}-store.gpkg")
                stores = {"GeoPackage": gpkg, "PostGIS": pg}
                try:
                    for kind in ("compounds", "mild"):
                        for seed in args.seeds:
                            with out.status(f"{city.name} {kind} seed {seed}"):
                                first = seed == args.seeds[0]
                                a, b, s = scenario(city, kind, seed, plan, work, stores, first)
                            rows += [a, b]
                            storage += s
                            out.print(table([a, b]))
                finally:
                    gpkg.close()
    finally:
        if pg is not None:
            pg.close()
            drop_pg(pg_name)
    out.print(table(rows))
    out.print(summary(rows))
    out.print(storage_table(storage))
    if args.json:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                    "commit": commit,
                    "machine": f"{os.cpu_count()} cores, {platform.platform()}",
                    "load_at_start": load,
                    "load_at_end": os.getloadavg(),
                    "cities": cities,
                    "rows": rows,
                    "storage": storage,
                },
                indent=1,
                default=str,
                ensure_ascii=False,
            )
        )
        out.print(f"written {args.json}")


if __name__ == "__main__":
    main()
