"""Benchmark: wangge's grid partition against PySAL spopt and GerryChain on the same units.

Run:  pip install -e '.[bench]'
      python bench/bench_peers.py [--units demo 2000 10000 22500] [--timeout 300]

Every tool gets the same atomic units (cells, one per building, from the demo or a seeded
synthetic street), the same rook adjacency and the same household weights, and is asked
for grids of 300–500 households (target 400):
- wangge: geo.partition at the grid level (floor, ceiling and target);
- spopt MaxPHeuristic: floor 300 households (it has no ceiling);
- spopt Skater and AZP: as many regions as wangge made (Skater's floor counts units);
- GerryChain recursive_tree_part: the same count, population target W/k, epsilon 0.25
  (so that 400 ± 25 % is exactly 300–500).
Each tool runs in its own process with a time limit; one that runs out is reported. The
answer is read before the process is joined: a child whose labels outgrow the pipe's buffer
cannot exit before they are read, which once showed as a timeout of every tool on 10,000
units. The processes are spawned, so that no child inherits a parent's threads.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import time
from queue import Empty

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

LO, HI, TARGET = 300, 500, 400


def units_for(size: str) -> gpd.GeoDataFrame:
    """Cells with households for the demo, or a synthetic street of about ``size`` cells."""
    from wangge.delineate import load_units
    from wangge.geo.tessellation import tessellate

    if size == "demo":
        from wangge.cli import DEMO_OSM

        layers, _ = load_units(DEMO_OSM)
    else:
        from wangge.data.synthetic import synthetic_street

        # households per cell vary with the generator's mix: one correction step lands
        # the cell count within a few per cent of the size asked for
        want = int(size)
        layers = synthetic_street(want * 17, seed=1)
        per_cell = layers["buildings"]["households"].sum() / len(layers["buildings"])
        layers = synthetic_street(int(want * per_cell), seed=1)
    cells = tessellate(layers["blocks"], layers["buildings"])
    hh = layers["buildings"].set_index("building_id")["households"]
    cells["households"] = hh.reindex(cells["building_id"]).fillna(0).to_numpy()
    return cells


def _graph(cells):
    from wangge.geo.blocks import touching_edges

    edges = touching_edges(cells.geometry)
    return edges["a"].to_numpy(), edges["b"].to_numpy(), edges["length_m"].to_numpy()


def run_wangge(cells, k):
    from wangge.geo.partition import Band, SolverParams, UnitGraph, partition

    a, b, length = _graph(cells)
    geoms = cells.geometry.to_numpy()
    pts = shapely.centroid(geoms)
    hh = cells["households"].to_numpy(float)
    g = UnitGraph(
        hh,
        hh * 2.62,
        shapely.area(geoms),
        shapely.length(geoms),
        np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]),
        a,
        b,
        length,
        np.zeros(len(a), np.int8),
        np.zeros(len(a), bool),
    )
    parts, _ = partition(
        g,
        np.arange(len(cells)),
        hh,
        Band("grid", LO, HI, TARGET),
        SolverParams(),
        np.random.default_rng(0),
    )
    labels = np.empty(len(cells), int)
    for i, p in enumerate(parts):
        labels[p.units] = i
    return labels


def _w(cells):
    from libpysal.weights import W

    a, b, _ = _graph(cells)
    nbrs = {i: [] for i in range(len(cells))}
    for i, j in zip(a, b, strict=True):
        nbrs[i].append(j)
        nbrs[j].append(i)
    return W(nbrs, silence_warnings=True)


def run_maxp(cells, k):
    from spopt.region import MaxPHeuristic

    model = MaxPHeuristic(
        cells,
        _w(cells),
        ["households"],
        "households",
        LO,
        top_n=2,
        max_iterations_construction=10,
        max_iterations_sa=2,
    )
    model.solve()
    return np.asarray(model.labels_)


def run_skater(cells, k):
    from spopt.region import Skater

    model = Skater(cells, _w(cells), ["households"], n_clusters=k, floor=1)
    model.solve()
    return np.asarray(model.labels_)


def run_azp(cells, k):
    from spopt.region import AZP

    model = AZP(cells, _w(cells), ["households"], n_clusters=k, random_state=0)
    model.solve()
    return np.asarray(model.labels_)


def run_gerrychain(cells, k):
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition import recursive_tree_part

    a, b, _ = _graph(cells)
    graph = nx.Graph()
    for i, h in enumerate(cells["households"]):
        graph.add_node(i, households=float(h))
    graph.add_edges_from(zip(a.tolist(), b.tolist(), strict=True))
    total = cells["households"].sum()
    got = recursive_tree_part(Graph.from_networkx(graph), range(k), total / k, "households", 0.25)
    return np.array([got[i] for i in range(len(cells))])


TOOLS = {
    "wangge": run_wangge,
    "spopt MaxP": run_maxp,
    "spopt SKATER": run_skater,
    "spopt AZP": run_azp,
    "GerryChain": run_gerrychain,
}


def _child(name, cells, k, queue):
    t = time.perf_counter()
    try:
        labels = TOOLS[name](cells, k)
        queue.put(("ok", time.perf_counter() - t, labels))
    except Exception as exc:  # report any peer failure as its result
        queue.put(
            ("failed: " + type(exc).__name__ + ": " + str(exc)[:80], time.perf_counter() - t, None)
        )


def measure(name, cells, k, timeout):
    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_child, args=(name, cells, k, queue))
    proc.start()
    # read before joining: a child whose answer is larger than the pipe's buffer (the
    # labels of 10,000 units) cannot exit until it has been read
    try:
        status, seconds, labels = queue.get(timeout=timeout)
    except Empty:
        proc.kill()
        return {"tool": name, "status": f"timeout > {timeout:g} s", "seconds": np.nan}
    proc.join()
    row = {"tool": name, "status": status, "seconds": seconds}
    if labels is not None:
        row.update(score(cells, labels))
    return row


def score(cells, labels) -> dict:
    frame = cells.assign(region=labels)
    hh = frame.groupby("region")["households"].sum()
    geoms = frame.dissolve("region").geometry
    pp = 4 * math.pi * geoms.area / geoms.length**2
    return {
        "regions": len(hh),
        "in floor %": 100 * (hh >= LO).mean(),
        "in ceiling %": 100 * (hh <= HI).mean(),
        "in band %": 100 * ((hh >= LO) & (hh <= HI)).mean(),
        "mean |dev| %": 100 * (hh - TARGET).abs().mean() / TARGET,
        "mean PP": pp.mean(),
        "min PP": pp.min(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", nargs="+", default=["demo", "2000", "10000", "22500"])
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS))
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    for size in args.units:
        cells = units_for(size)
        k = max(1, round(cells["households"].sum() / TARGET))
        print(
            f"\n== units: {size} ({len(cells):,} cells, "
            f"{cells['households'].sum():,.0f} households, k = {k})"
        )
        rows = [measure(name, cells, k, args.timeout) for name in args.tools]
        table = pd.DataFrame(rows).set_index("tool")
        base = table.loc["wangge", "seconds"] if "wangge" in table.index else np.nan
        table["× wangge time"] = table["seconds"] / base
        print(table.round(2).to_string())


if __name__ == "__main__":
    main()
