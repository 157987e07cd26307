"""Address lookup (issue 24): 10,000 addresses in one batch on the demo, in ≤ 2 s.

The batch is drawn (seeded) from the demo's own OSM names and ``addr:*`` texts, each
written one of the ways a caller writes it (with 江苏省南京市玄武区, full-width digits,
號, a 3栋2单元501室 suffix, one wrong character), and one in five is a place not in the
district. It is sent to ``POST /lookup/addresses`` as CSV, over the app as served (key
check, CSV read, matching, units, CSV answer), once to build the version's index (the
cold figure) and then ``--runs`` times (warm). Run:

    python bench/bench_address.py [--n 10000] [--runs 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from wangge.api.app import create_app
from wangge.api.settings import Settings
from wangge.cli._app import DEMO_OSM
from wangge.data.accounts import make_account, new_key
from wangge.data.addresses import read_osm_names
from wangge.data.gpkg_store import GpkgStore

PREFIX = "江苏省南京市玄武区"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ELSEWHERE = ["北京市海淀区中关村大街", "南京市鼓楼区中山北路", "上海市黄浦区南京东路", "南京南站"]


def variant(text: str, rng: random.Random) -> str:
    """``text`` written one of the ways a caller writes it."""
    pick = rng.randrange(6)
    if pick == 0:
        return PREFIX + text
    if pick == 1:
        return text.translate(FULL_WIDTH)
    if pick == 2:
        return text.replace("号", "號")
    if pick == 3:
        return f"{text}{rng.randint(1, 9)}栋{rng.randint(1, 4)}单元{rng.randint(101, 1802)}室"
    if pick == 4 and len(text) >= 6:
        i = rng.randrange(1, len(text))
        return text[:i] + "口" + text[i + 1 :]
    return text


def batch(n: int, seed: int) -> str:
    rng = random.Random(seed)
    names = read_osm_names(DEMO_OSM)
    texts = names.loc[names["kind"] != "region", "text"].tolist()
    rows = ["id,address"]
    for i in range(n):
        if rng.random() < 0.2:
            q = f"{rng.choice(ELSEWHERE)}{rng.randint(1, 999)}号"
        else:
            q = variant(rng.choice(texts), rng)
        rows.append(f'{i},"{q.replace(chr(34), "")}"')
    return "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from wangge.data.plan import plan_from_frames
    from wangge.delineate import delineate, plan_frames
    from wangge.geo.validate import validate
    from wangge.importing import save_plan

    with tempfile.TemporaryDirectory() as tmp:
        store = GpkgStore(Path(tmp) / "bench.gpkg")
        plan = delineate(DEMO_OSM, district_code="320102")
        frames = plan_frames(plan, validate(plan.layers, plan.limits))
        meta = dict(zip(frames["meta"]["key"], frames["meta"]["value"], strict=True))
        layers = {k: v for k, v in frames.items() if k != "meta"}
        save_plan(store, plan_from_frames(layers, meta, "demo"), "demo", None, "bench", "")
        store.addresses.replace("demo", "osm", read_osm_names(DEMO_OSM), "demo.osm", "bench")
        key = new_key()
        store.book.add(make_account("bench", "viewer", ["320102"]), key)
        body = batch(args.n, args.seed).encode()
        headers = {"Authorization": f"Bearer {key}", "content-type": "text/csv"}
        with TestClient(create_app(Settings(), store)) as client:

            def once() -> tuple[float, str]:
                t0 = time.perf_counter()
                r = client.post("/lookup/addresses?format=csv", content=body, headers=headers)
                assert r.status_code == 200, r.text[:300]
                return time.perf_counter() - t0, r.text

            cold, text = once()
            warm = [once()[0] for _ in range(args.runs)]
        store.close()
    lines = text.splitlines()[1:]
    matched = sum(",matched," in line for line in lines)
    print(f"{args.n:,} addresses (seed {args.seed}): {matched:,} matched")
    print(f"cold (index built): {cold:.2f} s")
    print(f"warm: median {statistics.median(warm):.2f} s, max {max(warm):.2f} s ({args.runs} runs)")


if __name__ == "__main__":
    main()
