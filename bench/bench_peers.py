"""Benchmark: wangge's grid partition against PySAL spopt and GerryChain on the same units.

Run:  pip install -e '.[bench]'
      python bench/bench_peers.py [--units demo 2000 10000 22500] [--timeout 300]
      python bench/bench_peers.py --units clustered:1 clustered:2 clip:beijing beijing \
          --tools wangge "spopt MaxP" "spopt MaxP rook" --rounds 3      # issue 25, item 4

Every tool gets the same atomic units (cells, one per building), the same adjacency (rook,
plus the bridges that join detached clusters, see ``_graph``) and the same household
weights, and is asked for grids of 300–500 households (target 400). The units are the
demo (``demo``), the second shared city (``beijing``), a clipped extract of either cut to
four far-apart windows (``clip:demo``, ``clip:beijing``: ``tests/cities_osm.py``'s
``clustered_variant``), a seeded synthetic clustered district (``clustered:SEED``:
``data/synthetic_clusters.py``) or a seeded synthetic street of about that many cells.
- wangge: geo.partition at the grid level (floor, ceiling and target);
- spopt MaxPHeuristic: floor 300 households (it has no ceiling); ``spopt MaxP rook`` is the
  same on the rook adjacency alone, where spopt joins the clusters under its floor by its
  own links (``policy="single"``), so max-p is measured both ways;
- spopt Skater and AZP: as many regions as wangge made (Skater's floor counts units);
- GerryChain recursive_tree_part: the same count, population target W/k, epsilon 0.25
  (so that 400 ± 25 % is exactly 300–500).
Each tool runs in its own process with a time limit; one that runs out is reported. The
answer is read before the process is joined: a child whose labels outgrow the pipe's buffer
cannot exit before they are read, which once showed as a timeout of every tool on 10,000
units. The processes are spawned, so that no child inherits a parent's threads. A child
imports its tool's modules (and wangge loads its compiled spanning-tree kernel) before the
clock starts, so the time is the tool's work, not Python's imports. With ``--rounds N`` the
tools take turns N times on the same units; the table gives the median of each figure and
the min/median/max time. In band counts every region outside 300–500 as out, a tower over
the ceiling that wangge flags as oversize included.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import time
from pathlib import Path
from queue import Empty

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

LO, HI, TARGET = 300, 500, 400


def units_for(size: str) -> gpd.GeoDataFrame:
    """Cells with households: a shared city, a clipped extract of one, a clustered synthetic
    district, or a synthetic street of about ``size`` cells (see the module's docstring)."""
    from wangge.delineate import load_units
    from wangge.geo.tessellation import tessellate

    root = Path(__file__).resolve().parent.parent
    cities = {"demo": root / "data/demo/nanjing-xinjiekou.osm"}
    cities["beijing"] = root.parent / "shared/data/beijing-cau.osm"
    if size in cities:
        layers, _ = load_units(cities[size])
    elif size.startswith("clip:"):
        import sys
        import tempfile

        sys.path.insert(0, str(root / "tests"))
        from cities_osm import clustered_variant, default_windows

        src = cities[size.split(":", 1)[1]]
        with tempfile.TemporaryDirectory() as tmp:
            path = clustered_variant(src, Path(tmp) / "clipped.osm", default_windows(src))
            layers, _ = load_units(path)
    elif size.startswith("clustered:"):
        from wangge.data.synthetic_clusters import synthetic_clusters

        layers = synthetic_clusters(int(size.split(":", 1)[1]))
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
    """The rook adjacency of the cells, and the bridges that join detached clusters.

    Every tool gets the same graph: where the cells fall apart into clusters (a clipped
    extract), wangge's pipeline joins each to its nearest by one bridge
    (:func:`wangge.geo.delineation.bridge`), and the peers get those bridges too, so that
    all see the same contiguity (spopt would otherwise join only the clusters under its
    floor, by its own links). A connected city gets no bridge.
    """
    from wangge.geo.blocks import touching_edges
    from wangge.geo.delineation import bridge
    from wangge.geo.partition import UnitGraph

    edges = touching_edges(cells.geometry)
    a, b = edges["a"].to_numpy(), edges["b"].to_numpy()
    pts = shapely.centroid(cells.geometry.to_numpy())
    n, m = len(cells), len(a)
    g = UnitGraph(
        *(np.zeros(n) for _ in range(4)),
        np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]),
        a,
        b,
        edges["length_m"].to_numpy(),
        np.zeros(m, np.int8),
        np.zeros(m, bool),
    )
    bridge(g, [np.arange(n)])
    return g.eu, g.ev, g.length, g.along


def run_wangge(cells, k):
    from wangge.geo.partition import Band, SolverParams, UnitGraph, partition

    a, b, length, along = _graph(cells)
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
        along,
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


def _w(cells, rook_only=False):
    from libpysal.weights import W

    a, b, _, along = _graph(cells)
    if rook_only:
        a, b = a[along != 4], b[along != 4]
    nbrs = {i: [] for i in range(len(cells))}
    for i, j in zip(a, b, strict=True):
        nbrs[i].append(j)
        nbrs[j].append(i)
    return W(nbrs, silence_warnings=True)


def run_maxp(cells, k, rook_only=False):
    from spopt.region import MaxPHeuristic

    model = MaxPHeuristic(
        cells,
        _w(cells, rook_only),
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

    a, b, _, _ = _graph(cells)
    graph = nx.Graph()
    for i, h in enumerate(cells["households"]):
        graph.add_node(i, households=float(h))
    graph.add_edges_from(zip(a.tolist(), b.tolist(), strict=True))
    total = cells["households"].sum()
    got = recursive_tree_part(Graph.from_networkx(graph), range(k), total / k, "households", 0.25)
    return np.array([got[i] for i in range(len(cells))])


def run_maxp_rook(cells, k):
    return run_maxp(cells, k, rook_only=True)


TOOLS = {
    "wangge": run_wangge,
    "spopt MaxP": run_maxp,
    "spopt MaxP rook": run_maxp_rook,
    "spopt SKATER": run_skater,
    "spopt AZP": run_azp,
    "GerryChain": run_gerrychain,
}


#: What each tool imports before its clock starts.
#: (Every tool builds the shared graph, whose bridges need ``wangge.geo.delineation`` and
#: ``scipy.spatial``.)
GRAPH = ("wangge.geo.delineation", "wangge.geo.blocks", "scipy.spatial")
WARM = {
    "wangge": ("wangge.geo.partition", *GRAPH),
    "spopt": ("spopt.region", "libpysal.weights", *GRAPH),
    "GerryChain": ("gerrychain", "gerrychain.partition", "networkx", *GRAPH),
}


def _warm(name: str) -> None:
    """Import the tool's modules; for wangge, load its compiled kernel on a 2-unit tree."""
    import importlib

    for module in WARM[name.split()[0]]:
        importlib.import_module(module)
    if name == "wangge":
        from wangge.geo._trees import spanning_tree

        one = np.zeros(1, np.int64)
        spanning_tree(2, one, one + 1, np.ones(1), np.ones(2))


def _child(name, cells, k, queue):
    _warm(name)
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


def _rounds(rows: list[dict]) -> dict:
    """One tool's rounds as one row: the median of each figure, time as min/median/max."""
    frame = pd.DataFrame(rows)
    bad = [x for x in frame["status"] if x != "ok"]
    out = {"tool": rows[0]["tool"], "status": bad[0] if bad else "ok", "rounds": len(rows)}
    sec = frame["seconds"].astype(float)
    out.update({"s min": sec.min(), "s median": sec.median(), "s max": sec.max()})
    for col in frame.columns.drop(["tool", "status", "seconds"]):
        out[col] = frame[col].median()
    if "in band %" in frame and frame["in band %"].nunique() > 1:
        out["in band % range"] = f"{frame['in band %'].min():.1f}–{frame['in band %'].max():.1f}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", nargs="+", default=["demo", "2000", "10000", "22500"])
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS))
    ap.add_argument("--rounds", type=int, default=1, help="turns of every tool, paired")
    args = ap.parse_args()
    pd.set_option("display.width", 250)
    for size in args.units:
        cells = units_for(size)
        k = max(1, round(cells["households"].sum() / TARGET))
        print(
            f"\n== units: {size} ({len(cells):,} cells, "
            f"{cells['households'].sum():,.0f} households, "
            f"{int((cells['households'] > HI).sum())} over {HI}, k = {k})",
            flush=True,
        )
        runs: dict[str, list[dict]] = {name: [] for name in args.tools}
        for _ in range(args.rounds):
            for name in args.tools:
                runs[name].append(measure(name, cells, k, args.timeout))
        table = pd.DataFrame([_rounds(r) for r in runs.values()]).set_index("tool")
        base = table.loc["wangge", "s median"] if "wangge" in table.index else np.nan
        table["× wangge time"] = table["s median"] / base
        print(table.round(2).to_string(), flush=True)


if __name__ == "__main__":
    main()
