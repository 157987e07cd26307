"""The plan.gpkg a job adds layers to: read in its metric CRS, written back in one rename.

The risk and coverage jobs (:mod:`wangge.overlay`, :mod:`wangge.coverage`) read a
delineated plan with :func:`read_plan_data` and the walking network and OSM facilities it
was made from with :func:`read_units`, place their features in the plan's grids
(:func:`locate`, :func:`touching`), and add their layers to plan.gpkg with
:func:`update_plan` (rewritten beside itself and renamed over it, so a failure leaves the
plan as it was).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from wangge.data.gpkg_files import staged_gpkg
from wangge.data.plan import Plan, read_plan
from wangge.errors import InputError
from wangge.geo.rules import Rules


@dataclass
class JobResult:
    """Layers written (metric CRS), maps written, counts to print and step timings."""

    layers: dict[str, pd.DataFrame]
    maps: list[Path]
    summary: dict[str, object]
    timings: dict[str, float] = field(default_factory=dict)
    #: The sources the plan was made from (its meta's ``attribution``), to credit.
    attribution: str = ""


def plan_path(plan: str | Path) -> Path:
    """The plan.gpkg of a plan directory, or ``plan`` itself when it names a file."""
    path = Path(plan)
    return path / "plan.gpkg" if path.is_dir() else path


def read_plan_data(plan: str | Path) -> Plan:
    """The plan of a plan directory or plan.gpkg, as the jobs read it (:mod:`wangge.data.plan`)."""
    path = plan_path(plan)
    if not path.exists():
        raise InputError("file not found (run wangge delineate first)", path)
    return read_plan(path, required=("grids", "communities", "buildings"))


def update_plan(path: Path, layers: dict[str, pd.DataFrame]) -> None:
    """Add or replace ``layers`` in plan.gpkg (stored in WGS84) in one atomic rename: a
    copy staged beside it under a new name (:func:`wangge.data.gpkg_files.staged_gpkg`)."""
    with staged_gpkg(path, start_from=path) as tmp:
        for name, frame in layers.items():
            if isinstance(frame, gpd.GeoDataFrame):
                frame = frame.to_crs(4326)
            pyogrio.write_dataframe(
                frame, tmp, layer=name, driver="GPKG", layer_options={"OVERWRITE": "YES"}
            )


def rules_meta(data: Plan, rules: Rules) -> pd.DataFrame:
    """The plan's meta with the rules used, so the API scores and sites by the same."""
    meta = {**data.meta, "rules_json": json.dumps(rules.raw, ensure_ascii=False)}
    return pd.DataFrame({"key": list(meta), "value": [str(v) for v in meta.values()]})


def locate(frame: gpd.GeoDataFrame, plan: Plan) -> gpd.GeoDataFrame:
    """Add ``grid_code`` and ``community_code`` of the grid each feature lies in."""
    out = frame.copy()
    grids = plan.layers["grids"]
    pts = shapely.point_on_surface(out.geometry.to_numpy())
    f, g = shapely.STRtree(grids.geometry.to_numpy()).query(pts, predicate="within")
    code = np.full(len(out), "", dtype=object)
    code[f] = grids["code"].astype(str).to_numpy()[g]
    out["grid_code"] = code
    out["community_code"] = [c[:12] for c in code]
    return out


def touching(zones: gpd.GeoDataFrame, plan: Plan) -> gpd.GeoDataFrame:
    """Add ``grid_codes``: the grids each zone touches, comma separated."""
    out = zones.copy()
    grids = plan.layers["grids"]
    z, g = shapely.STRtree(grids.geometry.to_numpy()).query(
        out.geometry.to_numpy(), predicate="intersects"
    )
    codes = (
        pd.Series(grids["code"].astype(str).to_numpy()[g])
        .groupby(z)
        .agg(lambda c: ",".join(sorted(c)))
    )
    out["grid_codes"] = codes.reindex(range(len(out))).fillna("").to_numpy()
    return out


def read_units(
    plan: Plan, units: str | Path | None, network: bool = True
) -> dict[str, gpd.GeoDataFrame]:
    """OSM facilities, and with ``network`` the walking network and blocks, from
    units.gpkg (default: beside the plan) or straight from an OSM file (the same one the
    plan was made from)."""
    if units is None and plan.path is None:
        raise InputError("pass the units.gpkg of wangge ingest or the OSM file", plan.source)
    source = Path(units) if units else plan.path.with_name("units.gpkg")
    if not source.exists():
        raise InputError(
            "not found; pass --units with the units.gpkg of wangge ingest or the OSM file",
            source,
        )
    if source.suffix.lower() == ".gpkg":
        have = {n for n, _ in pyogrio.list_layers(source)}
        need = ("network_nodes", "network_edges", "facilities") if network else ("facilities",)
        missing = [n for n in need if n not in have]
        if missing:
            raise InputError(f"is not a units.gpkg: missing {', '.join(missing)}", source)
        wanted = (*need, "blocks") if network else need
        out = {
            n: pyogrio.read_dataframe(source, layer=n).to_crs(plan.crs) for n in wanted if n in have
        }
    else:
        from wangge.data.osm import read_osm
        from wangge.geo.network import walk_network

        extract = read_osm(source)
        out = {"facilities": extract.facilities.to_crs(plan.crs)}
        if network:
            nodes, edges = walk_network(extract.roads.to_crs(plan.crs))
            out |= {"network_nodes": nodes, "network_edges": edges}
    out["crs"] = plan.crs
    return out
