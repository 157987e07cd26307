"""The delineate job: atomic units (from an OSM file or units.gpkg) to a validated plan.gpkg."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from wangge.errors import InputError
from wangge.geo import delineation
from wangge.geo.households import load_params
from wangge.geo.limits import Limits, load_limits
from wangge.geo.tessellation import tessellate

UNIT_LAYERS = ("buildings", "blocks", "adjacency", "compounds", "roads", "barriers", "study_area")


@dataclass
class DelineateResult:
    """The plan's layers (metric CRS), its issues and timings."""

    layers: dict[str, gpd.GeoDataFrame]
    crs: str
    limits: Limits
    issues: list = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def load_units(source: str | Path, progress: bool = False) -> tuple[dict, str]:
    """Atomic units in a metric CRS, from an OSM file (ingested now) or a units.gpkg."""
    source = Path(source)
    if source.suffix.lower() == ".gpkg":
        if not source.exists():
            raise InputError("file not found", source)
        try:
            have = {name for name, _ in pyogrio.list_layers(source)}
        except Exception as exc:
            raise InputError(f"cannot be read as a GeoPackage: {exc}", source) from exc
        missing = [n for n in UNIT_LAYERS if n not in have]
        if missing:
            raise InputError(f"is not a units.gpkg: missing layers {', '.join(missing)}", source)
        meta = pyogrio.read_dataframe(source, layer="meta").set_index("key")["value"]
        crs = meta.get("metric CRS")
        layers = {
            n: gpd.read_file(source, layer=n, engine="pyogrio").to_crs(crs) for n in UNIT_LAYERS
        }
        return layers, crs
    from wangge.ingest import ingest

    result = ingest(source, progress=progress)
    return {n: result.layers[n].to_crs(result.crs) for n in UNIT_LAYERS}, result.crs


def delineate(
    source: str | Path,
    config: str | Path | None = None,
    seed: int | None = None,
    district_code: str | None = None,
    progress: bool = False,
) -> DelineateResult:
    """Delineate streets, communities, grids and micro-grids for the units of ``source``."""
    limits = load_limits(config, seed=seed, district_code=district_code)
    t = {}
    start = time.perf_counter()
    units, crs = load_units(source, progress)
    t["units"] = time.perf_counter() - start
    buildings = units["buildings"]
    start = time.perf_counter()
    cells = tessellate(units["blocks"], buildings)
    per_b = buildings.set_index("building_id")
    ids = cells["building_id"]
    cells["households"] = per_b["households"].reindex(ids).fillna(0).to_numpy()
    cells["population"] = per_b["population"].reindex(ids).fillna(0).to_numpy()
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
    nested = delineation.solve(graph, limits)
    t["solve"] = time.perf_counter() - start
    start = time.perf_counter()
    persons = load_params().persons
    layers = delineation.build_layers(cells, buildings, nested, limits, persons)
    layers["cells"] = cells
    layers.update({k: units[k] for k in ("roads", "barriers", "compounds", "study_area", "blocks")})
    t["polygons"] = time.perf_counter() - start
    return DelineateResult(layers=layers, crs=crs, limits=limits, issues=nested.issues, timings=t)
