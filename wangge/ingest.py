"""The ingest job: an OSM file (and optional boundary and household files) to ``units.gpkg``."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from wangge.data import osm as osm_reader
from wangge.data import userfiles
from wangge.errors import InputError
from wangge.geo import blocks as geo_blocks
from wangge.geo import households as geo_households
from wangge.geo.crs import metric_crs
from wangge.geo.network import walk_network
from wangge.steps import Steps

#: Layers of units.gpkg, in the order they are written.
LAYERS = (
    "buildings",
    "blocks",
    "adjacency",
    "compounds",
    "roads",
    "barriers",
    "facilities",
    "landuse",
    "network_nodes",
    "network_edges",
    "study_area",
)


@dataclass
class IngestResult:
    """What :func:`ingest` made: the layers (in WGS84), the metric CRS and the counts."""

    layers: dict[str, gpd.GeoDataFrame]
    crs: str
    summary: dict[str, object]
    rules: pd.DataFrame
    notes: Counter = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)


def ingest(
    source: str | Path,
    boundary: str | Path | None = None,
    households: str | Path | None = None,
    households_config: str | Path | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
    progress: bool = True,
) -> IngestResult:
    """Read an OSM file into buildings with households, blocks and their adjacency.

    Parameters
    ----------
    source
        Local ``.osm``, ``.osm.bz2`` or ``.osm.pbf`` file.
    boundary
        Optional polygon file (GeoJSON, GPKG, zipped SHP) giving the study area; without
        it the study area is the buffered extent of the buildings.
    households
        Optional file of real household counts, by building id or by location.
    households_config
        Optional TOML overriding the household model parameters.
    encoding, gcj02
        How to read a CSV household file: its text encoding, and whether its
        coordinates are GCJ-02.
    progress
        Show a progress bar.
    """
    steps = Steps(
        ["read OSM", "study area", "households", "blocks", "adjacency", "network", "finish"],
        progress,
    )
    params = geo_households.load_params(households_config)
    extract = osm_reader.read_osm(source)
    notes = Counter(extract.stats)
    steps.done("read OSM")

    c = extract.buildings.geometry.union_all().centroid
    crs = metric_crs(c.x, c.y)

    def m(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        return frame.to_crs(crs)

    buildings = m(extract.buildings)
    if boundary is not None:
        area_geom, repaired = userfiles.read_boundary(boundary, crs)
        notes["boundary geometries repaired"] += repaired
        inside = buildings.representative_point().within(area_geom)
        notes["buildings outside the boundary, dropped"] += int((~inside).sum())
        buildings = buildings[inside]
        if buildings.empty:
            raise InputError("no building of the OSM file lies inside this boundary", boundary)
    else:
        area_geom = geo_blocks.study_area(buildings.geometry)
    steps.done("study area")

    buildings = geo_households.estimate_households(
        buildings.reset_index(drop=True), m(extract.landuse), m(extract.facilities), params
    )
    if households is not None:
        imported = userfiles.read_households(households, buildings, encoding=encoding, gcj02=gcj02)
        notes.update(imported.notes)
        buildings = geo_households.apply_imported(
            buildings, imported.counts, params, Path(households).name
        )
    steps.done("households")

    roads = m(extract.roads)
    barriers = m(extract.barriers)
    cutting = pd.concat([roads.geometry[roads["cuts_blocks"].astype(bool)], barriers.geometry])
    points = buildings.representative_point()
    blocks = geo_blocks.polygonize_blocks(area_geom, cutting, points)
    blocks = blocks.iloc[geo_blocks.order_codes(blocks.geometry)].reset_index(drop=True)
    blocks.insert(0, "block_id", [f"B{i + 1:05d}" for i in range(len(blocks))])
    where = geo_blocks.assign_to_blocks(buildings.geometry, blocks.geometry)
    buildings["block_id"] = blocks["block_id"].to_numpy()[where]
    steps.done("blocks")

    compounds = _compounds(m(extract.compounds), area_geom, buildings, points)
    blocks = _block_attributes(blocks, buildings, compounds)
    adjacency = geo_blocks.block_adjacency(
        blocks, roads[roads["cuts_blocks"].astype(bool)], barriers.geometry
    )
    steps.done("adjacency")

    nodes, net_edges = walk_network(roads)
    steps.done("network")

    area_km2 = area_geom.area / 1e6
    layers = {
        "buildings": buildings,
        "blocks": blocks,
        "adjacency": adjacency,
        "compounds": compounds,
        "roads": roads,
        "barriers": barriers,
        "facilities": m(extract.facilities),
        "landuse": m(extract.landuse),
        "network_nodes": nodes,
        "network_edges": net_edges,
        "study_area": gpd.GeoDataFrame({"area_km2": [area_km2]}, geometry=[area_geom], crs=crs),
    }
    rules = (
        buildings.groupby("rule")
        .agg(buildings=("building_id", "size"), households=("households", "sum"))
        .reindex([r for r in geo_households.RULE_STEPS if r in set(buildings["rule"])])
    )
    summary = {
        "source": str(source),
        "metric CRS": crs.to_string(),
        "study area km²": round(area_km2, 3),
        "buildings": len(buildings),
        "residential buildings": int(buildings["residential"].sum()),
        "buildings with real levels": f"{(buildings['levels_source'] != 'default').mean():.1%}",
        "households": int(buildings["households"].sum()),
        "households imported": int(buildings.loc[~buildings["estimated"], "households"].sum()),
        "population": int(buildings["population"].sum()),
        "blocks": len(blocks),
        "blocks with households": int((blocks["households"] > 0).sum()),
        "block adjacencies": len(adjacency),
        "compounds": len(compounds),
        "roads": len(roads),
        "barriers": len(barriers),
        "facilities": len(extract.facilities),
        "network nodes / edges": f"{len(nodes)} / {len(net_edges)}",
    }
    steps.done("finish")
    steps.close()
    return IngestResult(
        layers={k: v.to_crs(4326) for k, v in layers.items()},
        crs=crs.to_string(),
        summary=summary,
        rules=rules,
        notes=notes,
        timings=steps.timings,
    )


def _compounds(
    compounds: gpd.GeoDataFrame,
    area: shapely.Geometry,
    buildings: gpd.GeoDataFrame,
    points: gpd.GeoSeries,
) -> gpd.GeoDataFrame:
    """Keep compounds inside the study area that hold buildings; tag buildings with theirs."""
    cols = ["compound_id", "kind", "name", "n_buildings", "households", "area_m2"]
    if compounds.empty:
        buildings["compound_id"] = None
        return gpd.GeoDataFrame(pd.DataFrame(columns=cols), geometry=[], crs=buildings.crs)
    comp = compounds[compounds.intersects(area)].copy()
    comp["area_m2"] = comp.area
    hits = gpd.sjoin(
        gpd.GeoDataFrame(geometry=points),
        comp[["compound_id", "area_m2", "geometry"]],
        predicate="within",
    ).sort_values("area_m2")
    first = hits[~hits.index.duplicated(keep="first")]  # the smallest compound wins
    buildings["compound_id"] = first["compound_id"].reindex(buildings.index)
    stats = buildings.groupby("compound_id").agg(
        n_buildings=("building_id", "size"), households=("households", "sum")
    )
    comp = comp.join(stats, on="compound_id", how="inner")
    comp["gated_empty"] = (comp["kind"] == "gated") & (comp["households"] == 0)
    comp = comp[~comp["gated_empty"]]
    return comp[[*cols, "geometry"]].reset_index(drop=True)


def _block_attributes(
    blocks: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, compounds: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    stats = buildings.groupby("block_id").agg(
        households=("households", "sum"),
        population=("population", "sum"),
        n_buildings=("building_id", "size"),
        n_residential=("residential", "sum"),
    )
    out = blocks.join(stats, on="block_id")
    for col in ("households", "population", "n_buildings", "n_residential"):
        out[col] = out[col].fillna(0).astype(int)
    out["area_m2"] = out.area
    # the compound a block mostly lies in (more than half its area), if any
    out["compound_id"] = None
    if len(compounds):
        bi, ci = shapely.STRtree(compounds.geometry.to_numpy()).query(
            out.geometry.to_numpy(), predicate="intersects"
        )
        share = shapely.area(
            shapely.intersection(out.geometry.to_numpy()[bi], compounds.geometry.to_numpy()[ci])
        )
        share = share / out["area_m2"].to_numpy()[bi]
        major = share > 0.5
        out.loc[out.index[bi[major]], "compound_id"] = compounds["compound_id"].to_numpy()[
            ci[major]
        ]
    return out


def write_units(result: IngestResult, out_dir: str | Path) -> Path:
    """Write every layer to ``out_dir/units.gpkg`` atomically.

    The file is written beside the target and renamed over it only when complete, so a
    failure leaves an earlier ``units.gpkg`` untouched.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "units.gpkg"
    tmp = out_dir / f".units.{os.getpid()}.gpkg"
    tmp.unlink(missing_ok=True)
    try:
        for name in LAYERS:
            frame = result.layers[name]
            frame.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        meta = pd.DataFrame(
            {
                "key": [*list(result.summary), "attribution"],
                "value": [str(v) for v in result.summary.values()] + [osm_reader.ATTRIBUTION],
            }
        )
        pyogrio.write_dataframe(meta, tmp, layer="meta", driver="GPKG")  # a plain table
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
