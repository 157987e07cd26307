"""The options that several commands share: the inputs of a district, coordinates, encodings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# The inputs of a district, shared by `wangge ingest` and `wangge delineate`.
SourceArg = Annotated[
    Path | None,
    typer.Argument(
        help="OSM file (.osm, .osm.gz, .osm.bz2, .osm.pbf) for roads, land use and facilities "
        "(and buildings unless --buildings); may be left out with --buildings"
    ),
]
BoundaryOpt = Annotated[
    Path | None, typer.Option(help="Study-area polygon (GeoJSON, GPKG or zipped SHP)")
]
StreetsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Given streets (街道): GeoJSON, GPKG, zipped SHP or CSV with WKT; code 代码/编码/"
        "code, name 名称/name; kept exactly as given"
    ),
]
CommunitiesOpt = Annotated[
    Path | None,
    typer.Option(
        help="Given communities (社区), as --streets; 12-digit codes also give the streets; "
        "户数/人口 columns calibrate the household estimate"
    ),
]


def coords_option(files: str):
    """The ``--…-coords`` option of one kind of user file (GCJ-02 and BD-09 are shifted)."""
    return Annotated[str, typer.Option(help=f"Coordinates of {files}: wgs84, gcj02 or bd09")]


BoundaryCoordsOpt = coords_option("the street/community files")
BoundaryCrsOpt = Annotated[
    str | None,
    typer.Option(
        help="CRS of street/community files that declare none or a wrong one (a CSV in "
        "metres): EPSG:4490, EPSG:4549…"
    ),
]
BuildingsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Buildings from another source (3D-building layer, commercial map): GeoJSON, "
        "GPKG, zipped SHP, CSV with WKT or lon/lat; floors 层数/Floor, height 高度, use 用途, "
        "户数; replaces the OSM buildings"
    ),
]
BuildingsCoordsOpt = coords_option("the building file")
BuildingsCrsOpt = Annotated[
    str | None,
    typer.Option(
        "--buildings-crs",
        help="CRS of a building file that declares none or a wrong one (a CSV or Shapefile "
        "in metres): EPSG:4548 (CM 117°E), EPSG:4549 (CM 120°E)…",
    ),
]
HouseholdsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Real household counts: CSV/XLSX with building_id or lon/lat, or "
        "GeoJSON/GPKG/zipped SHP"
    ),
]
HouseholdsConfigOpt = Annotated[
    Path | None, typer.Option(help="TOML overriding the household model parameters")
]
CalibrateOutliersOpt = Annotated[
    bool,
    typer.Option(
        "--calibrate-outliers",
        help="Apply calibration factors outside 0.5–2 to the known 户数/人口 too (by default "
        "they are reported and the estimate is kept)",
    ),
]
EncodingOpt = Annotated[str, typer.Option(help="Text encoding of CSV inputs (utf-8, gbk)")]
Gcj02Opt = Annotated[bool, typer.Option("--gcj02", help="The households file's lon/lat are GCJ-02")]

PLAN_ARG = typer.Argument(help="A plan directory or plan.gpkg (wangge delineate)")
UNITS_OPT = typer.Option(help="units.gpkg or the OSM file (default: units.gpkg beside the plan)")
RULES_OPT = typer.Option(help="TOML overriding geo/rules.toml")
