"""Benchmark: wangge's delineation scaling curve on seeded synthetic streets.

Run:  python bench/bench_delineate.py [--sizes 10000 30000 100000 300000] [--seed 1]

Each size is a synthetic street (data/synthetic.py) of that many households; the time is
the nested solve from atomic units to coded polygons with metrics (tessellation included),
then validation. Peers (spopt, GerryChain) are still to be added to this run.
"""

from __future__ import annotations

import argparse
import time

from wangge.data.synthetic import CITY_DISTRICT, describe, synthetic_street
from wangge.delineate import delineate_units
from wangge.geo.limits import load_limits
from wangge.geo.validate import validate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print("households  buildings  blocks  grids  delineate s  validate s  µs/household  errors")
    for n in args.sizes:
        units = synthetic_street(n, args.seed)
        d = describe(units)
        t = time.perf_counter()
        limits = load_limits(seed=args.seed, district_code=CITY_DISTRICT)
        result = delineate_units(units, "EPSG:4549", limits)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        v = validate(result.layers, result.limits)
        vt = time.perf_counter() - t
        errors = int((v["severity"] == "error").sum())
        print(
            f"{d['households']:>10,}  {d['buildings']:>9,}  {d['blocks']:>6,}  "
            f"{len(result.layers['grids']):>5,}  {dt:>11.2f}  {vt:>10.2f}  "
            f"{1e6 * (dt + vt) / d['households']:>12.0f}  {errors:>6}"
        )


if __name__ == "__main__":
    main()
