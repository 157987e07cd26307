"""``wangge ingest``, ``delineate`` and ``validate``: from an OSM file to a checked plan."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from wangge.cli._app import app, err, fail
from wangge.cli.options import (
    BoundaryCoordsOpt,
    BoundaryCrsOpt,
    BoundaryOpt,
    BuildingsCoordsOpt,
    BuildingsCrsOpt,
    BuildingsOpt,
    CalibrateOutliersOpt,
    CommunitiesOpt,
    EncodingOpt,
    Gcj02Opt,
    HouseholdsConfigOpt,
    HouseholdsOpt,
    SourceArg,
    StreetsOpt,
    coords_option,
)
from wangge.cli.report import plan_verdict, print_ingest, print_plan, print_violations
from wangge.errors import WanggeError


def run_ingest(source: Path, out_dir: Path, **kwargs) -> None:
    from wangge.ingest import ingest as run
    from wangge.ingest import write_units

    start = time.perf_counter()
    try:
        result = run(source, progress=sys.stderr.isatty(), **kwargs)
        target = write_units(result, out_dir)
    except WanggeError as exc:
        fail(exc)
    print_ingest(result, target, time.perf_counter() - start)


@app.command()
def ingest(
    source: SourceArg = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for units.gpkg")] = Path("out"),
    boundary: BoundaryOpt = None,
    streets: StreetsOpt = None,
    communities: CommunitiesOpt = None,
    boundary_coords: BoundaryCoordsOpt = "wgs84",
    boundary_crs: BoundaryCrsOpt = None,
    buildings: BuildingsOpt = None,
    buildings_coords: BuildingsCoordsOpt = "wgs84",
    buildings_crs: BuildingsCrsOpt = None,
    households: HouseholdsOpt = None,
    households_config: HouseholdsConfigOpt = None,
    encoding: EncodingOpt = "utf-8",
    gcj02: Gcj02Opt = False,
    calibrate_outliers: CalibrateOutliersOpt = False,
) -> None:
    """Read an OSM file (and/or a building file) into buildings, households, blocks and
    roads, inside the given streets and communities; write DIR/units.gpkg."""
    run_ingest(
        source,
        out_dir,
        boundary=boundary,
        streets=streets,
        communities=communities,
        boundary_coords=boundary_coords,
        boundary_crs=boundary_crs,
        buildings=buildings,
        buildings_coords=buildings_coords,
        buildings_crs=buildings_crs,
        households=households,
        households_config=households_config,
        encoding=encoding,
        gcj02=gcj02,
        calibrate_outliers=calibrate_outliers,
    )


def run_delineate(source: Path, out_dir: Path, **kwargs) -> int:
    """Delineate, validate and write the plan; print it; return its error-level count."""
    from wangge.delineate import delineate as run
    from wangge.delineate import views_beside, write_plan_gpkg
    from wangge.geo.validate import validate as check

    start = time.perf_counter()
    try:
        result = run(source, progress=sys.stderr.isatty(), **kwargs)
        with views_beside(result, out_dir):  # the GeoJSONs and map.html meanwhile
            violations = check(result.layers, result.limits)
            target = write_plan_gpkg(result, violations, out_dir)
    except WanggeError as exc:
        fail(exc)
    print_plan(result, violations, target, time.perf_counter() - start)
    for note in result.notes:
        err.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    return int((violations["severity"] == "error").sum())


@app.command()
def delineate(
    source: Annotated[
        Path | None,
        typer.Argument(
            help="OSM file, or a units.gpkg from wangge ingest; may be left out with --buildings"
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for plan.gpkg")] = Path("out"),
    config: Annotated[Path | None, typer.Option(help="TOML overriding limits.toml")] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="A city's rule set from limits.toml: tongxiang, zhoushan"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: same seed, same plan")] = None,
    district_code: Annotated[
        str | None,
        typer.Option(
            help="6-digit district code (GB/T 2260); else from the given codes or the OSM "
            "file's county-level area; the run stops and asks when none names one"
        ),
    ] = None,
    sites: Annotated[
        Path | None,
        typer.Option(
            help="Dedicated sites (专属网格: campuses, hospitals, enterprises...): polygons, "
            "besides those found in OSM land use"
        ),
    ] = None,
    sites_coords: coords_option("the sites file") = "wgs84",
    boundary: BoundaryOpt = None,
    streets: StreetsOpt = None,
    communities: CommunitiesOpt = None,
    boundary_coords: BoundaryCoordsOpt = "wgs84",
    boundary_crs: BoundaryCrsOpt = None,
    buildings: BuildingsOpt = None,
    buildings_coords: BuildingsCoordsOpt = "wgs84",
    buildings_crs: BuildingsCrsOpt = None,
    households: HouseholdsOpt = None,
    households_config: HouseholdsConfigOpt = None,
    encoding: EncodingOpt = "utf-8",
    gcj02: Gcj02Opt = False,
    calibrate_outliers: CalibrateOutliersOpt = False,
) -> None:
    """Draw streets, communities, grids and micro-grids (inside the given streets and
    communities, where given); write DIR/plan.gpkg and map.html."""
    inputs = {
        "boundary": boundary,
        "streets": streets,
        "communities": communities,
        "boundary_coords": boundary_coords,
        "boundary_crs": boundary_crs,
        "buildings": buildings,
        "buildings_coords": buildings_coords,
        "buildings_crs": buildings_crs,
        "households": households,
        "households_config": households_config,
        "encoding": encoding,
        "gcj02": gcj02,
        "calibrate_outliers": calibrate_outliers,
    }
    defaults = {"boundary_coords": "wgs84", "buildings_coords": "wgs84", "encoding": "utf-8"}
    chosen = {k: v for k, v in inputs.items() if v and v != defaults.get(k)}
    if source is not None and source.suffix.lower() == ".gpkg" and chosen:
        fail(
            WanggeError(
                f"{', '.join('--' + k.replace('_', '-') for k in chosen)} apply when "
                "delineating from an OSM or building file; a units.gpkg already holds them",
                source,
            )
        )
    errors = run_delineate(
        source,
        out_dir,
        config=config,
        preset=preset,
        seed=seed,
        district_code=district_code,
        sites=sites,
        sites_coords=sites_coords,
        **{k: v for k, v in inputs.items() if k in chosen},
    )
    plan_verdict(errors, f"the plan in {out_dir}")


@app.command()
def validate(
    plan: Annotated[Path, typer.Argument(help="A plan.gpkg written by wangge delineate")],
) -> None:
    """Check a plan's polygons; exit 1 if any violation is an error."""
    from wangge.data.plan import read_plan
    from wangge.geo.validate import validate as check

    try:
        read = read_plan(plan)
        layers, limits = read.metric_layers(), read.limits
    except WanggeError as exc:
        fail(exc)
    violations = check(layers, limits)
    print_violations(violations)
    plan_verdict(int((violations["severity"] == "error").sum()), f"the plan {plan}")
