"""The ingest job: an OSM file (and optional boundary and household files) to ``units.gpkg``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
import shapely

from wangge.data import osm as osm_reader
from wangge.data import userfiles
from wangge.data.gpkg_files import staged_gpkg
from wangge.errors import InputError
from wangge.geo import blocks as geo_blocks
from wangge.geo import calibration as geo_calibration
from wangge.geo import district as geo_district
from wangge.geo import households as geo_households
from wangge.geo.crs import metric_crs
from wangge.geo.network import walk_network
from wangge.given import FINDING_COLUMNS, findings_frame, read_given
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
#: Layers written only when given boundaries are used (read back by wangge/delineate.py).
GIVEN_LAYERS = ("given_streets", "given_communities", "unassigned_land")
#: Plain tables written beside the layers: what was noticed, and the calibration.
TABLES = ("findings", "calibration")


@dataclass
class IngestResult:
    """What :func:`ingest` made: the layers (in WGS84), the metric CRS and the counts."""

    layers: dict[str, gpd.GeoDataFrame]
    crs: str
    summary: dict[str, object]
    rules: pd.DataFrame
    notes: Counter = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    #: Plain tables: ``findings`` (what was noticed in the user's files) and ``calibration``.
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def ingest(
    source: str | Path | None,
    boundary: str | Path | None = None,
    households: str | Path | None = None,
    households_config: str | Path | None = None,
    encoding: str = "utf-8",
    gcj02: bool = False,
    progress: bool = True,
    streets: str | Path | None = None,
    communities: str | Path | None = None,
    boundary_coords: str = "wgs84",
    buildings: str | Path | None = None,
    buildings_coords: str = "wgs84",
    boundary_crs: str | None = None,
    buildings_crs: str | None = None,
    extract: osm_reader.OsmExtract | None = None,
    crs: str | None = None,
    calibrate_outliers: bool = False,
) -> IngestResult:
    """Read an OSM file (and/or a building file) into buildings with households, blocks
    and their adjacency, inside the streets and communities a user gives.

    Parameters
    ----------
    source
        Local ``.osm``, ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf`` file for roads, barriers,
        land use and facilities (and buildings, unless ``buildings`` is given); None with
        ``buildings``: blocks then come from the given boundaries and the buildings alone.
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
    streets, communities
        The district's given streets and/or communities (GeoJSON, GPKG, zipped SHP, CSV
        with WKT; data/boundaries.py): kept exactly as given, every block lies in one.
    boundary_coords, buildings_coords
        ``wgs84`` (also CGCS2000 and projected files, by their CRS), ``gcj02`` or ``bd09``
        for the boundary files and the building file.
    buildings
        A building file from another source (data/buildings.py) replacing OSM buildings.
    boundary_crs, buildings_crs
        The CRS of street/community files, or of the building file, that declare none (a
        CSV in metres), or that declare a wrong one.
    extract, crs
        An OSM extract already read (one street's cut of a city, :mod:`wangge.city`) in
        place of ``source``, and the metric CRS to work in (the city's, so that every
        street is drawn in the same one); by default the zone of the buildings' centre.
    calibrate_outliers
        Apply calibration factors outside 0.5–2 too (:mod:`wangge.geo.calibration`); by
        default they are reported and the estimate is kept.
    """
    if source is None and buildings is None and extract is None:
        raise InputError("give an OSM file, a building file (--buildings), or both")
    steps = Steps(
        ["read OSM", "study area", "households", "blocks", "adjacency", "network", "finish"],
        progress,
    )
    params = geo_households.load_params(households_config)
    if source:
        extract = osm_reader.read_osm(source)
    notes = Counter(extract.stats) if extract else Counter()
    findings: list[pd.DataFrame] = []
    raw_buildings, counts_in_file = _building_source(
        extract, buildings, buildings_coords, encoding, notes, findings, buildings_crs
    )
    steps.done("read OSM")

    c = shapely.union_all(shapely.envelope(raw_buildings.geometry.to_numpy())).centroid
    crs = pyproj.CRS(crs) if crs else metric_crs(c.x, c.y)

    def m(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        return frame.to_crs(crs)

    empty = gpd.GeoDataFrame(geometry=[], crs=4326)
    context = {
        k: getattr(extract, k) if extract else empty
        for k in ("roads", "barriers", "landuse", "facilities", "compounds")
    }
    if extract is None:
        context["roads"] = osm_reader.empty_roads()  # blocks from the given boundaries
    footprints = m(raw_buildings)
    # what the building data covers, for calibration: the hull of the buildings + 50 m
    extent = shapely.convex_hull(shapely.geometrycollections(footprints.geometry.to_numpy()))
    extent = extent.buffer(50)
    given = None
    if extract is not None:  # what the OSM file's county-level areas say (geo/district.py)
        said = geo_district.osm_findings(extract.admin_areas, raw_buildings, extract.addr_districts)
        if said:
            findings.append(findings_frame(pd.DataFrame(said), Path(str(extract.source)).name))
    bounds = None  # the OSM file's own bounds, in metres, when it states them
    if extract is not None and extract.bounds is not None:
        bounds = gpd.GeoSeries([shapely.box(*extract.bounds)], crs=4326).to_crs(crs).iloc[0]
    if streets is not None or communities is not None:
        # where the data reaches: the buildings, and the OSM file's bounds
        reach = extent if bounds is None else shapely.union(extent, bounds)
        given = read_given(
            streets,
            communities,
            crs,
            boundary_coords,
            encoding,
            boundary_crs,
            buildings=footprints,
            extent=reach,
        )
        findings.append(given.findings)
    area_geom, footprints = _study_area(
        footprints,
        given,
        boundary,
        crs,
        notes,
        findings,
        boundary or communities or streets,
        bounds,
    )
    steps.done("study area")

    buildings_file = buildings
    buildings = geo_households.estimate_households(
        footprints.reset_index(drop=True), m(context["landuse"]), m(context["facilities"]), params
    )
    if counts_in_file is not None:
        notes["buildings with 户数 from the building file"] += len(counts_in_file)
        buildings = geo_households.apply_imported(
            buildings, counts_in_file, params, Path(str(buildings_file)).name
        )
    if households is not None:
        imported = userfiles.read_households(households, buildings, encoding=encoding, gcj02=gcj02)
        notes.update(imported.notes)
        buildings = geo_households.apply_imported(
            buildings, imported.counts, params, Path(households).name
        )
    steps.done("households")

    roads = m(context["roads"])
    barriers = m(context["barriers"])
    cutting = pd.concat([roads.geometry[roads["cuts_blocks"].astype(bool)], barriers.geometry])
    points = buildings.representative_point()
    zones = None if given is None else given.zones.geometry.to_numpy()
    blocks = geo_blocks.polygonize_blocks(area_geom, cutting, points, zones=zones)
    blocks = blocks.iloc[geo_blocks.order_codes(blocks.geometry)].reset_index(drop=True)
    blocks.insert(0, "block_id", [f"B{i + 1:05d}" for i in range(len(blocks))])
    where = geo_blocks.assign_to_blocks(buildings.geometry, blocks.geometry)
    buildings["block_id"] = blocks["block_id"].to_numpy()[where]
    calibration = None
    if given is not None:
        blocks = given.label_blocks(blocks)
        findings.append(given.straddling(buildings, blocks["zone"].to_numpy()[where]))
        buildings, calibration = given.calibrate(
            buildings,
            blocks["zone"].to_numpy()[where],
            extent,
            params.persons,
            outliers=calibrate_outliers,
        )
        blocks = blocks.drop(columns="zone")
    steps.done("blocks")

    compounds = _compounds(m(context["compounds"]), area_geom, buildings, points)
    blocks = _block_attributes(blocks, buildings, compounds)
    adjacency = geo_blocks.block_adjacency(
        blocks, roads[roads["cuts_blocks"].astype(bool)], barriers.geometry
    )
    steps.done("adjacency")

    nodes, net_edges = walk_network(roads)
    steps.done("network")

    area_km2 = area_geom.area / 1e6
    # credit only the sources used: OSM when an OSM file was read, the user's files by name
    credit = osm_reader.attribution(
        extract is not None,
        {"buildings": buildings_file, "streets": streets, "communities": communities},
    )
    layers = {
        "buildings": buildings,
        "blocks": blocks,
        "adjacency": adjacency,
        "compounds": compounds,
        "roads": roads,
        "barriers": barriers,
        "facilities": m(context["facilities"]),
        "landuse": m(context["landuse"]),
        "network_nodes": nodes,
        "network_edges": net_edges,
        "study_area": gpd.GeoDataFrame(
            {"area_km2": [area_km2], "attribution": [credit]}, geometry=[area_geom], crs=crs
        ),
    }
    rules = (
        buildings.groupby("rule")
        .agg(buildings=("building_id", "size"), households=("households", "sum"))
        .reindex([r for r in geo_households.RULE_STEPS if r in set(buildings["rule"])])
    )
    summary = {
        "source": str(source or (extract.source if extract else "(no OSM file)")),
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
        "facilities": len(context["facilities"]),
        "network nodes / edges": f"{len(nodes)} / {len(net_edges)}",
    }
    if buildings_file is not None:
        summary["buildings from"] = str(buildings_file)
    summary["attribution"] = credit
    if given is not None:
        layers["given_streets"] = given.streets
        if given.communities is not None:
            layers["given_communities"] = given.communities
        layers["unassigned_land"] = given.unassigned
        summary["given streets"] = (
            len(given.streets)
            if not given.streets_derived
            else (f"{len(given.streets)} (from the community codes)")
        )
        if given.communities is not None:
            summary["given communities"] = len(given.communities)
        if len(given.unassigned):
            summary["unassigned land km²"] = round(given.unassigned.area.sum() / 1e6, 4)
    tables = {
        "findings": pd.concat(findings, ignore_index=True)
        if findings
        else pd.DataFrame(columns=FINDING_COLUMNS),
        "calibration": calibration
        if calibration is not None
        else pd.DataFrame(columns=geo_calibration.COLUMNS),
    }
    if len(tables["findings"]):
        summary["findings"] = len(tables["findings"])
    steps.done("finish")
    steps.close()
    return IngestResult(
        layers={k: v.to_crs(4326) for k, v in layers.items()},
        crs=crs.to_string(),
        summary=summary,
        rules=rules,
        notes=notes,
        timings=steps.timings,
        tables=tables,
    )


def _building_source(
    extract: osm_reader.OsmExtract | None,
    path: str | Path | None,
    coords: str,
    encoding: str,
    notes: Counter,
    findings: list[pd.DataFrame],
    crs: str | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame | None]:
    """The footprints (WGS84) from the building file if one is given, else from OSM, and
    the household counts the file carries (None when it carries none)."""
    if path is None:
        return extract.buildings, None
    from wangge.data.building_datum import check_datum
    from wangge.data.buildings import read_buildings

    osm_b = extract.buildings if extract is not None and len(extract.buildings) else None
    # the file's own floors, height and use win; where it states no use, the OSM
    # building it overlaps lends its type and name (data/buildings.adopt_osm_tags)
    bfile = read_buildings(path, coords=coords, encoding=encoding, crs=crs, osm_buildings=osm_b)
    # GCJ-02 or BD-09 read as WGS84 lands hundreds of metres off: stop, naming the fit
    roads = None if extract is None else extract.roads
    cutting = None if roads is None else roads[roads["cuts_blocks"].astype(bool)]
    bfile = check_datum(bfile, osm_b, cutting)
    notes.update(bfile.notes)
    findings.append(findings_frame(bfile.findings, Path(path).name))
    counts = bfile.counts()
    frame = bfile.frame[[c for c in bfile.frame.columns if c not in HH_COLS]]
    return frame, (counts if len(counts) else None)


def _study_area(
    buildings: gpd.GeoDataFrame,
    given,
    boundary: str | Path | None,
    crs,
    notes: Counter,
    findings: list[pd.DataFrame],
    source: str | Path | None = None,
    bounds: shapely.Geometry | None = None,
) -> tuple[shapely.Geometry, gpd.GeoDataFrame]:
    """The study area (the given units' land, cut by ``boundary``; else the extract's
    ``bounds`` or the rectangle round the buildings: :func:`wangge.geo.blocks.study_area`)
    and the buildings inside it; those outside are listed."""
    if given is not None:
        area = given.area
    else:
        area = geo_blocks.study_area(buildings.geometry, bounds)
        if bounds is None:
            notes["study area: the rectangle round the buildings (the file states no bounds)"] += 1
    if boundary is not None:
        bound, repaired = userfiles.read_boundary(boundary, crs)
        notes["boundary geometries repaired"] += repaired
        area = bound if given is None else shapely.intersection(area, bound)
    if boundary is None and given is None:
        return area, buildings
    inside = buildings.representative_point().within(area).to_numpy()
    outside = buildings.loc[~inside, "building_id"]
    if len(outside):
        what = "the boundary" if given is None else "every given unit"
        notes[f"buildings outside {what}, dropped"] += len(outside)
        findings.append(_outside_findings(outside, buildings, what))
    if not inside.any():
        raise InputError("no building lies inside the given boundary", source)
    return area, buildings[inside]


#: Household columns a building file may carry (applied as imported counts).
HH_COLS = ("households", "population")


def _outside_findings(ids: pd.Series, buildings: gpd.GeoDataFrame, what: str) -> pd.DataFrame:
    """One finding per building left out because it lies outside the given land."""
    sub = buildings[buildings["building_id"].isin(set(ids))]
    pts = sub.representative_point().to_crs(4326)
    frame = pd.DataFrame(
        {
            "kind": "building_outside",
            "level": "",
            "code": None,
            "name": sub.get("name"),
            "area_m2": sub.area.to_numpy(),
            "x": pts.x.to_numpy(),
            "y": pts.y.to_numpy(),
            "detail": [f"building {b} lies outside {what}; left out" for b in sub["building_id"]],
        }
    )
    return findings_frame(frame, "buildings")


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
    return write_unit_layers(result.layers, result.tables, result.summary, out_dir)


def write_unit_layers(
    layers: dict[str, gpd.GeoDataFrame],
    tables: dict[str, pd.DataFrame],
    summary: dict[str, object],
    out_dir: str | Path,
) -> Path:
    """Write ``layers`` (any CRS), ``tables`` and the ``summary`` (its ``metric CRS`` is
    the one delineate works in) to ``out_dir/units.gpkg``, atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "units.gpkg"
    with staged_gpkg(target) as tmp:
        for name in (*LAYERS, *GIVEN_LAYERS):
            if name not in layers:
                continue
            layers[name].to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        for name, table in tables.items():
            if len(table):
                pyogrio.write_dataframe(text_table(table), tmp, layer=name, driver="GPKG")
        summary = {"attribution": summary.get("attribution", ""), **summary}
        meta = pd.DataFrame({"key": list(summary), "value": [str(v) for v in summary.values()]})
        pyogrio.write_dataframe(meta, tmp, layer="meta", driver="GPKG")  # a plain table
    return target


def text_table(table: pd.DataFrame) -> pd.DataFrame:
    """A table GeoPackage can hold: mixed object columns as text."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: None if v is None or v != v else str(v))
    return out
