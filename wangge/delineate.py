"""The delineate job: atomic units (from an OSM file or units.gpkg) to a validated plan.gpkg."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from wangge.beside import beside
from wangge.data.basemap import BASEMAP_LAYERS, basemap_layers
from wangge.data.gpkg_files import staged_gpkg
from wangge.data.osm import attribution_of
from wangge.data.plan import PLAN_POLYGONS
from wangge.errors import InputError
from wangge.geo import delineation
from wangge.geo.dedicated import find_sites, site_of
from wangge.geo.district import district_from_given
from wangge.geo.feasibility import feasibility
from wangge.geo.households import load_params
from wangge.geo.limits import Limits, load_limits
from wangge.geo.metrics import road_halo, unit_metrics
from wangge.geo.tessellation import cell_of, nested_buildings, tessellate
from wangge.ingest import IngestResult, ingest, text_table, write_units

UNIT_LAYERS = ("buildings", "blocks", "adjacency", "compounds", "roads", "barriers", "study_area")
#: Layers of units.gpkg read when present: the given levels and what was noticed in ingest.
OPTIONAL_LAYERS = ("given_streets", "given_communities", "unassigned_land", "landuse")
OPTIONAL_TABLES = ("findings", "calibration")
#: Layers of units.gpkg read only to draw the basemap (data/basemap.py) from.
BASEMAP_SOURCES = ("facilities",)


@dataclass
class DelineateResult:
    """The plan's layers (metric CRS), its issues and timings."""

    layers: dict[str, gpd.GeoDataFrame]
    crs: str
    limits: Limits
    issues: list = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    feasibility: pd.DataFrame | None = None
    #: Plain words for the planner about choices the run made for them (the district code).
    notes: list[str] = field(default_factory=list)
    #: The atomic units when they were ingested from an OSM or building file in this run:
    #: written beside the plan as units.gpkg, so that coverage and overlay find them.
    ingested: IngestResult | None = None


def _open_gpkg(path: Path, required: tuple[str, ...], kind: str) -> tuple[set[str], pd.Series]:
    """Check that ``path`` is a GeoPackage with ``required`` layers; return them and its meta."""
    if not path.exists():
        raise InputError("file not found", path)
    try:
        have = {name for name, _ in pyogrio.list_layers(path)}
    except Exception as exc:
        raise InputError(f"cannot be read as a GeoPackage: {exc}", path) from exc
    missing = [n for n in (*required, "meta") if n not in have]
    if missing:
        raise InputError(f"is not a {kind}: missing layers {', '.join(missing)}", path)
    return have, pyogrio.read_dataframe(path, layer="meta").set_index("key")["value"]


def load_units(
    source: str | Path | None, progress: bool = False, **ingest_options
) -> tuple[dict, str]:
    """Atomic units in a metric CRS, from an OSM file (ingested now, with
    ``ingest_options``: given streets and communities, a building file...) or a units.gpkg.
    Tables (findings, calibration) come back as plain DataFrames."""
    if source is not None and Path(source).suffix.lower() == ".gpkg":
        source = Path(source)
        have, meta = _open_gpkg(source, UNIT_LAYERS, "units.gpkg")
        crs = meta.get("metric CRS")
        layers = {
            n: gpd.read_file(source, layer=n, engine="pyogrio").to_crs(crs)
            for n in (*UNIT_LAYERS, *OPTIONAL_LAYERS, *BASEMAP_SOURCES)
            if n in have
        }
        for n in OPTIONAL_TABLES:
            if n in have:
                layers[n] = pyogrio.read_dataframe(source, layer=n)
        return layers, crs
    return ingested_units(ingest(source, progress=progress, **ingest_options))


def ingested_units(result: IngestResult) -> tuple[dict, str]:
    """The layers (in the metric CRS) and tables of an ingest result, as :func:`load_units`
    gives them."""
    layers = {n: f.to_crs(result.crs) for n, f in result.layers.items()}
    layers.update(result.tables)
    return layers, result.crs


def delineate(
    source: str | Path | None,
    config: str | Path | None = None,
    seed: int | None = None,
    district_code: str | None = None,
    progress: bool = False,
    preset: str | None = None,
    sites: str | Path | None = None,
    sites_coords: str = "wgs84",
    **ingest_options,
) -> DelineateResult:
    """Delineate streets, communities, grids and micro-grids for the units of ``source``
    (inside the given streets and communities, where ``ingest_options`` name them).

    ``sites`` is a user's polygon file of dedicated sites (campuses, hospitals, parks of
    enterprises...), taken beside those found in the OSM land use."""
    limits = load_limits(config, seed=seed, district_code=district_code, preset=preset)
    start = time.perf_counter()
    ingested = None
    if source is not None and Path(source).suffix.lower() == ".gpkg":
        units, crs = load_units(source, progress)
    else:
        ingested = ingest(source, progress=progress, **ingest_options)
        units, crs = ingested_units(ingested)
    if sites is not None:
        units["site_file"] = read_sites(sites, crs, sites_coords)
    limits, note = district_from_given(limits, units, district_code)
    result = delineate_units(units, crs, limits)
    if note:
        result.notes.append(note)
    result.ingested = ingested
    result.timings = {"units": time.perf_counter() - start, **result.timings}
    return result


def delineate_units(
    units: dict[str, gpd.GeoDataFrame], crs: str, limits: Limits
) -> DelineateResult:
    """Delineate preloaded units (metric CRS): the layers of a units.gpkg, or a synthetic street."""
    t = {}
    buildings = units["buildings"]
    checks = feasibility(buildings, units["compounds"], limits)
    start = time.perf_counter()
    cells = tessellate(units["blocks"], buildings[~nested_buildings(buildings)])
    # every building's households land in exactly one cell (its own, or the one that holds it)
    where = cell_of(cells, buildings)
    buildings = buildings.assign(cell=where)
    n = len(cells)
    cells["households"] = np.bincount(where, buildings["households"].to_numpy(float), n)
    cells["population"] = np.bincount(where, buildings["population"].to_numpy(float), n)
    per_b = buildings.set_index("building_id")
    ids = cells["building_id"]
    block_comp = units["blocks"].set_index("block_id")["compound_id"]
    comp = per_b["compound_id"].reindex(ids).to_numpy()
    cells["compound_id"] = pd.Series(comp).where(
        pd.notna(comp), block_comp.reindex(cells["block_id"]).to_numpy()
    )
    cells["compound_id"] = (
        cells["compound_id"].astype(object).where(cells["compound_id"].notna(), None)
    )
    t["tessellation"] = time.perf_counter() - start
    start = time.perf_counter()
    graph = delineation.unit_graph(cells, units["adjacency"])
    t["graph"] = time.perf_counter() - start
    start = time.perf_counter()
    labels, tables = _given_labels(units, cells)
    sites = find_sites(
        units.get("landuse"), buildings, limits.raw.get("dedicated", {}), units.get("site_file")
    )
    site = site_of(shapely.point_on_surface(cells.geometry.to_numpy()), sites)
    site_notes = {
        i: " ".join(str(v) for v in (k, nm) if isinstance(v, str) and v)
        for i, (k, nm) in enumerate(zip(sites["kind"], sites["name"], strict=True))
    }
    nested = delineation.solve(graph, limits, labels, site, site_notes)
    t["solve"] = time.perf_counter() - start
    start = time.perf_counter()
    persons = load_params().persons
    layers = delineation.build_layers(cells, buildings, nested, limits, persons, tables)
    lines = pd.concat(
        [
            units["roads"].geometry[units["roads"]["cuts_blocks"].astype(bool)],
            units["barriers"].geometry,
        ]
    )
    outline = units["study_area"].geometry.union_all()
    halo = road_halo(lines)
    shapely.prepare(halo)
    targets = {
        "streets": None,
        "communities": limits.community.target,
        "grids": limits.grid.target,
        "microgrids": limits.microgrid.target,
    }
    for name, target in targets.items():
        layers[name] = layers[name].join(unit_metrics(layers[name], target, halo, outline))
    layers["cells"] = cells
    layers["unit_edges"] = delineation.unit_edge_table(graph)
    layers.update({k: units[k] for k in ("roads", "barriers", "compounds", "study_area", "blocks")})
    layers.update({k: units[k] for k in (*OPTIONAL_LAYERS, *OPTIONAL_TABLES) if k in units})
    layers["dedicated_sites"] = sites
    layers.update(basemap_layers(units))  # roads, water, green, names: stored with the plan
    t["polygons"] = time.perf_counter() - start
    return DelineateResult(
        layers=layers,
        crs=crs,
        limits=limits,
        issues=nested.issues,
        timings=t,
        feasibility=checks,
    )


def read_sites(path: str | Path, crs: str, coords: str = "wgs84") -> gpd.GeoDataFrame:
    """A user's dedicated sites (polygons; ``name``/名称 and ``type``/类型 by alias) in
    the metric ``crs``."""
    from wangge.data.userfiles import read_vector
    from wangge.geo.crs import unshift

    frame, _ = read_vector(path)
    polys = frame.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if not polys.all():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(~polys)[:10])
        raise InputError("dedicated sites must be polygons", path, where=f"feature {rows}")
    lower = {str(c).strip().lower(): c for c in frame.columns}
    pick = {
        "name": next((lower[k] for k in ("name", "名称", "单位名称") if k in lower), None),
        "kind": next((lower[k] for k in ("type", "kind", "类型", "类别") if k in lower), None),
    }
    geoms = unshift(frame.geometry.to_numpy(), coords)
    return gpd.GeoDataFrame(
        {
            "name": frame[pick["name"]].astype(str) if pick["name"] else None,
            "kind": frame[pick["kind"]].astype(str) if pick["kind"] else "site",
        },
        geometry=geoms,
        crs=4326,
    ).to_crs(crs)


def _given_labels(
    units: dict, cells: gpd.GeoDataFrame
) -> tuple[dict[str, np.ndarray], dict[str, pd.DataFrame]]:
    """Per cell, the row of its given street and community (from its block), and the
    given tables (code, name) those rows index; empty when nothing was given."""
    if "given_streets" not in units or "street_row" not in units["blocks"]:
        return {}, {}
    blocks = units["blocks"].set_index("block_id")
    labels, tables = {}, {}
    for level, layer, col in (
        ("street", "given_streets", "street_row"),
        ("community", "given_communities", "community_row"),
    ):
        if layer not in units or col not in blocks:
            continue
        row = blocks[col].reindex(cells["block_id"]).to_numpy()
        if np.any(pd.isna(row)) or np.any(row < 0):
            raise InputError(f"some cells lie in no given {level}", where=layer)
        labels[level] = row.astype(int)
        frame = units[layer]
        tables[level] = pd.DataFrame(
            {
                "code": [c if isinstance(c, str) and c else None for c in frame["code"]],
                "name": frame["name"].to_numpy() if "name" in frame else None,
            }
        )
    return labels, tables


BUILDING_COLUMNS = (
    "building_id",
    "building",
    "name",
    "households",
    "population",
    "estimated",
    "levels",
    "block_id",
    "compound_id",
    "microgrid_code",
    "grid_code",
    "geometry",
)


def plan_frames(result: DelineateResult, violations: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The layers of plan.gpkg, in WGS84 (tables stay plain DataFrames)."""
    frames: dict[str, pd.DataFrame] = {}
    for name in PLAN_POLYGONS:
        frames[name] = result.layers[name].to_crs(4326)
    cols = [c for c in BUILDING_COLUMNS if c in result.layers["buildings"].columns]
    frames["buildings"] = result.layers["buildings"][cols].to_crs(4326)
    frames["study_area"] = result.layers["study_area"].to_crs(4326)
    frames["vertical_microgrids"] = result.layers["vertical_microgrids"]
    # the atomic units and their adjacency: what an edit reassigns (wangge/editing.py)
    if "units" in result.layers:
        frames["units"] = result.layers["units"].to_crs(4326)
        frames["unit_edges"] = result.layers["unit_edges"]
    frames["violations"] = violations
    frames["feasibility"] = result.feasibility
    # what the given files held and what became of it: kept with the plan
    for name in ("findings", "calibration"):
        if name in result.layers and len(result.layers[name]):
            frames[name] = text_table(result.layers[name])
    for name in ("given_streets", "given_communities", "unassigned_land", *BASEMAP_LAYERS):
        if name in result.layers and len(result.layers[name]):
            frames[name] = result.layers[name].to_crs(4326)
    frames["meta"] = pd.DataFrame(
        {
            "key": ["district_code", "metric_crs", "seed", "limits_json", "attribution"],
            "value": [
                result.limits.district_code,
                result.crs,
                str(result.limits.solver.seed),
                json.dumps(result.limits.raw, ensure_ascii=False),
                attribution_of(result.layers),  # only the sources used (data/osm.py)
            ],
        }
    )
    return frames


def write_plan(result: DelineateResult, violations: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write plan.gpkg (atomically) and the views of the plan (:func:`views_beside`)."""
    with views_beside(result, out_dir):
        return write_plan_gpkg(result, violations, out_dir)


def write_plan_gpkg(result: DelineateResult, violations: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write plan.gpkg, atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = plan_frames(result, violations)
    target = out_dir / "plan.gpkg"
    with staged_gpkg(target) as tmp:
        for name, frame in frames.items():
            if isinstance(frame, gpd.GeoDataFrame):
                frame.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
            else:
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")
    return target


@contextmanager
def views_beside(result: DelineateResult, out_dir: str | Path) -> Iterator[None]:
    """While the block runs (validating the plan, writing plan.gpkg), write the views of
    the plan (:func:`write_views`) in a second process (:func:`wangge.beside.beside`),
    into a scratch directory in ``out_dir``; they replace the old ones only when both
    halves have succeeded, and are dropped otherwise."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".views.", dir=out_dir))
    try:
        with beside(lambda: write_views(result, scratch)):
            yield
        for path in sorted(scratch.iterdir()):
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_views(result: DelineateResult, out_dir: Path) -> None:
    """One GeoJSON per polygon level and map.html; and, when the units were ingested in
    this run, units.gpkg (what coverage and overlay read)."""
    from wangge.maps.grid_map import write_grid_map

    if result.ingested is not None:
        write_units(result.ingested, out_dir)
    for name in PLAN_POLYGONS:
        frame = result.layers[name].to_crs(4326)
        frame.to_file(out_dir / f"{name}.geojson", driver="GeoJSON", engine="pyogrio")
    write_grid_map(
        out_dir / "map.html",
        result.layers,
        f"wangge 网格 plan · district {result.limits.district_code}",
        result.limits.grid.lo,
        result.limits.grid.hi,
    )
