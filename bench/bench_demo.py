"""Benchmark: the demo from a cold process to a validated plan (issue 25: ≤ 5 s), paired.

Run:  python bench/bench_demo.py --runs 5 [--base-python VENV/bin/python --base-dir TREE]

Each round runs ``wangge delineate data/demo/nanjing-xinjiekou.osm --district-code 320102``
in a fresh process (the command timed in issues 3 and 22: ingest, delineation,
validation, plan.gpkg, units.gpkg, the GeoJSONs and map.html), once with this checkout
(A) and, given ``--base-python``/``--base-dir``, once with another commit (B: a worktree
installed editable into its own venv, run from inside that tree so that this checkout
does not shadow it). The order alternates between rounds, so that the load of a shared
machine falls on both alike. It prints wall seconds and peak RSS per run, min / median /
max, the paired A/B ratios, the plan's quality figures, and whether A's plan is B's:
the same layers, rows, attributes and geometries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely

ROOT = Path(__file__).resolve().parents[1]
DEMO = "data/demo/nanjing-xinjiekou.osm"


def run_once(python: str, cwd: Path, out: Path) -> tuple[float, float, float]:
    """One cold run: wall seconds, CPU seconds (user + system) and peak RSS (MB) of the
    whole process."""
    cmd = [python, "-m", "wangge", "delineate", DEMO, "--out", str(out)]
    cmd += ["--district-code", "320102"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} (in {cwd}) exited {proc.returncode}:\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def quality(plan: Path) -> dict[str, float]:
    """The figures the issue holds fixed: the share of basic units in band (flagged ones,
    such as vertical micro-grids of one tower, counted as out), compactness (mean
    Polsby-Popper), road share and mean deviation from the target."""
    out = {}
    for level in ("grids", "microgrids"):
        f = pyogrio.read_dataframe(plan, layer=level, read_geometry=False)
        basic = f[f["flag"] != "dedicated"]
        lo, hi = (300, 500) if level == "grids" else (15, 35)
        ok = basic[basic["flag"].fillna("") == ""]["households"]
        out[f"{level}"] = len(basic)
        out[f"{level} in band %"] = 100 * ((ok >= lo) & (ok <= hi)).sum() / max(len(basic), 1)
        out[f"{level} mean PP"] = basic["polsby_popper"].mean()
        out[f"{level} road share %"] = 100 * basic["road_share"].mean()
        out[f"{level} mean |dev| %"] = basic["deviation_pct"].abs().mean()
    return out


def same_plan(a: Path, b: Path) -> list[str]:
    """Differences between two plan.gpkg files (empty when they are the same plan):
    layers, row counts, attributes (floats to 1e-9 relative) and geometries (equal as
    point sets; coordinates within 1 mm otherwise reported)."""
    diffs = []
    la = {n for n, _ in pyogrio.list_layers(a)}
    lb = {n for n, _ in pyogrio.list_layers(b)}
    if la != lb:
        diffs.append(f"layers differ: only A {sorted(la - lb)}, only B {sorted(lb - la)}")
    for name in sorted(la & lb):
        fa = pyogrio.read_dataframe(a, layer=name)
        fb = pyogrio.read_dataframe(b, layer=name)
        if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
            diffs.append(f"{name}: shape {fa.shape} vs {fb.shape}")
            continue
        for col in fa.columns:
            if col == "geometry":
                continue
            x, y = fa[col], fb[col]
            if name == "meta" or col == "attribution":
                continue  # the meta holds the run's own settings and times
            if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
                ok = np.isclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True)
            else:
                ok = ((x == y) | (x.isna() & y.isna())).to_numpy()
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                first = f"{x.iat[i]!r}/{y.iat[i]!r}"
                diffs.append(f"{name}.{col}: {int((~ok).sum())} rows, first {first}")
        if "geometry" in fa:
            ga, gb = fa.geometry.to_numpy(), fb.geometry.to_numpy()
            exact = shapely.equals_exact(shapely.normalize(ga), shapely.normalize(gb), 0.0)
            if not exact.all():
                near = shapely.equals_exact(shapely.normalize(ga), shapely.normalize(gb), 1e-8)
                same = shapely.equals(ga, gb)
                diffs.append(
                    f"{name}.geometry: {int((~exact).sum())} not identical, of which "
                    f"{int((~(near | same)).sum())} differ by more than ~1 mm"
                )
    return diffs


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base-python", help="python of the venv with the other commit (B)")
    ap.add_argument("--base-dir", type=Path, help="the other commit's worktree (B)")
    args = ap.parse_args()
    sides = {"A": (sys.executable, ROOT)}
    if args.base_python:
        sides["B"] = (args.base_python, args.base_dir.resolve())
    work = Path(tempfile.mkdtemp(prefix="bench_demo-"))
    walls: dict[str, list[float]] = {k: [] for k in sides}
    cpus: dict[str, list[float]] = {k: [] for k in sides}
    rss: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(args.runs):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            python, cwd = sides[side]
            wall, cpu, peak = run_once(python, cwd, work / side)
            walls[side].append(wall)
            cpus[side].append(cpu)
            rss[side].append(peak)
        print(
            f"round {r + 1}, load {os.getloadavg()[0]:.1f}: "
            + ", ".join(f"{s} {walls[s][-1]:.2f} s ({cpus[s][-1]:.2f} s CPU)" for s in sides)
        )
    for side in sides:
        print(
            f"{side}: wall {summary(walls[side])} s, CPU {summary(cpus[side])} s, "
            f"peak RSS {max(rss[side]):.0f} MB"
        )
    if "B" in sides:
        for what, v in (("wall", walls), ("CPU", cpus)):
            ratios = [a / b for a, b in zip(v["A"], v["B"], strict=True)]
            print(f"A/B {what}, paired: {summary(ratios)}")
    for side in sides:
        q = quality(work / side / "plan.gpkg")
        print(f"{side} plan: " + ", ".join(f"{k} {v:.3g}" for k, v in q.items()))
    if "B" in sides:
        diffs = same_plan(work / "A" / "plan.gpkg", work / "B" / "plan.gpkg")
        print("A's plan is B's" if not diffs else "plans differ:\n  " + "\n  ".join(diffs))


if __name__ == "__main__":
    main()
