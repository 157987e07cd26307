"""A Part 4 write beside the editor's own edit: the same change, saved both ways.

Each round hands one boundary unit of a demo grid to its neighbouring grid twice: once as
a QGIS user would, ``PUT /collections/grids/items/{code}`` with the grid's geometry less
that unit (OGC API – Features Part 4, api/ogc_edits.py), and once as the editor does,
``POST /plans/{id}/edits`` moving the unit; after each, the editor moves it back. Rounds
alternate which goes first, so both meet the same load. The app runs in-process
(TestClient) over each store; the figures are whole requests: reading the body, finding
the units in the geometry and where the leaving ones go, the editor's check, re-dissolve
and save, and the answer.

Reproduce (PostGIS on 127.0.0.1:5432 for the second store):

    python bench/bench_feature_writes.py --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _store(kind: str, tmp: Path, database: str):
    if kind == "gpkg":
        from wangge.data.gpkg_store import GpkgStore

        return GpkgStore(tmp / "store.gpkg")
    from wangge.data.postgis_store import PostgisStore

    return PostgisStore(database)


def run(kind: str, rounds: int, database: str, frames, meta) -> dict[str, list[float]]:
    from apitools import auth
    from fastapi.testclient import TestClient
    from shapely.geometry import mapping, shape
    from test_api_edits import boundary_unit

    from wangge.api.app import create_app
    from wangge.api.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        store = _store(kind, Path(tmp), database)
        plan = f"bench-p4-{uuid.uuid4().hex[:8]}"
        store.save(plan, frames, meta, author="bench")
        app = create_app(Settings(plan=plan), store)
        with TestClient(app, headers=auth(store)) as c:
            b = boundary_unit(c, plan)
            unit, src, dst = b["unit"], b["src"], b["dst"]
            page = c.get("/collections/units/items", params={"limit": 10000}).json()
            cell = next(shape(f["geometry"]) for f in page["features"] if f["id"] == unit)

            def latest() -> int:
                return max(v["version"] for v in c.get(f"/plans/{plan}/versions").json())

            times: dict[str, list[float]] = {"PUT (Part 4)": [], "POST edits": []}
            for r in range(rounds):
                for kind_ in ("PUT (Part 4)", "POST edits")[:: 1 if r % 2 == 0 else -1]:
                    grid = shape(c.get(f"/collections/grids/items/{src}").json()["geometry"])
                    base = latest()
                    t0 = time.perf_counter()
                    if kind_ == "POST edits":
                        body = {"base_version": base, "moves": [{"unit": unit, "to": dst}]}
                        resp = c.post(f"/plans/{plan}/edits", json=body)
                    else:
                        less = grid.difference(cell.buffer(1e-7))
                        body = {"type": "Feature", "geometry": mapping(less), "properties": {}}
                        resp = c.put(f"/collections/grids/items/{src}", json=body)
                    took = (time.perf_counter() - t0) * 1000
                    assert resp.status_code in (200, 201), resp.text
                    assert [m["unit"] for m in resp.json()["moved"]] == [unit], resp.text
                    times[kind_].append(took)
                    back = {"base_version": latest(), "moves": [{"unit": unit, "to": src}]}
                    assert c.post(f"/plans/{plan}/edits", json=back).status_code == 201
        store.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--stores", default="gpkg,postgis")
    ap.add_argument(
        "--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/wangge_bench"
    )
    args = ap.parse_args()
    from wangge.delineate import delineate, plan_frames
    from wangge.geo.validate import validate

    result = delineate(ROOT / "data" / "demo" / "nanjing-xinjiekou.osm", district_code="320102")
    frames = plan_frames(result, validate(result.layers, result.limits))
    table = frames.pop("meta")
    meta = dict(zip(table["key"], table["value"], strict=True))
    for kind in args.stores.split(","):
        times = run(kind, args.rounds, args.database, frames, meta)
        medians = {}
        for name, xs in times.items():
            medians[name] = statistics.median(xs)
            print(
                f"{kind:8s} {name:13s} min {min(xs):6.0f}  median {medians[name]:6.0f}  "
                f"max {max(xs):6.0f} ms  (n={len(xs)})"
            )
        ratio = medians["PUT (Part 4)"] / medians["POST edits"]
        print(f"{kind:8s} Part 4 / editor, medians: {ratio:.2f}")


if __name__ == "__main__":
    main()
