"""Benchmark: rebalancing a city of 10⁶ households after a drift of 2 % of its grids (issue 23).

Run (PostgreSQL 15 + PostGIS on 127.0.0.1:5432; the city plan of ``bench/bench_city.py``):

    python bench/bench_city.py --workers 2 --rounds 1     # the plan bench-city-w2, if missing
    python bench/bench_rebalance_city.py --seeds 1 2 3 --json /tmp/wangge-bench/rebalance_city.json

The goal: rebalancing a 10⁶-household city in which 2 % of grids drifted takes ≤ 60 s on
2 workers. The plan's latest version is loaded once by the editor (the load is timed
apart), then for each drift seed the ``mild`` drift of ``bench/bench_rebalance.py``
(about 2 % of the basic grids, no two neighbours, pushed just out of band: alternately
one block's units gain until the grid holds 520–620 households, or a contiguous run of
its units is cleared until it holds 180–280) is rebalanced through
``wangge.rebalancing.rebalance_version``, as ``wangge rebalance`` and the API run it: a
dry run by default (the check and the repairs, nothing saved), or saved as the next
version with ``--save``. Reported per seed: grids out of band before and after, grids
changed (and ÷ out, and the share of all grids), units moved, what was left unrepaired,
and the seconds of the repairs and of the whole call (new households in, checked
version out). The rebalance runs in one process.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rebalance import drift_mild

from wangge.data.store import open_store
from wangge.editing import Editor
from wangge.geo import assignment as ge
from wangge.rebalancing import rebalance_version


def city_of(state) -> SimpleNamespace:
    """What ``drift_mild`` reads of a city, from a loaded plan state."""
    g = state.units.graph
    grid = ge.level_codes(state.micro, "grid").astype(str)
    flagged = {c for c, f in state.flags.flag.items() if f}
    return SimpleNamespace(
        unit_codes=state.units.codes.astype(str),
        households=np.asarray(state.units.households, dtype=float),
        grid=grid,
        block=state.unit_frame["block_id"].astype(str).to_numpy(),
        eu=g.eu,
        ev=g.ev,
        basic=set(grid) - flagged,
    )


def in_band(units, micro: np.ndarray, state) -> tuple[int, int]:
    """Basic grids in their band, of all basic grids (flagged grids aside)."""
    table = ge.summary(units, micro, "grid")
    flagged = {c for c, f in state.flags.flag.items() if f}
    basic = table[~table.index.isin(flagged)]
    band = state.limits.grid
    ok = (basic["households"] >= band.lo) & (basic["households"] <= band.hi)
    return int(ok.sum()), len(basic)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default="postgresql+psycopg://postgres@127.0.0.1:5432/wangge_bench")
    p.add_argument("--plan", default="bench-city-w2")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--save", action="store_true", help="save each rebalance as a version")
    p.add_argument("--json", default="/tmp/wangge-bench/rebalance_city.json")
    args = p.parse_args()

    store = open_store(args.store)
    editor = Editor(store)
    version = store.resolve(args.plan).version
    t = time.perf_counter()
    state = editor.state(args.plan, version)
    load_s = time.perf_counter() - t
    hh_total = float(np.sum(state.units.households))
    city = city_of(state)
    print(
        f"{args.plan} v{version}: {state.units.n:,} units, {hh_total:,.0f} households,"
        f" {len(city.basic):,} basic grids; loaded in {load_s:.1f} s"
    )
    rows = []
    for seed in args.seeds:
        hh, what = drift_mild(city, seed, state.limits)
        new = pd.Series(hh, index=city.unit_codes)
        t = time.perf_counter()
        done = rebalance_version(editor, args.plan, version, new, dry_run=not args.save)
        call_s = time.perf_counter() - t
        r = done.repairs
        drifted = SimpleNamespace(  # what a summary reads of the units
            households=hh, population=state.units.population, area=state.units.area
        )
        ok, basic = in_band(drifted, r.micro, state)
        row = {
            "seed": seed,
            **what,
            "out_before": len(r.out_before),
            "grids_changed": len(r.changed),
            "changed_per_out": round(len(r.changed) / max(1, len(r.out_before)), 2),
            "changed_pct_of_grids": round(100 * len(r.changed) / len(city.basic), 2),
            "units_moved": len(r.moves),
            "created": len(r.created),
            "retired": len(r.retired),
            "unrepaired": r.unrepaired,
            "basic_in_band_after_pct": round(100 * ok / basic, 2),
            "repairs_s": round(done.edit.timings.get("rebalance", 0) / 1000, 2),
            "call_s": round(call_s, 2),
            "timings_ms": done.edit.timings,
            "saved": bool(done.edit.saved),
        }
        rows.append(row)
        print(
            f"seed {seed}: {row['out_before']} out → {row['grids_changed']} changed"
            f" ({row['changed_per_out']}×, {row['changed_pct_of_grids']} % of grids),"
            f" {row['units_moved']} units moved, in band after"
            f" {row['basic_in_band_after_pct']} %, unrepaired {len(r.unrepaired)};"
            f" {call_s:.1f} s (steps {done.edit.timings})"
        )
        if args.save:
            version = done.edit.version.version
            state = editor.state(args.plan, version)
            city = city_of(state)
    out = {
        "plan": args.plan,
        "units": int(state.units.n),
        "households": hh_total,
        "load_s": round(load_s, 2),
        "machine": platform.node(),
        "runs": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"raw results: {args.json}")


if __name__ == "__main__":
    main()
