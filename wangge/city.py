"""A whole city: its streets as tasks on Dask distributed, their results in the store.

``wangge city`` runs in three steps (docs/ARCHITECTURE.md, "A city"):

1. **Cut** (the client, once). The city's inputs are read once: a units.gpkg made by
   ``wangge ingest --streets`` (or a synthetic city), or an OSM file with the given streets
   and communities. They are cut into one file per street under ``RUN_DIR/cuts``: the
   street's blocks, buildings and roads (units), or its OSM features with a halo of
   ``CUT_HALO_M`` and its given boundaries (OSM). Each building goes to exactly one street,
   the one holding its representative point, as ``wangge ingest`` decides. Each cut is
   hashed; the run table (:mod:`wangge.data.runs`) says which streets are already done on
   the same inputs, and only the others run.
2. **Streets** (the workers). One task per street carries its code and its cut's path,
   never a GeoDataFrame: :func:`street_task` reads the cut, ingests it (OSM) and
   delineates it inside its street, validates it, writes its layers to the store and marks
   it done in one transaction, and returns a small status. A street that raises is marked
   failed with its error and the others go on; a task whose worker dies is run again
   elsewhere (Dask reschedules it; ``retries`` covers the rest).
3. **Assemble** (the client). When every street is done, the parts become the plan's next
   version in street-code order, so the result does not depend on the number of workers
   or the order in which streets finished. Unit codes and unit-graph positions are offset
   street by street, so the city plan is editable like any other.

The work is spread by ``dask.distributed`` (:mod:`wangge.city_runner`): a LocalCluster
with one single-threaded worker process per core by default, an address (``--scheduler
tcp://HOST:PORT``) of a running cluster whose workers see the same run directory and
store, or ``workers=0`` to run every street in this process (for debugging, and as the
reference the tests compare with).
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from wangge.city_runner import error_text, load_cut, run_tasks, worker_name, write_cuts
from wangge.data.runs import StreetRun
from wangge.data.store import Rows, Version, flatten, open_store
from wangge.errors import InputError

#: How far around a street its OSM features are kept (m): the roads that close its
#: blocks and the land use that marks its dedicated sites.
CUT_HALO_M = 150.0
#: Unit layers cut per street (as a units.gpkg holds them).
_LINE_LAYERS = ("roads", "barriers")
#: Plan layers taken from each street; a street's ``meta`` is replaced by the city's.
_SKIP = ("meta",)


@dataclass
class CityResult:
    """What a city run did: the version it saved (None when streets are left to do), the
    streets it ran and skipped, the table of every street, and its timings."""

    run_id: str
    version: Version | None
    ran: list[str]
    skipped: list[str]
    streets: list[StreetRun]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[StreetRun]:
        return [s for s in self.streets if s.state != "done"]


# 1. cut --------------------------------------------------------------------------------


def cut_units(units: dict[str, pd.DataFrame], crs: str) -> dict[str, dict]:
    """A city's units (metric, blocks labelled with ``street_row``) cut into one units
    dict per given street, keyed by the street's code, each with its street as row 0."""
    if "given_streets" not in units or "street_row" not in units["blocks"]:
        raise InputError(
            "a city needs its streets: run `wangge ingest --streets FILE` (or --communities) "
            "first, or give --streets with the OSM file",
            where="given_streets",
        )
    streets = units["given_streets"].reset_index(drop=True)
    codes = _street_codes(streets)
    blocks = units["blocks"]
    comms = units.get("given_communities")
    buildings = units["buildings"]
    b_of = buildings.groupby("block_id").indices
    adjacency = units["adjacency"]
    street_of_block = dict(zip(blocks["block_id"], blocks["street_row"], strict=True))
    a_street = adjacency["block_a"].map(street_of_block).to_numpy()
    b_street = adjacency["block_b"].map(street_of_block).to_numpy()
    lines = {n: units[n] for n in _LINE_LAYERS}
    trees = {n: shapely.STRtree(f.geometry.to_numpy()) for n, f in lines.items()}
    landuse = units.get("landuse")
    out = {}
    for row, code in enumerate(codes):
        mine = blocks[blocks["street_row"].to_numpy() == row].copy()
        if not len(mine):
            continue
        ids = [i for b in mine["block_id"] for i in b_of.get(b, [])]
        part = {
            "blocks": mine,
            "buildings": buildings.iloc[np.sort(np.asarray(ids, dtype=int))],
            "adjacency": adjacency[(a_street == row) & (b_street == row)],
            "given_streets": streets.iloc[[row]].reset_index(drop=True),
        }
        mine["street_row"] = 0
        if comms is not None and "community_row" in mine:
            keep = np.flatnonzero(comms["street_row"].to_numpy() == row)
            remap = {old: new for new, old in enumerate(keep)}
            mine["community_row"] = mine["community_row"].map(remap).astype(int)
            part["given_communities"] = comms.iloc[keep].reset_index(drop=True).assign(street_row=0)
        geom = shapely.union_all(mine.geometry.to_numpy())
        reach = shapely.buffer(geom, CUT_HALO_M)
        for name, frame in lines.items():
            hit = np.sort(trees[name].query(reach, predicate="intersects"))
            part[name] = frame.iloc[hit]
        compound_ids = set(part["buildings"]["compound_id"].dropna()) | set(
            mine["compound_id"].dropna()
        )
        part["compounds"] = units["compounds"][units["compounds"]["compound_id"].isin(compound_ids)]
        if landuse is not None:
            part["landuse"] = landuse[landuse.intersects(reach)]
        part["study_area"] = gpd.GeoDataFrame(
            {"area_km2": [geom.area / 1e6]}, geometry=[geom], crs=crs
        )
        out[code] = {"kind": "units", "units": part, "crs": crs}
    return out


def cut_osm(
    source: str | Path,
    streets: str | Path | None,
    communities: str | Path | None,
    boundary_coords: str = "wgs84",
    encoding: str = "utf-8",
    boundary_crs: str | None = None,
    work_dir: Path | None = None,
) -> tuple[dict[str, dict], str, pd.DataFrame]:
    """An OSM file read once and cut per given street (its features within
    ``CUT_HALO_M``; its buildings by representative point), with each street's cleaned
    boundary (and communities) written as GeoJSON under ``work_dir`` for its worker.

    Returns the cuts by street code, the city's metric CRS, and the city-level findings
    (the given files' repairs; buildings in no street)."""
    from wangge.data import osm as osm_reader
    from wangge.data.osm import OsmExtract
    from wangge.geo.crs import metric_crs
    from wangge.given import read_given

    if streets is None and communities is None:
        raise InputError("a city from an OSM file needs --streets or --communities", source)
    extract = osm_reader.read_osm(source)
    if not len(extract.buildings):
        raise InputError("the OSM file holds no buildings", source)
    c = shapely.union_all(shapely.envelope(extract.buildings.geometry.to_numpy())).centroid
    crs = metric_crs(c.x, c.y)
    given = read_given(streets, communities, crs, boundary_coords, encoding, boundary_crs)
    codes = _street_codes(given.streets)
    zones = given.zones.to_crs(4326)
    street_of_zone = given.street_of_zone()
    pts = shapely.point_on_surface(extract.buildings.geometry.to_numpy())
    zi, bi = shapely.STRtree(pts).query(zones.geometry.to_numpy(), predicate="contains")
    street_of_building = np.full(len(pts), -1)
    street_of_building[bi] = street_of_zone[zi]
    findings = [given.findings]
    lost = int((street_of_building < 0).sum())
    if lost:
        findings.append(
            pd.DataFrame(
                {
                    "kind": ["building_outside"],
                    "level": ["street"],
                    "detail": [f"{lost} building(s) lie in no given street; left out"],
                }
            )
        )
    work_dir = Path(work_dir or ".")
    metric_streets = given.streets
    frames = {
        n: getattr(extract, n) for n in ("roads", "barriers", "landuse", "compounds", "facilities")
    }
    trees = {n: shapely.STRtree(f.geometry.to_numpy()) for n, f in frames.items()}
    out = {}
    for row, code in enumerate(codes):
        mine = np.flatnonzero(street_of_building == row)
        if not len(mine):
            continue
        reach = (
            gpd.GeoSeries([metric_streets.geometry.iat[row].buffer(CUT_HALO_M)], crs=crs)
            .to_crs(4326)
            .iat[0]
        )
        cut = {
            n: f.iloc[np.sort(trees[n].query(reach, predicate="intersects"))]
            for n, f in frames.items()
        }
        part = OsmExtract(
            source=Path(source), buildings=extract.buildings.iloc[mine], **cut, stats={}
        )
        folder = work_dir / "given" / code
        folder.mkdir(parents=True, exist_ok=True)
        street_file = folder / "street.geojson"
        _write_given(metric_streets.iloc[[row]], street_file)
        comm_file = None
        if given.communities is not None:
            sub = given.communities[given.communities["street_row"].to_numpy() == row]
            comm_file = folder / "communities.geojson"
            _write_given(sub, comm_file)
        out[code] = {
            "kind": "osm",
            "extract": part,
            "crs": crs.to_string(),
            "streets": str(street_file),
            "communities": None if comm_file is None else str(comm_file),
        }
    kept = [f for f in findings if len(f)]
    found = pd.concat(kept, ignore_index=True) if kept else None
    return out, crs.to_string(), found


def _write_given(frame: gpd.GeoDataFrame, path: Path) -> None:
    cols = [c for c in ("code", "name", "households", "population") if c in frame]
    frame[[*cols, frame.geometry.name]].to_crs(4326).to_file(path, driver="GeoJSON")


def _street_codes(streets: pd.DataFrame) -> list[str]:
    """The given streets' codes; a street without one gets its row, zero-padded."""
    codes = []
    for row, code in enumerate(streets["code"] if "code" in streets else [None] * len(streets)):
        codes.append(str(code) if isinstance(code, str) and code else f"row{row + 1:04d}")
    dup = pd.Series(codes)[pd.Series(codes).duplicated()]
    if len(dup):
        raise InputError(f"street code {dup.iat[0]} is given twice", where="given_streets")
    return codes


def _street_name(cut: dict) -> str:
    if cut["kind"] == "units":
        frame = cut["units"]["given_streets"]
        name = frame["name"].iat[0] if "name" in frame else None
        return str(name) if isinstance(name, str) else ""
    return ""


# 2. one street, on a worker ------------------------------------------------------------

_STORES: dict[str, Any] = {}


def _store(url: str):
    """One open store per worker process and URL (engines are pooled)."""
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = open_store(url)
    return store


def street_task(spec: dict) -> dict:
    """Delineate one street from its cut, write its layers to the store, return a status.

    ``spec`` holds plain values only: the run and street ids, the cut's path and hash, the
    store's URL and the limits. Whatever goes wrong in the street itself is caught, stored
    as the street's error and returned as ``failed``; only a lost worker escapes, and Dask
    runs the task again.
    """
    run_id, code = spec["run_id"], spec["street"]
    start = time.perf_counter()
    store = _store(spec["store"])
    worker = worker_name()
    if not store.runs.begin(run_id, code, worker, spec["hash"]):
        return {"street": code, "state": "done", "worker": worker, "again": True}
    figures: dict[str, Any] = {}
    try:
        flat, figures = draw_street(spec)
        figures["seconds"] = round(time.perf_counter() - start, 3)
        figures["peak_rss_mb"] = _peak_rss_mb()
        store.runs.finish(run_id, code, spec["hash"], spec["stage"], flat, figures)
        return {"street": code, "state": "done", "worker": worker, **figures}
    except Exception as exc:  # a street's failure is its own: reported, the others go on
        detail = error_text(exc)
        figures = {"seconds": round(time.perf_counter() - start, 3), "peak_rss_mb": _peak_rss_mb()}
        store.runs.fail(run_id, code, detail, figures)
        return {"street": code, "state": "failed", "worker": worker, "error": detail, **figures}


def draw_street(spec: dict) -> tuple[dict[str, Rows], dict[str, Any]]:
    """The plan layers of one street (flattened for the store) and its figures."""
    from wangge.delineate import delineate_units, plan_frames
    from wangge.geo.limits import limits_from_raw
    from wangge.geo.validate import validate

    cut = load_cut(spec)
    if cut["kind"] == "osm":
        units, crs = _ingest_cut(cut)
    else:
        units, crs = cut["units"], cut["crs"]
    limits = limits_from_raw(json.loads(spec["limits_json"]), spec["cut"])
    result = delineate_units(units, crs, limits)
    violations = validate(result.layers, result.limits)
    frames = plan_frames(result, violations)
    frames["units"], frames["unit_edges"] = _city_unit_codes(
        frames["units"], frames["unit_edges"], spec["street"]
    )
    flat = {
        name: _flatten_marked(name, f, spec["street"])
        for name, f in frames.items()
        if name not in _SKIP
    }
    grids = result.layers["grids"]
    flagged = grids["flag"].fillna("").astype(str).str.len().gt(0) if "flag" in grids else None
    figures = {
        "households": int(result.layers["buildings"]["households"].sum()),
        "grids": len(grids),
        "flagged": int(flagged.sum()) if flagged is not None else 0,
        "errors": int((violations["severity"] == "error").sum()),
    }
    return flat, figures


#: A street's unit codes: the street's number times this, plus the unit's own.
UNIT_SPAN = 10**7


def _street_number(code: str) -> int:
    """The number a street's unit codes start from: its code's digits (``row0007`` for
    a street the file left uncoded)."""
    digits = "".join(ch for ch in code if ch.isdigit())
    return int(digits or 0)


def _city_unit_codes(units: pd.DataFrame, edges: pd.DataFrame, street: str):
    """Unit codes unique in the city, whoever draws the other streets: the street's
    number × ``UNIT_SPAN`` + the unit's; the unit graph's ends (positions in a street's
    plan, equal to its unit codes) shifted alike. The editor maps codes to positions."""
    base = _street_number(street) * UNIT_SPAN
    units = units.assign(code=(units["code"].astype(np.int64) + base).astype(str))
    edges = edges.assign(a=edges["a"].astype(np.int64) + base, b=edges["b"].astype(np.int64) + base)
    return units, edges


def _flatten_marked(name: str, frame: pd.DataFrame, street: str) -> Rows:
    """:func:`flatten` with every row's properties marked ``_street`` (how a rerun finds
    a street's staged rows); the marker is no column of the layer."""
    rows = flatten(name, frame.assign(_street=street))
    columns = tuple(c for c in rows.info.columns if c != "_street")
    dtypes = {k: v for k, v in rows.dtypes.items() if k != "_street"}
    from dataclasses import replace

    return Rows(replace(rows.info, columns=columns), dtypes, rows.records)


def _ingest_cut(cut: dict) -> tuple[dict, str]:
    from wangge.ingest import ingest

    result = ingest(
        None,
        extract=cut["extract"],
        crs=cut["crs"],
        streets=cut["streets"],
        communities=cut["communities"],
        progress=False,
    )
    layers = {n: f.to_crs(result.crs) for n, f in result.layers.items()}
    layers.update(result.tables)
    return layers, result.crs


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# 3. the run and the assembly -----------------------------------------------------------


def run_city(
    source: str | Path | None,
    store_target: str | Path,
    plan_id: str,
    *,
    units: tuple[dict, str] | None = None,
    streets: str | Path | None = None,
    communities: str | Path | None = None,
    boundary_coords: str = "wgs84",
    boundary_crs: str | None = None,
    encoding: str = "utf-8",
    run_dir: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    config: str | Path | None = None,
    seed: int | None = None,
    preset: str | None = None,
    district_code: str | None = None,
    author: str = "",
    progress: bool = True,
) -> CityResult:
    """Delineate a city street by street and save it as the next version of ``plan_id``.

    Parameters
    ----------
    source
        A units.gpkg with given streets (``wangge ingest --streets``), or an OSM file with
        ``streets`` and/or ``communities``; None with ``units`` (a preloaded city, such as
        :func:`wangge.data.synthetic.synthetic_city`, and its metric CRS).
    store_target
        The store every worker writes to: a PostgreSQL URL (shared by a cluster) or a
        GeoPackage path (one machine).
    plan_id
        The city plan; also the run's id in the run table, so a rerun resumes it.
    run_dir
        Where the cuts are written (default ``./city-runs/PLAN_ID``); with ``scheduler``,
        a path every worker can read.
    workers, scheduler, client
        A LocalCluster of ``workers`` single-threaded processes (default: one per core), a
        running scheduler's address, or a :class:`distributed.Client` of the caller's;
        ``workers=0`` runs every street in this process.
    """
    from wangge.data import osm as osm_reader
    from wangge.delineate import district_from_given
    from wangge.geo.limits import load_limits

    t: dict[str, float] = {}
    start = time.perf_counter()
    from wangge.data.store import Store

    store = store_target if isinstance(store_target, Store) else open_store(store_target)
    # absolute: the workers of a remote scheduler do not share this process's directory
    run_dir = (Path(run_dir) if run_dir else Path("city-runs") / plan_id).resolve()
    limits = load_limits(config, seed=seed, district_code=district_code, preset=preset)
    notes: list[str] = []
    findings = None
    if units is not None:
        layers, crs = units
        cuts = cut_units(layers, crs)
    elif source is not None and Path(source).suffix.lower() == ".gpkg":
        from wangge.delineate import load_units

        layers, crs = load_units(source)
        cuts = cut_units(layers, crs)
        findings = layers.get("findings")
    else:
        if source is None:
            raise InputError("give the city's OSM file or units.gpkg")
        cuts, crs, findings = cut_osm(
            source,
            streets,
            communities,
            boundary_coords,
            encoding,
            boundary_crs,
            work_dir=run_dir,
        )
        layers = {
            "given_streets": gpd.GeoDataFrame(
                {"code": list(cuts)}, geometry=[None] * len(cuts), crs=crs
            )
        }
    # the credit for the sources this run read (data/osm.py), stored in the plan's meta
    if units is None and not (source is not None and Path(source).suffix.lower() == ".gpkg"):
        credit = osm_reader.attribution(True, {"streets": streets, "communities": communities})
    else:
        credit = osm_reader.attribution_of(layers)
    if not cuts:
        raise InputError("no given street holds any building", source)
    limits, note = district_from_given(limits, layers, district_code)
    if note:
        notes.append(note)
    settings = {
        "run_id": plan_id,
        "store": store.url if not hasattr(store, "engine") else _url_of(store),
        "limits_json": json.dumps(limits.raw, ensure_ascii=False, sort_keys=True),
    }
    specs = write_cuts(cuts, run_dir, settings)
    names = {code: _street_name(cut) for code, cut in cuts.items()}
    del cuts
    t["cut"] = time.perf_counter() - start
    todo, stage = store.runs.plan(
        plan_id, [(s["street"], names[s["street"]], s["hash"]) for s in specs]
    )
    todo = set(todo)
    for spec in specs:
        spec["stage"] = stage
    run = [s for s in specs if s["street"] in todo]
    skipped = sorted(s["street"] for s in specs if s["street"] not in todo)
    start = time.perf_counter()
    run_tasks(
        street_task,
        run,
        f"street-{plan_id}",
        workers=workers,
        scheduler=scheduler,
        client=client,
        progress=progress,
        skipped=len(skipped),
        unique=False,
        on_lost=_lost,
    )
    t["streets"] = time.perf_counter() - start
    table = store.runs.streets(plan_id)
    version = None
    if all(s.state == "done" for s in table):
        start = time.perf_counter()
        version = assemble(store, plan_id, limits, crs, table, findings, author, credit)
        t["assemble"] = time.perf_counter() - start
    return CityResult(plan_id, version, sorted(s["street"] for s in run), skipped, table, t, notes)


def _url_of(store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def _lost(spec: dict, detail: str) -> None:
    """A street whose worker died more often than Dask allows: failed in the run table."""
    _store(spec["store"]).runs.fail(spec["run_id"], spec["street"], detail)


def assemble(
    store,
    plan_id: str,
    limits,
    crs: str,
    table: list[StreetRun],
    findings: pd.DataFrame | None,
    author: str = "",
    credit: str = "no data source named",
) -> Version:
    """Save every street's parts as the city plan's next version (one transaction), its
    meta crediting the sources the run read (``credit``, :func:`data.osm.attribution`).

    The workers' rows are staged under the run's stage: the version's layers point at
    them (no row is copied), their infos joined in street-code order, so the plan does not
    depend on the order streets finished in.
    """
    from wangge.data.accounts import audit_entry, local_actor
    from wangge.data.runs import merge_parts

    stage, pieces = store.runs.pieces(plan_id)
    staged = {name: merge_parts(name, p) for name, p in pieces.items()}
    flat: dict[str, Rows] = {}
    if findings is not None and len(findings):
        from wangge.ingest import text_table

        # what the city's files held (the streets' own findings are their layer)
        name = "city_findings" if "findings" in staged else "findings"
        flat[name] = flatten(name, text_table(findings))
    households = sum(int(s.figures.get("households") or 0) for s in table)
    meta = {
        "district_code": limits.district_code,
        "metric_crs": crs,
        "seed": str(limits.solver.seed),
        "limits_json": json.dumps(limits.raw, ensure_ascii=False),
        "attribution": credit,
        "city": {"streets": len(table), "households": households, "run": plan_id},
    }
    who = author or local_actor()
    comment = f"city of {len(table)} streets, {households:,} households"
    entry = audit_entry(who, "city", plan_id, None, source="wangge city")
    version = store.save_flat(
        plan_id, flat, meta, None, who, comment, audit=entry, staged=staged, stage=stage
    )
    store.runs.assembled(plan_id)
    if hasattr(store, "_analyze_if_stale"):  # the workers' rows, new to the planner
        store._analyze_if_stale(sum(r.info.count for r in staged.values()))
    return version
